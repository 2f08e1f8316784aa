/*
 * http_resp.c — responses: the status line parser, its fast path,
 * http_resp_feed() and http_resp_skip() (see http_impl.h for the layout of
 * the delimiter, http.h for the interface and its contract).
 */
#include "http_impl.h"

/* struct http_resp.state; zero is "expecting a new response". */
enum resp_state {
	P_VERSION = 0, /* in "HTTP/1." and its minor digit */
	P_SP,          /* the space before the status code */
	P_CODE,        /* in the three-digit status code */
	P_CODE_END,    /* after the code: a space, CRLF or LF */
	P_REASON,      /* in the reason phrase, until LF */
	P_MSG,         /* in the headers or the body */
	P_ERROR,       /* not HTTP/1.x: nothing more is consumed */
};

/* struct http_resp.flags. */
#define RF_INTERIM 0x01 /* a 1xx other than 101: skipped without an event */
#define RF_SWITCH 0x02  /* 101: the connection leaves HTTP after it */

#define STATUS_SWITCHING_PROTOCOLS 101
#define STATUS_NO_CONTENT 204
#define STATUS_NOT_MODIFIED 304

/* Resets the parts of p that describe the response being parsed. */
static void resp_reset(struct http_resp *p)
{
	p->state = P_VERSION;
	p->idx = 0;
	p->flags = 0;
	msg_init(&p->msg);
}

bool http_resp_ends_at_close(const struct http_resp *p)
{
	if (p->state == P_MSG)
		return p->msg.state == M_BODY_CLOSE;
	/* Nothing of a response yet, or not HTTP: nothing was cut short. */
	return (p->state == P_VERSION && p->idx == 0) || p->state == P_ERROR;
}

void http_resp_init(struct http_resp *p)
{
	p->status = 0;
	resp_reset(p);
}

/* Handles a digit of the status code, which must be 100 or more. */
static unsigned resp_code(struct http_resp *p, unsigned char c)
{
	if (!is_digit(c) || (p->idx == 0 && c == '0'))
		return HTTP_RESP_ERROR;
	p->status = (uint16_t)(p->status * 10 + (c - '0'));
	if (++p->idx == 3)
		p->state = P_CODE_END;
	return 0;
}

/*
 * Ends the status line. An interim 1xx is parsed silently; any other status
 * is reported, 101 included since nothing HTTP follows it.
 */
static unsigned resp_line_end(struct http_resp *p)
{
	p->state = P_MSG;
	msg_init(&p->msg);
	if (p->status == STATUS_SWITCHING_PROTOCOLS) {
		p->flags |= RF_SWITCH;
		return HTTP_RESP_STATUS;
	}
	if (p->status < 200) {
		p->flags |= RF_INTERIM;
		return 0;
	}
	return HTTP_RESP_STATUS;
}

/* Advances the status line parser by one byte c. */
static unsigned resp_line_step(struct http_resp *p,
					   unsigned char c)
{
	switch (p->state) {
	case P_VERSION:
		if (!version_byte(&p->idx, &p->state, P_SP, c))
			return HTTP_RESP_ERROR;
		return 0;
	case P_SP:
		if (c != ' ')
			return HTTP_RESP_ERROR;
		p->state = P_CODE;
		p->idx = 0;
		p->status = 0;
		return 0;
	case P_CODE:
		return resp_code(p, c);
	case P_CODE_END:
		if (c == ' ')
			p->state = P_REASON;
		else if (c == '\n')
			return resp_line_end(p);
		else if (c != '\r')
			return HTTP_RESP_ERROR;
		return 0;
	case P_REASON:
		return c == '\n' ? resp_line_end(p) : 0;
	default:
		return HTTP_RESP_ERROR;
	}
}

/*
 * Picks the response body's framing once the headers ended (RFC 9112 6.3):
 * none for 1xx, HEAD, 204 and 304; until the close after 101; chunked when
 * the last transfer coding is chunked; until the close for any other
 * transfer coding; the Content-Length; else until the close. An interim
 * response ends here silently and the parser expects the next status line.
 */
static enum msg_event resp_body_start(struct http_resp *p, bool head)
{
	struct http_msg_state *m = &p->msg;

	if (p->flags & RF_INTERIM) {
		resp_reset(p);
		return MSG_NONE;
	}
	if (p->flags & RF_SWITCH)
		return msg_body_close(m);
	if (head || p->status == STATUS_NO_CONTENT ||
	    p->status == STATUS_NOT_MODIFIED)
		return MSG_DONE;
	if (m->flags & MF_CHUNKED)
		return msg_body_chunked(m);
	if (m->flags & MF_TE)
		return msg_body_close(m);
	if (m->flags & MF_LENGTH)
		return msg_body_length(m, m->remaining);
	return msg_body_close(m);
}

/* Turns a framing event into response events, resetting after DONE. */
static inline __attribute__((always_inline)) unsigned
resp_msg_event(struct http_resp *p, enum msg_event mev,
			       bool head)
{
	if (mev == MSG_HEADERS_END)
		mev = resp_body_start(p, head);
	if (mev == MSG_DONE) {
		resp_reset(p);
		return HTTP_RESP_DONE;
	}
	return mev == MSG_ERROR ? HTTP_RESP_ERROR : 0;
}

/*
 * Fast path at the start of a response in b[0..len): when its status line
 * is whole and in its usual form ("HTTP/1.x", a space, a code of three
 * digits from 100, then a space and a reason up to the LF, or CRLF, or LF),
 * consumes it and ends it like resp_line_end(); then goes on with whole
 * header lines (hdr_lines_fast(), sharing the scan for LFs) and, once they
 * end, the body: skipped in bulk, up to HTTP_RESP_DONE when it is all in
 * the buffer. Returns the count consumed, with the parser where the
 * byte-at-a-time path would be; 0, changing nothing, for anything else.
 */
static size_t resp_head_fast(struct http_resp *p, const unsigned char *b,
			     size_t len, bool head, unsigned *ev)
{
	const size_t code = VERSION_PREFIX_LEN + 2; /* "HTTP/1.1 " */
	enum msg_event mev = MSG_NONE;
	struct lf_scan lfs;
	size_t nl, off;

	if (len < code + 4 || memcmp(b, version_prefix, VERSION_PREFIX_LEN) ||
	    !is_digit(b[code - 2]) || b[code - 1] != ' ' || b[code] == '0' ||
	    !is_digit(b[code]) || !is_digit(b[code + 1]) ||
	    !is_digit(b[code + 2]))
		return 0;
	lf_start(&lfs, b, len, code + 3);
	nl = lf_next(&lfs);
	if (nl == len || (nl > code + 3 && b[code + 3] != ' ' &&
			  !(nl == code + 4 && b[code + 3] == '\r')))
		return 0;
	p->status = (uint16_t)((b[code] - '0') * 100 + (b[code + 1] - '0') * 10 +
			       (b[code + 2] - '0'));
	p->idx = 3;
	*ev |= resp_line_end(p);
	if (p->flags & RF_INTERIM)
		return nl + 1; /* its headers go a byte at a time */

	off = hdr_lines_fast(&p->msg, b, len, nl + 1, &mev);
	*ev |= resp_msg_event(p, mev, head);
	if (p->state == P_MSG && p->msg.state == M_BODY_LENGTH && off < len) {
		off += (size_t)msg_bulk(&p->msg, len - off, &mev);
		*ev |= resp_msg_event(p, mev, head);
	}
	return off;
}

size_t http_resp_feed(struct http_resp *p, const char *buf, size_t len,
		      bool head, unsigned *ret_events)
{
	const unsigned char *b = (const unsigned char *)buf;
	unsigned ev = 0;
	enum msg_event mev;
	size_t off = 0, k;

	if (p->state == P_ERROR) {
		*ret_events = HTTP_RESP_ERROR;
		return 0;
	}
	while (off < len && !(ev & (HTTP_RESP_DONE | HTTP_RESP_ERROR))) {
		if (p->state == P_MSG) {
			off += msg_feed(&p->msg, b + off, len - off, &mev);
			ev |= resp_msg_event(p, mev, head);
		} else if (p->state == P_VERSION && p->idx == 0 &&
			   (k = resp_head_fast(p, b + off, len - off, head,
					       &ev)) > 0) {
			off += k;
		} else {
			ev |= resp_line_step(p, b[off++]);
		}
	}
	if (ev & HTTP_RESP_ERROR)
		p->state = P_ERROR;
	*ret_events = ev;
	return off;
}

/*
 * Sendfile'd bytes are body bytes when a body is being skipped: they count
 * against a Content-Length body (DONE when it completes) or the current
 * chunk's data, and vanish into a body that lasts until the close. Bytes past
 * the end of the current chunk, and bytes outside any body, cannot be parsed
 * unseen: they are consumed without an event and the parser stays where it
 * was (best effort; servers sendfile exactly a body or a chunk's data).
 */
size_t http_resp_skip(struct http_resp *p, uint64_t n, unsigned *ret_events)
{
	enum msg_event mev = MSG_NONE;
	uint64_t took;

	*ret_events = 0;
	if (p->state == P_ERROR) {
		*ret_events = HTTP_RESP_ERROR;
		return 0;
	}
	if (n > SIZE_MAX)
		n = SIZE_MAX;
	if (p->state != P_MSG || !msg_is_bulk(&p->msg))
		return (size_t)n;
	took = msg_bulk(&p->msg, n, &mev);
	if (mev == MSG_DONE) {
		resp_reset(p);
		*ret_events = HTTP_RESP_DONE;
		return (size_t)took;
	}
	return (size_t)n;
}

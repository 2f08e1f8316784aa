/*
 * http_req.c — requests: the request line parser, its fast path and
 * http_req_feed() (see http_impl.h for the layout of the delimiter, http.h
 * for the interface and its contract).
 */
#include "http_impl.h"
#include "http_target.h"
#include "http_template.h"

/* struct http_req.state; zero is "expecting a new request". */
enum req_state {
	R_IDLE = 0,    /* before a request: CR and LF are skipped */
	R_METHOD,      /* in the method */
	R_TARGET,      /* in the request target */
	R_VERSION,     /* in "HTTP/1.x" */
	R_VERSION_END, /* after the version: CRLF or LF must follow */
	R_MSG,         /* in the headers or the body (struct http_msg_state) */
	R_ERROR,       /* not HTTP/1.x: nothing more is consumed */
};

/* struct http_req.target: which part of the request target we are in. */
enum req_target {
	T_EMPTY = 0,   /* no byte of the target yet */
	T_PATH,        /* in the path (origin-form, or anything unrecognised) */
	T_AUTHORITY,   /* in the authority of an absolute-form target */
	T_QUERY,       /* in the query string */
};

#define METHOD_LEN_MAX (HTTP_METHOD_MAX - 1)
#define ENDPOINT_CAP (HTTP_ENDPOINT_MAX - 1)

/* Returns true when the method, the first len bytes of ep, is HEAD. */
static bool method_is_head(const char *ep, unsigned len)
{
	return len == 4 && ep[0] == 'H' && ep[1] == 'E' && ep[2] == 'A' &&
	       ep[3] == 'D';
}

/* Resets the parts of p that describe the request being parsed. */
static void req_reset(struct http_req *p)
{
	p->state = R_IDLE;
	p->method_len = 0;
	p->idx = 0;
	p->target = T_EMPTY;
	p->scheme = S_START;
	query_reset(&p->query);
	p->kept = 0;
	tpl_begin(&p->tpl, 0);
	msg_init(&p->msg);
}

/*
 * Zeroes the whole endpoint: the templater never writes its last byte, so
 * from here on it is NUL-terminated at every moment, even mid-request.
 */
void http_req_init(struct http_req *p)
{
	size_t i;

	for (i = 0; i < sizeof(p->endpoint); i++)
		p->endpoint[i] = '\0';
	p->manual = false;
	p->head = false;
	req_reset(p);
}

/* Handles a byte between requests: the first method byte starts one. */
static unsigned req_idle(struct http_req *p, unsigned char c)
{
	if (c == '\r' || c == '\n')
		return 0;
	if (!is_method_char(c))
		return HTTP_REQ_ERROR;
	req_reset(p);
	p->manual = false;
	p->head = false;
	p->state = R_METHOD;
	tpl_put(&p->tpl, p->endpoint, ENDPOINT_CAP, (char)c);
	p->method_len = 1;
	return HTTP_REQ_START;
}

/* Handles a byte of the method; a space ends it and starts the target. */
static unsigned req_method(struct http_req *p, unsigned char c)
{
	if (c == ' ') {
		p->head = method_is_head(p->endpoint, p->method_len);
		tpl_put(&p->tpl, p->endpoint, ENDPOINT_CAP, ' ');
		tpl_begin(&p->tpl, p->tpl.pos);
		p->state = R_TARGET;
		return 0;
	}
	if (!is_method_char(c) || p->method_len >= METHOD_LEN_MAX)
		return HTTP_REQ_ERROR;
	tpl_put(&p->tpl, p->endpoint, ENDPOINT_CAP, (char)c);
	p->method_len++;
	return 0;
}

/* Gives the templater a path byte, keeping only HTTP_TARGET_MAX of them;
 * the first one past them cuts the path (tpl_cut()). */
static void req_path_byte(struct http_req *p, unsigned char c)
{
	if (p->kept >= HTTP_TARGET_MAX) {
		if (p->kept == HTTP_TARGET_MAX) {
			p->kept++;
			tpl_cut(&p->tpl, p->endpoint, ENDPOINT_CAP);
		}
		return;
	}
	p->kept++;
	tpl_byte(&p->tpl, p->endpoint, ENDPOINT_CAP, c);
}

/* Handles a byte of the path, where '?' starts the query string. */
static void req_target_path(struct http_req *p, unsigned char c)
{
	if (c == '?') {
		p->target = T_QUERY;
		return;
	}
	if (scheme_byte(&p->scheme, c)) {
		/* Absolute form: restart the path after the authority. */
		tpl_begin(&p->tpl, (size_t)p->method_len + 1);
		p->kept = 0;
		p->target = T_AUTHORITY;
		return;
	}
	req_path_byte(p, c);
}

/* Handles a byte of the authority of an absolute-form target. */
static void req_target_authority(struct http_req *p, unsigned char c)
{
	if (c == '?') {
		p->target = T_QUERY;
	} else if (c == '/') {
		p->target = T_PATH;
		req_path_byte(p, c);
	}
}

/* Ends the target: the endpoint is complete and the version comes next. */
static void req_target_end(struct http_req *p)
{
	if (p->target == T_QUERY)
		query_param_end(&p->query, &p->manual);
	p->endpoint_len =
		(uint8_t)tpl_finish(&p->tpl, p->endpoint, ENDPOINT_CAP);
	p->state = R_VERSION;
	p->idx = 0;
}

/*
 * Handles a byte of the request target. A space ends it. A control byte
 * (CR or LF of an HTTP/0.9 request, NUL, ...) or an empty target is an error:
 * servers refuse them, and the endpoint must stay a plain C string.
 */
static unsigned req_target(struct http_req *p, unsigned char c)
{
	if (is_ctl(c))
		return HTTP_REQ_ERROR;
	if (c == ' ') {
		if (p->target == T_EMPTY)
			return HTTP_REQ_ERROR;
		req_target_end(p);
		return 0;
	}
	switch (p->target) {
	case T_EMPTY:
		p->target = T_PATH;
		req_target_path(p, c);
		break;
	case T_PATH:
		req_target_path(p, c);
		break;
	case T_AUTHORITY:
		req_target_authority(p, c);
		break;
	default:
		query_byte(&p->query, &p->manual, c);
		break;
	}
	return 0;
}

/* Handles the end of the request line: the headers come next. */
static unsigned req_version_end(struct http_req *p,
					   unsigned char c)
{
	if (c == '\r')
		return 0;
	if (c != '\n')
		return HTTP_REQ_ERROR;
	msg_init(&p->msg);
	p->state = R_MSG;
	return HTTP_REQ_LINE;
}

/* Advances the request line parser by one byte c. */
static unsigned req_line_step(struct http_req *p, unsigned char c)
{
	switch (p->state) {
	case R_IDLE:
		return req_idle(p, c);
	case R_METHOD:
		return req_method(p, c);
	case R_TARGET:
		return req_target(p, c);
	case R_VERSION:
		if (!version_byte(&p->idx, &p->state, R_VERSION_END, c))
			return HTTP_REQ_ERROR;
		return 0;
	case R_VERSION_END:
		return req_version_end(p, c);
	default:
		return HTTP_REQ_ERROR;
	}
}

/*
 * Picks the request body's framing once the headers ended: chunked when the
 * last transfer coding is chunked (even with a Content-Length), an error for
 * any other transfer coding (its length cannot be known), else the
 * Content-Length, else no body.
 */
static enum msg_event req_body_start(struct http_req *p)
{
	struct http_msg_state *m = &p->msg;

	if (m->flags & MF_CHUNKED)
		return msg_body_chunked(m);
	if (m->flags & MF_TE)
		return MSG_ERROR;
	if (m->flags & MF_LENGTH)
		return msg_body_length(m, m->remaining);
	return MSG_DONE;
}

/* Feeds header and body bytes; returns the count consumed. */
static size_t req_feed_msg(struct http_req *p, const unsigned char *b,
			   size_t len, unsigned *ev)
{
	enum msg_event mev;
	size_t n = msg_feed(&p->msg, b, len, &mev);

	if (mev == MSG_HEADERS_END)
		mev = req_body_start(p);
	if (mev == MSG_DONE) {
		p->state = R_IDLE; /* req_idle() resets the rest */
		*ev |= HTTP_REQ_DONE;
	} else if (mev == MSG_ERROR) {
		*ev |= HTTP_REQ_ERROR;
	}
	return n;
}

/*
 * Finds where the origin-form path starting at b[path] (a '/') ends: the
 * first control byte, space or '?' of b[0..len), sixteen bytes at a time.
 * Stores it in *ret_end and whether no segment of the path may be an id in
 * *ret_plain, and ORs into slashes (zeroed by the caller) bit j for each
 * '/' at b[path + j] of the path's first 64 * TPL_SLASH_WORDS bytes.
 * Returns false when the path runs to the end of the buffer.
 */
static bool path_scan(const unsigned char *b, size_t len, size_t path,
		      size_t *ret_end, bool *ret_plain,
		      uint64_t slashes[TPL_SLASH_WORDS])
{
	uint32_t end, qmark, slash, stop;
	size_t base, seg = path, k;
	bool plain = true;

	for (base = path; base < len; base += 16) {
		target_block(b, len, base, &end, &qmark, &slash);
		stop = end | qmark;
		if (stop)
			slash &= (stop & -stop) - 1; /* slashes before the end */
		if (base - path < 64 * TPL_SLASH_WORDS)
			slashes[(base - path) / 64] |= (uint64_t)slash
						       << ((base - path) % 64);
		for (; slash; slash &= slash - 1) {
			k = base + (size_t)__builtin_ctz(slash);
			plain = plain && !seg_may_be_id(b + seg, k - seg);
			seg = k + 1;
		}
		if (stop) {
			k = base + (size_t)__builtin_ctz(stop);
			*ret_plain = plain && !seg_may_be_id(b + seg, k - seg);
			*ret_end = k;
			return true;
		}
	}
	return false;
}

/*
 * Finds the end of a query string that starts after the '?' at b[q]: the
 * first control byte or space after it. Returns false when it runs to the
 * end of the buffer.
 */
static bool query_scan(const unsigned char *b, size_t len, size_t q,
		       size_t *ret_end)
{
	uint32_t end, qmark, slash;
	size_t base;

	for (base = q + 1; base < len; base += 16) {
		target_block(b, len, base, &end, &qmark, &slash);
		if (end) {
			*ret_end = base + (size_t)__builtin_ctz(end);
			return true;
		}
	}
	return false;
}

/*
 * Writes the endpoint of a request line whose method is b[0..mlen) and
 * whose path is b[path..pend): the same as req_idle(), req_method() and
 * req_path_byte() write a byte at a time. A plain path that fits is copied
 * whole; others go through the templater a segment at a time.
 */
static void req_endpoint_fast(struct http_req *p, const unsigned char *b,
			      size_t mlen, size_t path, size_t pend, bool plain,
			      const uint64_t slashes[TPL_SLASH_WORDS])
{
	size_t n = pend - path, at = mlen + 1;
	struct http_tpl_state t;

	if (plain && n <= HTTP_TARGET_MAX && at + n <= ENDPOINT_CAP) {
		/* Method, space and path lie together in b[0..pend). */
		copy_short(p->endpoint, b, pend);
		p->endpoint[pend] = '\0';
		p->endpoint_len = (uint8_t)pend;
		return;
	}
	memcpy(p->endpoint, b, mlen);
	p->endpoint[mlen] = ' ';
	tpl_begin(&t, at);
	p->endpoint_len = (uint8_t)tpl_path_whole(&t, p->endpoint, ENDPOINT_CAP,
						  b + path, n, slashes);
}

/*
 * Fast path for a new request whose first byte is b[0] (the parser is at
 * R_IDLE): when the request line is whole in b[0..len) and in its usual
 * form (a method, one space, an origin-form target, one space, "HTTP/1.x",
 * an optional CR, LF), consumes it, reports HTTP_REQ_START and
 * HTTP_REQ_LINE with endpoint, manual and head exactly as the
 * byte-at-a-time path fills them, and goes on with whole header lines
 * (hdr_lines_fast()) and, once they end, the body: skipped in bulk, up to
 * HTTP_REQ_DONE when it is all in the buffer. Returns the count consumed,
 * with the parser where the byte-at-a-time path would be. Returns 0,
 * leaving the parser's state alone, for any other request line (bytes may
 * have been written into the endpoint; the byte-at-a-time path, which
 * starts the request at once, overwrites them).
 */
static size_t req_head_fast(struct http_req *p, const unsigned char *b,
			    size_t len, unsigned *ev)
{
	enum msg_event mev = MSG_NONE;
	size_t i = 0, pend, tend, nl, off;
	uint64_t slashes[TPL_SLASH_WORDS] = {0};
	bool plain;

	uint32_t first4;

	/* GET, the usual method, in one compare; any other a byte at a time. */
	if (len >= 4 && (memcpy(&first4, b, 4), first4 == load4("GET "))) {
		i = 3;
	} else {
		size_t lim = len < METHOD_LEN_MAX + 1 ? len : METHOD_LEN_MAX + 1;

		while (i < lim && (char_class[b[i]] & CC_METHOD))
			i++;
	}
	if (i == 0 || i > METHOD_LEN_MAX || len - i < 2 || b[i] != ' ' ||
	    b[i + 1] != '/' || !path_scan(b, len, i + 1, &pend, &plain, slashes))
		return 0;
	tend = pend;
	if (b[pend] == '?' && !query_scan(b, len, pend, &tend))
		return 0;
	/* " HTTP/1." and a digit, then CRLF or LF. */
	if (len - tend < 10 || load8(b + tend) != load8(" HTTP/1.") ||
	    !is_digit(b[tend + 8]))
		return 0;
	nl = tend + 9;
	if (b[nl] == '\r' && nl + 1 < len)
		nl++;
	if (b[nl] != '\n')
		return 0;
	req_endpoint_fast(p, b, i, i + 1, pend, plain, slashes);
	p->method_len = (uint8_t)i;
	p->head = method_is_head(p->endpoint, p->method_len);
	p->manual = tend > pend &&
		    query_asks_profile(b + pend + 1, tend - pend - 1);
	p->state = R_MSG;
	msg_init(&p->msg);
	*ev |= HTTP_REQ_START | HTTP_REQ_LINE;

	off = hdr_lines_fast(&p->msg, b, len, nl + 1, &mev);
	if (mev == MSG_HEADERS_END)
		mev = req_body_start(p);
	if (p->msg.state == M_BODY_LENGTH && off < len)
		off += (size_t)msg_bulk(&p->msg, len - off, &mev);
	if (mev == MSG_DONE) {
		p->state = R_IDLE;
		*ev |= HTTP_REQ_DONE;
	} else if (mev == MSG_ERROR) {
		*ev |= HTTP_REQ_ERROR;
	}
	return off;
}

size_t http_req_feed(struct http_req *p, const char *buf, size_t len,
		     unsigned *ret_events)
{
	const unsigned char *b = (const unsigned char *)buf;
	unsigned ev = 0;
	size_t off = 0, k;

	if (p->state == R_ERROR) {
		*ret_events = HTTP_REQ_ERROR;
		return 0;
	}
	while (off < len && !(ev & (HTTP_REQ_DONE | HTTP_REQ_ERROR))) {
		if (p->state == R_MSG)
			off += req_feed_msg(p, b + off, len - off, &ev);
		else if (p->state == R_IDLE &&
			 (k = req_head_fast(p, b + off, len - off, &ev)) > 0)
			off += k;
		else
			ev |= req_line_step(p, b[off++]);
	}
	if (ev & HTTP_REQ_ERROR)
		p->state = R_ERROR;
	*ret_events = ev;
	return off;
}


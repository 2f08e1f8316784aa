/*
 * http_msg.c — header and body framing of the HTTP/1.x delimiter, shared by
 * requests and responses (see http_impl.h for the layout and the fast
 * paths, http.h for the interface and its contract).
 */
#include "http_impl.h"

/* Largest Content-Length accepted: what fits in an off_t. */
#define MAX_CONTENT_LENGTH ((uint64_t)INT64_MAX)

/* aux in M_NAME: the header names the current name may still be. */
#define NAME_CL 0x01
#define NAME_TE 0x02

/* aux in M_CL_VALUE. */
#define CLV_DIGITS 0x01 /* digits were seen */
#define CLV_AFTER 0x02  /* whitespace followed the digits */

/* aux in M_TE_VALUE: the current coding and the last complete one. */
#define TOK_ANY 0x01          /* the current coding has a byte */
#define TOK_BAD 0x02          /* the current coding is not "chunked" */
#define TOK_WS 0x04           /* whitespace followed the current coding */
#define TOK_SEEN 0x08         /* this header listed at least one coding */
#define TOK_LAST_CHUNKED 0x10 /* the last complete coding was "chunked" */

/* aux in M_CHUNK_SIZE. */
#define CHUNK_DIGITS 0x01

static const char name_cl[] = "content-length";
static const char name_te[] = "transfer-encoding";
static const char coding_chunked[] = "chunked";

#define NAME_CL_LEN (sizeof(name_cl) - 1)
#define NAME_TE_LEN (sizeof(name_te) - 1)
#define CHUNKED_LEN (sizeof(coding_chunked) - 1)

/* Narrows the candidate header names with byte c at offset m->idx. */
static void hdr_name_match(struct http_msg_state *m, unsigned char c)
{
	unsigned i = m->idx;

	c = to_lower(c);
	if (i >= NAME_CL_LEN || c != (unsigned char)name_cl[i])
		m->aux &= (uint8_t)~NAME_CL;
	if (i >= NAME_TE_LEN || c != (unsigned char)name_te[i])
		m->aux &= (uint8_t)~NAME_TE;
	if (m->idx < UINT8_MAX)
		m->idx++;
}

/* Handles the first byte of a header line. */
static enum msg_event hdr_line_start(struct http_msg_state *m,
				     unsigned char c)
{
	if (c == '\n')
		return MSG_HEADERS_END;
	if (c == '\r')
		return MSG_NONE;
	if (is_ows(c) || c == ':') {
		/* An obsolete line folding or an empty name: not of interest. */
		msg_enter(m, M_SKIP_LINE);
		return MSG_NONE;
	}
	msg_enter(m, M_NAME);
	m->aux = NAME_CL | NAME_TE;
	hdr_name_match(m, c);
	return MSG_NONE;
}

/* Handles a byte of a header name: the colon picks the value parser. */
static enum msg_event hdr_name(struct http_msg_state *m, unsigned char c)
{
	if (c == '\n') {
		/* A line without a colon carries nothing we use. */
		msg_enter(m, M_LINE_START);
		return MSG_NONE;
	}
	if (c != ':') {
		hdr_name_match(m, c);
		return MSG_NONE;
	}
	if ((m->aux & NAME_CL) && m->idx == NAME_CL_LEN)
		msg_enter(m, M_CL_VALUE);
	else if ((m->aux & NAME_TE) && m->idx == NAME_TE_LEN)
		msg_enter(m, M_TE_VALUE);
	else
		msg_enter(m, M_SKIP_LINE);
	return MSG_NONE;
}

/*
 * Ends a Content-Length header: the value must have digits, and a repeated
 * header must repeat the same value.
 */
static enum msg_event hdr_cl_end(struct http_msg_state *m)
{
	if (!(m->aux & CLV_DIGITS))
		return MSG_ERROR;
	if ((m->flags & MF_LENGTH) && m->remaining != m->value)
		return MSG_ERROR;
	m->remaining = m->value;
	m->flags |= MF_LENGTH;
	msg_enter(m, M_LINE_START);
	return MSG_NONE;
}

/*
 * Handles a byte of a Content-Length value: optional whitespace, decimal
 * digits that fit in MAX_CONTENT_LENGTH, optional whitespace, end of line.
 * Anything else, including a list of values, is an error.
 */
static enum msg_event hdr_cl_value(struct http_msg_state *m, unsigned char c)
{
	uint64_t d;

	if (c == '\n')
		return hdr_cl_end(m);
	if (is_ows(c) || c == '\r') {
		if (m->aux & CLV_DIGITS)
			m->aux |= CLV_AFTER;
		return MSG_NONE;
	}
	if (!is_digit(c) || (m->aux & CLV_AFTER))
		return MSG_ERROR;
	d = (uint64_t)(c - '0');
	if (m->value > (MAX_CONTENT_LENGTH - d) / 10)
		return MSG_ERROR;
	m->value = m->value * 10 + d;
	m->aux |= CLV_DIGITS;
	return MSG_NONE;
}

/* Ends one transfer coding of a Transfer-Encoding list. */
static void hdr_te_token_end(struct http_msg_state *m)
{
	if (!(m->aux & TOK_ANY))
		return;
	if (!(m->aux & TOK_BAD) && m->idx == CHUNKED_LEN)
		m->aux |= TOK_LAST_CHUNKED;
	else
		m->aux &= (uint8_t)~TOK_LAST_CHUNKED;
	m->aux |= TOK_SEEN;
	m->aux &= (uint8_t)~(TOK_ANY | TOK_BAD | TOK_WS);
	m->idx = 0;
}

/*
 * Ends a Transfer-Encoding header. Several headers form one list, so the
 * last header that lists a coding decides whether the body is chunked.
 */
static void hdr_te_end(struct http_msg_state *m)
{
	hdr_te_token_end(m);
	if (m->aux & TOK_SEEN) {
		m->flags |= MF_TE;
		if (m->aux & TOK_LAST_CHUNKED)
			m->flags |= MF_CHUNKED;
		else
			m->flags &= (uint8_t)~MF_CHUNKED;
	}
	msg_enter(m, M_LINE_START);
}

/*
 * Handles a byte of a Transfer-Encoding value: a comma-separated list of
 * codings, each matched case-insensitively against "chunked". A coding with
 * parameters or inner whitespace is not "chunked".
 */
static enum msg_event hdr_te_value(struct http_msg_state *m, unsigned char c)
{
	if (c == '\n') {
		hdr_te_end(m);
		return MSG_NONE;
	}
	if (c == ',') {
		hdr_te_token_end(m);
		return MSG_NONE;
	}
	if (is_ows(c) || c == '\r') {
		if (m->aux & TOK_ANY)
			m->aux |= TOK_WS;
		return MSG_NONE;
	}
	if ((m->aux & TOK_WS) || m->idx >= CHUNKED_LEN ||
	    to_lower(c) != (unsigned char)coding_chunked[m->idx])
		m->aux |= TOK_BAD;
	else
		m->idx++;
	m->aux |= TOK_ANY;
	return MSG_NONE;
}

/* Ends a chunk-size line: a zero size starts the trailer section. */
static enum msg_event chunk_size_end(struct http_msg_state *m)
{
	uint64_t size = m->value;

	if (size == 0) {
		msg_enter(m, M_TRAILER_START);
		return MSG_NONE;
	}
	msg_enter(m, M_CHUNK_DATA);
	m->remaining = size;
	return MSG_NONE;
}

/*
 * Handles a byte after the digits of a chunk size, right after them or
 * after whitespace (M_CHUNK_WS): more whitespace, ';' extensions, CRLF or
 * LF.
 */
static enum msg_event chunk_ws(struct http_msg_state *m, unsigned char c)
{
	if (is_ows(c))
		m->state = M_CHUNK_WS;
	else if (c == ';')
		m->state = M_CHUNK_EXT;
	else if (c == '\r')
		m->state = M_CHUNK_CR;
	else if (c == '\n')
		return chunk_size_end(m);
	else
		return MSG_ERROR;
	return MSG_NONE;
}

/*
 * Handles a byte of a chunk size: at least one hex digit, then what
 * chunk_ws() takes. Sizes that do not fit in 60 bits are an error.
 */
static enum msg_event chunk_size(struct http_msg_state *m, unsigned char c)
{
	int v = hex_value(c);

	if (v >= 0) {
		if (m->value >> 59)
			return MSG_ERROR;
		m->value = (m->value << 4) | (uint64_t)v;
		m->aux |= CHUNK_DIGITS;
		return MSG_NONE;
	}
	if (!(m->aux & CHUNK_DIGITS))
		return MSG_ERROR;
	return chunk_ws(m, c);
}

/* Handles the byte after chunk data: CRLF or LF must end the chunk. */
static enum msg_event chunk_end(struct http_msg_state *m, unsigned char c)
{
	if (c == '\r' && m->state == M_CHUNK_END) {
		m->state = M_CHUNK_END_CR;
		return MSG_NONE;
	}
	if (c != '\n')
		return MSG_ERROR;
	msg_enter(m, M_CHUNK_SIZE);
	return MSG_NONE;
}

/* Handles the first byte of a trailer line; the empty line ends the body. */
static enum msg_event trailer_start(struct http_msg_state *m, unsigned char c)
{
	if (c == '\n')
		return MSG_DONE;
	if (c != '\r')
		m->state = M_TRAILER_LINE;
	return MSG_NONE;
}

/*
 * Advances m by one byte c in any per-byte state (everything but the bulk
 * states M_CHUNK_DATA, M_BODY_LENGTH and M_BODY_CLOSE).
 */
static enum msg_event msg_step(struct http_msg_state *m, unsigned char c)
{
	switch (m->state) {
	case M_LINE_START:
		return hdr_line_start(m, c);
	case M_NAME:
		return hdr_name(m, c);
	case M_SKIP_LINE:
		if (c == '\n')
			msg_enter(m, M_LINE_START);
		return MSG_NONE;
	case M_CL_VALUE:
		return hdr_cl_value(m, c);
	case M_TE_VALUE:
		return hdr_te_value(m, c);
	case M_CHUNK_SIZE:
		return chunk_size(m, c);
	case M_CHUNK_WS:
		return chunk_ws(m, c);
	case M_CHUNK_EXT:
		return c == '\n' ? chunk_size_end(m) : MSG_NONE;
	case M_CHUNK_CR:
		return c == '\n' ? chunk_size_end(m) : MSG_ERROR;
	case M_CHUNK_END:
	case M_CHUNK_END_CR:
		return chunk_end(m, c);
	case M_TRAILER_START:
		return trailer_start(m, c);
	case M_TRAILER_LINE:
		if (c == '\n')
			m->state = M_TRAILER_START;
		return MSG_NONE;
	default:
		return MSG_ERROR;
	}
}

/*
 * Fast path for a Content-Length value v[0..n) (the line after the colon,
 * without its LF) in its usual form: optional whitespace, at most 18 digits
 * (so no overflow check is needed), optional whitespace, an optional CR.
 * Returns false, changing nothing, for anything else, including a repeated
 * header with another value: the byte-at-a-time path then decides. (A CR
 * is only allowed as the last byte, so it is taken off first.)
 */
static bool hdr_cl_fast(struct http_msg_state *m, const unsigned char *v,
			size_t n)
{
	const unsigned char *p = v, *end = v + n, *digits;
	uint64_t value = 0;

	if (p < end && end[-1] == '\r')
		end--;
	/* The usual form, one space and at most 18 digits, in one loop. */
	if (p < end && *p == ' ' && end - p <= 19) {
		for (p++, digits = p; p < end; p++) {
			unsigned d = (unsigned)*p - '0';

			if (d > 9)
				break;
			value = value * 10 + d;
		}
		if (p == end && p > digits)
			goto have;
		p = v;
		value = 0;
	}
	while (p < end && is_ows(*p))
		p++;
	digits = p;
	while (p < end && is_digit(*p) && p - digits < 18) {
		value = value * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == digits)
		return false;
	while (p < end && is_ows(*p))
		p++;
	if (p != end)
		return false;
have:
	if ((m->flags & MF_LENGTH) && m->remaining != value)
		return false;
	m->remaining = value;
	m->flags |= MF_LENGTH;
	return true;
}

/* What the first byte of a header line says, for hdr_lines_fast(). */
enum hdr_first {
	HF_SKIP = 0, /* a line that is skipped whole */
	HF_CR,       /* maybe the empty line, CRLF */
	HF_LF,       /* the empty line, a bare LF */
	HF_C,        /* maybe Content-Length */
	HF_T,        /* maybe Transfer-Encoding */
};

static const uint8_t hdr_first_class[256] = {
	['\r'] = HF_CR, ['\n'] = HF_LF,
	['c'] = HF_C, ['C'] = HF_C,
	['t'] = HF_T, ['T'] = HF_T,
};

size_t hdr_lines_fast(struct http_msg_state *m, const unsigned char *b,
		      size_t len, size_t off, enum msg_event *ev)
{
	size_t base = off, nl, n;
	uint64_t mask = lf_window(b, len, base);

	while (off < len) {
		const unsigned char *line = b + off;
		unsigned k = hdr_first_class[line[0]];

		if (k == HF_LF) {
			*ev = MSG_HEADERS_END;
			return off + 1;
		}
		if (k == HF_CR) {
			if (len - off >= 2 && line[1] == '\n') {
				*ev = MSG_HEADERS_END;
				return off + 2;
			}
			return off; /* a lone CR */
		}
		/* The LF that ends this line: the next one handed out. */
		while (!mask) {
			if (len - base <= 64)
				return off; /* not in the buffer */
			base += 64;
			mask = lf_window(b, len, base);
		}
		nl = base + (size_t)__builtin_ctzll(mask);
		mask &= mask - 1;
		n = nl - off;
		if (k == HF_C) {
			if (n > NAME_CL_LEN && is_cl_name(line) &&
			    !hdr_cl_fast(m, line + NAME_CL_LEN + 1,
					 n - NAME_CL_LEN - 1))
				return off;
		} else if (k == HF_T) {
			if (n > NAME_TE_LEN && is_te_name(line))
				return off;
		}
		off = nl + 1;
	}
	return off;
}

size_t msg_feed(struct http_msg_state *m, const unsigned char *b,
		size_t len, enum msg_event *ev)
{
	const unsigned char *nl;
	size_t off = 0, k;

	*ev = MSG_NONE;
	/*
	 * A do-while, since len is never 0: the first test is left out (a
	 * function another file calls cannot be told so by the compiler).
	 */
	do {
		switch (m->state) {
		case M_CHUNK_DATA:
		case M_BODY_LENGTH:
		case M_BODY_CLOSE:
			off += (size_t)msg_bulk(m, len - off, ev);
			continue;
		case M_LINE_START:
			k = hdr_lines_fast(m, b, len, off, ev);
			if (k > off) {
				off = k;
				continue;
			}
			break;
		case M_SKIP_LINE:
		case M_TRAILER_LINE:
		case M_CHUNK_EXT:
			/* Nothing in the line matters but its end. */
			nl = memchr(b + off, '\n', len - off);
			if (!nl)
				return len;
			off = (size_t)(nl - b);
			break;
		default:
			break;
		}
		*ev = msg_step(m, b[off++]);
	} while (off < len && *ev == MSG_NONE);
	return off;
}


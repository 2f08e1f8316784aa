/*
 * http_impl.h — what the pieces of the incremental HTTP/1.x delimiter share
 * (private to shim/http_*.c; http.h is the whole interface).
 *
 * Everything in the delimiter is a byte-at-a-time state machine over
 * caller-owned state: no allocation, no locks, no stdio, no system calls,
 * and no library calls but memchr(), memcmp() and memcpy(). Each byte costs
 * a bounded amount of work; a body or chunk payload is skipped in one step
 * per call whatever its size. Nothing is ever read outside buf[0..len), and
 * nothing but the method, the templated path and the status is kept. A call
 * goes on to the end of one message, so the hooks make one call per request
 * and per response in the usual case of a message read or written whole.
 *
 * Fast paths. The state machine is the definition; on top of it, fast
 * paths take the usual case whole when it is in the buffer: a request's
 * head from its first byte (req_head_fast: request line in origin form,
 * header lines, body framing), a response's head (resp_head_fast), and
 * header lines wherever one starts (hdr_lines_fast), where only
 * Content-Length is looked into and every other line is skipped whole.
 * LFs, and the bytes that end a path, are found sixteen bytes at a time
 * (SSE2; a byte loop on other machines). A fast path either consumes
 * complete lines and leaves exactly the state the byte-at-a-time path
 * would have left, or consumes nothing and hands the line to it; so feeding
 * a message byte by byte (which never takes a fast path) and all at once
 * must give the same events and outputs, which the unit tests and the fuzz
 * target check.
 *
 * Layout:
 *   - http_scan.h: character classes and the sixteen-byte scanners for LFs
 *     and for the bytes that end a request target;
 *   - http_template.h: the path templater (shared by http_req_feed() and
 *     http_template_path(), so both always agree, and by the FastCGI
 *     delimiter, shim/fcgi.c); http_template.c: http_template_path();
 *   - http_target.h: what request targets share with the FastCGI
 *     delimiter: the "scheme://" matcher and the profile= query matcher;
 *   - this header: what requests and responses share (the HTTP-version,
 *     the interface of header and body framing); http_msg.c: header and
 *     body framing (struct http_msg_state): Content-Length,
 *     Transfer-Encoding, chunked coding with extensions and trailers, and
 *     bodies that last until the close;
 *   - http_req.c: the request line parser and http_req_feed();
 *   - http_resp.c: the status line parser, http_resp_feed() and
 *     http_resp_skip().
 *
 * Calls between the files. What runs per byte, per block or once per
 * message on a fast path is static inline in the headers (the scanners, the
 * templater, starting a body, skipping one in bulk), so that the files cost
 * the hooks no call the single file did not make; this was measured with
 * scripts/bench/hooks.sh (callgrind). Only hdr_lines_fast() and msg_feed()
 * are called across files, as they were already called out of line before.
 * A function called from another file is compiled without knowing its
 * callers, so what they guarantee is said in its contract and written into
 * its code (msg_feed() is never given an empty buffer).
 *
 * Leniency: a bare LF ends any line where CRLF is expected. At the end of
 * the request line, and in status, header and trailer lines, a stray CR is
 * ignored; in chunk framing a CR must be followed by LF. Everything that
 * frames a message (method, version, Content-Length, chunk sizes) is
 * checked strictly, since a mistake there would desynchronise every later
 * message on the connection; headers that do not frame anything are skipped
 * unread.
 *
 * Two choices beyond the letter of http.h: a 101 (Switching Protocols)
 * response is reported like a final status and followed by a body that lasts
 * until the close, since no HTTP comes after it; and a request whose last
 * transfer coding is not chunked is an error, since its length is unknowable.
 */
#ifndef PROFSHIM_HTTP_IMPL_H
#define PROFSHIM_HTTP_IMPL_H

#include "http.h"
#include "http_scan.h"

/* HTTP-version, "HTTP/1." and a digit, in request and status lines. */
static const char version_prefix[] = "HTTP/1.";

#define VERSION_PREFIX_LEN (sizeof(version_prefix) - 1)

/*
 * Matches byte c of the HTTP-version of a request or status line, "HTTP/1."
 * and a digit, of which *idx bytes matched so far; the digit, which ends
 * it, moves *state to next. Returns false when c does not match.
 */
static inline bool version_byte(uint8_t *idx, uint8_t *state, uint8_t next,
				unsigned char c)
{
	if (*idx < VERSION_PREFIX_LEN) {
		if (c != (unsigned char)version_prefix[*idx])
			return false;
		(*idx)++;
		return true;
	}
	if (!is_digit(c))
		return false;
	*state = next;
	return true;
}

/* ------------------------------------------------------------------------ */
/* Header and body framing                                                  */
/* ------------------------------------------------------------------------ */

/* States of struct http_msg_state; zero is "at the start of a header line". */
enum msg_state {
	M_LINE_START = 0, /* start of a header line, or of the empty line */
	M_NAME,           /* in a header name */
	M_SKIP_LINE,      /* in a line that does not matter, until LF */
	M_CL_VALUE,       /* in a Content-Length value */
	M_TE_VALUE,       /* in a Transfer-Encoding value */
	M_CHUNK_SIZE,     /* in a chunk size */
	M_CHUNK_WS,       /* whitespace after a chunk size */
	M_CHUNK_EXT,      /* in chunk extensions, until LF */
	M_CHUNK_CR,       /* CR after a chunk size: LF must follow */
	M_CHUNK_DATA,     /* in chunk data: remaining bytes to skip */
	M_CHUNK_END,      /* after chunk data: CRLF or LF must follow */
	M_CHUNK_END_CR,   /* CR after chunk data: LF must follow */
	M_TRAILER_START,  /* start of a trailer line, or of the empty line */
	M_TRAILER_LINE,   /* in a trailer line, until LF */
	M_BODY_LENGTH,    /* in a Content-Length body: remaining bytes */
	M_BODY_CLOSE,     /* in a body that lasts until the close */
};

/* struct http_msg_state.flags: what the headers said so far. */
#define MF_LENGTH 0x01  /* a Content-Length was seen; remaining holds it */
#define MF_TE 0x02      /* a Transfer-Encoding with codings was seen */
#define MF_CHUNKED 0x04 /* the last transfer coding is chunked */

/* What the framing layer tells the request or response parser. */
enum msg_event {
	MSG_NONE = 0,
	MSG_HEADERS_END, /* the empty line ending the headers was consumed */
	MSG_DONE,        /* the body ended */
	MSG_ERROR,       /* malformed framing */
};

/* Resets m to "expecting the first header line". */
static inline void msg_init(struct http_msg_state *m)
{
	m->remaining = 0;
	m->value = 0;
	m->state = M_LINE_START;
	m->flags = 0;
	m->idx = 0;
	m->aux = 0;
}

/* Moves m to state s with its scratch fields cleared. */
static inline void msg_enter(struct http_msg_state *m, uint8_t s)
{
	m->state = s;
	m->idx = 0;
	m->aux = 0;
	m->value = 0;
}

/* Returns true when m skips bytes in bulk without looking at them. */
static inline bool msg_is_bulk(const struct http_msg_state *m)
{
	return m->state == M_CHUNK_DATA || m->state == M_BODY_LENGTH ||
	       m->state == M_BODY_CLOSE;
}

/*
 * Skips up to n body bytes in a bulk state without looking at them. Returns
 * how many were skipped and sets *ev to MSG_DONE when a Content-Length body
 * ended with the last of them.
 */
static inline uint64_t msg_bulk(struct http_msg_state *m, uint64_t n,
				enum msg_event *ev)
{
	uint64_t take;

	*ev = MSG_NONE;
	if (m->state == M_BODY_CLOSE)
		return n;
	take = n < m->remaining ? n : m->remaining;
	m->remaining -= take;
	if (m->remaining == 0) {
		if (m->state == M_BODY_LENGTH)
			*ev = MSG_DONE;
		else
			msg_enter(m, M_CHUNK_END);
	}
	return take;
}

/* Starts a body of n bytes; returns MSG_DONE at once when n is zero. */
static inline enum msg_event msg_body_length(struct http_msg_state *m,
					     uint64_t n)
{
	if (n == 0)
		return MSG_DONE;
	msg_enter(m, M_BODY_LENGTH);
	m->remaining = n;
	return MSG_NONE;
}

/* Starts a chunked body. */
static inline enum msg_event msg_body_chunked(struct http_msg_state *m)
{
	msg_enter(m, M_CHUNK_SIZE);
	m->remaining = 0;
	return MSG_NONE;
}

/* Starts a body that lasts until the connection closes: it never ends. */
static inline enum msg_event msg_body_close(struct http_msg_state *m)
{
	msg_enter(m, M_BODY_CLOSE);
	m->remaining = 0;
	return MSG_NONE;
}

/*
 * Fast path at the start of a header line, at offset off of b[0..len):
 * consumes complete header lines, and the empty line that ends the headers
 * (setting *ev to MSG_HEADERS_END). A line that is not Content-Length or
 * Transfer-Encoding is skipped whole; a Content-Length in its usual form is
 * read. Stops at the first line it leaves to the byte-at-a-time path
 * (Transfer-Encoding, an unusual Content-Length, a lone CR, a line whose LF
 * is not in the buffer) and returns the offset reached, with m still at
 * M_LINE_START. LFs are found 64 bytes at a time (lf_window()).
 */
size_t hdr_lines_fast(struct http_msg_state *m, const unsigned char *b,
		      size_t len, size_t off, enum msg_event *ev);

/*
 * Consumes header or body bytes from b[0..len) until the first framing event
 * or the end of the buffer. Returns the count consumed, including the byte
 * that caused the event. Bodies are skipped in bulk, lines that do not matter
 * with memchr(), whole header lines by hdr_lines_fast(); the rest goes a
 * byte at a time through msg_step(). len must be at least 1: callers feed
 * only while bytes remain.
 */
size_t msg_feed(struct http_msg_state *m, const unsigned char *b,
		size_t len, enum msg_event *ev);

#endif /* PROFSHIM_HTTP_IMPL_H */

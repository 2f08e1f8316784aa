/*
 * http.h — incremental HTTP/1.x delimiter for the shim's socket hooks.
 *
 * The hooks see the bytes a server reads from and writes to a connection, in
 * whatever pieces the calls return. This module finds where each request
 * starts, its method and path, where each response starts, its status, and
 * where it ends, without ever buffering a whole request:
 *
 *   - requests: request line, headers, a body framed by Content-Length or
 *     chunked transfer coding (with extensions and trailers); keep-alive and
 *     pipelining (several requests in one read) are handled by feeding the
 *     same parser again from where it stopped;
 *   - responses: status line (1xx interim responses are skipped), headers,
 *     a body framed by Content-Length, chunked coding, or the end of the
 *     connection; no body for HEAD requests, 1xx, 204 and 304.
 *
 * Contract for every function here: no allocation, no locks, no stdio, no
 * system calls, bounded work per byte, never reads outside buf[0..len).
 * They are called from the socket hooks (never from the signal handler).
 * Parser state is a plain struct the caller owns; zero-initialising it
 * (memset 0) is the same as the matching _init().
 *
 * Only the method, the templated path and the status ever leave this module:
 * query strings, headers and bodies are looked at byte by byte and dropped.
 */
#ifndef PROFSHIM_HTTP_H
#define PROFSHIM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_METHOD_MAX 16     /* bytes including NUL */
#define HTTP_TARGET_MAX 160    /* raw path bytes kept before templating */
#define HTTP_ENDPOINT_MAX 120  /* "METHOD /templated/path" including NUL */

/*
 * What a call to http_req_feed() saw, as bits of its *ret_events. One call
 * consumes bytes up to the end of one request at most, so the bits set in a
 * call all belong to the same request and happen in this order.
 */
#define HTTP_REQ_START 0x01 /* a new request began: its first byte was fed */
#define HTTP_REQ_LINE 0x02  /* its request line completed: see endpoint */
#define HTTP_REQ_DONE 0x04  /* it is complete (headers and body) */
#define HTTP_REQ_ERROR 0x08 /* not HTTP/1.x, or malformed: stop feeding */

/*
 * Private: the streaming path templater. The templated path is written
 * straight into its output buffer while the path streams by; a segment is
 * copied verbatim and, when it ends and turns out to be an id, rewritten as
 * ":id" from the position where it started.
 */
struct http_tpl_state {
	size_t pos;          /* output length so far, saturating at cap + 1 */
	size_t seg_pos;      /* output position where the current segment began */
	uint8_t seg_len;     /* bytes in the current segment, saturating */
	uint8_t seg_flags;   /* what the current segment can still be */
};

/*
 * Private: header and body framing, shared by requests and responses. It
 * recognises Content-Length and Transfer-Encoding, then skips a body framed
 * by a length, by chunked coding, or by the end of the connection.
 */
struct http_msg_state {
	uint64_t remaining;  /* body or chunk bytes still to come; Content-Length
	                        while the headers are parsed */
	uint64_t value;      /* number being parsed */
	uint8_t state;
	uint8_t flags;
	uint8_t idx;         /* bytes of a header name or coding matched */
	uint8_t aux;         /* per-state scratch bits */
};

/*
 * Private: the query matcher, which looks for a parameter profile=1, true or
 * yes (any case) in a query string a byte at a time.
 */
struct http_query {
	uint8_t state;
	uint8_t idx;         /* bytes of the name or the value matched */
	uint8_t mask;        /* the values profile= may still have */
};

struct http_req {
	/* Outputs, valid from HTTP_REQ_LINE until the next HTTP_REQ_START. */
	char endpoint[HTTP_ENDPOINT_MAX]; /* "GET /users/:id" */
	uint8_t endpoint_len; /* strlen(endpoint) */
	bool manual;        /* query had profile=1|true|yes (any case) */
	bool head;          /* method is HEAD: its response has no body */

	/* Private state. */
	uint8_t state;
	uint8_t method_len;
	uint8_t idx;         /* bytes of "HTTP/1." matched */
	uint8_t target;      /* where in the target: path, authority, query */
	uint8_t scheme;      /* progress of "scheme://" at the target's start */
	struct http_query query;
	uint16_t kept;       /* path bytes given to the templater */
	struct http_tpl_state tpl;
	struct http_msg_state msg;
};

/* Reset a request parser to "expecting a new request". */
void http_req_init(struct http_req *p);

/*
 * Consume bytes from buf[0..len) up to the end of the request being read
 * (HTTP_REQ_DONE), an error, or the end of the buffer, whichever comes
 * first. Returns the number of bytes consumed (<= len) and stores the events
 * seen in *ret_events (0 when none). The caller loops, feeding
 * buf + consumed, until all bytes are consumed: a buffer holding several
 * pipelined requests takes one call per request. After HTTP_REQ_ERROR the
 * parser consumes nothing more until http_req_init(). HTTP_REQ_START is
 * reported by the call that consumed the request's first byte, so a caller
 * that timestamps it times the request from the read that brought that byte.
 */
size_t http_req_feed(struct http_req *p, const char *buf, size_t len,
		     unsigned *ret_events);

/* What a call to http_resp_feed() saw, as bits, in this order. */
#define HTTP_RESP_STATUS 0x01 /* the final status line is complete: status */
#define HTTP_RESP_DONE 0x02   /* the response is complete */
#define HTTP_RESP_ERROR 0x04  /* not an HTTP/1.x response: stop feeding */

struct http_resp {
	/* Output, valid from HTTP_RESP_STATUS until the next response. */
	uint16_t status;

	/* Private state. */
	uint8_t state;
	uint8_t idx;         /* bytes of "HTTP/1." or of the code matched */
	uint8_t flags;
	struct http_msg_state msg;
};

/* Reset a response parser to "expecting a new response". */
void http_resp_init(struct http_resp *p);

/*
 * Consume response bytes from buf[0..len) up to the end of the response
 * being written, an error, or the end of the buffer; same conventions as
 * http_req_feed(). `head` says the request being answered was HEAD. After
 * HTTP_RESP_DONE the parser expects the next response. A response framed by
 * the end of the connection never reports DONE; the caller ends it at close.
 */
size_t http_resp_feed(struct http_resp *p, const char *buf, size_t len,
		      bool head, unsigned *ret_events);

/*
 * True when closing the connection now leaves the response being written
 * complete: its body lasts until the close, or no byte of a response has
 * been fed since the last one ended, or the bytes were not HTTP. False when
 * the close cuts a response short (in its head, or before the end of a
 * Content-Length or chunked body).
 */
bool http_resp_ends_at_close(const struct http_resp *p);

/*
 * Account for n response bytes the caller cannot see (sendfile). Returns the
 * number of bytes accounted (<= n) up to the end of the response, like
 * http_resp_feed(); bytes outside a body are treated as opaque body bytes.
 */
size_t http_resp_skip(struct http_resp *p, uint64_t n, unsigned *ret_events);

/*
 * Write the templated form of path[0..len) (no query string) into out
 * (outsz bytes, NUL-terminated, truncated if needed) and return its length.
 * Segments that are all digits, a UUID (8-4-4-4-12 hex), or 16 or more hex
 * digits become ":id". An empty path becomes "/". Only the first
 * HTTP_TARGET_MAX bytes are templated; when the path goes on past them, the
 * segment they cut becomes ":id" too if what was kept of it could still be
 * the start of an id, so that no part of an id survives a long path. The
 * request parser makes exactly this of a request's path.
 */
size_t http_template_path(const char *path, size_t len, char *out,
			  size_t outsz);

#endif /* PROFSHIM_HTTP_H */

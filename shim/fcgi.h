/*
 * fcgi.h — incremental FastCGI delimiter for the shim's socket hooks.
 *
 * A FastCGI application server (php-fpm) accepts connections from its web
 * server, reads records and writes records back. This module follows both
 * directions of such a connection in whatever pieces the calls return, and
 * finds, per request:
 *
 *   - where it begins: the FCGI_BEGIN_REQUEST record the server reads;
 *   - its name, "METHOD /path", from REQUEST_METHOD and REQUEST_URI (or
 *     SCRIPT_NAME when there is no REQUEST_URI) in its FCGI_PARAMS stream,
 *     the path templated exactly like an HTTP request's (http.h), and
 *     whether profile=1|true|yes in REQUEST_URI's query or in QUERY_STRING
 *     asks for a manual profile;
 *   - the status of its answer: the Status: header among the CGI headers at
 *     the start of its FCGI_STDOUT stream, 200 when they end without one;
 *   - where it ends: the FCGI_END_REQUEST record the server writes, and
 *     whether that said the request was complete.
 *
 * Requests are told apart by their request id: records of several requests
 * may interleave (multiplexing), and a connection kept open (FCGI_KEEP_CONN)
 * carries one request after another. Padding, FCGI_ABORT_REQUEST and the
 * management records (request id 0: FCGI_GET_VALUES and its answer) are
 * followed and skipped. Name-value pairs may have 1- or 4-byte lengths and
 * be split across records and reads.
 *
 * The caller keeps one struct fcgi_req per request in flight, found by its
 * request id, and passes the one of the record being read or written: after
 * a call reports FCGI_IN_HEAD (FCGI_OUT_HEAD), a record's header is complete
 * and fcgi_in_id() (fcgi_out_id()) names its request; the caller calls again
 * with that request's state, even with no bytes left, and so on until the
 * next header.
 *
 * One FCGI_PARAMS stream is decoded at a time per connection: the stream of
 * a request that starts while another's is still open is skipped, and that
 * request is named unknown (endpoint_len 0). No web server sends two at
 * once (nginx and Apache do not multiplex; php-fpm refuses to).
 *
 * Contract for every function here, as in http.h: no allocation, no locks,
 * no stdio, no system calls, bounded work per byte, never reads outside
 * buf[0..len). They are called from the socket hooks (never from the signal
 * handler). Zero-initialised state is the same as the matching _init().
 * Only the method, the templated path and the status leave this module:
 * other parameters, query strings, headers and bodies are looked at byte by
 * byte and dropped.
 */
#ifndef PROFSHIM_FCGI_H
#define PROFSHIM_FCGI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

#define FCGI_VERSION_1 1
#define FCGI_HEADER_LEN 8

/* Record types (the FastCGI specification, section 8). */
enum fcgi_type {
	FCGI_BEGIN_REQUEST = 1,
	FCGI_ABORT_REQUEST = 2,
	FCGI_END_REQUEST = 3,
	FCGI_PARAMS = 4,
	FCGI_STDIN = 5,
	FCGI_STDOUT = 6,
	FCGI_STDERR = 7,
	FCGI_DATA = 8,
	FCGI_GET_VALUES = 9,
	FCGI_GET_VALUES_RESULT = 10,
	FCGI_UNKNOWN_TYPE = 11,
};

#define FCGI_RESPONDER 1         /* role of FCGI_BEGIN_REQUEST */
#define FCGI_REQUEST_COMPLETE 0  /* protocolStatus of FCGI_END_REQUEST */

/* Private: the framing of the records of one direction. */
struct fcgi_rec {
	uint16_t id;         /* request id of the record */
	uint16_t len;        /* content length */
	uint16_t left;       /* content bytes still to come */
	uint8_t pad;         /* padding bytes still to come */
	uint8_t type;
	uint8_t version;
	uint8_t got;         /* header bytes seen; FCGI_HEADER_LEN in the body */
	uint8_t started;     /* the record's start was acted on */
	uint8_t skip;        /* its content is skipped unread */
};

/*
 * What the delimiter keeps for one request in flight; the caller owns it
 * (zero it, or fcgi_req_init(), when the request begins).
 */
struct fcgi_req {
	/* Output: the code of its Status: header (100-999), 200 once its
	 * CGI headers ended without one, 0 before either. */
	uint16_t status;
	uint8_t flags;       /* FCGI_REQ_ABORTED, and private bits */
	uint8_t scan;        /* private: the Status: header scanner */
	uint16_t digits;     /* private: the status code being read */
};

/* struct fcgi_req.flags: the client sent FCGI_ABORT_REQUEST for it. */
#define FCGI_REQ_ABORTED 0x01

/* Starts the state of a request that begins. */
void fcgi_req_init(struct fcgi_req *r);

/*
 * What a call to fcgi_in_feed() saw, as bits of *ret_events. A call reports
 * one event at most, and stops there.
 */
#define FCGI_IN_HEAD 0x01   /* a record header is complete: see fcgi_in_id() */
#define FCGI_IN_BEGIN 0x02  /* FCGI_BEGIN_REQUEST for request `id` */
#define FCGI_IN_NAME 0x04   /* its FCGI_PARAMS ended: endpoint and manual */
#define FCGI_IN_ABORT 0x08  /* FCGI_ABORT_REQUEST for request `id` */
#define FCGI_IN_ERROR 0x10  /* not FastCGI, or malformed: stop feeding */

/* The state of the read direction of a connection. */
struct fcgi_in {
	/* Outputs. */
	uint16_t id;        /* the request of BEGIN, NAME and ABORT */
	bool detected;      /* the first record was a valid FCGI_BEGIN_REQUEST
	                       of role RESPONDER: the peer speaks FastCGI */
	bool manual;        /* with NAME: profile=1|true|yes was asked */
	uint8_t endpoint_len; /* with NAME: strlen(endpoint); 0 when unknown */
	/* With NAME and an endpoint_len above 0: "GET /users/:id". */
	char endpoint[HTTP_ENDPOINT_MAX];

	/* Private. */
	uint8_t state;
	uint8_t role_hi;     /* first byte of FCGI_BEGIN_REQUEST's role */
	uint16_t pid;        /* request whose FCGI_PARAMS are decoded, or 0 */
	uint8_t nv;          /* name-value pair decoder state */
	uint8_t lenb;        /* bytes of a 4-byte length still to come */
	uint8_t var;         /* variables the name may still be, or the value's */
	uint8_t nidx;        /* name bytes matched */
	uint32_t acc;        /* a length being read */
	uint32_t nlen;       /* name bytes still to come */
	uint32_t vlen;       /* value bytes still to come */
	uint8_t method_len;
	uint8_t method_ok;   /* a valid REQUEST_METHOD was read */
	bool want_manual;    /* profile=1|true|yes seen in the stream so far */
	uint8_t psrc;        /* what the path in endpoint comes from */
	uint8_t part;        /* path, authority, query or past the end */
	uint8_t scheme;      /* progress of "scheme://" (http_target.h) */
	uint16_t kept;       /* path bytes given to the templater */
	struct http_query query;
	struct http_tpl_state tpl;
	char method[HTTP_METHOD_MAX];
	struct fcgi_rec rec;
};

/* Resets the read direction to "expecting the first record". */
void fcgi_in_init(struct fcgi_in *p);

/*
 * Consumes bytes the server read, from buf[0..len), up to the first event or
 * the end of the buffer. Returns the count consumed (<= len; 0 with an
 * event that consumes nothing) and stores the event in *ret_events (0 when
 * none). r is the state of the request fcgi_in_id() names, or NULL when
 * there is none (the records of an unknown request are skipped). The caller
 * loops, feeding buf + consumed, while bytes remain, and once more after
 * FCGI_IN_HEAD even when none remain. FCGI_IN_BEGIN comes in the call that
 * follows the header of FCGI_BEGIN_REQUEST, so a caller that timestamps it
 * times the request from the read that completed that header. Before
 * `detected`, anything but a valid FCGI_BEGIN_REQUEST of role RESPONDER is
 * FCGI_IN_ERROR. After FCGI_IN_ERROR nothing more is consumed.
 */
size_t fcgi_in_feed(struct fcgi_in *p, struct fcgi_req *r, const char *buf,
		    size_t len, unsigned *ret_events);

/* The request id of the record being read, 0 between records. */
static inline uint16_t fcgi_in_id(const struct fcgi_in *p)
{
	return p->rec.got == FCGI_HEADER_LEN ? p->rec.id : 0;
}

/*
 * The request `id` ended (or was dropped): its FCGI_PARAMS, if they were
 * being decoded, will not be, and the next stream may be.
 */
void fcgi_in_forget(struct fcgi_in *p, uint16_t id);

/* What a call to fcgi_out_feed() saw: one event at most. */
#define FCGI_OUT_HEAD 0x01  /* a record header is complete: fcgi_out_id() */
#define FCGI_OUT_END 0x02   /* FCGI_END_REQUEST of fcgi_out_id() complete */
#define FCGI_OUT_ERROR 0x04 /* not FastCGI: stop feeding */

/* The state of the write direction of a connection. */
struct fcgi_out {
	/* Output, with FCGI_OUT_END: its protocolStatus. */
	uint8_t proto_status;

	/* Private. */
	uint8_t state;
	struct fcgi_rec rec;
};

/* Resets the write direction to "expecting a record". */
void fcgi_out_init(struct fcgi_out *p);

/*
 * Consumes bytes the server wrote, from buf[0..len), up to the first event
 * or the end of the buffer; same conventions as fcgi_in_feed(), with r the
 * state of the request fcgi_out_id() names (its Status: header is read from
 * its FCGI_STDOUT). FCGI_OUT_END is reported with the last content byte of
 * FCGI_END_REQUEST; its padding may follow.
 */
size_t fcgi_out_feed(struct fcgi_out *p, struct fcgi_req *r, const char *buf,
		     size_t len, unsigned *ret_events);

/*
 * Accounts for n written bytes the caller cannot see (sendfile): they can
 * only be content of the FCGI_STDOUT or FCGI_STDERR record being written
 * (a request's CGI headers end where its unseen bytes start, their Status:
 * unread); anything else is FCGI_OUT_ERROR. Returns the count accounted
 * (<= n), up to the end of that record's content.
 */
size_t fcgi_out_skip(struct fcgi_out *p, struct fcgi_req *r, uint64_t n,
		     unsigned *ret_events);

/* The request id of the record being written, 0 between records. */
static inline uint16_t fcgi_out_id(const struct fcgi_out *p)
{
	return p->rec.got == FCGI_HEADER_LEN ? p->rec.id : 0;
}

#endif /* PROFSHIM_FCGI_H */

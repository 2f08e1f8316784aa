/*
 * fcgi_feed.h — driving the FastCGI delimiter (shim/fcgi.h) the way the
 * connection layer does (shim/conn_fcgi.c), and logging what it finds: the
 * helpers of its unit test (test/unit/test_fcgi.c) and its fuzz target
 * (test/fuzz/fuzz_fcgi.c).
 *
 * A `struct sim` is one connection: the two directions' state and the
 * requests in flight, found by id. sim_in() and sim_out() feed one piece
 * read or written, following fcgi.h's protocol (after a *_HEAD event, call
 * again with the state of the request the record names), check what every
 * call must do whatever the input with FEED_CHECK(), and append the events
 * to a text log, one word each:
 *
 *   B<id>            FCGI_BEGIN_REQUEST: a request begins
 *   R<id>            ... for an id in flight: the older one ended unanswered
 *   D<id>            ... with no room left: dropped
 *   N<id>=<name>     its FCGI_PARAMS ended: its endpoint ("?" when unknown),
 *                    followed by "!" when a manual profile was asked
 *   A<id>            FCGI_ABORT_REQUEST for a request in flight
 *   E<id>=<status>   FCGI_END_REQUEST of a request in flight, followed by
 *                    "x" when it counts as aborted
 *   e<id>            FCGI_END_REQUEST of no request in flight
 *   X0 / X1          an error before / after the peer was found to speak
 *                    FastCGI (in), Y (out)
 *
 * FEED_CHECK() is check.h's CHECK() when check.h is included first, else
 * what the includer defined it as (the fuzz target: a crash).
 */
#ifndef PROFSHIM_FCGI_FEED_H
#define PROFSHIM_FCGI_FEED_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fcgi.h"

#if !defined(FEED_CHECK) && defined(PROFSHIM_CHECK_H)
#define FEED_CHECK(cond) CHECK(cond)
#endif
#ifndef FEED_CHECK
#error "include check.h, or define FEED_CHECK(), first"
#endif

#define SIM_MAX 16       /* requests in flight, as conn.h's CONN_QUEUE */
#define SIM_LOG 8192     /* bytes of log kept */

struct sim {
	struct fcgi_in in;
	struct fcgi_out out;
	bool used[SIM_MAX];
	uint16_t id[SIM_MAX];
	struct fcgi_req r[SIM_MAX];
	char log[SIM_LOG];
	size_t len;
	bool overflow;
	bool in_error, out_error;
};

static inline void sim_init(struct sim *s)
{
	memset(s, 0, sizeof(*s));
	fcgi_in_init(&s->in);
	fcgi_out_init(&s->out);
}

/* Appends a word to the log, a space before all but the first. */
static inline __attribute__((format(printf, 2, 3))) void
sim_log(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->overflow)
		return;
	if (s->len > 0 && s->len + 1 < SIM_LOG)
		s->log[s->len++] = ' ';
	va_start(ap, fmt);
	n = vsnprintf(s->log + s->len, SIM_LOG - s->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= SIM_LOG - s->len)
		s->overflow = true;
	else
		s->len += (size_t)n;
}

/* The slot of the request in flight with id `id`, or -1. */
static inline int sim_slot(const struct sim *s, uint16_t id)
{
	if (id == 0)
		return -1;
	for (int k = 0; k < SIM_MAX; k++)
		if (s->used[k] && s->id[k] == id)
			return k;
	return -1;
}

static inline void sim_drop(struct sim *s, int k)
{
	s->used[k] = false;
	fcgi_in_forget(&s->in, s->id[k]);
}

/* A request begins with FCGI_BEGIN_REQUEST for id. */
static inline void sim_begin(struct sim *s, uint16_t id)
{
	int k = sim_slot(s, id);

	FEED_CHECK(id != 0);
	if (k >= 0) {
		sim_log(s, "R%u", id);
		sim_drop(s, k);
	}
	for (k = 0; k < SIM_MAX && s->used[k]; k++)
		;
	if (k == SIM_MAX) {
		sim_log(s, "D%u", id);
		return;
	}
	s->used[k] = true;
	s->id[k] = id;
	fcgi_req_init(&s->r[k]);
	sim_log(s, "B%u", id);
}

/*
 * Checks an endpoint the read side reported: "METHOD path", the method of
 * method characters, the path not empty and without '?', space or control
 * bytes (it starts with '/' unless the target did not: the HTTP parser
 * keeps "GET x" for "GET x HTTP/1.1" too), and endpoint_len its length.
 */
static inline void sim_check_endpoint(const struct fcgi_in *in)
{
	const char *e = in->endpoint;
	size_t n = in->endpoint_len, i;

	if (n == 0)
		return;
	FEED_CHECK(n < HTTP_ENDPOINT_MAX && strlen(e) == n);
	for (i = 0; i < n && e[i] != ' '; i++)
		FEED_CHECK((e[i] >= 'A' && e[i] <= 'Z') || e[i] == '-' ||
			   e[i] == '_');
	FEED_CHECK(i > 0 && i < HTTP_METHOD_MAX && i + 1 < n);
	for (i++; i < n; i++)
		FEED_CHECK(e[i] != '?' && e[i] != ' ' &&
			   (unsigned char)e[i] >= 0x20 && e[i] != 0x7f);
}

/* Feeds buf[0..n), read by the server. Returns false after an error. */
static inline bool sim_in(struct sim *s, const char *buf, size_t n)
{
	unsigned ev;

	if (s->in_error)
		return false;
	do {
		int k = sim_slot(s, fcgi_in_id(&s->in));
		size_t used = fcgi_in_feed(&s->in, k >= 0 ? &s->r[k] : NULL,
					   buf, n, &ev);

		FEED_CHECK(used <= n);
		if (used > n)
			return false;
		buf += used;
		n -= used;
		/* One event a call; no progress only with one, or at the
		 * end of the buffer. */
		FEED_CHECK((ev & (ev - 1)) == 0);
		FEED_CHECK(used > 0 || ev != 0 || n == 0);
		if (ev & FCGI_IN_BEGIN)
			sim_begin(s, s->in.id);
		if (ev & FCGI_IN_NAME) {
			FEED_CHECK(k >= 0 && s->in.id == s->id[k]);
			sim_check_endpoint(&s->in);
			sim_log(s, "N%u=%s%s", s->in.id,
				s->in.endpoint_len ? s->in.endpoint : "?",
				s->in.manual ? "!" : "");
		}
		if (ev & FCGI_IN_ABORT) {
			FEED_CHECK(k >= 0 &&
				   (s->r[k].flags & FCGI_REQ_ABORTED));
			sim_log(s, "A%u", s->in.id);
		}
		if (ev & FCGI_IN_ERROR) {
			unsigned again = 0;

			sim_log(s, "X%d", s->in.detected);
			/* Nothing more is consumed after an error. */
			FEED_CHECK(fcgi_in_feed(&s->in, NULL, buf, n, &again) ==
				   0);
			FEED_CHECK(again == FCGI_IN_ERROR);
			s->in_error = true;
			return false;
		}
		if (used == 0 && ev == 0)
			break;
	} while (n > 0 || (ev & FCGI_IN_HEAD));
	return true;
}

/* Feeds buf[0..n), written by the server (buf NULL: n unseen bytes).
 * Returns false after an error. */
static inline bool sim_out(struct sim *s, const char *buf, size_t n)
{
	unsigned ev;

	if (s->out_error)
		return false;
	while (n > 0) {
		int k = sim_slot(s, fcgi_out_id(&s->out));
		struct fcgi_req *r = k >= 0 ? &s->r[k] : NULL;
		size_t used = buf ? fcgi_out_feed(&s->out, r, buf, n, &ev)
				  : fcgi_out_skip(&s->out, r, n, &ev);

		FEED_CHECK(used <= n);
		if (used > n)
			return false;
		if (buf)
			buf += used;
		n -= used;
		FEED_CHECK((ev & (ev - 1)) == 0);
		FEED_CHECK(used > 0 || ev != 0);
		if (r)
			FEED_CHECK(r->status == 0 ||
				   (r->status >= 100 && r->status <= 999));
		if (ev & FCGI_OUT_END) {
			uint16_t id = fcgi_out_id(&s->out);

			if (k >= 0) {
				bool aborted =
					(r->flags & FCGI_REQ_ABORTED) ||
					s->out.proto_status !=
						FCGI_REQUEST_COMPLETE;

				sim_log(s, "E%u=%u%s", id,
					r->status ? r->status : 200,
					aborted ? "x" : "");
				sim_drop(s, k);
			} else {
				sim_log(s, "e%u", id);
			}
		}
		if (ev & FCGI_OUT_ERROR) {
			sim_log(s, "Y");
			s->out_error = true;
			return false;
		}
		if (used == 0 && ev == 0)
			break;
	}
	return true;
}

#endif /* PROFSHIM_FCGI_FEED_H */

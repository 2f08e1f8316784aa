/*
 * fuzz_http.c — libFuzzer target for the HTTP/1.x delimiter (http.h).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishim \
 *         shim/http_*.c test/fuzz/fuzz_http.c -o fuzz_http
 *   ./fuzz_http test/fuzz/corpus_http
 *
 * Input: four control bytes, then the payload. The control bytes choose the
 * sizes of the pieces the payload is fed in (a size byte of 0xff means "the
 * rest"), whether the response answers a HEAD request, and the output size
 * given to http_template_path(). Every piece is copied into its own heap
 * block of exactly its size, so AddressSanitizer catches any read past it.
 *
 * Checked invariants:
 *   - a feed consumes at most what it was given, and something whenever it
 *     reports no error and was given something;
 *   - events come in order (START, LINE, DONE / STATUS, DONE), one call
 *     reports the events of one message at most, and nothing is consumed
 *     after an error;
 *   - the endpoint is NUL-terminated, starts with the method that was fed and
 *     a space, and holds no query, space or line break;
 *   - feeding in pieces gives exactly the events and outputs that feeding
 *     everything at once gives, and the same offsets for the events whose
 *     offset is exact however the input is split (DONE, ERROR);
 *   - the templated path of an origin-form target is exactly what
 *     http_template_path() makes of it (HTTP_TARGET_MAX bytes kept, the
 *     cut segment ":id" when it could still be one);
 *   - a truncated template is a prefix of the untruncated one.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define CTL_BYTES 4
#define LOG_MAX 4096

/*
 * Events in a log, one record per event bit. A response's events have the
 * codes of the request events that mean the same (its status line completes
 * its head, as a request line does).
 */
enum { EV_START = 1, EV_LINE, EV_DONE, EV_ERROR };
enum { RV_STATUS = EV_LINE, RV_DONE = EV_DONE, RV_ERROR = EV_ERROR };

/* One reported event, with what the parser exposed at that moment. */
struct rec {
	int ev;
	size_t at;
	char endpoint[HTTP_ENDPOINT_MAX];
	bool manual;
	bool head;
	uint16_t status;
};

struct log {
	size_t n;
	struct rec rec[LOG_MAX];
};

static struct log log_whole, log_pieces;

/* Stops the fuzzer with a crash that points at the broken invariant. */
#define ASSERT(cond)                                                          \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

/* Returns the size of piece number i: from the control bytes, or the rest. */
static size_t piece_size(const uint8_t *ctl, size_t i, size_t rest)
{
	uint8_t c = ctl[i % 3];

	if (c == 0xff || (size_t)c % 64 + 1 > rest)
		return rest;
	return (size_t)c % 64 + 1;
}

/* Returns a heap copy of s[0..n) of exactly n bytes (1 when n is 0). */
static char *exact_copy(const uint8_t *s, size_t n)
{
	char *d = malloc(n ? n : 1);

	ASSERT(d != NULL);
	if (n)
		memcpy(d, s, n);
	return d;
}

/* Appends an event to a log; overly long logs just stop growing. */
static struct rec *log_add(struct log *log, int ev, size_t at)
{
	struct rec *r;

	if (log->n >= LOG_MAX)
		return NULL;
	r = &log->rec[log->n++];
	memset(r, 0, sizeof(*r));
	r->ev = ev;
	r->at = at;
	return r;
}

/*
 * Checks the endpoint reported by HTTP_REQ_LINE for a request whose first
 * byte (the first method byte) is at payload offset start.
 */
static void check_endpoint(const struct http_req *p, const uint8_t *payload,
			   size_t len, size_t start)
{
	size_t n = strnlen(p->endpoint, HTTP_ENDPOINT_MAX), i;

	ASSERT(n < HTTP_ENDPOINT_MAX);
	for (i = 0; start + i < len && payload[start + i] != ' '; i++) {
		ASSERT(i < HTTP_METHOD_MAX - 1);
		ASSERT(p->endpoint[i] == (char)payload[start + i]);
	}
	ASSERT(i > 0 && p->endpoint[i] == ' ');
	ASSERT(p->head == (i == 4 && memcmp(p->endpoint, "HEAD", 4) == 0));
	for (i++; i < n; i++) {
		char c = p->endpoint[i];

		ASSERT(c != '?' && c != ' ' && c != '\r' && c != '\n');
	}
}

/*
 * A parser run() feeds: requests, or responses to a request that was HEAD
 * or not; and what its checks keep between events.
 */
struct subject {
	bool resp; /* a response parser, else a request parser */
	bool head;
	struct http_req req;
	struct http_resp rsp;
	size_t start; /* payload offset of the current request's first byte */
	int expect;   /* the event that must come next */
};

/* The event bits of a parser, in the order they happen, and their codes. */
struct events {
	unsigned bits[4];
	int n;
	int first; /* the code of bits[0]: EV_START, RV_STATUS */
	unsigned done, error;
};

static const struct events req_events = {
	{ HTTP_REQ_START, HTTP_REQ_LINE, HTTP_REQ_DONE, HTTP_REQ_ERROR }, 4,
	EV_START, HTTP_REQ_DONE, HTTP_REQ_ERROR,
};

static const struct events resp_events = {
	{ HTTP_RESP_STATUS, HTTP_RESP_DONE, HTTP_RESP_ERROR }, 3,
	RV_STATUS, HTTP_RESP_DONE, HTTP_RESP_ERROR,
};

/* Resets s to a fresh parser of its kind, expecting its first event. */
static void subject_init(struct subject *s)
{
	if (s->resp)
		http_resp_init(&s->rsp);
	else
		http_req_init(&s->req);
	s->start = 0;
	s->expect = s->resp ? RV_STATUS : EV_START;
}

/* Feeds buf[0..n) to the subject's parser once. */
static size_t subject_feed(struct subject *s, const char *buf, size_t n,
			   unsigned *ev)
{
	if (s->resp)
		return http_resp_feed(&s->rsp, buf, n, s->head, ev);
	return http_req_feed(&s->req, buf, n, ev);
}

/*
 * Copies into r what the parser exposes with event ev: a response's status
 * with every event, a request's endpoint, manual and head with its LINE.
 */
static void subject_record(const struct subject *s, int ev, struct rec *r)
{
	if (s->resp) {
		r->status = s->rsp.status;
	} else if (ev == EV_LINE) {
		memcpy(r->endpoint, s->req.endpoint, sizeof(r->endpoint));
		r->manual = s->req.manual;
		r->head = s->req.head;
	}
}

/*
 * Checks event ev (not an error), reported by a call that was given
 * payload[from..]: it is the one expected, and what the parser exposes
 * with it holds.
 */
static void subject_check(struct subject *s, int ev, const uint8_t *payload,
			  size_t len, size_t from)
{
	ASSERT(ev == s->expect);
	switch (ev) {
	case EV_START:
		/* Only CRs and LFs come before a request's first byte in a
		 * call. */
		s->start = from;
		while (payload[s->start] == '\r' || payload[s->start] == '\n')
			s->start++;
		s->expect = EV_LINE;
		break;
	case EV_LINE: /* RV_STATUS */
		if (s->resp) {
			ASSERT(s->rsp.status >= 100 && s->rsp.status <= 999 &&
			       (s->rsp.status >= 200 || s->rsp.status == 101));
		} else {
			check_endpoint(&s->req, payload, len, s->start);
			ASSERT(s->req.endpoint_len == strlen(s->req.endpoint));
		}
		s->expect = EV_DONE;
		break;
	default: /* EV_DONE */
		s->expect = s->resp ? RV_STATUS : EV_START;
		break;
	}
}

/*
 * Feeds one piece, buf[0..n) at payload offset off, to the subject until it
 * is consumed or an error is reported, checking every return and recording
 * the events in log. Returns false after an error.
 */
static bool feed_piece(struct subject *s, const char *buf, size_t n,
		       const uint8_t *payload, size_t len, size_t off,
		       struct log *log)
{
	const struct events *e = s->resp ? &resp_events : &req_events;
	size_t used = 0;

	while (used < n) {
		unsigned ev = 0, again = 0;
		size_t from = used;
		size_t c = subject_feed(s, buf + used, n - used, &ev);

		ASSERT(c <= n - used);
		used += c;
		if (ev == 0) {
			ASSERT(used == n);
			continue;
		}
		ASSERT(c > 0 || ev == e->error);
		ASSERT(!((ev & e->done) && (ev & e->error)));
		for (int k = 0; k < e->n; k++) {
			struct rec *r;

			if (!(ev & e->bits[k]))
				continue;
			r = log_add(log, e->first + k, off + used);
			if (r)
				subject_record(s, e->first + k, r);
			if (e->bits[k] == e->error)
				break;
			subject_check(s, e->first + k, payload, len,
				      off + from);
		}
		if (ev & e->error) {
			/* Nothing more is consumed after a request's error. */
			if (!s->resp) {
				ASSERT(subject_feed(s, buf, n, &again) == 0);
				ASSERT(again == HTTP_REQ_ERROR);
			}
			return false;
		}
	}
	return true;
}

/*
 * Feeds payload[0..len) to a fresh parser of the subject's kind in pieces
 * (whole when ctl is NULL), each in a heap block of exactly its size, and
 * records the events in log.
 */
static void run(const uint8_t *ctl, struct subject *s, const uint8_t *payload,
		size_t len, struct log *log)
{
	size_t off = 0, piece = 0;

	subject_init(s);
	log->n = 0;
	while (off < len) {
		size_t n = ctl ? piece_size(ctl, piece++, len - off) : len - off;
		char *buf = exact_copy(payload + off, n);
		bool ok = feed_piece(s, buf, n, payload, len, off, log);

		free(buf);
		off += n;
		if (!ok)
			return;
	}
}

/*
 * Checks that two logs hold the same events and outputs, and the same
 * offsets for the events at which a call stops (`exact_from` and later).
 */
static void check_same(const struct log *a, const struct log *b,
		       int exact_from)
{
	size_t i;

	ASSERT(a->n == b->n);
	for (i = 0; i < a->n; i++) {
		const struct rec *x = &a->rec[i], *y = &b->rec[i];

		ASSERT(x->ev == y->ev);
		ASSERT(x->ev < exact_from || x->at == y->at);
		ASSERT(strcmp(x->endpoint, y->endpoint) == 0);
		ASSERT(x->manual == y->manual && x->head == y->head);
		ASSERT(x->status == y->status);
	}
}

/*
 * Feeds the payload to a response parser with sendfile'd gaps between the
 * pieces, checking only the return values.
 */
static void run_resp_skips(const uint8_t *ctl, const uint8_t *payload,
			   size_t len)
{
	struct http_resp p;
	size_t off = 0, piece = 0;

	http_resp_init(&p);
	while (off < len) {
		size_t n = piece_size(ctl, piece++, len - off);
		char *buf = exact_copy(payload + off, n);
		size_t used = 0;
		unsigned ev = 0;
		uint64_t gap = (uint64_t)ctl[piece % 3] * 3;

		while (used < n && !(ev & HTTP_RESP_ERROR)) {
			size_t c = http_resp_feed(&p, buf + used, n - used,
						  false, &ev);

			ASSERT(c <= n - used);
			used += c;
		}
		free(buf);
		off += n;
		if (ev & HTTP_RESP_ERROR)
			return;
		while (gap > 0) {
			size_t c = http_resp_skip(&p, gap, &ev);

			ASSERT(c <= gap);
			if (ev & HTTP_RESP_ERROR)
				return;
			ASSERT(c > 0);
			gap -= c;
		}
	}
}

/* Checks http_template_path() on the payload with a chosen output size. */
static void check_template(const uint8_t *payload, size_t len, size_t outsz)
{
	static char full[8 * 65536], cut[256];
	char *in = exact_copy(payload, len);
	size_t nf, nc;

	if (len * 2 + 2 > sizeof(full)) {
		free(in);
		return;
	}
	nf = http_template_path(in, len, full, sizeof(full));
	ASSERT(nf == strlen(full) && nf >= 1 && nf <= len * 2 + 1);
	ASSERT(strchr(full, '?') == NULL);
	nc = http_template_path(in, len, cut, outsz);
	if (outsz == 0) {
		ASSERT(nc == 0);
	} else {
		ASSERT(nc < outsz && nc == strlen(cut));
		ASSERT(nc == (nf < outsz - 1 ? nf : outsz - 1));
		ASSERT(memcmp(cut, full, nc) == 0);
	}
	free(in);
}

/*
 * When the payload is an origin-form path (no space, control byte or '?'),
 * checks that the request parser templates it exactly like
 * http_template_path() (which keeps HTTP_TARGET_MAX bytes and cuts).
 */
static void check_path_agreement(const uint8_t *payload, size_t len)
{
	static char req[65536 + 64];
	char want[HTTP_ENDPOINT_MAX];
	struct http_req p;
	unsigned ev = 0;
	size_t i, n, used = 0;
	char *buf;

	if (len == 0 || payload[0] != '/' || len > 65536)
		return;
	for (i = 0; i < len; i++)
		if (payload[i] <= ' ' || payload[i] == 0x7f ||
		    payload[i] == '?')
			return;
	memcpy(req, "GET ", 4);
	memcpy(req + 4, payload, len);
	memcpy(req + 4 + len, " HTTP/1.1\r\n", 11);
	n = 4 + len + 11;
	buf = exact_copy((const uint8_t *)req, n);
	http_req_init(&p);
	while (used < n && !(ev & (HTTP_REQ_LINE | HTTP_REQ_ERROR)))
		used += http_req_feed(&p, buf + used, n - used, &ev);
	free(buf);
	ASSERT(ev == (HTTP_REQ_START | HTTP_REQ_LINE) && used == n);
	memcpy(want, "GET ", 4);
	http_template_path((const char *)payload, len, want + 4,
			   sizeof(want) - 4);
	ASSERT(strcmp(p.endpoint, want) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct subject subject;
	const uint8_t *ctl = data, *payload = data + CTL_BYTES;
	size_t len;

	if (size < CTL_BYTES)
		return 0;
	len = size - CTL_BYTES;

	for (int resp = 0; resp <= 1; resp++) {
		subject.resp = resp;
		subject.head = ctl[3] & 1;
		run(NULL, &subject, payload, len, &log_whole);
		run(ctl, &subject, payload, len, &log_pieces);
		check_same(&log_whole, &log_pieces, EV_DONE);
	}
	run_resp_skips(ctl, payload, len);

	check_template(payload, len, ctl[3] >> 1);
	check_path_agreement(payload, len);
	return 0;
}

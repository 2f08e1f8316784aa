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

/* Stops the fuzzer with a crash that points at the broken invariant. */
#define ASSERT(cond)                                                          \
	do {                                                                  \
		if (!(cond))                                                  \
			__builtin_trap();                                     \
	} while (0)

/* The event log, its record of each event and the loop that feeds a piece
 * and checks every call: shared with the unit tests. */
#define LOG_MAX 4096
#define FEED_CHECK(cond) ASSERT(cond)
#define FEED_CHECK_EQ(a, b) ASSERT((a) == (b))
#include "../unit/http_feed.h"

#define CTL_BYTES 4

static struct log log_whole, log_pieces;

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
 * A parser run() feeds (a subject of http_feed.h: requests, or responses to
 * a request that was HEAD or not), and what its checks keep between events.
 */
struct fuzz_subject {
	struct subject s; /* first: subject_check() is given &s */
	struct http_req req;
	struct http_resp rsp;
	const uint8_t *payload; /* what run() feeds, and its length */
	size_t len;
	size_t start; /* payload offset of the current request's first byte */
	int expect;   /* the event that must come next */
};

/* Resets s to a fresh parser of its kind, expecting its first event. */
static void fuzz_subject_init(struct fuzz_subject *s)
{
	subject_init(&s->s);
	s->start = 0;
	s->expect = s->s.resp ? RV_STATUS : EV_START;
}

/*
 * Checks event ev (not an error), reported by a call that was given
 * payload[from..]: it is the one expected, and what the parser exposes
 * with it holds. The subject's on_event.
 */
static void subject_check(struct subject *subject, int ev, size_t from)
{
	struct fuzz_subject *s = (struct fuzz_subject *)subject;

	ASSERT(ev == s->expect);
	switch (ev) {
	case EV_START:
		/* Only CRs and LFs come before a request's first byte in a
		 * call. */
		s->start = from;
		while (s->payload[s->start] == '\r' ||
		       s->payload[s->start] == '\n')
			s->start++;
		s->expect = EV_LINE;
		break;
	case EV_LINE: /* RV_STATUS */
		if (s->s.resp) {
			ASSERT(s->rsp.status >= 100 && s->rsp.status <= 999 &&
			       (s->rsp.status >= 200 || s->rsp.status == 101));
		} else {
			check_endpoint(&s->req, s->payload, s->len, s->start);
			ASSERT(s->req.endpoint_len == strlen(s->req.endpoint));
		}
		s->expect = EV_DONE;
		break;
	default: /* EV_DONE */
		s->expect = s->s.resp ? RV_STATUS : EV_START;
		break;
	}
}

/*
 * Feeds one piece, buf[0..n) at payload offset off, to the subject until it
 * is consumed or an error is reported, checking every return and recording
 * the events in log (feed_buf()). Returns false after an error.
 */
static bool feed_piece(struct fuzz_subject *s, const char *buf, size_t n,
		       size_t off, struct log *log)
{
	unsigned again = 0;

	if (feed_buf(&s->s, buf, n, off, log))
		return true;
	/* Nothing more is consumed after a request's error. */
	if (s->s.req) {
		ASSERT(subject_feed(&s->s, buf, n, &again) == 0);
		ASSERT(again == HTTP_REQ_ERROR);
	}
	return false;
}

/*
 * Feeds payload[0..len) to a fresh parser of the subject's kind in pieces
 * (whole when ctl is NULL), each in a heap block of exactly its size, and
 * records the events in log.
 */
static void run(const uint8_t *ctl, struct fuzz_subject *s,
		const uint8_t *payload, size_t len, struct log *log)
{
	size_t off = 0, piece = 0;

	fuzz_subject_init(s);
	s->payload = payload;
	s->len = len;
	log->n = 0;
	log->overflow = false;
	while (off < len) {
		size_t n = ctl ? piece_size(ctl, piece++, len - off) : len - off;
		char *buf = exact_copy(payload + off, n);
		bool ok = feed_piece(s, buf, n, off, log);

		free(buf);
		off += n;
		if (!ok)
			return;
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
	static struct fuzz_subject subject;
	const uint8_t *ctl = data, *payload = data + CTL_BYTES;
	size_t len;

	if (size < CTL_BYTES)
		return 0;
	len = size - CTL_BYTES;

	for (int resp = 0; resp <= 1; resp++) {
		subject.s = (struct subject){
			.req = resp ? NULL : &subject.req,
			.resp = resp ? &subject.rsp : NULL,
			.head = ctl[3] & 1,
			.on_event = subject_check,
		};
		run(NULL, &subject, payload, len, &log_whole);
		run(ctl, &subject, payload, len, &log_pieces);
		/* Events, outputs, and the offsets of DONE and ERROR. */
		ASSERT(log_events_same(&log_whole, &log_pieces));
	}
	run_resp_skips(ctl, payload, len);

	check_template(payload, len, ctl[3] >> 1);
	check_path_agreement(payload, len);
	return 0;
}

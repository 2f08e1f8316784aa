/*
 * test_http.c — unit tests for the incremental HTTP/1.x delimiter (http.h).
 *
 * Every feeding test copies each piece it feeds so that the piece ends
 * exactly where an unmapped guard page begins: any read past the end of a
 * buffer crashes the test instead of passing unnoticed.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "http.h"

/* ------------------------------------------------------------------------ */
/* Guard page                                                               */
/* ------------------------------------------------------------------------ */

#define GUARD_AREA (1u << 17) /* largest input a test may feed in one piece */

static char *guard_end; /* first byte of the PROT_NONE page */

/* Maps GUARD_AREA readable bytes followed by one unmapped page. */
static void guard_setup(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, GUARD_AREA + page, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (map == MAP_FAILED || mprotect(map + GUARD_AREA, page, PROT_NONE)) {
		printf("Bail out! cannot map the guard page\n");
		exit(1);
	}
	guard_end = map + GUARD_AREA;
}

/* Copies s[0..n) so that it ends at the guard page, and returns the copy. */
static const char *guarded(const char *s, size_t n)
{
	if (n > GUARD_AREA) {
		printf("Bail out! input of %zu bytes is too long\n", n);
		exit(1);
	}
	memcpy(guard_end - n, s, n);
	return guard_end - n;
}

/* ------------------------------------------------------------------------ */
/* Feeding helpers                                                          */
/* ------------------------------------------------------------------------ */

#define LOG_MAX 64

/*
 * Events in a log, one record per event (a call to a feed function may
 * report several): requests S L D E, responses S D E.
 */
enum { EV_NONE, EV_START, EV_LINE, EV_DONE, EV_ERROR };
enum { RV_NONE, RV_STATUS, RV_DONE, RV_ERROR };

/*
 * One event: what, where, and the outputs. `at` is the input offset after
 * the call that reported it: exact for every event when the input is fed a
 * byte at a time, and for DONE and ERROR however it is fed (a call stops
 * there); a START, LINE or STATUS is only known to lie within its call.
 */
struct rec {
	int ev;
	size_t at;
	char endpoint[HTTP_ENDPOINT_MAX];
	bool manual;
	bool head;
	unsigned status;
};

struct log {
	int n;
	bool overflow;
	struct rec rec[LOG_MAX];
};

/* Appends an event to the log. */
static struct rec *log_add(struct log *log, int ev, size_t at)
{
	struct rec *r;

	if (log->n >= LOG_MAX) {
		log->overflow = true;
		return NULL;
	}
	r = &log->rec[log->n++];
	memset(r, 0, sizeof(*r));
	r->ev = ev;
	r->at = at;
	return r;
}

/*
 * Feeds in[start..end) to a request parser as one guarded piece, looping
 * until it is consumed or an error is reported. Returns false after an error.
 */
static bool feed_req_piece(struct http_req *p, const char *in, size_t start,
			   size_t end, struct log *log)
{
	static const unsigned bits[] = { HTTP_REQ_START, HTTP_REQ_LINE,
					 HTTP_REQ_DONE, HTTP_REQ_ERROR };
	size_t n = end - start, off = 0;
	const char *g = guarded(in + start, n);

	while (off < n) {
		unsigned ev = 0;
		size_t c = http_req_feed(p, g + off, n - off, &ev);

		CHECK(c <= n - off);
		if (c > n - off)
			return false;
		off += c;
		if (ev == 0) {
			CHECK_EQ(off, n);
			continue;
		}
		CHECK(c > 0 || ev == HTTP_REQ_ERROR);
		/* Events of one call belong to one request: nothing after
		 * its end, and an error ends it too. */
		CHECK(!(ev & HTTP_REQ_DONE) || !(ev & HTTP_REQ_ERROR));
		for (int k = 0; k < 4; k++) {
			struct rec *r;

			if (!(ev & bits[k]))
				continue;
			r = log_add(log, EV_START + k, start + off);
			if (r && bits[k] == HTTP_REQ_LINE) {
				memcpy(r->endpoint, p->endpoint,
				       sizeof(r->endpoint));
				r->manual = p->manual;
				r->head = p->head;
				CHECK_EQ(p->endpoint_len, strlen(p->endpoint));
			}
		}
		if (ev & HTTP_REQ_ERROR)
			return false;
	}
	return true;
}

/* Feeds in[0..len) in pieces of `step` bytes (0: all at once). */
static void feed_req_step(struct http_req *p, const char *in, size_t len,
			  size_t step, struct log *log)
{
	size_t start = 0;

	memset(log, 0, sizeof(*log));
	if (step == 0)
		step = len;
	while (start < len) {
		size_t end = len - start < step ? len : start + step;

		if (!feed_req_piece(p, in, start, end, log))
			return;
		start = end;
	}
}

/* Feeds in[0..len) in two pieces split at `split`. */
static void feed_req_split(struct http_req *p, const char *in, size_t len,
			   size_t split, struct log *log)
{
	memset(log, 0, sizeof(*log));
	if (feed_req_piece(p, in, 0, split, log))
		feed_req_piece(p, in, split, len, log);
}

/* Feeds a NUL-terminated request to a fresh parser all at once. */
static void req_run(struct http_req *p, const char *in, struct log *log)
{
	http_req_init(p);
	feed_req_step(p, in, strlen(in), 0, log);
}

/* Same as feed_req_piece() for responses, with the request's HEAD flag. */
static bool feed_resp_piece(struct http_resp *p, const char *in, size_t start,
			    size_t end, bool head, struct log *log)
{
	static const unsigned bits[] = { HTTP_RESP_STATUS, HTTP_RESP_DONE,
					 HTTP_RESP_ERROR };
	size_t n = end - start, off = 0;
	const char *g = guarded(in + start, n);

	while (off < n) {
		unsigned ev = 0;
		size_t c = http_resp_feed(p, g + off, n - off, head, &ev);

		CHECK(c <= n - off);
		if (c > n - off)
			return false;
		off += c;
		if (ev == 0) {
			CHECK_EQ(off, n);
			continue;
		}
		CHECK(c > 0 || ev == HTTP_RESP_ERROR);
		CHECK(!(ev & HTTP_RESP_DONE) || !(ev & HTTP_RESP_ERROR));
		for (int k = 0; k < 3; k++) {
			struct rec *r;

			if (!(ev & bits[k]))
				continue;
			r = log_add(log, RV_STATUS + k, start + off);
			if (r)
				r->status = p->status;
		}
		if (ev & HTTP_RESP_ERROR)
			return false;
	}
	return true;
}

/* Feeds in[0..len) to a response parser in pieces of `step` (0: whole). */
static void feed_resp_step(struct http_resp *p, const char *in, size_t len,
			   size_t step, bool head, struct log *log)
{
	size_t start = 0;

	memset(log, 0, sizeof(*log));
	if (step == 0)
		step = len;
	while (start < len) {
		size_t end = len - start < step ? len : start + step;

		if (!feed_resp_piece(p, in, start, end, head, log))
			return;
		start = end;
	}
}

/* Feeds a NUL-terminated response to a fresh parser all at once. */
static void resp_run(struct http_resp *p, const char *in, bool head,
		     struct log *log)
{
	http_resp_init(p);
	feed_resp_step(p, in, strlen(in), 0, head, log);
}

/*
 * Returns true when two logs hold the same events with the same outputs,
 * and the same offsets where those are exact in both (end of a request or
 * response, error). `resp` says the logs are of responses.
 */
static bool log_same_as(const struct log *a, const struct log *b, bool resp)
{
	int i;

	if (a->n != b->n || a->overflow || b->overflow)
		return false;
	for (i = 0; i < a->n; i++) {
		const struct rec *x = &a->rec[i], *y = &b->rec[i];
		bool exact = resp ? x->ev >= RV_DONE : x->ev >= EV_DONE;

		if (x->ev != y->ev || (exact && x->at != y->at) ||
		    strcmp(x->endpoint, y->endpoint) != 0 ||
		    x->manual != y->manual || x->head != y->head ||
		    x->status != y->status)
			return false;
	}
	return true;
}

static bool log_same(const struct log *a, const struct log *b)
{
	return log_same_as(a, b, false);
}

static bool log_same_resp(const struct log *a, const struct log *b)
{
	return log_same_as(a, b, true);
}

/* Returns the events of a log as a string: S L D E for requests. */
static const char *req_events(const struct log *log)
{
	static char s[LOG_MAX + 1];
	int i;

	for (i = 0; i < log->n; i++)
		s[i] = "NSLDE"[log->rec[i].ev];
	s[log->n] = '\0';
	return s;
}

/* Returns the events of a log as a string: S D E for responses. */
static const char *resp_events(const struct log *log)
{
	static char s[LOG_MAX + 1];
	int i;

	for (i = 0; i < log->n; i++)
		s[i] = "NSDE"[log->rec[i].ev];
	s[log->n] = '\0';
	return s;
}

/* Returns the endpoint reported by the k-th HTTP_REQ_LINE of a log. */
static const char *line_endpoint(const struct log *log, int k)
{
	int i;

	for (i = 0; i < log->n; i++)
		if (log->rec[i].ev == EV_LINE && k-- == 0)
			return log->rec[i].endpoint;
	return "(no line)";
}

/* Returns the manual flag of the k-th HTTP_REQ_LINE of a log. */
static bool line_manual(const struct log *log, int k)
{
	int i;

	for (i = 0; i < log->n; i++)
		if (log->rec[i].ev == EV_LINE && k-- == 0)
			return log->rec[i].manual;
	return false;
}

/* Returns the endpoint a single request gets, or "(error)". */
static const char *endpoint_of(const char *req)
{
	static struct http_req p;
	static struct log log;

	req_run(&p, req, &log);
	if (log.n >= 2 && log.rec[1].ev == EV_LINE)
		return log.rec[1].endpoint;
	return "(error)";
}

/* Returns the manual flag a single request gets. */
static bool manual_of(const char *req)
{
	static struct http_req p;
	static struct log log;

	req_run(&p, req, &log);
	return log.n >= 2 && log.rec[1].ev == EV_LINE &&
	       log.rec[1].manual;
}

/* Returns the events a single request input produces. */
static const char *events_of(const char *req)
{
	static struct http_req p;
	static struct log log;

	req_run(&p, req, &log);
	return req_events(&log);
}

/* Returns the events a single response input produces. */
static const char *resp_events_of(const char *resp, bool head)
{
	static struct http_resp p;
	static struct log log;

	resp_run(&p, resp, head, &log);
	return resp_events(&log);
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static void test_simple_get(void)
{
	static const char in[] = "GET /users/123?x=1 HTTP/1.1\r\n"
				 "Host: example.com\r\n"
				 "\r\n";
	struct http_req p;
	struct log log;

	req_run(&p, in, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_EQ(log.rec[2].at, strlen(in));
	CHECK_STR(log.rec[1].endpoint, "GET /users/:id");
	CHECK(!log.rec[1].manual);
	CHECK(!log.rec[1].head);
	/* The outputs stay valid after DONE, until the next START. */
	CHECK_STR(p.endpoint, "GET /users/:id");
	CHECK_EQ(p.endpoint_len, strlen("GET /users/:id"));

	/* A byte at a time, each event comes with the byte that causes it:
	 * START with the first, LINE with the request line's LF. */
	http_req_init(&p);
	feed_req_step(&p, in, strlen(in), 1, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_EQ(log.rec[0].at, 1);
	CHECK_EQ(log.rec[1].at, strlen("GET /users/123?x=1 HTTP/1.1\r\n"));
	CHECK_EQ(log.rec[2].at, strlen(in));
}

static void test_zero_init_and_empty_feed(void)
{
	static const char in[] = "GET /a HTTP/1.0\n\n";
	struct http_req p;
	struct http_resp r;
	struct log log;
	unsigned ev = HTTP_REQ_ERROR;
	unsigned rev = HTTP_RESP_ERROR;

	memset(&p, 0, sizeof(p));
	CHECK_EQ(http_req_feed(&p, guarded("", 0), 0, &ev), 0);
	CHECK_EQ(ev, 0);
	feed_req_step(&p, in, strlen(in), 0, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_STR(line_endpoint(&log, 0), "GET /a");

	memset(&r, 0, sizeof(r));
	CHECK_EQ(http_resp_feed(&r, guarded("", 0), 0, false, &rev), 0);
	CHECK_EQ(rev, 0);
	feed_resp_step(&r, "HTTP/1.1 204 No Content\r\n\r\n", 27, 0, false,
		       &log);
	CHECK_STR(resp_events(&log), "SD");
	CHECK_EQ(r.status, 204);
}

static void test_keep_alive_two(void)
{
	static const char in[] = "GET /a/1 HTTP/1.1\r\nHost: x\r\n\r\n"
				 "GET /b/2 HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t first = strlen(in) / 2;
	struct http_req p;
	struct log log;

	req_run(&p, in, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	/* One call stops at the end of a request: the second one's events
	 * come from the next call. */
	CHECK_EQ(log.rec[2].at, first);
	CHECK_EQ(log.rec[3].at, strlen(in));
	CHECK_STR(line_endpoint(&log, 0), "GET /a/:id");
	CHECK_STR(line_endpoint(&log, 1), "GET /b/:id");
	CHECK_EQ(log.rec[5].at, strlen(in));
}

static const char pipelined[] =
	"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
	"POST /two/42 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"
	"HEAD /three?profile=yes HTTP/1.1\r\n\r\n";

static void test_pipelining_three(void)
{
	struct http_req p;
	struct log log;

	req_run(&p, pipelined, &log);
	CHECK_STR(req_events(&log), "SLDSLDSLD");
	CHECK_STR(line_endpoint(&log, 0), "GET /one");
	CHECK_STR(line_endpoint(&log, 1), "POST /two/:id");
	CHECK_STR(line_endpoint(&log, 2), "HEAD /three");
	CHECK(!line_manual(&log, 0));
	CHECK(!line_manual(&log, 1));
	CHECK(line_manual(&log, 2));
	CHECK(log.rec[7].head);
	CHECK(!log.rec[4].head);
	CHECK_EQ(log.rec[5].at, strlen("GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
				       "POST /two/42 HTTP/1.1\r\n"
				       "Content-Length: 5\r\n\r\nhello"));
	CHECK_EQ(log.rec[8].at, strlen(pipelined));
}

static const char mixed[] =
	"\r\nPOST /upload/0123456789abcdef HTTP/1.1\r\n"
	"Host: x\r\nTransfer-Encoding: gzip, Chunked\r\n"
	"Content-Length: 99\r\n\r\n"
	"4;name=value\r\nWiki\r\n5 \r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"
	"\r\nGET /users/550e8400-e29b-41d4-a716-446655440000/ HTTP/1.1\n"
	"content-length:3\n\nabc"
	"GET /x?profile=TRUE HTTP/1.1\r\n\r\n";

static void test_one_byte_at_a_time(void)
{
	struct http_req p;
	struct log whole, bytes;
	size_t step, len = strlen(mixed);

	req_run(&p, mixed, &whole);
	CHECK_STR(req_events(&whole), "SLDSLDSLD");
	CHECK_STR(line_endpoint(&whole, 0), "POST /upload/:id");
	CHECK_STR(line_endpoint(&whole, 1), "GET /users/:id/");
	CHECK_STR(line_endpoint(&whole, 2), "GET /x");
	CHECK(line_manual(&whole, 2));

	http_req_init(&p);
	feed_req_step(&p, mixed, len, 1, &bytes);
	CHECK(log_same(&whole, &bytes));
	CHECK_EQ(bytes.rec[0].at, 3); /* the leading CRLF is not a request */
	for (step = 2; step <= len; step++) {
		http_req_init(&p);
		feed_req_step(&p, mixed, len, step, &bytes);
		CHECK(log_same(&whole, &bytes));
	}
}

/*
 * The fast paths (whole lines at once) and the byte-at-a-time path must
 * agree on every input: each input here is fed whole, one byte at a time,
 * and in two pieces split at every offset, and the event logs must be
 * identical. The inputs are the forms where a fast path must step aside.
 */
static const char *const diff_requests[] = {
	"GET /a/1 HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /a/1 HTTP/1.1\n\n",
	"GET /a/1 HTTP/1.1\r\r\r\nHost: x\r\n\r\n",
	"GET /a HTTP/1.1 \r\n\r\n",
	"GET /a HTTP/1.12\r\n\r\n",
	"GET /a HTTP/2.0\r\n\r\n",
	"GET  /a HTTP/1.1\r\n\r\n",
	"GET http://h/x/7?profile=1 HTTP/1.1\r\n\r\n",
	"GET * HTTP/1.1\r\n\r\n",
	"OPTIONS-LONG-METHOD /x HTTP/1.1\r\n\r\n",
	"GET-_ /x HTTP/1.1\r\n\r\n",
	"HEAD /x HTTP/1.1\r\n\r\n",
	"GET /x\x01y HTTP/1.1\r\n\r\n",
	"GET /x?a\x7f HTTP/1.1\r\n\r\n",
	"GET /x?profile=1 HTTP/1.1\r\n\r\n",
	"GET /x?PROFILE=True&b=2 HTTP/1.1\r\n\r\n",
	"GET /x?a=1&profile=yes HTTP/1.1\r\n\r\n",
	"GET /x?profile=1x HTTP/1.1\r\n\r\n",
	"GET /x?profile HTTP/1.1\r\n\r\n",
	"GET /x?profile= HTTP/1.1\r\n\r\n",
	"GET /x?profiles=1 HTTP/1.1\r\n\r\n",
	"GET /x?profile=1=1 HTTP/1.1\r\n\r\n",
	"GET /x?&&profile=1& HTTP/1.1\r\n\r\n",
	"GET /x?q=?profile=1 HTTP/1.1\r\n\r\n",
	"GET /x?profile=yes?x HTTP/1.1\r\n\r\n",
	"GET /users/123e4567-e89b-12d3-a456-426614174000/x HTTP/1.1\r\n\r\n",
	"GET /0123456789abcdef0123/x//y/ HTTP/1.1\r\n\r\n",
	"GET /12/ab/123abc/deadbeefdeadbeef0/deadbeefdeadbeeg HTTP/1.1\r\n\r\n",
	"GET /a/123e4567-e89b-12d3-a456-42661417400/123e4567-e89b-12d3-a456-4266141740001 HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\n",
	"GET /7 HTTP/1.1\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\ncontent-length:3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nCONTENT-LENGTH: \t3 \t\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"POST /p HTTP/1.1\r\nContent-Length: 3,3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: \r3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 000000000000000000003\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length:\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Length : 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Lengthy: 3\r\n\r\n",
	"POST /p HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nab",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encodings: chunked\r\nContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\r\nX: 1\r\n folded: 2\r\nContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\r\n: empty\r\nno colon\r\nContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\r\n\rContent-Length: 1\r\n\r\nz",
	"POST /p HTTP/1.1\nContent-Length: 1\n\nzGET /q HTTP/1.0\n\n",
	"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b/2 HTTP/1.1\r\nHost: x\r\n\r\n",
	"\r\n\r\nGET /a HTTP/1.1\r\n\r\n",
	/* Paths, queries and lines across the sixteen-byte blocks the fast
	 * paths scan, ids on both sides of a block edge, plain paths longer
	 * than the endpoint or HTTP_TARGET_MAX. */
	"GET /abcdefghijklmn/x HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnopqrstuvwxyz/0123/xyz HTTP/1.1\r\n\r\n",
	"GET /abcdefghijkl/12/abcdefghijklm/34 HTTP/1.1\r\n\r\n",
	"GET /abcdefabcdefabcd/abcdefabcdefabcdef HTTP/1.1\r\n\r\n",
	"GET /a/550e8400-e29b-41d4-a716-446655440000/b HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnop?qrstuvwxyz=1&profile=yes HTTP/1.1\r\n\r\n",
	"GET /a?bcdefghijklmnopqrstuvwxyz0123456789&profile=1 HTTP/1.1\r\n\r\n",
	"GET /a?b\x01" "cdefghijklmnopqrstuvwxyz HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnopqrstuvwxyz\x7f HTTP/1.1\r\n\r\n",
	"GET /abcdefghijklmnopqrstuvwxyz HTTP/1.1\r\r\n\r\n",
	"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n",
	"GET /a/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/1 HTTP/1.1\r\n\r\n",
	"PROPPATCHABCDEF /x HTTP/1.1\r\n\r\n",
	"PROPPATCHABCDEFG /x HTTP/1.1\r\n\r\n",
	"GET /x HTTP/1.1\r\nX-Long-Header-Name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 2\r\n\r\nokGET /y HTTP/1.1\r\n\r\n",
};

static const char *const diff_responses[] = {
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\nContent-Length: 2\n\nok",
	"HTTP/1.1 200\r\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200\rX\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 099 OK\r\n\r\n",
	"HTTP/1.1  200 OK\r\n\r\n",
	"HTTP/1.x 200 OK\r\n\r\n",
	"HTTP/2 200 OK\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 101 Switching\r\n\r\nanything",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Type: a\r\nContent-Length: 1\r\nCache-Control: x\r\n\r\nzHTTP/1.1 404 Nope\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nzz",
	"HTTP/1.1 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 200 A reason phrase longer than sixteen bytes\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\nContent-Length: 0\n\n",
	"HTTP/1.1 200X\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\rContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nServer: a-server-name-of-some-length/1.2.3\r\nDate: Sat, 21 Nov 2026 10:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 17\r\nConnection: keep-alive\r\n\r\n{\"ok\": true, \"n\":1}",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
};

static void diff_one_request(const char *in)
{
	size_t len = strlen(in), k;
	struct http_req p;
	struct log whole, other;

	http_req_init(&p);
	feed_req_step(&p, in, len, 0, &whole);
	http_req_init(&p);
	feed_req_step(&p, in, len, 1, &other);
	if (!log_same(&whole, &other))
		printf("# request fed byte by byte differs: %s\n", in);
	CHECK(log_same(&whole, &other));
	for (k = 1; k < len; k++) {
		http_req_init(&p);
		feed_req_split(&p, in, len, k, &other);
		if (!log_same(&whole, &other))
			printf("# request split at %zu differs: %s\n", k, in);
		CHECK(log_same(&whole, &other));
	}
}

static void diff_one_response(const char *in, bool head)
{
	size_t len = strlen(in), k;
	struct http_resp p;
	struct log whole, other;

	http_resp_init(&p);
	feed_resp_step(&p, in, len, 0, head, &whole);
	for (k = 1; k <= len; k++) {
		/* k == len: one byte at a time; otherwise split at k. */
		http_resp_init(&p);
		memset(&other, 0, sizeof(other));
		if (k == len)
			feed_resp_step(&p, in, len, 1, head, &other);
		else if (feed_resp_piece(&p, in, 0, k, head, &other))
			feed_resp_piece(&p, in, k, len, head, &other);
		if (!log_same_resp(&whole, &other))
			printf("# response (k=%zu) differs: %s\n", k, in);
		CHECK(log_same_resp(&whole, &other));
	}
}

static void test_fast_paths_agree(void)
{
	size_t i;

	for (i = 0; i < sizeof(diff_requests) / sizeof(diff_requests[0]); i++)
		diff_one_request(diff_requests[i]);
	for (i = 0; i < sizeof(diff_responses) / sizeof(diff_responses[0]); i++) {
		diff_one_response(diff_responses[i], false);
		diff_one_response(diff_responses[i], true);
	}
}

/*
 * The request fast path copies "METHOD /path" whole, in moves of 16, 8, 4
 * and 1 bytes depending on its length: every length up to past the
 * endpoint's capacity, for GET (matched in one compare) and other methods,
 * gives what the byte-at-a-time path gives, split anywhere. Content-Length
 * values in and around their usual form (one space, at most 18 digits)
 * agree the same way, for requests and responses.
 */
static void test_fast_lengths(void)
{
	static const char *const methods[] = { "GET", "PUT", "X", "GETX" };
	static const char *const lengths[] = {
		": 3", ":3", ":  3", ": 3 ", ": 03", ":\t3", ": ",
		": 123456789012345678", ": 1234567890123456789", ": 3x",
		": 3 3", ": 4\r", ":",
	};
	char req[400], path[200];
	size_t m, n, i;

	for (m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
		for (n = 1; n < 140; n++) {
			memset(path, 'z', n); /* not hex: never an id */
			path[0] = '/';
			path[n] = '\0';
			(void)snprintf(req, sizeof(req),
				       "%s %s HTTP/1.1\r\nHost: h\r\n\r\n",
				       methods[m], path);
			diff_one_request(req);
			if (strlen(methods[m]) + 1 + n <= HTTP_ENDPOINT_MAX - 1 &&
			    n <= HTTP_TARGET_MAX) {
				char want[HTTP_ENDPOINT_MAX];

				(void)snprintf(want, sizeof(want), "%s %s",
					       methods[m], path);
				CHECK_STR(endpoint_of(req), want);
			}
		}
	}
	for (i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
		(void)snprintf(req, sizeof(req),
			       "POST /p HTTP/1.1\r\nContent-Length%s\r\n\r\nabc",
			       lengths[i]);
		diff_one_request(req);
		(void)snprintf(req, sizeof(req),
			       "HTTP/1.1 200 OK\r\nContent-Length%s\r\n\r\nabc",
			       lengths[i]);
		diff_one_response(req, false);
	}
	CHECK_STR(events_of("POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
		  events_of("POST /p HTTP/1.1\r\nContent-Length:3\r\n\r\nabc"));
}

static void test_post_body_split(void)
{
	static const char in[] = "POST /items HTTP/1.1\r\n"
				 "Content-Length:  12 \r\n\r\n"
				 "hello, world";
	size_t len = strlen(in), k;
	struct http_req p;
	struct log whole, split;

	req_run(&p, in, &whole);
	CHECK_STR(req_events(&whole), "SLD");
	CHECK_EQ(whole.rec[2].at, len);
	for (k = 0; k <= len; k++) {
		http_req_init(&p);
		feed_req_split(&p, in, len, k, &split);
		CHECK(log_same(&whole, &split));
	}
	/* Without the last body byte the request is not done. */
	http_req_init(&p);
	feed_req_step(&p, in, len - 1, 0, &split);
	CHECK_STR(req_events(&split), "SL");
}

static const char chunked[] =
	"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
	"1a;ext=1;other=\"x\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
	"A\r\n0123456789\r\n"
	"000\r\nTrailer-One: a\r\nTrailer-Two: b\r\n\r\n"
	"GET /next HTTP/1.1\r\n\r\n";

static void test_chunked_every_split(void)
{
	size_t len = strlen(chunked), k, j;
	struct http_req p;
	struct log whole, split;

	req_run(&p, chunked, &whole);
	CHECK_STR(req_events(&whole), "SLDSLD");
	CHECK_EQ(whole.rec[2].at, strlen(chunked) - strlen("GET /next "
							   "HTTP/1.1\r\n\r\n"));
	CHECK_STR(line_endpoint(&whole, 1), "GET /next");
	for (k = 0; k <= len; k++) {
		http_req_init(&p);
		feed_req_split(&p, chunked, len, k, &split);
		CHECK(log_same(&whole, &split));
	}
	/* Three pieces: every pair of split points. */
	for (k = 0; k <= len; k += 3) {
		for (j = k; j <= len; j += 5) {
			memset(&split, 0, sizeof(split));
			http_req_init(&p);
			if (feed_req_piece(&p, chunked, 0, k, &split) &&
			    feed_req_piece(&p, chunked, k, j, &split))
				feed_req_piece(&p, chunked, j, len, &split);
			CHECK(log_same(&whole, &split));
		}
	}
}

static void test_chunked_framing_errors(void)
{
	static const char head[] =
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char *const bad[] = {
		"zz\r\n",                     /* not hex */
		"\r\n",                       /* empty size */
		";ext\r\n",                   /* extension without a size */
		"-1\r\n",                     /* sign */
		"5\rX",                       /* CR without LF */
		"5 x\r\n",                    /* junk after the size */
		"5x\r\n",                     /* junk right after the size */
		"5\r\nhelloX",                /* no CRLF after the data */
		"5\r\nhello\rX",              /* CR without LF after the data */
		"5\r\nhello\r\r\n",          /* two CRs after the data */
		"10000000000000000\r\n",      /* 17 hex digits: too big */
	};
	char in[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(in, head);
		strcat(in, bad[i]);
		CHECK_STR(events_of(in), "SLE");
	}
	strcpy(in, head);
	strcat(in, "0000000000000000000000000005\r\nhello\r\n0\r\n\r\n");
	CHECK_STR(events_of(in), "SLD");
	/* Lenient but unambiguous: bare LF, whitespace before ';' or the end. */
	strcpy(in, head);
	strcat(in, "5\nhello\n5 \t ;x\r\nhello\r\n5  \nhello\r\n0 \n\n");
	CHECK_STR(events_of(in), "SLD");
}

static void test_non_http(void)
{
	static const char *const bad[] = {
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"get / HTTP/1.1\r\n\r\n",
		" GET / HTTP/1.1\r\n\r\n",
		"GET\t/ HTTP/1.1\r\n\r\n",
		"ABCDEFGHIJKLMNOP / HTTP/1.1\r\n\r\n", /* 16-byte method */
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/2\r\n\r\n",
		"GET / HTTP/1.x\r\n\r\n",
		"GET /\r\n",                          /* HTTP/0.9 */
		"GET  / HTTP/1.1\r\n\r\n",            /* empty target */
		"GET /a\tb HTTP/1.1\r\n\r\n",         /* control byte */
		"GET /a?\x7f HTTP/1.1\r\n\r\n",       /* DEL in the query */
		"GET / HTTP/1.1 \r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: \r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	};
	size_t i;
	struct http_req p;
	unsigned ev;

	CHECK_STR(events_of(bad[0]), "E");
	CHECK_STR(events_of(bad[1]), "E");
	CHECK_STR(events_of(bad[2]), "E");
	CHECK_STR(events_of(bad[3]), "SE");
	CHECK_STR(events_of(bad[4]), "SE");
	for (i = 5; i < 13; i++)
		CHECK_STR(events_of(bad[i]), "SE");
	for (i = 13; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_STR(events_of(bad[i]), "SLE");

	/* After an error nothing more is consumed, until init. */
	http_req_init(&p);
	CHECK_EQ(http_req_feed(&p, guarded("xyz", 3), 3, &ev), 1);
	CHECK_EQ(ev, HTTP_REQ_ERROR);
	CHECK_EQ(http_req_feed(&p, guarded("GET", 3), 3, &ev), 0);
	CHECK_EQ(ev, HTTP_REQ_ERROR);
	http_req_init(&p);
	CHECK_EQ(http_req_feed(&p, guarded("GET", 3), 3, &ev), 3);
	CHECK_EQ(ev, HTTP_REQ_START);

	/* A NUL in the target is an error, not a shorter endpoint; the error
	 * comes with the NUL, and nothing after it is consumed. */
	http_req_init(&p);
	CHECK_EQ(http_req_feed(&p, guarded("GET /a\0b HTTP/1.1\r\n", 20), 20,
			       &ev), 7);
	CHECK_EQ(ev, HTTP_REQ_START | HTTP_REQ_ERROR);
	CHECK_EQ(http_req_feed(&p, guarded("b HTTP/1.1\r\n", 13), 13, &ev), 0);
	CHECK_EQ(ev, HTTP_REQ_ERROR);

	/* Bytes beyond ASCII are kept verbatim. */
	CHECK_STR(endpoint_of("GET /caf\xc3\xa9/1 HTTP/1.1\r\n\r\n"),
		  "GET /caf\xc3\xa9/:id");

	/* The largest accepted values. */
	CHECK_STR(events_of("GET / HTTP/1.1\r\n"
			    "Content-Length: 9223372036854775807\r\n\r\n"),
		  "SL");
	CHECK_STR(events_of("ABCDEFGHIJKLMN_ / HTTP/1.1\r\n\r\n"), "SLD");
	CHECK_STR(events_of("GET / HTTP/1.1\r\nContent-Length: 0\r\n"
			    "content-length: 0\r\n\r\n"),
		  "SLD");
}

static void test_leading_crlf(void)
{
	static const char in[] = "\r\n\r\nGET /a HTTP/1.1\r\n\r\n"
				 "\r\n\nGET /b HTTP/1.1\r\n\r\n\r\n";
	struct http_req p;
	struct log log;
	unsigned ev;

	req_run(&p, in, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	http_req_init(&p);
	feed_req_step(&p, in, strlen(in), 1, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	CHECK_EQ(log.rec[0].at, 5);
	CHECK_EQ(log.rec[3].at, strlen("\r\n\r\nGET /a HTTP/1.1\r\n\r\n"
				       "\r\n\nG"));
	CHECK_STR(line_endpoint(&log, 1), "GET /b");

	/* CRLF alone starts nothing. */
	http_req_init(&p);
	CHECK_EQ(http_req_feed(&p, guarded("\r\n\r\n", 4), 4, &ev), 4);
	CHECK_EQ(ev, 0);
}

static void test_profile_param(void)
{
	CHECK(manual_of("GET /a?profile=1 HTTP/1.1\r\n\r\n"));
	CHECK(manual_of("GET /a?a=b&PROFILE=TRUE HTTP/1.1\r\n\r\n"));
	CHECK(manual_of("GET /a?a=b&PROFILE=True&c=d HTTP/1.1\r\n\r\n"));
	CHECK(manual_of("GET /a?profile=yes HTTP/1.1\r\n\r\n"));
	CHECK(manual_of("GET /a?profile=YeS&x HTTP/1.1\r\n\r\n"));
	CHECK(manual_of("GET /a?profile=0&profile=1 HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?profile=0 HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?xprofile=1 HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?profilex=1 HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?profile=11 HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?profile=truex HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?profile= HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?profile HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a?x=profile=1 HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /profile=1 HTTP/1.1\r\n\r\n"));
	CHECK(!manual_of("GET /a HTTP/1.1\r\nX: ?profile=1\r\n\r\n"));
	/* The query never reaches the endpoint. */
	CHECK_STR(endpoint_of("GET /a/7?profile=1&id=5 HTTP/1.1\r\n\r\n"),
		  "GET /a/:id");

	/* manual is per request: the next START clears it. */
	{
		static const char in[] =
			"GET /a?profile=1 HTTP/1.1\r\n\r\n"
			"GET /b HTTP/1.1\r\n\r\n";
		struct http_req p;
		struct log log;

		req_run(&p, in, &log);
		CHECK(line_manual(&log, 0));
		CHECK(!line_manual(&log, 1));
	}
}

static void test_target_forms(void)
{
	CHECK_STR(endpoint_of("GET http://example.com/users/42?profile=1 "
			      "HTTP/1.1\r\n\r\n"),
		  "GET /users/:id");
	CHECK(manual_of("GET http://example.com/users/42?profile=1 "
			"HTTP/1.1\r\n\r\n"));
	CHECK_STR(endpoint_of("GET https://user@h:8443/a/b/ HTTP/1.1\r\n\r\n"),
		  "GET /a/b/");
	CHECK_STR(endpoint_of("GET http://example.com HTTP/1.1\r\n\r\n"),
		  "GET /");
	CHECK(manual_of("GET http://example.com?profile=yes HTTP/1.1\r\n\r\n"));
	CHECK_STR(endpoint_of("GET http://example.com?profile=yes "
			      "HTTP/1.1\r\n\r\n"),
		  "GET /");
	CHECK_STR(endpoint_of("OPTIONS * HTTP/1.1\r\n\r\n"), "OPTIONS *");
	CHECK_STR(endpoint_of("GET //double//slash HTTP/1.1\r\n\r\n"),
		  "GET //double//slash");
	CHECK_STR(endpoint_of("GET http:/one-slash HTTP/1.1\r\n\r\n"),
		  "GET http:/one-slash");
	CHECK_STR(endpoint_of("GET ?q=1 HTTP/1.1\r\n\r\n"), "GET /");
	CHECK_STR(endpoint_of("GET h^p://x/1 HTTP/1.1\r\n\r\n"),
		  "GET h^p://x/:id");
	CHECK_STR(endpoint_of("GET /%41%20b/12 HTTP/1.1\r\n\r\n"),
		  "GET /%41%20b/:id");
	CHECK_STR(endpoint_of("HEAD / HTTP/1.1\r\n\r\n"), "HEAD /");
	CHECK_STR(endpoint_of("M-SEARCH * HTTP/1.1\r\n\r\n"), "M-SEARCH *");
}

/* Builds "GET <path> HTTP/1.1\r\n\r\n" into buf. */
static size_t build_get(char *buf, size_t size, const char *path)
{
	size_t n = (size_t)snprintf(buf, size, "GET %s HTTP/1.1\r\n\r\n",
				    path);

	return n < size ? n : size - 1;
}

/* Returns what the endpoint must be: the method and the templated path. */
static const char *expected_endpoint(const char *path)
{
	static char out[HTTP_ENDPOINT_MAX];

	memcpy(out, "GET ", 4);
	http_template_path(path, strlen(path), out + 4, sizeof(out) - 4);
	return out;
}

static void test_long_target(void)
{
	static char path[100000], req[100100];
	struct http_req p;
	struct log log, bytes;
	size_t i, len;

	/* A 90 000-byte path: only the first bytes are kept. */
	path[0] = '/';
	for (i = 1; i < 90000; i++)
		path[i] = (char)('a' + i % 26);
	path[i] = '\0';
	len = build_get(req, sizeof(req), path);
	http_req_init(&p);
	feed_req_step(&p, req, len, 0, &log);
	CHECK_STR(req_events(&log), "SLD");
	CHECK_EQ(strlen(line_endpoint(&log, 0)), HTTP_ENDPOINT_MAX - 1);
	CHECK_STR(line_endpoint(&log, 0), expected_endpoint(path));
	http_req_init(&p);
	feed_req_step(&p, req, len, 7, &bytes);
	CHECK(log_same(&log, &bytes));

	/* Templating works on the kept bytes: 200 digits are one id. */
	path[0] = '/';
	for (i = 1; i < 200; i++)
		path[i] = '7';
	path[i] = '\0';
	CHECK_STR(endpoint_of((build_get(req, sizeof(req), path), req)),
		  "GET /:id");

	/* An id segment straddling the kept limit is templated as kept. */
	memset(path, 0, sizeof(path));
	strcpy(path, "/1/2/3/4/5/6/7/8/9/1/2/3/4/5/6/7/8/9");
	for (i = strlen(path); i < HTTP_TARGET_MAX - 3; i++)
		path[i] = '/';
	strcat(path, "/1234567890abcdef0000/tail");
	build_get(req, sizeof(req), path);
	CHECK_STR(endpoint_of(req), expected_endpoint(path));

	/* The kept limit cuts a hex id short: what is left of it could
	 * still begin an id, so none of it is kept. */
	memset(path, 0, sizeof(path));
	path[0] = '/';
	memset(path + 1, '1', 150);
	strcat(path, "/abcdef0123456789");
	build_get(req, sizeof(req), path);
	CHECK_STR(endpoint_of(req), "GET /:id/:id");
	CHECK_STR(endpoint_of(req), expected_endpoint(path));

	/* A UUID cut after its first dash, likewise. */
	memset(path, 0, sizeof(path));
	path[0] = '/';
	memset(path + 1, 'a', 145);
	strcat(path, "/123e4567-e89b-12d3-a456-426614174000");
	build_get(req, sizeof(req), path);
	CHECK_STR(endpoint_of(req), expected_endpoint(path));
	CHECK(strstr(endpoint_of(req), "123e") == NULL);

	/* A word cut short stays what was kept of it. */
	memset(path, 0, sizeof(path));
	path[0] = '/';
	memset(path + 1, '1', 150);
	strcat(path, "/download-latest");
	build_get(req, sizeof(req), path);
	CHECK_STR(endpoint_of(req), "GET /:id/download");
	CHECK_STR(endpoint_of(req), expected_endpoint(path));
	CHECK_STR(endpoint_of(req), expected_endpoint(path));

	/* Many short ids expand to more than the endpoint holds. */
	memset(path, 0, sizeof(path));
	for (i = 0; i < 150; i += 2)
		memcpy(path + i, "/1", 2);
	build_get(req, sizeof(req), path);
	CHECK_STR(endpoint_of(req), expected_endpoint(path));
	CHECK_EQ(strlen(endpoint_of(req)), HTTP_ENDPOINT_MAX - 1);

	/* A long query string is scanned to its end for profile=. */
	strcpy(path, "/q?");
	for (i = 3; i < 60000; i++)
		path[i] = 'z';
	strcpy(path + i, "&profile=1");
	build_get(req, sizeof(req), path);
	CHECK(manual_of(req));
	CHECK_STR(endpoint_of(req), "GET /q");
}

static void test_long_header_line(void)
{
	static char req[100000];
	struct http_req p;
	struct log log, bytes;
	size_t n, i;

	n = (size_t)sprintf(req, "POST /h HTTP/1.1\r\nX-Long: ");
	for (i = 0; i < 70000; i++)
		req[n++] = (char)('A' + i % 26);
	n += (size_t)sprintf(req + n, "\r\nContent-Length: 3\r\n");
	/* A long header name that starts like Content-Length. */
	memcpy(req + n, "Content-Length", 14);
	n += 14;
	for (i = 0; i < 5000; i++)
		req[n++] = 'x';
	n += (size_t)sprintf(req + n, ": junk\r\n\r\nabc"
				      "GET /after HTTP/1.1\r\n\r\n");
	http_req_init(&p);
	feed_req_step(&p, req, n, 0, &log);
	CHECK_STR(req_events(&log), "SLDSLD");
	CHECK_STR(line_endpoint(&log, 1), "GET /after");
	http_req_init(&p);
	feed_req_step(&p, req, n, 4093, &bytes);
	CHECK(log_same(&log, &bytes));
}

static void test_transfer_encoding(void)
{
	static const char body[] = "3\r\nabc\r\n0\r\n\r\n";
	char in[512];

	/* chunked wins over Content-Length, and only the last coding counts. */
	snprintf(in, sizeof(in),
		 "POST / HTTP/1.1\r\nContent-Length: 100\r\n"
		 "Transfer-Encoding: gzip , CHUNKED \r\n\r\n%sGET / HTTP/1.1\r\n\r\n",
		 body);
	CHECK_STR(events_of(in), "SLDSLD");
	/* Several headers form one list. */
	snprintf(in, sizeof(in),
		 "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n%s",
		 body);
	CHECK_STR(events_of(in), "SLD");
	/* A final coding that is not chunked makes a request unframeable. */
	CHECK_STR(events_of("POST / HTTP/1.1\r\nTransfer-Encoding: "
			    "chunkedx\r\n\r\n"),
		  "SLE");
	CHECK_STR(events_of("POST / HTTP/1.1\r\nTransfer-Encoding: "
			    "chunked;q=1\r\n\r\n"),
		  "SLE");
	/* Headers that only look similar are ignored. */
	CHECK_STR(events_of("POST / HTTP/1.1\r\nX-Transfer-Encoding: chunked"
			    "\r\nContent-Length : 5\r\n Content-Length: 5"
			    "\r\n\r\n"),
		  "SLD");
	/* A header line without a colon carries nothing. */
	CHECK_STR(events_of("POST / HTTP/1.1\r\nNoColonHere\r\n"
			    "Content-Length: 2\r\n\r\nab"),
		  "SLD");
	/* An empty Transfer-Encoding lists nothing. */
	CHECK_STR(events_of("POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n"),
		  "SLD");
}

/* ------------------------------------------------------------------------ */
/* Templating                                                               */
/* ------------------------------------------------------------------------ */

/* Returns the templated form of a NUL-terminated path. */
static const char *tpl(const char *path)
{
	static char out[512];
	size_t n = http_template_path(guarded(path, strlen(path)),
				      strlen(path), out, sizeof(out));

	CHECK_EQ(n, strlen(out));
	return out;
}

static void test_template(void)
{
	char out[16];
	size_t n;

	CHECK_STR(tpl("/users/123"), "/users/:id");
	CHECK_STR(tpl("/users/123/posts/0"), "/users/:id/posts/:id");
	CHECK_STR(tpl("/u/550e8400-e29b-41d4-a716-446655440000"), "/u/:id");
	CHECK_STR(tpl("/u/550E8400-E29B-41D4-A716-446655440000/x"),
		  "/u/:id/x");
	CHECK_STR(tpl("/u/550e8400-e29b-41d4-a716-44665544000"),
		  "/u/550e8400-e29b-41d4-a716-44665544000");
	CHECK_STR(tpl("/u/550e8400-e29b-41d4-a716-4466554400000"),
		  "/u/550e8400-e29b-41d4-a716-4466554400000");
	CHECK_STR(tpl("/u/550e8400e-29b-41d4-a716-446655440000"),
		  "/u/550e8400e-29b-41d4-a716-446655440000");
	CHECK_STR(tpl("/u/550g8400-e29b-41d4-a716-446655440000"),
		  "/u/550g8400-e29b-41d4-a716-446655440000");
	CHECK_STR(tpl("/blob/0123456789abcdef"), "/blob/:id");
	CHECK_STR(tpl("/blob/DEADBEEFDEADBEEF0"), "/blob/:id");
	CHECK_STR(tpl("/blob/0123456789abcde"), "/blob/0123456789abcde");
	CHECK_STR(tpl("/blob/0123456789abcdeg"), "/blob/0123456789abcdeg");
	CHECK_STR(tpl("/users/123/"), "/users/:id/");
	CHECK_STR(tpl("/users/"), "/users/");
	CHECK_STR(tpl("/"), "/");
	CHECK_STR(tpl(""), "/");
	CHECK_STR(tpl("123"), ":id");
	CHECK_STR(tpl("//7//"), "//:id//");
	CHECK_STR(tpl("/v1/a%2Fb/12x"), "/v1/a%2Fb/12x");
	CHECK_STR(tpl("/a/12?x=1"), "/a/:id");

	/* Truncation. */
	n = http_template_path("/users/123/abc", 14, out, 8);
	CHECK_EQ(n, 7);
	CHECK_STR(out, "/users/");
	n = http_template_path("/users/123/abc", 14, out, 9);
	CHECK_EQ(n, 8);
	CHECK_STR(out, "/users/:");
	n = http_template_path("/users/12345678901234567890", 27, out, 11);
	CHECK_STR(out, "/users/:id");
	CHECK_EQ(n, 10);
	n = http_template_path("/abcdefghijklmnopqrstuvwxyz/1", 29, out,
			       sizeof(out));
	CHECK_EQ(n, 15);
	CHECK_STR(out, "/abcdefghijklmn");
	n = http_template_path("", 0, out, 1);
	CHECK_EQ(n, 0);
	CHECK_STR(out, "");
	out[0] = 'x';
	CHECK_EQ(http_template_path("/a", 2, out, 0), 0);
	CHECK_EQ(out[0], 'x');
	n = http_template_path("/a/1\0/2", 7, out, sizeof(out));
	CHECK_EQ(n, 6);
	CHECK_STR(out, "/a/:id");
	n = http_template_path(NULL, 0, out, sizeof(out));
	CHECK_STR(out, "/");
	CHECK_EQ(n, 1);
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

static void test_resp_content_length(void)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
				 "Content-Type: text/plain\r\n\r\nhello";
	size_t len = strlen(in), k;
	struct http_resp p;
	struct log whole, split;

	resp_run(&p, in, false, &whole);
	CHECK_STR(resp_events(&whole), "SD");
	CHECK_EQ(whole.rec[0].status, 200);
	CHECK_EQ(whole.rec[1].at, len);
	CHECK_EQ(p.status, 200);
	http_resp_init(&p);
	feed_resp_step(&p, in, len, 1, false, &split);
	CHECK_EQ(split.rec[0].at, strlen("HTTP/1.1 200 OK\r\n"));
	for (k = 0; k <= len; k++) {
		http_resp_init(&p);
		memset(&split, 0, sizeof(split));
		if (feed_resp_piece(&p, in, 0, k, false, &split))
			feed_resp_piece(&p, in, k, len, false, &split);
		CHECK(log_same_resp(&whole, &split));
	}
	http_resp_init(&p);
	feed_resp_step(&p, in, len, 1, false, &split);
	CHECK(log_same_resp(&whole, &split));
	/* No reason phrase, bare LF. */
	CHECK_STR(resp_events_of("HTTP/1.0 404\nContent-Length: 0\n\n", false),
		  "SD");
}

static void test_resp_chunked(void)
{
	static const char in[] =
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 1\r\n\r\n"
		"5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n"
		"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n";
	size_t len = strlen(in), k;
	struct http_resp p;
	struct log whole, split;

	resp_run(&p, in, false, &whole);
	CHECK_STR(resp_events(&whole), "SDSD");
	CHECK_EQ(whole.rec[2].status, 500);
	for (k = 0; k <= len; k++) {
		http_resp_init(&p);
		memset(&split, 0, sizeof(split));
		if (feed_resp_piece(&p, in, 0, k, false, &split))
			feed_resp_piece(&p, in, k, len, false, &split);
		CHECK(log_same_resp(&whole, &split));
	}
	CHECK_STR(resp_events_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: "
				 "chunked\r\n\r\nx\r\n",
				 false),
		  "SE");
}

static void test_resp_continue(void)
{
	static const char in[] = "HTTP/1.1 100 Continue\r\n\r\n"
				 "HTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
				 "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n"
				 "\r\nok";
	struct http_resp p;
	struct log log, bytes;

	resp_run(&p, in, false, &log);
	CHECK_STR(resp_events(&log), "SD");
	CHECK_EQ(log.rec[0].status, 201);
	http_resp_init(&p);
	feed_resp_step(&p, in, strlen(in), 1, false, &bytes);
	CHECK(log_same_resp(&log, &bytes));
	CHECK_EQ(bytes.rec[0].at, strlen("HTTP/1.1 100 Continue\r\n\r\n"
					 "HTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
					 "HTTP/1.1 201 Created\r\n"));
}

static void test_resp_no_body(void)
{
	static const char head_in[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char in204[] =
		"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
		"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n"
		"Transfer-Encoding: chunked\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
	struct http_resp p;
	struct log log;

	resp_run(&p, head_in, true, &log);
	CHECK_STR(resp_events(&log), "SDSD");
	CHECK_EQ(log.rec[1].at, strlen("HTTP/1.1 200 OK\r\n"
				       "Content-Length: 1234\r\n\r\n"));
	resp_run(&p, in204, false, &log);
	CHECK_STR(resp_events(&log), "SDSDSD");
	CHECK_EQ(log.rec[0].status, 204);
	CHECK_EQ(log.rec[2].status, 304);
	CHECK_EQ(log.rec[4].status, 200);
}

static void test_resp_close_delimited(void)
{
	static const char in[] = "HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\n"
				 "body bytes HTTP/1.1 200 OK\r\n\r\nmore";
	struct http_resp p;
	struct log log;
	unsigned ev;

	resp_run(&p, in, false, &log);
	CHECK_STR(resp_events(&log), "S");
	/* A transfer coding other than chunked also lasts until the close. */
	CHECK_STR(resp_events_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip"
				 "\r\nContent-Length: 3\r\n\r\nabcdef",
				 false),
		  "S");
	/* 101 is final: what follows is not HTTP and is never parsed. */
	CHECK_STR(resp_events_of("HTTP/1.1 101 Switching Protocols\r\n"
				 "Upgrade: websocket\r\n\r\n\x81\x05hello",
				 false),
		  "S");
	/* Sendfile'd bytes vanish into such a body. */
	CHECK_EQ(http_resp_skip(&p, 1000000, &ev), 1000000);
	CHECK_EQ(ev, 0);
}

static void test_resp_pipelined(void)
{
	static const char in[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
				 "abcHTTP/1.1 404 Not Found\r\n"
				 "content-length: 0\r\n\r\n";
	struct http_resp p;
	struct log log, bytes;

	resp_run(&p, in, false, &log);
	CHECK_STR(resp_events(&log), "SDSD");
	CHECK_EQ(log.rec[1].at, strlen("HTTP/1.1 200 OK\r\n"
				       "Content-Length: 3\r\n\r\nabc"));
	CHECK_EQ(log.rec[2].status, 404);
	CHECK_EQ(log.rec[3].at, strlen(in));
	http_resp_init(&p);
	feed_resp_step(&p, in, strlen(in), 1, false, &bytes);
	CHECK(log_same_resp(&log, &bytes));
}

static void test_resp_errors(void)
{
	struct http_resp p;
	unsigned ev;

	CHECK_STR(resp_events_of("hello", false), "E");
	CHECK_STR(resp_events_of("http/1.1 200 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/2 200\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1 20 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1 099 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1 2000 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1  200 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.x 200 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1\t200 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1 2x0 OK\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1 200X\r\n\r\n", false), "E");
	CHECK_STR(resp_events_of("HTTP/1.1 200 OK\r\nContent-Length: x\r\n"
				 "\r\n",
				 false),
		  "SE");
	CHECK_STR(resp_events_of("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
				 "\r\nxjunk",
				 false),
		  "SDE");
	http_resp_init(&p);
	CHECK_EQ(http_resp_feed(&p, guarded("<html>", 6), 6, false, &ev), 1);
	CHECK_EQ(ev, HTTP_RESP_ERROR);
	CHECK_EQ(http_resp_feed(&p, guarded("HTTP/", 5), 5, false, &ev), 0);
	CHECK_EQ(ev, HTTP_RESP_ERROR);
	CHECK_EQ(http_resp_skip(&p, 10, &ev), 0);
	CHECK_EQ(ev, HTTP_RESP_ERROR);
}

/* Feeds a NUL-terminated string to p and returns the last event. */
static int resp_feed_str(struct http_resp *p, const char *s)
{
	struct log log;

	feed_resp_step(p, s, strlen(s), 0, false, &log);
	return log.n ? log.rec[log.n - 1].ev : 0;
}

static void test_resp_skip(void)
{
	struct http_resp p;
	unsigned ev;

	/* Content-Length body sent with sendfile in two calls. */
	http_resp_init(&p);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\n"
				   "Content-Length: 10000\r\n\r\n"),
		 RV_STATUS);
	CHECK_EQ(http_resp_skip(&p, 4000, &ev), 4000);
	CHECK_EQ(ev, 0);
	CHECK_EQ(http_resp_skip(&p, 6000, &ev), 6000);
	CHECK_EQ(ev, HTTP_RESP_DONE);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 304 Not Modified\r\n\r\n"),
		 RV_DONE);

	/* Part of the body written, the rest sendfile'd past its end. */
	http_resp_init(&p);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\n"
				   "Content-Length: 100\r\n\r\n0123456789"),
		 RV_STATUS);
	CHECK_EQ(http_resp_skip(&p, 200, &ev), 90);
	CHECK_EQ(ev, HTTP_RESP_DONE);
	/* The rest is outside a body: consumed without an event. */
	CHECK_EQ(http_resp_skip(&p, 110, &ev), 110);
	CHECK_EQ(ev, 0);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
				   "\r\n"),
		 RV_DONE);

	/* Chunked: the chunk header is written, the data sendfile'd. */
	http_resp_init(&p);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n"
				   "1000\r\n"),
		 RV_STATUS);
	CHECK_EQ(http_resp_skip(&p, 0x1000, &ev), 0x1000);
	CHECK_EQ(ev, 0);
	CHECK_EQ(resp_feed_str(&p, "\r\n0\r\n\r\n"), RV_DONE);

	/* Before any body: opaque, no event, the parser stays put. */
	http_resp_init(&p);
	CHECK_EQ(http_resp_skip(&p, 0, &ev), 0);
	CHECK_EQ(ev, 0);
	CHECK_EQ(http_resp_skip(&p, 55, &ev), 55);
	CHECK_EQ(ev, 0);
	CHECK_EQ(resp_feed_str(&p, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
				   "\r\n"),
		 RV_DONE);
}

static void test_struct_sizes(void)
{
	printf("# sizeof(struct http_req) = %zu, sizeof(struct http_resp) "
	       "= %zu\n",
	       sizeof(struct http_req), sizeof(struct http_resp));
	CHECK(sizeof(struct http_req) <= 320);
	CHECK(sizeof(struct http_resp) <= 96);
}

int main(void)
{
	guard_setup();
	RUN(test_simple_get);
	RUN(test_zero_init_and_empty_feed);
	RUN(test_keep_alive_two);
	RUN(test_pipelining_three);
	RUN(test_one_byte_at_a_time);
	RUN(test_fast_paths_agree);
	RUN(test_fast_lengths);
	RUN(test_post_body_split);
	RUN(test_chunked_every_split);
	RUN(test_chunked_framing_errors);
	RUN(test_non_http);
	RUN(test_leading_crlf);
	RUN(test_profile_param);
	RUN(test_target_forms);
	RUN(test_long_target);
	RUN(test_long_header_line);
	RUN(test_transfer_encoding);
	RUN(test_template);
	RUN(test_resp_content_length);
	RUN(test_resp_chunked);
	RUN(test_resp_continue);
	RUN(test_resp_no_body);
	RUN(test_resp_close_delimited);
	RUN(test_resp_pipelined);
	RUN(test_resp_errors);
	RUN(test_resp_skip);
	RUN(test_struct_sizes);
	return check_done();
}

/*
 * http_feed.h — feeding the incremental HTTP/1.x delimiter (http.h) and
 * logging the events it reports: the helpers of its unit tests
 * (test/unit/test_http*.c), and the part the fuzz target shares
 * (test/fuzz/fuzz_http.c).
 *
 * feed_buf() checks what every call must do whatever the input with
 * FEED_CHECK() and FEED_CHECK_EQ(): check.h's CHECK() and CHECK_EQ() when
 * check.h is included first, else what the includer defined them as (the
 * fuzz target: a crash). The unit tests' helpers (guard page, runs of a
 * whole input, PARSE() case tables) are only there after check.h.
 *
 * Everything here is static: each file that includes it has its own copy,
 * which records failures in that file's copy of check.h's state.
 */
#ifndef PROFSHIM_HTTP_FEED_H
#define PROFSHIM_HTTP_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "http.h"

#ifdef PROFSHIM_CHECK_H
#define FEED_CHECK(cond) CHECK(cond)
#define FEED_CHECK_EQ(a, b) CHECK_EQ(a, b)
#endif
#if !defined(FEED_CHECK) || !defined(FEED_CHECK_EQ)
#error "include check.h, or define FEED_CHECK() and FEED_CHECK_EQ(), first"
#endif

/* The events a log holds; an includer may define more (the fuzz target). */
#ifndef LOG_MAX
#define LOG_MAX 64
#endif

/*
 * Events in a log, one record per event (a call to a feed function may
 * report several): requests S L D E, responses S D E.
 */
enum { EV_NONE, EV_START, EV_LINE, EV_DONE, EV_ERROR };
/*
 * A response's events have the codes of the request events that mean the
 * same (its status line completes its head, as a request line does), so
 * DONE and ERROR have one code each, whatever the parser.
 */
enum { RV_STATUS = EV_LINE, RV_DONE = EV_DONE, RV_ERROR = EV_ERROR };

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

/* The first LOG_MAX events of a feed; `overflow` when there were more. */
struct log {
	int n;
	bool overflow;
	struct rec rec[LOG_MAX];
};

/*
 * The parser a helper feeds: a request parser, or a response parser with
 * the HEAD flag of the request it answers. REQ() and RESP() make one for a
 * call.
 */
struct subject {
	struct http_req *req;   /* NULL for a response parser */
	struct http_resp *resp; /* NULL for a request parser */
	bool head;
	/* When not NULL, given every event but an error, after it is logged,
	 * with the input offset where the call that reported it began. */
	void (*on_event)(struct subject *s, int ev, size_t from);
};

#define REQ(p) (&(struct subject){ .req = (p) })
#define RESP(p, h) (&(struct subject){ .resp = (p), .head = (h) })

/* What tells the events of requests and responses apart. */
struct events {
	unsigned bits[4]; /* the event bits, in the order they happen */
	int n;            /* how many */
	int first;        /* the log's code for bits[0]: EV_START, RV_STATUS */
	unsigned done, error;
};

static const struct events req_events_def = {
	{ HTTP_REQ_START, HTTP_REQ_LINE, HTTP_REQ_DONE, HTTP_REQ_ERROR }, 4,
	EV_START, HTTP_REQ_DONE, HTTP_REQ_ERROR,
};

static const struct events resp_events_def = {
	{ HTTP_RESP_STATUS, HTTP_RESP_DONE, HTTP_RESP_ERROR }, 3,
	RV_STATUS, HTTP_RESP_DONE, HTTP_RESP_ERROR,
};

static inline const struct events *subject_events(const struct subject *s)
{
	return s->req ? &req_events_def : &resp_events_def;
}

/* Resets the subject's parser. */
static inline void subject_init(struct subject *s)
{
	if (s->req)
		http_req_init(s->req);
	else
		http_resp_init(s->resp);
}

/* Feeds buf[0..n) to the subject's parser once. */
static inline size_t subject_feed(struct subject *s, const char *buf,
				  size_t n, unsigned *ev)
{
	if (s->req)
		return http_req_feed(s->req, buf, n, ev);
	return http_resp_feed(s->resp, buf, n, s->head, ev);
}

/*
 * Copies into r the outputs the event `bit` makes valid: a request's
 * endpoint, manual and head flags with its LINE, a response's status with
 * every event.
 */
static inline void subject_outputs(const struct subject *s, unsigned bit,
				   struct rec *r)
{
	const struct http_req *p = s->req;

	if (!p) {
		r->status = s->resp->status;
		return;
	}
	if (bit != HTTP_REQ_LINE)
		return;
	memcpy(r->endpoint, p->endpoint, sizeof(r->endpoint));
	r->manual = p->manual;
	r->head = p->head;
	FEED_CHECK_EQ(p->endpoint_len, strlen(p->endpoint));
}

/* Appends an event to the log. */
static inline struct rec *log_add(struct log *log, int ev, size_t at)
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
 * Feeds buf[0..n), which starts at offset `at` of the input, to the subject
 * until it is consumed or an error is reported, checking every call and
 * logging its events. Returns false after an error.
 */
static inline bool feed_buf(struct subject *s, const char *buf, size_t n,
			    size_t at, struct log *log)
{
	const struct events *e = subject_events(s);
	size_t off = 0;

	while (off < n) {
		unsigned ev = 0;
		size_t from = off;
		size_t c = subject_feed(s, buf + off, n - off, &ev);

		FEED_CHECK(c <= n - off);
		if (c > n - off)
			return false;
		off += c;
		if (ev == 0) {
			FEED_CHECK_EQ(off, n);
			continue;
		}
		FEED_CHECK(c > 0 || ev == e->error);
		/* Events of one call belong to one message: nothing after
		 * its end, and an error ends it too. */
		FEED_CHECK(!(ev & e->done) || !(ev & e->error));
		for (int k = 0; k < e->n; k++) {
			struct rec *r;

			if (!(ev & e->bits[k]))
				continue;
			r = log_add(log, e->first + k, at + off);
			if (r)
				subject_outputs(s, e->bits[k], r);
			if (s->on_event && e->bits[k] != e->error)
				s->on_event(s, e->first + k, at + from);
		}
		if (ev & e->error)
			return false;
	}
	return true;
}

/*
 * Returns true when two logs hold the same events with the same outputs,
 * and the same offsets where those are exact in both (end of a request or
 * response, error). Logs that overflowed compare their first LOG_MAX.
 */
static inline bool log_events_same(const struct log *a, const struct log *b)
{
	int i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++) {
		const struct rec *x = &a->rec[i], *y = &b->rec[i];
		bool exact = x->ev == EV_DONE || x->ev == EV_ERROR;

		if (x->ev != y->ev || (exact && x->at != y->at) ||
		    strcmp(x->endpoint, y->endpoint) != 0 ||
		    x->manual != y->manual || x->head != y->head ||
		    x->status != y->status)
			return false;
	}
	return true;
}

#ifdef PROFSHIM_CHECK_H
/* ------------------------------------------------------------------------ */
/* Unit tests: guard page                                                   */
/* ------------------------------------------------------------------------ */

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define GUARD_AREA (1u << 17) /* largest input a test may feed in one piece */

static char *guard_end; /* first byte of the PROT_NONE page */

/* Maps GUARD_AREA readable bytes followed by one unmapped page. */
static inline void guard_setup(void)
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

/*
 * Copies s[0..n) so that it ends at the guard page, and returns the copy.
 * Each file that includes this maps its own guard page, on its first input.
 */
static inline const char *guarded(const char *s, size_t n)
{
	if (!guard_end)
		guard_setup();
	if (n > GUARD_AREA) {
		printf("Bail out! input of %zu bytes is too long\n", n);
		exit(1);
	}
	memcpy(guard_end - n, s, n);
	return guard_end - n;
}

/* ------------------------------------------------------------------------ */
/* Unit tests: feeding helpers                                              */
/* ------------------------------------------------------------------------ */

/*
 * Feeds in[start..end) to the subject as one guarded piece, looping until
 * it is consumed or an error is reported. Returns false after an error.
 */
static inline bool feed_piece(struct subject *s, const char *in,
			      size_t start, size_t end, struct log *log)
{
	return feed_buf(s, guarded(in + start, end - start), end - start,
			start, log);
}

/* Feeds in[0..len) in pieces of `step` bytes (0: all at once). */
static inline void feed_step(struct subject *s, const char *in, size_t len,
			     size_t step, struct log *log)
{
	size_t start = 0;

	memset(log, 0, sizeof(*log));
	if (step == 0)
		step = len;
	while (start < len) {
		size_t end = len - start < step ? len : start + step;

		if (!feed_piece(s, in, start, end, log))
			return;
		start = end;
	}
}

/* Feeds in[0..len) in two pieces split at `split`. */
static inline void feed_split(struct subject *s, const char *in, size_t len,
			      size_t split, struct log *log)
{
	memset(log, 0, sizeof(*log));
	if (feed_piece(s, in, 0, split, log))
		feed_piece(s, in, split, len, log);
}

/*
 * Feeds the NUL-terminated `in` to the subject, reset, in pieces of `step`
 * bytes (1: a byte at a time; 0: all at once).
 */
static inline void run_step(struct subject *s, const char *in, size_t step,
			    struct log *log)
{
	subject_init(s);
	feed_step(s, in, strlen(in), step, log);
}

/* Feeds the NUL-terminated `in` to the subject, reset, all at once. */
static inline void run(struct subject *s, const char *in, struct log *log)
{
	run_step(s, in, 0, log);
}

/*
 * Returns true when two logs hold the same events with the same outputs,
 * and the same offsets where those are exact in both (end of a request or
 * response, error), and neither overflowed.
 */
static inline bool log_same(const struct log *a, const struct log *b)
{
	return !a->overflow && !b->overflow && log_events_same(a, b);
}

/* Returns the events of a log as a string of letters[event] each. */
static inline const char *log_letters(const struct log *log,
				      const char *letters)
{
	static char s[LOG_MAX + 1];
	int i;

	for (i = 0; i < log->n; i++)
		s[i] = letters[log->rec[i].ev];
	s[log->n] = '\0';
	return s;
}

/* Returns the events of a log: S L D E for requests. */
static inline const char *req_events(const struct log *log)
{
	return log_letters(log, "NSLDE");
}

/* Returns the events of a log: S D E for responses. */
static inline const char *resp_events(const struct log *log)
{
	return log_letters(log, "N?SDE");
}

/* Returns the record of the k-th HTTP_REQ_LINE of a log, or NULL. */
static inline const struct rec *line_rec(const struct log *log, int k)
{
	int i;

	for (i = 0; i < log->n; i++)
		if (log->rec[i].ev == EV_LINE && k-- == 0)
			return &log->rec[i];
	return NULL;
}

/* Returns the endpoint reported by the k-th HTTP_REQ_LINE of a log. */
static inline const char *line_endpoint(const struct log *log, int k)
{
	const struct rec *r = line_rec(log, k);

	return r ? r->endpoint : "(no line)";
}

/* Returns the manual flag of the k-th HTTP_REQ_LINE of a log. */
static inline bool line_manual(const struct log *log, int k)
{
	const struct rec *r = line_rec(log, k);

	return r && r->manual;
}

/* Returns the log of a single request fed to a fresh parser all at once. */
static inline const struct log *req_log_of(const char *req)
{
	static struct http_req p;
	static struct log log;

	run(REQ(&p), req, &log);
	return &log;
}

/* Returns the endpoint a single request gets, or "(error)". */
static inline const char *endpoint_of(const char *req)
{
	const struct log *log = req_log_of(req);

	if (log->n >= 2 && log->rec[1].ev == EV_LINE)
		return log->rec[1].endpoint;
	return "(error)";
}

/* Returns the manual flag a single request gets. */
static inline bool manual_of(const char *req)
{
	const struct log *log = req_log_of(req);

	return log->n >= 2 && log->rec[1].ev == EV_LINE && log->rec[1].manual;
}

/* Returns the events a single request input produces. */
static inline const char *events_of(const char *req)
{
	return req_events(req_log_of(req));
}

/* Returns the events a single response input produces. */
static inline const char *resp_events_of(const char *resp, bool head)
{
	static struct http_resp p;
	static struct log log;

	run(RESP(&p, head), resp, &log);
	return resp_events(&log);
}

/*
 * Feeds in[0..n) to the subject once, as one guarded piece, and checks that
 * it consumes `used` bytes and reports exactly `events` (*ret_events starts
 * at a value no call reports, so it must be written).
 */
static inline void check_feed(struct subject *s, const char *in, size_t n,
			      size_t used, unsigned events)
{
	unsigned ev = ~0u;

	CHECK_EQ(subject_feed(s, guarded(in, n), n, &ev), used);
	CHECK_EQ(ev, events);
}

/*
 * Accounts for n unseen response bytes and checks that `taken` of them
 * are accounted and exactly `events` reported.
 */
static inline void check_skip(struct http_resp *p, uint64_t n,
			      size_t taken, unsigned events)
{
	unsigned ev = ~0u;

	CHECK_EQ(http_resp_skip(p, n, &ev), taken);
	CHECK_EQ(ev, events);
}

/*
 * Checks that the NUL-terminated `in`, fed to the subject (reset) in two
 * pieces split at every offset from `from` to `to`, gives the log `whole`.
 */
static inline void check_splits(struct subject *s, const char *in,
				const struct log *whole, size_t from,
				size_t to)
{
	size_t len = strlen(in), k;
	struct log split;

	for (k = from; k <= to; k++) {
		subject_init(s);
		feed_split(s, in, len, k, &split);
		if (!log_same(whole, &split))
			printf("# split at %zu differs: %s\n", k, in);
		CHECK(log_same(whole, &split));
	}
}

/*
 * Table-driven cases, in the picohttpparser style: each input is fed whole
 * to a fresh parser. PARSE(in, events, endpoint, manual, comment): the
 * events a request gives (S L D E); when not NULL, the endpoint of its
 * request line; when not ANY, its manual flag (0 or 1).
 * PARSE_RESP(in, head, events, comment): the events a response gives
 * (S D E) to a request that was HEAD or not.
 */
#define ANY (-1)

struct req_case {
	const char *in;
	const char *events;
	const char *endpoint;
	int manual;
	const char *comment;
};

struct resp_case {
	const char *in;
	bool head;
	const char *events;
	const char *comment;
};

#define PARSE(in, events, endpoint, manual, comment) \
	{ (in), (events), (endpoint), (manual), (comment) }
#define PARSE_RESP(in, head, events, comment) \
	{ (in), (head), (events), (comment) }

/*
 * Starts the checks of a case: returns whether the test failed so far,
 * and clears that, so that case_end() can tell this case's failures.
 */
static inline int case_begin(void)
{
	int failed = check_test_failed;

	check_test_failed = 0;
	return failed;
}

/* Ends the checks of case i, naming it when one failed. */
static inline void case_end(int failed_before, size_t i, const char *comment)
{
	if (check_test_failed)
		printf("# case %zu failed: %s\n", i, comment);
	check_test_failed |= failed_before;
}

static inline void check_req_cases(const struct req_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++, c++) {
		int failed = case_begin();

		if (c->events)
			CHECK_STR(events_of(c->in), c->events);
		if (c->endpoint)
			CHECK_STR(endpoint_of(c->in), c->endpoint);
		if (c->manual != ANY)
			CHECK_EQ(manual_of(c->in), c->manual);
		case_end(failed, i, c->comment);
	}
}

static inline void check_resp_cases(const struct resp_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++, c++) {
		int failed = case_begin();

		CHECK_STR(resp_events_of(c->in, c->head), c->events);
		case_end(failed, i, c->comment);
	}
}

#define CASES(t) (t), sizeof(t) / sizeof((t)[0])

/*
 * check.h counts tests and failures in each file that includes it: main()
 * (test_http.c) runs the tests of the other files through these, which
 * number them on from *tests and add their failures to *failures.
 */
void http_fast_tests(int *tests, int *failures);
void http_template_tests(int *tests, int *failures);
void http_resp_tests(int *tests, int *failures);

#endif /* PROFSHIM_CHECK_H */

#endif /* PROFSHIM_HTTP_FEED_H */

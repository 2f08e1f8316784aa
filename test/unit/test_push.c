/*
 * test_push.c — unit tests for the pushes to a store (push.h): main(), the
 * options push_new() checks, and what is pushed (deltas by content, resets,
 * the baseline). The test executable test_push is also made of
 * test_push_fail.c (a store that is down or answers errors: queue,
 * backoff, what is logged) and test_push_lookup.c (a name lookup that
 * never gets an answer); their helpers are in push_test.h.
 *
 * The store is a libmicrohttpd server on a loopback port, run by its own
 * thread, that records every request and answers the statuses a test
 * plans. Profiles come from a fake snapshot whose counts the test sets;
 * bodies are folded lines, easy to read back. push_step() gets a made-up
 * monotonic time, so intervals and backoff are the test's to choose.
 */
#include <errno.h>

#include "check.h"
#include "push_test.h"

static int body_lines(const char *body)
{
	int n = 0;

	for (; *body; body++)
		n += *body == '\n';
	return n;
}

/* A push to a new store r of what changed from the counts `before` (the
 * baseline) to `after` (a look 1 s later): true when the store received
 * it in one request. */
static bool push_one_interval(struct receiver *r, struct fake before,
			      struct fake after)
{
	struct push *p = push_start_at_baseline(r, NULL, 0, false, &before);

	push_step(p, T0 + SEC, fake_snapshot, &after);
	return push_end_expecting(p, &after, r, 1);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_options_are_checked(void)
{
	static const struct {
		const char *url, *app, *tag, *format, *token;
		double interval;
		const char *says;
	} bad[] = {
		{"ftp://x", "a", NULL, NULL, NULL, 1, "http:// or https://"},
		{"http//x", "a", NULL, NULL, NULL, 1, "http:// or https://"},
		{"", "a", NULL, NULL, NULL, 1, "http:// or https://"},
		{"http://", "a", NULL, NULL, NULL, 1, "not a valid"},
		{"http://h/ x", "a", NULL, NULL, NULL, 1, "spaces"},
		{"http://h/p?q=1", "a", NULL, NULL, NULL, 1, "query"},
		{"http://h/p#f", "a", NULL, NULL, NULL, 1, "query"},
		{"http://h", "", NULL, NULL, NULL, 1, "must not be empty"},
		{"http://h", "a{b", NULL, NULL, NULL, 1, "'a{b'"},
		{"http://h", "a\nb", NULL, NULL, NULL, 1, "'a?b'"},
		{"http://h", "a", "noequals", NULL, NULL, 1, "KEY=VALUE"},
		{"http://h", "a", "=v", NULL, NULL, 1, "the key"},
		{"http://h", "a", "1k=v", NULL, NULL, 1, "the key"},
		{"http://h", "a", "k-x=v", NULL, NULL, 1, "the key"},
		{"http://h", "a", "k=", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=a,b", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=a=b", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=}", NULL, NULL, 1, "the value"},
		{"http://h", "a", "k=a\tb", NULL, NULL, 1, "the value"},
		{"http://h", "a", NULL, "xml", NULL, 1, "pprof or folded"},
		{"http://h", "a", NULL, NULL, "tok\r\nX: y", 1,
		 "control characters"},
		{"http://h", "a", NULL, NULL, NULL, 0, "above 0"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *tags[1] = {bad[i].tag};
		const struct push_opts o = {
			.url = bad[i].url, .app = bad[i].app, .tags = tags,
			.ntags = bad[i].tag ? 1 : 0, .interval = bad[i].interval,
			.format = bad[i].format, .token = bad[i].token};
		struct push *p = (struct push *)&o;
		char err[256] = "";

		CHECK_EQ(push_new(&p, &o, err, sizeof(err)), -EINVAL);
		CHECK(p == NULL);
		if (!strstr(err, bad[i].says))
			printf("# case %zu: '%.200s' does not say the "
			       "expected reason\n", i, err);
		CHECK(strstr(err, bad[i].says) != NULL);
		CHECK(strchr(err, '\n') == NULL);
		if (bad[i].token)
			CHECK(strstr(err, "tok") == NULL);
	}
	{
		/* A key given twice. */
		const char *tags[2] = {"k=1", "k=2"};
		const struct push_opts o = {.url = "https://h:1/x/", .app = "a",
					    .tags = tags, .ntags = 2,
					    .interval = 0.5};
		struct push *p;
		char err[256];

		CHECK_EQ(push_new(&p, &o, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "twice") != NULL);
	}
	{
		const char *tags[3] = {"_k.1=v 1", "Z=ü", "k2=x"};
		const struct push_opts o = {.url = "HTTPS://u:p@h:1/x/",
					    .app = "my app", .tags = tags,
					    .ntags = 3, .interval = 0.5};
		struct push *p = NULL;
		char err[256];

		CHECK_EQ(push_new(&p, &o, err, sizeof(err)), 0);
		push_free(p);
		push_free(NULL);
	}
}

/* Deltas by what a stack is, not by its indices; nothing new, no POST. */
static void test_deltas_by_content(void)
{
	struct receiver r;
	struct fake f = {.a = 5, .period_ns = 1e9 / 97};
	struct push *p;
	bool got;

	p = push_start(&r, NULL, 0, "t0k", false);
	push_step(p, T0 + 0, fake_snapshot, &f);          /* the baseline */
	f.a = 8;
	f.b = 2;
	f.permute = true;
	push_step(p, T0 + SEC / 2, fake_snapshot, &f);    /* too early */
	CHECK_EQ(f.looks, 1);
	push_step(p, T0 + SEC, fake_snapshot, &f);        /* +3 a, +2 b */
	pump(p, SEC, &f, 50);
	push_step(p, T0 + 2 * SEC, fake_snapshot, &f);    /* nothing new */
	f.a = 10;
	f.permute = false;
	push_step(p, T0 + 3 * SEC, fake_snapshot, &f);    /* +2 a */
	got = push_end_expecting(p, &f, &r, 2);     /* finish: nothing new */
	CHECK_EQ(f.looks, 5);
	if (got) {
		struct recv_req *q = r.reqs;

		CHECK_EQ(body_lines(q[0].body), 2);
		CHECK_EQ(body_count(q[0].body, STACK_A), 3);
		CHECK_EQ(body_count(q[0].body, STACK_B), 2);
		CHECK_EQ(body_lines(q[1].body), 1);
		CHECK_EQ(body_count(q[1].body, STACK_A), 2);
		CHECK_STR(q[0].path, "/ingest");
		CHECK_STR(q[0].name, "app{env=unit,zone=a.1}");
		CHECK_STR(q[0].format, "folded");
		CHECK_STR(q[0].rate, "97");
		CHECK_STR(q[0].auth, "Bearer t0k");
		/* Intervals end at the looks' times (0, 1, 2, 3 s): the
		 * empty look at 2 s moves the next push's start. */
		CHECK(atoll(q[0].from) > 1600000000);
		CHECK_EQ(atoll(q[0].until) - atoll(q[0].from), 1);
		CHECK_EQ(atoll(q[1].from) - atoll(q[0].until), 1);
		CHECK_EQ(atoll(q[1].until) - atoll(q[1].from), 1);
	}
	recv_stop(&r);
}

/* Two stacks of the same content (two processes) count as one. */
static void test_same_content_summed(void)
{
	struct receiver r;

	if (push_one_interval(&r, (struct fake){.a = 3, .a2 = 4},
			      (struct fake){.a = 3, .a2 = 6,
					    .permute = true})) {
		CHECK_EQ(body_lines(r.reqs[0].body), 1);
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 2);
		CHECK_STR(r.reqs[0].auth, "(none)");
		CHECK_STR(r.reqs[0].rate, "100");
	}
	recv_stop(&r);
}

/* A count that fell: the statistics were reset, everything counts from 0. */
static void test_reset_noticed(void)
{
	struct receiver r;

	if (push_one_interval(&r, (struct fake){.a = 10, .b = 10},
			      (struct fake){.a = 3, .b = 12})) {
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 3);
		CHECK_EQ(body_count(r.reqs[0].body, STACK_B), 12);
	}
	recv_stop(&r);
}

/* push_reset(): what came before the reset goes out, then from 0. */
static void test_push_reset(void)
{
	struct receiver r;
	struct fake f = {.a = 5};
	struct push *p;

	p = push_start(&r, NULL, 0, NULL, false);
	push_reset(p, T0 + 0, fake_snapshot, &f);   /* before the baseline: no-op */
	CHECK_EQ(f.looks, 0);
	push_step(p, T0 + 0, fake_snapshot, &f);
	f.a = 7;
	push_reset(p, T0 + SEC / 2, fake_snapshot, &f);
	f.a = 9;   /* cleared, then 9 new: more than before the reset */
	push_step(p, T0 + SEC, fake_snapshot, &f);
	if (push_end_expecting(p, &f, &r, 2)) {
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 2);
		CHECK_EQ(body_count(r.reqs[1].body, STACK_A), 9);
	}
	recv_stop(&r);
}

/* What was counted before the first step (a resumed checkpoint) is not
 * pushed again; push_finish() without any step pushes nothing. */
static void test_baseline_not_pushed(void)
{
	struct receiver r;
	struct fake f = {.a = 100};
	struct push *p;
	char *err;

	p = push_start_at_baseline(&r, NULL, 0, true, &f);
	push_step(p, T0 + 5 * SEC, fake_snapshot, &f);
	push_end_expecting(p, &f, &r, 0);
	f.a = 200;
	p = push_open(r.url, NULL);
	push_end_expecting(p, &f, &r, 0);
	err = capture_end();
	CHECK_STR(err, "");
	log_free(err);
	recv_stop(&r);
}

int main(void)
{
	RUN(test_options_are_checked);
	RUN_AT_NOW(test_deltas_by_content);
	RUN_AT_NOW(test_same_content_summed);
	RUN_AT_NOW(test_reset_noticed);
	RUN_AT_NOW(test_push_reset);
	RUN_AT_NOW(test_baseline_not_pushed);
	push_failure_tests(&check_tests, &check_failures);
	push_lookup_tests(&check_tests, &check_failures);
	return check_done();
}

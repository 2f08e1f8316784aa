/*
 * test_push_fail.c — unit tests for the pushes to a store (push.h), part of
 * test_push (test_push.c): a store that is down or answers errors. Bodies
 * wait in a bounded queue, are retried after a backoff that doubles up to
 * a minute or dropped when the store rejects them; failures are logged
 * once a minute, never with the token.
 */
#include <errno.h>
#include <sys/socket.h>

#include "check.h"
#include "push_test.h"

/* A loopback port nothing listens on. */
static unsigned closed_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len)) {
		printf("Bail out! no free port\n");
		exit(1);
	}
	close(fd);
	return ntohs(sa.sin_port);
}

/* Turns of the loop at time `now` until the store r has received n
 * requests, for at most `ms` of real time. */
static void pump_until(struct push *p, uint64_t now, struct fake *f,
		       struct receiver *r, int n, int ms)
{
	for (int i = 0; i < ms && recv_count(r) < n; i++)
		pump(p, now, f, 1);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

/* A store that is down: 16 bodies wait, older ones are dropped and
 * counted; one failure line, without the URL's user and password or the
 * token; push_finish() says what is left in one line. */
static void test_queue_bound(void)
{
	char url[96], *err;
	struct fake f = {0};
	struct push *p;

	(void)snprintf(url, sizeof(url), "http://user:pw@127.0.0.1:%u/base//",
		       closed_port());
	capture_start();
	p = push_open(url, "s3cret");
	push_step(p, T0 + 0, fake_snapshot, &f);
	for (uint64_t i = 1; i <= 20; i++) {
		f.a = i;   /* one sample per interval */
		pump(p, i * SEC, &f, 5);
	}
	push_finish(p, fake_snapshot, &f, 0.2);
	push_free(p);
	err = capture_end();
	CHECK_EQ(count_substr(err, "\n"), 2);
	CHECK_EQ(count_substr(err, " failed: "), 1);
	CHECK(strstr(err, "push to http://127.0.0.1:") != NULL);
	CHECK(strstr(err, "/base failed: ") != NULL);
	CHECK(strstr(err, "16 bodies (16 samples) not delivered within 0.2 s")
	      != NULL);
	CHECK(strstr(err, "; 4 bodies (4 samples) dropped during the "
			  "recording\n") != NULL);
	CHECK(strstr(err, "pw") == NULL);
	CHECK(strstr(err, "user") == NULL);
	CHECK(strstr(err, "s3cret") == NULL);
	log_free(err);
}

/* A body the store calls malformed is dropped; the next one goes out. */
static void test_rejected_body_dropped(void)
{
	static const int plan[] = {400};
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;

	p = push_start_at_baseline(&r, plan, 1, true, &f);
	f.a = 1;
	push_step(p, T0 + SEC, fake_snapshot, &f);
	f.a = 3;
	push_step(p, T0 + 2 * SEC, fake_snapshot, &f);
	if (push_end_expecting(p, &f, &r, 2)) {
		CHECK_EQ(r.reqs[0].status, 400);
		CHECK_EQ(body_count(r.reqs[0].body, STACK_A), 1);
		CHECK_EQ(body_count(r.reqs[1].body, STACK_A), 2);
	}
	err = capture_end();
	CHECK(strstr(err, "failed: HTTP 400 (that body is dropped)") != NULL);
	CHECK(strstr(err, "works again") != NULL);
	CHECK(strstr(err, ": 1 body (1 samples) dropped during the "
			  "recording\n") != NULL);
	log_free(err);
	recv_stop(&r);
}

/* A failed body waits its backoff, then the same body goes again. */
static void test_retry_waits_backoff(void)
{
	static const int plan[] = {503};
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;
	bool got;

	p = push_start_at_baseline(&r, plan, 1, true, &f);
	f.a = 2;
	pump_until(p, SEC, &f, &r, 1, 2000);
	pump(p, SEC, &f, 100);   /* the failure is in */
	pump(p, SEC + SEC / 2, &f, 200);
	CHECK_EQ(recv_count(&r), 1);   /* 1 s backoff */
	pump_until(p, 2 * SEC + SEC / 2, &f, &r, 2, 2000);
	got = push_end_expecting(p, &f, &r, 2);
	err = capture_end();
	if (got) {
		CHECK_STR(r.reqs[0].body, r.reqs[1].body);
		CHECK_STR(r.reqs[0].from, r.reqs[1].from);
		CHECK_EQ(body_count(r.reqs[1].body, STACK_A), 2);
	}
	CHECK_EQ(count_substr(err, " failed: HTTP 503 ("), 1);
	log_free(err);
	recv_stop(&r);
}

/* The store's reply echoes the Authorization header: the log shows
 * "<token>" in its place, also where the cut at 160 bytes of the reply
 * falls within the token, and never any of it; nor where the store's URL
 * holds it. */
static void test_echoed_token_not_logged(void)
{
	static const char token[] = "tok-Zq81xW7rPm3K";
	static const int plan[] = {500, 500};
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char url[128], *err;
	bool got;

	recv_start(&r, plan, 2);
	(void)snprintf(url, sizeof(url), "%s%s", r.url, token);
	pthread_mutex_lock(&r.lock);
	r.echo_auth = true;
	/* The second reply: 133 + strlen("Authorization: Bearer ") = 155
	 * bytes before the token, so the first 160 hold 5 bytes of it. */
	r.pad[1] = 133;
	pthread_mutex_unlock(&r.lock);
	capture_start();
	p = push_open(url, token);
	push_step(p, T0 + 0, fake_snapshot, &f);
	f.a = 1;
	pump_until(p, SEC, &f, &r, 1, 2000);
	pump(p, SEC, &f, 200);   /* the failure is in */
	/* After the backoff and a minute, so the failure is logged again. */
	pump_until(p, 62 * SEC, &f, &r, 2, 2000);
	pump(p, 62 * SEC, &f, 200);
	got = push_end_expecting(p, &f, &r, 3);
	err = capture_end();
	if (got) {
		/* The store did get the token, and sent it back. */
		CHECK_STR(r.reqs[0].auth, "Bearer tok-Zq81xW7rPm3K");
		CHECK_STR(r.reqs[1].auth, "Bearer tok-Zq81xW7rPm3K");
		CHECK_EQ(r.reqs[2].status, 200);
		CHECK_STR(r.reqs[2].path, "/tok-Zq81xW7rPm3K/ingest");
	}
	CHECK_EQ(count_substr(err, "push to http://127.0.0.1:"), 3);
	CHECK_EQ(count_substr(err, "/<token> failed: HTTP 500: "), 2);
	CHECK(strstr(err, " failed: HTTP 500: Authorization: Bearer <token> "
			  "(1 failure since ") != NULL);
	CHECK(strstr(err, "xxxxAuthorization: Bearer <toke (2 failures "
			  "since ") != NULL);
	CHECK(strstr(err, "/<token> works again") != NULL);
	CHECK(strstr(err, "tok-") == NULL);
	log_free(err);
	recv_stop(&r);

	{
		/* push_new()'s reason quotes the app name: no token there
		 * either. */
		const struct push_opts o = {.url = "http://h",
					    .app = "my{tok-Zq81xW7rPm3K}",
					    .interval = 1, .token = token};
		char msg[256];

		CHECK_EQ(push_new(&p, &o, msg, sizeof(msg)), -EINVAL);
		CHECK(strstr(msg, "name 'my{<token>}' must not") != NULL);
		CHECK(strstr(msg, "tok-") == NULL);
	}
}

/* The made-up seconds at which a store that always fails is tried: the
 * first push at 1 s, then after 1, 2, 4, 8, 16, 32 s and 60 s twice
 * (the backoff doubles up to a minute). */
static const uint64_t tried_at[] = {1, 2, 4, 8, 16, 32, 64, 124, 184};

/*
 * With a store answering 503 to everything and one body queued at 1 s,
 * turn the loop at the made-up times tried_at[0..n-1]: 1 ms before each
 * (but the first) no request may come, at it one must. After each the
 * loop turns 200 ms more at that time, so the failure is collected then
 * and the next backoff counts from it.
 */
static void fail_through(struct push *p, struct fake *f, struct receiver *r,
			 int n)
{
	push_step(p, T0 + 0, fake_snapshot, f);
	f->a = 1;
	for (int k = 0; k < n; k++) {
		uint64_t at = tried_at[k] * SEC;

		if (k) {
			pump(p, at - SEC / 1000, f, 50);
			if (recv_count(r) != k)
				printf("# attempt %d came before %llu s\n",
				       k + 1, (unsigned long long)tried_at[k]);
			CHECK_EQ(recv_count(r), k);
		}
		pump_until(p, at, f, r, k + 1, 3000);
		if (recv_count(r) != k + 1)
			printf("# attempt %d did not come at %llu s\n", k + 1,
			       (unsigned long long)tried_at[k]);
		CHECK_EQ(recv_count(r), k + 1);
		pump(p, at, f, 200);
	}
}

/* A push to a store r that answers every request 503, with what push logs
 * captured from now on (capture_end()). */
static struct push *push_to_failing_store(struct receiver *r)
{
	struct push *p = push_start(r, NULL, 0, NULL, true);

	pthread_mutex_lock(&r->lock);
	r->rest = 503;
	pthread_mutex_unlock(&r->lock);
	return p;
}

/* Backoff: 1 s after the first failure, doubling, at most 60 s. */
static void test_backoff_doubles_to_a_minute(void)
{
	const int n = (int)(sizeof(tried_at) / sizeof(tried_at[0]));
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;

	p = push_to_failing_store(&r);
	fail_through(p, &f, &r, n);
	/* 60 s after the last: not before. */
	pump(p, (tried_at[n - 1] + 60) * SEC - SEC / 1000, &f, 50);
	CHECK_EQ(recv_count(&r), n);
	push_free(p);
	err = capture_end();
	CHECK_EQ(r.n, n);
	/* The same body every time. */
	for (int i = 1; i < r.n; i++)
		CHECK_STR(r.reqs[i].body, r.reqs[0].body);
	log_free(err);
	recv_stop(&r);
}

/* The number N in "(N failure(s) since" of the i-th failure line. */
static long failure_count(const char *log, int i)
{
	const char *l = strstr(log, " failed: ");

	for (; l && i > 0; i--)
		l = strstr(l + 1, " failed: ");
	l = l ? strstr(l, " (") : NULL;
	return l ? strtol(l + 2, NULL, 10) : -1;
}

/* 130 s of failures (8 of them, at tried_at[0..7]): a line at the first,
 * then one a minute, when the next failure comes: at 1 s (1 failure), at
 * 64 s (7) and at 124 s (8); nothing at 130 s. */
static void test_failures_logged_once_a_minute(void)
{
	struct receiver r;
	struct fake f = {0};
	struct push *p;
	char *err;

	p = push_to_failing_store(&r);
	fail_through(p, &f, &r, 8);
	pump(p, 130 * SEC, &f, 50);
	push_free(p);
	err = capture_end();
	CHECK_EQ(r.n, 8);
	CHECK_EQ(count_substr(err, "\n"), 3);
	CHECK_EQ(count_substr(err, " failed: HTTP 503 ("), 3);
	CHECK_EQ(failure_count(err, 0), 1);
	CHECK_EQ(failure_count(err, 1), 7);
	CHECK_EQ(failure_count(err, 2), 8);
	CHECK(strstr(err, "(1 failure since ") != NULL);
	CHECK(strstr(err, "(7 failures since ") != NULL);
	CHECK(strstr(err, "(8 failures since ") != NULL);
	CHECK_EQ(count_substr(err, ", 1 body queued, 0 dropped); retrying\n"),
		 3);
	log_free(err);
	recv_stop(&r);
}

/* Runs the tests of this file: see push_test.h. */
void push_failure_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN_AT_NOW(test_queue_bound);
	RUN_AT_NOW(test_rejected_body_dropped);
	RUN_AT_NOW(test_retry_waits_backoff);
	RUN_AT_NOW(test_echoed_token_not_logged);
	RUN_AT_NOW(test_backoff_doubles_to_a_minute);
	RUN_AT_NOW(test_failures_logged_once_a_minute);
	*tests = check_tests;
	*failures += check_failures;
}

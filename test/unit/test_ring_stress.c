/*
 * test_ring_stress.c — unit tests for the shared-memory ring, part of
 * test_ring (test_ring.c): producers on several threads at once against
 * a consumer, and reservations from a signal handler.
 */
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include "check.h"
#include "ring_test.h"

/* ------------------------------------------------------------------------ */
/* d. Multi-producer stress                                                 */
/* ------------------------------------------------------------------------ */

#define STRESS_THREADS 8
#define STRESS_N 200000

struct stress {
	struct ring_header *h;
	struct reader *r;
	atomic_int running;
	atomic_int go;
	uint64_t dropped[STRESS_THREADS];
	/* Consumer side. */
	uint64_t delivered[STRESS_THREADS];
	int64_t last[STRESS_THREADS];
	uint64_t bad_order, bad_tid, bad_content;
	int drain_err;
};

struct producer {
	struct stress *st;
	unsigned idx;
};

static int stress_frames(unsigned idx, uint64_t seq, uint64_t *frames)
{
	int n = (int)(seq % 5);

	for (int k = 0; k < n; k++)
		frames[k] = ((uint64_t)idx << 44) + seq * 64 -
			    (uint64_t)k * 24 + (k == 2 ? 1ull << 40 : 0);
	return n;
}

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	struct stress *st = p->st;
	uint64_t frames[8];

	while (!atomic_load(&st->go))
		sched_yield();
	for (uint64_t seq = 0; seq < STRESS_N; seq++) {
		int r;

		if (seq % 7 == 3)
			r = put_request(st->h, seq, p->idx, RING_ENDPOINT_NONE,
					0, seq ^ p->idx, (uint32_t)seq & 0xffff,
					0, 0);
		else
			r = put_sample(st->h, seq, p->idx, RING_ENDPOINT_NONE,
				       seq, frames,
				       stress_frames(p->idx, seq, frames), NULL);
		if (r < 0) {
			/* Dropped, as the shim would; let the consumer run
			 * (2 cores, 9 threads) before going on. */
			st->dropped[p->idx]++;
			sched_yield();
		}
	}
	atomic_fetch_sub(&st->running, 1);
	return NULL;
}

static int stress_cb(void *arg, const struct reader_event *ev)
{
	struct stress *st = arg;
	unsigned idx = ev->tid;
	uint64_t seq = ev->req_id;

	if (idx >= STRESS_THREADS) {
		st->bad_tid++;
		return 0;
	}
	if ((int64_t)seq <= st->last[idx])
		st->bad_order++;
	st->last[idx] = (int64_t)seq;
	st->delivered[idx]++;
	if (seq % 7 == 3) {
		if (ev->kind != READER_REQUEST || ev->duration_ns != (seq ^ idx) ||
		    ev->status != ((uint32_t)seq & 0xffff))
			st->bad_content++;
	} else {
		uint64_t frames[8];
		int n = stress_frames(idx, seq, frames);

		if (ev->kind != READER_SAMPLE || ev->nframes != (uint32_t)n ||
		    memcmp(ev->frames, frames, (size_t)n * 8) != 0)
			st->bad_content++;
	}
	return 0;
}

static void *consumer_main(void *arg)
{
	struct stress *st = arg;
	int n;

	while (!atomic_load(&st->go))
		sched_yield();
	while (atomic_load(&st->running) > 0) {
		n = reader_drain(st->r, SIZE_MAX, stress_cb, st);
		if (n < 0) {
			st->drain_err = n;
			return NULL;
		}
		if (n == 0)
			sched_yield();
	}
	/* Every producer is done: what is left is committed. */
	while ((n = reader_drain(st->r, SIZE_MAX, stress_cb, st)) > 0)
		;
	if (n < 0)
		st->drain_err = n;
	return NULL;
}

static void test_stress(void)
{
	struct fixture f;
	struct stress *st = calloc(1, sizeof(*st));
	struct producer prod[STRESS_THREADS];
	pthread_t pt[STRESS_THREADS], ct;
	uint64_t delivered = 0, dropped = 0;
	double t0, t1;

	fx_setup(&f, 64 << 10, 16, true);
	st->h = f.h;
	st->r = f.r;
	atomic_store(&st->running, STRESS_THREADS);
	for (int i = 0; i < STRESS_THREADS; i++)
		st->last[i] = -1;
	for (unsigned i = 0; i < STRESS_THREADS; i++) {
		prod[i].st = st;
		prod[i].idx = i;
		CHECK_EQ(pthread_create(&pt[i], NULL, producer_main, &prod[i]), 0);
	}
	CHECK_EQ(pthread_create(&ct, NULL, consumer_main, st), 0);
	t0 = now_s();
	atomic_store(&st->go, 1);
	for (int i = 0; i < STRESS_THREADS; i++)
		pthread_join(pt[i], NULL);
	pthread_join(ct, NULL);
	t1 = now_s();

	CHECK_EQ(st->drain_err, 0);
	if (st->drain_err)
		printf("# drain error: %s\n", reader_error(f.r));
	CHECK_EQ(st->bad_tid, 0);
	CHECK_EQ(st->bad_order, 0);
	CHECK_EQ(st->bad_content, 0);
	for (int i = 0; i < STRESS_THREADS; i++) {
		CHECK_EQ(st->delivered[i] + st->dropped[i], STRESS_N);
		delivered += st->delivered[i];
		dropped += st->dropped[i];
	}
	CHECK(load64(&f.h->head) == load64(&f.h->tail));
	CHECK(delivered > 0);
	printf("# stress: %d producers x %d records, ring %u KiB: delivered "
	       "%llu, dropped %llu (%.1f%%), %.2f s, head %llu (%.0f laps)\n",
	       STRESS_THREADS, STRESS_N, 64, (unsigned long long)delivered,
	       (unsigned long long)dropped,
	       100.0 * (double)dropped / (STRESS_THREADS * (double)STRESS_N),
	       t1 - t0, (unsigned long long)load64(&f.h->head),
	       (double)load64(&f.h->head) / (64 << 10));
	free(st);
	fx_teardown(&f);
}

/*
 * Re-entrancy (ring.h): a signal handler writes records while the
 * interrupted code is inside ring_reserve(), and the consumer drains them
 * before the interrupted call goes on. In the shim the handler is the
 * sampler and the consumer is the collector; here the handler drains
 * itself. The ring never holds more than a few records, so no reservation
 * may fail: a failure means ring_reserve() judged the ring full from a
 * head it read before the handler ran.
 */
static struct {
	struct ring_header *h;
	struct reader *r;
	uint64_t handler_written, delivered;
} reent;

static int count_cb(void *arg, const struct reader_event *ev)
{
	(void)ev;
	(*(uint64_t *)arg)++;
	return 0;
}

static void reent_handler(int sig)
{
	int saved = errno;

	for (int i = 0; i < 3; i++)
		if (put_request(reent.h, 0, 0, RING_ENDPOINT_NONE, 0, 0, 0, 0,
				0) == 0)
			reent.handler_written++;
	(void)reader_drain(reent.r, SIZE_MAX, count_cb, &reent.delivered);
	errno = saved;
}

static void test_reserve_in_signal(void)
{
	struct fixture f;
	struct sigaction sa, old_sa;
	struct itimerspec it = {{0, 20000}, {0, 20000}}, off = {{0, 0}, {0, 0}};
	struct sigevent sev;
	timer_t timer;
	sigset_t block, old;
	uint64_t main_written = 0, failed = 0, signals_before;
	double end;

	fx_setup(&f, 4096, 16, true);
	reent.h = f.h;
	reent.r = f.r;
	reent.handler_written = reent.delivered = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = reent_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGPROF, &sa, &old_sa);
	sigemptyset(&block);
	sigaddset(&block, SIGPROF);
	/* A high-resolution timer: a signal every 20 us. */
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGPROF;
	if (timer_create(CLOCK_MONOTONIC, &sev, &timer) < 0) {
		printf("Bail out! timer_create: %s\n", strerror(errno));
		exit(1);
	}
	timer_settime(timer, 0, &it, NULL);
	end = now_s() + 0.5;
	while (now_s() < end) {
		for (int i = 0; i < 1000; i++) {
			if (put_request(f.h, 0, 0, RING_ENDPOINT_NONE, 0, 0, 0,
					0, 0) == 0)
				main_written++;
			else
				failed++;
			/* The reader is not re-entrant: drain with the signal
			 * blocked. */
			pthread_sigmask(SIG_BLOCK, &block, &old);
			(void)reader_drain(f.r, SIZE_MAX, count_cb,
					   &reent.delivered);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
	}
	timer_settime(timer, 0, &off, NULL);
	timer_delete(timer);
	sigaction(SIGPROF, &old_sa, NULL);
	signals_before = reent.handler_written / 3;
	CHECK(reader_drain(f.r, SIZE_MAX, count_cb, &reent.delivered) >= 0);
	CHECK(reader_error(f.r) == NULL);
	CHECK_EQ(reent.delivered, main_written + reent.handler_written);
	CHECK(load64(&f.h->head) == load64(&f.h->tail));
	CHECK_EQ(failed, 0);
	printf("# reserve in signal: %llu records, %llu from %llu signals, "
	       "%llu reservations failed\n",
	       (unsigned long long)(main_written + reent.handler_written),
	       (unsigned long long)reent.handler_written,
	       (unsigned long long)signals_before, (unsigned long long)failed);
	fx_teardown(&f);
}

/* Runs the tests of this file: see ring_test.h. */
void ring_stress_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN(test_stress);
	RUN(test_reserve_in_signal);
	*tests = check_tests;
	*failures += check_failures;
}

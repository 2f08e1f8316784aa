/*
 * test_ring.c — unit tests for the shared-memory ring: the shim's producer
 * side (ring.h) against the collector's consumer side (reader.h), on real
 * /dev/shm segments made by ring_create(). This file has main(), the round
 * trip, samples that share frames and the endpoint table; the test
 * executable test_ring is also made of test_ring_wrap.c (wrap-around, full
 * ring), test_ring_stress.c (multi-producer stress, reservation from a
 * signal handler), test_ring_headers.c (corrupt headers),
 * test_ring_records.c (corrupt records, a writer changing a record while
 * the reader copies it) and test_ring_admit.c (the admission of new
 * endpoint names: scans of one-off paths). Their helpers are in ring_test.h.
 *
 * Every test unlinks the segments it creates.
 */
#include <math.h>
#include <pthread.h>

#include "check.h"
#include "ring_test.h"

/* ------------------------------------------------------------------------ */
/* a. Round trip                                                            */
/* ------------------------------------------------------------------------ */

static void test_round_trip(void)
{
	static const uint64_t f_down[] = {
		0x7f0000401000, 0x7f0000400fff, 0x400000, 0x400001, 0x1000,
		0xffffffffffffffff, 0, 0x8000000000000000, 0x7fffffffffffffff,
		0x5555555555554444, 0x5555555555554440,
	};
	static uint64_t f_max[RING_MAX_FRAMES], f_far[RING_MAX_FRAMES];
	struct fixture f;
	struct sink s = {0};
	uint32_t ep_users, ep_root, ep_long;
	char long_name[200];
	const uint64_t t0 = 0;
	int n;

	fx_setup(&f, 64 << 10, 1000, true);
	CHECK_STR(reader_exe(f.r), "/usr/local/bin/test-server");
	CHECK_STR(reader_path(f.r), f.path);
	CHECK_EQ(reader_pid(f.r), getpid());
	CHECK_EQ(reader_ppid(f.r), getppid());
	CHECK(reader_error(f.r) == NULL);
	CHECK(!reader_exited(f.r));
	CHECK_EQ(reader_header(f.r)->data_size, 64 << 10);
	CHECK_EQ(reader_header(f.r)->max_depth, RING_MAX_FRAMES);

	ep_users = ep_intern(f.h, "GET /users/{id}", 1000);
	ep_root = ep_intern(f.h, "GET /", 1000);
	memset(long_name, 'L', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	ep_long = ep_intern(f.h, long_name, 1000);
	CHECK(ep_users != ep_root);
	CHECK(ep_users < f.h->endpoints_cap && ep_root < f.h->endpoints_cap);
	CHECK(ep_long < f.h->endpoints_cap);

	for (int i = 0; i < RING_MAX_FRAMES; i++) {
		/* Alternating up and down, small and large steps. */
		f_max[i] = 0x7f1234567000ull + (uint64_t)(i % 2 ? -i * 4096 : i * 17);
		f_far[i] = (i % 3 == 0) ? 0xffffffffffffff00ull - (uint64_t)i
			 : (i % 3 == 1) ? (uint64_t)i
					: 0x8000000000000000ull + (uint64_t)i;
	}

	CHECK_EQ(put_request(f.h, 1, 4242, ep_users, f.h->start_monotonic_ns +
			     1500000000ull, 123456789, 200, 7,
			     RING_REQ_SAMPLED | RING_REQ_MANUAL), 0);
	CHECK_EQ(put_sample(f.h, 1, 4242, ep_users, 1000, f_down,
			    (int)(sizeof(f_down) / sizeof(f_down[0])), NULL), 0);
	CHECK_EQ(put_sample(f.h, 0, 4243, RING_ENDPOINT_NONE, 1001, f_max,
			    RING_MAX_FRAMES, NULL), 0);
	CHECK_EQ(put_sample(f.h, 2, 4244, ep_root, 1002, f_far,
			    RING_MAX_FRAMES, NULL), 0);
	CHECK_EQ(put_sample(f.h, 3, 4245, ep_long, 1003, f_down, 1, NULL), 0);
	CHECK_EQ(put_sample(f.h, 4, 4246, ep_root, 1004, f_down, 0, NULL), 0);
	CHECK_EQ(put_request(f.h, 2, 4247, RING_ENDPOINT_NONE,
			     f.h->start_monotonic_ns - 2000000000ull, 0, 0, 0,
			     RING_REQ_TCP | RING_REQ_ABORTED), 0);
	CHECK_EQ(put_request(f.h, UINT64_MAX, UINT32_MAX, 12345678, t0,
			     UINT64_MAX, 599, UINT32_MAX, 0), 0);
	CHECK_EQ(put_request(f.h, 5, 1, ep_root, f.h->start_monotonic_ns, 1,
			     404, 0, RING_REQ_SAMPLED), 0);

	n = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
	CHECK_EQ(n, 9);
	CHECK_EQ(s.n, 9);
	if (s.n == 9) {
		const struct got *g = s.v;
		double start0 = (double)f.h->start_realtime_ns / 1e9;

		CHECK_EQ(g[0].kind, READER_REQUEST);
		CHECK(g[0].req_id == 1);
		CHECK_EQ(g[0].tid, 4242);
		CHECK(g[0].has_endpoint);
		CHECK_STR(g[0].endpoint, "GET /users/{id}");
		CHECK_EQ(g[0].flags, RING_REQ_SAMPLED | RING_REQ_MANUAL);
		CHECK(fabs(g[0].start - (start0 + 1.5)) < 1e-6);
		CHECK(g[0].duration_ns == 123456789);
		CHECK_EQ(g[0].status, 200);

		CHECK_EQ(g[1].kind, READER_SAMPLE);
		CHECK(g[1].req_id == 1);
		CHECK_EQ(g[1].tid, 4242);
		CHECK_STR(g[1].has_endpoint ? g[1].endpoint : "(null)",
			  "GET /users/{id}");
		CHECK_EQ(g[1].nframes, sizeof(f_down) / sizeof(f_down[0]));
		CHECK(memcmp(g[1].frames, f_down, sizeof(f_down)) == 0);

		CHECK_EQ(g[2].kind, READER_SAMPLE);
		CHECK(g[2].req_id == 0);
		CHECK_EQ(g[2].tid, 4243);
		CHECK(!g[2].has_endpoint); /* outside any request */
		CHECK_EQ(g[2].nframes, RING_MAX_FRAMES);
		CHECK(memcmp(g[2].frames, f_max, sizeof(f_max)) == 0);

		CHECK_EQ(g[3].nframes, RING_MAX_FRAMES);
		CHECK(memcmp(g[3].frames, f_far, sizeof(f_far)) == 0);
		CHECK_STR(g[3].has_endpoint ? g[3].endpoint : "(null)", "GET /");
		CHECK_EQ(g[3].tid, 4244);

		/* Names are cut to RING_ENDPOINT_NAME_MAX - 1 bytes. */
		CHECK(g[4].has_endpoint);
		CHECK_EQ(strlen(g[4].endpoint), RING_ENDPOINT_NAME_MAX - 1);
		CHECK(strncmp(g[4].endpoint, long_name,
			      RING_ENDPOINT_NAME_MAX - 1) == 0);
		CHECK_EQ(g[4].nframes, 1);
		CHECK(g[4].frames[0] == f_down[0]);

		CHECK_EQ(g[5].kind, READER_SAMPLE);
		CHECK_EQ(g[5].nframes, 0);
		CHECK(g[5].req_id == 4);

		/* A request outside the table is counted under OTHER. */
		CHECK_EQ(g[6].kind, READER_REQUEST);
		CHECK_STR(g[6].endpoint, "OTHER");
		CHECK_EQ(g[6].flags, RING_REQ_TCP | RING_REQ_ABORTED);
		CHECK(fabs(g[6].start - (start0 - 2.0)) < 1e-6);
		CHECK_EQ(g[6].status, 0);

		CHECK(g[7].req_id == UINT64_MAX);
		CHECK(g[7].tid == UINT32_MAX);
		CHECK_STR(g[7].endpoint, "OTHER");
		CHECK(g[7].duration_ns == UINT64_MAX);
		CHECK_EQ(g[7].status, 599);
		CHECK_EQ(g[7].flags, 0);

		CHECK_STR(g[8].endpoint, "GET /");
		CHECK(fabs(g[8].start - start0) < 1e-6);
		CHECK_EQ(g[8].status, 404);
	}
	/* Nothing more, and the space is released. */
	CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 0);
	CHECK_EQ(s.n, 9);
	CHECK(load64(&f.h->tail) == load64(&f.h->head));
	CHECK(reader_error(f.r) == NULL);

	/* A drain limited to max delivers max and keeps the rest. */
	for (uint64_t i = 0; i < 10; i++)
		CHECK_EQ(put_request(f.h, 100 + i, 1, ep_root, 0, i, 200, 0, 0),
			 0);
	s.n = 0;
	CHECK_EQ(reader_drain(f.r, 3, sink_cb, &s), 3);
	CHECK_EQ(reader_drain(f.r, 0, sink_cb, &s), 0);
	CHECK_EQ(reader_drain(f.r, 5, sink_cb, &s), 5);
	CHECK_EQ(reader_drain(f.r, 5, sink_cb, &s), 2);
	CHECK_EQ(s.n, 10);
	for (size_t i = 0; i < s.n && i < 10; i++)
		CHECK(s.v[i].req_id == 100 + i);

	/* Counters are visible to the reader. */
	ring_count(&f.h->dropped_samples, 3);
	ring_count(&f.h->dropped_events, 5);
	ring_count(&f.h->dropped_requests, 4);
	ring_count(&f.h->skipped_samples, 6);
	ring_count(&f.h->untracked_conns, 7);
	{
		struct reader_counters c;

		reader_counters(f.r, &c);
		CHECK_EQ(c.dropped_samples, 3);
		CHECK_EQ(c.dropped_events, 5);
		CHECK_EQ(c.dropped_requests, 4);
		CHECK_EQ(c.skipped_samples, 6);
		CHECK_EQ(c.untracked_conns, 7);
		CHECK_EQ(c.overflow_endpoints, 0);
	}
	f.h->exited = 1;
	CHECK(reader_exited(f.r));
	sink_free(&s);
	fx_teardown(&f);
}

/* A callback's negative return stops the drain before that record: the
 * record it refused (out of memory, say) is delivered again next time. */
static int stop_cb(void *arg, const struct reader_event *ev)
{
	int *calls = arg;

	return ++*calls == 2 ? -ECANCELED : 0;
}

static void test_callback_stop(void)
{
	struct fixture f;
	struct sink s = {0};
	int calls = 0;

	fx_setup(&f, 4096, 16, true);
	for (uint64_t i = 0; i < 5; i++)
		CHECK_EQ(put_request(f.h, i, 1, RING_ENDPOINT_NONE, 0, 0, 0, 0, 0),
			 0);
	CHECK_EQ(reader_drain(f.r, SIZE_MAX, stop_cb, &calls), -ECANCELED);
	CHECK_EQ(calls, 2);
	/* The first record is consumed; the refused one comes again. */
	CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 4);
	CHECK_EQ(s.n, 4);
	if (s.n == 4)
		CHECK(s.v[0].req_id == 1 && s.v[3].req_id == 4);
	CHECK(reader_error(f.r) == NULL);
	sink_free(&s);
	fx_teardown(&f);
}

/*
 * Samples that share root-side frames with their thread's previous one
 * come out whole; one whose previous sample was never read is skipped and
 * counted, and so are the thread's next ones until a standalone sample.
 */
static void test_shared_frames(void)
{
	static const uint64_t a[] = {0x1000, 0x2000, 0x3000, 0x4000};
	static const uint64_t b[] = {0x1111, 0x2000, 0x3000, 0x4000};
	static const uint64_t c[] = {0x5555, 0x6666, 0x4000};
	static const uint64_t other[] = {0x9000, 0x9100};
	struct fixture f;
	struct sink s = {0};
	struct reader_counters rc;

	fx_setup(&f, 64 << 10, 1000, true);
	CHECK_EQ(put_sample_linked(f.h, 1, 7, RING_ENDPOINT_NONE, 0, a, 4, 0, 1, NULL), 0);
	/* Another thread in between changes nothing for thread 7. */
	CHECK_EQ(put_sample_linked(f.h, 1, 8, RING_ENDPOINT_NONE, 0, other, 2, 0, 1, NULL), 0);
	CHECK_EQ(put_sample_linked(f.h, 1, 7, RING_ENDPOINT_NONE, 0, b, 4, 3, 2, NULL), 0);
	CHECK_EQ(put_sample_linked(f.h, 1, 7, RING_ENDPOINT_NONE, 0, c, 3, 1, 3, NULL), 0);
	/* Serial 5 follows 3: sample 4 was lost. */
	CHECK_EQ(put_sample_linked(f.h, 1, 7, RING_ENDPOINT_NONE, 0, b, 4, 2, 5, NULL), 0);
	CHECK_EQ(put_sample_linked(f.h, 1, 7, RING_ENDPOINT_NONE, 0, b, 4, 3, 6, NULL), 0);
	/* A standalone sample, then linked ones resolve again. */
	CHECK_EQ(put_sample_linked(f.h, 1, 7, RING_ENDPOINT_NONE, 0, a, 4, 0, 7, NULL), 0);
	CHECK_EQ(put_sample_linked(f.h, 1, 7, RING_ENDPOINT_NONE, 0, b, 4, 3, 8, NULL), 0);
	/* More shared frames than the previous sample had: unresolved. */
	CHECK_EQ(put_sample_linked(f.h, 1, 8, RING_ENDPOINT_NONE, 0, b, 4, 3, 2, NULL), 0);
	CHECK_EQ(reader_drain(f.r, 100, sink_cb, &s), 6);
	if (s.n == 6) {
		CHECK_EQ(s.v[0].nframes, 4);
		CHECK_EQ(s.v[1].tid, 8);
		CHECK_EQ(s.v[2].nframes, 4);
		CHECK(memcmp(s.v[2].frames, b, sizeof(b)) == 0);
		CHECK_EQ(s.v[3].nframes, 3);
		CHECK(memcmp(s.v[3].frames, c, sizeof(c)) == 0);
		CHECK(memcmp(s.v[4].frames, a, sizeof(a)) == 0);
		CHECK(memcmp(s.v[5].frames, b, sizeof(b)) == 0);
	}
	reader_counters(f.r, &rc);
	CHECK_EQ(rc.samples, 9);
	CHECK_EQ(rc.unresolved_samples, 3);
	CHECK(rc.sample_bytes >= 9 * sizeof(struct ring_sample));
	/* More shared frames than frames: the ring is corrupt. */
	CHECK_EQ(put_sample_linked(f.h, 1, 9, RING_ENDPOINT_NONE, 0, a, 2, 3, 1, NULL), 0);
	CHECK_EQ(reader_drain(f.r, 100, sink_cb, &s), -EBADMSG);
	sink_free(&s);
	fx_teardown(&f);
}


/* ------------------------------------------------------------------------ */
/* e. Endpoint table                                                        */
/* ------------------------------------------------------------------------ */

static void test_endpoints(void)
{
	struct fixture f;
	struct sink s = {0};
	uint32_t idx[10], other, again;
	char name[64];

	fx_setup(&f, 4096, 10, true);
	for (int i = 0; i < 10; i++) {
		(void)snprintf(name, sizeof(name), "GET /api/%d", i);
		idx[i] = ep_intern(f.h, name, 10);
		CHECK(idx[i] < f.h->endpoints_cap);
		CHECK_STR(ring_test_slot_name(f.h, idx[i]), name);
		for (int j = 0; j < i; j++)
			CHECK(idx[j] != idx[i]);
	}
	CHECK_EQ(f.h->endpoints_used, 10);
	CHECK_EQ(f.h->overflow_endpoints, 0);
	for (int i = 0; i < 10; i++) {
		(void)snprintf(name, sizeof(name), "GET /api/%d", i);
		CHECK_EQ(ep_intern(f.h, name, 10), idx[i]);
	}
	/* Beyond the limit: OTHER, counted. */
	other = ep_intern(f.h, "GET /api/10", 10);
	CHECK(other < f.h->endpoints_cap);
	CHECK_STR(ring_test_slot_name(f.h, other), "OTHER");
	for (int i = 0; i < 10; i++)
		CHECK(idx[i] != other);
	CHECK_EQ(f.h->overflow_endpoints, 1);
	for (int i = 11; i < 30; i++) {
		(void)snprintf(name, sizeof(name), "GET /api/%d", i);
		CHECK_EQ(ep_intern(f.h, name, 10), other);
	}
	CHECK_EQ(f.h->overflow_endpoints, 20);
	CHECK_EQ(f.h->endpoints_used, 10);
	/* Known names still map to themselves. */
	again = ep_intern(f.h, "GET /api/3", 10);
	CHECK_EQ(again, idx[3]);
	CHECK_EQ(f.h->overflow_endpoints, 20);
	/* The reader sees the names. */
	CHECK_EQ(put_request(f.h, 1, 1, idx[7], 0, 0, 200, 0, 0), 0);
	CHECK_EQ(put_request(f.h, 2, 1, other, 0, 0, 200, 0, 0), 0);
	CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 2);
	if (s.n == 2) {
		CHECK_STR(s.v[0].endpoint, "GET /api/7");
		CHECK_STR(s.v[1].endpoint, "OTHER");
	}
	{
		struct reader_counters c;

		reader_counters(f.r, &c);
		CHECK_EQ(c.overflow_endpoints, 20);
	}
	sink_free(&s);
	fx_teardown(&f);

	/* Long names are cut; the cut name is found again. */
	fx_setup(&f, 4096, 100, false);
	{
		char a[300], b[300];
		uint32_t ia, ia2, ib;

		memset(a, 'a', sizeof(a) - 1);
		a[sizeof(a) - 1] = '\0';
		ia = ep_intern(f.h, a, 100);
		ia2 = ep_intern(f.h, a, 100);
		CHECK_EQ(ia, ia2);
		CHECK_EQ(strlen(ring_test_slot_name(f.h, ia)), RING_ENDPOINT_NAME_MAX - 1);
		/* A name that is a prefix of another is distinct. */
		memcpy(b, a, 50);
		b[50] = '\0';
		ib = ep_intern(f.h, b, 100);
		CHECK(ib != ia);
		CHECK_STR(ring_test_slot_name(f.h, ib), b);
		CHECK_EQ(ep_intern(f.h, "", 100), ep_intern(f.h, "", 100));
	}
	fx_teardown(&f);
}

/*
 * ring_endpoint_own() says whether the index is the name's own slot: true
 * when it interns a name and when it finds it again, false when the name
 * counts under OTHER (a caller that remembered that answer would skip the
 * overflow count of later requests).
 */
static void test_endpoint_own(void)
{
	struct fixture f;
	uint32_t a, a2, b, other;
	bool own;

	fx_setup(&f, 4096, 2, false);
	own = false;
	a = ring_endpoint_own(f.h, "GET /a", 6, 2, &own);
	CHECK(own);
	CHECK_STR(ring_test_slot_name(f.h, a), "GET /a");
	own = false;
	a2 = ring_endpoint_own(f.h, "GET /a", 6, 2, &own);
	CHECK(own);
	CHECK_EQ(a2, a);
	own = false;
	b = ring_endpoint_own(f.h, "GET /b", 6, 2, &own);
	CHECK(own);
	CHECK(b != a);
	/* Past the limit of 2: OTHER, not the name's own, counted each time. */
	own = true;
	other = ring_endpoint_own(f.h, "GET /c", 6, 2, &own);
	CHECK(!own);
	CHECK_STR(ring_test_slot_name(f.h, other), "OTHER");
	CHECK_EQ(f.h->overflow_endpoints, 1);
	own = true;
	CHECK_EQ(ring_endpoint_own(f.h, "GET /c", 6, 2, &own), other);
	CHECK(!own);
	CHECK_EQ(f.h->overflow_endpoints, 2);
	/* Known names are still their own past the limit. */
	own = false;
	CHECK_EQ(ring_endpoint_own(f.h, "GET /b", 6, 2, &own), b);
	CHECK(own);
	CHECK_EQ(f.h->overflow_endpoints, 2);
	/* ring_endpoint() gives the same answers. */
	CHECK_EQ(ring_endpoint(f.h, "GET /a", 6, 2), a);
	CHECK_EQ(ring_endpoint(f.h, "GET /d", 6, 2), other);
	CHECK_EQ(f.h->overflow_endpoints, 3);
	fx_teardown(&f);
}

#define EP_THREADS 4
#define EP_NAMES 50

struct ep_race {
	struct ring_header *h;
	pthread_barrier_t *barrier;
	unsigned seed;
	uint32_t got[EP_NAMES];
};

static char ep_names[EP_NAMES][32];

static void *ep_thread(void *arg)
{
	struct ep_race *e = arg;
	int order[EP_NAMES];
	uint64_t x = e->seed;

	for (int i = 0; i < EP_NAMES; i++)
		order[i] = i;
	for (int i = EP_NAMES - 1; i > 0; i--) {
		int j = (int)((x = mix64(x)) % (uint64_t)(i + 1)), t = order[i];

		order[i] = order[j];
		order[j] = t;
	}
	pthread_barrier_wait(e->barrier);
	for (int i = 0; i < EP_NAMES; i++) {
		int k = order[i];

		e->got[k] = ep_intern(e->h, ep_names[k], 1000);
	}
	return NULL;
}

static void test_endpoints_concurrent(void)
{
	struct fixture f;
	struct ep_race race[EP_THREADS];
	pthread_t t[EP_THREADS];
	pthread_barrier_t barrier;
	int bad = 0, dups = 0;
	size_t ep_bytes;

	fx_setup(&f, 4096, 1000, false);
	ep_bytes = (size_t)f.h->endpoints_cap * sizeof(struct ring_endpoint);
	for (int i = 0; i < EP_NAMES; i++)
		(void)snprintf(ep_names[i], sizeof(ep_names[i]), "POST /v%d/x", i);
	for (int round = 0; round < 300 && bad < 5; round++) {
		/* Empty table for each round. */
		memset((uint8_t *)f.h + f.h->endpoints_off, 0, ep_bytes);
		f.h->endpoints_used = 0;
		pthread_barrier_init(&barrier, NULL, EP_THREADS);
		for (int i = 0; i < EP_THREADS; i++) {
			race[i].h = f.h;
			race[i].barrier = &barrier;
			race[i].seed = (unsigned)(round * EP_THREADS + i);
			pthread_create(&t[i], NULL, ep_thread, &race[i]);
		}
		for (int i = 0; i < EP_THREADS; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&barrier);
		for (int i = 0; i < EP_THREADS; i++) {
			for (int k = 0; k < EP_NAMES; k++) {
				uint32_t idx = race[i].got[k];

				/* The slot holds this very name... */
				if (strcmp(ring_test_slot_name(f.h, idx), ep_names[k]) != 0)
					bad++;
				/* ...and no other name was given that slot. */
				for (int j = 0; j < EP_THREADS; j++)
					for (int m = 0; m < EP_NAMES; m++)
						if (m != k && race[j].got[m] == idx)
							bad++;
				if (race[i].got[k] != race[0].got[k])
					dups++;
			}
		}
	}
	CHECK_EQ(bad, 0);
	printf("# concurrent interning: %d name/thread pairs in a duplicate "
	       "slot\n", dups);
	fx_teardown(&f);
}

int main(void)
{
	RUN(test_round_trip);
	RUN(test_shared_frames);
	RUN(test_callback_stop);
	ring_wrap_tests(&check_tests, &check_failures);
	ring_stress_tests(&check_tests, &check_failures);
	RUN(test_endpoints);
	RUN(test_endpoint_own);
	RUN(test_endpoints_concurrent);
	ring_header_tests(&check_tests, &check_failures);
	ring_record_tests(&check_tests, &check_failures);
	ring_admit_tests(&check_tests, &check_failures);
	return check_done();
}

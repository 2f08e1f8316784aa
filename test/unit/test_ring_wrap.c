/*
 * test_ring_wrap.c — unit tests for the shared-memory ring, part of
 * test_ring (test_ring.c): wrap-around (PAD records and the short-gap
 * skip rule) and the full ring.
 */
#include "check.h"
#include "ring_test.h"

/* ------------------------------------------------------------------------ */
/* b. Wrap-around                                                           */
/* ------------------------------------------------------------------------ */

/* Frames of record id: deterministic, nframes in [0, maxn]. */
static int id_frames(uint64_t id, int maxn, uint64_t *frames)
{
	uint64_t x = mix64(id);
	int n = (int)(x % (uint64_t)(maxn + 1));
	uint64_t a = 0x7f0000000000ull + (mix64(x) & 0xffffffff);

	for (int i = 0; i < n; i++) {
		uint64_t r = mix64(x + (uint64_t)i);

		/* Mostly small steps both ways, sometimes huge ones. */
		if (r % 16 == 0)
			a = r;
		else
			a += (r & 1) ? (r >> 40) % 5000 : -(uint64_t)((r >> 40) % 5000);
		frames[i] = a;
	}
	return n;
}

static void wrap_run(uint64_t size, int maxn, uint64_t seed, int laps)
{
	struct fixture f;
	struct sink s = {0};
	uint64_t frames[RING_MAX_FRAMES];
	uint64_t next_write = 0, next_read = 0, pads = 0, skips = 0;
	int bad = 0, head_tail_bad = 0;
	uint32_t ep = 0;

	fx_setup(&f, size, 16, true);
	ep = ep_intern(f.h, "/wrap", 16);
	rng_state = seed;
	while (load64(&f.h->head) < (uint64_t)laps * size && bad < 5) {
		int burst = 1 + (int)(rng_next() % 40);
		size_t max;
		int n;

		for (int k = 0; k < burst; k++) {
			uint64_t id = next_write, old = load64(&f.h->head);
			uint64_t pos = 0;
			int r;

			if (mix64(id) % 5 == 0) {
				r = put_request(f.h, id, (uint32_t)id, ep, id,
						id * 3, 200, 0, 0);
				pos = old;
				if (r == 0) {
					/* Position: head advanced by the record. */
					pos = load64(&f.h->head) - sizeof(struct ring_request);
				}
			} else {
				int nf = id_frames(id, maxn, frames);

				r = put_sample(f.h, id, (uint32_t)id, ep, id,
					       frames, nf, &pos);
			}
			if (r < 0)
				break; /* full: drain */
			if (pos != old) {
				/* Wrapped: the bytes [old, pos) were skipped. */
				if (pos - old >= sizeof(struct ring_rec))
					pads++;
				else
					skips++;
				if ((pos & (size - 1)) != 0)
					bad++;
			}
			next_write++;
		}
		s.n = 0;
		max = (rng_next() % 3 == 0) ? 1 + rng_next() % 8 : SIZE_MAX;
		n = reader_drain(f.r, max, sink_cb, &s);
		if (n < 0) {
			printf("# drain: %d %s\n", n, reader_error(f.r));
			bad++;
			break;
		}
		if ((size_t)n > max || (size_t)n != s.n)
			bad++;
		for (size_t i = 0; i < s.n; i++) {
			const struct got *g = &s.v[i];
			uint64_t id = next_read++;

			if (g->req_id != id) {
				if (bad++ < 5)
					printf("# expected record %llu, got %llu\n",
					       (unsigned long long)id,
					       (unsigned long long)g->req_id);
				next_read = g->req_id + 1;
				continue;
			}
			if (g->kind == READER_SAMPLE) {
				int nf = id_frames(id, maxn, frames);

				if (mix64(id) % 5 == 0 || g->nframes != (uint32_t)nf ||
				    memcmp(g->frames, frames, (size_t)nf * 8) ||
				    g->tid != (uint32_t)id ||
				    strcmp(g->endpoint, "/wrap") != 0)
					bad++;
			} else if (mix64(id) % 5 != 0 ||
				   g->duration_ns != id * 3 ||
				   strcmp(g->endpoint, "/wrap") != 0) {
				bad++;
			}
		}
		/* A drain without limit leaves the ring empty: tail == head. */
		if (max == SIZE_MAX && next_read == next_write &&
		    load64(&f.h->tail) != load64(&f.h->head)) {
			if (head_tail_bad++ < 3)
				printf("# after a full drain: head %llu (offset "
				       "%llu), tail %llu\n",
				       (unsigned long long)load64(&f.h->head),
				       (unsigned long long)(load64(&f.h->head) &
							    (size - 1)),
				       (unsigned long long)load64(&f.h->tail));
		}
	}
	/* Drain the rest. */
	s.n = 0;
	CHECK(reader_drain(f.r, SIZE_MAX, sink_cb, &s) >= 0);
	for (size_t i = 0; i < s.n; i++)
		if (s.v[i].req_id != next_read++)
			bad++;
	CHECK_EQ(bad, 0);
	CHECK_EQ(head_tail_bad, 0);
	CHECK(next_read == next_write);
	CHECK(load64(&f.h->tail) == load64(&f.h->head));
	CHECK(pads > 0);
	CHECK(skips > 0);
	CHECK(reader_error(f.r) == NULL);
	printf("# wrap size %llu: %llu records, %llu laps, %llu PAD, "
	       "%llu short skips\n",
	       (unsigned long long)size, (unsigned long long)next_write,
	       (unsigned long long)(load64(&f.h->head) / size),
	       (unsigned long long)pads, (unsigned long long)skips);
	sink_free(&s);
	fx_teardown(&f);
}

static void test_wrap_around(void)
{
	wrap_run(4096, 40, 1, 400);
	wrap_run(64 << 10, RING_MAX_FRAMES, 2, 60);
	wrap_run(8192, 3, 3, 400); /* small records only */
}

/* Record length of a sample with these frames. */
static uint32_t sample_len(const uint64_t *frames, int n)
{
	uint8_t enc[RING_MAX_FRAMES * RING_CODEC_MAX_BYTES];

	return (uint32_t)RING_ALIGN_UP(sizeof(struct ring_sample) +
				       ring_codec_encode(enc, frames, n));
}

/*
 * The exact short-gap case: a record ends 8 bytes before the end of the
 * data area. The consumer must not move tail past head, and the next
 * record starts at the beginning of the area.
 */
static void test_short_gap(void)
{
	struct fixture f;
	struct sink s = {0};
	const uint64_t size = 4096;
	uint64_t frames[1] = {0x1234}, pos = 0, total;
	int n;

	fx_setup(&f, size, 16, true);
	/* 4088 bytes: 73 requests of 56 bytes. */
	for (int i = 0; i < 73; i++)
		CHECK_EQ(put_request(f.h, (uint64_t)i, 0, RING_ENDPOINT_NONE, 0,
				     0, 0, 0, 0), 0);
	CHECK(load64(&f.h->head) == size - 8);
	n = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
	CHECK_EQ(n, 73);
	CHECK(load64(&f.h->tail) <= load64(&f.h->head));
	CHECK(load64(&f.h->tail) == size - 8);
	/* The next record goes to the start, 8 bytes skipped, no PAD. */
	CHECK_EQ(put_sample(f.h, 73, 0, RING_ENDPOINT_NONE, 0, frames, 1, &pos),
		 0);
	CHECK(pos == size);
	total = load64(&f.h->head);
	CHECK(total == size + sample_len(frames, 1));
	n = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
	CHECK_EQ(n, 1);
	CHECK_EQ(s.n, 74);
	if (s.n == 74)
		CHECK(s.v[73].req_id == 73 && s.v[73].frames[0] == 0x1234);
	CHECK(load64(&f.h->tail) == load64(&f.h->head));

	/* The same gap, now with a PAD of exactly one header (16 bytes). */
	for (int guard = 0; guard < 200; guard++) {
		uint64_t left = size - 16 - load64(&f.h->head) % size;
		uint64_t ones[RING_MAX_FRAMES];

		if (left == 0)
			break;
		if (left > sizeof(struct ring_sample) + 200) {
			CHECK_EQ(put_request(f.h, 0, 0, 0, 0, 0, 0, 0, 0), 0);
		} else {
			/* A sample of exactly `left` bytes: one byte per
			 * frame (1, then deltas of 0). */
			CHECK(left >= sizeof(struct ring_sample));
			for (int k = 0; k < RING_MAX_FRAMES; k++)
				ones[k] = 1;
			CHECK_EQ(put_sample(f.h, 0, 0, 0, 0, ones,
					    (int)(left - sizeof(struct ring_sample)),
					    NULL), 0);
		}
		if (reader_drain(f.r, SIZE_MAX, sink_cb, &s) < 0)
			break;
	}
	CHECK(load64(&f.h->head) % size == size - 16);
	CHECK_EQ(put_request(f.h, 999, 0, 0, 0, 0, 0, 0, 0), 0);
	s.n = 0;
	CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 1);
	CHECK(s.n == 1 && s.v[0].req_id == 999);
	CHECK(load64(&f.h->tail) == load64(&f.h->head));
	CHECK(load64(&f.h->head) % size == 56);
	CHECK(reader_error(f.r) == NULL);
	sink_free(&s);
	fx_teardown(&f);
}

/* ------------------------------------------------------------------------ */
/* c. Full ring                                                             */
/* ------------------------------------------------------------------------ */

static void test_full_ring(void)
{
	struct fixture f;
	struct sink s = {0};
	const uint64_t size = 4096;
	uint64_t id = 0, written, pos, pos2;
	struct ring_rec *a, *b;
	int n;

	fx_setup(&f, size, 16, true);
	/* Too large for any ring of this size. */
	CHECK(ring_reserve(f.h, (uint32_t)size / 2 + 8, RING_REC_PAD, 0, &pos) ==
	      NULL);
	CHECK(ring_reserve(f.h, (uint32_t)size, RING_REC_PAD, 0, &pos) == NULL);
	CHECK(load64(&f.h->head) == 0);

	for (int round = 0; round < 20; round++) {
		uint64_t first = id;

		/* Fill without draining until reserve fails. */
		while (put_request(f.h, id, 0, RING_ENDPOINT_NONE, 0, 0, 0, 0,
				   0) == 0) {
			id++;
			if (id - first > size)
				break;
		}
		written = id - first;
		CHECK(written > 0);
		CHECK(written * sizeof(struct ring_request) <= size);
		/* Full: less than a record and a gap are free. */
		CHECK(load64(&f.h->head) - load64(&f.h->tail) >
		      size - 2 * sizeof(struct ring_request));
		CHECK(load64(&f.h->head) - load64(&f.h->tail) <= size);
		/* Still full. */
		CHECK_EQ(put_request(f.h, 0, 0, 0, 0, 0, 0, 0, 0), -1);

		s.n = 0;
		n = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
		CHECK_EQ(n, (int)written);
		for (size_t i = 0; i < s.n; i++)
			CHECK(s.v[i].req_id == first + i);
		/* Nothing twice. */
		CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 0);
		CHECK(load64(&f.h->tail) == load64(&f.h->head));
		/* Space again. */
		CHECK_EQ(put_request(f.h, id, 0, 0, 0, 0, 0, 0, 0), 0);
		id++;
		s.n = 0;
		CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 1);
		CHECK(s.n == 1 && s.v[0].req_id == id - 1);
		/* Shift the phase for the next round. */
		for (int k = 0; k < round % 7; k++, id++) {
			uint64_t frame = id * 1000;

			CHECK_EQ(put_sample(f.h, id, 0, 0, 0, &frame, 1, NULL),
				 0);
		}
		s.n = 0;
		CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), round % 7);
	}

	/* Half of the ring at once is allowed when empty. */
	a = ring_reserve(f.h, (uint32_t)size / 2, RING_REC_PAD, 0, &pos);
	CHECK(a != NULL);
	if (a)
		ring_commit(a, pos);
	CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 0); /* a PAD */
	CHECK(load64(&f.h->tail) == load64(&f.h->head));

	/* An uncommitted record holds back the ones after it. */
	a = ring_reserve(f.h, sizeof(struct ring_request), RING_REC_REQUEST, 0,
			 &pos);
	b = ring_reserve(f.h, sizeof(struct ring_request), RING_REC_REQUEST, 0,
			 &pos2);
	CHECK(a && b);
	if (a && b) {
		struct ring_request *qa = (struct ring_request *)a;
		struct ring_request *qb = (struct ring_request *)b;

		memset(&qa->req_id, 0, sizeof(*qa) - sizeof(qa->rec));
		memset(&qb->req_id, 0, sizeof(*qb) - sizeof(qb->rec));
		qa->req_id = 1001;
		qb->req_id = 1002;
		ring_commit(b, pos2);
		s.n = 0;
		CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 0);
		CHECK(load64(&f.h->tail) == pos);
		ring_commit(a, pos);
		CHECK_EQ(reader_drain(f.r, SIZE_MAX, sink_cb, &s), 2);
		CHECK(s.n == 2 && s.v[0].req_id == 1001 && s.v[1].req_id == 1002);
	}
	CHECK(reader_error(f.r) == NULL);
	sink_free(&s);
	fx_teardown(&f);
}

/* Runs the tests of this file: see ring_test.h. */
void ring_wrap_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN(test_wrap_around);
	RUN(test_short_gap);
	RUN(test_full_ring);
	*tests = check_tests;
	*failures += check_failures;
}

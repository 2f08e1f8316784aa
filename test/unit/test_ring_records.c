/*
 * test_ring_records.c — unit tests for the shared-memory ring, part of
 * test_ring (test_ring.c): corrupt records, chosen and at random, and a
 * writer changing a record while the reader copies it.
 */
#include <pthread.h>

#include "check.h"
#include "ring_test.h"

/* ------------------------------------------------------------------------ */
/* f. Corrupt records                                                       */
/* ------------------------------------------------------------------------ */

static struct ring_rec *rec_at(struct ring_header *h, uint64_t pos)
{
	return (struct ring_rec *)((uint8_t *)h + h->data_off +
				   (pos & (h->data_size - 1)));
}

static void rec_commit(struct ring_rec *rec, uint64_t pos)
{
	atomic_store_explicit((_Atomic uint64_t *)&rec->seq,
			      pos ^ RING_SEQ_KEY, memory_order_release);
}

struct rec_case {
	const char *what;
	uint64_t pos;      /* where the bad record is */
	uint32_t len;
	uint16_t type;
	uint16_t nframes;  /* samples */
	uint16_t nbytes;
	const uint8_t *bytes;
	size_t nbytes_given;
	const char *reason;
};

static void test_corrupt_records(void)
{
	static const uint8_t two_cont[] = {0x81, 0x80};
	static const uint8_t long_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff,
					      0xff, 0xff, 0xff, 0xff, 0xff,
					      0x01, 0, 0, 0, 0, 0};
	static const uint8_t trailing[] = {0x01, 0x00, 0x00};
	static const uint8_t one[] = {0x05};
	const uint64_t size = 16384;
	const uint32_t SL = sizeof(struct ring_sample);
	const struct rec_case cases[] = {
		{"length 0", 0, 0, RING_REC_REQUEST, 0, 0, NULL, 0,
		 "bad record length"},
		{"length 8", 0, 8, RING_REC_PAD, 0, 0, NULL, 0,
		 "bad record length"},
		{"length 12", 0, 12, RING_REC_REQUEST, 0, 0, NULL, 0,
		 "bad record length"},
		{"length 60", 0, 60, RING_REC_REQUEST, 0, 0, NULL, 0,
		 "bad record length"},
		{"length 57", 0, 57, RING_REC_SAMPLE, 0, 0, NULL, 0,
		 "bad record length"},
		{"length past the end", size - 64, 128, RING_REC_REQUEST, 0, 0,
		 NULL, 0, "bad record length"},
		{"PAD past the end", size - 64, 72, RING_REC_PAD, 0, 0, NULL, 0,
		 "bad record length"},
		{"length = size", 0, (uint32_t)size + 8, RING_REC_PAD, 0, 0,
		 NULL, 0, "bad record length"},
		{"length max", 0, UINT32_MAX - 7, RING_REC_SAMPLE, 0, 0, NULL, 0,
		 "bad record length"},
		{"type 0", 0, 56, 0, 0, 0, NULL, 0, "unknown record type"},
		{"type 4", 0, 56, 4, 0, 0, NULL, 0, "unknown record type"},
		{"type 0xffff", 0, 56, 0xffff, 0, 0, NULL, 0,
		 "unknown record type"},
		{"request too short", 0, 48, RING_REC_REQUEST, 0, 0, NULL, 0,
		 "bad request record"},
		{"request header only", 0, 16, RING_REC_REQUEST, 0, 0, NULL, 0,
		 "bad request record"},
		{"sample too short", 0, SL - 8, RING_REC_SAMPLE, 0, 0, NULL, 0,
		 "bad sample record"},
		{"nframes 257", 0, SL + 8, RING_REC_SAMPLE, RING_MAX_FRAMES + 1, 1,
		 one, 1, "bad sample record"},
		{"nframes max", 0, SL + 8, RING_REC_SAMPLE, 0xffff, 1, one, 1,
		 "bad sample record"},
		{"nbytes past record", 0, SL + 8, RING_REC_SAMPLE, 1, 9, one, 1,
		 "bad sample record"},
		{"nbytes max", 0, SL + 8, RING_REC_SAMPLE, 1, 0xffff, one, 1,
		 "bad sample record"},
		{"varints past nbytes", 0, SL + 8, RING_REC_SAMPLE, 3, 2, two_cont,
		 2, "bad sample frames"},
		{"fewer varints than nframes", 0, SL + 8, RING_REC_SAMPLE, 2, 1, one,
		 1, "bad sample frames"},
		{"varint too long", 0, SL + 16, RING_REC_SAMPLE, 1, 16, long_varint,
		 16, "bad sample frames"},
		{"trailing bytes", 0, SL + 8, RING_REC_SAMPLE, 1, 3, trailing, 3,
		 "bad sample frames"},
		{"nbytes without frames", 0, SL + 8, RING_REC_SAMPLE, 0, 1, one, 1,
		 "bad sample frames"},
		/* Longer than any sample can be (RING_MAX_FRAMES varints). */
		{"sample of 8192 bytes", 0, 8192, RING_REC_SAMPLE, 1, 1, one, 1,
		 "bad record length"},
	};
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rec_case *c = &cases[i];
		struct fixture f;
		struct sink s = {0};
		struct ring_rec *rec;
		uint64_t pos = c->pos;
		char err[256];
		int n1, n2, n3;
		const char *why;

		fx_setup(&f, size, 16, false);
		/* A good record first, then the bad one. */
		f.h->head = f.h->tail = pos - 56;
		CHECK_EQ(reader_open(f.path, &f.r, err, sizeof(err)), 0);
		CHECK_EQ(put_request(f.h, 7, 7, RING_ENDPOINT_NONE, 0, 0, 0, 0,
				     0), 0);
		CHECK(load64(&f.h->head) == pos);
		rec = rec_at(f.h, pos);
		/* Clear what the case writes (not the good record, which is
		 * at the end of the area when pos is 0). */
		memset(rec, 0, (size_t)(size - (pos & (size - 1)) < 128
						? size - (pos & (size - 1))
						: 128));
		rec->len = c->len;
		rec->type = c->type;
		rec->flags = 0;
		if (c->type == RING_REC_SAMPLE && c->len >= SL &&
		    (pos & (size - 1)) + SL <= size) {
			struct ring_sample *sm = (struct ring_sample *)rec;

			sm->nframes = c->nframes;
			sm->nbytes = c->nbytes;
			if (c->bytes &&
			    (pos & (size - 1)) + SL + c->nbytes_given <= size)
				memcpy(sm + 1, c->bytes, c->nbytes_given);
		}
		rec_commit(rec, pos);
		f.h->head = pos + (c->len ? c->len : 8);

		n1 = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
		why = reader_error(f.r);
		n2 = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
		n3 = reader_drain(f.r, 1, sink_cb, &s);
		if (n1 != -EBADMSG || n2 != -EBADMSG || n3 != -EBADMSG || !why ||
		    strncmp(why, "corrupt ring: ", 14) != 0 ||
		    (c->reason && !strstr(why, c->reason)) || s.n != 1 ||
		    reader_error(f.r) != why) {
			bad++;
			printf("# %s: drains %d %d %d, %zu delivered, error "
			       "\"%s\"\n",
			       c->what, n1, n2, n3, s.n, why ? why : "(none)");
		}
		/* The bad record is not consumed. */
		CHECK(load64(&f.h->tail) == pos);
		sink_free(&s);
		fx_teardown(&f);
	}
	CHECK_EQ(bad, 0);
}

/*
 * Records inside a valid ring rewritten at random (garbage committed at the
 * tail): the drain delivers or fails with -EBADMSG, never crashes.
 */
static void test_corrupt_records_random(void)
{
	const uint64_t size = 4096;
	struct fixture f;
	int bad = 0, failed = 0;

	rng_state = 4242;
	for (int iter = 0; iter < 300; iter++) {
		struct sink s = {0};
		struct ring_rec *rec;
		uint64_t pos;
		char err[256];
		int n;

		fx_setup(&f, size, 16, false);
		pos = (rng_next() % (size / 8)) * 8 + size * (rng_next() % 3);
		f.h->head = f.h->tail = pos;
		CHECK_EQ(reader_open(f.path, &f.r, err, sizeof(err)), 0);
		/* Garbage everywhere, a committed header at the tail. */
		for (uint64_t o = 0; o < size; o += 8) {
			uint64_t x = rng_next();

			memcpy((uint8_t *)f.h + f.h->data_off + o, &x, 8);
		}
		/* A chain of committed headers with random lengths, types
		 * and sample fields. */
		for (uint64_t p = pos, k = 0; k < 12 && p - pos < size; k++) {
			uint64_t rem = size - (p & (size - 1));
			uint32_t len;

			if (rem < sizeof(*rec)) {
				p += rem;
				continue;
			}
			rec = rec_at(f.h, p);
			len = (uint32_t)(rng_next() % 4 == 0
						 ? rng_next()
						 : (2 + rng_next() % 60) * 8);
			if (rng_next() % 8 == 0)
				len = (uint32_t)rem;
			rec->len = len;
			rec->type = (uint16_t)(1 + rng_next() % 4);
			if (rec->type == RING_REC_SAMPLE &&
			    rem >= sizeof(struct ring_sample)) {
				struct ring_sample *sm = (struct ring_sample *)rec;

				sm->nframes = (uint16_t)(rng_next() % 4 == 0
								 ? rng_next()
								 : rng_next() % 20);
				sm->nbytes = (uint16_t)(rng_next() % 4 == 0
								? rng_next()
								: rng_next() % 64);
			}
			rec_commit(rec, p);
			if (len % 8 || len < sizeof(*rec) || len > rem)
				break;
			p += len;
		}
		f.h->head = pos + size;
		n = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
		if (n < 0) {
			failed++;
			if (n != -EBADMSG || !reader_error(f.r))
				bad++;
			if (reader_drain(f.r, SIZE_MAX, sink_cb, &s) != -EBADMSG)
				bad++;
		}
		sink_free(&s);
		fx_teardown(&f);
	}
	CHECK_EQ(bad, 0);
	CHECK(failed > 0);
}

/*
 * A writer changing a record's length while the reader copies it: the
 * reader must use the length it checked, never a second read of it.
 */
struct flipper {
	struct ring_rec *rec;
	atomic_int stop;
};

static void *flipper_main(void *arg)
{
	struct flipper *fl = arg;
	_Atomic uint32_t *len = (_Atomic uint32_t *)&fl->rec->len;

	uint64_t x = 1;

	/* Each value holds for a varying while, so that the reader sees
	 * both, and sometimes a change between its reads. */
	while (!atomic_load_explicit(&fl->stop, memory_order_relaxed)) {
		x = mix64(x);
		atomic_store_explicit(len, sizeof(struct ring_sample) + 8,
				      memory_order_relaxed);
		for (volatile unsigned i = 0; i < (x & 255); i++)
			;
		atomic_store_explicit(len, 65528, memory_order_relaxed);
		for (volatile unsigned i = 0; i < ((x >> 8) & 63); i++)
			;
	}
	return NULL;
}

static void test_racing_writer(void)
{
	struct fixture f;
	struct flipper fl;
	struct ring_sample *sm;
	pthread_t t;
	int delivered = 0, rejected = 0, bad = 0;
	double end;

	fx_setup(&f, 64 << 10, 16, false);
	sm = (struct ring_sample *)rec_at(f.h, 0);
	sm->rec.len = sizeof(*sm) + 8;
	sm->rec.type = RING_REC_SAMPLE;
	sm->nframes = 1;
	sm->nbytes = 1;
	*(uint8_t *)(sm + 1) = 0x05;
	rec_commit(&sm->rec, 0);
	f.h->head = sizeof(*sm) + 8;
	fl.rec = &sm->rec;
	atomic_store(&fl.stop, 0);
	pthread_create(&t, NULL, flipper_main, &fl);
	end = now_s() + 1.0;
	while (now_s() < end && bad < 3) {
		struct sink s = {0};
		char err[256];
		int n;

		store64(&f.h->tail, 0);
		if (reader_open(f.path, &f.r, err, sizeof(err)) < 0) {
			bad++;
			break;
		}
		n = reader_drain(f.r, SIZE_MAX, sink_cb, &s);
		if (n == 1 && load64(&f.h->tail) == sizeof(*sm) + 8 && s.n == 1 &&
		    s.v[0].nframes == 1 && s.v[0].frames[0] == 5) {
			delivered++;
		} else if (n == -EBADMSG && load64(&f.h->tail) == 0) {
			rejected++;
		} else {
			if (bad++ < 3)
				printf("# drain %d, tail %llu (checked length "
				       "56 or 65528)\n",
				       n, (unsigned long long)load64(&f.h->tail));
		}
		reader_close(f.r);
		f.r = NULL;
		sink_free(&s);
	}
	atomic_store(&fl.stop, 1);
	pthread_join(t, NULL);
	CHECK_EQ(bad, 0);
	printf("# racing writer: %d delivered, %d rejected\n", delivered,
	       rejected);
	fx_teardown(&f);
}

/* Runs the tests of this file: see ring_test.h. */
void ring_record_tests(int *tests, int *failures)
{
	check_tests = *tests;
	RUN(test_corrupt_records);
	RUN(test_corrupt_records_random);
	RUN(test_racing_writer);
	*tests = check_tests;
	*failures += check_failures;
}

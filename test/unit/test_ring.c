/*
 * test_ring.c — unit tests for the shared-memory ring: the shim's producer
 * side (ring.h) against the collector's consumer side (reader.h), on real
 * /dev/shm segments made by ring_create().
 *
 *   round trip, wrap-around (PAD records and the short-gap skip rule), full
 *   ring, multi-producer stress, reservation from a signal handler,
 *   endpoint table, corrupt headers and corrupt records (the ring is
 *   untrusted input to the reader), a writer changing a record while the
 *   reader copies it.
 *
 * Every test unlinks the segments it creates.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ingest/reader.h"
#include "ring.h"
#include "ring_format.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */


/* A seeded generator for per-record contents, independent of rng_state. */
/* Interns a NUL-terminated endpoint name. */
static uint32_t ep_intern(struct ring_header *h, const char *name,
			  unsigned max_endpoints)
{
	return ring_endpoint(h, name, strlen(name), max_endpoints);
}

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Unsigned LEB128, as in shim/sampler.c. */
static uint8_t *enc_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Frames, leaf first: first address, then zigzag deltas (shim/sampler.c). */
static size_t enc_frames(uint8_t *out, const uint64_t *ips, int n)
{
	uint8_t *p = out;
	uint64_t prev = 0;

	for (int i = 0; i < n; i++) {
		uint64_t a = ips[i];

		if (i == 0) {
			p = enc_varint(p, a);
		} else {
			int64_t d = (int64_t)(a - prev);

			p = enc_varint(p, ((uint64_t)d << 1) ^ (uint64_t)(d >> 63));
		}
		prev = a;
	}
	return (size_t)(p - out);
}

struct fixture {
	struct ring_header *h;
	struct reader *r;
	char path[128];
};

/* Path of the segment mapped at h: the file whose header is h's. */
static int find_path(const struct ring_header *h, char *path, size_t size)
{
	for (int n = 0; n < 1000; n++) {
		struct ring_header copy;
		int fd;
		ssize_t got;

		(void)snprintf(path, size, "%s%d.%d", RING_PATH_PREFIX,
			       (int)getpid(), n);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		got = pread(fd, &copy, sizeof(copy), 0);
		(void)close(fd);
		if (got == (ssize_t)sizeof(copy) &&
		    copy.start_monotonic_ns == h->start_monotonic_ns &&
		    copy.start_realtime_ns == h->start_realtime_ns &&
		    copy.pid == h->pid && copy.magic == h->magic)
			return 0;
	}
	return -1;
}

/* Creates a segment of `size` data bytes; opens a reader unless !open. */
static void fx_setup(struct fixture *f, uint64_t size, unsigned max_ep,
		     bool open_reader)
{
	struct env_config cfg;
	char err[256];
	int e;

	memset(f, 0, sizeof(*f));
	env_defaults(&cfg);
	cfg.ring_size = size;
	cfg.max_endpoints = max_ep;
	cfg.max_depth = RING_MAX_FRAMES;
	e = ring_create(&cfg, "/usr/local/bin/test-server", &f->h);
	if (e < 0) {
		printf("Bail out! ring_create: %s\n", strerror(-e));
		exit(1);
	}
	if (find_path(f->h, f->path, sizeof(f->path)) < 0) {
		printf("Bail out! cannot find the segment in /dev/shm\n");
		exit(1);
	}
	if (open_reader) {
		e = reader_open(f->path, &f->r, err, sizeof(err));
		if (e < 0) {
			printf("Bail out! reader_open(%s): %s\n", f->path, err);
			exit(1);
		}
	}
}

static void fx_teardown(struct fixture *f)
{
	reader_close(f->r);
	ring_unmap(f->h);
	CHECK_EQ(unlink(f->path), 0);
	memset(f, 0, sizeof(*f));
}

static uint64_t load64(const uint64_t *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)p,
				    memory_order_acquire);
}

static void store64(uint64_t *p, uint64_t v)
{
	atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_release);
}

/* Events collected by a drain. */
struct got {
	enum reader_kind kind;
	uint64_t req_id;
	uint32_t tid;
	bool has_endpoint;
	char endpoint[RING_ENDPOINT_NAME_MAX];
	uint16_t flags;
	double start;
	uint64_t duration_ns;
	uint32_t status;
	uint32_t nframes;
	uint64_t frames[RING_MAX_FRAMES];
};

struct sink {
	struct got *v;
	size_t n, cap;
};

static int sink_cb(void *arg, const struct reader_event *ev)
{
	struct sink *s = arg;
	struct got *g;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = realloc(s->v, s->cap * sizeof(*s->v));
		if (!s->v) {
			printf("Bail out! out of memory\n");
			exit(1);
		}
	}
	g = &s->v[s->n++];
	memset(g, 0, sizeof(*g));
	g->kind = ev->kind;
	g->req_id = ev->req_id;
	g->tid = ev->tid;
	g->has_endpoint = ev->endpoint != NULL;
	if (ev->endpoint)
		(void)snprintf(g->endpoint, sizeof(g->endpoint), "%s",
			       ev->endpoint);
	g->flags = ev->flags;
	g->start = ev->start;
	g->duration_ns = ev->duration_ns;
	g->status = ev->status;
	g->nframes = ev->nframes;
	if (ev->nframes > RING_MAX_FRAMES) {
		printf("# nframes %u\n", ev->nframes);
		return -ERANGE;
	}
	if (ev->nframes)
		memcpy(g->frames, ev->frames, ev->nframes * sizeof(uint64_t));
	return 0;
}

static void sink_free(struct sink *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/*
 * Writes a record of rec_len bytes as the shim does: ring_reserve(), then
 * body's bytes from the end of the record header to body_len (body is the
 * record's struct and what follows it; the producer fills in the header),
 * then ring_commit(). The alignment padding is left as it is. Returns 0,
 * or -1 when the ring is full; its position in *ret_pos when not NULL.
 */
static int put_record(struct ring_header *h, uint16_t type, uint16_t flags,
		      const void *body, size_t body_len, uint32_t rec_len,
		      uint64_t *ret_pos)
{
	struct ring_rec *rec;
	uint64_t pos;

	rec = ring_reserve(h, rec_len, type, flags, &pos);
	if (!rec)
		return -1;
	memcpy((uint8_t *)rec + sizeof(*rec),
	       (const uint8_t *)body + sizeof(*rec), body_len - sizeof(*rec));
	ring_commit(rec, pos);
	if (ret_pos)
		*ret_pos = pos;
	return 0;
}

/* Writes a REQUEST record; returns 0 or -1 when the ring is full. */
static int put_request(struct ring_header *h, uint64_t req_id, uint32_t tid,
		       uint32_t endpoint, uint64_t start_ns, uint64_t dur,
		       uint32_t status, uint32_t samples, uint16_t flags)
{
	const struct ring_request q = {
		.req_id = req_id, .tid = tid, .endpoint = endpoint,
		.start_ns = start_ns, .duration_ns = dur, .status = status,
		.samples = samples,
	};

	return put_record(h, RING_REC_REQUEST, flags, &q, sizeof(q), sizeof(q),
			  NULL);
}

/* Record length of a sample with these frames. */
static uint32_t sample_len(const uint64_t *frames, int n)
{
	uint8_t enc[RING_MAX_FRAMES * 10];

	return (uint32_t)RING_ALIGN_UP(sizeof(struct ring_sample) +
				       enc_frames(enc, frames, n));
}

/*
 * Writes a SAMPLE record as sampler.c does, its last `shared` frames left
 * to the thread's previous sample (`serial`); 0 or -1 when full.
 */
static int put_sample_linked(struct ring_header *h, uint64_t req_id,
			     uint32_t tid, uint32_t endpoint, uint64_t time_ns,
			     const uint64_t *frames, int n, int shared,
			     uint16_t serial, uint64_t *ret_pos)
{
	uint8_t buf[sizeof(struct ring_sample) + RING_MAX_FRAMES * 10];
	size_t nbytes = enc_frames(buf + sizeof(struct ring_sample), frames,
				   n - shared);
	const struct ring_sample s = {
		.req_id = req_id, .tid = tid, .endpoint = endpoint,
		.time_ns = time_ns, .nframes = (uint16_t)n,
		.nbytes = (uint16_t)nbytes, .shared = (uint16_t)shared,
		.serial = serial,
	};

	memcpy(buf, &s, sizeof(s));
	return put_record(h, RING_REC_SAMPLE, 0, buf, sizeof(s) + nbytes,
			  (uint32_t)RING_ALIGN_UP(sizeof(s) + nbytes), ret_pos);
}

/* A standalone SAMPLE record. */
static int put_sample(struct ring_header *h, uint64_t req_id, uint32_t tid,
		      uint32_t endpoint, uint64_t time_ns,
		      const uint64_t *frames, int n, uint64_t *ret_pos)
{
	return put_sample_linked(h, req_id, tid, endpoint, time_ns, frames, n,
				 0, 0, ret_pos);
}

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

/* ------------------------------------------------------------------------ */
/* e. Endpoint table                                                        */
/* ------------------------------------------------------------------------ */

static const char *ep_name(const struct ring_header *h, uint32_t idx)
{
	const struct ring_endpoint *eps =
		(const struct ring_endpoint *)((const uint8_t *)h +
					       h->endpoints_off);

	if (idx >= h->endpoints_cap || eps[idx].state != RING_EP_READY)
		return "(not ready)";
	return eps[idx].name;
}

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
		CHECK_STR(ep_name(f.h, idx[i]), name);
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
	CHECK_STR(ep_name(f.h, other), "OTHER");
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
		CHECK_EQ(strlen(ep_name(f.h, ia)), RING_ENDPOINT_NAME_MAX - 1);
		/* A name that is a prefix of another is distinct. */
		memcpy(b, a, 50);
		b[50] = '\0';
		ib = ep_intern(f.h, b, 100);
		CHECK(ib != ia);
		CHECK_STR(ep_name(f.h, ib), b);
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
	CHECK_STR(ep_name(f.h, a), "GET /a");
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
	CHECK_STR(ep_name(f.h, other), "OTHER");
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
				if (strcmp(ep_name(f.h, idx), ep_names[k]) != 0)
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

/* ------------------------------------------------------------------------ */
/* f. Corrupt headers                                                       */
/* ------------------------------------------------------------------------ */

static uint8_t *good_image;
static size_t good_size;
static char tmp_path[64];

/* Writes image[0..size) to a fresh private temp file. */
static void write_tmp(const uint8_t *image, size_t size, mode_t mode)
{
	int fd;

	(void)snprintf(tmp_path, sizeof(tmp_path), "/tmp/test_ring.XXXXXX");
	fd = mkstemp(tmp_path);
	if (fd < 0) {
		printf("Bail out! mkstemp: %s\n", strerror(errno));
		exit(1);
	}
	for (size_t off = 0; off < size;) {
		ssize_t n = write(fd, image + off, size - off);

		if (n <= 0) {
			printf("Bail out! write: %s\n", strerror(errno));
			exit(1);
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) < 0) {
		printf("Bail out! fchmod: %s\n", strerror(errno));
		exit(1);
	}
	(void)close(fd);
}

/* reader_open on the temp file must fail with a one-line message. */
static int expect_open_fail(const char *what, const char *prefix,
			    const char *reason)
{
	struct reader *r = NULL;
	char err[256];
	int e;

	memset(err, 0, sizeof(err));
	e = reader_open(tmp_path, &r, err, sizeof(err));
	(void)unlink(tmp_path);
	if (e >= 0) {
		printf("# %s: reader_open accepted it\n", what);
		reader_close(r);
		return 1;
	}
	if (strncmp(err, prefix, strlen(prefix)) != 0 || strchr(err, '\n') ||
	    (reason && !strstr(err, reason))) {
		printf("# %s: %d \"%s\"\n", what, e, err);
		return 1;
	}
	return 0;
}

enum field {
	F_MAGIC, F_VERSION, F_HEADER_SIZE, F_TOTAL_SIZE, F_EP_OFF, F_EP_CAP,
	F_MOD_CAP, F_MOD_OFF, F_DATA_OFF, F_DATA_SIZE, F_MAX_DEPTH,
};

struct hdr_case {
	const char *what;
	enum field field;
	int64_t delta;   /* added to the good value */
	int set;         /* 1: value replaces it */
	uint64_t value;
	const char *reason;
};

static void set_field(struct ring_header *h, enum field fld, uint64_t v)
{
	switch (fld) {
	case F_MAGIC: h->magic = v; break;
	case F_VERSION: h->version = (uint32_t)v; break;
	case F_HEADER_SIZE: h->header_size = (uint32_t)v; break;
	case F_TOTAL_SIZE: h->total_size = v; break;
	case F_EP_OFF: h->endpoints_off = v; break;
	case F_EP_CAP: h->endpoints_cap = (uint32_t)v; break;
	case F_MOD_CAP: h->modules_cap = (uint32_t)v; break;
	case F_MOD_OFF: h->modules_off = v; break;
	case F_DATA_OFF: h->data_off = v; break;
	case F_DATA_SIZE: h->data_size = v; break;
	case F_MAX_DEPTH: h->max_depth = (uint32_t)v; break;
	}
}

static uint64_t get_field(const struct ring_header *h, enum field fld)
{
	switch (fld) {
	case F_MAGIC: return h->magic;
	case F_VERSION: return h->version;
	case F_HEADER_SIZE: return h->header_size;
	case F_TOTAL_SIZE: return h->total_size;
	case F_EP_OFF: return h->endpoints_off;
	case F_EP_CAP: return h->endpoints_cap;
	case F_MOD_CAP: return h->modules_cap;
	case F_MOD_OFF: return h->modules_off;
	case F_DATA_OFF: return h->data_off;
	case F_DATA_SIZE: return h->data_size;
	case F_MAX_DEPTH: return h->max_depth;
	}
	return 0;
}

static void test_corrupt_headers(void)
{
	const uint64_t total = good_size;
	const struct ring_header *g = (const struct ring_header *)good_image;
	const uint64_t ep_end =
		g->endpoints_off + (uint64_t)g->endpoints_cap *
					   sizeof(struct ring_endpoint);
	const uint64_t mod_end =
		g->modules_off + (uint64_t)g->modules_cap *
					 sizeof(struct ring_module);
	const struct hdr_case cases[] = {
		{"magic +1", F_MAGIC, 1, 0, 0, "bad magic"},
		{"magic 0", F_MAGIC, 0, 1, 0, "bad magic"},
		{"magic byte-swapped", F_MAGIC, 0, 1,
		 __builtin_bswap64(RING_MAGIC), "bad magic"},
		{"version 0", F_VERSION, 0, 1, 0, "version"},
		{"version next", F_VERSION, 0, 1, RING_VERSION + 1, "version"},
		{"version previous", F_VERSION, 0, 1, RING_VERSION - 1, "version"},
		{"version max", F_VERSION, 0, 1, UINT32_MAX, "version"},
		{"header_size -8", F_HEADER_SIZE, -8, 0, 0, "header size"},
		{"header_size +8", F_HEADER_SIZE, 8, 0, 0, "header size"},
		{"header_size 0", F_HEADER_SIZE, 0, 1, 0, "header size"},
		{"total_size +4096", F_TOTAL_SIZE, 4096, 0, 0, "size"},
		{"total_size -4096", F_TOTAL_SIZE, -4096, 0, 0, "size"},
		{"total_size -1", F_TOTAL_SIZE, -1, 0, 0, "size"},
		{"total_size 0", F_TOTAL_SIZE, 0, 1, 0, "size"},
		{"total_size max", F_TOTAL_SIZE, 0, 1, UINT64_MAX, "size"},
		{"data_size -8", F_DATA_SIZE, -8, 0, 0, "data size"},
		{"data_size +4096", F_DATA_SIZE, 4096, 0, 0, NULL},
		{"data_size x2", F_DATA_SIZE, 0, 1, 2 * g->data_size,
		 "data area out of bounds"},
		{"data_size 0", F_DATA_SIZE, 0, 1, 0, "data size"},
		{"data_size 2048", F_DATA_SIZE, 0, 1, 2048, "data size"},
		{"data_size 8", F_DATA_SIZE, 0, 1, 8, "data size"},
		{"data_size 2^63", F_DATA_SIZE, 0, 1, 1ull << 63, NULL},
		{"data_size 2^63+2^62", F_DATA_SIZE, 0, 1, 3ull << 62,
		 "data size"},
		{"endpoints_cap 0", F_EP_CAP, 0, 1, 0, "endpoint table"},
		{"endpoints_cap 3", F_EP_CAP, 0, 1, 3, "endpoint table"},
		{"endpoints_cap +1", F_EP_CAP, 1, 0, 0, "endpoint table"},
		{"endpoints_cap 2^21", F_EP_CAP, 0, 1, 1u << 21,
		 "endpoint table"},
		{"endpoints_cap 2^31", F_EP_CAP, 0, 1, 1u << 31,
		 "endpoint table"},
		{"endpoints_cap max", F_EP_CAP, 0, 1, UINT32_MAX,
		 "endpoint table"},
		{"endpoints_cap 2^20 (out of file)", F_EP_CAP, 0, 1, 1u << 20,
		 "out of bounds"},
		{"endpoints_cap x64 (overlaps modules)", F_EP_CAP, 0, 1,
		 (uint64_t)g->endpoints_cap * 64, "out of bounds"},
		{"endpoints_off 0", F_EP_OFF, 0, 1, 0, "endpoint table"},
		{"endpoints_off in header", F_EP_OFF, 0, 1,
		 sizeof(struct ring_header) - 8, "endpoint table"},
		{"endpoints_off total", F_EP_OFF, 0, 1, total,
		 "out of bounds"},
		{"endpoints_off max", F_EP_OFF, 0, 1, UINT64_MAX,
		 "out of bounds"},
		{"endpoints_off wraps", F_EP_OFF, 0, 1, UINT64_MAX - 4096,
		 "out of bounds"},
		{"endpoints_off past modules", F_EP_OFF, 0, 1, g->modules_off,
		 "out of bounds"},
		{"endpoints_off misaligned", F_EP_OFF, 4, 0, 0, "endpoint table"},
		{"modules_cap 513", F_MOD_CAP, 0, 1, RING_MODULES_MAX + 1,
		 "module map"},
		{"modules_cap max", F_MOD_CAP, 0, 1, UINT32_MAX, "module map"},
		{"modules_off 0", F_MOD_OFF, 0, 1, 0, "module map"},
		{"modules_off overlaps endpoints", F_MOD_OFF, 0, 1, ep_end - 8,
		 "module map"},
		{"modules_off = endpoints_off", F_MOD_OFF, 0, 1,
		 g->endpoints_off, "module map"},
		{"modules_off max", F_MOD_OFF, 0, 1, UINT64_MAX, "module map"},
		{"modules_off wraps", F_MOD_OFF, 0, 1, UINT64_MAX - 100,
		 "module map"},
		{"modules_off total", F_MOD_OFF, 0, 1, total, "module map"},
		{"modules_off misaligned", F_MOD_OFF, 4, 0, 0, NULL},
		{"data_off 0", F_DATA_OFF, 0, 1, 0, "data area"},
		{"data_off overlaps modules", F_DATA_OFF, 0, 1, mod_end - 8,
		 "data area"},
		{"data_off = modules_off", F_DATA_OFF, 0, 1, g->modules_off,
		 "data area"},
		{"data_off +8 (past the end)", F_DATA_OFF, 8, 0, 0,
		 "data area"},
		{"data_off +4", F_DATA_OFF, 4, 0, 0, "data area"},
		{"data_off max", F_DATA_OFF, 0, 1, UINT64_MAX, "data area"},
		{"data_off wraps", F_DATA_OFF, 0, 1,
		 (uint64_t)0 - g->data_size, "data area"},
		{"data_off total", F_DATA_OFF, 0, 1, total, "data area"},
		{"max_depth 0", F_MAX_DEPTH, 0, 1, 0, "max depth"},
		{"max_depth 257", F_MAX_DEPTH, 0, 1, RING_MAX_FRAMES + 1,
		 "max depth"},
		{"max_depth max", F_MAX_DEPTH, 0, 1, UINT32_MAX, "max depth"},
	};
	uint8_t *img = malloc(total + 2 * 4096);
	int bad = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ring_header *h = (struct ring_header *)img;
		uint64_t v = cases[i].set ? cases[i].value
					  : get_field(g, cases[i].field) +
						    (uint64_t)cases[i].delta;

		memcpy(img, good_image, total);
		set_field(h, cases[i].field, v);
		write_tmp(img, total, 0600);
		bad += expect_open_fail(cases[i].what, "corrupt ring: ",
					cases[i].reason);
	}

	/*
	 * Misaligned module map that is otherwise in bounds (one entry fewer
	 * so that it still ends before the data area).
	 */
	memcpy(img, good_image, total);
	((struct ring_header *)img)->modules_off += 4;
	((struct ring_header *)img)->modules_cap -= 1;
	write_tmp(img, total, 0600);
	bad += expect_open_fail("modules_off misaligned, cap - 1",
				"corrupt ring: ", "module map");
	memcpy(img, good_image, total);
	((struct ring_header *)img)->endpoints_off += 1;
	write_tmp(img, total, 0600);
	bad += expect_open_fail("endpoints_off odd", "corrupt ring: ",
				"endpoint table");

	/* Whole-file cases. */
	write_tmp(good_image, 0, 0600);
	bad += expect_open_fail("empty file", "corrupt ring: ", "truncated");
	write_tmp(good_image, 100, 0600);
	bad += expect_open_fail("100 bytes", "corrupt ring: ", "truncated");
	write_tmp(good_image, sizeof(struct ring_header) - 1, 0600);
	bad += expect_open_fail("header minus one byte", "corrupt ring: ",
				"truncated");
	write_tmp(good_image, sizeof(struct ring_header), 0600);
	bad += expect_open_fail("header only", "corrupt ring: ", "size");
	write_tmp(good_image, total / 2, 0600);
	bad += expect_open_fail("half the file", "corrupt ring: ", "size");
	write_tmp(good_image, total - 8, 0600);
	bad += expect_open_fail("truncated by 8", "corrupt ring: ", "size");
	memcpy(img, good_image, total);
	memset(img + total, 0, 4096);
	write_tmp(img, total + 4096, 0600);
	bad += expect_open_fail("extended by a page", "corrupt ring: ", "size");
	/* Header made consistent with a truncated file: offsets fail. */
	memcpy(img, good_image, total);
	((struct ring_header *)img)->total_size = total - 4096;
	write_tmp(img, total - 4096, 0600);
	bad += expect_open_fail("consistent truncation", "corrupt ring: ",
				"data area");
	memcpy(img, good_image, total);
	((struct ring_header *)img)->total_size = sizeof(struct ring_header);
	write_tmp(img, sizeof(struct ring_header), 0600);
	bad += expect_open_fail("header-only ring", "corrupt ring: ", NULL);

	/* Permissions: group or other bits, in any combination. */
	{
		static const mode_t modes[] = {0640, 0604, 0660, 0606, 0666,
					       0644, 0601, 0610, 0602, 0620,
					       0700 | 0040, 0400 | 0004};

		for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			char what[32];

			(void)snprintf(what, sizeof(what), "mode %03o",
				       (unsigned)modes[i]);
			write_tmp(good_image, total, modes[i]);
			bad += expect_open_fail(what, "not a private ring",
						NULL);
		}
	}
	/* Not a regular file, not there, a symlink. */
	{
		struct reader *r = NULL;
		char err[256];

		CHECK(reader_open("/tmp", &r, err, sizeof(err)) < 0);
		CHECK(reader_open("/nonexistent/profshim.1.0", &r, err,
				  sizeof(err)) == -ENOENT);
		CHECK(strchr(err, '\n') == NULL);
		write_tmp(good_image, total, 0600);
		{
			char link_path[80];

			(void)snprintf(link_path, sizeof(link_path), "%s.lnk",
				       tmp_path);
			CHECK_EQ(symlink(tmp_path, link_path), 0);
			CHECK(reader_open(link_path, &r, err, sizeof(err)) < 0);
			(void)unlink(link_path);
		}
		/* The good copy itself opens fine. */
		CHECK_EQ(reader_open(tmp_path, &r, err, sizeof(err)), 0);
		reader_close(r);
		(void)unlink(tmp_path);
		/* A tiny error buffer still gets a terminated message. */
		write_tmp(good_image, 10, 0600);
		memset(err, 'x', sizeof(err));
		CHECK(reader_open(tmp_path, &r, err, 8) < 0);
		CHECK(memchr(err, '\0', 8) != NULL);
		(void)unlink(tmp_path);
	}
	CHECK_EQ(bad, 0);
	free(img);
}

/* Random field values and byte flips: open either fails cleanly or works. */
static void test_corrupt_headers_random(void)
{
	const uint64_t total = good_size;
	uint8_t *img = malloc(total);
	int opened = 0, failed = 0, bad = 0;

	rng_state = 77;
	for (int iter = 0; iter < 400; iter++) {
		struct ring_header *h = (struct ring_header *)img;
		struct reader *r = NULL;
		struct sink s = {0};
		char err[256];
		int e, nflips = 1 + (int)(rng_next() % 4);

		memcpy(img, good_image, total);
		for (int k = 0; k < nflips; k++) {
			if (rng_next() & 1) {
				enum field fld = (enum field)(rng_next() % 11);
				uint64_t v = get_field(h, fld), x = rng_next();

				switch (x % 4) {
				case 0: v = x >> (x % 64); break;
				case 1: v += (x >> 8) % 17 - 8; break;
				case 2: v ^= 1ull << (x >> 8) % 64; break;
				default: v = (uint64_t)1 << ((x >> 8) % 64); break;
				}
				set_field(h, fld, v);
			} else {
				size_t off = rng_next() %
					     offsetof(struct ring_header, head);

				img[off] ^= (uint8_t)(1u << (rng_next() % 8));
			}
		}
		write_tmp(img, total, 0600);
		memset(err, 0, sizeof(err));
		e = reader_open(tmp_path, &r, err, sizeof(err));
		(void)unlink(tmp_path);
		if (e < 0) {
			failed++;
			if (strncmp(err, "corrupt ring: ", 14) != 0 ||
			    strchr(err, '\n'))
				bad++;
			continue;
		}
		opened++;
		/* The image holds 5 committed requests. */
		e = reader_drain(r, SIZE_MAX, sink_cb, &s);
		if ((e < 0 && e != -EBADMSG) || e > 5)
			bad++;
		{
			struct ring_module mods[4];

			(void)reader_modules(r, mods, 4);
		}
		reader_close(r);
		sink_free(&s);
	}
	CHECK_EQ(bad, 0);
	CHECK(failed > 0);
	printf("# random header corruption: %d rejected, %d accepted\n",
	       failed, opened);
	free(img);
}

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

/* ------------------------------------------------------------------------ */

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

int main(void)
{
	struct fixture f;
	int fd;

	RUN(test_round_trip);
	RUN(test_shared_frames);
	RUN(test_callback_stop);
	RUN(test_wrap_around);
	RUN(test_short_gap);
	RUN(test_full_ring);
	RUN(test_stress);
	RUN(test_reserve_in_signal);
	RUN(test_endpoints);
	RUN(test_endpoint_own);
	RUN(test_endpoints_concurrent);

	/* A valid image to corrupt: some records and endpoints in it. */
	fx_setup(&f, 4096, 8, false);
	(void)ep_intern(f.h, "GET /a", 8);
	for (int i = 0; i < 5; i++)
		(void)put_request(f.h, (uint64_t)i, 0, 0, 0, 0, 0, 0, 0);
	fd = open(f.path, O_RDONLY | O_CLOEXEC);
	good_size = (size_t)f.h->total_size;
	good_image = malloc(good_size);
	if (fd < 0 || pread(fd, good_image, good_size, 0) != (ssize_t)good_size) {
		printf("Bail out! cannot read %s\n", f.path);
		return 1;
	}
	(void)close(fd);
	fx_teardown(&f);

	RUN(test_corrupt_headers);
	RUN(test_corrupt_headers_random);
	RUN(test_corrupt_records);
	RUN(test_corrupt_records_random);
	RUN(test_racing_writer);
	free(good_image);
	return check_done();
}

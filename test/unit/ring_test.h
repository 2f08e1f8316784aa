/*
 * ring_test.h — the helpers of the shared-memory ring's unit tests
 * (test/unit/test_ring*.c): a fixture that makes a real /dev/shm segment
 * with ring_create() and opens a reader on it, a sink that keeps what a
 * drain delivers, and writers of records as the shim writes them
 * (ring_reserve(), ring_commit(), frames encoded by ring_codec.h).
 *
 * Everything here is static: each file that includes it has its own copy,
 * which records failures in that file's copy of check.h's state.
 */
#ifndef PROFSHIM_RING_TEST_H
#define PROFSHIM_RING_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ingest/reader.h"
#include "ring.h"
#include "ring_codec.h"
#include "ring_format.h"

/* Interns a NUL-terminated endpoint name. */
static inline uint32_t ep_intern(struct ring_header *h, const char *name,
				 unsigned max_endpoints)
{
	return ring_endpoint(h, name, strlen(name), max_endpoints);
}

/* A seeded generator for per-record contents, independent of rng_state. */
static inline uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct fixture {
	struct ring_header *h;
	struct reader *r;
	char path[128];
};

/* Path of the segment mapped at h: the file whose header is h's. */
static inline int find_path(const struct ring_header *h, char *path,
			    size_t size)
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
static inline void fx_setup(struct fixture *f, uint64_t size, unsigned max_ep,
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
	e = ring_create(&cfg, "/usr/local/bin/test-server", &f->h, NULL);
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

static inline void fx_teardown(struct fixture *f)
{
	reader_close(f->r);
	ring_unmap(f->h);
	CHECK_EQ(unlink(f->path), 0);
	memset(f, 0, sizeof(*f));
}

static inline uint64_t load64(const uint64_t *p)
{
	return atomic_load_explicit((_Atomic uint64_t *)p,
				    memory_order_acquire);
}

static inline void store64(uint64_t *p, uint64_t v)
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

static inline int sink_cb(void *arg, const struct reader_event *ev)
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

static inline void sink_free(struct sink *s)
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
static inline int put_record(struct ring_header *h, uint16_t type,
			     uint16_t flags, const void *body, size_t body_len,
			     uint32_t rec_len, uint64_t *ret_pos)
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
static inline int put_request(struct ring_header *h, uint64_t req_id,
			      uint32_t tid, uint32_t endpoint,
			      uint64_t start_ns, uint64_t dur, uint32_t status,
			      uint32_t samples, uint16_t flags)
{
	const struct ring_request q = {
		.req_id = req_id, .tid = tid, .endpoint = endpoint,
		.start_ns = start_ns, .duration_ns = dur, .status = status,
		.samples = samples,
	};

	return put_record(h, RING_REC_REQUEST, flags, &q, sizeof(q), sizeof(q),
			  NULL);
}

/*
 * Writes a SAMPLE record as sampler.c does, its last `shared` frames left
 * to the thread's previous sample (`serial`); 0 or -1 when full.
 */
static inline int put_sample_linked(struct ring_header *h, uint64_t req_id,
				    uint32_t tid, uint32_t endpoint,
				    uint64_t time_ns, const uint64_t *frames,
				    int n, int shared, uint16_t serial,
				    uint64_t *ret_pos)
{
	uint8_t buf[sizeof(struct ring_sample) +
		    RING_MAX_FRAMES * RING_CODEC_MAX_BYTES];
	size_t nbytes = ring_codec_encode(buf + sizeof(struct ring_sample),
					  frames, n - shared);
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
static inline int put_sample(struct ring_header *h, uint64_t req_id,
			     uint32_t tid, uint32_t endpoint, uint64_t time_ns,
			     const uint64_t *frames, int n, uint64_t *ret_pos)
{
	return put_sample_linked(h, req_id, tid, endpoint, time_ns, frames, n,
				 0, 0, ret_pos);
}

/* The name in endpoint slot idx of h's table, "(not ready)" for a slot
 * not (yet) holding one. */
static inline const char *ring_test_slot_name(const struct ring_header *h,
					      uint32_t idx)
{
	const struct ring_endpoint *eps =
		(const struct ring_endpoint *)((const uint8_t *)h +
					       h->endpoints_off);

	if (idx >= h->endpoints_cap || eps[idx].state != RING_EP_READY)
		return "(not ready)";
	return eps[idx].name;
}

/*
 * check.h counts tests and failures in each file that includes it: main()
 * (test_ring.c) runs the tests of the other files through these, which
 * number them on from *tests and add their failures to *failures.
 */
void ring_wrap_tests(int *tests, int *failures);
void ring_stress_tests(int *tests, int *failures);
void ring_header_tests(int *tests, int *failures);
void ring_record_tests(int *tests, int *failures);
void ring_admit_tests(int *tests, int *failures);

#endif /* PROFSHIM_RING_TEST_H */

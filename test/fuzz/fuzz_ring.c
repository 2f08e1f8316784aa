/*
 * fuzz_ring.c — libFuzzer target for the collector's ring reader (reader.h).
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=undefined -D_GNU_SOURCE -Ishim -Icollector \
 *         collector/ingest/reader.c shim/ring.c shim/libc.c test/fuzz/fuzz_ring.c -o fuzz_ring
 *   ./fuzz_ring test/fuzz/corpus_ring
 *
 * The ring file is a memory file (memfd, mode 0600) handed to
 * reader_open_fd(). Input: a control byte, then either
 *
 *   - raw mode (control bit 0 clear): the rest of the input is the whole
 *     ring file, byte for byte;
 *   - built mode (bit 0 set): 11 parameter bytes, then operations. The
 *     segment is laid out the way ring_create() lays it out (header, endpoint
 *     table, module map and data area on page boundaries) with sizes from the
 *     parameters: data area 4K << (p[0] % 4), endpoint table 1 << (p[1] % 6)
 *     slots, module map p[2] % 6 entries, p[3] = modules_count, p[4] = fail
 *     the callback every p[4] events (0: never), p[5..6] = max events per
 *     drain (0: unlimited), p[7..10] = the initial head and tail (with bit
 *     31 set: that far below 2^64, to wrap the free-running counters).
 *     Records are written with the shim's own producer (ring_reserve,
 *     ring_commit, ring_endpoint) on the same shared mapping the reader
 *     reads, so operations interleave with drains and the ring wraps.
 *     Operation byte: op = byte % 9; bit 7 leaves a record uncommitted.
 *       0 sample  tid, endpoint, own frames, shared, serial, frame deltas
 *                 (encoded by the shim's own ring_codec_encode())
 *       1 request tid, endpoint (0xff: none), flags, status, duration
 *       2 raw     type, flags, length, body bytes, optionally a forged length
 *       3 endpoint name length and bytes, interned with ring_endpoint()
 *       4 module  index and bytes over that module map entry
 *       5 overlay offset (any byte of the file: header fields included),
 *                 length, bytes; once the layout fields or the head are
 *                 overwritten, ops 0-4 do nothing (the shim trusts its own
 *                 header: only the reader is under test)
 *       6 drain   open the reader if not yet open, drain once
 *       7 hold    (before the reader is open: hold it), or release up to a
 *                 chosen position
 *       8 resume  reader_resume() at a chosen position
 *     At the end the reader drains until reader_drain() returns <= 0
 *     (bounded), then module map, counters and identity are read.
 *
 * Checked invariants (AddressSanitizer checks every access):
 *   - reader_open_fd() either succeeds or fails with a negative errno and a
 *     non-empty one-line reason;
 *   - a drain returns the number of events delivered (<= its max), the
 *     callback's own error, or -EBADMSG with a non-empty one-line
 *     reader_error(); a corrupt ring stays corrupt;
 *   - events: kind SAMPLE or REQUEST, nframes <= RING_MAX_FRAMES, every
 *     frame readable, endpoint NULL (samples only) or a string shorter than
 *     RING_ENDPOINT_NAME_MAX;
 *   - the read position never goes back, never passes the producer's head,
 *     and the ring's tail is the read position after a drain unless the
 *     reader is held (then reader_held() is what lies between them);
 *   - when only well-formed records were written (no raw record, overlay or
 *     resume), the events are exactly the committed records in ring order:
 *     requests with their fields and interned endpoint names, samples with
 *     all their frames rebuilt from the shared ones, except samples whose
 *     previous sample in the ring cannot resolve them (format rules), which
 *     are counted as unresolved; a record whose callback failed is
 *     delivered again, the same, by the next drain;
 *   - reader_modules() copies at most min(outcap, modules_cap, published)
 *     entries, each with a NUL-terminated path, build_id_len <= 32 and
 *     lo <= hi; reader_module_count() agrees;
 *   - reader_exe() is NUL-terminated and reader_path() is the name given.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ingest/reader.h"
#include "ring.h"
#include "ring_codec.h"
#include "ring_format.h"
#include "fuzz_assert.h"


#define RING_NAME "fuzz-ring"

/* Where the frame sums go, so that reading every frame is not optimised
 * away. */
volatile uint64_t fuzz_ring_sink;
#define CB_ERR (-ECANCELED)
#define MAX_DRAINS 2000
#define MAX_EXPECT 4096
#define MAX_OWN 64

/* The input, consumed from the front; reads past its end give zeros. */
struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t in_u8(struct in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint64_t in_uint(struct in *in, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)in_u8(in) << (8 * i);
	return v;
}

/* Copies up to n input bytes to out; returns how many there were. */
static size_t in_bytes(struct in *in, void *out, size_t n)
{
	if (n > in->n)
		n = in->n;
	memcpy(out, in->p, n);
	in->p += n;
	in->n -= n;
	return n;
}

/* A record the model expects the reader to deliver (or skip as
 * unresolved), in ring order. */
struct expect {
	enum reader_kind kind;
	uint64_t req_id;
	uint32_t tid;
	uint32_t endpoint;
	uint16_t flags;
	uint64_t duration_ns;
	uint32_t status;
	bool resolvable;
	uint32_t nframes;
	uint64_t frames[RING_MAX_FRAMES];
};

/* The model of one thread's last sample in the ring, by tid (< 256); it
 * counts only when `run` is the current run (no clearing per run). */
struct thread_model {
	uint64_t run;
	bool known;
	uint16_t serial;
	uint32_t n;
	uint64_t frames[RING_MAX_FRAMES];
};

static struct state {
	struct expect *expect;  /* MAX_EXPECT, allocated once */
	int fd;                 /* the memory file, created once */
	/* Everything below is reset for each input. */
	uint8_t *map;          /* the producer's mapping of the file */
	size_t size;
	struct ring_header *h;
	struct reader *r;
	bool open_failed;
	bool hold;
	bool model;            /* only well-formed records so far */
	bool blocked;          /* an uncommitted record: nothing after it */
	uint64_t start;        /* the tail when the reader opened */
	uint64_t last_pos;
	unsigned fail_every;
	size_t max;
	/* the model */
	size_t nexpect, next;
	uint64_t unresolved;
	uint64_t samples;
	bool producer;         /* the producer's own header fields are intact */
	/* per drain */
	size_t delivered;
	size_t events_total;
	size_t failed_at;      /* events_total at the last callback failure */
	bool failed_once;
} st;

/* Per-run model tables kept out of `st` so a run does not clear them: an
 * entry counts only when its `run` is the current one. */
static uint64_t run_no;
static struct thread_model threads[256];
static char names[64][RING_ENDPOINT_NAME_MAX];
static uint64_t named[64];

/* Chooses the fd once: one memory file reused by every run. */
static int ring_fd(void)
{
	if (st.fd <= 0) {
		/* memfd numbers start above 0: stdin is open. */
		st.fd = memfd_create("fuzz_ring", MFD_CLOEXEC);
		ASSERT(st.fd >= 0);
		ASSERT(fchmod(st.fd, 0600) == 0);
	}
	return st.fd;
}

/* Sets the memory file's size (a system call only when it changes). */
static void file_size(uint64_t size)
{
	static uint64_t cur;

	if (size != cur) {
		ASSERT(ftruncate(st.fd, (off_t)size) == 0);
		cur = size;
	}
}

static void check_line(const char *s)
{
	ASSERT(s != NULL && s[0] != '\0');
	ASSERT(strchr(s, '\n') == NULL);
}

static void check_string(const char *s, size_t max)
{
	ASSERT(s != NULL);
	ASSERT(strnlen(s, max) < max);
}

/* The next expected record that is delivered, skipping the unresolvable. */
static struct expect *model_next(void)
{
	while (st.next < st.nexpect && !st.expect[st.next].resolvable)
		st.next++;
	return st.next < st.nexpect ? &st.expect[st.next] : NULL;
}

static const char *model_endpoint(uint32_t idx)
{
	if (idx == RING_ENDPOINT_NONE || idx >= 64 || named[idx] != run_no)
		return NULL;
	return names[idx];
}

static int on_event(void *arg, const struct reader_event *ev)
{
	uint64_t sum = 0;

	(void)arg;
	ASSERT(ev->kind == READER_SAMPLE || ev->kind == READER_REQUEST);
	if (ev->kind == READER_SAMPLE) {
		ASSERT(ev->nframes <= RING_MAX_FRAMES);
		ASSERT(ev->nframes == 0 || ev->frames != NULL);
		for (uint32_t i = 0; i < ev->nframes; i++)
			sum += ev->frames[i];
		fuzz_ring_sink = sum;
		if (ev->endpoint)
			check_string(ev->endpoint, RING_ENDPOINT_NAME_MAX);
	} else {
		check_string(ev->endpoint, RING_ENDPOINT_NAME_MAX);
	}
	if (st.model) {
		const struct expect *x = model_next();
		const char *name;

		ASSERT(x != NULL);
		ASSERT(ev->kind == x->kind && ev->req_id == x->req_id &&
		       ev->tid == x->tid);
		name = model_endpoint(x->endpoint);
		if (x->kind == READER_REQUEST) {
			ASSERT(ev->flags == x->flags);
			ASSERT(ev->duration_ns == x->duration_ns);
			ASSERT(ev->status == x->status);
			ASSERT(strcmp(ev->endpoint, name ? name : "OTHER") == 0);
		} else {
			ASSERT(ev->nframes == x->nframes);
			ASSERT(memcmp(ev->frames, x->frames,
				      x->nframes * sizeof(uint64_t)) == 0);
			ASSERT(name ? ev->endpoint && strcmp(ev->endpoint,
							     name) == 0
				    : ev->endpoint == NULL);
		}
	}
	if (st.fail_every && st.events_total % st.fail_every ==
				     st.fail_every - 1 &&
	    !(st.failed_once && st.failed_at == st.events_total)) {
		/* Fail once at this event: it must come again. */
		st.failed_once = true;
		st.failed_at = st.events_total;
		return CB_ERR;
	}
	if (st.model)
		st.next++;
	st.events_total++;
	st.delivered++;
	return 0;
}

static void reader_open_now(void)
{
	char err[256];
	int e;

	if (st.r || st.open_failed)
		return;
	/* The reader maps the file anew: the producer's writes are shared. */
	memset(err, 0, sizeof(err));
	e = reader_open_fd(st.fd, RING_NAME, &st.r, err, sizeof(err));
	if (e < 0) {
		check_line(err);
		st.open_failed = true;
		st.r = NULL;
		return;
	}
	ASSERT(st.r != NULL);
	ASSERT(strcmp(reader_path(st.r), RING_NAME) == 0);
	check_string(reader_exe(st.r), RING_EXE_MAX);
	if (st.hold)
		reader_hold(st.r);
	st.start = st.last_pos = reader_position(st.r);
}

/* One drain with the checks on its result; returns its return value. */
static int drain_once(void)
{
	uint64_t head, tail, pos;
	int ret;

	st.delivered = 0;
	ret = reader_drain(st.r, st.max ? st.max : (size_t)-1, on_event, NULL);
	pos = reader_position(st.r);
	if (ret == -EBADMSG) {
		check_line(reader_error(st.r));
		ASSERT(!st.model);
		ASSERT(reader_drain(st.r, 1, on_event, NULL) == -EBADMSG);
	} else {
		ASSERT(ret == CB_ERR || ret >= 0);
		ASSERT(reader_error(st.r) == NULL);
		if (ret >= 0) {
			ASSERT((size_t)ret == st.delivered);
			ASSERT(!st.max || (size_t)ret <= st.max);
		}
	}
	/* Positions: forward only, never past the head. */
	head = __atomic_load_n(&st.h->head, __ATOMIC_RELAXED);
	tail = __atomic_load_n(&st.h->tail, __ATOMIC_RELAXED);
	if (st.model) {
		ASSERT(pos - st.last_pos <= head - st.last_pos);
		ASSERT(pos - st.start <= head - st.start);
		if (st.hold)
			ASSERT(reader_held(st.r) == pos - tail);
		else
			ASSERT(tail == pos);
	}
	st.last_pos = pos;
	return ret;
}

/* Drains until nothing more comes (bounded: a callback fails only once per
 * event, so every retry makes progress). */
static void drain_all(void)
{
	for (int i = 0; i < MAX_DRAINS; i++) {
		int ret = drain_once();

		if (ret == 0 || ret == -EBADMSG)
			return;
	}
}

static struct expect *model_add(void)
{
	if (st.nexpect >= MAX_EXPECT) {
		st.model = false;
		return NULL;
	}
	return memset(&st.expect[st.nexpect++], 0, sizeof(struct expect));
}

/*
 * Writes a record of len bytes through the shim's producer: ring_reserve(),
 * then every byte of `body` after the record header (body holds the whole
 * record as the shim lays it out; the header is the producer's), then
 * ring_commit() or, without commit, leaves it uncommitted: nothing after it
 * can be read, so the model stops (st.blocked). True when the model goes
 * on with this record; false when it was dropped (ring full, as the shim
 * drops it) or the ring is blocked.
 */
static bool put_record(const void *body, size_t len, uint16_t type,
		       uint16_t flags, bool commit)
{
	struct ring_rec *rec;
	uint64_t pos;

	rec = ring_reserve(st.h, (uint32_t)len, type, flags, &pos);
	if (!rec)
		return false;
	memcpy((uint8_t *)rec + sizeof(struct ring_rec),
	       (const uint8_t *)body + sizeof(struct ring_rec),
	       len - sizeof(struct ring_rec));
	if (commit)
		ring_commit(rec, pos);
	else
		st.blocked = true;
	return !st.blocked;
}

static void op_sample(struct in *in, bool commit)
{
	uint8_t buf[sizeof(struct ring_sample) + MAX_OWN * RING_CODEC_MAX_BYTES +
		    8];
	struct ring_sample s = {0};
	uint64_t own[MAX_OWN], addr;
	uint32_t nown, shared;
	size_t nbytes, len;

	s.tid = in_u8(in);
	s.endpoint = in_u8(in);
	if (s.endpoint == 0xff)
		s.endpoint = RING_ENDPOINT_NONE;
	nown = in_u8(in) % (MAX_OWN + 1);
	shared = in_u8(in);
	if (nown + shared > RING_MAX_FRAMES)
		shared = RING_MAX_FRAMES - nown;
	s.serial = (uint16_t)in_uint(in, 2);
	s.req_id = in_u8(in);
	s.time_ns = in_uint(in, 2) * 1000;
	addr = 0x400000 + in_uint(in, 2) * 16;
	for (uint32_t i = 0; i < nown; i++) {
		own[i] = addr;
		addr += (uint64_t)(int64_t)(int16_t)in_uint(in, 2) *
			(in_u8(in) & 1 ? 4096 : 1);
	}
	s.nframes = (uint16_t)(nown + shared);
	s.shared = (uint16_t)shared;
	nbytes = ring_codec_encode(buf + sizeof(s), own, (int)nown);
	s.nbytes = (uint16_t)nbytes;
	len = RING_ALIGN_UP(sizeof(s) + nbytes);
	memcpy(buf, &s, sizeof(s));
	memset(buf + sizeof(s) + nbytes, 0, len - sizeof(s) - nbytes);
	if (!put_record(buf, len, RING_REC_SAMPLE, 0, commit))
		return;

	/* The model: the format's rule for resolving shared frames. */
	struct expect *x = model_add();
	struct thread_model *t = &threads[s.tid];

	if (!x)
		return;
	st.samples++;
	x->kind = READER_SAMPLE;
	x->req_id = s.req_id;
	x->tid = s.tid;
	x->endpoint = s.endpoint;
	x->nframes = s.nframes;
	memcpy(x->frames, own, nown * sizeof(uint64_t));
	x->resolvable = shared == 0 ||
			(t->run == run_no && t->known &&
			 (uint16_t)(t->serial + 1) ==
							s.serial &&
			 t->n >= shared);
	if (x->resolvable && shared)
		memcpy(&x->frames[nown], &t->frames[t->n - shared],
		       shared * sizeof(uint64_t));
	t->run = run_no;
	t->serial = s.serial;
	t->known = x->resolvable;
	t->n = x->nframes;
	memcpy(t->frames, x->frames, x->nframes * sizeof(uint64_t));
	if (!x->resolvable)
		st.unresolved++;
}

static void op_request(struct in *in, bool commit)
{
	struct ring_request q = {0};
	uint16_t flags;

	q.tid = in_u8(in);
	q.endpoint = in_u8(in);
	if (q.endpoint == 0xff)
		q.endpoint = RING_ENDPOINT_NONE;
	flags = in_u8(in) & 0xf;
	q.status = (uint32_t)in_uint(in, 2);
	q.duration_ns = in_uint(in, 4);
	q.req_id = in_uint(in, 2);
	q.start_ns = in_uint(in, 2) * 1000;
	q.samples = in_u8(in);
	if (!put_record(&q, sizeof(q), RING_REC_REQUEST, flags, commit))
		return;

	struct expect *x = model_add();

	if (!x)
		return;
	x->kind = READER_REQUEST;
	x->req_id = q.req_id;
	x->tid = q.tid;
	x->endpoint = q.endpoint;
	x->flags = flags;
	x->duration_ns = q.duration_ns;
	x->status = q.status;
	x->resolvable = true;
}

static void op_raw(struct in *in, bool commit)
{
	uint16_t type = in_u8(in) % 5, flags = in_u8(in);
	uint8_t sel = in_u8(in);
	uint32_t len = 16 + 8 * (sel & 0x7f);
	struct ring_rec *rec;
	uint64_t pos;

	rec = ring_reserve(st.h, len, type, flags, &pos);
	st.model = false;
	if (!rec)
		return;
	in_bytes(in, (uint8_t *)rec + sizeof(struct ring_rec),
		 len - sizeof(struct ring_rec));
	if (sel & 0x80)
		rec->len = (uint32_t)in_uint(in, 4); /* a forged length */
	if (commit)
		ring_commit(rec, pos);
}

static void op_endpoint(struct in *in)
{
	char name[RING_ENDPOINT_NAME_MAX + 8];
	size_t len = in_u8(in) % (RING_ENDPOINT_NAME_MAX + 8);
	uint32_t idx;

	len = in_bytes(in, name, len);
	idx = ring_endpoint(st.h, name, len, 1000);
	if (len > RING_ENDPOINT_NAME_MAX - 1)
		len = RING_ENDPOINT_NAME_MAX - 1;
	if (idx == RING_ENDPOINT_NONE)
		return;
	ASSERT(idx < st.h->endpoints_cap);
	if (idx < 64 && named[idx] != run_no) {
		/* A name with a NUL inside is kept cut at it, as the reader
		 * sees it. */
		memcpy(names[idx], name, len);
		names[idx][len] = '\0';
		named[idx] = run_no;
	}
}

static void op_module(struct in *in)
{
	uint32_t cap = st.h->modules_cap;
	uint8_t idx = in_u8(in), n = in_u8(in);
	uint8_t *m;

	if (cap == 0)
		return;
	m = st.map + st.h->modules_off +
	    (size_t)(idx % cap) * sizeof(struct ring_module);
	in_bytes(in, m, n);
}

static void op_overlay(struct in *in)
{
	const uint64_t lo = offsetof(struct ring_header, endpoints_off),
		       hi = offsetof(struct ring_header, head) + sizeof(uint64_t);
	uint64_t off = in_uint(in, 3) % st.size;
	size_t n = in_u8(in) % 32 + 1;

	if (n > st.size - off)
		n = st.size - off;
	in_bytes(in, st.map + off, n);
	st.model = false;
	/* The shim trusts its own layout and head: once those are
	 * overwritten, the producer writes no more (only the reader's side
	 * is under test). */
	if (off < hi && off + n > lo)
		st.producer = false;
}

static void op_hold(struct in *in)
{
	uint64_t back = in_uint(in, 2) * 8, pos, tail, held;

	if (!st.r) {
		st.hold = true;
		return;
	}
	pos = reader_position(st.r);
	tail = __atomic_load_n(&st.h->tail, __ATOMIC_RELAXED);
	held = reader_held(st.r);
	reader_release(st.r, pos - back);
	if (st.model) {
		uint64_t now = __atomic_load_n(&st.h->tail, __ATOMIC_RELAXED);

		ASSERT(held == pos - tail);
		/* Released when between the tail and the read position,
		 * else ignored. */
		if (back <= pos - tail)
			ASSERT(now == pos - back);
		else
			ASSERT(now == tail);
	}
}

static void op_resume(struct in *in)
{
	struct reader_counters c = {0};
	uint64_t pos = in_uint(in, 2);

	if (!st.r)
		return;
	reader_counters(st.r, &c);
	pos = __atomic_load_n(&st.h->tail, __ATOMIC_RELAXED) + pos;
	if (reader_resume(st.r, pos, &c) == 0) {
		st.model = false;
		st.last_pos = pos;
	}
}

static void check_reader_views(struct in *in)
{
	struct ring_module mods[8];
	struct reader_counters c;
	uint32_t outcap = in_u8(in) % 9, n, cap, pub;

	cap = reader_header(st.r)->modules_cap;
	pub = __atomic_load_n(&st.h->modules_count, __ATOMIC_RELAXED);
	n = reader_modules(st.r, mods, outcap);
	ASSERT(n <= outcap && n <= cap && n <= pub);
	ASSERT(reader_module_count(st.r) == (pub < cap ? pub : cap));
	for (uint32_t i = 0; i < n; i++) {
		check_string(mods[i].path, RING_MODULE_PATH_MAX);
		ASSERT(mods[i].build_id_len <= RING_BUILD_ID_MAX);
		ASSERT(mods[i].lo <= mods[i].hi);
	}
	reader_counters(st.r, &c);
	ASSERT(c.unresolved_samples <= c.samples);
	if (st.model && !st.blocked && !st.max) {
		/* Everything committed has been read. */
		ASSERT(model_next() == NULL);
		ASSERT(c.samples == st.samples);
		ASSERT(c.unresolved_samples == st.unresolved);
	}
	(void)reader_pid(st.r);
	(void)reader_ppid(st.r);
	(void)reader_exited(st.r);
}

/* The whole input is the file. */
static void run_raw(const uint8_t *data, size_t size)
{
	file_size(size);
	if (size && pwrite(st.fd, data, size, 0) != (ssize_t)size)
		return;
	st.model = false;
	reader_open_now();
	if (!st.r)
		return;
	st.h = (struct ring_header *)mmap(NULL, size, PROT_READ | PROT_WRITE,
					  MAP_SHARED, st.fd, 0);
	ASSERT(st.h != MAP_FAILED);
	st.map = (uint8_t *)st.h;
	st.size = size;
	drain_all();
	check_reader_views(&(struct in){0});
}

static void run_built(struct in *in)
{
	uint32_t ep_cap, mod_cap;
	uint64_t data_size, ep_off, mod_off, data_off, total, start;
	struct ring_header *h;

	data_size = 4096ull << (in_u8(in) % 4);
	ep_cap = 1u << (in_u8(in) % 6);
	mod_cap = in_u8(in) % 6;
	ep_off = RING_ALIGN_UP(sizeof(struct ring_header));
	mod_off = (ep_off + (uint64_t)ep_cap * sizeof(struct ring_endpoint) +
		   4095) & ~4095ull;
	data_off = (mod_off + (uint64_t)mod_cap * sizeof(struct ring_module) +
		    4095) & ~4095ull;
	total = data_off + data_size;

	file_size(total);
	st.map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, st.fd, 0);
	ASSERT(st.map != MAP_FAILED);
	/* Clearing the pages the file keeps from the last run is cheaper
	 * than giving them back and faulting new ones in. */
	memset(st.map, 0, total);
	st.size = total;
	st.h = h = (struct ring_header *)st.map;
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->header_size = sizeof(*h);
	h->total_size = total;
	h->pid = 4242;
	h->ppid = 1;
	h->start_realtime_ns = 1700000000ull * 1000000000ull;
	h->start_monotonic_ns = 1000000000ull;
	(void)snprintf(h->exe, sizeof(h->exe), "/srv/fuzz-server");
	h->sample_rate = 0.1;
	h->hz = 99;
	h->manual_hz = 997;
	h->max_depth = RING_MAX_FRAMES;
	h->endpoints_off = ep_off;
	h->endpoints_cap = ep_cap;
	h->modules_off = mod_off;
	h->modules_cap = mod_cap;
	h->data_off = data_off;
	h->data_size = data_size;
	h->modules_count = in_u8(in) % 8;
	st.fail_every = in_u8(in);
	st.max = (size_t)in_uint(in, 2);
	/* Free-running counters start anywhere, near wrap-around included;
	 * the shim's start at 0 and stay aligned. */
	start = in_uint(in, 4);
	start = (start & 0x80000000u) ? (0ull - (start & 0xffff)) : start;
	start &= ~(uint64_t)(RING_ALIGN - 1);
	h->head = h->tail = start;

	while (in->n) {
		uint8_t b = in_u8(in);
		bool commit = !(b & 0x80);

		switch (b % 9) {
		case 0: if (st.producer) op_sample(in, commit); break;
		case 1: if (st.producer) op_request(in, commit); break;
		case 2: if (st.producer) op_raw(in, commit); break;
		case 3: if (st.producer) op_endpoint(in); break;
		case 4: if (st.producer) op_module(in); break;
		case 5: op_overlay(in); break;
		case 6:
			reader_open_now();
			if (st.r)
				(void)drain_once();
			break;
		case 7: op_hold(in); break;
		case 8: op_resume(in); break;
		}
		if (st.open_failed)
			return;
	}
	reader_open_now();
	if (!st.r)
		return;
	st.max = 0; /* the final drains take everything */
	drain_all();
	check_reader_views(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	uint8_t ctl;

	if (!st.expect) {
		st.expect = calloc(MAX_EXPECT, sizeof(*st.expect));
		ASSERT(st.expect != NULL);
	}
	memset((uint8_t *)&st + offsetof(struct state, map), 0,
	       sizeof(st) - offsetof(struct state, map));
	(void)ring_fd();
	st.model = true;
	st.producer = true;
	run_no++;
	if (size < 1)
		return 0;
	ctl = in_u8(&in);
	if (ctl & 1)
		run_built(&in);
	else
		run_raw(in.p, in.n);
	reader_close(st.r);
	if (st.map)
		(void)munmap(st.map, st.size);
	st.r = NULL;
	st.map = NULL;
	st.h = NULL;
	return 0;
}

/*
 * ring.c — the producer side of the shared-memory ring (see ring_format.h for
 * the protocol and the barrier pairing).
 */
#include "libc.h"
#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define RING_CAS_TRIES 64
#define RING_ENDPOINT_PROBES 64

#define A(p) ((_Atomic uint64_t *)(p))
#define A32(p) ((_Atomic uint32_t *)(p))

/*
 * Key of ring_hash(), drawn when the process image makes its ring. Endpoint
 * names come from clients: with a hash anyone can compute, a client could
 * pick names that all land in one run of slots, longer than the probes
 * ring_endpoint() makes, so that further names could not be interned even
 * below PROFILING_MAX_ENDPOINTS. Written before the ring is published, read
 * only through it.
 */
static uint64_t ring_hash_key;

static uint64_t ring_new_key(void)
{
	uint64_t k = 0;

	if (getrandom(&k, sizeof(k), GRND_NONBLOCK) != (ssize_t)sizeof(k))
		k = libc_clock_ns(CLOCK_MONOTONIC) * 0x9e3779b97f4a7c15ull ^
		    ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&k;
	return k;
}

/*
 * Hash of the name s[0..len), called once per request: eight bytes at a
 * time (multiply and fold), the tail a byte at a time, from a keyed start
 * (ring_hash_key). Its low 32 bits place the name in the table; all 64 are
 * what the filter of names seen once keeps (ring_seen_before). Only the
 * shim uses it; it is not part of the ring format.
 */
static uint64_t ring_hash64(const char *s, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ ring_hash_key ^ len, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, s + i, sizeof(w));
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
	h ^= h >> 29;
	return h;
}

static inline uint32_t ring_hash(const char *s, size_t len)
{
	return (uint32_t)ring_hash64(s, len);
}

/*
 * Returns true when the interned name e (NUL-terminated in its slot) is
 * exactly s[0..len): eight bytes at a time, since every request compares
 * its endpoint once. len < RING_ENDPOINT_NAME_MAX.
 */
static bool ring_name_eq(const char *e, const char *s, size_t len)
{
	uint64_t a, b;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&a, e + i, sizeof(a));
		memcpy(&b, s + i, sizeof(b));
		if (a != b)
			return false;
	}
	for (; i < len; i++)
		if (e[i] != s[i])
			return false;
	return e[len] == '\0';
}

static void ring_init_header(struct ring_header *h,
			     const struct env_config *cfg, const char *exe,
			     uint64_t total, uint32_t ep_cap, uint64_t ep_off,
			     uint64_t mod_off, uint64_t data_off)
{
	h->magic = RING_MAGIC;
	h->version = RING_VERSION;
	h->header_size = sizeof(*h);
	h->total_size = total;
	h->pid = (uint32_t)getpid();
	h->ppid = (uint32_t)getppid();
	h->start_realtime_ns = libc_clock_ns(CLOCK_REALTIME);
	h->start_monotonic_ns = libc_clock_ns(CLOCK_MONOTONIC);
	(void)snprintf(h->exe, sizeof(h->exe), "%s", exe);
	h->sample_rate = cfg->sample_rate;
	h->hz = cfg->hz;
	h->manual_hz = cfg->manual_hz;
	h->max_depth = cfg->max_depth;
	h->clock = cfg->clock;
	h->mode = cfg->mode;
	h->endpoints_off = ep_off;
	h->endpoints_cap = ep_cap;
	h->modules_off = mod_off;
	h->modules_cap = RING_MODULES_MAX;
	h->data_off = data_off;
	h->data_size = cfg->ring_size;
}

/*
 * The segment is created under a temporary name and hard-linked to its final
 * name only once initialised, so a collector never maps a half-written
 * header. link() fails with EEXIST where rename() would overwrite the ring of
 * an earlier image of this pid (after exec), so <n> is raised until it works.
 */
int ring_create(const struct env_config *cfg, const char *exe,
		struct ring_header **ret_ring, struct ring_file *ret_file)
{
	struct stat st;
	char tmp_name[64], tmp_path[96], final_path[96];
	uint32_t ep_cap = 16;
	uint64_t ep_off, mod_off, data_off, total;
	struct ring_header *h;
	int fd, r, n;

	while (ep_cap < 2u * cfg->max_endpoints + 2)
		ep_cap *= 2;
	ep_off = RING_ALIGN_UP(sizeof(struct ring_header));
	mod_off = ep_off + (uint64_t)ep_cap * sizeof(struct ring_endpoint);
	mod_off = (mod_off + 4095) & ~4095ull;
	data_off = mod_off + RING_MODULES_MAX * sizeof(struct ring_module);
	data_off = (data_off + 4095) & ~4095ull;
	total = data_off + cfg->ring_size;

	(void)snprintf(tmp_name, sizeof(tmp_name), "/.profshim.%d.%ld.tmp",
		       (int)getpid(), (long)libc_gettid());
	fd = shm_open(tmp_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	(void)snprintf(tmp_path, sizeof(tmp_path), "/dev/shm%s", tmp_name);
	/* Every page is allocated now, not when a producer first touches it: a
	 * store to an unbacked page of a full /dev/shm raises SIGBUS, which
	 * would kill the server. A full /dev/shm is ENOSPC here instead, and
	 * the process runs unprofiled. */
	do
		r = posix_fallocate(fd, 0, (off_t)total);
	while (r == EINTR); /* older kernels' tmpfs stops at any signal */
	if (r != 0) {
		r = -r;
		goto err_unlink;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto err_unlink;
	}
	h = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED) {
		r = -errno;
		goto err_unlink;
	}
	libc_close(fd);
	fd = -1;
	ring_init_header(h, cfg, exe, total, ep_cap, ep_off, mod_off, data_off);
	ring_hash_key = ring_new_key();

	for (n = 0; n < 1000; n++) {
		(void)snprintf(final_path, sizeof(final_path), "%s%d.%d",
			       RING_PATH_PREFIX, (int)getpid(), n);
		if (link(tmp_path, final_path) == 0)
			break;
		if (errno != EEXIST) {
			r = -errno;
			goto err_unmap;
		}
	}
	if (n == 1000) {
		r = -EEXIST;
		goto err_unmap;
	}
	(void)unlink(tmp_path);
	*ret_ring = h;
	if (ret_file) {
		(void)snprintf(ret_file->path, sizeof(ret_file->path), "%s",
			       final_path);
		ret_file->dev = st.st_dev;
		ret_file->ino = st.st_ino;
	}
	return 0;

err_unmap:
	(void)munmap(h, total);
err_unlink:
	if (fd >= 0)
		libc_close(fd);
	(void)shm_unlink(tmp_name);
	return r;
}

int ring_chown(const struct ring_file *f, uid_t uid, gid_t gid)
{
	int saved = errno, fd, r = 0;
	struct stat st;

	fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_dev != f->dev ||
		 st.st_ino != f->ino)
		r = -ESTALE;
	else if (fchown(fd, uid, gid) < 0)
		r = -errno;
	libc_close(fd);
out:
	errno = saved;
	return r;
}

void ring_unmap(struct ring_header *h)
{
	if (h)
		(void)munmap(h, h->total_size);
}

static inline uint8_t *ring_data(struct ring_header *h)
{
	return (uint8_t *)h + h->data_off;
}

/*
 * Reservation. A record never wraps: when it does not fit before the end of
 * the data area, the reservation also takes the bytes up to the end. If those
 * are at least a record header long they are marked with a PAD record;
 * fewer than sizeof(struct ring_rec) bytes before the end are skipped by the
 * consumer by the same rule, without a header.
 */
struct ring_rec *ring_reserve(struct ring_header *h, uint32_t len,
			      uint16_t type, uint16_t flags, uint64_t *ret_pos)
{
	const uint64_t size = h->data_size;
	uint64_t head = atomic_load_explicit(A(&h->head), memory_order_relaxed);
	uint64_t off, need, tail;
	struct ring_rec *rec;

	if (len > size / 2)
		return NULL;
	for (int i = 0; i < RING_CAS_TRIES; i++) {
		tail = atomic_load_explicit(A(&h->tail), memory_order_acquire);
		off = head & (size - 1);
		need = off + len > size ? (size - off) + len : len;
		/* Signed: when the consumer is already past our head, that
		 * head is stale (read before a signal handler or another
		 * thread wrote and the consumer drained); the CAS below then
		 * fails and reloads it, instead of a drop. */
		if ((int64_t)(head + need - tail) > (int64_t)size)
			return NULL;
		if (atomic_compare_exchange_weak_explicit(
			    A(&h->head), &head, head + need,
			    memory_order_relaxed, memory_order_relaxed))
			goto reserved;
	}
	return NULL;

reserved:
	if (need != len) {
		uint64_t gap = size - off;

		if (gap >= sizeof(struct ring_rec)) {
			struct ring_rec *pad =
				(struct ring_rec *)(ring_data(h) + off);

			pad->len = (uint32_t)gap;
			pad->type = RING_REC_PAD;
			pad->flags = 0;
			atomic_store_explicit(A(&pad->seq), head ^ RING_SEQ_KEY,
					      memory_order_release);
		}
		head += gap;
	}
	rec = (struct ring_rec *)(ring_data(h) + (head & (size - 1)));
	rec->len = len;
	rec->type = type;
	rec->flags = flags;
	*ret_pos = head;
	return rec;
}

void ring_count(uint64_t *counter, uint64_t n)
{
	atomic_fetch_add_explicit(A(counter), n, memory_order_relaxed);
}

/* What ring_probe() found. */
enum ring_probe {
	RING_PROBE_FOUND, /* the name's slot */
	RING_PROBE_MADE,  /* the name is new and was interned in a free slot */
	RING_PROBE_NEW,   /* the name is new; the limit forbade interning it */
	RING_PROBE_FULL,  /* neither the name nor a free slot in the probes */
};

/*
 * Look for name[0..len) (hash `hash`, len < RING_ENDPOINT_NAME_MAX) in the
 * table, and intern it in the first free slot met while fewer than `limit`
 * names are counted in endpoints_used; `counted` says whether it is one of
 * them (OTHER is not). Sets *ret_idx for FOUND and MADE. At most
 * RING_ENDPOINT_PROBES slots are looked at, each at most twice (once more
 * when another thread took it first), and a slot being written is passed
 * over, never waited for.
 */
static enum ring_probe ring_probe(struct ring_header *h, const char *name,
				  size_t len, uint32_t hash, uint32_t limit,
				  bool counted, uint32_t *ret_idx)
{
	struct ring_endpoint *eps =
		(struct ring_endpoint *)((uint8_t *)h + h->endpoints_off);
	const uint32_t mask = h->endpoints_cap - 1;

	for (uint32_t i = 0; i < RING_ENDPOINT_PROBES; i++) {
		uint32_t idx = (hash + i) & mask;
		struct ring_endpoint *e = &eps[idx];
		uint32_t st = atomic_load_explicit(A32(&e->state),
						   memory_order_acquire);

		if (st == RING_EP_READY) {
			if (e->hash == hash &&
			    ring_name_eq(e->name, name, len)) {
				*ret_idx = idx;
				return RING_PROBE_FOUND;
			}
			continue;
		}
		if (st == RING_EP_BUSY)
			continue; /* being written: never wait, probe on */
		/* Empty: the name is new. */
		if (counted && atomic_load_explicit(A32(&h->endpoints_used),
						    memory_order_relaxed) >=
				       limit)
			return RING_PROBE_NEW;
		if (!atomic_compare_exchange_strong_explicit(
			    A32(&e->state), &st, RING_EP_BUSY,
			    memory_order_acquire, memory_order_relaxed)) {
			i--; /* lost the slot: look at it again */
			continue;
		}
		e->hash = hash;
		memcpy(e->name, name, len);
		e->name[len] = '\0';
		atomic_store_explicit(A32(&e->state), RING_EP_READY,
				      memory_order_release);
		if (counted)
			atomic_fetch_add_explicit(A32(&h->endpoints_used), 1,
						  memory_order_relaxed);
		*ret_idx = idx;
		return RING_PROBE_MADE;
	}
	return RING_PROBE_FULL;
}

uint32_t ring_endpoint_other(struct ring_header *h, bool count)
{
	uint32_t idx;

	if (count)
		ring_count(&h->overflow_endpoints, 1);
	if (ring_probe(h, "OTHER", 5, ring_hash("OTHER", 5), 0, false,
		       &idx) > RING_PROBE_MADE)
		return RING_ENDPOINT_NONE;
	return idx;
}

uint32_t ring_endpoint(struct ring_header *h, const char *name, size_t len,
		       unsigned max_endpoints)
{
	bool own;

	return ring_endpoint_own(h, name, len, max_endpoints, &own);
}

uint32_t ring_endpoint_own(struct ring_header *h, const char *name,
			   size_t len, unsigned max_endpoints, bool *ret_own)
{
	uint32_t idx;

	if (len > RING_ENDPOINT_NAME_MAX - 1)
		len = RING_ENDPOINT_NAME_MAX - 1;
	*ret_own = ring_probe(h, name, len, ring_hash(name, len),
			      max_endpoints, true, &idx) <= RING_PROBE_MADE;
	if (*ret_own)
		return idx;
	/* A new name past the limit, or one that found no free slot within
	 * RING_ENDPOINT_PROBES: either way the request counts under OTHER,
	 * and overflow_endpoints says how many did. */
	return ring_endpoint_other(h, true);
}

uint32_t ring_endpoint_line(struct ring_header *h, const char *name,
			    size_t len, unsigned max_endpoints, bool *ret_own)
{
	enum ring_probe r;
	uint32_t idx;

	if (len > RING_ENDPOINT_NAME_MAX - 1)
		len = RING_ENDPOINT_NAME_MAX - 1;
	r = ring_probe(h, name, len, ring_hash(name, len),
		       RING_FREE_LIMIT(max_endpoints), true, &idx);
	*ret_own = r <= RING_PROBE_MADE;
	if (*ret_own)
		return idx;
	if (r == RING_PROBE_NEW &&
	    atomic_load_explicit(A32(&h->endpoints_used),
				 memory_order_relaxed) < max_endpoints)
		return RING_ENDPOINT_DEFER;
	return ring_endpoint_other(h, true);
}

/*
 * The filter of names seen once: 64-bit name hashes (ring_hash64, keyed
 * per ring, so what a fork child inherits from its parent never matches
 * its own names), in RING_SEEN_SETS sets of RING_SEEN_WAYS, process-local
 * and in bss: its 32 KiB are touched only by names answered 4xx once the
 * table is half full. Any thread reads and writes it with relaxed atomics
 * and no lock: a note lost to a race or to eviction makes a name wait for
 * one more sighting, and a false match needs two names whose 64-bit hashes
 * agree.
 */
#define RING_SEEN_SETS 1024
#define RING_SEEN_WAYS 4

static _Atomic uint64_t ring_seen[RING_SEEN_SETS][RING_SEEN_WAYS];
static _Atomic uint32_t ring_seen_next; /* the way a full set gives up */

/*
 * True when the name of hash `hash` was noted before, and then forgets it
 * (its way is free for another name: this one has had its second
 * sighting); otherwise notes it (in a free way of its set, or in place of
 * the way a process-wide counter picks, so that two names never keep
 * evicting each other) and returns false.
 */
static bool ring_seen_before(uint64_t hash)
{
	const uint64_t v = hash | 1; /* 0 is a free way */
	_Atomic uint64_t *set =
		ring_seen[(hash * 0x9e3779b97f4a7c15ull) >> 54];
	int free_way = -1;

	_Static_assert(RING_SEEN_SETS == 1u << (64 - 54),
		       "the set is the top bits of the mixed hash");
	for (int w = 0; w < RING_SEEN_WAYS; w++) {
		uint64_t x = atomic_load_explicit(&set[w],
						  memory_order_relaxed);

		if (x == v) {
			atomic_store_explicit(&set[w], 0,
					      memory_order_relaxed);
			return true;
		}
		if (x == 0 && free_way < 0)
			free_way = w;
	}
	if (free_way < 0)
		free_way = (int)(atomic_fetch_add_explicit(
					 &ring_seen_next, 1,
					 memory_order_relaxed) %
				 RING_SEEN_WAYS);
	atomic_store_explicit(&set[free_way], v, memory_order_relaxed);
	return false;
}

uint32_t ring_endpoint_admit(struct ring_header *h, const char *name,
			     size_t len, unsigned status,
			     unsigned max_endpoints, bool *ret_own)
{
	const bool answered = (status >= 100 && status < 400) ||
			      (status >= 500 && status < 600);
	uint64_t hash;
	uint32_t idx, limit = max_endpoints;

	if (len > RING_ENDPOINT_NAME_MAX - 1)
		len = RING_ENDPOINT_NAME_MAX - 1;
	hash = ring_hash64(name, len);
	/* 4xx or none: the second such answer admits it, within the
	 * limit that keeps the last quarter for answered names. A name
	 * another connection has interned meanwhile is found whatever the
	 * limit. */
	if (!answered)
		limit = ring_seen_before(hash) ? RING_4XX_LIMIT(max_endpoints)
					       : 0;
	*ret_own = ring_probe(h, name, len, (uint32_t)hash, limit, true,
			      &idx) <= RING_PROBE_MADE;
	if (*ret_own)
		return idx;
	return ring_endpoint_other(h, true);
}

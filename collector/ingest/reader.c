/*
 * reader.c — attach to a ring, validate it, drain it (see reader.h and the
 * protocol in ring_format.h).
 */
#include "ingest/reader.h"
#include "ring_codec.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define READER_REC_MAX 4096
/* Threads whose last sample is kept to resolve shared frames, by tid. */
#define READER_THREADS 1024

struct reader_thread {
	uint32_t tid;
	uint16_t serial;
	uint16_t n;      /* 0: no usable last sample */
	uint64_t frames[RING_MAX_FRAMES];
};

struct reader {
	char path[256];
	uint8_t *map;
	size_t size;
	struct ring_header *h;
	struct ring_header copy;   /* the immutable part, read once */
	char exe[RING_EXE_MAX];
	uint32_t uid;              /* the file's owner */
	uint64_t tail;             /* read position; the ring's tail lags it
				    * while held (reader_hold) */
	bool hold;
	char error[160];
	uint64_t frames[RING_MAX_FRAMES];
	uint8_t rec[READER_REC_MAX];
	struct reader_thread *threads[READER_THREADS];
	uint64_t samples, sample_bytes, unresolved;
};

static bool reader_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static bool reader_range_ok(uint64_t off, uint64_t len, uint64_t total)
{
	return off <= total && len <= total - off;
}

/* Check the immutable part of the header; returns NULL or the reason. */
static const char *reader_check_header(const struct ring_header *h,
				       uint64_t file_size)
{
	if (h->magic != RING_MAGIC)
		return "bad magic";
	if (h->version != RING_VERSION)
		return "unsupported version";
	if (h->header_size != sizeof(*h))
		return "bad header size";
	if (h->total_size != file_size)
		return "size in header differs from the file size";
	if (!reader_pow2(h->endpoints_cap) || h->endpoints_cap > (1u << 20))
		return "bad endpoint table size";
	if (h->modules_cap > RING_MODULES_MAX)
		return "bad module map size";
	if (!reader_pow2(h->data_size) || h->data_size < 4096)
		return "bad data size";
	if (h->endpoints_off < sizeof(*h) || h->endpoints_off % RING_ALIGN ||
	    !reader_range_ok(h->endpoints_off,
			     (uint64_t)h->endpoints_cap *
				     sizeof(struct ring_endpoint),
			     file_size))
		return "endpoint table out of bounds";
	if (h->modules_off < h->endpoints_off +
				     (uint64_t)h->endpoints_cap *
					     sizeof(struct ring_endpoint) ||
	    h->modules_off % RING_ALIGN ||
	    !reader_range_ok(h->modules_off,
			     (uint64_t)h->modules_cap * sizeof(struct ring_module),
			     file_size))
		return "module map out of bounds";
	if (h->data_off < h->modules_off + (uint64_t)h->modules_cap *
						    sizeof(struct ring_module) ||
	    h->data_off % RING_ALIGN ||
	    !reader_range_ok(h->data_off, h->data_size, file_size))
		return "data area out of bounds";
	if (h->max_depth == 0 || h->max_depth > RING_MAX_FRAMES)
		return "bad max depth";
	return NULL;
}

void reader_owners_add(struct reader_owners *o, uint32_t uid)
{
	for (unsigned i = 0; i < o->n; i++)
		if (o->uid[i] == uid)
			return;
	if (o->n < READER_OWNERS_MAX)
		o->uid[o->n++] = uid;
}

/* " (name)" of uid, or "" when it has none. */
static void reader_user(uint32_t uid, char *buf, size_t len)
{
	struct passwd pw, *found = NULL;
	char tmp[1024];

	buf[0] = '\0';
	if (getpwuid_r((uid_t)uid, &pw, tmp, sizeof(tmp), &found) == 0 && found)
		(void)snprintf(buf, len, " (%s)", found->pw_name);
}

/*
 * Whether st is a ring o allows; otherwise the reason, with what to do, in
 * err. Regular file and mode first: those are wrong whoever reads.
 */
static bool reader_owner_ok(const struct stat *st,
			    const struct reader_owners *o, char *err,
			    size_t errlen)
{
	char who[80], list[160] = "";
	size_t at = 0;

	if (!S_ISREG(st->st_mode) || (st->st_mode & 077)) {
		(void)snprintf(err, errlen,
			       "not a private ring (owner %u, mode %03o; a "
			       "ring is a regular file of mode 600)",
			       (unsigned)st->st_uid,
			       (unsigned)st->st_mode & 0777);
		return false;
	}
	for (unsigned i = 0; i < o->n; i++)
		if (st->st_uid == o->uid[i])
			return true;
	reader_user(st->st_uid, who, sizeof(who));
	if (!o->privileged) {
		(void)snprintf(err, errlen,
			       "owned by uid %u%s, not by this collector's "
			       "user (uid %u); run the collector as root or "
			       "as the ring's owner",
			       (unsigned)st->st_uid, who,
			       o->n ? (unsigned)o->uid[0] : 0u);
		return false;
	}
	for (unsigned i = 0; i < o->n && at < sizeof(list); i++) {
		int k = snprintf(list + at, sizeof(list) - at, "%s%u",
				 i ? ", " : "", (unsigned)o->uid[i]);

		if (k < 0)
			break;
		at += (size_t)k;
	}
	(void)snprintf(err, errlen,
		       "owned by uid %u%s, neither root nor a user process "
		       "%u runs or ran as (uids %s): refused, another user "
		       "may have planted it; remove it",
		       (unsigned)st->st_uid, who, (unsigned)o->pid, list);
	return false;
}

int reader_open_fd_owned(int fd, const char *name,
			 const struct reader_owners *o, struct reader **ret,
			 char *err, size_t errlen)
{
	struct reader *r = NULL;
	struct stat st;
	const char *why;
	int e;

	if (fstat(fd, &st) < 0) {
		e = -errno;
		(void)snprintf(err, errlen, "fstat: %s", strerror(errno));
		return e;
	}
	if (!reader_owner_ok(&st, o, err, errlen))
		return -EPERM;
	if ((uint64_t)st.st_size < sizeof(struct ring_header)) {
		(void)snprintf(err, errlen, "corrupt ring: truncated (%lld bytes)",
			       (long long)st.st_size);
		return -EBADMSG;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		(void)snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r->size = (size_t)st.st_size;
	r->uid = (uint32_t)st.st_uid;
	r->map = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->map == MAP_FAILED) {
		e = -errno;
		(void)snprintf(err, errlen, "mmap: %s", strerror(errno));
		r->map = NULL;
		goto fail;
	}
	r->h = (struct ring_header *)r->map;
	memcpy(&r->copy, r->h, sizeof(r->copy));
	why = reader_check_header(&r->copy, r->size);
	if (why) {
		e = -EBADMSG;
		(void)snprintf(err, errlen, "corrupt ring: %s", why);
		goto fail;
	}
	if (o->pid && r->copy.pid != o->pid) {
		e = -EPERM;
		(void)snprintf(err, errlen,
			       "its header names pid %u, its file name pid %u: "
			       "refused, not the ring of the process it names",
			       (unsigned)r->copy.pid, (unsigned)o->pid);
		goto fail;
	}
	memcpy(r->exe, r->copy.exe, sizeof(r->exe));
	r->exe[sizeof(r->exe) - 1] = '\0';
	(void)snprintf(r->path, sizeof(r->path), "%s", name);
	r->tail = atomic_load_explicit((_Atomic uint64_t *)&r->h->tail,
				       memory_order_acquire);
	if (r->tail % RING_ALIGN) {
		e = -EBADMSG;
		(void)snprintf(err, errlen, "corrupt ring: unaligned tail");
		goto fail;
	}
	*ret = r;
	return 0;

fail:
	if (r->map)
		(void)munmap(r->map, r->size);
	free(r);
	return e;
}

/* The caller's own uid alone, any pid: an ordinary user's rule. */
static void reader_owners_self(struct reader_owners *o)
{
	memset(o, 0, sizeof(*o));
	reader_owners_add(o, (uint32_t)getuid());
}

int reader_open_fd(int fd, const char *name, struct reader **ret, char *err,
		   size_t errlen)
{
	struct reader_owners o;

	reader_owners_self(&o);
	return reader_open_fd_owned(fd, name, &o, ret, err, errlen);
}

int reader_open_owned(const char *path, const struct reader_owners *o,
		      struct reader **ret, char *err, size_t errlen)
{
	int fd, e;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		struct stat st;

		e = -errno;
		/* Another user's ring: say whose, and what to do. */
		if (e == -EACCES && lstat(path, &st) == 0 &&
		    !reader_owner_ok(&st, o, err, errlen))
			return -EPERM;
		(void)snprintf(err, errlen, "open: %s", strerror(-e));
		return e;
	}
	e = reader_open_fd_owned(fd, path, o, ret, err, errlen);
	(void)close(fd);
	return e;
}

int reader_open(const char *path, struct reader **ret, char *err,
		size_t errlen)
{
	struct reader_owners o;

	reader_owners_self(&o);
	return reader_open_owned(path, &o, ret, err, errlen);
}

void reader_close(struct reader *r)
{
	if (!r)
		return;
	if (r->map)
		(void)munmap(r->map, r->size);
	for (size_t i = 0; i < READER_THREADS; i++)
		free(r->threads[i]);
	free(r);
}

static int reader_corrupt(struct reader *r, const char *why, uint64_t pos)
{
	(void)snprintf(r->error, sizeof(r->error),
		       "corrupt ring: %s at position %llu", why,
		       (unsigned long long)pos);
	return -EBADMSG;
}

/* Name of endpoint index idx, or NULL when it is not a valid entry. */
static const char *reader_endpoint(struct reader *r, uint32_t idx)
{
	struct ring_endpoint *e;

	if (idx == RING_ENDPOINT_NONE || idx >= r->copy.endpoints_cap)
		return NULL;
	e = (struct ring_endpoint *)(r->map + r->copy.endpoints_off) + idx;
	if (atomic_load_explicit((_Atomic uint32_t *)&e->state,
				 memory_order_acquire) != RING_EP_READY)
		return NULL;
	if (!memchr(e->name, '\0', sizeof(e->name)))
		return NULL;
	return e->name;
}

/* The sample's frames (ring_codec.h); 0 or -1 when malformed. */
static int reader_frames(struct reader *r, const uint8_t *p, size_t nbytes,
			 uint32_t nframes)
{
	return ring_codec_decode(p, nbytes, r->frames, nframes);
}

/*
 * Complete r->frames with the root-side frames the sample shares with its
 * thread's previous one. Returns false when the previous sample was never
 * read (lost, or read before this collector started). Changes nothing but
 * r->frames: the thread's state moves on only once the sample is consumed
 * (reader_thread_keep), so a sample whose callback fails, and which stays
 * unread, resolves the same way when it is read again.
 */
static bool reader_thread_resolve(struct reader *r, const struct ring_sample *s)
{
	const struct reader_thread *t = r->threads[s->tid % READER_THREADS];

	if (!s->shared)
		return true;
	if (!t || t->tid != s->tid || t->n < s->shared ||
	    (uint16_t)(t->serial + 1) != s->serial)
		return false;
	memcpy(&r->frames[s->nframes - s->shared], &t->frames[t->n - s->shared],
	       s->shared * sizeof(r->frames[0]));
	return true;
}

/*
 * Keep a consumed sample as its thread's last one, and count it. An
 * unresolved sample is counted as such and leaves the thread without a
 * usable last sample, so its next ones are unresolved too until a
 * standalone sample.
 */
static void reader_thread_keep(struct reader *r, const struct ring_sample *s,
			       bool resolved)
{
	struct reader_thread **slot = &r->threads[s->tid % READER_THREADS];
	struct reader_thread *t = *slot;

	r->samples++;
	r->sample_bytes += s->rec.len;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			if (!resolved)
				r->unresolved++;
			return;
		}
		*slot = t;
	}
	t->tid = s->tid;
	t->serial = s->serial;
	if (!resolved) {
		t->n = 0;
		r->unresolved++;
		return;
	}
	t->n = s->nframes;
	memcpy(t->frames, r->frames, s->nframes * sizeof(r->frames[0]));
}

static int reader_decode(struct reader *r, const struct ring_rec *rec,
			 uint64_t pos, struct reader_event *ev)
{
	const struct ring_header *h = &r->copy;

	memset(ev, 0, sizeof(*ev));
	switch (rec->type) {
	case RING_REC_SAMPLE: {
		const struct ring_sample *s = (const struct ring_sample *)rec;

		if (rec->len < sizeof(*s) || s->nframes > RING_MAX_FRAMES ||
		    s->shared > s->nframes || s->nbytes > rec->len - sizeof(*s))
			return reader_corrupt(r, "bad sample record", pos);
		if (reader_frames(r, (const uint8_t *)(s + 1), s->nbytes,
				  s->nframes - s->shared) < 0)
			return reader_corrupt(r, "bad sample frames", pos);
		if (!reader_thread_resolve(r, s)) {
			reader_thread_keep(r, s, false);
			return 0; /* counted as unresolved */
		}
		ev->kind = READER_SAMPLE;
		ev->req_id = s->req_id;
		ev->tid = s->tid;
		ev->endpoint = reader_endpoint(r, s->endpoint);
		ev->nframes = s->nframes;
		ev->frames = r->frames;
		ev->start = ((double)h->start_realtime_ns +
			     ((double)s->time_ns - (double)h->start_monotonic_ns)) /
			    1e9;
		return 1;
	}
	case RING_REC_REQUEST: {
		const struct ring_request *q = (const struct ring_request *)rec;

		if (rec->len < sizeof(*q))
			return reader_corrupt(r, "bad request record", pos);
		ev->kind = READER_REQUEST;
		ev->req_id = q->req_id;
		ev->tid = q->tid;
		ev->flags = rec->flags;
		ev->endpoint = reader_endpoint(r, q->endpoint);
		if (!ev->endpoint)
			ev->endpoint = "OTHER";
		ev->start = ((double)h->start_realtime_ns +
			     ((double)q->start_ns - (double)h->start_monotonic_ns)) /
			    1e9;
		ev->duration_ns = q->duration_ns;
		ev->status = q->status;
		return 1;
	}
	case RING_REC_PAD:
		return 0;
	default:
		return reader_corrupt(r, "unknown record type", pos);
	}
}

int reader_drain(struct reader *r, size_t max,
		 int (*cb)(void *arg, const struct reader_event *ev), void *arg)
{
	const uint64_t size = r->copy.data_size;
	uint8_t *data = r->map + r->copy.data_off;
	struct reader_event ev;
	size_t n = 0;
	int ret = 0;

	if (r->error[0])
		return -EBADMSG;
	while (n < max) {
		uint64_t off = r->tail & (size - 1), rem = size - off;
		struct ring_rec *src, *rec = (struct ring_rec *)r->rec;
		uint64_t seq;

		if (rem < sizeof(struct ring_rec)) {
			/* Too short for a PAD header: skipped by rule, but
			 * only once a producer has reserved past it (the
			 * record at the start of the area is committed), so
			 * that tail never passes head. */
			src = (struct ring_rec *)data;
			seq = atomic_load_explicit((_Atomic uint64_t *)&src->seq,
						   memory_order_acquire);
			if (seq != ((r->tail + rem) ^ RING_SEQ_KEY))
				break;
			r->tail += rem;
			continue;
		}
		src = (struct ring_rec *)(data + off);
		seq = atomic_load_explicit((_Atomic uint64_t *)&src->seq,
					   memory_order_acquire);
		if (seq != (r->tail ^ RING_SEQ_KEY))
			break; /* not committed yet */
		memcpy(rec, src, sizeof(*rec));
		if (rec->len < sizeof(*rec) || rec->len % RING_ALIGN ||
		    rec->len > rem ||
		    (rec->type != RING_REC_PAD && rec->len > READER_REC_MAX)) {
			ret = reader_corrupt(r, "bad record length", r->tail);
			break;
		}
		if (rec->type != RING_REC_PAD) {
			struct ring_rec checked = *rec;

			memcpy(rec, src, checked.len);
			*rec = checked; /* src may have changed since the check */
		}
		ret = reader_decode(r, rec, r->tail, &ev);
		if (ret < 0)
			break;
		if (ret > 0) {
			ret = cb(arg, &ev);
			if (ret < 0)
				break; /* the record stays unread */
			if (ev.kind == READER_SAMPLE)
				reader_thread_keep(
					r, (const struct ring_sample *)rec, true);
			n++;
		}
		r->tail += rec->len;
		ret = 0;
	}
	if (!r->hold)
		reader_release(r, r->tail);
	return ret < 0 ? ret : (int)n;
}

void reader_hold(struct reader *r)
{
	r->hold = true;
}

uint64_t reader_position(const struct reader *r)
{
	return r->tail;
}

uint64_t reader_held(const struct reader *r)
{
	return r->tail - atomic_load_explicit((_Atomic uint64_t *)&r->h->tail,
					      memory_order_relaxed);
}

void reader_release(struct reader *r, uint64_t pos)
{
	_Atomic uint64_t *tailp = (_Atomic uint64_t *)&r->h->tail;
	uint64_t cur = atomic_load_explicit(tailp, memory_order_relaxed);

	/* Only forward, and never past what this reader has read. */
	if (pos - cur <= r->tail - cur)
		atomic_store_explicit(tailp, pos, memory_order_release);
}

int reader_resume(struct reader *r, uint64_t pos,
		  const struct reader_counters *c)
{
	uint64_t tail = atomic_load_explicit((_Atomic uint64_t *)&r->h->tail,
					     memory_order_acquire);
	uint64_t head = atomic_load_explicit((_Atomic uint64_t *)&r->h->head,
					     memory_order_acquire);

	if (pos - tail > head - tail || pos % RING_ALIGN)
		return -ERANGE;
	r->tail = pos;
	r->samples = c->samples;
	r->sample_bytes = c->sample_bytes;
	r->unresolved = c->unresolved_samples;
	return 0;
}

static uint32_t reader_count_modules(const struct reader *r)
{
	uint32_t count = atomic_load_explicit(
		(_Atomic uint32_t *)&r->h->modules_count, memory_order_acquire);

	return count > r->copy.modules_cap ? r->copy.modules_cap : count;
}

uint32_t reader_module_count(const struct reader *r)
{
	return reader_count_modules(r);
}

uint32_t reader_modules(struct reader *r, struct ring_module *out,
			uint32_t outcap)
{
	const struct ring_module *mods =
		(const struct ring_module *)(r->map + r->copy.modules_off);
	uint32_t count = reader_count_modules(r);

	if (count > outcap)
		count = outcap;
	for (uint32_t i = 0; i < count; i++) {
		out[i] = mods[i];
		out[i].path[sizeof(out[i].path) - 1] = '\0';
		if (out[i].build_id_len > RING_BUILD_ID_MAX)
			out[i].build_id_len = 0;
		if (out[i].hi < out[i].lo)
			out[i].hi = out[i].lo;
	}
	return count;
}

void reader_counters(const struct reader *r, struct reader_counters *ret)
{
	const struct ring_header *h = r->h;

#define LOAD(f) atomic_load_explicit((_Atomic uint64_t *)&h->f, memory_order_relaxed)
	ret->dropped_samples = LOAD(dropped_samples);
	ret->dropped_events = LOAD(dropped_events);
	ret->dropped_requests = LOAD(dropped_requests);
	ret->skipped_samples = LOAD(skipped_samples);
	ret->untracked_conns = LOAD(untracked_conns);
	ret->overflow_endpoints = LOAD(overflow_endpoints);
#undef LOAD
	ret->samples = r->samples;
	ret->sample_bytes = r->sample_bytes;
	ret->unresolved_samples = r->unresolved;
}

void reader_engine(const struct reader *r, struct reader_engine *ret)
{
	const struct ring_header *h = r->h;

#define LOAD32(f) atomic_load_explicit((_Atomic uint32_t *)&h->f, memory_order_relaxed)
	ret->engine = atomic_load_explicit((_Atomic uint32_t *)&h->cpu_engine,
					   memory_order_acquire);
	ret->hz = LOAD32(cpu_hz);
	ret->error = LOAD32(cpu_error);
	ret->tick_hz = LOAD32(tick_hz);
	ret->sampling = atomic_load_explicit((_Atomic uint32_t *)&h->sig_state,
					     memory_order_acquire);
	ret->signo = LOAD32(sig_signo);
	ret->aside = LOAD32(sig_aside);
	ret->pad = 0;
	ret->taken = atomic_load_explicit((_Atomic uint64_t *)&h->sig_taken,
					  memory_order_relaxed);
#undef LOAD32
	if (ret->sampling > RING_SAMPLING_ASIDE)
		ret->sampling = RING_SAMPLING_UNKNOWN;
	if (ret->aside > RING_ASIDE_INIT)
		ret->aside = RING_ASIDE_NONE;
	if (ret->signo > 64)
		ret->signo = 0;
	if (ret->engine > RING_ENGINE_FAILED)
		ret->engine = RING_ENGINE_NONE;
	if (ret->hz > 1000000)
		ret->hz = 0;
	if (ret->tick_hz > 1000000)
		ret->tick_hz = 0;
	if (ret->error > 4095)
		ret->error = 0;
}

uint32_t reader_pid(const struct reader *r) { return r->copy.pid; }
uint32_t reader_uid(const struct reader *r) { return r->uid; }
uint32_t reader_ppid(const struct reader *r) { return r->copy.ppid; }
const char *reader_exe(const struct reader *r) { return r->exe; }
const char *reader_path(const struct reader *r) { return r->path; }
const struct ring_header *reader_header(const struct reader *r) { return &r->copy; }

bool reader_exited(const struct reader *r)
{
	return atomic_load_explicit((_Atomic uint32_t *)&r->h->exited,
				    memory_order_acquire) != 0;
}

const char *reader_error(const struct reader *r)
{
	return r->error[0] ? r->error : NULL;
}

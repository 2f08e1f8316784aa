/*
 * reader.h — the collector's side of a shim ring: attach, validate, drain.
 *
 * A ring is untrusted input: a buggy or hostile process of the same user
 * could write anything into it. Every size, offset, index and length is
 * checked before use; records are copied out of the shared mapping before
 * they are decoded, so a writer changing bytes underneath cannot make a
 * checked length unchecked. A ring that breaks a rule is reported once as
 * corrupt (reader_error()) and not read further.
 */
#ifndef PROFSHIM_READER_H
#define PROFSHIM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_format.h"

struct reader;

enum reader_kind { READER_SAMPLE = 1, READER_REQUEST = 2 };

struct reader_event {
	enum reader_kind kind;
	uint64_t req_id;
	uint32_t tid;
	const char *endpoint;  /* NULL: outside any request */
	uint16_t flags;        /* RING_REQ_* for requests */
	double start;          /* seconds since the epoch: the request's
				* start, or when the sample was taken */
	/* REQUEST */
	uint64_t duration_ns;
	uint32_t status;
	/* SAMPLE */
	uint32_t nframes;
	const uint64_t *frames; /* leaf first; valid during the callback */
};

struct reader_counters {
	uint64_t dropped_samples;
	uint64_t dropped_events;
	uint64_t dropped_requests;
	uint64_t skipped_samples;
	uint64_t untracked_conns;
	uint64_t overflow_endpoints;
	/* Counted by the reader, not the shim: */
	uint64_t samples;             /* sample records read */
	uint64_t sample_bytes;        /* their size in the ring */
	uint64_t unresolved_samples;  /* shared frames with a sample never read */
};

/*
 * How a process takes its samples, as its shim last said in the ring
 * header: its CPU clock (cpuclock.h) and its signal. Values a corrupt header could hold are
 * clamped: an unknown engine reads as RING_ENGINE_NONE, rates above
 * 1,000,000 as 0.
 */
struct reader_engine {
	uint32_t engine;              /* enum ring_engine */
	uint32_t hz;                  /* the rate its samples come at */
	uint32_t error;               /* errno that refused perf_event_open */
	uint32_t tick_hz;             /* the kernel's tick rate */
	/* The signal it samples with (ring_header.sig_*): an unknown state
	 * or reason reads as UNKNOWN/NONE, a signal number above 64 as 0. */
	uint32_t signo;               /* 0: none */
	uint32_t sampling;            /* enum ring_sampling */
	uint32_t aside;               /* enum ring_aside */
	uint32_t pad;                 /* 0, so that memcmp compares fields */
	uint64_t taken;               /* bit s-1: the program holds signal s */
};

/* Owners a reader_owners may list: root, and the real, effective, saved
 * and file-system uids of a process, and a few seen earlier. */
#define READER_OWNERS_MAX 16

/*
 * Whose rings may be read. A ring is a regular file of mode 0600 (no group
 * or other permission) whose owner is one of uid[0..n). An ordinary user's
 * collector lists its own uid alone; a privileged one (root, or with
 * CAP_DAC_OVERRIDE) lists root and the users the process named in the
 * ring runs or ran as, so a ring another user planted under that
 * process's pid is refused. When pid is not 0, the ring's header must name
 * that pid too (the pid of its file name).
 */
struct reader_owners {
	uint32_t pid;
	bool privileged;      /* what a refusal tells to do */
	unsigned n;
	uint32_t uid[READER_OWNERS_MAX];
};

/* Add uid to o (once; silently not past READER_OWNERS_MAX). */
void reader_owners_add(struct reader_owners *o, uint32_t uid);

/*
 * Map and validate the ring file at path, if its owner is one of o's
 * (checked on the open file, before anything in it is read). On failure
 * returns a negative errno (-EPERM: not a ring this collector may read) and
 * writes a one-line reason to err, which for a refused owner says what to
 * do.
 */
int reader_open_owned(const char *path, const struct reader_owners *o,
		      struct reader **ret, char *err, size_t errlen);

/* reader_open_owned() with the caller's own uid alone as the owner, and
 * any pid. */
int reader_open(const char *path, struct reader **ret, char *err,
		size_t errlen);

/*
 * reader_open() for a ring file already open as fd (not closed here);
 * `name` is what reader_path() reports. Lets tests and fuzzers hand over
 * memory files.
 */
int reader_open_fd(int fd, const char *name, struct reader **ret, char *err,
		   size_t errlen);

/* reader_open_owned() for a ring file already open as fd. */
int reader_open_fd_owned(int fd, const char *name,
			 const struct reader_owners *o, struct reader **ret,
			 char *err, size_t errlen);

void reader_close(struct reader *r);

/*
 * Deliver up to `max` committed records to cb, in ring order, and (unless
 * the reader is held) release their space to the shim. Returns the number
 * delivered, or -EBADMSG when the ring is corrupt (reason in
 * reader_error()); a callback's negative return stops the drain before that
 * record, which stays unread, and is returned.
 */
int reader_drain(struct reader *r, size_t max,
		 int (*cb)(void *arg, const struct reader_event *ev),
		 void *arg);

/*
 * Exactly-once reading across a collector crash. A held reader reads ahead
 * of the ring's tail: what it has read stays in the ring, where the shim
 * cannot overwrite it, until reader_release() gives it back, which the
 * collector does only once a checkpoint holding those records is on disk.
 * A collector restarted from that checkpoint calls reader_resume() with the
 * position the checkpoint recorded, and neither loses nor re-reads a record.
 */
void reader_hold(struct reader *r);

/* Ring position up to which records have been read (a record boundary). */
uint64_t reader_position(const struct reader *r);

/* Bytes read but not yet released to the shim. */
uint64_t reader_held(const struct reader *r);

/* Give the shim back the space up to pos (between the ring's tail and
 * reader_position(); anything else is ignored). */
void reader_release(struct reader *r, uint64_t pos);

/*
 * Continue reading at pos, a position an earlier reader of this same ring
 * had reached, with that reader's own counts (samples, sample_bytes,
 * unresolved_samples of c). -ERANGE when pos is not between the ring's tail
 * and head.
 */
int reader_resume(struct reader *r, uint64_t pos,
		  const struct reader_counters *c);

/* Number of module map entries the shim has published. */
uint32_t reader_module_count(const struct reader *r);

/*
 * Copy the published module map entries into out (at most outcap), made
 * safe to use (paths NUL-terminated, build id lengths and ranges bounded);
 * returns how many were copied.
 */
uint32_t reader_modules(struct reader *r, struct ring_module *out,
			uint32_t outcap);

void reader_counters(const struct reader *r, struct reader_counters *ret);

/* The CPU clock's state now (see struct reader_engine). */
void reader_engine(const struct reader *r, struct reader_engine *ret);

uint32_t reader_pid(const struct reader *r);
/* The owner of the ring file, as checked when it was opened. */
uint32_t reader_uid(const struct reader *r);
uint32_t reader_ppid(const struct reader *r);
const char *reader_exe(const struct reader *r);
const char *reader_path(const struct reader *r);
const struct ring_header *reader_header(const struct reader *r);

/* True when the shim marked the process as exited normally. */
bool reader_exited(const struct reader *r);

/* The reason the ring was found corrupt, or NULL. */
const char *reader_error(const struct reader *r);

#endif /* PROFSHIM_READER_H */

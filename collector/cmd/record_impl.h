/*
 * record_impl.h — what the parts of `profshim-collector record` share; not
 * a public interface (that is record.h).
 *
 *   record.c             the command: options, set-up, the loop, the final
 *                        write, teardown
 *   record_rings.c       rings and the process tree: discovery, attach,
 *                        drain, reap
 *   record_checkpoint.c  the profile as written: checkpoints, resuming one
 *   record_serve.c       control requests, the HTTP API's and pushes'
 *                        callbacks, starting those services
 */
#ifndef PROFSHIM_RECORD_IMPL_H
#define PROFSHIM_RECORD_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cmd/record.h"
#include "ingest/reader.h"
#include "util/creds.h"

/* Records drained from one ring before the main loop looks again at
 * checkpoints and control requests: small enough that a held ring gets its
 * early checkpoint before it fills (8192 samples are about 400 KB). */
#define RECORD_BATCH 8192

struct attached {
	struct reader *r;
	char name[128];
	int proc;
	uint32_t jit;     /* its perf map in the symbolizer, or 0 */
	uint32_t nmods;
	unsigned long long starttime;
	bool ended;       /* its process is gone and the ring drained dry */
	bool intact;      /* ... and nothing in it was corrupt */
	bool said_aside;  /* "takes no stack samples" said for it */
};

/* The users a process was seen running as: a privileged collector reads
 * the ring of a process that has exited since only when its owner is root
 * or one of these. */
struct record_seen {
	int pid;
	uint32_t uid[CREDS_UIDS];
};

/* Processes remembered (the oldest forgotten first), and refused rings
 * named in the recording's last line. */
#define RECORD_SEEN_MAX 4096
#define RECORD_REFUSED_NAMED 4
/* Processes whose ring was just given to a user they do not run as yet
 * (the shim hands it over before setuid): looked at again each turn of
 * the loop for up to a second, until they do. */
#define RECORD_PENDING_MAX 64
#define RECORD_PENDING_NS 1000000000ull

struct record_pending {
	int pid;
	uint32_t owner;
	uint64_t until;
};

/* Distinct ways of taking CPU samples said on stderr, at most. */
#define RECORD_ENGINES_SAID 8

struct recorder {
	const struct record_opts *o;
	struct stats *stats;
	struct symbols *syms;
	struct attached *att;
	size_t natt, att_cap;
	char **ignored;          /* ring names seen and not ours */
	size_t nignored;
	int ctl;
	char ctl_path[256];      /* where ctl listens (removed at the end) */
	struct httpapi *http;    /* the HTTP API, or NULL */
	struct push *push;       /* pushes to a store, or NULL */
	bool saw_any;
	bool privileged;         /* may read other users' rings (creds.h) */
	int watch;               /* inotify on the ring directory, or -1 */
	struct record_pending pending[RECORD_PENDING_MAX];
	size_t npending;
	struct record_seen *seen; /* RECORD_SEEN_MAX entries, or NULL */
	size_t nseen;            /* entries ever added */
	unsigned long refused;   /* rings of this recording not read */
	char refused_path[RECORD_REFUSED_NAMED][256];
	uint32_t refused_owner;  /* the owner of the refused ones */
	bool refused_owners;     /* ... when they have more than one */
	bool refused_foreign;    /* one was refused as another user's plant */
	unsigned long attached; /* processes attached so far */
	json_t *resume;          /* the rings of the checkpoint resumed from */
	uint64_t last_checkpoint;
	bool dirty;              /* read or changed since the last checkpoint */
	bool checkpoint_failed;  /* said once until one succeeds again */
	struct reader_engine said[RECORD_ENGINES_SAID]; /* ways of sampling
				  * the CPU clock said so far */
	size_t nsaid;
	struct ring_module mods[RING_MODULES_MAX];
};

/* record_rings.c */

/*
 * Read state and start time of pid from /proc. Returns false when the
 * process does not exist or is a zombie (it has ended, its parent has not
 * yet reaped it).
 */
bool record_proc(int pid, int *ret_ppid, unsigned long long *ret_start);
/* Copy text from a ring for a terminal: control bytes become '?'. */
void record_printable(const char *src, char *dst, size_t len);
/*
 * A privileged collector reads a ring of another user only when that user
 * is one its process runs or ran as, so it must see each process while it
 * lives: it watches the ring directory (inotify) and looks up a ring's
 * process as soon as the ring appears, not at the next scan, 100 ms later,
 * by when a short-lived server may be gone. record_watch_start() sets
 * rc->watch (or leaves -1: the scans alone then); record_watch() takes the
 * events waiting, without blocking.
 */
void record_watch_start(struct recorder *rc);
void record_watch(struct recorder *rc);
/* Attach to the rings made since the last scan (or to --ring). */
void record_scan(struct recorder *rc);
/*
 * Drain every ring once, one batch each; with `dry`, until each has nothing
 * more to give (bounded). Returns the records drained.
 */
size_t record_drain_all(struct recorder *rc, bool dry);
/* Detach the rings whose process has ended, after draining them dry. */
void record_reap(struct recorder *rc);
/*
 * The line that ends a recording with rings it could not read: how many,
 * which (the first few; they stay in the ring directory) and what to do,
 * starting "nothing recorded: " when `empty`. Nothing when none was.
 */
void record_say_refused(struct recorder *rc, bool empty);
/* Whether the recording is over: its ring or its pid tree is gone. */
bool record_done(struct recorder *rc);
/* Scan and drain dry: an answer then holds every completed request. */
void record_catch_up(struct recorder *rc);

/* record_checkpoint.c */

/*
 * The profile JSON as text, with `checkpoint` (a reference this takes) as
 * its "checkpoint" object when it is not NULL; NULL when out of memory.
 */
char *record_dumps(struct recorder *rc, const char *endpoint,
		   const char *function, json_t *checkpoint);
/* Write the profile (and `checkpoint`, as record_dumps() takes it) to path
 * atomically. 0, or -1 with the reason in err. */
int record_write(struct recorder *rc, const char *path, json_t *checkpoint,
		 char *err, size_t errlen);
/* Write a checkpoint and give the rings back what it holds. 0, or -1. */
int record_checkpoint(struct recorder *rc);
/* Whether a checkpoint is due at `now`. */
bool record_checkpoint_due(struct recorder *rc, uint64_t now);
/* Take up the checkpoint in the output file, if it is one. 0, or -1 after
 * saying why. */
int record_resume(struct recorder *rc);
/* Go on in a just attached ring from where the checkpoint left it. */
void record_resume_ring(struct recorder *rc, struct attached *a);
/* After the first scan of a resumed recording: the checkpoint's rings not
 * found again are gone. */
void record_resume_gone(struct recorder *rc);

/* record_serve.c */

/* Answer the control requests waiting on the socket. */
void record_control(struct recorder *rc);
/* Start the HTTP API and pushes the options ask for. 0, or -1 after saying
 * why. */
int record_start_services(struct recorder *rc);
/* Whether a push is queued or in flight. */
bool record_push_busy(const struct recorder *rc);
/* The profile after catching up (push_step()'s snapshot). */
json_t *record_snapshot(void *arg);
/* The profile as it stands, without reading more (push_finish()'s). */
json_t *record_snapshot_as_written(void *arg);

#endif /* PROFSHIM_RECORD_IMPL_H */

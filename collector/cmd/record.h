/*
 * record.h — `profshim-collector record`: attach to rings, drain them,
 * aggregate, answer control requests, write the profile at the end.
 *
 * With checkpoints (the default), `out` is rewritten atomically every
 * `checkpoint` seconds with a "checkpoint" object: the aggregation state and
 * how far each ring has been read. Rings give the shim back only what a
 * checkpoint on disk holds, so a collector killed at any moment and started
 * again with the same `out` resumes where that checkpoint left off: every
 * request record is counted exactly once. The profile written at a normal
 * end has no "checkpoint" and the next recording starts afresh.
 *
 * With `http`, the same loop serves the HTTP API (httpapi.h); with
 * `push_url`, it pushes each interval's samples (push.h). Neither waits on
 * a client or on the store: draining the rings goes on whatever they do.
 */
#ifndef PROFSHIM_RECORD_H
#define PROFSHIM_RECORD_H

#include <stddef.h>

struct record_opts {
	int pid;              /* 0: every ring of this uid */
	const char *ring;     /* one ring file, or NULL */
	const char *out;      /* profile file to write at the end */
	double duration;      /* seconds, 0: until stopped */
	const char *socket;   /* control socket path override, or NULL */
	const char *shm_dir;  /* where rings live (tests may point elsewhere) */
	const char *debug_dirs; /* also searched for debug files, or NULL */
	double slow_ms;       /* > 0: a JSON line on stdout per slower request */
	double checkpoint;    /* seconds between checkpoints to `out`, 0: none */
	const char *http;     /* serve the HTTP API on ADDR:PORT, or NULL */
	const char *api_key_file;  /* the key every HTTP request must carry */
	const char *save_dir; /* where the HTTP API may save profiles, or NULL */
	const char *push_url; /* push to this Pyroscope-compatible store, or NULL */
	const char *push_app; /* the application name pushes carry */
	double push_interval; /* seconds between pushes */
	const char *push_format;       /* "pprof" or "folded" */
	const char *const *push_tags;  /* "key=value" each */
	size_t push_ntags;
};

/* Run the command with its arguments (argv[0] is the command's name):
 * parse them into record_opts, then record_run(). Returns the exit status:
 * 0, 1 when it could not do its work, 2 for bad arguments,
 * CLI_EXIT_UNREAD (util/cli.h) when a --pid recording read nothing but
 * refused rings of its processes. */
int record_main(int argc, char **argv);

/* Run the recording; returns the process exit status (0 success). */
int record_run(const struct record_opts *o);

#endif /* PROFSHIM_RECORD_H */

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
 */
#ifndef PROFSHIM_RECORD_H
#define PROFSHIM_RECORD_H

struct record_opts {
	int pid;              /* 0: every ring of this uid */
	const char *ring;     /* one ring file, or NULL */
	const char *out;      /* profile file to write at the end */
	double duration;      /* seconds, 0: until stopped */
	const char *socket;   /* control socket path override, or NULL */
	const char *shm_dir;  /* where rings live (tests may point elsewhere) */
	double slow_ms;       /* > 0: a JSON line on stdout per slower request */
	double checkpoint;    /* seconds between checkpoints to `out`, 0: none */
};

/* Run the recording; returns the process exit status (0 success). */
int record_run(const struct record_opts *o);

#endif /* PROFSHIM_RECORD_H */

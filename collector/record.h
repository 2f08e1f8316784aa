/*
 * record.h — `profshim-collector record`: attach to rings, drain them,
 * aggregate, answer control requests, write the profile at the end.
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
};

/* Run the recording; returns the process exit status (0 success). */
int record_run(const struct record_opts *o);

#endif /* PROFSHIM_RECORD_H */

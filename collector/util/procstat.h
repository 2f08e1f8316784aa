/*
 * procstat.h — what the collector reads of a process in /proc/<pid>/stat:
 * whether it still runs, its parent, and when it started. `record` and `gc`
 * use it to tell a ring's process from a later one that was given the same
 * pid.
 */
#ifndef PROFSHIM_PROCSTAT_H
#define PROFSHIM_PROCSTAT_H

#include <stdbool.h>
#include <stdint.h>

struct procstat {
	char state;                    /* R, S, D, Z, X, ... */
	int ppid;
	unsigned long long start_ticks; /* since boot, in clock ticks */
};

/*
 * Reads /proc/<pid>/stat. 0, or a negative errno (-ENOENT: no such
 * process; -EIO: a line this parser does not understand). Thread-safe.
 */
int procstat_read(int pid, struct procstat *ret);

/* True when the process is still running (neither a zombie nor dead). */
bool procstat_alive(const struct procstat *ps);

/*
 * True when the process ps describes (running or a zombie) started more
 * than two seconds after a ring made at ring_start_monotonic_ns (the
 * ring header's CLOCK_MONOTONIC time of creation): that ring cannot be its
 * own, so the ring's process has exited and its pid was given to this one.
 * Both times are taken on the boot clock, which the system clock's steps
 * do not move: the process's start from its stat line, the ring's as an
 * upper bound (its monotonic time plus all the time suspended so far), so
 * a suspend never makes a live process's ring look older than it is.
 * False when ring_start_monotonic_ns is 0 (unknown).
 */
bool procstat_started_after(const struct procstat *ps,
			    uint64_t ring_start_monotonic_ns);

#endif /* PROFSHIM_PROCSTAT_H */

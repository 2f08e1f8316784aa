/*
 * procstat.h — what the collector reads of a process in /proc/<pid>/stat:
 * whether it still runs, its parent, and when it started. `record` and `gc`
 * use it to tell a ring's process from a later one that was given the same
 * pid.
 */
#ifndef PROFSHIM_PROCSTAT_H
#define PROFSHIM_PROCSTAT_H

#include <stdbool.h>

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
 * When a process that started start_ticks after boot started, in seconds
 * since the epoch (/proc/stat's btime plus the ticks), or -1 when the boot
 * time cannot be read. The clock ticks are coarse (10 ms) and btime is
 * rounded to the second: compare with a second or two of slack.
 */
double procstat_start_s(unsigned long long start_ticks);

/*
 * True when a ring made at ring_start_s (seconds since the epoch) cannot
 * belong to the running process pid: that process started more than two
 * seconds after the ring was made, so the ring's process has exited and
 * the pid was given to another. False when pid is not running or when
 * either time is unknown (<= 0).
 */
bool procstat_pid_reused(int pid, double ring_start_s);

#endif /* PROFSHIM_PROCSTAT_H */

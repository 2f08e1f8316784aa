/*
 * gc.h — `profshim-collector gc`: remove the rings of processes that no
 * longer exist.
 *
 * A ring outlives its process so that a collector can drain it afterwards;
 * with no collector running, rings of exited processes stay in /dev/shm.
 * gc removes those of the caller's uid whose process is gone (or whose pid
 * now belongs to a process started after the ring was made). A running
 * `record` drains and removes rings of exited processes by itself.
 */
#ifndef PROFSHIM_GC_H
#define PROFSHIM_GC_H

#include <stdbool.h>

/* Remove dead rings in dir; prints one line per ring with `verbose` and a
 * summary line. Returns the process exit status. */
int gc_run(const char *dir, bool dry_run, bool verbose);

#endif /* PROFSHIM_GC_H */

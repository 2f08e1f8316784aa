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

/* Run the command with its arguments (argv[0] is the command's name):
 * ask a running collector to drain the rings of exited processes first,
 * then gc_run(). Returns the exit status: 0, 1 when it could not do its
 * work, 2 for bad arguments. */
int gc_main(int argc, char **argv);

/* Remove dead rings in dir; prints one line per ring with `verbose` and a
 * summary line. Returns the process exit status. */
int gc_run(const char *dir, bool dry_run, bool verbose);

#endif /* PROFSHIM_GC_H */

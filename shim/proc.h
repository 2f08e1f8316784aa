/*
 * proc.h — the profiled process: its settings, its ring and its module
 * map's freshness.
 *
 * The constructor (init.c) fills the settings once; the ring is created at
 * the process' first request (in continuous mode at start-up) by whichever
 * thread gets there first, others wait a bounded number of yields; objects
 * the process loads later reach the module map and the handler's snapshot
 * at the next request a second after the last look at most, or 10 ms
 * after it when a sample's walk met an address in no object. A fork child
 * starts over with a ring of its own (proc_fork_child).
 *
 * Called from the hooks, never from the signal handler: creating the ring
 * and scanning loaded objects take the dynamic loader's lock and make
 * system calls.
 */
#ifndef PROFSHIM_PROC_H
#define PROFSHIM_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "env.h"
#include "ring_format.h"
#include "snapshot.h"

#pragma GCC visibility push(hidden)

extern bool proc_on;                 /* ENABLE_PROFILING and start-up done */
extern struct env_config proc_cfg;
extern int proc_pid;                 /* this process (updated after fork) */
extern char proc_exe[RING_EXE_MAX];

extern _Atomic(struct ring_header *) proc_ring;
/* Generation of proc_ring, from 1: raised before each ring is published,
 * so an endpoint slot remembered for one ring (struct conn.ep_gen) is never
 * taken for another, even one mapped at the same address. */
extern _Atomic uint32_t proc_ring_gen;

/* Create the ring, or wait for the thread creating it; NULL when it
 * could not be made (said once on stderr). */
struct ring_header *proc_ring_make(void);

/* What proc_ring_follow() changed, for proc_ring_undo(). */
struct proc_owner {
	bool changed;
	uid_t uid;
	gid_t gid;
};

/*
 * The ring belongs to the user the process serves as. Called by the
 * set*uid hooks before a call that makes `uid` the effective uid (and
 * after a successful one, with geteuid()): when this process image has a
 * ring whose owner is not uid and the current effective gid, it is given
 * to them (a ring being made by another thread is waited for, a bounded
 * number of yields). Where the process may not change the owner (it is not
 * root), nothing changes. *ret_undo says what to give back when the call
 * fails. Not in a vfork child, nor with profiling off. From hooks only;
 * no allocation; errno preserved.
 */
void proc_ring_follow(uid_t uid, struct proc_owner *ret_undo);

/* Give the ring back to the owner it had before proc_ring_follow(), when
 * that changed it. From hooks only; errno preserved. */
void proc_ring_undo(const struct proc_owner *undo);

/* When the next look for loaded objects is due (CLOCK_MONOTONIC ns), and
 * the earliest one that a walk's address in no object brings forward. */
extern _Atomic uint64_t proc_rescan_next, proc_rescan_soon;

/* Look for objects loaded since the last look; see proc_rescan(). */
void proc_rescan_due(struct ring_header *h, uint64_t now);

/* A connection on an fd beyond the connection table: counted in the ring,
 * or until the ring exists. */
void proc_count_untracked(void);

/* From the atfork child handler: the child makes a ring of its own. */
void proc_fork_child(void);

#pragma GCC visibility pop

static inline struct ring_header *proc_ring_get(void)
{
	struct ring_header *h =
		atomic_load_explicit(&proc_ring, memory_order_acquire);

	return h ? h : proc_ring_make();
}

/* Look for objects loaded since the last look, at most once a second, or
 * 10 ms after the last look when a walk has met an address in no object
 * since (a library the server dlopen'ed while serving: its frames would
 * end every walk until the look): at every request, so the checks are
 * inline and the look is not. */
static inline void proc_rescan(struct ring_header *h, uint64_t now)
{
	if (now >= atomic_load_explicit(&proc_rescan_next,
					memory_order_relaxed) ||
	    (snapshot_missed() &&
	     now >= atomic_load_explicit(&proc_rescan_soon,
					 memory_order_relaxed)))
		proc_rescan_due(h, now);
}

#endif

/*
 * proc.c — see proc.h.
 */
#include "proc.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include "libc.h"
#include "modmap.h"
#include "snapshot.h"
#include "ring.h"
#include "sampler.h"

/* How long a thread waits for another to finish making the ring (once in
 * a process's life): making it allocates every page of it and reads the
 * loaded objects' build ids, a few ms on a busy machine, and a request
 * whose thread gave up waiting would go uncounted. */
#define RING_WAIT_NS (200ull * 1000000ull)
#define MODMAP_RESCAN_NS 1000000000ull
/* The soonest look after the last, when walks meet addresses in no
 * object. In a JIT runtime (node) they do at every sample: then the look
 * is a check of the loader's counts (its lock, one callback) at most
 * every 10 ms. */
#define MODMAP_SOON_NS 10000000ull

bool proc_on;
struct env_config proc_cfg;
int proc_pid;
char proc_exe[RING_EXE_MAX];
_Atomic(struct ring_header *) proc_ring;
_Atomic uint32_t proc_ring_gen;

/* In a fork child: the parent's ring, still mapped, whose module map the
 * child's ring starts from (see modmap_copy). */
static struct ring_header *proc_parent_ring;
static atomic_int proc_ring_state; /* 0 none, 1 creating, 2 ready, 3 failed */
static _Atomic uint64_t proc_untracked; /* counted before the ring exists */

/* This image's own ring file and whom the shim last gave it to (set
 * before the ring is published; changed under proc_owner_busy). */
static struct ring_file proc_ring_file;
static uid_t proc_owner_uid;
static gid_t proc_owner_gid;
static atomic_flag proc_owner_busy = ATOMIC_FLAG_INIT;

_Atomic uint64_t proc_rescan_next;  /* when to look for new objects */
_Atomic uint64_t proc_rescan_soon;  /* ... at the soonest, after a miss */
static atomic_int proc_rescan_busy; /* one thread scans at a time */

/* While another thread makes the ring, wait for it, at most RING_WAIT_NS. */
static void proc_ring_wait(void)
{
	uint64_t end = 0;

	while (atomic_load(&proc_ring_state) == 1) {
		uint64_t now = libc_now_ns();

		if (!end)
			end = now + RING_WAIT_NS;
		else if (now >= end)
			return;
		(void)sched_yield();
	}
}

struct ring_header *proc_ring_make(void)
{
	struct ring_header *h = NULL;
	int expected = 0;
	char line[256];
	int r;

	if (atomic_compare_exchange_strong(&proc_ring_state, &expected, 1)) {
		r = ring_create(&proc_cfg, proc_exe, &h, &proc_ring_file);
		if (r < 0) {
			(void)snprintf(line, sizeof(line),
				       "profshim: cannot create the ring in "
				       "/dev/shm (%s%s); profiling is off in "
				       "process %d",
				       strerror(-r),
				       r == -ENOSPC ? ": give /dev/shm more "
				       "room or set PROFILING_RING_SIZE lower"
				       : "", proc_pid);
			libc_warn(line);
			atomic_store(&proc_ring_state, 3);
			return NULL;
		}
		proc_owner_uid = geteuid();
		proc_owner_gid = getegid();
		atomic_store(&proc_rescan_busy, 1);
		if (proc_parent_ring) {
			(void)modmap_copy(h, proc_parent_ring);
			ring_unmap(proc_parent_ring);
			proc_parent_ring = NULL;
		} else {
			/* Objects loaded since start-up (a plugin opened
			 * before the first request) are in the live list:
			 * the ring's map and the handler's snapshot both take
			 * them now. Not in a fork child, which must not call
			 * into the loader (modmap_copy) and has its parent's
			 * snapshot. */
			(void)modmap_scan(h, proc_exe);
			snapshot_take();
		}
		atomic_store(&proc_rescan_busy, 0);
		atomic_store(&proc_rescan_next, libc_now_ns() + MODMAP_RESCAN_NS);
		atomic_store(&proc_rescan_soon, libc_now_ns() + MODMAP_SOON_NS);
		ring_count(&h->untracked_conns, atomic_exchange(&proc_untracked, 0));
		atomic_fetch_add(&proc_ring_gen, 1);
		atomic_store_explicit(&proc_ring, h, memory_order_release);
		sampler_attach(h);
		atomic_store(&proc_ring_state, 2);
		return h;
	}
	proc_ring_wait();
	return atomic_load_explicit(&proc_ring, memory_order_acquire);
}

/*
 * The ring's owner follows the user the process serves as. A server that
 * starts as root and drops to www-data hands its ring over before the
 * drop, while it still may (after it, only root could); a call that fails
 * gets the old owner back; a process that becomes root again takes the
 * ring back after the call. A process without a ring yet makes it later,
 * as the user it then is.
 */
void proc_ring_follow(uid_t uid, struct proc_owner *ret_undo)
{
	gid_t gid = getegid();

	ret_undo->changed = false;
	if (!proc_on || uid == (uid_t)-1 || (int)getpid() != proc_pid)
		return; /* a vfork child's calls are not its parent's */
	proc_ring_wait();
	if (atomic_load(&proc_ring_state) != 2 ||
	    atomic_flag_test_and_set(&proc_owner_busy))
		return;
	if ((uid != proc_owner_uid || gid != proc_owner_gid) &&
	    ring_chown(&proc_ring_file, uid, gid) == 0) {
		ret_undo->changed = true;
		ret_undo->uid = proc_owner_uid;
		ret_undo->gid = proc_owner_gid;
		proc_owner_uid = uid;
		proc_owner_gid = gid;
	}
	atomic_flag_clear(&proc_owner_busy);
}

void proc_ring_undo(const struct proc_owner *undo)
{
	if (!undo->changed || atomic_flag_test_and_set(&proc_owner_busy))
		return;
	if (ring_chown(&proc_ring_file, undo->uid, undo->gid) == 0) {
		proc_owner_uid = undo->uid;
		proc_owner_gid = undo->gid;
	}
	atomic_flag_clear(&proc_owner_busy);
}

/*
 * Objects loaded after the ring was created (dlopen) go into the module map
 * at the next request after at most MODMAP_RESCAN_NS; sooner, after
 * MODMAP_SOON_NS, when a walk has met an address in no object of the
 * snapshot and the loader's counts say objects were loaded or unloaded
 * since it was taken (a server that imports a Python extension module at
 * its first request: the walks of that request's samples end in it, the
 * next request's do not). The shim does not interpose dlopen: glibc
 * resolves a bare library name with the calling object's RPATH, and an
 * interposed dlopen would make the shim that caller.
 */
void proc_rescan_due(struct ring_header *h, uint64_t now)
{
	uint64_t next = atomic_load_explicit(&proc_rescan_next, memory_order_relaxed);
	uint64_t soon = atomic_load_explicit(&proc_rescan_soon, memory_order_relaxed);
	bool look;

	if (now < soon || atomic_exchange(&proc_rescan_busy, 1))
		return;
	if (now >= next)
		look = atomic_compare_exchange_strong(&proc_rescan_next, &next,
						      now + MODMAP_RESCAN_NS);
	else
		look = snapshot_stale();
	atomic_store(&proc_rescan_soon, now + MODMAP_SOON_NS);
	if (look) {
		atomic_store(&proc_rescan_next, now + MODMAP_RESCAN_NS);
		(void)modmap_scan(h, proc_exe);
		snapshot_take();
	}
	atomic_store(&proc_rescan_busy, 0);
}

void proc_count_untracked(void)
{
	struct ring_header *h = atomic_load(&proc_ring);

	if (h)
		ring_count(&h->untracked_conns, 1);
	else
		atomic_fetch_add(&proc_untracked, 1);
}

void proc_fork_child(void)
{
	struct ring_header *h = atomic_exchange(&proc_ring, NULL);

	proc_pid = (int)getpid();
	atomic_store(&proc_rescan_busy, 0);
	atomic_store(&proc_ring_state, 0);
	/* Keep the parent's ring mapped (never written) until this process
	 * makes its own, which copies its module map. */
	if (h) {
		if (proc_parent_ring)
			ring_unmap(proc_parent_ring);
		proc_parent_ring = h;
	}
	/* The next look for new objects after a second, not right away. */
	atomic_store(&proc_rescan_next, libc_now_ns() + MODMAP_RESCAN_NS);
	atomic_store(&proc_rescan_soon, libc_now_ns() + MODMAP_RESCAN_NS);
}

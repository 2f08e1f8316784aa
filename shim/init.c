/*
 * init.c — start-up, fork and exit: the shim's constructor resolves the
 * real libc functions, reads the environment (env.h) and, with profiling
 * on, reserves the connection table, takes the loader snapshot, installs
 * the sampler and, in continuous mode, creates the ring. Disabled, it does
 * nothing else: every hook is then a jump to libc.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "conn.h"
#include "env.h"
#include "libc.h"
#include "modmap.h"
#include "snapshot.h"
#include "proc.h"
#include "ring.h"
#include "sampler.h"

static void hooks_atfork_child(void)
{
	proc_fork_child();
	conn_fork_child();
	snapshot_fork_child();
	sampler_fork_child();
	/* The child's one thread goes on being sampled, into a ring of its
	 * own, in continuous mode; in request mode at its first request. */
	if (proc_cfg.mode == RING_MODE_CONTINUOUS) {
		(void)proc_ring_get();
		sampler_thread_start();
	}
}

__attribute__((constructor)) static void hooks_init(void)
{
	ssize_t n;
	int r;

	libc_resolve();
	env_load(&proc_cfg, getenv, libc_warn);
	if (!proc_cfg.enabled)
		return; /* pure pass-through: no memory, no handler, no timer */
	proc_pid = (int)getpid();
	n = readlink("/proc/self/exe", proc_exe, sizeof(proc_exe) - 1);
	proc_exe[n > 0 ? n : 0] = '\0';

	if (conn_init(&proc_cfg) < 0) {
		libc_warn("profshim: cannot reserve the connection table; "
			   "profiling is off");
		return;
	}
	snapshot_take();
	r = sampler_init(&proc_cfg);
	(void)r; /* -EBUSY: requests are still timed, without stacks */
	if (pthread_atfork(NULL, NULL, hooks_atfork_child) != 0) {
		libc_warn("profshim: pthread_atfork failed; profiling is off");
		return;
	}
	proc_on = true;
	/* Continuous mode samples from the start, requests or not. */
	if (proc_cfg.mode == RING_MODE_CONTINUOUS) {
		(void)proc_ring_get();
		sampler_thread_start();
	}
}

__attribute__((destructor)) static void hooks_fini(void)
{
	struct ring_header *h = atomic_load(&proc_ring);

	if (h)
		atomic_store((_Atomic uint32_t *)&h->exited, 1);
}

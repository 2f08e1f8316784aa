/*
 * sampler.h — stack samples from a SIGPROF handler, on the threads that serve
 * a sampled request.
 *
 * Each thread that serves a sampled request gets its own POSIX timer
 * (timer_create with SIGEV_THREAD_ID) on its CPU clock or the wall clock, so
 * it is sampled in proportion to its own time. The timer is armed when the
 * thread starts serving such a request and disarmed when it stops. In
 * continuous mode every thread's timer runs from its start, and samples
 * outside requests go to no endpoint. The
 * handler walks the stack with unwind.h's walker (cached rules from the
 * program's .eh_frame, within the thread's known stack), or with libunwind
 * when the thread's stack is unknown, delta-encodes the addresses and
 * writes one record to the ring.
 *
 * sampler_init() runs in the shim's constructor. sampler_enter(),
 * sampler_leave() and sampler_attach() run in hooks: they make system calls
 * (timer_settime) but never allocate with malloc and never lock. The handler
 * itself is async-signal-safe: no allocation, no locks, no stdio, errno
 * preserved, bounded work, and it skips (and counts) any sample taken while
 * the thread is inside the shim or the dynamic loader.
 */
#ifndef PROFSHIM_SAMPLER_H
#define PROFSHIM_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "env.h"
#include "ring_format.h"

enum sampler_how {
	SAMPLER_OFF = 0,    /* serve the request without sampling */
	SAMPLER_RATE,       /* sampled by PROFILING_SAMPLE_RATE: cfg clock, hz */
	SAMPLER_MANUAL,     /* ?profile=1: wall clock at PROFILING_MANUAL_HZ */
};

/*
 * Install the SIGPROF handler (SA_RESTART | SA_SIGINFO) and prepare
 * libunwind. Returns 0, or -EBUSY when the application already has a SIGPROF
 * handler: the sampler then stands aside for the whole process.
 */
int sampler_init(const struct env_config *cfg);

/* True once sampler_init() succeeded and the sampler has not stood aside. */
bool sampler_ready(void);

/* Publish the process' ring to the handler (NULL in a fork child). */
void sampler_attach(struct ring_header *h);

/*
 * The calling thread now serves request `req_id` (endpoint index
 * `endpoint`): arm its timer as `how` says, or disarm it for SAMPLER_OFF.
 */
void sampler_enter(uint64_t req_id, uint32_t endpoint, enum sampler_how how);

/*
 * The calling thread stops serving `req_id`: disarm its timer if it was
 * serving that request (continuous mode: back to the base rate, outside any
 * request). Returns the number of samples taken for it on this thread
 * since sampler_enter().
 */
uint32_t sampler_leave(uint64_t req_id);

/*
 * Request `req_id` was completed by a thread other than the one serving it:
 * that thread stops sampling it at its next tick. Lock-free; best effort.
 */
void sampler_stop(uint64_t req_id);

/*
 * A thread starts (the main thread at start-up, every thread the program
 * creates, the forking thread in a child): in continuous mode, arm its
 * timer at the base rate.
 */
void sampler_thread_start(void);

/*
 * A thread the program created starts, with `size` bytes of stack: find
 * its stack's bounds for the handler's fast walk (unwind.h). Threads
 * without bounds are walked with libunwind, which is slower.
 */
void sampler_thread_stack(uintptr_t size);

/* Request the shim is serving on this thread, 0 when none. */
uint64_t sampler_current(void);

/*
 * Mark the calling thread as inside the shim (or the dynamic loader): a
 * signal arriving meanwhile is skipped and counted. Nests.
 */
void sampler_block(void);
void sampler_unblock(void);

/* True while the calling thread is inside the shim or its handler. */
bool sampler_inside(void);

/* In a fork child: forget the parent's timers and ring. */
void sampler_fork_child(void);

/* The application installed its own SIGPROF handler: stop sampling. */
void sampler_stand_aside(const char *why);

/* True when `handler` is the shim's own SIGPROF handler. */
bool sampler_is_own_handler(const void *handler);

#endif /* PROFSHIM_SAMPLER_H */

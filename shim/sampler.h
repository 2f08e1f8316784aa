/*
 * sampler.h — stack samples from a SIGPROF handler, on the threads that serve
 * a sampled request.
 *
 * Three sources of signals, each per thread:
 *   - the CPU clock (cpuclock.h: a perf task-clock counter, or a POSIX CPU
 *     timer firing at every tick), set up the first time the thread serves
 *     a request sampled on the CPU clock (from its start in continuous
 *     mode) and left running for the thread's life. Whether a signal is
 *     kept is decided in the handler, from the request the thread serves:
 *     a request that starts or ends makes no system call, and samples land
 *     wherever CPU time is spent, whatever the requests' length;
 *   - a POSIX timer on the wall clock (PROFILING_CLOCK=wall), armed while
 *     the thread serves a sampled request (for its life in continuous
 *     mode): an idle thread is not woken;
 *   - a POSIX wall-clock timer at PROFILING_MANUAL_HZ for ?profile=1
 *     requests, armed while the thread serves one.
 * In continuous mode samples outside requests go to no endpoint. The
 * handler walks the stack with unwind.h's walker (cached rules from the
 * program's .eh_frame, within the thread's known stack), or with libunwind
 * when the thread's stack is unknown, delta-encodes the addresses and
 * writes one record to the ring.
 *
 * sampler_init() runs in the shim's constructor. sampler_enter(),
 * sampler_leave() and sampler_attach() run in hooks: they never allocate
 * with malloc and never lock, and make system calls only to set up a
 * thread's CPU clock once and to arm or disarm the wall-clock timers. The
 * handler itself is async-signal-safe: no allocation, no locks, no stdio,
 * errno preserved, bounded work, and it skips (and counts) any sample taken
 * while the thread is inside the shim or the dynamic loader, or runs on an
 * alternate signal stack with less than 32 KiB left below the handler (the
 * program's own SA_ONSTACK handler was interrupted: the walk would overrun
 * that stack).
 */
#ifndef PROFSHIM_SAMPLER_H
#define PROFSHIM_SAMPLER_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "cpuclock.h"
#include "env.h"
#include "ring_format.h"
#include "unwind.h"

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

/* Where a thread's kept signals come from (struct sampler_thread.keep). */
enum sampler_src {
	SAMPLER_SRC_NONE = 0, /* keep none */
	SAMPLER_SRC_CPU,      /* the thread's CPU clock */
	SAMPLER_SRC_WALL,     /* the wall-clock rate timer */
	SAMPLER_SRC_MANUAL,   /* the ?profile=1 timer */
};

/*
 * Private to sampler.c: the calling thread's sampler state, in this header
 * only so that the calls the hooks make for every request (sampler_enter(),
 * sampler_leave(), sampler_current(), sampler_block(), sampler_unblock())
 * compile inline into them. The handler reads it on the same thread it was
 * written by, so plain loads and stores with compiler barriers are enough.
 */
struct sampler_thread {
	volatile uint64_t req_id;   /* request served, 0 when none */
	volatile uint32_t endpoint;
	volatile int keep;          /* enum sampler_src whose signals count */
	volatile int busy;          /* inside the shim or the handler */
	volatile uint32_t samples;  /* taken for req_id */
	int armed;                  /* wall-clock TIMER_* armed, or -1 */
	int tid;
	bool created[2];
	timer_t timers[2];
	int slots[2];               /* index in sampler_timers, or -1 */
	struct timespec left[2];    /* time to the next tick when disarmed */
	struct cpuclock cpu;        /* the CPU clock, once set up */
	unsigned gen;               /* sampler_gen its timers were made in */
	int hidden;                 /* a profiling signal the program blocked
				     * in this thread and profshim did not
				     * (it reads it back as blocked), or 0 */
	int hidden_slot;            /* its entry among the hiding threads */
	uint64_t rng;
	struct unwind_stack stack;  /* bounds for unwind_walk; hi 0: unknown */
	/* The last sample written to the ring, for the next one to share its
	 * root-side frames (struct ring_sample); last_n 0: none usable. */
	uint16_t serial;
	uint16_t since_key;
	uint16_t last_n;
	uintptr_t last[RING_MAX_FRAMES];
};

/* Private to sampler.c (see struct sampler_thread). */
extern __thread struct sampler_thread sampler_tls;
/* The source each enum sampler_how keeps (set once by sampler_init()),
 * and the wall-clock timer each source needs armed (-1: none). */
extern int sampler_keep_for[3];
extern const int sampler_timer_for[4];
/* Bumped each time the profiling signal changes: a thread whose gen
 * differs makes its timers and clock again (sampler_set_timers). */
extern atomic_uint sampler_gen;
void sampler_set_timers(struct sampler_thread *t, uint64_t req_id,
			uint32_t endpoint, int keep);

/*
 * Points the calling thread's sampling at (req_id, endpoint) as `how`
 * says. The usual case — no wall-clock timer to arm or disarm, and the
 * thread's CPU clock already set up if it is needed — is three stores,
 * done here; the others in sampler_set_timers(). No allocation, no locks,
 * no stdio, no system call here.
 */
static inline void sampler_set(struct sampler_thread *t, uint64_t req_id,
			       uint32_t endpoint, enum sampler_how how)
{
	int keep = sampler_keep_for[how];

	if (t->armed == sampler_timer_for[keep] &&
	    t->gen == atomic_load_explicit(&sampler_gen,
					   memory_order_relaxed) &&
	    (keep != SAMPLER_SRC_CPU ||
	     (t->cpu.engine != RING_ENGINE_NONE && !t->cpu.lost))) {
		t->busy++;
		atomic_signal_fence(memory_order_seq_cst);
		t->req_id = req_id;
		t->endpoint = endpoint;
		t->keep = keep;
		atomic_signal_fence(memory_order_seq_cst);
		t->busy--;
		return;
	}
	sampler_set_timers(t, req_id, endpoint, keep);
}

/*
 * The calling thread now serves request `req_id` (endpoint index
 * `endpoint`), sampled as `how` says.
 */
static inline void sampler_enter(uint64_t req_id, uint32_t endpoint,
				 enum sampler_how how)
{
	struct sampler_thread *t = &sampler_tls;

	t->samples = 0;
	sampler_set(t, req_id, endpoint, how);
}

/*
 * The calling thread stops serving `req_id`: its samples stop counting
 * for it, and a wall-clock timer armed for it is disarmed (continuous
 * mode: back to the base rate, outside any request). Returns the number of
 * samples taken for it on this thread since sampler_enter().
 */
static inline uint32_t sampler_leave(uint64_t req_id)
{
	struct sampler_thread *t = &sampler_tls;
	uint32_t n;

	if (t->req_id != req_id)
		return 0;
	n = t->samples;
	t->samples = 0;
	sampler_set(t, 0, RING_ENDPOINT_NONE, SAMPLER_OFF);
	return n;
}

/*
 * Request `req_id` was completed by a thread other than the one serving it:
 * that thread stops sampling it at its next signal. Lock-free; best effort.
 */
void sampler_stop(uint64_t req_id);

/*
 * A thread starts (the main thread at start-up, every thread the program
 * creates, the forking thread in a child): in continuous mode, set up its
 * CPU clock or arm its wall-clock timer at the base rate.
 */
void sampler_thread_start(void);

/*
 * A thread the program created starts, with `size` bytes of stack: find
 * its stack's bounds for the handler's fast walk (unwind.h). Threads
 * without bounds are walked with libunwind, which is slower.
 */
void sampler_thread_stack(uintptr_t size);

/* Request the shim is serving on this thread, 0 when none. */
static inline uint64_t sampler_current(void)
{
	return sampler_tls.req_id;
}

/*
 * Mark the calling thread as inside the shim (or the dynamic loader): a
 * signal arriving meanwhile is skipped and counted. Nests.
 */
static inline void sampler_block(void)
{
	sampler_tls.busy++;
	atomic_signal_fence(memory_order_seq_cst);
}

static inline void sampler_unblock(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	sampler_tls.busy--;
}

/* True while the calling thread is inside the shim or its handler. */
static inline bool sampler_inside(void)
{
	return sampler_tls.busy > 0;
}

/* In a fork child: forget the parent's timers, clocks and ring. */
void sampler_fork_child(void);

/*
 * The profiling signal
 * --------------------
 * Samples come with SIGPROF unless the program holds it (its own handler
 * or an ITIMER_PROF timer at start-up); otherwise with the first of
 * SIGSTKFLT, SIGRTMAX, SIGRTMAX-1, … SIGRTMIN+8 that the program leaves at
 * SIG_DFL or SIG_IGN. When the program later installs a handler of its own
 * for the signal profshim uses, or arms ITIMER_PROF while that is SIGPROF,
 * the sampler moves to the next free one (sampler_move) and the program
 * gets its signal; with none left it stands aside, and says so in the ring
 * header. The program's SIG_DFL and SIG_IGN for the profiling signal are
 * kept as what it reads back (sampler_view), not installed: a daemon that
 * resets every disposition at start does not make the sampler move.
 *
 * A thread that blocks the profiling signal (pthread_sigmask,
 * sigprocmask: Apache's workers block every signal) is still sampled: the
 * hooks pass the mask without it, and add it back to what the thread reads
 * (sampler_sigmask).
 */

/* The profiling signal, or 0 when the sampler has none (not started, or
 * stood aside for want of one). Async-signal-safe. */
int sampler_signal(void);

/*
 * The program installs a handler of its own for signal `sig`, the
 * profiling signal (or arms ITIMER_PROF while it is SIGPROF): install the
 * sampler's handler on the next free signal, point every timer and clock
 * at it, fix the calling thread's mask, and give `sig` its disposition as
 * the program saw it (SIG_DFL or SIG_IGN; the caller then installs the
 * program's handler). Stands aside when no signal is free. From the hooks;
 * not async-signal-safe.
 */
void sampler_move(int sig);

/*
 * The lock a move holds: the hooks take it around the program's own
 * sigaction on a signal the sampler might move to (sampler_is_candidate),
 * so that a move never picks a signal the program is taking at the same
 * instant. Spins; never from the handler.
 */
void sampler_lock_signals(void);
void sampler_unlock_signals(void);
bool sampler_is_candidate(int sig);

/*
 * What the program reads back as signal `sig`'s disposition while the
 * sampler's handler is installed on it: SIG_DFL or SIG_IGN, as the program
 * last set it (or as it was at start-up). Fills *old if not NULL; then,
 * with `ign` 0 or 1, records the program's new SIG_DFL or SIG_IGN (-1:
 * none).
 */
void sampler_view(int sig, int ign, struct sigaction *old);

/*
 * pthread_sigmask(how, set, old) for the program: the profiling signal is
 * never blocked, but the thread reads it back as it set it. Returns 0 or
 * an error number, as pthread_sigmask does. From the hooks.
 */
int sampler_sigmask(int how, const sigset_t *set, sigset_t *old);

/* The profiling signal the calling thread reads back as blocked, or 0; a
 * thread it creates inherits that (its mask is inherited too): from the
 * new thread, sampler_mask_inherit(). */
static inline int sampler_mask_hidden(void)
{
	return sampler_tls.hidden;
}

void sampler_mask_inherit(int hidden);

/*
 * The sampler stops for good in this process, `why` (enum ring_aside)
 * recorded in the ring header and `text` written to stderr once.
 */
void sampler_stand_aside(int why, const char *text);

/* True when `handler` is the shim's own signal handler. */
bool sampler_is_own_handler(const void *handler);

#endif /* PROFSHIM_SAMPLER_H */

/*
 * cpuclock.h — the CPU clock of one thread: a source of profiling signals
 * that fire in proportion to the CPU time the thread spends, set up once per
 * thread and left running.
 *
 * Two engines, chosen per thread (PROFILING_CPU_ENGINE: auto, perf, timer):
 *
 *   perf   A perf_event_open() software task-clock counter on the thread with
 *          a sample period of 1/hz seconds of its CPU time. Each overflow
 *          sends the profiling signal to that thread (F_SETOWN_EX with
 *          F_OWNER_TID, F_SETSIG, O_ASYNC). It is driven by a high-resolution
 *          timer, so it keeps the asked rate and does not care where ticks
 *          fall. Kernel time is counted when the kernel allows it (root,
 *          CAP_PERFMON, kernel.perf_event_paranoid ≤ 1); otherwise the counter
 *          excludes the kernel, and time in system calls is not sampled.
 *   timer  The fallback where perf_event_open is refused (paranoid ≥ 3 on
 *          Debian and Ubuntu kernels, seccomp profiles such as Docker's): a
 *          POSIX CPU timer (CLOCK_THREAD_CPUTIME_ID). The kernel checks those
 *          only at its scheduler tick (CONFIG_HZ times a second), and one with
 *          a long period fires only at a tick after enough CPU time has built
 *          up, which chooses ticks by their position in the thread's work: the
 *          start of short requests was almost never sampled. So the timer's
 *          period is far below a tick (it fires at every tick the thread is
 *          found running: what runs at tick instants, which clients do not
 *          align with), and the handler keeps each signal with probability
 *          asked rate / tick rate (cpuclock_keep()). The effective rate is
 *          then min(hz, tick rate).
 *
 * A perf counter's period is drawn at random, uniformly within a quarter of
 * 1/hz: its first part-period (one period long, from 1/16 of one) when it
 * is opened, a new
 * period at its first signal and then every CPUCLOCK_DITHER_EVERY samples
 * kept (cpuclock_dither(), one ioctl). A fixed period samples a thread
 * whose requests all cost the same CPU time at the same point of each
 * request, for as long as the thread lives: measured, a thread per
 * connection starting its counter with its first 2 ms request had the
 * first 30% of its requests sampled 1% of the time, or 64%, by the
 * request's shape; and one serving less than a period of CPU time was
 * never sampled. A random period moves the phase by a random step at each
 * sample. Setting a period costs an ioctl that restarts the kernel's timer
 * (5 µs in the handler on the project's machine, about a signal's
 * delivery): every 8 samples, not at each.
 *
 * The descriptor of a perf counter is moved to a high number, close-on-exec,
 * out of the program's way; if the program closes it anyway (a daemon that
 * closes every descriptor), cpuclock_fd_closed() from the close hook marks
 * the thread's clock lost and the sampler sets up a new one at the thread's
 * next sampled request.
 *
 * cpuclock_init() runs in the constructor; cpuclock_open() and
 * cpuclock_close() on the thread the clock belongs to, never in the signal
 * handler (system calls, no allocation, no locks); cpuclock_from() and
 * cpuclock_keep() in the handler (async-signal-safe, no system call).
 */
#ifndef PROFSHIM_CPUCLOCK_H
#define PROFSHIM_CPUCLOCK_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ring_format.h"

/* PROFILING_CPU_ENGINE (env.h): which engines a thread may use. */
enum cpuclock_choice {
	CPUCLOCK_AUTO = 0,  /* perf, else the timer */
	CPUCLOCK_PERF = 1,  /* perf or nothing */
	CPUCLOCK_TIMER = 2, /* the timer only */
};

/* The POSIX timer's sigev_value, telling its signals from other timers'. */
#define CPUCLOCK_TIMER_VALUE 2

struct cpuclock {
	int engine;            /* enum ring_engine; NONE: not opened yet */
	int fd;                /* perf: the counter's descriptor, else -1 */
	timer_t timer;         /* timer: the POSIX CPU timer */
	int slot;              /* index in the registry, or -1 */
	int signo;             /* the signal it was opened to send */
	volatile int lost;     /* the program closed fd: open a new one */
	int first;             /* perf: no sample since it was opened */
	uint64_t period;       /* perf: the period set last, ns */
	uint64_t set_ns;       /* perf: the thread's CPU time when it was set */
	uint64_t lag_ns;       /* perf: estimate of the time from an overflow
				* to the handler's new period */
	uint64_t win_min;      /* perf: least lag seen in this window */
	unsigned win_n;        /* perf: settings in this window */
	unsigned since;        /* perf: samples kept since the setting */
	uint32_t keep_below;   /* timer: keep when a 32-bit draw is below */
};

/*
 * Settle the process-wide parameters from the environment: the asked rate,
 * which engines may be tried, the tick (from CLOCK_MONOTONIC_COARSE's
 * resolution, which is one tick), the timer's period and its keep
 * probability, and the descriptor floor. From the constructor.
 */
void cpuclock_init(unsigned hz, unsigned choice);

/*
 * Open a CPU clock for the calling thread (thread id `tid`) that sends
 * `signo`, running from now on, its first period drawn from *rng. Returns
 * 0 and fills *c, or a negative errno when no engine could be set up:
 * c->engine is then RING_ENGINE_FAILED, so that the thread does not try at
 * every request. The errno that refused perf is kept for cpuclock_state().
 * A real-time `signo` never gets a perf counter: a counter's signals queue
 * one per overflow, and when the queue is full (a thread that blocks the
 * signal with a raw system call for long) the kernel sends SIGIO instead,
 * which would kill the program; a POSIX timer's signal never queues twice.
 * So with a real-time signal, auto means the timer and perf means none
 * (-EOPNOTSUPP). Not async-signal-safe.
 */
int cpuclock_open(struct cpuclock *c, int tid, int signo, uint64_t *rng);

/* Stop and release the calling thread's clock. Not async-signal-safe. */
void cpuclock_close(struct cpuclock *c);

/*
 * Whether the signal `si` came from clock c. Async-signal-safe.
 */
static inline bool cpuclock_from(const struct cpuclock *c, const siginfo_t *si)
{
	if (c->engine == RING_ENGINE_TIMER)
		return si->si_code == SI_TIMER &&
		       si->si_value.sival_int == CPUCLOCK_TIMER_VALUE;
	/* A perf counter's overflow arrives as SIGIO-like: the band in
	 * si_code (POLL_IN, or POLL_HUP), the descriptor in si_fd. */
	return c->fd >= 0 && si->si_code > 0 &&
	       si->si_code <= POLL_HUP && si->si_fd == c->fd;
}

/* Samples kept between two random settings of a perf counter's period. */
#define CPUCLOCK_DITHER_EVERY 8

/*
 * perf: draw and set clock c's next period (at its first signal, and every
 * CPUCLOCK_DITHER_EVERY samples kept: cpuclock_kept()). Setting a period
 * restarts it, so the time from the overflow to here is lost once a
 * setting and the rate would fall short (3% at 997 Hz here, setting at
 * every sample); that lag is estimated as the least excess of the
 * thread's CPU time between two settings over the periods set, in windows
 * of 4 settings (a new counter starts from the last window any thread
 * closed), and taken off the periods. One ioctl and two reads of the
 * thread's CPU clock (system calls). Async-signal-safe.
 */
void cpuclock_dither(struct cpuclock *c, uint64_t *rng);

/* A sample of clock c was kept: a perf counter draws a new period every
 * CPUCLOCK_DITHER_EVERY. Async-signal-safe. */
static inline void cpuclock_kept(struct cpuclock *c, uint64_t *rng)
{
	if (c->fd >= 0 && !c->lost && ++c->since >= CPUCLOCK_DITHER_EVERY)
		cpuclock_dither(c, rng);
}

/* The next draw of a thread's xorshift64 state *rng (never 0).
 * Async-signal-safe, no system call. */
static inline uint64_t cpuclock_random(uint64_t *rng)
{
	uint64_t x = *rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*rng = x;
	return x;
}

/*
 * Whether to keep a signal of clock c, given the thread's random state:
 * always for perf, with probability asked/tick rate for the timer.
 * Async-signal-safe, no system call.
 */
static inline bool cpuclock_keep(const struct cpuclock *c, uint64_t *rng)
{
	if (c->keep_below == UINT32_MAX)
		return true;
	return (uint32_t)(cpuclock_random(rng) >> 32) < c->keep_below;
}

/*
 * What the process' CPU clocks are, for the ring header (struct ring_header:
 * cpu_engine, cpu_hz, cpu_error, tick_hz): the engine of the last thread
 * that opened one (RING_ENGINE_NONE before any), the rate it samples at, the
 * errno that refused perf (0 if none) and the kernel's tick rate.
 * Async-signal-safe (atomic loads).
 */
void cpuclock_state(uint32_t *engine, uint32_t *hz, uint32_t *error,
		    uint32_t *tick_hz);

/*
 * The close hook saw the program close `fd`: if it is a clock's descriptor,
 * mark that clock lost. Cheap for any descriptor below the floor the clocks
 * use. No system call, no lock.
 */
void cpuclock_fd_closed(int fd);

/* Lowest descriptor a clock may use: a close below it is not one. */
extern int cpuclock_fd_floor;

/*
 * In a fork child: close the inherited descriptors of the parent's clocks
 * (they count the parent's threads) and forget them all, the calling
 * thread's `own` included.
 */
void cpuclock_fork_child(struct cpuclock *own);

/*
 * Stop every clock of the process at once (the sampler stands aside):
 * counters are disabled and timers deleted, from any thread. A thread's
 * cpuclock_close() after that only releases what is left.
 */
void cpuclock_stop_all(void);

/*
 * The profiling signal became `signo` (0: none): from any thread, every
 * counter sends `signo` from now on (a legacy signal; otherwise it is
 * disabled) and every timer is deleted. Each clock's own thread closes and
 * opens it again when it sees c->signo differ (sampler.c). Not
 * async-signal-safe.
 */
void cpuclock_retarget(int signo);

#endif /* PROFSHIM_CPUCLOCK_H */

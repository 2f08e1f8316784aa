/*
 * cpuclock.c — a thread's CPU clock: perf task-clock, or a POSIX CPU timer
 * firing at every tick (see cpuclock.h).
 */
#include "cpuclock.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "libc.h"

/* Clocks the registry holds at once: one per thread that was sampled. */
#define CPUCLOCK_MAX 4096

/*
 * The timer engine's period: far below any tick (1 ms at CONFIG_HZ=1000),
 * so that the timer has always fallen due when a tick finds the thread
 * running. A tick that comes within this much CPU time of the previous
 * signal is the only one missed.
 */
#define CPUCLOCK_TIMER_PERIOD_NS 10000L

/* The highest descriptor floor: a higher one would make the kernel grow
 * the process' descriptor table (8 bytes a slot and more) to reach it. */
#define CPUCLOCK_FD_FLOOR_MAX 4096

static unsigned cpuclock_hz = 99;
static unsigned cpuclock_choice;
static uint32_t cpuclock_tick_hz = 250;
static uint32_t cpuclock_keep_threshold = UINT32_MAX;
int cpuclock_fd_floor = CPUCLOCK_FD_FLOOR_MAX;

/* What cpuclock_state() reports. */
static _Atomic uint32_t cpuclock_st_engine;
static _Atomic uint32_t cpuclock_st_hz;
static _Atomic uint32_t cpuclock_st_error;

/*
 * Every open clock, so that a fork child can close the parent's
 * descriptors, standing aside can stop them all from one thread, and the
 * close hook can tell a clock's descriptor in one look. A perf counter's
 * slot is its descriptor modulo CPUCLOCK_MAX (the clocks' descriptors are
 * consecutive from the floor, so they collide only past CPUCLOCK_MAX
 * threads), holding fd + 1; a timer takes any free slot of its own array,
 * holding its id + 1. 0 is an empty slot. Whoever takes a timer out of its
 * slot (its owner, or cpuclock_stop_all) deletes it, once.
 */
static _Atomic int cpuclock_fds[CPUCLOCK_MAX];
static struct cpuclock *_Atomic cpuclock_owners[CPUCLOCK_MAX];
static _Atomic uintptr_t cpuclock_timers[CPUCLOCK_MAX];

void cpuclock_init(unsigned hz, unsigned choice)
{
	struct timespec res;
	struct rlimit rl;
	uint64_t tick_ns = 4000000;

	cpuclock_hz = hz ? hz : 1;
	cpuclock_choice = choice;
	/* CLOCK_MONOTONIC_COARSE advances once a tick: its resolution is the
	 * tick's length. Outside 100 µs..100 ms it is not believed. */
	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && !res.tv_sec &&
	    res.tv_nsec >= 100000 && res.tv_nsec <= 100000000)
		tick_ns = (uint64_t)res.tv_nsec;
	cpuclock_tick_hz = (uint32_t)((1000000000ull + tick_ns / 2) / tick_ns);
	if (cpuclock_hz < cpuclock_tick_hz)
		cpuclock_keep_threshold = (uint32_t)(((uint64_t)cpuclock_hz << 32) /
						     cpuclock_tick_hz);
	/* Descriptors high in the program's range, where it does not look:
	 * three quarters of its limit, at most CPUCLOCK_FD_FLOOR_MAX. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur / 4 * 3 < CPUCLOCK_FD_FLOOR_MAX)
		cpuclock_fd_floor = (int)(rl.rlim_cur / 4 * 3);
	if (cpuclock_fd_floor < 3)
		cpuclock_fd_floor = 3;
}

void cpuclock_state(uint32_t *engine, uint32_t *hz, uint32_t *error,
		    uint32_t *tick_hz)
{
	*engine = atomic_load_explicit(&cpuclock_st_engine, memory_order_relaxed);
	*hz = atomic_load_explicit(&cpuclock_st_hz, memory_order_relaxed);
	*error = atomic_load_explicit(&cpuclock_st_error, memory_order_relaxed);
	*tick_hz = cpuclock_tick_hz;
}

static void cpuclock_note(uint32_t engine, uint32_t hz)
{
	atomic_store_explicit(&cpuclock_st_hz, hz, memory_order_relaxed);
	atomic_store_explicit(&cpuclock_st_engine, engine, memory_order_relaxed);
}

/* Register counter descriptor fd of clock c; -1 when its slot is taken. */
static int cpuclock_register_fd(int fd, struct cpuclock *c)
{
	int idx = fd % CPUCLOCK_MAX, empty = 0;

	if (!atomic_compare_exchange_strong(&cpuclock_fds[idx], &empty, fd + 1))
		return -1;
	atomic_store(&cpuclock_owners[idx], c);
	return idx;
}

/* Register timer t; -1 when every slot is taken. */
static int cpuclock_register_timer(timer_t t)
{
	for (int i = 0; i < CPUCLOCK_MAX; i++) {
		uintptr_t empty = 0;

		if (atomic_compare_exchange_strong(&cpuclock_timers[i], &empty,
						   (uintptr_t)t + 1))
			return i;
	}
	return -1;
}

/*
 * Open a perf task-clock counter on thread `tid` that sends `signo` to it
 * every 1/hz s of its CPU time. With the kernel's time first; a kernel that
 * refuses that to this user (perf_event_paranoid 2) may allow user time
 * alone. Returns the descriptor, moved to the floor or above, or -errno.
 */
static int cpuclock_perf_open(int tid, int signo, uint64_t first,
			      int *ret_engine)
{
	struct perf_event_attr attr;
	struct f_owner_ex owner = {F_OWNER_TID, tid};
	int fd, high, fl;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_TASK_CLOCK;
	attr.sample_period = first;
	attr.exclude_hv = 1;
	*ret_engine = RING_ENGINE_PERF;
	fd = libc_perf_event_open(&attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		attr.exclude_kernel = 1;
		*ret_engine = RING_ENGINE_PERF_USER;
		fd = libc_perf_event_open(&attr, 0, -1, -1,
					  PERF_FLAG_FD_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (fd < cpuclock_fd_floor) {
		high = fcntl(fd, F_DUPFD_CLOEXEC, cpuclock_fd_floor);
		if (high >= 0) {
			libc_close(fd);
			fd = high;
		}
	}
	/* The signal goes to this thread alone, and only once O_ASYNC is on:
	 * nothing is sent while the owner and the signal are being set. */
	fl = fcntl(fd, F_GETFL);
	if (fcntl(fd, F_SETOWN_EX, &owner) < 0 ||
	    fcntl(fd, F_SETSIG, signo) < 0 || fl < 0 ||
	    fcntl(fd, F_SETFL, fl | O_ASYNC) < 0) {
		int err = errno;

		libc_close(fd);
		return -err;
	}
	return fd;
}

static int cpuclock_timer_open(struct cpuclock *c, int tid, int signo)
{
	struct sigevent sev;
	struct itimerspec its;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = signo;
	sev.sigev_value.sival_int = CPUCLOCK_TIMER_VALUE;
	sev._sigev_un._tid = tid;
	if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &c->timer) < 0)
		return -errno;
	c->slot = cpuclock_register_timer(c->timer);
	if (c->slot < 0) {
		/* A timer standing aside could not find is one not to have. */
		(void)timer_delete(c->timer);
		return -ENOSPC;
	}
	memset(&its, 0, sizeof(its));
	its.it_value.tv_nsec = CPUCLOCK_TIMER_PERIOD_NS;
	its.it_interval.tv_nsec = CPUCLOCK_TIMER_PERIOD_NS;
	if (timer_settime(c->timer, 0, &its, NULL) < 0) {
		int err = errno;
		uintptr_t key = (uintptr_t)c->timer + 1;

		if (atomic_compare_exchange_strong(&cpuclock_timers[c->slot],
						   &key, 0))
			(void)timer_delete(c->timer);
		c->slot = -1;
		return -err;
	}
	c->keep_below = cpuclock_keep_threshold;
	c->engine = RING_ENGINE_TIMER;
	return 0;
}

/*
 * A period drawn uniformly from [3P/4, 5P/4), P = 1/hz: its mean is P, so
 * a thread's samples come at P on average over the settings. A thread that
 * ends before its first setting's CPUCLOCK_DITHER_EVERY samples are taken
 * counts its samples at 1/p instead, and the mean of 1/p is not 1/P (1/p
 * is convex): 2.2% more over that range (9.9% over [P/2, 3P/2), measured
 * as such on a server with a thread per 20 requests), so the first
 * setting's periods are that much longer. A wider range would move the
 * phase further at each setting; a narrower one bias less.
 */
static uint64_t cpuclock_draw(uint64_t *rng, bool first)
{
	uint64_t p = 1000000000ull / cpuclock_hz;

	p = p / 4 * 3 + cpuclock_random(rng) % (p / 2 + 1);
	/* ln(5/3) / (1/2) = 1.0217 */
	return first ? p / 10000 * 10217 : p;
}

/* Settings in a window of the lag's estimate. */
#define CPUCLOCK_LAG_WINDOW 4

/* The lag of the last window any thread closed: where a new counter
 * starts (a thread that serves a few requests closes none of its own). */
static _Atomic uint64_t cpuclock_lag;

void cpuclock_dither(struct cpuclock *c, uint64_t *rng)
{
	uint64_t now = libc_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	uint64_t p = cpuclock_draw(rng, c->first);
	uint64_t spent = (uint64_t)c->since * c->period;

	/* The thread's CPU time since the last setting, beyond the periods
	 * it set: the lag, unless periods not kept (outside sampled
	 * requests) came in between, which the window's least value leaves
	 * out. */
	if (!c->first && c->since && now - c->set_ns > spent &&
	    now - c->set_ns - spent < c->win_min)
		c->win_min = now - c->set_ns - spent;
	if (++c->win_n == CPUCLOCK_LAG_WINDOW) {
		/* At most a tenth of a period: more is not a lag. */
		if (c->win_min < p / 10) {
			c->lag_ns = c->win_min;
			atomic_store_explicit(&cpuclock_lag, c->lag_ns,
					      memory_order_relaxed);
		}
		c->win_min = UINT64_MAX;
		c->win_n = 0;
	}
	/* The lag is lost once a setting, that is once every
	 * CPUCLOCK_DITHER_EVERY periods. */
	p -= c->lag_ns / CPUCLOCK_DITHER_EVERY;
	c->first = 0;
	c->since = 0;
	c->period = p;
	(void)ioctl(c->fd, PERF_EVENT_IOC_PERIOD, &p);
	c->set_ns = libc_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

int cpuclock_open(struct cpuclock *c, int tid, int signo, uint64_t *rng)
{
	int fd = -ENOENT, engine = RING_ENGINE_NONE, r;

	c->engine = RING_ENGINE_NONE;
	c->fd = -1;
	c->slot = -1;
	c->lost = 0;
	c->keep_below = UINT32_MAX;
	c->first = 0;
	c->signo = signo;
	if (signo <= 0) {
		/* No signal: F_SETSIG 0 would mean SIGIO, which kills. */
		c->engine = RING_ENGINE_FAILED;
		return -EINVAL;
	}
	if (signo >= SIGRTMIN && cpuclock_choice == CPUCLOCK_PERF) {
		c->engine = RING_ENGINE_FAILED;
		atomic_store_explicit(&cpuclock_st_error, EOPNOTSUPP,
				      memory_order_relaxed);
		cpuclock_note(RING_ENGINE_FAILED, 0);
		return -EOPNOTSUPP;
	}
	if (cpuclock_choice != CPUCLOCK_TIMER && signo < SIGRTMIN) {
		/* The first period ends at a random point of one: a
		 * thread's first request starts anywhere in it. Never at
		 * once: a counter whose period is shorter than the kernel's
		 * own work for each overflow takes the thread's every
		 * instant (a first period of a few µs kept a thread in its
		 * interrupts for seconds, before its handler could set a
		 * longer one). Any interval one period long gives the same
		 * random phase. */
		uint64_t period = 1000000000ull / cpuclock_hz;

		fd = cpuclock_perf_open(tid, signo,
					period / 16 + 1 +
						cpuclock_random(rng) % period,
					&engine);
		if (fd >= 0) {
			c->slot = cpuclock_register_fd(fd, c);
			if (c->slot < 0) {
				libc_close(fd);
				fd = -ENOSPC;
			}
		}
		if (fd >= 0) {
			c->fd = fd;
			c->first = 1;
			c->since = 0;
			c->lag_ns = atomic_load_explicit(&cpuclock_lag,
							 memory_order_relaxed);
			c->win_min = UINT64_MAX;
			c->win_n = 0;
			/* The slot is set before the engine: a signal
			 * arriving in between is not this clock's yet. */
			atomic_signal_fence(memory_order_seq_cst);
			c->engine = engine;
			cpuclock_note((uint32_t)engine, cpuclock_hz);
			return 0;
		}
		atomic_store_explicit(&cpuclock_st_error, (uint32_t)-fd,
				      memory_order_relaxed);
		if (cpuclock_choice == CPUCLOCK_PERF) {
			c->engine = RING_ENGINE_FAILED;
			cpuclock_note(RING_ENGINE_FAILED, 0);
			return fd;
		}
	}
	r = cpuclock_timer_open(c, tid, signo);
	if (r < 0) {
		c->engine = RING_ENGINE_FAILED;
		cpuclock_note(RING_ENGINE_FAILED, 0);
		return r;
	}
	cpuclock_note(RING_ENGINE_TIMER, cpuclock_hz < cpuclock_tick_hz
						 ? cpuclock_hz
						 : cpuclock_tick_hz);
	return 0;
}

void cpuclock_close(struct cpuclock *c)
{
	int engine = c->engine;

	c->engine = RING_ENGINE_NONE;
	atomic_signal_fence(memory_order_seq_cst);
	if (engine == RING_ENGINE_TIMER) {
		uintptr_t key = (uintptr_t)c->timer + 1;

		if (c->slot >= 0 &&
		    atomic_compare_exchange_strong(&cpuclock_timers[c->slot],
						   &key, 0))
			(void)timer_delete(c->timer);
	} else if ((engine == RING_ENGINE_PERF ||
		    engine == RING_ENGINE_PERF_USER) && !c->lost) {
		int key = c->fd + 1;

		/* Lost: the close hook emptied the slot, and the number may
		 * be the program's own now. */
		if (c->slot >= 0)
			(void)atomic_compare_exchange_strong(
				&cpuclock_fds[c->slot], &key, 0);
		libc_close(c->fd);
	}
	c->fd = -1;
	c->slot = -1;
}

void cpuclock_fd_closed(int fd)
{
	int idx, key = fd + 1;
	struct cpuclock *c;

	if (fd < cpuclock_fd_floor)
		return;
	idx = fd % CPUCLOCK_MAX;
	c = atomic_load(&cpuclock_owners[idx]);
	if (atomic_compare_exchange_strong(&cpuclock_fds[idx], &key, 0) && c)
		c->lost = 1;
}

void cpuclock_fork_child(struct cpuclock *own)
{
	for (int i = 0; i < CPUCLOCK_MAX; i++) {
		int fd = atomic_exchange(&cpuclock_fds[i], 0);

		/* Timers are not inherited; descriptors are, and would keep
		 * the parent's counters alive. */
		if (fd)
			libc_close(fd - 1);
		atomic_store(&cpuclock_owners[i], NULL);
		atomic_store(&cpuclock_timers[i], 0);
	}
	own->engine = RING_ENGINE_NONE;
	own->fd = -1;
	own->slot = -1;
	own->lost = 0;
	atomic_store(&cpuclock_st_engine, RING_ENGINE_NONE);
	atomic_store(&cpuclock_st_hz, 0);
}

void cpuclock_stop_all(void)
{
	for (int i = 0; i < CPUCLOCK_MAX; i++) {
		int fd = atomic_load(&cpuclock_fds[i]);
		uintptr_t t = atomic_exchange(&cpuclock_timers[i], 0);

		/* Counters are disabled, not closed: the owning thread
		 * closes its own descriptor when it ends. */
		if (fd)
			(void)ioctl(fd - 1, PERF_EVENT_IOC_DISABLE, 0);
		if (t)
			(void)timer_delete((timer_t)(t - 1));
	}
}

void cpuclock_retarget(int signo)
{
	for (int i = 0; i < CPUCLOCK_MAX; i++) {
		int fd = atomic_load(&cpuclock_fds[i]);
		uintptr_t t = atomic_exchange(&cpuclock_timers[i], 0);

		if (fd && signo > 0 && signo < SIGRTMIN)
			(void)fcntl(fd - 1, F_SETSIG, signo);
		else if (fd)
			(void)ioctl(fd - 1, PERF_EVENT_IOC_DISABLE, 0);
		if (t)
			(void)timer_delete((timer_t)(t - 1));
	}
}

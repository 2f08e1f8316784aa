/*
 * hooks_wait.c — the interposers of the calls that wait: poll, ppoll,
 * epoll_wait, epoll_pwait, epoll_pwait2, select, pselect, nanosleep,
 * clock_nanosleep, usleep, sem_timedwait, sem_clockwait, connect,
 * sigsuspend and pause, and setsockopt for the timeouts it sets.
 *
 * A signal with a handler makes every one of these return: EINTR, whatever
 * SA_RESTART says. When the profiling signal alone did (sigrestart.h), the
 * hook calls again with the time left on the program's own clock, so that
 * the program sees the call as if no signal had come: it ends when the
 * program's timeout does (a millisecond later at most, where the call
 * counts in milliseconds) and never earlier. When a signal of the
 * program's came too, the program gets EINTR, as it does without profshim.
 *
 * sigsuspend and pause wait with the profiling signal blocked instead: they
 * return after any handler ran, and the program waits for its own.
 *
 * With profiling off each hook is a jump to libc, as in hooks_io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>

#include "hooks_wait.h"
#include "interposed.h"
#include "libc.h"
#include "proc.h"
#include "sampler.h"
#include "sigrestart.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NS 1000000000ull

bool hooks_timeouts;
__thread uint64_t hooks_start;

bool hooks_again(bool failed)
{
	int e = errno;

	return sigrestart_settle() == SIGRESTART_OWN && failed && e == EINTR;
}

static uint64_t hooks_ts_ns(const struct timespec *ts)
{
	if (ts->tv_sec < 0 || ts->tv_nsec < 0)
		return 0;
	if ((uint64_t)ts->tv_sec >= UINT64_MAX / NS / 2)
		return UINT64_MAX / 2;
	return (uint64_t)ts->tv_sec * NS + (uint64_t)ts->tv_nsec;
}

/* The deadline `ns` from now (CLOCK_MONOTONIC). */
static uint64_t hooks_deadline(uint64_t ns)
{
	uint64_t now = libc_now_ns();

	return ns > UINT64_MAX - now ? UINT64_MAX : now + ns;
}

/* Nanoseconds left to `deadline`, 0 once it passed. */
static uint64_t hooks_left(uint64_t deadline)
{
	uint64_t now = libc_now_ns();

	return deadline > now ? deadline - now : 0;
}

/* Milliseconds left to `deadline`, rounded up: a call that counts in
 * milliseconds never ends before it. */
static int hooks_ms_left(uint64_t deadline)
{
	uint64_t ms = (hooks_left(deadline) + 999999) / 1000000;

	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static struct timespec hooks_ts(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / NS), (long)(ns % NS)};

	return ts;
}

uint64_t hooks_now_ns(void)
{
	return libc_now_ns();
}

int hooks_sock_wait(int fd, short events)
{
	uint64_t start = hooks_start;
	struct timeval tv;
	socklen_t len = sizeof(tv);
	uint64_t timeo, deadline;

	LIBC_RESOLVE(poll);
	if (getsockopt(fd, SOL_SOCKET,
		       events == POLLIN ? SO_RCVTIMEO : SO_SNDTIMEO, &tv,
		       &len) != 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0)) {
		/* No timeout: the profiling signal alone would have had the
		 * call restarted. The EINTR is from a signal of the
		 * program's whose handler has run already. */
		errno = EINTR;
		return -1;
	}
	/* A timeout set before the shim saw it: measure from now on. */
	hooks_timeouts = true;
	timeo = (uint64_t)tv.tv_sec * NS + (uint64_t)tv.tv_usec * 1000;
	deadline = start ? start + timeo : hooks_deadline(timeo);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		int ms = hooks_ms_left(deadline);
		int r;

		if (ms == 0)
			return 0;
		sigrestart_enter(0);
		r = real_poll(&p, 1, ms);
		if (sigrestart_leave() && hooks_again(r < 0))
			continue;
		if (r < 0 && errno == EINTR)
			return -1;
		if (r != 0)
			return 1; /* ready, or an error the call will report */
	}
}

/* True when a write on `fd` with `flags` blocks: only then can a signal
 * have cut it short. */
static bool hooks_fd_blocks(int fd, int flags)
{
	int fl;

	if (flags & MSG_DONTWAIT)
		return false;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK);
}

enum hooks_resume hooks_resume(ssize_t *r, int fd, short events, size_t n,
			       int flags)
{
	int e = errno;

	if (sigrestart_settle() != SIGRESTART_OWN)
		return HOOKS_RETURN;
	if (*r < 0) {
		if (e != EINTR)
			return HOOKS_RETURN;
		switch (hooks_sock_wait(fd, events)) {
		case 1:
			errno = e;
			return HOOKS_AGAIN;
		case 0:
			errno = EAGAIN;
			return HOOKS_RETURN;
		default:
			return HOOKS_RETURN; /* EINTR: the program's */
		}
	}
	if (events == POLLOUT && *r > 0 && (size_t)*r < n &&
	    hooks_fd_blocks(fd, flags)) {
		errno = e;
		return HOOKS_REST;
	}
	errno = e;
	return HOOKS_RETURN;
}

/* ---- poll, ppoll ---- */

static __attribute__((noinline)) int
hooks_slow_poll(int (*fn)(struct pollfd *, nfds_t, int, size_t),
		struct pollfd *fds, nfds_t n, int ms, size_t fdslen)
{
	uint64_t deadline = ms > 0 ? hooks_deadline((uint64_t)ms * 1000000) : 0;

	for (;;) {
		sigrestart_enter(0);
		int r = fn(fds, n, ms, fdslen);

		if (!sigrestart_leave() || !hooks_again(r < 0))
			return r;
		/* At the deadline, poll once more without waiting: what is
		 * ready then is what the program would have got. */
		if (ms > 0)
			ms = hooks_ms_left(deadline);
	}
}

static int hooks_call_poll(struct pollfd *fds, nfds_t n, int ms, size_t len)
{
	(void)len;
	return real_poll(fds, n, ms);
}

static int hooks_call_poll_chk(struct pollfd *fds, nfds_t n, int ms,
			       size_t len)
{
	return real_poll_chk(fds, n, ms, len);
}

HOOK int poll(struct pollfd *fds, nfds_t n, int ms)
{
	if (LIKELY(!proc_on && real_poll))
		return real_poll(fds, n, ms);
	LIBC_RESOLVE(poll);
	return hooks_slow_poll(hooks_call_poll, fds, n, ms, 0);
}

HOOK int __poll_chk(struct pollfd *fds, nfds_t n, int ms, size_t fdslen)
{
	if (LIKELY(!proc_on && real_poll_chk))
		return real_poll_chk(fds, n, ms, fdslen);
	LIBC_RESOLVE(poll_chk);
	return hooks_slow_poll(hooks_call_poll_chk, fds, n, ms, fdslen);
}

static __attribute__((noinline)) int
hooks_slow_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		 const sigset_t *mask)
{
	uint64_t deadline = ts ? hooks_deadline(hooks_ts_ns(ts)) : 0;
	struct timespec left;

	LIBC_RESOLVE(ppoll);
	for (;;) {
		sigrestart_enter(0);
		int r = real_ppoll(fds, n, ts, mask);

		if (!sigrestart_leave() || !hooks_again(r < 0))
			return r;
		if (ts) {
			left = hooks_ts(hooks_left(deadline));
			ts = &left;
		}
	}
}

HOOK int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
	       const sigset_t *mask)
{
	if (LIKELY(!proc_on && real_ppoll))
		return real_ppoll(fds, n, ts, mask);
	return hooks_slow_ppoll(fds, n, ts, mask);
}

/* ---- epoll_wait, epoll_pwait, epoll_pwait2 ---- */

static __attribute__((noinline)) int
hooks_slow_epoll(int ep, struct epoll_event *ev, int max, int ms,
		 const sigset_t *mask, bool pwait)
{
	uint64_t deadline = ms > 0 ? hooks_deadline((uint64_t)ms * 1000000) : 0;

	LIBC_RESOLVE(epoll_wait);
	LIBC_RESOLVE(epoll_pwait);
	for (;;) {
		sigrestart_enter(0);
		int r = pwait ? real_epoll_pwait(ep, ev, max, ms, mask)
			      : real_epoll_wait(ep, ev, max, ms);

		if (!sigrestart_leave() || !hooks_again(r < 0))
			return r;
		if (ms > 0)
			ms = hooks_ms_left(deadline);
	}
}

HOOK int epoll_wait(int ep, struct epoll_event *ev, int max, int ms)
{
	if (LIKELY(!proc_on && real_epoll_wait))
		return real_epoll_wait(ep, ev, max, ms);
	return hooks_slow_epoll(ep, ev, max, ms, NULL, false);
}

HOOK int epoll_pwait(int ep, struct epoll_event *ev, int max, int ms,
		     const sigset_t *mask)
{
	if (LIKELY(!proc_on && real_epoll_pwait))
		return real_epoll_pwait(ep, ev, max, ms, mask);
	return hooks_slow_epoll(ep, ev, max, ms, mask, true);
}

static __attribute__((noinline)) int
hooks_slow_epoll_pwait2(int ep, struct epoll_event *ev, int max,
			const struct timespec *ts, const sigset_t *mask)
{
	uint64_t deadline = ts ? hooks_deadline(hooks_ts_ns(ts)) : 0;
	struct timespec left;

	LIBC_RESOLVE(epoll_pwait2);
	if (!real_epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	for (;;) {
		sigrestart_enter(0);
		int r = real_epoll_pwait2(ep, ev, max, ts, mask);

		if (!sigrestart_leave() || !hooks_again(r < 0))
			return r;
		if (ts) {
			left = hooks_ts(hooks_left(deadline));
			ts = &left;
		}
	}
}

HOOK int epoll_pwait2(int ep, struct epoll_event *ev, int max,
		      const struct timespec *ts, const sigset_t *mask)
{
	if (LIKELY(!proc_on && real_epoll_pwait2))
		return real_epoll_pwait2(ep, ev, max, ts, mask);
	return hooks_slow_epoll_pwait2(ep, ev, max, ts, mask);
}

/* ---- select, pselect ---- */

/*
 * Linux's select writes the time left into the program's timeval when it
 * returns, and leaves the sets alone when it fails: calling it again with
 * the same arguments waits for what is left.
 */
static __attribute__((noinline)) int
hooks_slow_select(int n, fd_set *rd, fd_set *wr, fd_set *ex,
		  struct timeval *tv)
{
	LIBC_RESOLVE(select);
	for (;;) {
		sigrestart_enter(0);
		int r = real_select(n, rd, wr, ex, tv);

		if (!sigrestart_leave() || !hooks_again(r < 0))
			return r;
	}
}

HOOK int select(int n, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	if (LIKELY(!proc_on && real_select))
		return real_select(n, rd, wr, ex, tv);
	return hooks_slow_select(n, rd, wr, ex, tv);
}

static __attribute__((noinline)) int
hooks_slow_pselect(int n, fd_set *rd, fd_set *wr, fd_set *ex,
		   const struct timespec *ts, const sigset_t *mask)
{
	uint64_t deadline = ts ? hooks_deadline(hooks_ts_ns(ts)) : 0;
	struct timespec left;

	LIBC_RESOLVE(pselect);
	for (;;) {
		sigrestart_enter(0);
		int r = real_pselect(n, rd, wr, ex, ts, mask);

		if (!sigrestart_leave() || !hooks_again(r < 0))
			return r;
		if (ts) {
			left = hooks_ts(hooks_left(deadline));
			ts = &left;
		}
	}
}

HOOK int pselect(int n, fd_set *rd, fd_set *wr, fd_set *ex,
		 const struct timespec *ts, const sigset_t *mask)
{
	if (LIKELY(!proc_on && real_pselect))
		return real_pselect(n, rd, wr, ex, ts, mask);
	return hooks_slow_pselect(n, rd, wr, ex, ts, mask);
}

/* ---- nanosleep, clock_nanosleep, usleep ---- */

/*
 * The kernel says what is left of a relative sleep it cut short, so these
 * need no clock of their own. clock_nanosleep returns its error.
 */
static __attribute__((noinline)) int
hooks_slow_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			   struct timespec *rem)
{
	struct timespec left, cur = *req;

	LIBC_RESOLVE(clock_nanosleep);
	for (;;) {
		sigrestart_enter(0);
		int r = real_clock_nanosleep(clk, flags, &cur, &left);

		if (!sigrestart_leave() || sigrestart_settle() != SIGRESTART_OWN ||
		    r != EINTR) {
			if (r == EINTR && rem && !(flags & TIMER_ABSTIME))
				*rem = left;
			return r;
		}
		if (!(flags & TIMER_ABSTIME))
			cur = left;
	}
}

HOOK int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			 struct timespec *rem)
{
	if (LIKELY(!proc_on && real_clock_nanosleep))
		return real_clock_nanosleep(clk, flags, req, rem);
	return hooks_slow_clock_nanosleep(clk, flags, req, rem);
}

static __attribute__((noinline)) int
hooks_slow_nanosleep(const struct timespec *req, struct timespec *rem)
{
	struct timespec left, cur;

	LIBC_RESOLVE(nanosleep);
	if (!req) {
		errno = EFAULT;
		return -1;
	}
	cur = *req;
	for (;;) {
		sigrestart_enter(0);
		int r = real_nanosleep(&cur, &left);

		if (!sigrestart_leave() || !hooks_again(r < 0)) {
			if (r < 0 && errno == EINTR && rem)
				*rem = left;
			return r;
		}
		cur = left;
	}
}

HOOK int nanosleep(const struct timespec *req, struct timespec *rem)
{
	if (LIKELY(!proc_on && real_nanosleep))
		return real_nanosleep(req, rem);
	return hooks_slow_nanosleep(req, rem);
}

/* glibc's usleep is a nanosleep of that many microseconds. */
HOOK int usleep(useconds_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

	if (LIKELY(!proc_on && real_usleep))
		return real_usleep(us);
	return hooks_slow_nanosleep(&ts, NULL);
}

/* ---- sem_timedwait, sem_clockwait ---- */

/*
 * glibc waits on a futex, and may wait again after a wake-up that found no
 * token: only an EINTR is held (SIGRESTART_EINTR_ONLY), after which it
 * returns at once. The deadline is absolute: the same again.
 */
static __attribute__((noinline)) int
hooks_slow_sem(sem_t *sem, clockid_t clk, const struct timespec *abs,
	       bool clockwait)
{
	LIBC_RESOLVE(sem_timedwait);
	LIBC_RESOLVE(sem_clockwait);
	for (;;) {
		sigrestart_enter(SIGRESTART_EINTR_ONLY);
		int r = clockwait ? real_sem_clockwait(sem, clk, abs)
				  : real_sem_timedwait(sem, abs);

		if (!sigrestart_leave() || !hooks_again(r < 0))
			return r;
	}
}

HOOK int sem_timedwait(sem_t *sem, const struct timespec *abs)
{
	if (LIKELY(!proc_on && real_sem_timedwait))
		return real_sem_timedwait(sem, abs);
	return hooks_slow_sem(sem, CLOCK_REALTIME, abs, false);
}

HOOK int sem_clockwait(sem_t *sem, clockid_t clk, const struct timespec *abs)
{
	if (LIKELY(!proc_on && real_sem_clockwait))
		return real_sem_clockwait(sem, clk, abs);
	return hooks_slow_sem(sem, clk, abs, true);
}

/* ---- connect ---- */

/*
 * A blocking connect the profiling signal interrupts is restarted by the
 * kernel, unless the socket has a send timeout (SO_SNDTIMEO): then the
 * connection goes on in the background and the call fails with EINTR.
 * Waiting for the socket to become writable with the time left, and
 * reading its SO_ERROR, gives the program what the connect would have:
 * 0, the error, or EINPROGRESS when the timeout runs out.
 */
static __attribute__((noinline)) int
hooks_slow_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int r, err;
	socklen_t elen = sizeof(err);

	LIBC_RESOLVE(connect);
	hooks_note_start();
	sigrestart_enter(0);
	r = real_connect(fd, addr, len);
	if (!sigrestart_leave() || !hooks_again(r < 0))
		return r;
	switch (hooks_sock_wait(fd, POLLOUT)) {
	case 0:
		errno = EINPROGRESS;
		return -1;
	case -1:
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
		return -1;
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

HOOK int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (LIKELY(!proc_on && real_connect))
		return real_connect(fd, addr, len);
	return hooks_slow_connect(fd, addr, len);
}

/* ---- setsockopt ---- */

HOOK int setsockopt(int fd, int level, int name, const void *val,
		    socklen_t len)
{
	LIBC_RESOLVE(setsockopt);
	if (UNLIKELY(proc_on) && level == SOL_SOCKET &&
	    (name == SO_RCVTIMEO || name == SO_SNDTIMEO
#ifdef SO_RCVTIMEO_NEW
	     || name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW
#endif
	     ))
		hooks_timeouts = true;
	return real_setsockopt(fd, level, name, val, len);
}

/* ---- sigsuspend, pause ---- */

static __attribute__((noinline)) int hooks_slow_sigsuspend(const sigset_t *mask)
{
	sigset_t with = *mask;
	int own = sampler_signal();

	LIBC_RESOLVE(sigsuspend);
	if (own > 0)
		sigaddset(&with, own);
	return real_sigsuspend(&with);
}

HOOK int sigsuspend(const sigset_t *mask)
{
	if (LIKELY(!proc_on && real_sigsuspend))
		return real_sigsuspend(mask);
	return hooks_slow_sigsuspend(mask);
}

/* pause() is sigsuspend() with the thread's own mask. */
HOOK int pause(void)
{
	sigset_t cur;

	if (LIKELY(!proc_on && real_pause))
		return real_pause();
	if (libc_sigmask(SIG_BLOCK, NULL, &cur) != 0) {
		LIBC_RESOLVE(pause);
		return real_pause();
	}
	return hooks_slow_sigsuspend(&cur);
}

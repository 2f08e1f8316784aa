/*
 * hooks_wait.c — the interposers of the calls that wait: poll, ppoll,
 * epoll_wait, epoll_pwait, epoll_pwait2, select, pselect, nanosleep,
 * clock_nanosleep, usleep, sleep, sem_timedwait, sem_clockwait, connect,
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
#include <sys/stat.h>
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

/*
 * After a marked call the profiling signal came at the end of (the
 * program's signals held, *h records them): true when it must be made
 * again, with the program's signals still held, because only the
 * profiling signal came (`wait`: the mask the call waits with, NULL: the
 * program's) and the call failed with EINTR (`failed`: each call reports
 * failure its own way). Otherwise the program's mask is back and the
 * call's result is the program's. errno preserved.
 */
static bool hooks_held_again(struct sigrestart_hold *h, bool failed,
			     const sigset_t *wait)
{
	int e = errno;
	bool again = sigrestart_check(h, wait) == SIGRESTART_OWN && failed &&
		     e == EINTR;

	if (!again)
		sigrestart_release(h);
	errno = e;
	return again;
}

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

/* `ns` after `from` (CLOCK_MONOTONIC), never 0. */
static uint64_t hooks_after(uint64_t from, uint64_t ns)
{
	return ns > UINT64_MAX - from ? UINT64_MAX : from + ns;
}

/* Nanoseconds left to `deadline`, 0 once it passed. */
static uint64_t hooks_left(uint64_t deadline)
{
	uint64_t now = libc_now_ns();

	return deadline > now ? deadline - now : 0;
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

/*
 * The mask a masked wait of the program's waits with, without the
 * profiling signal: a sample due during the wait is taken in it (and
 * resumed), not held until a handler of the program's has run and then
 * taken where it returns to, past the call, which looks like a sample that
 * interrupted the call. NULL stays NULL.
 */
static const sigset_t *hooks_wait_mask(const sigset_t *mask, sigset_t *copy)
{
	int own = sampler_signal();

	if (!mask || own <= 0 || sigismember(mask, own) != 1)
		return mask;
	*copy = *mask;
	sigdelset(copy, own);
	return copy;
}

/*
 * The wait every resumed call makes: ppoll with the time left to
 * `deadline` (0: none), marked, with the program's mask (`wait`, or the
 * one *h holds) set atomically by the kernel; samples show it as the
 * program's call `fn`. The thread holds the
 * program's signals before and after (sigrestart.h). Returns ppoll's
 * result; *held says whether the profiling signal came at its end.
 */
static int hooks_wait_held(const struct sigrestart_hold *h, const void *fn,
			   struct pollfd *fds, nfds_t n, uint64_t deadline,
			   const sigset_t *wait, bool *held)
{
	struct timespec left;
	sigset_t mask;
	int r;

	LIBC_RESOLVE(ppoll);
	if (deadline)
		left = hooks_ts(hooks_left(deadline));
	sigrestart_tls.shown = (uintptr_t)fn;
	sigrestart_enter(0);
	r = real_ppoll(fds, n, deadline ? &left : NULL,
		       wait ? wait : sigrestart_program_mask(h, &mask));
	*held = sigrestart_leave();
	sigrestart_tls.shown = 0;
	return r;
}

int hooks_sock_wait(struct sigrestart_hold *h, const void *fn, int fd,
		    short events)
{
	uint64_t start = hooks_start;
	struct timeval tv;
	socklen_t len = sizeof(tv);
	uint64_t timeo, deadline;

	if (getsockopt(fd, SOL_SOCKET,
		       events == POLLIN ? SO_RCVTIMEO : SO_SNDTIMEO, &tv,
		       &len) != 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0)) {
		/* No timeout: the profiling signal alone would have had the
		 * call restarted. The EINTR is from a signal of the
		 * program's whose handler has run already. */
		sigrestart_release(h);
		errno = EINTR;
		return -1;
	}
	/* A timeout set before the shim saw it: measure from now on. */
	hooks_timeouts = true;
	timeo = (uint64_t)tv.tv_sec * NS + (uint64_t)tv.tv_usec * 1000;
	deadline = hooks_after(start ? start : libc_now_ns(), timeo);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		bool held;
		int r;

		if (hooks_left(deadline) == 0) {
			sigrestart_release(h);
			return 0;
		}
		r = hooks_wait_held(h, fn, &p, 1, deadline, NULL, &held);
		if (held && hooks_held_again(h, r < 0, NULL))
			continue;
		sigrestart_release(h);
		if (r < 0 && errno == EINTR)
			return -1;
		if (r != 0)
			return 1; /* ready, or an error the call will report */
	}
}

/*
 * The signals whose handler has SA_RESTART, learnt from the kernel the
 * first time a resumed call needs them and kept up to date by the
 * sigaction and signal hooks since.
 */
static _Atomic uint64_t hooks_sa_restart;
static atomic_bool hooks_sa_known;

void hooks_note_action(int sig, const struct sigaction *act)
{
	uint64_t bit = 1ull << (sig - 1);
	const void *h = act->sa_flags & SA_SIGINFO ? (const void *)act->sa_sigaction
						   : (const void *)act->sa_handler;

	if (!atomic_load(&hooks_sa_known))
		return;
	if (h != (const void *)SIG_DFL && h != (const void *)SIG_IGN &&
	    (act->sa_flags & SA_RESTART))
		atomic_fetch_or(&hooks_sa_restart, bit);
	else
		atomic_fetch_and(&hooks_sa_restart, ~bit);
}

static uint64_t hooks_restarting(void)
{
	if (!atomic_load(&hooks_sa_known)) {
		uint64_t m = 0;

		for (int sig = 1; sig <= 64; sig++) {
			struct sigaction sa;

			if (libc_sigaction(sig, NULL, &sa) == 0 &&
			    (sa.sa_flags & SA_RESTART) &&
			    sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN)
				m |= 1ull << (sig - 1);
		}
		atomic_store(&hooks_sa_restart, m);
		atomic_store(&hooks_sa_known, true);
	}
	return atomic_load(&hooks_sa_restart);
}

/*
 * A read-like or write-like call the kernel had set up to restart for the
 * profiling signal, held and made to return EINTR (SIGRESTART_RESTART):
 * before it is made again, wait for the descriptor with the program's mask
 * set atomically, so that a signal of the program's that comes meanwhile
 * interrupts the wait as it would have the call. That is exact when no
 * handler the program's mask lets through has SA_RESTART (then any such
 * signal means EINTR); otherwise the mask is restored first and the call
 * made again at once, as the kernel would. Returns 1 to make the call
 * again (the program's mask is back), -1 with EINTR.
 */
static int hooks_restart_wait(struct sigrestart_hold *h, const void *fn,
			      int fd, short events)
{
	uint64_t open = ~h->mask;
	int own = sampler_signal();

	if (own > 0)
		open &= ~(1ull << (own - 1));
	if (hooks_restarting() & open) {
		sigrestart_release(h);
		return 1;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = events};
		bool held;
		int r = hooks_wait_held(h, fn, &p, 1, 0, NULL, &held);
		int e = errno;

		if (held) {
			switch (sigrestart_check(h, NULL)) {
			case SIGRESTART_OWN:
				if (r < 0 && e == EINTR)
					continue;
				break;
			case SIGRESTART_PROGRAM:
				sigrestart_release(h);
				errno = EINTR;
				return -1;
			case SIGRESTART_RESTART:
			case SIGRESTART_STALE:
				break;
			}
		}
		sigrestart_release(h);
		if (r < 0 && e == EINTR) {
			errno = EINTR;
			return -1; /* the program's signal: its handler ran */
		}
		return 1; /* ready (or an error the call will report) */
	}
}

/* True when a write on `fd` with `flags` blocks, and on something a
 * signal can cut short (a pipe, a socket, a terminal; not a regular file,
 * whose short write means a full disk or a size limit). */
static bool hooks_fd_blocks(int fd, int flags)
{
	struct stat st;
	int fl;

	if (flags & MSG_DONTWAIT)
		return false;
	fl = fcntl(fd, F_GETFL);
	return fl >= 0 && !(fl & O_NONBLOCK) && fstat(fd, &st) == 0 &&
	       !S_ISREG(st.st_mode);
}

enum hooks_resume hooks_resume(ssize_t *r, const void *fn, int fd,
			       short events, size_t n, int flags)
{
	struct sigrestart_hold h = {0, false};
	int e = errno;

	switch (sigrestart_check(&h, NULL)) {
	case SIGRESTART_PROGRAM:
	case SIGRESTART_STALE:
		sigrestart_release(&h);
		errno = e;
		return HOOKS_RETURN;
	case SIGRESTART_RESTART:
		/* A restart made the call fail with EINTR, and nothing else
		 * does: anything else is not this call's restart. */
		if (!(*r < 0 && e == EINTR)) {
			sigrestart_release(&h);
			errno = e;
			return HOOKS_RETURN;
		}
		if (hooks_restart_wait(&h, fn, fd, events) < 0)
			return HOOKS_RETURN; /* the program's EINTR */
		errno = e;
		return HOOKS_AGAIN;
	case SIGRESTART_OWN:
		break;
	}
	if (*r < 0 && e == EINTR) {
		switch (hooks_sock_wait(&h, fn, fd, events)) {
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
	sigrestart_release(&h);
	if (events == POLLOUT && *r > 0 && (size_t)*r < n &&
	    hooks_fd_blocks(fd, flags)) {
		errno = e;
		return HOOKS_REST;
	}
	errno = e;
	return HOOKS_RETURN;
}

/* ---- poll, ppoll ---- */

/*
 * The pattern of every wait below: the call as the program made it,
 * marked; if the profiling signal came at its end and alone made it fail,
 * the wait goes on atomically with the program's mask until its deadline
 * (hooks_wait_held, or the call's own masked form). A deadline is taken
 * before the call, and the program's timeout read only once the call took
 * it (a bad pointer is the call's EFAULT, not the hook's fault).
 */
static __attribute__((noinline)) int
hooks_slow_poll(int (*fn)(struct pollfd *, nfds_t, int, size_t),
		const void *shown, struct pollfd *fds, nfds_t n, int ms,
		size_t fdslen)
{
	/* The clock only for a timeout that can be left over: a timeout of
	 * 0 has a deadline already passed (1), -1 none. */
	uint64_t start = ms > 0 ? libc_now_ns() : 1;
	struct sigrestart_hold h = {0, false};
	bool held;
	int r;

	sigrestart_enter(0);
	r = fn(fds, n, ms, fdslen);
	held = sigrestart_leave();
	while (held && hooks_held_again(&h, r < 0, NULL)) {
		r = hooks_wait_held(&h, shown, fds, n,
				    ms < 0 ? 0
					   : hooks_after(start,
							 (uint64_t)ms * 1000000),
				    NULL, &held);
		if (!held)
			sigrestart_release(&h);
	}
	return r;
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

static __attribute__((noinline)) int
hooks_slow_poll_resolve(bool chk, struct pollfd *fds, nfds_t n, int ms,
			size_t fdslen)
{
	LIBC_RESOLVE(poll);
	LIBC_RESOLVE(poll_chk);
	return hooks_slow_poll(chk ? hooks_call_poll_chk : hooks_call_poll,
			       chk ? (const void *)real_poll_chk
				   : (const void *)real_poll,
			       fds, n, ms, fdslen);
}

HOOK int poll(struct pollfd *fds, nfds_t n, int ms)
{
	if (LIKELY(!proc_on && real_poll))
		return real_poll(fds, n, ms);
	return hooks_slow_poll_resolve(false, fds, n, ms, 0);
}

HOOK int __poll_chk(struct pollfd *fds, nfds_t n, int ms, size_t fdslen)
{
	if (LIKELY(!proc_on && real_poll_chk))
		return real_poll_chk(fds, n, ms, fdslen);
	return hooks_slow_poll_resolve(true, fds, n, ms, fdslen);
}

static __attribute__((noinline)) int
hooks_slow_ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
		 const sigset_t *mask)
{
	uint64_t start = ts ? libc_now_ns() : 0;
	struct sigrestart_hold h = {0, false};
	sigset_t copy;
	bool held;
	int r;

	LIBC_RESOLVE(ppoll);
	mask = hooks_wait_mask(mask, &copy);
	sigrestart_enter(0);
	r = real_ppoll(fds, n, ts, mask);
	held = sigrestart_leave();
	while (held && hooks_held_again(&h, r < 0, mask)) {
		r = hooks_wait_held(&h, NULL, fds, n,
				    ts ? hooks_after(start, hooks_ts_ns(ts)) : 0,
				    mask, &held);
		if (!held)
			sigrestart_release(&h);
	}
	return r;
}

HOOK int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts,
	       const sigset_t *mask)
{
	if (LIKELY(!proc_on && real_ppoll))
		return real_ppoll(fds, n, ts, mask);
	return hooks_slow_ppoll(fds, n, ts, mask);
}

/* ---- epoll_wait, epoll_pwait, epoll_pwait2 ---- */

/* epoll_pwait for the rest of a wait, with the time left to `deadline` in
 * whole milliseconds rounded up (`timed` false: none). */
static int hooks_epoll_held(const struct sigrestart_hold *h, const void *fn,
			    int ep, struct epoll_event *ev, int max,
			    uint64_t deadline, bool timed, const sigset_t *wait,
			    bool *held)
{
	sigset_t mask;
	int ms = -1, r;

	LIBC_RESOLVE(epoll_pwait);
	if (timed) {
		uint64_t left = (hooks_left(deadline) + 999999) / 1000000;

		ms = left > INT_MAX ? INT_MAX : (int)left;
	}
	sigrestart_tls.shown = (uintptr_t)fn;
	sigrestart_enter(0);
	r = real_epoll_pwait(ep, ev, max, ms,
			     wait ? wait : sigrestart_program_mask(h, &mask));
	*held = sigrestart_leave();
	sigrestart_tls.shown = 0;
	return r;
}

static __attribute__((noinline)) int
hooks_slow_epoll(int ep, struct epoll_event *ev, int max, int ms,
		 const sigset_t *mask, bool pwait)
{
	uint64_t start = ms > 0 ? libc_now_ns() : 1;
	struct sigrestart_hold h = {0, false};
	sigset_t copy;
	bool held;
	int r;

	LIBC_RESOLVE(epoll_wait);
	LIBC_RESOLVE(epoll_pwait);
	mask = hooks_wait_mask(mask, &copy);
	sigrestart_enter(0);
	r = pwait ? real_epoll_pwait(ep, ev, max, ms, mask)
		  : real_epoll_wait(ep, ev, max, ms);
	held = sigrestart_leave();
	while (held && hooks_held_again(&h, r < 0, mask)) {
		r = hooks_epoll_held(&h,
				     pwait ? NULL : (const void *)real_epoll_wait,
				     ep, ev, max,
				     hooks_after(start, ms < 0 ? 0 : (uint64_t)ms * 1000000),
				     ms >= 0, mask, &held);
		if (!held)
			sigrestart_release(&h);
	}
	return r;
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
	uint64_t start = ts ? libc_now_ns() : 0, deadline = 0;
	struct sigrestart_hold h = {0, false};
	struct timespec left;
	sigset_t copy, pmask;
	bool held;
	int r;

	LIBC_RESOLVE(epoll_pwait2);
	if (!real_epoll_pwait2) {
		errno = ENOSYS;
		return -1;
	}
	mask = hooks_wait_mask(mask, &copy);
	sigrestart_enter(0);
	r = real_epoll_pwait2(ep, ev, max, ts, mask);
	held = sigrestart_leave();
	if (held && ts)
		deadline = hooks_after(start, hooks_ts_ns(ts));
	while (held && hooks_held_again(&h, r < 0, mask)) {
		if (deadline) {
			left = hooks_ts(hooks_left(deadline));
			ts = &left;
		}
		sigrestart_enter(0);
		r = real_epoll_pwait2(ep, ev, max, ts,
				      mask ? mask
					   : sigrestart_program_mask(&h, &pmask));
		held = sigrestart_leave();
		if (!held)
			sigrestart_release(&h);
	}
	return r;
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
 * pselect for the rest of a select or pselect (the sets are as the
 * program gave them: a call that fails leaves them alone). A select's
 * timeval reads the time left when it returns, as Linux's does.
 */
static __attribute__((noinline)) int
hooks_slow_select(int n, fd_set *rd, fd_set *wr, fd_set *ex,
		  struct timeval *tv, const struct timespec *ts,
		  const sigset_t *mask, bool pselect)
{
	uint64_t start = ts ? libc_now_ns() : 0, deadline = 0;
	struct sigrestart_hold h = {0, false};
	struct timespec left;
	sigset_t copy, pmask;
	bool held;
	int r;

	LIBC_RESOLVE(select);
	LIBC_RESOLVE(pselect);
	mask = hooks_wait_mask(mask, &copy);
	sigrestart_enter(0);
	r = pselect ? real_pselect(n, rd, wr, ex, ts, mask)
		    : real_select(n, rd, wr, ex, tv);
	held = sigrestart_leave();
	if (held && ts)
		deadline = hooks_after(start, hooks_ts_ns(ts));
	if (held && tv) /* Linux wrote the time left into it */
		deadline = hooks_after(libc_now_ns(),
				       (uint64_t)tv->tv_sec * NS +
					       (uint64_t)tv->tv_usec * 1000);
	while (held && hooks_held_again(&h, r < 0, mask)) {
		if (deadline)
			left = hooks_ts(hooks_left(deadline));
		sigrestart_tls.shown = pselect ? 0 : (uintptr_t)real_select;
		sigrestart_enter(0);
		r = real_pselect(n, rd, wr, ex, deadline ? &left : NULL,
				 mask ? mask : sigrestart_program_mask(&h, &pmask));
		held = sigrestart_leave();
		sigrestart_tls.shown = 0;
		if (!held)
			sigrestart_release(&h);
		if (tv) {
			uint64_t l = hooks_left(deadline);

			tv->tv_sec = (time_t)(l / NS);
			tv->tv_usec = (suseconds_t)(l % NS / 1000);
		}
	}
	return r;
}

HOOK int select(int n, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	if (LIKELY(!proc_on && real_select))
		return real_select(n, rd, wr, ex, tv);
	return hooks_slow_select(n, rd, wr, ex, tv, NULL, NULL, false);
}

HOOK int pselect(int n, fd_set *rd, fd_set *wr, fd_set *ex,
		 const struct timespec *ts, const sigset_t *mask)
{
	if (LIKELY(!proc_on && real_pselect))
		return real_pselect(n, rd, wr, ex, ts, mask);
	return hooks_slow_select(n, rd, wr, ex, NULL, ts, mask, true);
}

/* ---- nanosleep, clock_nanosleep, usleep, sleep ---- */

/*
 * The rest of a sleep the profiling signal alone cut short: ppoll on no
 * descriptor until `deadline` (CLOCK_MONOTONIC), with the program's mask.
 * Returns 0 when the sleep is over, or -1 with EINTR (the program's
 * signal) and *left what remained. The mask is back either way.
 */
static int hooks_sleep_rest(struct sigrestart_hold *h, const void *fn,
			    uint64_t deadline, struct timespec *left)
{
	for (;;) {
		bool held;
		int r = hooks_wait_held(h, fn, NULL, 0, deadline, NULL, &held);

		if (held && hooks_held_again(h, r < 0, NULL))
			continue;
		sigrestart_release(h);
		if (r < 0 && errno == EINTR) {
			*left = hooks_ts(hooks_left(deadline));
			return -1;
		}
		return 0;
	}
}

/* A relative nanosleep: the kernel sleeps on the monotonic clock for it,
 * and says what is left when it is cut short. */
static __attribute__((noinline)) int
hooks_slow_nanosleep(const struct timespec *req, struct timespec *rem)
{
	struct sigrestart_hold h = {0, false};
	struct timespec left;
	int r;

	LIBC_RESOLVE(nanosleep);
	sigrestart_enter(0);
	r = real_nanosleep(req, &left);
	if (LIKELY(!sigrestart_leave()) || !hooks_held_again(&h, r < 0, NULL)) {
		if (r < 0 && errno == EINTR && rem)
			*rem = left;
		return r;
	}
	r = hooks_sleep_rest(&h, (const void *)real_nanosleep,
			     hooks_after(libc_now_ns(), hooks_ts_ns(&left)),
			     &left);
	if (r < 0 && rem)
		*rem = left;
	return r;
}

HOOK int nanosleep(const struct timespec *req, struct timespec *rem)
{
	if (LIKELY(!proc_on && real_nanosleep))
		return real_nanosleep(req, rem);
	return hooks_slow_nanosleep(req, rem);
}

/* glibc's usleep is a nanosleep of that many microseconds. */
static __attribute__((noinline)) int hooks_slow_usleep(useconds_t us)
{
	struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};

	return hooks_slow_nanosleep(&ts, NULL);
}

HOOK int usleep(useconds_t us)
{
	if (LIKELY(!proc_on && real_usleep))
		return real_usleep(us);
	return hooks_slow_usleep(us);
}

/* glibc's sleep is a nanosleep of that many seconds (libc's own, which no
 * hook sees), answering the seconds left, rounded, when cut short. */
static __attribute__((noinline)) unsigned hooks_slow_sleep(unsigned secs)
{
	struct timespec ts = {(time_t)secs, 0}, rem = {0, 0};
	int saved = errno;

	if (hooks_slow_nanosleep(&ts, &rem) == 0) {
		errno = saved;
		return 0;
	}
	errno = saved;
	return (unsigned)rem.tv_sec + (rem.tv_nsec >= 500000000L);
}

HOOK unsigned sleep(unsigned secs)
{
	if (LIKELY(!proc_on && real_sleep))
		return real_sleep(secs);
	return hooks_slow_sleep(secs);
}

/*
 * clock_nanosleep returns its error. A sleep on the monotonic clock, or a
 * relative one on the real-time clock (which the kernel sleeps on the
 * monotonic clock), goes on as nanosleep's does; any other (an absolute
 * real-time one, which a clock step moves; the boot clock, which runs in
 * suspend; a CPU-time clock) is made again once the mask is back.
 */
static __attribute__((noinline)) int
hooks_slow_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			   struct timespec *rem)
{
	bool abs = flags & TIMER_ABSTIME;
	struct timespec left, cur;
	int r;

	LIBC_RESOLVE(clock_nanosleep);
	for (;;) {
		struct sigrestart_hold h = {0, false};
		uint64_t ns;

		sigrestart_enter(0);
		r = real_clock_nanosleep(clk, flags, req, &left);
		if (LIKELY(!sigrestart_leave()) ||
		    sigrestart_check(&h, NULL) != SIGRESTART_OWN || r != EINTR) {
			sigrestart_release(&h);
			if (r == EINTR && rem && !abs)
				*rem = left;
			return r;
		}
		if (clk == CLOCK_MONOTONIC && abs) {
			uint64_t when = hooks_ts_ns(req), now = libc_now_ns();

			ns = when > now ? when - now : 0;
		} else if ((clk == CLOCK_MONOTONIC || clk == CLOCK_REALTIME) &&
			   !abs) {
			ns = hooks_ts_ns(&left);
		} else {
			sigrestart_release(&h);
			if (!abs) {
				cur = left;
				req = &cur;
			}
			continue;
		}
		if (hooks_sleep_rest(&h, (const void *)real_clock_nanosleep,
				     hooks_after(libc_now_ns(), ns), &left) == 0)
			return 0;
		if (rem && !abs)
			*rem = left;
		return EINTR;
	}
}

HOOK int clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
			 struct timespec *rem)
{
	if (LIKELY(!proc_on && real_clock_nanosleep))
		return real_clock_nanosleep(clk, flags, req, rem);
	return hooks_slow_clock_nanosleep(clk, flags, req, rem);
}

/* ---- sem_timedwait, sem_clockwait ---- */

/*
 * glibc waits on a futex, and may wait again after a wake-up that found no
 * token: only an EINTR is held (SIGRESTART_EINTR_ONLY), after which it
 * returns at once. The deadline is absolute: the same again, once the
 * program's mask is back (no masked form exists).
 */
static __attribute__((noinline)) int
hooks_slow_sem(sem_t *sem, clockid_t clk, const struct timespec *abs,
	       bool clockwait)
{
	LIBC_RESOLVE(sem_timedwait);
	LIBC_RESOLVE(sem_clockwait);
	for (;;) {
		int r;

		sigrestart_enter(SIGRESTART_EINTR_ONLY);
		r = clockwait ? real_sem_clockwait(sem, clk, abs)
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
 * A blocking connect the profiling signal interrupts is set up by the
 * kernel to restart (the hook makes it again), unless the socket has a
 * send timeout (SO_SNDTIMEO): then the call fails with EINTR. A TCP
 * connection goes on in the background: waiting for the socket to become
 * writable with the time left, and reading its SO_ERROR, gives the program
 * what the connect would have: 0, the error, or EINPROGRESS when the
 * timeout runs out. Another kind of socket (a Unix one, whose connect
 * waits for room in the listener's queue) is connected again once the
 * mask is back.
 */
static __attribute__((noinline)) int
hooks_slow_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int r, err, e, dom;
	socklen_t elen = sizeof(err), dlen = sizeof(dom);

	LIBC_RESOLVE(connect);
	hooks_note_start();
	for (;;) {
		struct sigrestart_hold h = {0, false};

		sigrestart_enter(0);
		r = real_connect(fd, addr, len);
		if (LIKELY(!sigrestart_leave()))
			return r;
		e = errno;
		switch (sigrestart_check(&h, NULL)) {
		case SIGRESTART_RESTART:
			sigrestart_release(&h);
			if (r < 0 && e == EINTR)
				continue;
			errno = e;
			return r;
		case SIGRESTART_PROGRAM:
		case SIGRESTART_STALE:
			sigrestart_release(&h);
			errno = e;
			return r;
		case SIGRESTART_OWN:
			break;
		}
		if (!(r < 0 && e == EINTR)) {
			sigrestart_release(&h);
			errno = e;
			return r;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dlen) != 0 ||
		    (dom != AF_INET && dom != AF_INET6)) {
			sigrestart_release(&h);
			continue;
		}
		switch (hooks_sock_wait(&h, (const void *)real_connect, fd,
					POLLOUT)) {
		case 0:
			errno = EINPROGRESS;
			return -1;
		case -1:
			return -1;
		}
		break;
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

static __attribute__((noinline)) int
hooks_slow_setsockopt(int fd, int level, int name, const void *val,
		      socklen_t len)
{
	LIBC_RESOLVE(setsockopt);
	if (proc_on && level == SOL_SOCKET &&
	    (name == SO_RCVTIMEO || name == SO_SNDTIMEO
#ifdef SO_RCVTIMEO_NEW
	     || name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_NEW
#endif
	     ))
		hooks_timeouts = true;
	return real_setsockopt(fd, level, name, val, len);
}

HOOK int setsockopt(int fd, int level, int name, const void *val,
		    socklen_t len)
{
	if (LIKELY(!proc_on && real_setsockopt))
		return real_setsockopt(fd, level, name, val, len);
	return hooks_slow_setsockopt(fd, level, name, val, len);
}

/* ---- sigsuspend, pause ---- */

static __attribute__((noinline)) int hooks_slow_sigsuspend(const sigset_t *mask)
{
	sigset_t with;
	int own = sampler_signal();

	LIBC_RESOLVE(sigsuspend);
	if (!mask)
		return real_sigsuspend(mask); /* its EFAULT */
	with = *mask;
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
static __attribute__((noinline)) int hooks_slow_pause(void)
{
	sigset_t cur;

	if (libc_sigmask(SIG_BLOCK, NULL, &cur) != 0) {
		LIBC_RESOLVE(pause);
		return real_pause();
	}
	return hooks_slow_sigsuspend(&cur);
}

HOOK int pause(void)
{
	if (LIKELY(!proc_on && real_pause))
		return real_pause();
	return hooks_slow_pause();
}

/*
 * hooks_wait.h — what the interposers share to resume a call that only the
 * profiling signal interrupted (sigrestart.h says how they learn it).
 *
 * Only the interposer files (hooks_io.c, hooks_wait.c) include this: the
 * functions call libc's real entry points. None runs in a signal handler;
 * each runs only on the rare path where a call was interrupted.
 */
#ifndef PROFSHIM_HOOKS_WAIT_H
#define PROFSHIM_HOOKS_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <sys/types.h>

#include "sigrestart.h"

#pragma GCC visibility push(hidden)

/*
 * Set once the program gives a socket a receive or send timeout (the
 * setsockopt hook): from then on the socket hooks note when each call
 * starts (hooks_start), so that one resumed after the profiling signal
 * ends no later than the program's timeout. Until then they read no clock.
 * A plain flag: it is only ever set, and a hook that misses the store
 * notes no start.
 */
extern bool hooks_timeouts;

/* When the thread's last socket call started (CLOCK_MONOTONIC, ns), or 0:
 * none noted since socket timeouts were first used. */
extern __thread uint64_t hooks_start;

/* CLOCK_MONOTONIC now, in nanoseconds. */
uint64_t hooks_now_ns(void);

/* Note the start of a socket call: a compare with memory and a branch
 * while the program uses no socket timeout. */
static inline __attribute__((always_inline)) void hooks_note_start(void)
{
	if (__builtin_expect(hooks_timeouts, 0))
		hooks_start = hooks_now_ns();
}

/*
 * A socket call that failed with EINTR because of the profiling signal
 * alone, the program's signals held in *h (released when this returns):
 * the socket has a timeout (SO_RCVTIMEO for `events` POLLIN,
 * SO_SNDTIMEO for POLLOUT; without one the kernel restarts the call).
 * Waits for the socket with the time the timeout leaves since the call
 * started (hooks_start; unknown: the whole timeout). Returns 1 when the
 * socket is ready (call again), 0 when the timeout ran out, -1 with errno
 * EINTR when a signal of the program's came, or when the call has no
 * timeout: then the kernel would have restarted it for the profiling
 * signal (SA_RESTART), so the EINTR is the program's.
 */
int hooks_sock_wait(struct sigrestart_hold *h, const void *fn, int fd,
		    short events);

/* What a hook does after a call the profiling signal came at the end of. */
enum hooks_resume {
	HOOKS_RETURN, /* return the result (it may have been replaced) */
	HOOKS_AGAIN,  /* make the same call again */
	HOOKS_REST,   /* a blocking write cut short: write the rest */
};

/*
 * After sigrestart_leave() returned true for a socket-like call `fn` whose
 * result is *r (what the waits it makes for `fn` show as, selftext_show): settles the thread's mask (sigrestart_settle) and says
 * what to do. `events` is POLLIN for a call that reads or accepts,
 * POLLOUT for one that writes (`n` bytes asked, send `flags`). An EINTR
 * only the profiling signal caused comes from a socket timeout: the hook
 * waits with the time left (hooks_sock_wait) and calls again, or returns
 * EAGAIN when it ran out. A write that blocked and wrote
 * part goes on with the rest. errno is the program's when it returns.
 */
enum hooks_resume hooks_resume(ssize_t *r, const void *fn, int fd,
			       short events, size_t n, int flags);

/* The program installed `act` for `sig` (the sigaction and signal hooks):
 * kept for what a resumed call needs to know (which handlers restart). */
void hooks_note_action(int sig, const struct sigaction *act);

/* True when the call must be made again: only the profiling signal came
 * (sigrestart_settle) and the call failed with EINTR (`failed`: each
 * call reports failure its own way). errno preserved. */
bool hooks_again(bool failed);

#pragma GCC visibility pop

#endif

/*
 * sigrestart.h — keep a program's EINTR when its signal meets a sample.
 *
 * A program that installs a handler without SA_RESTART (signal.siginterrupt
 * in Python, a SIGALRM that bounds a blocking read) relies on that signal
 * making the blocking call fail with EINTR. The kernel decides between
 * restarting a call and failing it with the first signal it delivers: when
 * profshim's SIGPROF (SA_RESTART) is delivered first — a thread's own timer
 * signal is taken before a process-wide one, and both often expire on the
 * same tick — the call is set up to restart, the program's handler then runs
 * on top of ours, and the call goes back to blocking as if its signal had
 * never come. Measured before this module: 5–9% of one-shot SIGALRMs lost
 * their EINTR under 1000 Hz wall-clock sampling.
 *
 * sigrestart_fixup() undoes that at the end of the SIGPROF handler: if the
 * interrupted thread was in a call the kernel set up to restart, and a signal
 * whose handler lacks SA_RESTART is pending and not blocked in the
 * interrupted code, the call is made to return -EINTR instead, which is what
 * the kernel does when that signal comes alone. The handler runs with
 * asynchronous signals blocked (sampler.c), so a signal that arrives while
 * it runs waits and is seen here; only one arriving in the last instructions
 * of the handler, after the check, still loses its EINTR.
 *
 * Only the calls signal(7) lists as "restarted with SA_RESTART, EINTR
 * otherwise" are changed, for which failing with EINTR before any transfer is
 * always a permitted outcome. x86-64 Linux only; elsewhere it does nothing.
 */
#ifndef PROFSHIM_SIGRESTART_H
#define PROFSHIM_SIGRESTART_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Calls that return when a signal comes, whatever SA_RESTART says (poll,
 * epoll_wait, select, nanosleep, a socket call with a timeout), and writes
 * that return a partial count when a signal lands after some bytes went,
 * are not the kernel's to restart. For those the hooks (hooks_io.c,
 * hooks_wait.c) do it, and this module tells them when:
 *
 *   1. around the libc call it makes for the program, a hook marks the
 *      thread with its stack pointer (sigrestart_enter, sigrestart_leave);
 *   2. when the profiling signal's handler finds the thread just past a
 *      `syscall` instruction inside that call (its stack pointer within
 *      SIGRESTART_WINDOW below the mark: a program handler that ran
 *      meanwhile runs on a signal frame further down, or on its own
 *      stack), it blocks every asynchronous signal in the mask the kernel
 *      restores when the handler returns, keeps the program's mask, and
 *      sets `held` (sigrestart_fixup);
 *   3. the hook sees the flag when the call returns, and calls
 *      sigrestart_check(): a signal of the program's that came meanwhile
 *      is still pending, because it was blocked from the moment the
 *      profiling signal was delivered. If one is, the program's mask is
 *      restored (its handler runs now) and the hook returns the call's
 *      result: EINTR or the partial count are the program's, as without
 *      profshim. If none is, the hook goes on with the call (the time
 *      left, or the bytes left): a wait goes on with the program's mask
 *      set atomically by the kernel (ppoll, epoll_pwait, pselect), so a
 *      signal of the program's that comes at any moment interrupts it;
 *      a read or a write goes on once the mask is restored.
 *
 * A restartable call (a read, a write that sent nothing) that the kernel
 * set up to restart for the profiling signal is held the same way, made to
 * return EINTR, and made again by the hook: the program's own signal
 * without SA_RESTART, pending by then, gets its EINTR. Outside the hooks,
 * sigrestart_fixup() keeps the older rule: if such a signal is pending when
 * the handler ends, the restart becomes EINTR.
 *
 * x86-64 Linux only; elsewhere nothing is ever flagged.
 */

/* The mark's low bit. */
#define SIGRESTART_EINTR_ONLY 1ul /* flag only an EINTR: the libc function
				   * may make further system calls after one
				   * that returned otherwise (sem_timedwait) */
#define SIGRESTART_BITS 7ul

/* How far below the mark the libc function's `syscall` may run. The
 * smallest signal frame on x86-64 is larger (about 1 KiB). */
#define SIGRESTART_WINDOW 512ul

struct sigrestart_thread {
	volatile uintptr_t mark; /* hook's stack pointer | bits, 0: none */
	bool held;               /* the marked call ended with the profiling
				  * signal, which held the program's signals
				  * (read after a compiler barrier) */
	bool restarted;          /* ... where the kernel set it up to
				  * restart: it returned EINTR instead */
	uintptr_t held_mark;     /* the mark the hold was taken under */
	uintptr_t left_mark;     /* the mark sigrestart_leave() ended while
				  * `held` (a hold under another mark is
				  * stale: its hook is gone) */
	uint64_t mask;           /* the mask the last hold found */
	uintptr_t shown;         /* the libc function the program called,
				  * while the hook waits for it with another
				  * (selftext_show), or 0 */
};

/* Private to sigrestart.c and the hooks' inline calls below. */
extern __thread struct sigrestart_thread sigrestart_tls;

/*
 * Mark the calling thread as inside a libc call a hook makes for the
 * program. Async-signal-safe; no system call; one instruction. The
 * stack pointer is 16-byte aligned where a function calls another, so the
 * low bits are free. Marks do not nest: a hooked call made by a program
 * handler that interrupted one ends the outer mark too (the outer call,
 * restarted, is then left to sigrestart_fixup's older rule).
 */
static inline __attribute__((always_inline)) void
sigrestart_enter(unsigned long bits)
{
#if defined(__x86_64__)
	/* One instruction: the stack pointer stored straight into the
	 * thread's mark. */
	__asm__ volatile("mov %%rsp, %0" : "=m"(sigrestart_tls.mark));
	if (bits)
		sigrestart_tls.mark |= bits;
#else
	sigrestart_tls.mark =
		((uintptr_t)__builtin_frame_address(0) & ~SIGRESTART_BITS) | bits;
#endif
	atomic_signal_fence(memory_order_seq_cst);
}

/* End the mark. True when the profiling signal came at the end of the call
 * and sigrestart_check() must be called (and the call maybe resumed). */
static inline __attribute__((always_inline)) bool
sigrestart_leave(void)
{
	atomic_signal_fence(memory_order_seq_cst);
	if (__builtin_expect(sigrestart_tls.held, 0)) {
		sigrestart_tls.left_mark = sigrestart_tls.mark;
		sigrestart_tls.mark = 0;
		return true;
	}
	sigrestart_tls.mark = 0;
	return false;
}

/* A hook's own record of the program's signals it holds, on its stack: a
 * program handler that runs during the hook's retry may hold and release
 * for a hooked call of its own. */
struct sigrestart_hold {
	uint64_t mask; /* the program's mask */
	bool on;       /* held: sigrestart_release() gives the mask back */
};

/* What sigrestart_check() found. */
enum sigrestart_verdict {
	SIGRESTART_OWN,     /* only profshim's signal came: resume the call */
	SIGRESTART_PROGRAM, /* the program's came too: return what it got */
	SIGRESTART_RESTART, /* the kernel would have restarted the call (no
			     * signal of the program's, or all with
			     * SA_RESTART): release, then make it again */
	SIGRESTART_STALE,   /* the hold was not this call's (its hook was
			     * left by a longjmp): released, return the
			     * result as it is */
};

/*
 * After sigrestart_leave() returned true: is a signal of the program's
 * with a handler pending that `wait` (NULL: the program's mask) lets
 * through? The first check of a call records the program's mask in *h.
 * The program's signals stay held: the hook either releases them
 * (sigrestart_release) or waits again with the program's mask atomically
 * (ppoll, epoll_pwait and pselect take one: sigrestart_program_mask), so
 * that no signal of the program's can come between the look and the wait.
 * errno preserved; one system call, and one per pending signal.
 */
enum sigrestart_verdict sigrestart_check(struct sigrestart_hold *h,
					 const sigset_t *wait);

/* Give the thread back the program's mask, if *h holds it: a pending
 * signal's handler runs before this returns. errno preserved. */
void sigrestart_release(struct sigrestart_hold *h);

/* The program's mask that *h holds, into *buf. */
const sigset_t *sigrestart_program_mask(const struct sigrestart_hold *h,
					sigset_t *buf);

/* sigrestart_check(), then sigrestart_release(), for a call that is made
 * again only once the mask is back. */
enum sigrestart_verdict sigrestart_settle(void);

/*
 * Called from the sampler's handler with its ucontext and the profiling
 * signal `own` (never counted as the program's). Async-signal-safe: no
 * allocation, no locks, errno preserved; at most one rt_sigpending and one
 * rt_sigaction per pending signal, and those only when the thread was
 * interrupted inside a restartable call.
 */
void sigrestart_fixup(void *ucontext, int own);

#endif

/*
 * sigrestart.c — see sigrestart.h.
 */
#include "sigrestart.h"
#include "selftext.h"

__thread struct sigrestart_thread sigrestart_tls;

#if defined(__x86_64__) && defined(__linux__)

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* The kernel's rt_sigaction argument, not libc's struct sigaction. */
struct sigrestart_kaction {
	uintptr_t handler;
	unsigned long flags;
	uintptr_t restorer;
	uint64_t mask;
};

/* A raw system call: no errno, no libc wrapper, no interposed symbol. */
static long sigrestart_syscall4(long nr, long a, long b, long c, long d)
{
	long r;
	register long r10 __asm__("r10") = d;

	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "0"(nr), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return r;
}

/*
 * The calls signal(7) says are restarted under SA_RESTART and fail with
 * EINTR otherwise. Not others: fork and clone, for one, are restarted
 * whatever the handler, and must never see EINTR.
 */
static bool sigrestart_call_listed(long nr)
{
	switch (nr) {
	case SYS_read: case SYS_readv: case SYS_write: case SYS_writev:
	case SYS_ioctl: case SYS_open: case SYS_openat:
	case SYS_wait4: case SYS_waitid:
	case SYS_accept: case SYS_accept4: case SYS_connect:
	case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg:
	case SYS_sendto: case SYS_sendmsg: case SYS_sendmmsg:
	case SYS_flock: case SYS_fcntl:
	case SYS_mq_timedreceive: case SYS_mq_timedsend:
		return true;
	default:
		return false;
	}
}

/* What a pending signal of the program's would do to a call. */
enum sigrestart_pending {
	SIGRESTART_NONE,        /* none with a handler */
	SIGRESTART_RESTARTS,    /* handlers, all with SA_RESTART */
	SIGRESTART_INTERRUPTS,  /* a handler without SA_RESTART */
};

/*
 * The program's pending signals that `blocked` lets through, other than
 * `own`: whether any has a handler, and whether one lacks SA_RESTART.
 * SIG_DFL and SIG_IGN change no call's result (a default that stops the
 * process restarts the call after SIGCONT; one that ends it ends the call
 * anyway).
 */
static enum sigrestart_pending sigrestart_pending(uint64_t blocked, int own)
{
	enum sigrestart_pending found = SIGRESTART_NONE;
	uint64_t pending = 0;

	if (sigrestart_syscall4(SYS_rt_sigpending, (long)&pending, 8, 0, 0) < 0)
		return SIGRESTART_NONE;
	pending &= ~blocked;
	if (own > 0)
		pending &= ~(1ull << (own - 1));
	while (pending) {
		int sig = __builtin_ctzll(pending) + 1;
		struct sigrestart_kaction ka;

		pending &= pending - 1;
		if (sigrestart_syscall4(SYS_rt_sigaction, sig, 0, (long)&ka, 8) < 0 ||
		    ka.handler == (uintptr_t)SIG_DFL ||
		    ka.handler == (uintptr_t)SIG_IGN)
			continue;
		if (!(ka.flags & SA_RESTART))
			return SIGRESTART_INTERRUPTS;
		found = SIGRESTART_RESTARTS;
	}
	return found;
}

/*
 * Signals the hold blocks: all but those a fault raises (blocking one
 * turns the program's fault handler into a kill), SIGKILL and SIGSTOP
 * (cannot be), and glibc's two internal real-time signals (32: thread
 * cancellation, which a libc wrapper may wait for right after its call;
 * 33: setuid across threads, which waits for every thread).
 */
#define SIGRESTART_BIT(s) (1ull << ((s) - 1))
static const uint64_t sigrestart_hold_mask =
	~(SIGRESTART_BIT(SIGSEGV) | SIGRESTART_BIT(SIGBUS) |
	  SIGRESTART_BIT(SIGILL) | SIGRESTART_BIT(SIGFPE) |
	  SIGRESTART_BIT(SIGTRAP) | SIGRESTART_BIT(SIGSYS) |
	  SIGRESTART_BIT(SIGKILL) | SIGRESTART_BIT(SIGSTOP) |
	  SIGRESTART_BIT(32) | SIGRESTART_BIT(33));

/* The profiling signal the handler last ran for: the process', so that
 * sigrestart_check() knows which to leave out. */
static _Atomic int sigrestart_own;

/* The kernel's pattern of a call it set up to restart (SA_RESTART): the
 * instruction pointer moved back onto the 2-byte `syscall`, the call's
 * number back in rax, rcx still the return address `syscall` saved, just
 * past it. Code about to make a call has rcx free (it carries no
 * argument), so this pattern is the kernel's and not the program's. */
static bool sigrestart_restarting(const greg_t *g)
{
	const unsigned char *ip = (const unsigned char *)g[REG_RIP];

	return (uint64_t)g[REG_RCX] == (uint64_t)g[REG_RIP] + 2 &&
	       ip[0] == 0x0f && ip[1] == 0x05 &&
	       sigrestart_call_listed(g[REG_RAX]);
}

/* True when one of the four words below the mark is an address in the
 * shim's code: the return address of the hook's call into libc (a call
 * with arguments on the stack pushes them first). A mark a longjmp left
 * behind has lost it once the stack there is used again. */
static bool sigrestart_mark_live(uintptr_t base)
{
	uintptr_t lo, hi;

	selftext_bounds(&lo, &hi);
	if (!lo)
		return true;
	for (int i = 1; i <= 4; i++) {
		uintptr_t ret = *(const uintptr_t *)(base - 8 * (uintptr_t)i);

		if (ret >= lo && ret < hi)
			return true;
	}
	return false;
}

/*
 * The thread is marked (sigrestart_enter) and was interrupted right at the
 * end of a system call made inside the hook's libc call, or where the
 * kernel set that call up to restart (then the call returns EINTR instead,
 * and the hook makes it again: `restarted`). Hold the program's signals
 * until the hook has looked (sigrestart.h). A mask that holds already is
 * the hook's own retry (its wait was entered with the signals held): the
 * program's mask stays what the hook recorded.
 */
static bool sigrestart_hold(ucontext_t *uc, int own)
{
	struct sigrestart_thread *t = &sigrestart_tls;
	greg_t *g = uc->uc_mcontext.gregs;
	uintptr_t mark = t->mark;
	uintptr_t base = mark & ~SIGRESTART_BITS;
	uintptr_t sp = (uintptr_t)g[REG_RSP];
	const unsigned char *ip = (const unsigned char *)g[REG_RIP];
	uint64_t *ucmask = (uint64_t *)(void *)&uc->uc_sigmask;
	bool restart = false;

	if (!mark || t->held || sp >= base || sp < base - SIGRESTART_WINDOW)
		return false;
	if ((uint64_t)g[REG_RCX] == (uint64_t)g[REG_RIP] && ip[-2] == 0x0f &&
	    ip[-1] == 0x05) {
		/* Just past `syscall`: rcx holds the address it saved, which
		 * is rip itself. The bytes before rip are the libc
		 * function's. */
		if ((mark & SIGRESTART_EINTR_ONLY) && g[REG_RAX] != -EINTR)
			return false;
	} else if (!(mark & SIGRESTART_EINTR_ONLY) && sigrestart_restarting(g)) {
		restart = true;
	} else {
		return false;
	}
	if (!sigrestart_mark_live(base))
		return false;
	if (restart) {
		g[REG_RAX] = -EINTR;
		g[REG_RIP] += 2;
		t->restarted = true;
	}
	if ((*ucmask & sigrestart_hold_mask) != sigrestart_hold_mask)
		t->mask = *ucmask;
	*ucmask |= sigrestart_hold_mask;
	atomic_store_explicit(&sigrestart_own, own, memory_order_relaxed);
	t->held_mark = mark;
	t->held = true;
	return true;
}

/* Set the thread's mask to `mask`, errno preserved. */
static void sigrestart_setmask(uint64_t mask)
{
	int saved = errno;

	(void)sigrestart_syscall4(SYS_rt_sigprocmask, SIG_SETMASK, (long)&mask,
				  0, 8);
	errno = saved;
}

enum sigrestart_verdict sigrestart_check(struct sigrestart_hold *h,
					 const sigset_t *wait)
{
	struct sigrestart_thread *t = &sigrestart_tls;
	int saved = errno;
	enum sigrestart_pending p;
	bool restarted = t->restarted;
	uint64_t blocked;

	t->held = false;
	t->restarted = false;
	if (t->left_mark != t->held_mark) {
		/* Not this call's hold: give back what that hold found. */
		if (!h->on)
			sigrestart_setmask(t->mask);
		return SIGRESTART_STALE;
	}
	if (!h->on) {
		h->mask = t->mask;
		h->on = true;
	}
	blocked = wait ? *(const uint64_t *)(const void *)wait : h->mask;
	p = sigrestart_pending(
		blocked,
		atomic_load_explicit(&sigrestart_own, memory_order_relaxed));
	errno = saved;
	if (restarted)
		return p == SIGRESTART_INTERRUPTS ? SIGRESTART_PROGRAM
						  : SIGRESTART_RESTART;
	return p == SIGRESTART_NONE ? SIGRESTART_OWN : SIGRESTART_PROGRAM;
}

void sigrestart_release(struct sigrestart_hold *h)
{
	if (!h->on)
		return;
	h->on = false;
	sigrestart_setmask(h->mask);
}

const sigset_t *sigrestart_program_mask(const struct sigrestart_hold *h,
					sigset_t *buf)
{
	sigemptyset(buf);
	memcpy(buf, &h->mask, sizeof(h->mask));
	return buf;
}

enum sigrestart_verdict sigrestart_settle(void)
{
	struct sigrestart_hold h = {0, false};
	enum sigrestart_verdict v = sigrestart_check(&h, NULL);

	sigrestart_release(&h);
	return v;
}

void sigrestart_fixup(void *ucontext, int own)
{
	ucontext_t *uc = ucontext;
	greg_t *g = uc->uc_mcontext.gregs;
	uint64_t blocked;

	if (__builtin_expect(sigrestart_tls.mark != 0, 0) &&
	    sigrestart_hold(uc, own))
		return;
	if (!sigrestart_restarting(g))
		return;
	/* The mask the interrupted code runs with, restored on return. */
	blocked = *(const uint64_t *)(const void *)&uc->uc_sigmask;
	if (sigrestart_pending(blocked, own) != SIGRESTART_INTERRUPTS)
		return;
	g[REG_RAX] = -EINTR;
	g[REG_RIP] += 2;
}

#else

enum sigrestart_verdict sigrestart_check(struct sigrestart_hold *h,
					 const sigset_t *wait)
{
	(void)h;
	(void)wait;
	return SIGRESTART_PROGRAM;
}

void sigrestart_release(struct sigrestart_hold *h)
{
	(void)h;
}

const sigset_t *sigrestart_program_mask(const struct sigrestart_hold *h,
					sigset_t *buf)
{
	(void)h;
	sigemptyset(buf);
	return buf;
}

enum sigrestart_verdict sigrestart_settle(void)
{
	return SIGRESTART_PROGRAM;
}

void sigrestart_fixup(void *ucontext, int own)
{
	(void)ucontext;
	(void)own;
}

#endif

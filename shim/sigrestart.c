/*
 * sigrestart.c — see sigrestart.h.
 */
#include "sigrestart.h"

#if defined(__x86_64__) && defined(__linux__)

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
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

/* A pending, deliverable signal whose handler asks for EINTR. */
static bool sigrestart_wants_eintr(uint64_t blocked, int own)
{
	uint64_t pending = 0;

	if (sigrestart_syscall4(SYS_rt_sigpending, (long)&pending, 8, 0, 0) < 0)
		return false;
	pending &= ~blocked;
	if (own > 0)
		pending &= ~(1ull << (own - 1));
	while (pending) {
		int sig = __builtin_ctzll(pending) + 1;
		struct sigrestart_kaction ka;

		pending &= pending - 1;
		if (sigrestart_syscall4(SYS_rt_sigaction, sig, 0, (long)&ka, 8) < 0)
			continue;
		if (ka.handler != (uintptr_t)SIG_DFL &&
		    ka.handler != (uintptr_t)SIG_IGN &&
		    !(ka.flags & SA_RESTART))
			return true;
	}
	return false;
}

void sigrestart_fixup(void *ucontext, int own)
{
	ucontext_t *uc = ucontext;
	greg_t *g = uc->uc_mcontext.gregs;
	const unsigned char *ip = (const unsigned char *)g[REG_RIP];
	uint64_t blocked;

	/*
	 * A call set up to restart: the kernel moved the instruction pointer
	 * back onto the 2-byte `syscall` and put the call's number back in
	 * rax; rcx still holds the return address `syscall` saved, just past
	 * it. Code about to make a call has rcx free (it carries no argument),
	 * so this pattern is the kernel's and not the program's.
	 */
	if ((uint64_t)g[REG_RCX] != (uint64_t)g[REG_RIP] + 2 ||
	    ip[0] != 0x0f || ip[1] != 0x05 || !sigrestart_call_listed(g[REG_RAX]))
		return;
	/* The mask the interrupted code runs with, restored on return. */
	blocked = *(const uint64_t *)(const void *)&uc->uc_sigmask;
	if (!sigrestart_wants_eintr(blocked, own))
		return;
	g[REG_RAX] = -EINTR;
	g[REG_RIP] += 2;
}

#else

void sigrestart_fixup(void *ucontext, int own)
{
	(void)ucontext;
	(void)own;
}

#endif

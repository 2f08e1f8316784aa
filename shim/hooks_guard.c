/*
 * hooks_guard.c — the interposers that keep the sampler out of the
 * program's way, and the program out of the sampler's.
 *
 *   - sigaction, signal, setitimer: a program that takes SIGPROF for
 *     itself gets it, and the sampler stands aside;
 *   - sigtimedwait, sigwaitinfo: they wait with SIGPROF blocked;
 *   - pthread_create: a new thread learns its stack's bounds and, in
 *     continuous mode, arms its timer;
 *   - pipe2, syscall, dl_iterate_phdr, dlclose: libunwind and the loader,
 *     called from the signal handler, are kept from descriptors the program
 *     would see and from the loader's lock.
 * Each passes its call to libc unchanged otherwise, errno included.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hooks_wait.h"
#include "interposed.h"
#include "libc.h"
#include "modmap.h"
#include "snapshot.h"
#include "proc.h"
#include "sampler.h"
#include "unwind.h"

#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * The profiling signal is profshim's (sampler.h): a program that installs
 * a handler of its own for it gets the signal and the sampler moves to
 * another; its SIG_DFL and SIG_IGN are kept as what it reads back, and what
 * it reads back is never the sampler's handler. A vfork child runs in its
 * parent's memory and often resets every handler before exec; that is not
 * the parent's choice, so it changes nothing here.
 */
static bool hooks_is_profiling_signal(int sig)
{
	return UNLIKELY(proc_on) && sig > 0 && sig == sampler_signal() &&
	       (int)getpid() == proc_pid;
}

static const void *hooks_handler_of(const struct sigaction *sa)
{
	return sa->sa_flags & SA_SIGINFO ? (const void *)sa->sa_sigaction
					 : (const void *)sa->sa_handler;
}

/* SIG_DFL, SIG_IGN or the sampler's handler: kept as the program's view. */
static bool hooks_no_handler(const void *h)
{
	return h == (const void *)SIG_DFL || h == (const void *)SIG_IGN ||
	       sampler_is_own_handler(h);
}

/*
 * The program's handlers never block the profiling signal while they run:
 * a sample that lands in one is taken inside it, not held until it
 * returns and then taken where the handler returns to (just past the
 * system call it interrupted, where sigrestart.h would take the program's
 * EINTR for the profiling signal's). The program reads back the mask it
 * set: one bit per signal says it asked for the profiling signal.
 */
static atomic_uint_fast64_t hooks_asked_own;

static const struct sigaction *hooks_strip_own(int sig,
					       const struct sigaction *act,
					       struct sigaction *copy)
{
	int own = sampler_signal();
	uint64_t bit = 1ull << (sig - 1);

	if (!act || own <= 0 || hooks_no_handler(hooks_handler_of(act)))
		return act;
	if (sigismember(&act->sa_mask, own) != 1) {
		atomic_fetch_and(&hooks_asked_own, ~bit);
		return act;
	}
	atomic_fetch_or(&hooks_asked_own, bit);
	*copy = *act;
	sigdelset(&copy->sa_mask, own);
	return copy;
}

/* What the program reads back: the mask it set (`asked`: it had the
 * profiling signal in it). */
static void hooks_show_own(struct sigaction *old, bool asked)
{
	int own = sampler_signal();

	if (asked && own > 0 && !hooks_no_handler(hooks_handler_of(old)))
		sigaddset(&old->sa_mask, own);
}

HOOK int sigaction(int sig, const struct sigaction *act,
		   struct sigaction *old)
{
	struct sigaction copy;
	bool locked = false;
	int r;

	LIBC_RESOLVE(sigaction);
	if (hooks_is_profiling_signal(sig)) {
		const void *h = act ? hooks_handler_of(act) : NULL;

		if (!act || hooks_no_handler(h)) {
			sampler_view(sig,
				     !act || sampler_is_own_handler(h)
					     ? -1
					     : h == (const void *)SIG_IGN,
				     old);
			return 0;
		}
		sampler_move(sig);
	} else if (UNLIKELY(proc_on) && act && sampler_is_candidate(sig) &&
		   (int)getpid() == proc_pid) {
		sampler_lock_signals();
		locked = true;
	}
	if (UNLIKELY(proc_on) && sig > 0 && sig <= 64) {
		uint64_t asked = atomic_load(&hooks_asked_own);

		act = hooks_strip_own(sig, act, &copy);
		r = real_sigaction(sig, act, old);
		if (r == 0 && act)
			hooks_note_action(sig, act);
		if (r == 0 && old)
			hooks_show_own(old, asked >> (sig - 1) & 1);
		if (r != 0)
			atomic_store(&hooks_asked_own, asked);
	} else {
		r = real_sigaction(sig, act, old);
	}
	if (locked) {
		int saved = errno;

		sampler_unlock_signals();
		errno = saved;
	}
	if (r == 0 && old && sampler_is_own_handler(hooks_handler_of(old)))
		sampler_view(sig, -1, old);
	return r;
}

HOOK sighandler_t signal(int sig, sighandler_t handler)
{
	struct sigaction view;
	sighandler_t prev;
	bool locked = false;

	LIBC_RESOLVE(signal);
	if (handler != SIG_ERR && hooks_is_profiling_signal(sig)) {
		if (hooks_no_handler((const void *)handler)) {
			sampler_view(sig,
				     sampler_is_own_handler((const void *)handler)
					     ? -1
					     : handler == SIG_IGN,
				     &view);
			return view.sa_handler;
		}
		sampler_move(sig);
	} else if (UNLIKELY(proc_on) && handler != SIG_ERR &&
		   sampler_is_candidate(sig) && (int)getpid() == proc_pid) {
		sampler_lock_signals();
		locked = true;
	}
	prev = real_signal(sig, handler);
	if (prev != SIG_ERR && sig > 0 && sig <= 64) {
		struct sigaction now;

		/* glibc's signal() has BSD semantics: SA_RESTART. */
		memset(&now, 0, sizeof(now));
		now.sa_handler = handler;
		now.sa_flags = SA_RESTART;
		hooks_note_action(sig, &now);
	}
	if (locked) {
		int saved = errno;

		sampler_unlock_signals();
		errno = saved;
	}
	if (prev != SIG_ERR && sampler_is_own_handler((const void *)prev)) {
		sampler_view(sig, -1, &view);
		prev = view.sa_handler;
	}
	return prev;
}

/*
 * A thread that blocks the profiling signal is still sampled; it reads back
 * the mask it set (sampler_sigmask).
 */
HOOK int pthread_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	LIBC_RESOLVE(pthread_sigmask);
	/* The shim's own calls first, without a system call: libunwind
	 * masks signals around each of its locks, from the handler. */
	if (!proc_on || sampler_inside() || (int)getpid() != proc_pid)
		return real_pthread_sigmask(how, set, old);
	return sampler_sigmask(how, set, old);
}

HOOK int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	int r;

	LIBC_RESOLVE(sigprocmask);
	if (!proc_on || sampler_inside() || (int)getpid() != proc_pid)
		return real_sigprocmask(how, set, old);
	r = sampler_sigmask(how, set, old);
	if (r != 0) {
		errno = r;
		return -1;
	}
	return 0;
}

/*
 * libunwind opens a pipe when it initialises (and again if it finds it
 * closed), and tests that memory is readable before reading through frames
 * past the signal frame by writing one byte of it into the pipe with
 * syscall(SYS_write). Two descriptors the program did not open would show
 * in its fd table, which programs and test suites check. So a pipe asked
 * for from inside the shim is not created: libunwind gets two numbers no
 * descriptor can have (above the kernel's fd limit), and syscall() answers
 * for them: a read finds the pipe empty (EAGAIN), a write of one byte
 * succeeds if that byte is readable, tested with process_vm_readv on the
 * process itself, and fails with EFAULT otherwise. Async-signal-safe.
 */
#define HOOKS_FAKE_RD 0x7ffffff0
#define HOOKS_FAKE_WR 0x7ffffff1

static long hooks_fake_pipe(long nr, long fd, const void *addr)
{
	char byte;
	struct iovec local = {&byte, 1}, remote = {(void *)addr, 1};

	if (nr == SYS_read || fd == HOOKS_FAKE_RD) {
		errno = EAGAIN;
		return -1;
	}
	if (real_syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L,
			 &remote, 1L, 0L) == 1)
		return 1;
	errno = EFAULT;
	return -1;
}

HOOK long syscall(long nr, ...)
{
	va_list ap;
	long a1, a2, a3, a4, a5, a6;

	va_start(ap, nr);
	a1 = va_arg(ap, long);
	a2 = va_arg(ap, long);
	a3 = va_arg(ap, long);
	a4 = va_arg(ap, long);
	a5 = va_arg(ap, long);
	a6 = va_arg(ap, long);
	va_end(ap);
	LIBC_RESOLVE(syscall);
	if (UNLIKELY((nr == SYS_read || nr == SYS_write) &&
		     (a1 == HOOKS_FAKE_RD || a1 == HOOKS_FAKE_WR)))
		return hooks_fake_pipe(nr, a1, (const void *)a2);
	return real_syscall(nr, a1, a2, a3, a4, a5, a6);
}

HOOK int pipe2(int fds[2], int flags)
{
	LIBC_RESOLVE(pipe2);
	if (UNLIKELY(sampler_inside())) {
		fds[0] = HOOKS_FAKE_RD;
		fds[1] = HOOKS_FAKE_WR;
		return 0;
	}
	return real_pipe2(fds, flags);
}

/*
 * libunwind looks up unwind information through dl_iterate_phdr(), which
 * takes the dynamic loader's lock. Called from the signal handler, that can
 * deadlock (the interrupted thread holds malloc's lock, a thread in dlopen
 * holds the loader's and waits for malloc's). Calls made while the thread
 * is inside the shim — libunwind's, from the handler — are answered from a
 * snapshot taken outside the handler (snapshot.h); with no usable snapshot
 * they find nothing, and the stack ends there. Every other call passes
 * through. The shim's own modules never come here: they read the live
 * list through libc.h, so a snapshot is never taken from an older one.
 */
HOOK_EARLY int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
			 void *data)
{
	LIBC_RESOLVE(dl_iterate_phdr);
	if (UNLIKELY(sampler_inside())) {
		int r = snapshot_iterate(cb, data);

		return r < 0 ? 0 : r;
	}
	return real_dl_iterate_phdr(cb, data);
}

/*
 * dlclose may unmap an object the snapshot describes: the snapshot is
 * dropped first (samples meanwhile end at the first frame that needs a
 * lookup) and taken again after.
 */
HOOK int dlclose(void *handle)
{
	int r;

	LIBC_RESOLVE(dlclose);
	if (!proc_on)
		return real_dlclose(handle);
	snapshot_change_begin();
	snapshot_drop();
	r = real_dlclose(handle);
	{
		int saved = errno;

		/* Rules cached for the unmapped code would apply to
		 * whatever is mapped there next. */
		unwind_forget();
		snapshot_take();
		errno = saved;
	}
	snapshot_change_end();
	return r;
}

/* A program that arms ITIMER_PROF gets the SIGPROFs: the sampler moves. */
HOOK int setitimer(__itimer_which_t which, const struct itimerval *nv,
		   struct itimerval *old)
{
	LIBC_RESOLVE(setitimer);
	if (which == ITIMER_PROF && nv &&
	    (nv->it_value.tv_sec || nv->it_value.tv_usec) &&
	    hooks_is_profiling_signal(SIGPROF))
		sampler_move(SIGPROF);
	return real_setitimer(which, nv, old);
}

/*
 * sigtimedwait, sigwaitinfo and sigwait wait with the profiling signal
 * blocked, and never for it. The kernel never restarts the first two, so a
 * sample taken during the wait made it fail with EINTR; a caller that
 * retries with its remaining time, as CPython's signal.sigtimedwait does,
 * takes an EINTR that lands after its deadline for a received signal and
 * returns an unfilled siginfo (measured before this: 5% of 2 ms waits under
 * 1000 Hz wall-clock sampling). And a thread that waits for every signal
 * (Apache's signal thread: sigwait on a full set) would take the sampler's
 * signals for its own. A sample that falls due meanwhile stays pending and
 * is taken as the wait returns, so a thread parked here shows one sample
 * per wait, not one per tick: the threads that sit in these calls are a
 * program's signal-handling threads, not its request threads. With the
 * sampler off the call is made as asked. Costs two rt_sigprocmask calls;
 * allocates nothing, takes no lock, returns the call's errno.
 */
/* How many signals set holds. */
static int hooks_set_size(const sigset_t *set)
{
	int n = 0;

	for (int sig = 1; sig < NSIG; sig++)
		n += sigismember(set, sig) == 1;
	return n;
}

static bool hooks_wait_masks(const sigset_t *set, sigset_t *wait,
			     sigset_t *old)
{
	sigset_t prof;
	int sig = sampler_signal();

	if (!proc_on || !sig || !set || (int)getpid() != proc_pid)
		return false;
	/* A wait for a few signals, the profiling one among them, is the
	 * program's own use of it (a thread that sigwait()s for its
	 * ITIMER_PROF's ticks): it takes the signal, and the call is made as
	 * asked. A thread that waits for (nearly) every signal does not. */
	if (sigismember(set, sig) == 1 && hooks_set_size(set) < 8) {
		sampler_move(sig);
		return false;
	}
	*wait = *set;
	sigdelset(wait, sig);
	sigemptyset(&prof);
	sigaddset(&prof, sig);
	return libc_sigmask(SIG_BLOCK, &prof, old) == 0;
}

static void hooks_wait_unmask(const sigset_t *old)
{
	int saved = errno;

	(void)libc_sigmask(SIG_SETMASK, old, NULL);
	errno = saved;
}

static int hooks_sigwait(const sigset_t *set, siginfo_t *info,
			 const struct timespec *timeout)
{
	sigset_t wait, old;
	int r;

	LIBC_RESOLVE(sigtimedwait);
	if (!hooks_wait_masks(set, &wait, &old))
		return real_sigtimedwait(set, info, timeout);
	r = real_sigtimedwait(&wait, info, timeout);
	hooks_wait_unmask(&old);
	return r;
}

HOOK int sigtimedwait(const sigset_t *set, siginfo_t *info,
		      const struct timespec *timeout)
{
	return hooks_sigwait(set, info, timeout);
}

/* sigwaitinfo is sigtimedwait without a timeout (glibc makes it so too). */
HOOK int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	return hooks_sigwait(set, info, NULL);
}

/* sigwait is sigwaitinfo retried on EINTR, returning an error number (as
 * glibc makes it). */
HOOK int sigwait(const sigset_t *set, int *sig)
{
	sigset_t wait, old;
	siginfo_t si;
	int r;

	LIBC_RESOLVE(sigwait);
	LIBC_RESOLVE(sigtimedwait);
	if (!hooks_wait_masks(set, &wait, &old))
		return real_sigwait(set, sig);
	do
		r = real_sigtimedwait(&wait, &si, NULL);
	while (r < 0 && errno == EINTR);
	hooks_wait_unmask(&old);
	if (r < 0)
		return errno;
	*sig = r;
	return 0;
}

/*
 * A thread the program creates starts in hooks_thread_main(), which finds
 * its stack's bounds for the handler's fast walk and, in continuous mode,
 * arms its timer, then runs the program's routine. The routine and its
 * argument travel in a slot of a fixed pool, not in memory allocated here;
 * with every slot taken (more than HOOKS_STARTS threads starting at the
 * same instant) a thread starts unwrapped: it is walked with libunwind, and
 * in continuous mode not sampled.
 */
#define HOOKS_STARTS 1024

struct hooks_start {
	atomic_int used;
	void *(*fn)(void *);
	void *arg;
	size_t stack_size;
	int hidden; /* the creator's: a new thread inherits its mask */
};

static struct hooks_start hooks_starts[HOOKS_STARTS];
static atomic_uint hooks_starts_hint;

static void *hooks_thread_main(void *p)
{
	struct hooks_start *slot = p;
	void *(*fn)(void *) = slot->fn;
	void *arg = slot->arg;
	size_t size = slot->stack_size;

	sampler_mask_inherit(slot->hidden);
	atomic_store_explicit(&slot->used, 0, memory_order_release);
	sampler_thread_stack(size);
	sampler_thread_start();
	return fn(arg);
}

/* The stack size a thread created with `attr` gets. */
static size_t hooks_stack_size(const pthread_attr_t *attr)
{
	pthread_attr_t def;
	size_t size = 8u << 20;

	if (attr) {
		(void)pthread_attr_getstacksize(attr, &size);
	} else if (pthread_getattr_default_np(&def) == 0) {
		(void)pthread_attr_getstacksize(&def, &size);
		(void)pthread_attr_destroy(&def);
	}
	return size;
}

HOOK int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			void *(*fn)(void *), void *arg)
{
	struct hooks_start *slot = NULL;
	int r;

	LIBC_RESOLVE(pthread_create);
	if (!proc_on || !sampler_ready())
		return real_pthread_create(thread, attr, fn, arg);
	for (unsigned i = 0; i < HOOKS_STARTS && !slot; i++) {
		unsigned k = (atomic_fetch_add(&hooks_starts_hint, 1) + i) %
			     HOOKS_STARTS;
		int free_ = 0;

		if (atomic_compare_exchange_strong(&hooks_starts[k].used,
						   &free_, 1))
			slot = &hooks_starts[k];
	}
	if (!slot)
		return real_pthread_create(thread, attr, fn, arg);
	slot->fn = fn;
	slot->arg = arg;
	slot->stack_size = hooks_stack_size(attr);
	slot->hidden = sampler_mask_hidden();
	r = real_pthread_create(thread, attr, hooks_thread_main, slot);
	if (r != 0)
		atomic_store(&slot->used, 0);
	return r;
}

/*
 * sampler.c — per-thread clocks and timers, and the SIGPROF handler (see
 * sampler.h).
 */
#define UNW_LOCAL_ONLY
#include "libc.h"
#include "sampler.h"
#include "sigrestart.h"

#include <errno.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "cpuclock.h"
#include "modmap.h"
#include "snapshot.h"
#include "ring.h"
#include "ring_codec.h"
#include "selftext.h"
#include "unwind.h"

/* Frames are walked as uintptr_t and encoded as uint64_t: the same type on
 * the 64-bit targets the walker supports. */
_Static_assert(sizeof(uintptr_t) == sizeof(uint64_t), "64-bit addresses");

/* Frames of the handler itself (handler, unw_backtrace, the signal
 * trampoline) that unw_backtrace reports before the interrupted one. */
#define SAMPLER_SKIP_MAX 8
#define SAMPLER_TIMERS_MAX 16384
#define SAMPLER_STOPPED_MAX 4096

/* TIMER_* of struct sampler_thread.armed, also each timer's sigev_value:
 * the wall-clock rate timer or the manual one. (The CPU clock's POSIX
 * timer is CPUCLOCK_TIMER_VALUE.) */
enum { TIMER_WALL = 0, TIMER_MANUAL = 1 };
_Static_assert(CPUCLOCK_TIMER_VALUE != TIMER_WALL &&
		       CPUCLOCK_TIMER_VALUE != TIMER_MANUAL,
	       "the CPU timer's signals are told from the others");

__thread struct sampler_thread sampler_tls = {
	.armed = -1, .slots = {-1, -1}, .cpu = {.fd = -1, .slot = -1},
	.hidden_slot = -1,
};
int sampler_keep_for[3];
const int sampler_timer_for[4] = {
	[SAMPLER_SRC_NONE] = -1, [SAMPLER_SRC_CPU] = -1,
	[SAMPLER_SRC_WALL] = TIMER_WALL, [SAMPLER_SRC_MANUAL] = TIMER_MANUAL,
};

static struct env_config sampler_cfg;
/*
 * On a cache miss libunwind calls dl_iterate_phdr from the handler, which
 * waits for the dynamic loader's lock. If the thread holding it (inside
 * dlopen or dlclose) waits for a lock the interrupted thread holds, say
 * malloc's, that is a deadlock. glibc publishes loader activity in
 * _r_debug.r_state (RT_ADD, RT_DELETE while objects are added or removed);
 * the handler reads it without a lock and skips the sample unless it is
 * RT_CONSISTENT.
 */

static bool sampler_loader_busy(void)
{
	return __atomic_load_n(&_r_debug.r_state, __ATOMIC_ACQUIRE) !=
	       RT_CONSISTENT;
}
static _Atomic(struct ring_header *) sampler_ring;

/* The profiling signal (sampler.h), 0 when none. */
static atomic_int sampler_signo;
atomic_uint sampler_gen;
/* Signals the program took from the sampler or held at start-up (bit
 * s-1), never picked again; and those the program set (or found) at
 * SIG_IGN while the sampler's handler is installed on them. */
static _Atomic uint64_t sampler_taken;
static _Atomic uint64_t sampler_ign;
/* enum ring_aside once the sampler stood aside. */
static atomic_uint sampler_aside;
/* Held while the sampler moves to another signal (rare: a spin). */
static atomic_flag sampler_moving = ATOMIC_FLAG_INIT;

/*
 * Threads that hide a blocked profiling signal, so that a move can reach
 * them: tid | hidden signal << 32, written by the thread itself whenever
 * its t->hidden changes (slot t->hidden_slot; 0 is empty). With every slot
 * taken a thread is left out and fixes its mask at its next mask call or
 * sample instead.
 */
#define SAMPLER_HIDERS_MAX 4096
static _Atomic uint64_t sampler_hiders[SAMPLER_HIDERS_MAX];
static atomic_uint sampler_hiders_hint;
/* The sigqueue value of a move's fix-up signal (sampler_fix_others):
 * SAMPLER_FIX_MARK in the high 16 bits, the move's sequence number in the
 * low 16; how many of this move's are yet to be handled; and the
 * process' pid (a fix-up from another process is not one). */
#define SAMPLER_FIX_MARK 0x70f5
static atomic_uint sampler_fix_seq;
static atomic_int sampler_fix_pending;
static atomic_int sampler_pid;
/*
 * libunwind takes mutexes of its own. In a fork child, one may be held for
 * ever by a parent thread that was unwinding when the parent forked (a
 * stress run caught a child hung in its first libunwind call), so a fork
 * child never calls libunwind: samples the fast walker cannot take hold
 * the interrupted pc alone.
 */
static atomic_bool sampler_unwind_ok = true;
static atomic_bool sampler_on;
static pthread_key_t sampler_key;

/*
 * Every timer the shim created, so that standing aside can delete them all
 * from one thread (timer ids are process-wide). 0 is an empty slot.
 */
static _Atomic uintptr_t sampler_timers[SAMPLER_TIMERS_MAX];
static atomic_uint sampler_timers_hint;

/*
 * Requests completed by a thread other than the one serving them (one
 * thread reads a request, another writes the response). The serving
 * thread's handler finds its request here at its next tick and disarms its
 * own timer. Slots are overwritten freely: a lost entry only means the
 * serving thread keeps sampling until it touches another request.
 */
static _Atomic uint64_t sampler_stopped[SAMPLER_STOPPED_MAX];


/*
 * The slow path: libunwind's unw_backtrace() from the handler, through the
 * signal frame, for a thread whose stack bounds are unknown or whose stack
 * pointer is outside them (an alternate signal stack, a coroutine's
 * stack). libunwind checks every address it reads. Async-signal-safe.
 */
static int sampler_walk_slow(uintptr_t pc, uintptr_t *pcs, int max)
{
	void *ips[RING_MAX_FRAMES + SAMPLER_SKIP_MAX];
	int n, first = -1;

	n = unw_backtrace(ips, max + SAMPLER_SKIP_MAX);
	for (int i = 0; i < n && i < SAMPLER_SKIP_MAX; i++) {
		if ((uintptr_t)ips[i] == pc) {
			first = i;
			break;
		}
	}
	if (first < 0) {
		/* The interrupted frame was not found (no unwind info for the
		 * handler's callers): record the interrupted pc alone. */
		pcs[0] = pc;
		return 1;
	}
	n -= first;
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++)
		pcs[i] = (uintptr_t)ips[first + i];
	return n;
}

/*
 * Stack the sample path may use below the handler's frame: sampler_take()'s
 * buffers (4.7 KiB), then the slow path's own buffer and libunwind's
 * unw_backtrace(), with a lazy symbol binding in it the first time (which
 * saves the whole AVX-512 register state on the stack). Measured: 11.2 KiB
 * below the handler's frame on an AVX-512 machine, at depth 50 and 256
 * alike (the kernel's signal frame, 3 KiB more, is above it); the rest is
 * margin for other libunwind paths and larger register states.
 */
#define SAMPLER_STACK_NEED (32u * 1024)

/*
 * Whether the sample path fits on the stack the handler runs on. The
 * handler is installed without SA_ONSTACK, so it runs on the interrupted
 * stack; when that is the thread's alternate signal stack (the program's
 * own SA_ONSTACK handler was interrupted: CPython's handlers run on the
 * ~16 KiB alt stack faulthandler allocates), the little room left below the
 * program's frames would be overrun, silently, into whatever memory lies
 * below the alt stack (CPython's heap). The kernel saved the thread's alt
 * stack in uc_stack when it built the signal frame (sas_ss_sp/size, not
 * whether the thread is on it: that is told by the address). Bounded work,
 * no system call, async-signal-safe.
 */
static bool sampler_stack_room(const ucontext_t *uc, uintptr_t here)
{
	uintptr_t lo = (uintptr_t)uc->uc_stack.ss_sp;
	size_t size = uc->uc_stack.ss_size;

	if ((uc->uc_stack.ss_flags & SS_DISABLE) || !size ||
	    !(here > lo && here - lo <= size))
		return true; /* not on the alternate signal stack */
	return here - lo >= SAMPLER_STACK_NEED;
}

/* Take one sample of the interrupted context. Async-signal-safe. */
static void sampler_take(struct sampler_thread *t, struct ring_header *h,
			 const ucontext_t *uc)
{
	uintptr_t pcs[RING_MAX_FRAMES];
	uint8_t enc[RING_MAX_FRAMES * 10];
	struct unwind_regs regs = {
		.pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
		.sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
		.fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP],
	};
	int max = (int)sampler_cfg.max_depth, n = 0;
	enum unwind_end end = UNWIND_END_BOUNDS;
	size_t nbytes;
	uint32_t len;
	uint64_t pos;
	struct ring_sample *s;

	int shared = 0;

	if (max > RING_MAX_FRAMES)
		max = RING_MAX_FRAMES;
	/* The fast walk, unless the stack is unknown or the interrupted
	 * stack pointer is outside it. */
	if (t->stack.hi)
		n = unwind_walk(&regs, &t->stack, pcs, max, &end);
	if (n <= 1 && end == UNWIND_END_BOUNDS) {
		if (atomic_load_explicit(&sampler_unwind_ok,
					 memory_order_relaxed)) {
			n = sampler_walk_slow(regs.pc, pcs, max);
		} else {
			pcs[0] = regs.pc;
			n = 1;
		}
	}
	/* A wait the shim makes for the program's call shows as that call;
	 * the shim's own frames (a hook's, between the program's call and
	 * libc) are not the program's: left out. */
	if (__builtin_expect(sigrestart_tls.shown != 0, 0))
		n = selftext_show(pcs, n, sigrestart_tls.shown);
	n = selftext_strip(pcs, n);
	/* Root-side frames in common with this thread's previous sample. */
	if (t->since_key < RING_KEYFRAME_EVERY - 1)
		while (shared < n && shared < t->last_n &&
		       pcs[n - 1 - shared] == t->last[t->last_n - 1 - shared])
			shared++;
	nbytes = ring_codec_encode(enc, (const uint64_t *)pcs, n - shared);
	len = (uint32_t)RING_ALIGN_UP(sizeof(*s) + nbytes);
	s = (struct ring_sample *)ring_reserve(h, len, RING_REC_SAMPLE, 0,
					       &pos);
	if (!s) {
		/* The next sample must stand alone. */
		t->last_n = 0;
		ring_count(&h->dropped_samples, 1);
		return;
	}
	s->req_id = t->req_id;
	s->tid = (uint32_t)t->tid;
	s->endpoint = t->endpoint;
	s->time_ns = libc_now_ns();
	s->nframes = (uint16_t)n;
	s->nbytes = (uint16_t)nbytes;
	s->shared = (uint16_t)shared;
	s->serial = ++t->serial;
	memcpy(s + 1, enc, nbytes);
	ring_commit(&s->rec, pos);
	t->since_key = shared ? t->since_key + 1 : 0;
	memcpy(t->last, pcs, (size_t)n * sizeof(pcs[0]));
	t->last_n = (uint16_t)n;
	t->samples++;
}

/*
 * Which of the thread's sources sent signal si: a timer tells by its
 * sigev_value, the CPU clock's counter by its descriptor. SAMPLER_SRC_NONE
 * for a SIGPROF sent by a process (kill, raise: a benchmark does), which
 * counts for whatever the thread keeps. Async-signal-safe.
 */
static int sampler_source(const struct sampler_thread *t, const siginfo_t *si)
{
	if (si->si_code == SI_TIMER)
		switch (si->si_value.sival_int) {
		case TIMER_WALL:
			return SAMPLER_SRC_WALL;
		case TIMER_MANUAL:
			return SAMPLER_SRC_MANUAL;
		default:
			return SAMPLER_SRC_CPU;
		}
	return cpuclock_from(&t->cpu, si) ? SAMPLER_SRC_CPU : SAMPLER_SRC_NONE;
}

/*
 * t->hidden = sig, and the registry told (sampler_hiders): a thread not
 * in it yet takes a slot when `claim` (outside the handler: it sets the
 * key whose destructor empties the slot, which pthread_setspecific may
 * allocate for). From the thread itself; async-signal-safe without
 * `claim`.
 */
static void sampler_set_hidden(struct sampler_thread *t, int sig, bool claim)
{
	t->hidden = sig;
	if (!t->tid)
		return; /* a thread not seen yet registers at its first set */
	if (t->hidden_slot < 0 && sig && claim) {
		for (unsigned i = 0; i < SAMPLER_HIDERS_MAX; i++) {
			unsigned k = (atomic_fetch_add(&sampler_hiders_hint, 1) +
				      i) % SAMPLER_HIDERS_MAX;
			uint64_t empty = 0;

			if (atomic_compare_exchange_strong(
				    &sampler_hiders[k], &empty,
				    (uint32_t)t->tid | (uint64_t)sig << 32)) {
				t->hidden_slot = (int)k;
				/* Its exit empties the slot. */
				(void)pthread_setspecific(sampler_key,
							  (void *)1);
				return;
			}
		}
		return;
	}
	if (t->hidden_slot >= 0)
		atomic_store(&sampler_hiders[t->hidden_slot],
			     (uint32_t)t->tid | (uint64_t)(unsigned)sig << 32);
}

/*
 * A move's fix-up signal reached this thread: block the old profiling
 * signal it hid, as it asked, and make the new one deliverable if it
 * blocks it, both in the mask the kernel restores when the handler
 * returns. Async-signal-safe.
 */
static void sampler_fix_here(struct sampler_thread *t, ucontext_t *uc)
{
	int now = atomic_load_explicit(&sampler_signo, memory_order_relaxed);

	if (t->hidden && t->hidden != now) {
		sigaddset(&uc->uc_sigmask, t->hidden);
		sampler_set_hidden(t, 0, false);
	}
	if (now && sigismember(&uc->uc_sigmask, now) == 1) {
		sigdelset(&uc->uc_sigmask, now);
		sampler_set_hidden(t, now, false);
	}
}

static void sampler_handler(int sig, siginfo_t *si, void *ucv)
{
	int saved_errno = errno;
	struct sampler_thread *t = &sampler_tls;
	struct ring_header *h =
		atomic_load_explicit(&sampler_ring, memory_order_acquire);
	int src;

	(void)sig;
	/* A move's fix-up; or the program blocked a signal this thread was
	 * sampled with before the sampler moved off it: block it now, as
	 * the program asked, when the handler returns. */
	if (__builtin_expect(si->si_code == SI_QUEUE, 0) &&
	    (unsigned)si->si_value.sival_int >> 16 == SAMPLER_FIX_MARK &&
	    si->si_pid == atomic_load_explicit(&sampler_pid,
					       memory_order_relaxed)) {
		sampler_fix_here(t, ucv);
		if (((unsigned)si->si_value.sival_int & 0xffff) ==
		    (atomic_load(&sampler_fix_seq) & 0xffff))
			atomic_fetch_sub(&sampler_fix_pending, 1);
		goto out;
	}
	if (__builtin_expect(t->hidden != 0, 0) &&
	    t->hidden != atomic_load_explicit(&sampler_signo,
					      memory_order_relaxed))
		sampler_fix_here(t, ucv);
	/* A counter's first overflow sets its next period, kept or not: the
	 * first one is short (cpuclock_open). */
	if (__builtin_expect(t->cpu.first, 0) && !t->cpu.lost &&
	    cpuclock_from(&t->cpu, si))
		cpuclock_dither(&t->cpu, &t->rng);
	/* The usual signal that is not kept: a CPU clock's tick while the
	 * thread serves an unsampled request. */
	if (!h || !t->keep)
		goto out;
	src = sampler_source(t, si);
	if (src != SAMPLER_SRC_NONE && src != t->keep)
		goto out; /* a timer that raced with disarming, a CPU tick in
			     a ?profile=1 request */
	if (atomic_load_explicit(&sampler_stopped[t->req_id % SAMPLER_STOPPED_MAX],
				 memory_order_relaxed) == t->req_id) {
		/* Completed elsewhere. In continuous mode at the base rate,
		 * go on sampling outside any request; otherwise stop (a
		 * wall-clock timer is disarmed: timer_settime is
		 * async-signal-safe). */
		t->req_id = 0;
		t->endpoint = RING_ENDPOINT_NONE;
		if (t->keep != sampler_keep_for[SAMPLER_OFF]) {
			if (t->armed >= 0) {
				struct itimerspec zero;

				memset(&zero, 0, sizeof(zero));
				(void)timer_settime(t->timers[t->armed], 0,
						    &zero, NULL);
			}
			t->armed = -1;
			t->keep = SAMPLER_SRC_NONE;
			goto out;
		}
	}
	if (src == SAMPLER_SRC_CPU) {
		if (!cpuclock_keep(&t->cpu, &t->rng))
			goto out;
		cpuclock_kept(&t->cpu, &t->rng);
	}
	/* On an alternate signal stack too small for a walk: skipped, not
	 * overrun (see sampler_stack_room). */
	if (t->busy || sampler_loader_busy() ||
	    !sampler_stack_room(ucv, (uintptr_t)__builtin_frame_address(0)) ||
	    !snapshot_read_begin()) {
		ring_count(&h->skipped_samples, 1);
		goto out;
	}
	t->busy = 1;
	atomic_signal_fence(memory_order_seq_cst);
	sampler_take(t, h, ucv);
	atomic_signal_fence(memory_order_seq_cst);
	t->busy = 0;
	snapshot_read_end();
out:
	sigrestart_fixup(ucv, atomic_load_explicit(&sampler_signo,
						   memory_order_relaxed));
	errno = saved_errno;
}

bool sampler_is_own_handler(const void *handler)
{
	return handler == (const void *)sampler_handler;
}

static void sampler_unregister(struct sampler_thread *t)
{
	for (int k = 0; k < 2; k++) {
		if (!t->created[k])
			continue;
		if (t->slots[k] >= 0) {
			uintptr_t want = (uintptr_t)t->timers[k] + 1;

			/* Only delete it if stand-aside has not already. */
			if (atomic_compare_exchange_strong(
				    &sampler_timers[t->slots[k]], &want, 0))
				(void)timer_delete(t->timers[k]);
		}
		t->created[k] = false;
		t->slots[k] = -1;
	}
	t->armed = -1;
	t->keep = SAMPLER_SRC_NONE;
}

/* pthread key destructor: a thread that created timers or a CPU clock is
 * exiting. */
static void sampler_thread_exit(void *arg)
{
	struct sampler_thread *t = &sampler_tls;

	(void)arg;
	t->busy++;
	atomic_signal_fence(memory_order_seq_cst);
	sampler_unregister(t);
	cpuclock_close(&t->cpu);
	if (t->hidden_slot >= 0)
		atomic_store(&sampler_hiders[t->hidden_slot], 0);
	t->hidden_slot = -1;
	atomic_signal_fence(memory_order_seq_cst);
	t->busy--;
}

static void sampler_publish(struct ring_header *h);

/*
 * Delete every wall-clock timer of the process, from any thread (timer ids
 * are process-wide): whoever empties a registry slot deletes its timer,
 * once (sampler_unregister agrees through the same slot).
 */
static void sampler_sweep_timers(void)
{
	for (int i = 0; i < SAMPLER_TIMERS_MAX; i++) {
		uintptr_t v = atomic_exchange(&sampler_timers[i], 0);

		if (v)
			(void)timer_delete((timer_t)(v - 1));
	}
}

/* True when the program leaves `sig` to whoever wants it: SIG_DFL or
 * SIG_IGN, or the sampler's own handler. */
static bool sampler_free(int sig)
{
	struct sigaction old;
	const void *h;

	if (libc_sigaction(sig, NULL, &old) < 0)
		return false;
	h = old.sa_flags & SA_SIGINFO ? (const void *)old.sa_sigaction
				      : (const void *)old.sa_handler;
	if (h == (const void *)SIG_IGN)
		atomic_fetch_or(&sampler_ign, 1ull << (sig - 1));
	return h == (const void *)SIG_DFL || h == (const void *)SIG_IGN ||
	       h == (const void *)sampler_handler;
}

/*
 * The first signal the program leaves free (sampler.h), 0 when none: the
 * way async-profiler picks one, SIGPROF first, then signals nothing in
 * libc or the kernel sends on its own. SIGPROF is not free while an
 * ITIMER_PROF timer runs (one survives exec).
 */
static int sampler_pick(void)
{
	int cands[2 + 64], n = 0;
	uint64_t taken = atomic_load(&sampler_taken);

	cands[n++] = SIGPROF;
	cands[n++] = SIGSTKFLT;
	for (int sig = SIGRTMAX; sig >= SIGRTMIN + 8; sig--)
		cands[n++] = sig;
	for (int i = 0; i < n; i++) {
		int sig = cands[i];

		if (taken & (1ull << (sig - 1)))
			continue;
		if (sig == SIGPROF) {
			struct itimerval it;

			if (getitimer(ITIMER_PROF, &it) == 0 &&
			    (it.it_value.tv_sec || it.it_value.tv_usec)) {
				atomic_fetch_or(&sampler_taken,
						1ull << (sig - 1));
				continue;
			}
		}
		if (sampler_free(sig))
			return sig;
		atomic_fetch_or(&sampler_taken, 1ull << (sig - 1));
	}
	return 0;
}

/* Install the handler on `sig`. Returns 0 or -errno. */
static int sampler_install(int sig)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = sampler_handler;
	sa.sa_flags = SA_RESTART | SA_SIGINFO;
	/* Asynchronous signals wait while the handler runs, so that one
	 * arriving meanwhile is seen by sigrestart_fixup(). Signals a fault
	 * raises stay deliverable: blocked, the kernel would kill the process
	 * instead of running the program's handler. */
	sigfillset(&sa.sa_mask);
	sigdelset(&sa.sa_mask, SIGSEGV);
	sigdelset(&sa.sa_mask, SIGBUS);
	sigdelset(&sa.sa_mask, SIGILL);
	sigdelset(&sa.sa_mask, SIGFPE);
	sigdelset(&sa.sa_mask, SIGTRAP);
	sigdelset(&sa.sa_mask, SIGSYS);
	if (libc_sigaction(sig, &sa, NULL) < 0)
		return -errno;
	return 0;
}

/*
 * The calling thread's mask after the profiling signal became `sig`: a
 * signal it blocked that the sampler kept deliverable is blocked now, and
 * `sig`, if the thread blocks it, is made deliverable and remembered as
 * blocked for what the thread reads back.
 */
static void sampler_fix_mask(struct sampler_thread *t, int sig)
{
	sigset_t one, cur;

	if (t->hidden && t->hidden != sig) {
		sigemptyset(&one);
		sigaddset(&one, t->hidden);
		(void)libc_sigmask(SIG_BLOCK, &one, NULL);
		sampler_set_hidden(t, 0, true);
	}
	if (sig && libc_sigmask(SIG_BLOCK, NULL, &cur) == 0 &&
	    sigismember(&cur, sig) == 1) {
		sigemptyset(&one);
		sigaddset(&one, sig);
		if (libc_sigmask(SIG_UNBLOCK, &one, NULL) == 0)
			sampler_set_hidden(t, sig, true);
	}
}

int sampler_init(const struct env_config *cfg)
{
	int sig, r;

	sampler_cfg = *cfg;
	sampler_keep_for[SAMPLER_RATE] = cfg->clock == RING_CLOCK_WALL
						 ? SAMPLER_SRC_WALL
						 : SAMPLER_SRC_CPU;
	sampler_keep_for[SAMPLER_MANUAL] = SAMPLER_SRC_MANUAL;
	sampler_keep_for[SAMPLER_OFF] = cfg->mode == RING_MODE_CONTINUOUS
						? sampler_keep_for[SAMPLER_RATE]
						: SAMPLER_SRC_NONE;
	cpuclock_init(cfg->hz, cfg->cpu_engine);
	sig = sampler_pick();
	if (!sig) {
		atomic_store(&sampler_aside, RING_ASIDE_NO_SIGNAL);
		libc_write_stderr("profshim: the program holds SIGPROF and every "
			      "other signal profshim could sample with; "
			      "profshim times requests but takes no stack "
			      "samples in this process\n");
		return -EBUSY;
	}
	/* libunwind initialises itself on first use; with the thread marked
	 * as inside the shim, the pipe it opens for memory validation is
	 * moved out of the program's way (pipe2 in hooks.c). */
	sampler_tls.busy++;
	/* libunwind is the slow path (threads of unknown stack). No DWARF
	 * state cache: with the global one it takes a mutex in the handler
	 * on a miss (Debian builds it without per-thread caches, and asking
	 * for them gives the global one). */
	(void)unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
	sampler_tls.busy--;
	/* The fast walker's rule cache, and the main thread's stack (the
	 * constructor runs on it). */
	if (unwind_init() < 0 || unwind_stack_main(&sampler_tls.stack) < 0)
		sampler_tls.stack.hi = 0;
	if (pthread_key_create(&sampler_key, sampler_thread_exit) != 0 ||
	    (r = sampler_install(sig)) < 0) {
		atomic_store(&sampler_aside, RING_ASIDE_INIT);
		return -EAGAIN;
	}
	atomic_store(&sampler_signo, sig);
	atomic_store(&sampler_pid, (int)getpid());
	/* A mask inherited across exec may block it. */
	sampler_tls.tid = libc_gettid();
	sampler_fix_mask(&sampler_tls, sig);
	atomic_store(&sampler_on, true);
	return 0;
}

int sampler_signal(void)
{
	return atomic_load_explicit(&sampler_signo, memory_order_relaxed);
}

void sampler_view(int sig, int ign, struct sigaction *old)
{
	uint64_t bit = 1ull << (sig - 1);

	if (old) {
		memset(old, 0, sizeof(*old));
		old->sa_handler =
			atomic_load(&sampler_ign) & bit ? SIG_IGN : SIG_DFL;
	}
	if (ign == 1)
		atomic_fetch_or(&sampler_ign, bit);
	else if (ign == 0)
		atomic_fetch_and(&sampler_ign, ~bit);
}

int sampler_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	struct sampler_thread *t = &sampler_tls;
	int sig = sampler_signal(), was, now, r;
	sigset_t pass;

	/* The shim's own calls (libunwind masks every signal around its
	 * locks, from the handler too, where the mask holds the profiling
	 * signal) are made as asked and change nothing the thread reads. */
	if (t->busy)
		return libc_sigmask(how, set, old);
	if (t->hidden && t->hidden != sig)
		sampler_fix_mask(t, sig);
	if (!sig)
		return libc_sigmask(how, set, old);
	was = now = t->hidden == sig;
	if (set) {
		pass = *set;
		if (sigismember(set, sig) == 1) {
			sigdelset(&pass, sig);
			if (how == SIG_BLOCK || how == SIG_SETMASK)
				now = 1;
			else if (how == SIG_UNBLOCK)
				now = 0;
		} else if (how == SIG_SETMASK) {
			now = 0;
		}
	}
	r = libc_sigmask(how, set ? &pass : NULL, old);
	if (r != 0)
		return r;
	if (old && was)
		sigaddset(old, sig);
	if (!t->tid)
		t->tid = libc_gettid();
	if (t->hidden != (now ? sig : 0))
		sampler_set_hidden(t, now ? sig : 0, true);
	/* A move meanwhile (it read this thread's entry before it changed):
	 * fix the mask here. */
	if (t->hidden && t->hidden != sampler_signal())
		sampler_fix_mask(t, sampler_signal());
	return 0;
}

void sampler_mask_inherit(int hidden)
{
	struct sampler_thread *t = &sampler_tls;

	t->tid = libc_gettid();
	if (hidden)
		sampler_set_hidden(t, hidden, true);
	if (t->hidden != sampler_signal())
		sampler_fix_mask(t, sampler_signal());
}

/*
 * The sampler moved off `old`: every other thread that hides it blocked
 * gets one fix-up signal of `old` (still the sampler's handler's until the
 * program takes it) and fixes its own mask (sampler_fix_here); wait for
 * them, at most 50 ms, so that none lets the program's signal in where
 * the program blocked it. A thread gone meanwhile is skipped.
 */
static void sampler_fix_others(int old)
{
	int pid = (int)getpid(), self = sampler_tls.tid;
	unsigned seq = (atomic_fetch_add(&sampler_fix_seq, 1) + 1) & 0xffff;
	struct timespec nap = {0, 100000};

	atomic_store(&sampler_fix_pending, 0);
	for (unsigned i = 0; i < SAMPLER_HIDERS_MAX; i++) {
		uint64_t v = atomic_load(&sampler_hiders[i]);
		int tid = (int)(uint32_t)v;
		siginfo_t si;

		if (!v || (int)(v >> 32) != old || tid == self)
			continue;
		memset(&si, 0, sizeof(si));
		si.si_signo = old;
		si.si_code = SI_QUEUE;
		si.si_pid = pid;
		si.si_uid = getuid();
		si.si_value.sival_int = (int)(SAMPLER_FIX_MARK << 16 | seq);
		atomic_fetch_add(&sampler_fix_pending, 1);
		if (libc_tgsigqueueinfo(pid, tid, old, &si) < 0)
			atomic_fetch_sub(&sampler_fix_pending, 1);
	}
	for (int i = 0; i < 500 && atomic_load(&sampler_fix_pending) > 0; i++)
		(void)libc_nanosleep(&nap, NULL);
}

void sampler_move(int sig)
{
	struct sampler_thread *t = &sampler_tls;
	struct sigaction view;
	int next, saved_errno = errno;

	sampler_lock_signals();
	if (sig != sampler_signal())
		goto out; /* another thread moved first */
	t->busy++;
	atomic_signal_fence(memory_order_seq_cst);
	atomic_fetch_or(&sampler_taken, 1ull << (sig - 1));
	next = sampler_pick();
	if (next && sampler_install(next) < 0)
		next = 0;
	if (!next)
		sampler_stand_aside(RING_ASIDE_NO_SIGNAL,
				    "the program took SIGPROF and every other "
				    "signal profshim could sample with");
	/* Timers cannot change their signal: every one made so far is
	 * deleted, before the new signal is published, so that none made
	 * for it is (a thread that read the old signal and makes a timer
	 * after this sweep has an old gen, and makes it again at its next
	 * request). Counters send the new signal from now on. */
	sampler_sweep_timers();
	cpuclock_retarget(next);
	atomic_store(&sampler_signo, next);
	atomic_fetch_add(&sampler_gen, 1);
	if (!t->tid)
		t->tid = libc_gettid();
	sampler_fix_mask(t, next);
	sampler_fix_others(sig);
	/* The program's view of `sig` is installed; a handler of its own, if
	 * that is what it is setting, replaces it next. */
	sampler_view(sig, -1, &view);
	(void)libc_sigaction(sig, &view, NULL);
	atomic_signal_fence(memory_order_seq_cst);
	t->busy--;
	sampler_publish(atomic_load(&sampler_ring));
out:
	sampler_unlock_signals();
	errno = saved_errno;
}

void sampler_lock_signals(void)
{
	while (atomic_flag_test_and_set(&sampler_moving))
		sched_yield();
}

void sampler_unlock_signals(void)
{
	atomic_flag_clear(&sampler_moving);
}

bool sampler_is_candidate(int sig)
{
	return sig == SIGPROF || sig == SIGSTKFLT ||
	       (sig >= SIGRTMIN + 8 && sig <= SIGRTMAX);
}

bool sampler_ready(void)
{
	return atomic_load_explicit(&sampler_on, memory_order_relaxed);
}

/*
 * Copy the state of the process' CPU clocks into ring h's header, for the
 * collector to say how samples were taken.
 */
static void sampler_publish(struct ring_header *h)
{
	uint32_t engine, hz, error, tick;

	if (!h)
		return;
	cpuclock_state(&engine, &hz, &error, &tick);
	atomic_store_explicit((_Atomic uint32_t *)&h->sig_signo,
			      (uint32_t)sampler_signal(), memory_order_relaxed);
	atomic_store_explicit((_Atomic uint32_t *)&h->sig_aside,
			      atomic_load(&sampler_aside), memory_order_relaxed);
	atomic_store_explicit((_Atomic uint64_t *)&h->sig_taken,
			      atomic_load(&sampler_taken), memory_order_relaxed);
	atomic_store_explicit((_Atomic uint32_t *)&h->sig_state,
			      atomic_load(&sampler_aside) ? RING_SAMPLING_ASIDE
							  : RING_SAMPLING_ON,
			      memory_order_release);
	atomic_store_explicit((_Atomic uint32_t *)&h->cpu_hz, hz,
			      memory_order_relaxed);
	atomic_store_explicit((_Atomic uint32_t *)&h->cpu_error, error,
			      memory_order_relaxed);
	atomic_store_explicit((_Atomic uint32_t *)&h->tick_hz, tick,
			      memory_order_relaxed);
	atomic_store_explicit((_Atomic uint32_t *)&h->cpu_engine, engine,
			      memory_order_release);
}

void sampler_attach(struct ring_header *h)
{
	sampler_publish(h);
	atomic_store_explicit(&sampler_ring, h, memory_order_release);
}

/*
 * What every thread does once before its first signal: learn its id,
 * register the key whose destructor releases its timers and clock, and
 * warm libunwind's per-thread cache (its first use may allocate: never in
 * the handler).
 */
static void sampler_thread_once(struct sampler_thread *t)
{
	void *warm[4];

	if (!t->tid)
		t->tid = libc_gettid();
	if (!t->rng)
		t->rng = (uint64_t)t->tid * 0x9e3779b97f4a7c15ull + 1;
	(void)pthread_setspecific(sampler_key, (void *)1);
	if (atomic_load(&sampler_unwind_ok))
		(void)unw_backtrace(warm, 4);
}

/*
 * Set up the calling thread's CPU clock (again, if the program closed its
 * descriptor), and tell the collector what it is.
 */
static void sampler_cpu_open(struct sampler_thread *t)
{
	if (t->cpu.lost)
		cpuclock_close(&t->cpu);
	sampler_thread_once(t);
	(void)cpuclock_open(&t->cpu, t->tid, sampler_signal(), &t->rng);
	sampler_publish(atomic_load(&sampler_ring));
}

static int sampler_create_timer(struct sampler_thread *t, int k)
{
	struct sigevent sev;

	if (t->created[k])
		return 0;
	sampler_thread_once(t);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = sampler_signal();
	sev.sigev_value.sival_int = k;
	sev._sigev_un._tid = t->tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t->timers[k]) < 0)
		return -errno;
	t->created[k] = true;
	t->slots[k] = -1;
	t->left[k].tv_sec = t->left[k].tv_nsec = 0;
	for (int i = 0; i < SAMPLER_TIMERS_MAX; i++) {
		unsigned idx = (atomic_fetch_add(&sampler_timers_hint, 1) + (unsigned)i) %
			       SAMPLER_TIMERS_MAX;
		uintptr_t empty = 0;

		if (atomic_compare_exchange_strong(
			    &sampler_timers[idx], &empty,
			    (uintptr_t)t->timers[k] + 1)) {
			t->slots[k] = (int)idx;
			break;
		}
	}
	if (t->slots[k] < 0) {
		/* Every slot taken: a timer standing aside could not delete
		 * is one it must not create. This thread is not sampled. */
		(void)timer_delete(t->timers[k]);
		t->created[k] = false;
		return -ENOSPC;
	}
	return 0;
}

/*
 * Arm wall-clock timer k (or none, k < 0) on this thread. A timer keeps its
 * phase across requests: disarming saves the time left to its next tick,
 * arming resumes from there. Otherwise a request shorter than one period
 * would never be sampled, however many of them a thread serves; this way
 * samples stay proportional to the time spent in sampled requests. A
 * timer's first arming starts at a random phase.
 */
static void sampler_arm(struct sampler_thread *t, int k, unsigned hz)
{
	struct itimerspec its, old;
	long period = 1000000000L / (long)(hz ? hz : 1);

	if (t->armed >= 0 && t->armed != k) {
		memset(&its, 0, sizeof(its));
		if (timer_settime(t->timers[t->armed], 0, &its, &old) == 0)
			t->left[t->armed] = old.it_value;
		t->armed = -1;
	}
	if (k < 0 || t->armed == k)
		return;
	memset(&its, 0, sizeof(its));
	its.it_interval.tv_sec = period / 1000000000L;
	its.it_interval.tv_nsec = period % 1000000000L;
	its.it_value = t->left[k];
	if ((its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) ||
	    its.it_value.tv_sec * 1000000000L + its.it_value.tv_nsec > period) {
		uint64_t x = cpuclock_random(&t->rng);

		its.it_value.tv_sec = 0;
		its.it_value.tv_nsec = 1 + (long)(x % (uint64_t)period);
		if (its.it_value.tv_nsec >= 1000000000L)
			its.it_value.tv_nsec = 999999999L;
	}
	if (timer_settime(t->timers[k], 0, &its, NULL) == 0)
		t->armed = k;
}

/*
 * Point the calling thread's sampling at (req_id, endpoint), keeping the
 * signals of source `keep` (enum sampler_src): set up the thread's CPU
 * clock if that is the source and it has none yet, arm the wall-clock
 * timer the source needs and disarm any other. The case with nothing of
 * that to do is sampler_set() in sampler.h.
 */
void sampler_set_timers(struct sampler_thread *t, uint64_t req_id,
			uint32_t endpoint, int keep)
{
	int k;

	t->busy++;
	atomic_signal_fence(memory_order_seq_cst);
	t->req_id = req_id;
	t->endpoint = endpoint;
	if (t->gen != atomic_load(&sampler_gen)) {
		/* The sampler moved to another signal: the timers made for
		 * the old one were deleted (sampler_move), and the clock is
		 * made again to send the new one. */
		t->gen = atomic_load(&sampler_gen);
		sampler_unregister(t);
		if (t->cpu.engine != RING_ENGINE_NONE &&
		    t->cpu.signo != sampler_signal())
			cpuclock_close(&t->cpu);
	}
	if (!sampler_ready() || !sampler_signal())
		keep = SAMPLER_SRC_NONE;
	if (keep == SAMPLER_SRC_CPU &&
	    (t->cpu.engine == RING_ENGINE_NONE || t->cpu.lost))
		sampler_cpu_open(t);
	k = sampler_timer_for[keep];
	if (k >= 0 && sampler_create_timer(t, k) < 0) {
		keep = SAMPLER_SRC_NONE;
		k = -1;
	}
	t->keep = keep;
	sampler_arm(t, k, k == TIMER_MANUAL ? sampler_cfg.manual_hz
					    : sampler_cfg.hz);
	/* Standing aside may have swept the registries between the check
	 * above and the arming: look again, and take this thread's timers
	 * back if so (sampler_unregister and the sweep agree through the
	 * registry slot who deletes). */
	if (!atomic_load(&sampler_on)) {
		t->keep = SAMPLER_SRC_NONE;
		sampler_unregister(t);
		cpuclock_close(&t->cpu);
	}
	atomic_signal_fence(memory_order_seq_cst);
	t->busy--;
}

void sampler_thread_stack(uintptr_t size)
{
	struct sampler_thread *t = &sampler_tls;

	t->busy++;
	atomic_signal_fence(memory_order_seq_cst);
	if (unwind_stack_thread(size, &t->stack) < 0)
		t->stack.hi = 0;
	atomic_signal_fence(memory_order_seq_cst);
	t->busy--;
}

void sampler_thread_start(void)
{
	if (sampler_cfg.mode == RING_MODE_CONTINUOUS)
		sampler_set(&sampler_tls, 0, RING_ENDPOINT_NONE, SAMPLER_OFF);
}

void sampler_stop(uint64_t req_id)
{
	atomic_store_explicit(&sampler_stopped[req_id % SAMPLER_STOPPED_MAX],
			      req_id, memory_order_relaxed);
}

void sampler_fork_child(void)
{
	struct sampler_thread *t = &sampler_tls;

	atomic_store(&sampler_unwind_ok, false);
	/* Timers are not inherited by a child; the registry and the ring
	 * belong to the parent. */
	for (int i = 0; i < SAMPLER_TIMERS_MAX; i++)
		atomic_store(&sampler_timers[i], 0);
	t->created[0] = t->created[1] = false;
	t->slots[0] = t->slots[1] = -1;
	t->armed = -1;
	t->keep = SAMPLER_SRC_NONE;
	cpuclock_fork_child(&t->cpu);
	t->req_id = 0;
	t->last_n = 0; /* the child's ring starts with a standalone sample */
	atomic_store(&sampler_ring, NULL);
	/* The parent's other threads are not the child's: a move the parent
	 * was making is not this one's, and only this thread hides. */
	atomic_flag_clear(&sampler_moving);
	atomic_store(&sampler_fix_pending, 0);
	atomic_store(&sampler_pid, (int)getpid());
	for (int i = 0; i < SAMPLER_HIDERS_MAX; i++)
		atomic_store(&sampler_hiders[i], 0);
	t->hidden_slot = -1;
	t->tid = libc_gettid();
	if (t->hidden)
		sampler_set_hidden(t, t->hidden, true);
	t->tid = 0;
}

void sampler_stand_aside(int why, const char *text)
{
	bool was = atomic_exchange(&sampler_on, false);

	if (!was)
		return;
	atomic_store(&sampler_aside, (unsigned)why);
	sampler_publish(atomic_load(&sampler_ring));
	cpuclock_stop_all();
	sampler_sweep_timers();
	libc_write_stderr("profshim: ");
	libc_write_stderr(text);
	libc_write_stderr("; profshim times requests but takes no more stack "
		      "samples in this process\n");
}

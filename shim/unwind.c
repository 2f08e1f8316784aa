/*
 * unwind.c — stack walking from .eh_frame in the signal handler (see
 * unwind.h). Everything here is async-signal-safe except unwind_init().
 */
#include "unwind.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "modmap.h"
#include "snapshot.h"

#include "cfi.h"

/* ---- the rule cache --------------------------------------------------- */

/*
 * Direct-mapped, 2^15 slots of 16 bytes (512 KiB of address space, touched
 * as used). A slot's tag holds the address (47 bits), a generation (16
 * bits) and a lock bit: a writer takes the lock with a compare-and-swap or
 * gives up, writes the rule, and publishes tag = address | generation + 1.
 * A reader loads the tag, the rule, and the tag again; an unchanged,
 * unlocked tag with its address means the rule is that address' rule.
 */
#define CACHE_BITS 15
#define CACHE_SLOTS (1u << CACHE_BITS)
#define TAG_PC 0x00007fffffffffffull
#define TAG_GEN_ONE (1ull << 47)
#define TAG_GEN (0xffffull << 47)
#define TAG_LOCK (1ull << 63)

struct cache_slot {
	_Atomic uint64_t tag;
	_Atomic uint64_t rule;
};

static struct cache_slot *unwind_cache;
static _Atomic uint64_t unwind_misses, unwind_uncached;

static struct cache_slot *cache_slot(uintptr_t key)
{
	return &unwind_cache[((uint64_t)key * 0x9e3779b97f4a7c15ull) >>
			     (64 - CACHE_BITS)];
}

static bool cache_get(uintptr_t key, uint64_t *rule)
{
	struct cache_slot *s = cache_slot(key);
	uint64_t t = atomic_load_explicit(&s->tag, memory_order_acquire);
	uint64_t r;

	if ((t & (TAG_LOCK | TAG_PC)) != key)
		return false;
	r = atomic_load_explicit(&s->rule, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	if (atomic_load_explicit(&s->tag, memory_order_relaxed) != t)
		return false;
	*rule = r;
	return true;
}

static void cache_put(uintptr_t key, uint64_t rule)
{
	struct cache_slot *s = cache_slot(key);
	uint64_t t = atomic_load_explicit(&s->tag, memory_order_relaxed);

	if ((t & TAG_LOCK) ||
	    !atomic_compare_exchange_strong_explicit(&s->tag, &t, t | TAG_LOCK,
						     memory_order_acquire,
						     memory_order_relaxed)) {
		atomic_fetch_add_explicit(&unwind_uncached, 1,
					  memory_order_relaxed);
		return;
	}
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->rule, rule, memory_order_relaxed);
	atomic_store_explicit(&s->tag,
			      key | ((t + TAG_GEN_ONE) & TAG_GEN),
			      memory_order_release);
}

int unwind_init(void)
{
	void *p;

	if (unwind_cache)
		return 0;
	p = mmap(NULL, CACHE_SLOTS * sizeof(struct cache_slot),
		 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS |
		 MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	unwind_cache = p;
	return 0;
}

void unwind_forget(void)
{
	if (!unwind_cache)
		return;
	/* Store only where something is cached: pages never used stay
	 * unbacked. */
	for (unsigned i = 0; i < CACHE_SLOTS; i++)
		if (atomic_load_explicit(&unwind_cache[i].tag,
					 memory_order_relaxed))
			atomic_store_explicit(&unwind_cache[i].tag, 0,
					      memory_order_relaxed);
}

void unwind_stats_get(struct unwind_stats *out)
{
	out->misses = atomic_load(&unwind_misses);
	out->uncached = atomic_load(&unwind_uncached);
}

static uint64_t unwind_rule(uintptr_t key)
{
	uint64_t rule;
	bool keep;

	if (key == 0 || key > TAG_PC)
		return RULE_NOINFO;
	if (unwind_cache && cache_get(key, &rule))
		return rule;
	rule = cfi_rule(key, &keep);
	atomic_fetch_add_explicit(&unwind_misses, 1, memory_order_relaxed);
	if (unwind_cache && keep)
		cache_put(key, rule);
	return rule;
}

/* ---- the walk ----------------------------------------------------------- */

/*
 * One frame by the frame-pointer chain, for code the tables do not cover:
 * code in no loaded object (JIT compilers' output: V8's, the JVM's,
 * LuaJIT's, CPython's perf trampolines) or in an object without an FDE for
 * it (V8's builtins embedded in the node binary). Such code keeps rbp as a
 * frame pointer: the frame's rbp points at the caller's saved rbp, with
 * the return address above it, and the caller's stack pointer after the
 * return is rbp + 16. *fp is this frame's rbp: at the interrupted frame,
 * the interrupted rbp; further up, what the previous step restored.
 *
 * Code that does not keep rbp so gives any value there, so the frame is
 * followed only when its chain is plausible: rbp inside the stack, at or
 * above the frame's stack pointer (a frame is above the frames it called,
 * and each step moves the stack pointer past the frame it leaves, so a
 * chain followed by this alone strictly increases), 8-byte aligned, and a
 * return address that can be a user-space code address. Reads stay inside
 * [sp, st->hi). Returns false, changing nothing, when it is not plausible.
 *
 * A sample that lands in such code before its frame is set up (a
 * function's first instructions, before push rbp; mov rbp, rsp) or after
 * it is torn down sees its caller's rbp: the walk then leaves out that
 * caller and goes on from the caller's caller, as every frame-pointer
 * walker does.
 */
__attribute__((no_sanitize_address))
static bool unwind_fp_step(const struct unwind_stack *st, uintptr_t *pc,
			   uintptr_t *sp, uintptr_t *fp)
{
	uintptr_t f = *fp, ra;

	if (f < *sp || f > st->hi - 16 || (f & 7))
		return false;
	ra = ((const uintptr_t *)f)[1];
	if (ra != 0 && (ra < 4096 || ra > TAG_PC))
		return false;
	*pc = ra;
	*fp = ((const uintptr_t *)f)[0];
	*sp = f + 16;
	return true;
}

/*
 * The walk reads a thread's stack between sp and its top, which holds the
 * frames of functions still running and the dead ones below them: memory
 * AddressSanitizer poisons (redzones, out-of-scope locals) in a sanitizer
 * build. Those reads are the point of an unwinder and stay within the
 * bounds checked here, so the walk is not instrumented.
 */
__attribute__((no_sanitize_address))
static int unwind_run(const struct unwind_regs *regs,
		      const struct unwind_stack *st, uintptr_t *pcs, int max,
		      enum unwind_end *end, uintptr_t *last_sp)
{
	uintptr_t pc = regs->pc, sp = regs->sp, fp = regs->fp;
	int n = 0;

	*last_sp = sp;
	if (max <= 0) {
		*end = UNWIND_END_DEPTH;
		return 0;
	}
	pcs[n++] = pc;
	if (sp < st->lo || sp >= st->hi) {
		*end = UNWIND_END_BOUNDS;
		return n;
	}
	for (;;) {
		uint64_t rule;
		uintptr_t cfa;

		if (n >= max) {
			*end = UNWIND_END_DEPTH;
			break;
		}
		/* A return address is one past the call: look up the call. */
		rule = unwind_rule(n == 1 ? pc : pc - 1);
		switch (rule_kind(rule)) {
		case RULE_CFA_RSP:
			cfa = sp + (intptr_t)rule_cfa_off(rule);
			break;
		case RULE_CFA_RBP:
			cfa = fp + (intptr_t)rule_cfa_off(rule);
			break;
		case RULE_OUTERMOST:
			*end = UNWIND_END_OUTERMOST;
			return n;
		case RULE_UNSUPPORTED:
			*end = UNWIND_END_UNSUPPORTED;
			return n;
		default:
			/* No tables for this code: its frame pointer, if
			 * it keeps one (JIT code). */
			if (!unwind_fp_step(st, &pc, &sp, &fp)) {
				*end = UNWIND_END_NOINFO;
				return n;
			}
			goto next;
		}
		/* The return address is at cfa - 8, above the frame. A real
		 * CFA is 8-byte aligned; one that is not comes from a
		 * register holding something else. */
		if (cfa < sp + 8 || cfa > st->hi || (cfa & 7)) {
			*end = UNWIND_END_BOUNDS;
			return n;
		}
		pc = *(const uintptr_t *)(cfa - 8);
		if (rule & RULE_RBP_SAVED) {
			uintptr_t at = cfa + (intptr_t)rule_rbp_off(rule);

			if (at < sp || at > st->hi - 8 || (at & 7)) {
				*end = UNWIND_END_BOUNDS;
				return n;
			}
			fp = *(const uintptr_t *)at;
		}
		sp = cfa;
next:
		*last_sp = sp;
		if (pc == 0) {
			*end = UNWIND_END_OUTERMOST;
			return n;
		}
		pcs[n++] = pc;
	}
	return n;
}

int unwind_walk(const struct unwind_regs *r, const struct unwind_stack *st,
		uintptr_t *pcs, int max, enum unwind_end *end)
{
	uintptr_t last;

	return unwind_run(r, st, pcs, max, end, &last);
}

#define PAGE_END(a) (((a) | 4095u) + 1)

/* Where the process' first thread started: the address of argc. */
extern void *__libc_stack_end;

int unwind_stack_main(struct unwind_stack *st)
{
	struct rlimit rl;
	uintptr_t size = 8u << 20;

	if (!__libc_stack_end)
		return -ENOENT;
	if (getrlimit(RLIMIT_STACK, &rl) == 0)
		size = rl.rlim_cur == RLIM_INFINITY ? (uintptr_t)1 << 30
						    : (uintptr_t)rl.rlim_cur;
	st->hi = PAGE_END((uintptr_t)__libc_stack_end);
	st->lo = st->hi > size ? st->hi - size : 0;
	return 0;
}

__attribute__((noinline)) int unwind_stack_thread(uintptr_t size,
						  struct unwind_stack *st)
{
	struct unwind_regs r;
	struct unwind_stack probe;
	uintptr_t pcs[128], top;
	enum unwind_end end;

	__asm__ volatile("lea 0(%%rip), %0\n\t"
			 "mov %%rsp, %1\n\t"
			 "mov %%rbp, %2"
			 : "=r"(r.pc), "=r"(r.sp), "=r"(r.fp));
	probe.lo = r.sp;
	probe.hi = r.sp + size;
	if (!snapshot_read_begin())
		return -ENOENT;
	(void)unwind_run(&r, &probe, pcs, 128, &end, &top);
	snapshot_read_end();
	if (end != UNWIND_END_OUTERMOST)
		return -ENOENT;
	st->hi = PAGE_END(top - 1);
	st->lo = st->hi > size ? st->hi - size : 0;
	return 0;
}

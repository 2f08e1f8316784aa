/*
 * unwind.h — walking the interrupted thread's stack in the signal handler,
 * from the program's own unwind tables (.eh_frame), at a cost close to
 * walking frame pointers.
 *
 * On x86-64 a frame is unwound with three rules, all from the call frame
 * information (CFI) the compilers emit for every function: where the
 * caller's stack pointer was (the CFA, an offset from rsp or rbp), where the
 * return address is (CFA - 8), and where rbp was saved, if it was. The first
 * time the walk meets an address, it finds the function's FDE through the
 * object's .eh_frame_hdr search table and runs its CFA program up to that
 * address (bounded work); the rule is then kept in a cache shared by all
 * threads, lock-free (a seqlock per slot; a writer that finds a slot busy
 * simply does not cache). A walk over known code costs a hash, two loads and
 * a compare per frame.
 *
 * Reads are checked: stack reads stay inside the thread's stack
 * (struct unwind_stack), table reads inside the object's loaded segment
 * that holds them, and tables are read only between snapshot_read_begin() and
 * snapshot_read_end() so that dlclose cannot unmap them meanwhile.
 *
 * Code without unwind tables (JIT compilers' output in anonymous memory:
 * V8, the JVM, LuaJIT, CPython's perf trampolines; V8's builtins embedded
 * in the node binary) is walked by its frame pointers, as long as the
 * chain is plausible (rbp inside the stack, above the frame's stack
 * pointer, aligned, the return address a user-space address); the tables
 * take over again at the first frame in code they cover. So a sample in
 * node's JavaScript goes on through the JIT frames to node's own C++
 * frames and the thread's start.
 *
 * The walk stops, and says why, at the outermost frame (the return address
 * is undefined, as in _start and clone), at code without unwind tables
 * whose frame chain is not plausible, at rules it does not model (CFA
 * expressions other than the PLT's: signal trampolines, stack
 * realignment), at a read outside the stack, or at the depth limit.
 */
#ifndef PROFSHIM_UNWIND_H
#define PROFSHIM_UNWIND_H

#include <stdint.h>

/* The interrupted thread's stack: every stack read is in [lo, hi). */
struct unwind_stack {
	uintptr_t lo, hi;
};

/* The registers a walk starts from. */
struct unwind_regs {
	uintptr_t pc, sp, fp;
};

enum unwind_end {
	UNWIND_END_OUTERMOST = 0, /* reached the first frame of the thread */
	UNWIND_END_DEPTH,         /* max frames recorded */
	UNWIND_END_NOINFO,        /* no tables, no plausible frame pointer */
	UNWIND_END_UNSUPPORTED,   /* a rule the walk does not model */
	UNWIND_END_BOUNDS,        /* a read would leave the stack */
};

/*
 * Map the rule cache. Call once, before the first walk, outside any signal
 * handler. Returns 0 or a negative errno; without it, unwind_walk() returns
 * just the first frame.
 */
int unwind_init(void);

/*
 * Walk from `r`, storing at most `max` return addresses (the interrupted pc
 * first, then each caller's return address) in pcs. Returns the number
 * stored (at least 1 when max > 0) and the reason the walk ended in *end.
 * Async-signal-safe, lock-free, bounded; the caller holds
 * snapshot_read_begin().
 */
int unwind_walk(const struct unwind_regs *r, const struct unwind_stack *st,
		uintptr_t *pcs, int max, enum unwind_end *end);

/*
 * Forget every cached rule: objects were unmapped, and new ones may be
 * mapped at the same addresses. The caller makes sure no walk is running
 * (inside snapshot_change_begin()).
 */
void unwind_forget(void);

/*
 * The calling thread's stack, for its walks. For the main thread, from
 * where the process started (__libc_stack_end) and RLIMIT_STACK. For
 * another thread of `size` bytes of stack, by walking from the caller to
 * the thread's outermost frame (start_thread, clone): the top is the page
 * end above the highest address that walk read. Both round the top up to
 * its page's end only, so every address below it, down to the interrupted
 * stack pointer, is mapped. Return 0 or -ENOENT (the walk did not reach
 * the outermost frame; the thread then has no bounds). Called at a
 * thread's start, not in the handler; they make no system call except
 * getrlimit and never allocate.
 */
int unwind_stack_main(struct unwind_stack *st);
int unwind_stack_thread(uintptr_t size, struct unwind_stack *st);

/*
 * Rules computed from the tables so far (cache misses), and computed but
 * not cached (the slot was busy): for tests and the benchmark.
 */
struct unwind_stats {
	uint64_t misses, uncached;
};
void unwind_stats_get(struct unwind_stats *out);

#endif /* PROFSHIM_UNWIND_H */

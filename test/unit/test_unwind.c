/*
 * test_unwind.c — the handler's stack walker (shim/unwind.h) against
 * libunwind's, on real stacks of this program (built -O2 without frame
 * pointers, like the servers it profiles):
 *
 *   from a SIGPROF handler, deep recursion and through libc (a qsort
 *   comparison callback), on the main thread and on created threads: the
 *   same frames as libunwind's unw_backtrace(), down to the outermost frame;
 *   a second walk of a known stack computes no rule (the cache);
 *   unwind_forget() empties it;
 *   hostile registers (random pc, sp, fp) never crash, stop inside bounds;
 *   four threads mixing hostile walks (evicting and racing on cache slots)
 *   with real ones, checked against libunwind every time.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "check.h"
#include "modmap.h"
#include "snapshot.h"
#include "unwind.h"

#define MAX_FRAMES 256

/* The registers of the point where this is written, for a walk from it. */
#define HERE(r)                                                           \
	__asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2" \
			 : "=r"((r).pc), "=r"((r).sp), "=r"((r).fp))

/* What the handler saw: our walk, libunwind's, and how they compare. */
struct seen {
	uintptr_t ours[MAX_FRAMES];
	int n_ours;
	enum unwind_end end;
	void *theirs[MAX_FRAMES];
	int n_theirs;
	int first; /* index of the interrupted pc in theirs, or -1 */
	uint64_t misses;
};

static __thread struct unwind_stack tls_stack;
static __thread struct seen *tls_seen;

static void on_sigprof(int sig, siginfo_t *si, void *ucv)
{
	const ucontext_t *uc = ucv;
	struct seen *s = tls_seen;
	struct unwind_regs r = {
		.pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
		.sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
		.fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP],
	};
	struct unwind_stats before, after;

	(void)sig;
	(void)si;
	if (!s)
		return;
	unwind_stats_get(&before);
	if (snapshot_read_begin()) {
		s->n_ours = unwind_walk(&r, &tls_stack, s->ours, MAX_FRAMES,
					&s->end);
		snapshot_read_end();
	}
	unwind_stats_get(&after);
	s->misses = after.misses - before.misses;
	s->n_theirs = unw_backtrace(s->theirs, MAX_FRAMES);
	s->first = -1;
	for (int i = 0; i < s->n_theirs; i++) {
		if ((uintptr_t)s->theirs[i] == r.pc) {
			s->first = i;
			break;
		}
	}
}

/* Our frames equal libunwind's from the interrupted pc on. */
static int seen_agree(const struct seen *s)
{
	if (s->first < 0 || s->n_ours != s->n_theirs - s->first)
		return 0;
	for (int i = 0; i < s->n_ours; i++)
		if (s->ours[i] != (uintptr_t)s->theirs[s->first + i])
			return 0;
	return 1;
}

static void seen_print(const struct seen *s)
{
	printf("# ours (%d, end %d):", s->n_ours, (int)s->end);
	for (int i = 0; i < s->n_ours; i++)
		printf(" %lx", (unsigned long)s->ours[i]);
	printf("\n# libunwind (%d, first %d):", s->n_theirs, s->first);
	for (int i = 0; i < s->n_theirs; i++)
		printf(" %lx", (unsigned long)(uintptr_t)s->theirs[i]);
	printf("\n");
}

static volatile unsigned long sink;

/* Recursion with varied frames: some functions keep locals on the stack,
 * some save callee-saved registers, none keep a frame pointer. */
__attribute__((noinline)) static unsigned long deep_a(int depth);

__attribute__((noinline)) static unsigned long deep_b(int depth)
{
	volatile char pad[72];

	pad[depth % 72] = (char)depth;
	if (depth <= 0) {
		raise(SIGPROF);
		return pad[0];
	}
	return deep_a(depth - 1) + pad[depth % 72];
}

__attribute__((noinline)) static unsigned long deep_a(int depth)
{
	unsigned long x = sink, y = sink * 3, z = sink + 7;

	if (depth <= 0) {
		raise(SIGPROF);
		return x;
	}
	x += deep_b(depth - 1);
	sink = x + y + z;
	return x * y + z;
}

static int cmp_raising(const void *a, const void *b)
{
	static __thread int once;

	if (!once++)
		raise(SIGPROF);
	return (int)(*(const int *)a - *(const int *)b);
}

__attribute__((noinline)) static void through_qsort(void)
{
	int v[8] = {5, 3, 7, 1, 2, 8, 4, 6};

	qsort(v, 8, sizeof(v[0]), cmp_raising);
	sink += (unsigned long)v[0];
}

static void install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigprof;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGPROF, &sa, NULL);
}

static void test_main_thread_deep(void)
{
	static struct seen s;
	int depths[] = {0, 1, 5, 20, 50, 100};

	CHECK_EQ(unwind_stack_main(&tls_stack), 0);
	tls_seen = &s;
	for (unsigned i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		memset(&s, 0, sizeof(s));
		sink += deep_a(depths[i]);
		CHECK(seen_agree(&s));
		CHECK_EQ(s.end, UNWIND_END_OUTERMOST);
		CHECK(s.n_ours >= depths[i] + 3);
		if (!seen_agree(&s))
			seen_print(&s);
	}
	/* The same stack again (the same call site too): every rule comes
	 * from the cache. */
	for (int round = 0; round < 2; round++) {
		memset(&s, 0, sizeof(s));
		sink += deep_a(50);
		CHECK(seen_agree(&s));
	}
	CHECK_EQ(s.misses, 0);
	tls_seen = NULL;
}

static void test_through_libc(void)
{
	static struct seen s;

	CHECK_EQ(unwind_stack_main(&tls_stack), 0);
	tls_seen = &s;
	memset(&s, 0, sizeof(s));
	through_qsort();
	CHECK(seen_agree(&s));
	CHECK_EQ(s.end, UNWIND_END_OUTERMOST);
	if (!seen_agree(&s))
		seen_print(&s);
	tls_seen = NULL;
}

/* A walk stops at the number of frames asked for. */
static void test_depth_limit(void)
{
	struct unwind_stack st;
	uintptr_t pcs[2];
	enum unwind_end end;
	struct unwind_regs r;

	CHECK_EQ(unwind_stack_main(&st), 0);
	HERE(r);
	CHECK(snapshot_read_begin());
	CHECK_EQ(unwind_walk(&r, &st, pcs, 2, &end), 2);
	CHECK_EQ(end, UNWIND_END_DEPTH);
	CHECK_EQ(unwind_walk(&r, &st, pcs, 0, &end), 0);
	snapshot_read_end();
}

static void test_forget(void)
{
	static struct seen s;

	CHECK_EQ(unwind_stack_main(&tls_stack), 0);
	tls_seen = &s;
	for (int round = 0; round < 3; round++) {
		memset(&s, 0, sizeof(s));
		sink += deep_a(10);
		CHECK(seen_agree(&s));
		if (round == 1) {
			CHECK_EQ(s.misses, 0);
			unwind_forget();
		} else if (round == 2) {
			CHECK(s.misses >= 4); /* raise, deep_a, deep_b, callers */
		}
	}
	tls_seen = NULL;
}

/* A stack outside the thread's bounds (an alternate signal stack, a
 * coroutine's) ends the walk at once. */
static void test_outside_stack(void)
{
	struct unwind_stack st = {.lo = 0x10000, .hi = 0x20000};
	struct unwind_regs r;
	uintptr_t pcs[8];
	enum unwind_end end;

	HERE(r);
	CHECK(snapshot_read_begin());
	CHECK_EQ(unwind_walk(&r, &st, pcs, 8, &end), 1);
	CHECK_EQ(end, UNWIND_END_BOUNDS);
	CHECK_EQ(pcs[0], r.pc);
	snapshot_read_end();
}

/* Random registers: pcs in this program's and libc's code and anywhere,
 * stack pointers inside the stack, frame pointers anywhere. */
static int hostile_walks(const struct unwind_stack *st, int rounds)
{
	uintptr_t code[] = {(uintptr_t)deep_a, (uintptr_t)qsort,
			    (uintptr_t)memcpy, (uintptr_t)unw_backtrace};
	int bad = 0;

	for (int i = 0; i < rounds; i++) {
		uint64_t x = rng_next(), y = rng_next();
		struct unwind_regs r;
		uintptr_t pcs[64];
		enum unwind_end end;
		int n;

		r.pc = (x & 3) == 3 ? (uintptr_t)y
				    : code[x & 3] + (uintptr_t)(y % 65536) -
					      32768;
		r.sp = st->lo + (uintptr_t)((x >> 8) % (st->hi - st->lo));
		r.sp = (x >> 40) & 1 ? r.sp & ~(uintptr_t)7 : r.sp;
		r.fp = (x >> 41) & 1 ? r.sp + (uintptr_t)(y >> 48)
				     : (uintptr_t)rng_next();
		if (!snapshot_read_begin())
			continue;
		n = unwind_walk(&r, st, pcs, 64, &end);
		snapshot_read_end();
		if (n < 1 || n > 64 || pcs[0] != r.pc)
			bad++;
	}
	return bad;
}

static void test_hostile_registers(void)
{
	struct unwind_stack st;
	uintptr_t sp;

	CHECK_EQ(unwind_stack_main(&st), 0);
	/* Only the part of the stack this function's callers use is
	 * initialised memory: start at the current stack pointer. */
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
	st.lo = sp;
	rng_state = 42;
	CHECK_EQ(hostile_walks(&st, 200000), 0);
}

struct worker {
	int id;
	int disagree;
	int walks;
	int hostile_bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct seen *s = calloc(1, sizeof(*s));
	struct unwind_stack here;
	uintptr_t sp;

	if (unwind_stack_thread(8u << 20, &tls_stack) < 0) {
		w->disagree = -1;
		free(s);
		return NULL;
	}
	tls_seen = s;
	for (int i = 0; i < 400; i++) {
		memset(s, 0, sizeof(*s));
		sink += deep_a(i % 60);
		w->walks++;
		if (!seen_agree(s) || s->end != UNWIND_END_OUTERMOST) {
			if (!w->disagree)
				seen_print(s);
			w->disagree++;
		}
		__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
		here.lo = sp;
		here.hi = tls_stack.hi;
		w->hostile_bad += hostile_walks(&here, 500);
	}
	tls_seen = NULL;
	free(s);
	return NULL;
}

static void test_threads_concurrent(void)
{
	pthread_t th[4];
	struct worker w[4];

	memset(w, 0, sizeof(w));
	for (int i = 0; i < 4; i++) {
		w[i].id = i;
		CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(w[i].disagree, 0);
		CHECK_EQ(w[i].walks, 400);
		CHECK_EQ(w[i].hostile_bad, 0);
	}
}

int main(void)
{
	/* libunwind, used here as the reference, looks objects up with
	 * dl_iterate_phdr; the walker under test uses the snapshot. */
	snapshot_take();
	CHECK_EQ(unwind_init(), 0);
	install_handler();
	RUN(test_main_thread_deep);
	RUN(test_through_libc);
	RUN(test_depth_limit);
	RUN(test_forget);
	RUN(test_outside_stack);
	RUN(test_hostile_registers);
	RUN(test_threads_concurrent);
	return check_done();
}

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
 *   with real ones, checked against libunwind every time;
 *   code in anonymous memory that keeps a frame pointer (what a JIT
 *   compiler writes): walked through, from a frame above it and from a
 *   signal that lands in it, to the outermost frame, as libunwind does;
 *   the rule in a PLT stub (the linker's CFA expression), at each of its
 *   instructions, in this program's .plt;
 *   selftext_strip() (what the handler does with a walk before writing
 *   it): the own object's frames left out (here this program's, in the
 *   shim libprofshim.so's), the others kept in order.
 */
#define UNW_LOCAL_ONLY
#include <elf.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "cfi.h"
#include "check.h"
#include "modmap.h"
#include "selftext.h"
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

/* ---- code without unwind tables: a JIT's ------------------------------- */

/*
 * Two functions written as a JIT compiler writes them, into anonymous
 * executable memory (no object, no unwind tables), both keeping rbp as a
 * frame pointer:
 *
 *   jit_call(fn, arg):  push rbp; mov rbp, rsp; mov rax, rdi;
 *                       mov rdi, rsi; call rax; pop rbp; ret
 *   jit_signal():       push rbp; mov rbp, rsp; push rbx;
 *                       tgkill(getpid(), gettid(), SIGPROF) by syscall;
 *                       pop rbx; pop rbp; ret
 *
 * jit_signal's signal is delivered when its system call returns, so the
 * interrupted pc is in it.
 */
static const uint8_t jit_call_code[] = {
	0x55, 0x48, 0x89, 0xe5,             /* push rbp; mov rbp, rsp */
	0x48, 0x89, 0xf8,                   /* mov rax, rdi */
	0x48, 0x89, 0xf7,                   /* mov rdi, rsi */
	0xff, 0xd0,                         /* call rax */
	0x5d, 0xc3,                         /* pop rbp; ret */
};
static const uint8_t jit_signal_code[] = {
	0x55, 0x48, 0x89, 0xe5, 0x53,       /* push rbp; mov rbp, rsp; push rbx */
	0xb8, SYS_getpid, 0, 0, 0, 0x0f, 0x05, /* mov eax, getpid; syscall */
	0x89, 0xc3,                         /* mov ebx, eax */
	0xb8, SYS_gettid, 0, 0, 0, 0x0f, 0x05, /* mov eax, gettid; syscall */
	0x89, 0xc6,                         /* mov esi, eax */
	0x89, 0xdf,                         /* mov edi, ebx */
	0xba, SIGPROF, 0, 0, 0,             /* mov edx, SIGPROF */
	0xb8, SYS_tgkill, 0, 0, 0, 0x0f, 0x05, /* mov eax, tgkill; syscall */
	0x5b, 0x5d, 0xc3,                   /* pop rbx; pop rbp; ret */
};

static uint8_t *jit_mem;
static unsigned long (*jit_call)(unsigned long (*)(unsigned long),
				 unsigned long);
static void (*jit_signal)(void);

static int jit_setup(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return -1;
	memcpy(p, jit_call_code, sizeof(jit_call_code));
	memcpy((uint8_t *)p + 64, jit_signal_code, sizeof(jit_signal_code));
	if (mprotect(p, 4096, PROT_READ | PROT_EXEC) < 0)
		return -1;
	jit_mem = p;
	jit_call = (unsigned long (*)(unsigned long (*)(unsigned long),
				      unsigned long))p;
	jit_signal = (void (*)(void))((uint8_t *)p + 64);
	return 0;
}

static int in_jit(uintptr_t pc)
{
	return jit_mem && pc >= (uintptr_t)jit_mem &&
	       pc < (uintptr_t)jit_mem + 4096;
}

/* Called from JIT code: a function with unwind tables, no frame pointer. */
__attribute__((noinline)) static unsigned long from_jit(unsigned long depth)
{
	return deep_a((int)depth) + 1;
}

__attribute__((noinline)) static unsigned long into_jit(int depth)
{
	unsigned long r = jit_call(from_jit, (unsigned long)depth);

	sink += r;
	return r;
}

/* The frames of our walk in JIT code, and that it reached the end. */
static void check_through_jit(const struct seen *s, int want_jit, int leaf)
{
	int jit = 0;

	for (int i = 0; i < s->n_ours; i++)
		jit += in_jit(s->ours[i]);
	CHECK_EQ(jit, want_jit);
	CHECK_EQ(s->end, UNWIND_END_OUTERMOST);
	if (leaf)
		CHECK(s->n_ours > 0 && in_jit(s->ours[0]));
	/* libunwind follows the frame pointer in code it has no tables for
	 * too: the same frames. */
	CHECK(seen_agree(s));
	if (jit != want_jit || s->end != UNWIND_END_OUTERMOST ||
	    !seen_agree(s))
		seen_print(s);
}

/* A walk that meets a JIT frame above the interrupted one goes through it,
 * by its frame pointer, to the C frames above and the outermost frame. */
static void test_through_jit_frame(void)
{
	static struct seen s;

	CHECK_EQ(unwind_stack_main(&tls_stack), 0);
	tls_seen = &s;
	for (int depth = 0; depth < 30; depth += 7) {
		memset(&s, 0, sizeof(s));
		sink += into_jit(depth);
		check_through_jit(&s, 1, 0);
	}
	tls_seen = NULL;
}

__attribute__((noinline)) static unsigned long jit_leaf_b(void)
{
	jit_signal();
	return sink + 1;
}

/* Called by JIT code, calls JIT code that is interrupted. */
__attribute__((noinline)) static unsigned long jit_leaf_a(unsigned long x)
{
	unsigned long r = jit_leaf_b() + x;

	sink += r;
	return r;
}

/* A signal that lands in JIT code: the interrupted frame is the JIT
 * function's, its rbp the frame's own. Walked through two JIT frames. */
static void test_leaf_in_jit(void)
{
	static struct seen s;

	CHECK_EQ(unwind_stack_main(&tls_stack), 0);
	tls_seen = &s;
	for (int round = 0; round < 3; round++) {
		memset(&s, 0, sizeof(s));
		sink += jit_call(jit_leaf_a, (unsigned long)round);
		check_through_jit(&s, 2, 1);
	}
	tls_seen = NULL;
}

/* A JIT frame whose chain is not plausible (rbp below the stack pointer,
 * outside the stack, misaligned) ends the walk there: one frame. */
static void test_jit_implausible_chain(void)
{
	struct unwind_stack st;
	struct unwind_regs r;
	uintptr_t pcs[8], bad[3];
	enum unwind_end end;

	CHECK_EQ(unwind_stack_main(&st), 0);
	HERE(r);
	bad[0] = r.sp - 64;
	bad[1] = st.hi + 4096;
	bad[2] = r.sp + 12;
	r.pc = (uintptr_t)jit_mem + 70;
	CHECK(snapshot_read_begin());
	for (int i = 0; i < 3; i++) {
		r.fp = bad[i];
		CHECK_EQ(unwind_walk(&r, &st, pcs, 8, &end), 1);
		CHECK_EQ(end, UNWIND_END_NOINFO);
	}
	snapshot_read_end();
}

/* ---- PLT stubs ----------------------------------------------------------- */

struct plt_find {
	uintptr_t bias;
	int found;
};

static int plt_exe(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct plt_find *f = arg;

	(void)size;
	if (f->found)
		return 1;
	f->bias = info->dlpi_addr; /* the first object is the program */
	f->found = 1;
	return 1;
}

/* This program's .plt, from its section headers: 0 when it has none. */
static uintptr_t plt_section(size_t *size)
{
	struct plt_find f = {0};
	Elf64_Ehdr eh;
	Elf64_Shdr sh[64], *strs;
	char names[4096];
	uintptr_t at = 0;
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);

	dl_iterate_phdr(plt_exe, &f);
	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) != sizeof(eh) || eh.e_shnum > 64 ||
	    eh.e_shstrndx >= eh.e_shnum ||
	    pread(fd, sh, eh.e_shnum * sizeof(sh[0]), (off_t)eh.e_shoff) !=
		    (ssize_t)(eh.e_shnum * sizeof(sh[0])))
		goto out;
	strs = &sh[eh.e_shstrndx];
	memset(names, 0, sizeof(names));
	if (pread(fd, names, strs->sh_size < sizeof(names) - 1
				     ? strs->sh_size
				     : sizeof(names) - 1,
		  (off_t)strs->sh_offset) < 0)
		goto out;
	for (int i = 0; i < eh.e_shnum; i++) {
		if (sh[i].sh_name < sizeof(names) &&
		    strcmp(names + sh[i].sh_name, ".plt") == 0) {
			at = f.bias + sh[i].sh_addr;
			*size = sh[i].sh_size;
		}
	}
out:
	close(fd);
	return at;
}

/* A sample in a PLT stub (a call into a shared library on its way) is
 * walked: the rule at each instruction of each entry is the linker's CFA
 * expression evaluated there. */
static void test_plt_rule(void)
{
	size_t size = 0;
	uintptr_t plt = plt_section(&size);
	bool keep;
	uint64_t r;

	CHECK(plt != 0 && size >= 32);
	if (!plt)
		return;
	CHECK(snapshot_read_begin());
	/* The first entry pushes the GOT's second word, then jumps. */
	r = cfi_rule(plt, &keep);
	CHECK_EQ(rule_kind(r), RULE_CFA_RSP);
	CHECK_EQ(rule_cfa_off(r), 16);
	r = cfi_rule(plt + 6, &keep);
	CHECK_EQ(rule_cfa_off(r), 24);
	/* The others: jmp *GOT (6 bytes), push $n (5), jmp to the first. */
	for (uintptr_t e = plt + 16; e + 16 <= plt + size; e += 16) {
		r = cfi_rule(e, &keep);
		CHECK_EQ(rule_kind(r), RULE_CFA_RSP);
		CHECK_EQ(rule_cfa_off(r), 8);
		CHECK_EQ(rule_cfa_off(cfi_rule(e + 6, &keep)), 8);
		r = cfi_rule(e + 11, &keep);
		CHECK_EQ(rule_kind(r), RULE_CFA_RSP);
		CHECK_EQ(rule_cfa_off(r), 16);
		CHECK(keep);
	}
	snapshot_read_end();
}

/* ---- the own object's frames --------------------------------------------- */

static void test_selftext_strip(void)
{
	uintptr_t lo, hi, own = (uintptr_t)test_selftext_strip + 4;
	uintptr_t libc_a = (uintptr_t)memcpy, libc_b = (uintptr_t)qsort;
	uintptr_t pcs[6];

	selftext_bounds(&lo, &hi);
	CHECK(lo < hi && own >= lo && own < hi);
	CHECK(libc_a < lo || libc_a >= hi);
	/* libc called by an own function called by libc (a hook's frame
	 * between the program and libc): the own frames go. */
	pcs[0] = libc_a;
	pcs[1] = own;
	pcs[2] = own + 8;
	pcs[3] = libc_b;
	CHECK_EQ(selftext_strip(pcs, 4), 2);
	CHECK_EQ(pcs[0], libc_a);
	CHECK_EQ(pcs[1], libc_b);
	/* Interrupted in own code: the first frame left is the caller's
	 * call instruction. */
	pcs[0] = own;
	pcs[1] = libc_b;
	pcs[2] = libc_a;
	CHECK_EQ(selftext_strip(pcs, 3), 2);
	CHECK_EQ(pcs[0], libc_b - 1);
	CHECK_EQ(pcs[1], libc_a);
	/* Nothing own, or nothing else: unchanged. */
	pcs[0] = libc_a;
	pcs[1] = libc_b;
	CHECK_EQ(selftext_strip(pcs, 2), 2);
	CHECK_EQ(pcs[0], libc_a);
	pcs[0] = own;
	pcs[1] = own + 8;
	CHECK_EQ(selftext_strip(pcs, 2), 2);
	CHECK_EQ(pcs[0], own);
	CHECK_EQ(selftext_strip(pcs, 0), 0);
}

int main(void)
{
	/* libunwind, used here as the reference, looks objects up with
	 * dl_iterate_phdr; the walker under test uses the snapshot. */
	snapshot_take();
	CHECK_EQ(unwind_init(), 0);
	install_handler();
	CHECK_EQ(jit_setup(), 0);
	RUN(test_main_thread_deep);
	RUN(test_through_libc);
	RUN(test_depth_limit);
	RUN(test_forget);
	RUN(test_outside_stack);
	RUN(test_hostile_registers);
	RUN(test_threads_concurrent);
	RUN(test_through_jit_frame);
	RUN(test_leaf_in_jit);
	RUN(test_jit_implausible_chain);
	RUN(test_plt_rule);
	RUN(test_selftext_strip);
	return check_done();
}

/*
 * selftext.c — see selftext.h.
 */
#include "selftext.h"

#include <string.h>

#include <link.h>
#include <stdatomic.h>
#include <stdbool.h>

/*
 * The ELF header of the object being linked, defined by the linker (GNU
 * ld, gold, lld) when the headers are in a loaded segment, as they are in
 * a shared library. Weak: without it the shim strips nothing.
 */
extern const ElfW(Ehdr) __ehdr_start __attribute__((weak, visibility("hidden")));

/* The bounds, found at the first call; hi is stored last (release), so a
 * reader that sees it sees lo. Two threads that find them at once store
 * the same values. */
static _Atomic uintptr_t selftext_lo, selftext_hi;
static atomic_bool selftext_done;

static void selftext_find(void)
{
	const ElfW(Ehdr) *eh = &__ehdr_start;
	const ElfW(Phdr) *ph;
	uintptr_t bias = 0, lo = UINTPTR_MAX, hi = 0;
	bool have_bias = false;

	if (!eh)
		return;
	ph = (const ElfW(Phdr) *)((uintptr_t)eh + eh->e_phoff);
	/* The load bias: where the segment that maps file offset 0 (the ELF
	 * header) was put, less its address in the file. */
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
			bias = (uintptr_t)eh - ph[i].p_vaddr;
			have_bias = true;
			break;
		}
	}
	if (!have_bias)
		return;
	for (int i = 0; i < eh->e_phnum; i++) {
		uintptr_t a = bias + ph[i].p_vaddr;

		if (ph[i].p_type != PT_LOAD || !(ph[i].p_flags & PF_X))
			continue;
		if (a < lo)
			lo = a;
		if (a + ph[i].p_memsz > hi)
			hi = a + ph[i].p_memsz;
	}
	if (hi <= lo)
		return;
	atomic_store_explicit(&selftext_lo, lo, memory_order_relaxed);
	atomic_store_explicit(&selftext_hi, hi, memory_order_release);
}

void selftext_bounds(uintptr_t *lo, uintptr_t *hi)
{
	if (!atomic_load_explicit(&selftext_done, memory_order_acquire)) {
		selftext_find();
		atomic_store_explicit(&selftext_done, true,
				      memory_order_release);
	}
	*hi = atomic_load_explicit(&selftext_hi, memory_order_acquire);
	*lo = atomic_load_explicit(&selftext_lo, memory_order_relaxed);
}

int selftext_strip(uintptr_t *pcs, int n)
{
	uintptr_t lo, hi;
	bool leaf_own;
	int kept = 0, own = 0;

	selftext_bounds(&lo, &hi);
	if (hi == 0 || n <= 0)
		return n;
	for (int i = 0; i < n; i++)
		own += pcs[i] >= lo && pcs[i] < hi;
	if (own == 0 || own == n)
		return n;
	leaf_own = pcs[0] >= lo && pcs[0] < hi;
	for (int i = 0; i < n; i++)
		if (pcs[i] < lo || pcs[i] >= hi)
			pcs[kept++] = pcs[i];
	if (leaf_own)
		pcs[0] -= 1;
	return kept;
}

int selftext_show(uintptr_t *pcs, int n, uintptr_t pc)
{
	uintptr_t lo, hi;
	int i = 0;

	selftext_bounds(&lo, &hi);
	if (hi == 0)
		return n;
	while (i < n && (pcs[i] < lo || pcs[i] >= hi))
		i++;
	if (i == 0 || i == n)
		return n; /* the shim's own work, or no hook on the stack */
	pcs[0] = pc;
	memmove(&pcs[1], &pcs[i], (size_t)(n - i) * sizeof(pcs[0]));
	return n - i + 1;
}

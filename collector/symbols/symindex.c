/*
 * symindex.c — a file's symbol index and its lookups (see symindex.h, whose
 * rules R1-R5 the code below cites).
 */
#include "symbols/symindex.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>

/*
 * Most index entries a lookup walks down through to find the symbols
 * containing an address; past it, dwfl_module_addrinfo() answers. See
 * symindex.h.
 */
#define SYMINDEX_WALK_MAX 64

/* R3's ranking of a symbol's binding, higher is preferred. */
static uint32_t symindex_rank(const GElf_Sym *sym)
{
	switch (GELF_ST_BIND(sym->st_info)) {
	case STB_GLOBAL:
		return 3;
	case STB_WEAK:
		return 2;
	case STB_LOCAL:
		return 1;
	default:
		return 0;
	}
}

/* qsort() order of index entries: by value, then table index. */
static int symindex_compare(const void *a, const void *b)
{
	const struct symindex_entry *x = a, *y = b;

	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return x->ndx_rank < y->ndx_rank ? -1 : x->ndx_rank > y->ndx_rank;
}

/* Sort t[0..n) and fill in the running maxima of value + size. */
static void symindex_sort(struct symindex_entry *t, size_t n)
{
	uint64_t max_end = 0;

	if (n > 1)
		qsort(t, n, sizeof(*t), symindex_compare);
	for (size_t i = 0; i < n; i++) {
		if (t[i].value + t[i].size > max_end)
			max_end = t[i].value + t[i].size;
		t[i].max_end = max_end;
	}
}

void symindex_build(struct symindex *x, Dwfl_Module *mod,
		    const GElf_Ehdr *ehdr)
{
	struct symindex_entry *t, *shrunk;
	int n = dwfl_module_getsymtab(mod);
	int first_global = dwfl_module_getsymtab_first_global(mod);
	size_t nlocal = 0, count = 0;
	int global_start;

	x->ok = false;
	x->mod = mod;
	if (ehdr->e_machine == EM_PPC64 || n > (int)(UINT32_MAX >> 2))
		return;
	if (n <= 1 || first_global < 0) {
		/* An empty table, or libdwfl found none: nothing matches. */
		x->ok = true;
		return;
	}
	global_start = first_global > 1 ? first_global : 1;

	t = malloc((size_t)n * sizeof(*t));
	if (!t)
		return;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr value;
		GElf_Word shndx;
		const char *name;
		int type;

		name = dwfl_module_getsym_info(mod, i, &sym, &value, &shndx,
					       NULL, NULL);
		if (!name || !name[0] || sym.st_shndx == SHN_UNDEF)
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		if (type == STT_SECTION || type == STT_FILE || type == STT_TLS)
			continue;
		if (sym.st_size > UINT32_MAX || value + sym.st_size < value) {
			free(t);
			return;
		}
		t[count++] = (struct symindex_entry){
			.value = value,
			.size = (uint32_t)sym.st_size,
			.ndx_rank = (uint32_t)i << 2 | symindex_rank(&sym),
		};
		if (i < global_start)
			nlocal = count;
	}
	symindex_sort(t, nlocal);
	symindex_sort(t + nlocal, count - nlocal);
	shrunk = realloc(t, (count ? count : 1) * sizeof(*t));
	x->v = shrunk ? shrunk : t;
	x->nlocal = nlocal;
	x->nglobal = count - nlocal;
	x->ok = true;
}

/* The number of entries of t[0..n) whose value is at most a. */
static size_t symindex_upper(const struct symindex_entry *t, size_t n,
			     uint64_t a)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t[mid].value <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Apply R3 to the sized symbols of t[0..k), the candidates of one pass at
 * or below a, that contain a. Sets *ret_ndx to the chosen one's table index
 * and returns 1, returns 0 when none contains a, or -E2BIG when finding
 * them would walk through more than SYMINDEX_WALK_MAX entries.
 */
static int symindex_containing(const struct symindex_entry *t, size_t k,
			       uint64_t a, uint32_t *ret_ndx)
{
	const struct symindex_entry *hit[SYMINDEX_WALK_MAX], *best = NULL;
	size_t nhit = 0, walked = 0;

	/* Below an entry whose running maximum is at most a, none can. */
	for (size_t j = k; j-- > 0 && t[j].max_end > a;) {
		if (++walked > SYMINDEX_WALK_MAX)
			return -E2BIG;
		if (t[j].size != 0 && a - t[j].value < t[j].size)
			hit[nhit++] = &t[j];
	}
	if (nhit == 0)
		return 0;

	/* The walk met them by (value, table index) descending; R3 takes
	 * them in table order. */
	for (size_t i = 1; i < nhit; i++) {
		const struct symindex_entry *e = hit[i];
		size_t j = i;

		for (; j > 0 && hit[j - 1]->ndx_rank > e->ndx_rank; j--)
			hit[j] = hit[j - 1];
		hit[j] = e;
	}
	for (size_t i = 0; i < nhit; i++) {
		const struct symindex_entry *e = hit[i];
		uint32_t rank = e->ndx_rank & 3, best_rank;

		if (!best) {
			best = e;
			continue;
		}
		best_rank = best->ndx_rank & 3;
		if (best->value < e->value || best_rank < rank)
			best = e;
		else if (best->value == e->value &&
			 ((best->size > e->size && best_rank <= rank) ||
			  (best->size >= e->size && best_rank < rank)))
			best = e;
	}
	*ret_ndx = best->ndx_rank >> 2;
	return 1;
}

/* The index of the allocated section libdwfl places Dwfl address a in, or
 * SHN_UNDEF when none. */
static GElf_Word symindex_section(Dwfl_Module *mod, GElf_Addr a)
{
	Dwarf_Addr rel = a, bias;
	Elf_Scn *scn = dwfl_module_address_section(mod, &rel, &bias);

	return scn ? (GElf_Word)elf_ndxscn(scn) : SHN_UNDEF;
}

/*
 * R5 for one pass: the table index of the last sizeless candidate of value
 * m among t[0..k) that lies in a's section, or 0 (never a symbol's index)
 * when there is none.
 */
static uint32_t symindex_sizeless(Dwfl_Module *mod,
				  const struct symindex_entry *t, size_t k,
				  uint64_t m, uint64_t a)
{
	size_t end = symindex_upper(t, k, m);
	bool have_scn = false;
	GElf_Word addr_scn = SHN_UNDEF;

	for (size_t j = end; j-- > 0 && t[j].value == m;) {
		uint32_t ndx = t[j].ndx_rank >> 2;
		GElf_Sym sym;
		GElf_Addr value;
		GElf_Word shndx;

		if (t[j].size != 0)
			continue;
		if (!dwfl_module_getsym_info(mod, (int)ndx, &sym, &value,
					     &shndx, NULL, NULL))
			continue;
		if (shndx >= SHN_LORESERVE) {
			if (value == a)
				return ndx;
			continue;
		}
		if (!have_scn) {
			addr_scn = symindex_section(mod, a);
			have_scn = true;
		}
		if (symindex_section(mod, value) == addr_scn)
			return ndx;
	}
	return 0;
}

/* symindex_lookup()'s answer: *ret_ndx = ndx, 0. */
static int symindex_found(uint32_t ndx, uint32_t *ret_ndx)
{
	*ret_ndx = ndx;
	return 0;
}

/*
 * symindex_lookup()'s body, forced inline into both its callers: the
 * symbolizer reaches it on every cache miss through symindex_name(), and
 * an out-of-line call there cost about 18 instructions a miss (callgrind,
 * libLLVM-14) that it did not cost while all of this was in symbols.c.
 */
static inline __attribute__((always_inline)) int
symindex_find(const struct symindex *x, uint64_t a, uint32_t *ret_ndx)
{
	const struct symindex_entry *loc = x->v;
	const struct symindex_entry *glob = x->v + x->nlocal;
	size_t kg = symindex_upper(glob, x->nglobal, a), kl;
	uint32_t ndx = 0;
	uint64_t m, ml;
	int r;

	*ret_ndx = 0;
	/* The globals' pass. */
	r = symindex_containing(glob, kg, a, &ndx);
	if (r != 0)
		return r < 0 ? r : symindex_found(ndx, ret_ndx);
	m = kg > 0 ? glob[kg - 1].max_end : 0;
	if (m == a) {
		/* A sizeless global at a ends the search before the locals. */
		ndx = symindex_sizeless(x->mod, glob, kg, a, a);
		if (ndx)
			return symindex_found(ndx, ret_ndx);
	}

	/* The locals' pass. */
	if (x->nlocal > 0) {
		kl = symindex_upper(loc, x->nlocal, a);
		r = symindex_containing(loc, kl, a, &ndx);
		if (r != 0)
			return r < 0 ? r : symindex_found(ndx, ret_ndx);
		ml = kl > 0 ? loc[kl - 1].max_end : 0;
		if (ml > m)
			m = ml;
		ndx = symindex_sizeless(x->mod, loc, kl, m, a);
		if (ndx)
			return symindex_found(ndx, ret_ndx);
	}
	return symindex_found(symindex_sizeless(x->mod, glob, kg, m, a),
			      ret_ndx);
}

int symindex_lookup(const struct symindex *x, uint64_t a, uint32_t *ret_ndx)
{
	return symindex_find(x, a, ret_ndx);
}

const char *symindex_name(const struct symindex *x, GElf_Addr a)
{
	GElf_Off sym_off;
	GElf_Sym sym;
	GElf_Addr value;
	GElf_Word shndx;
	uint32_t ndx;

	if (x->ok && symindex_find(x, a, &ndx) == 0) {
		if (ndx == 0)
			return NULL;
		return dwfl_module_getsym_info(x->mod, (int)ndx, &sym, &value,
					       &shndx, NULL, NULL);
	}
	return dwfl_module_addrinfo(x->mod, a, &sym_off, &sym, NULL, NULL,
				    NULL);
}

void symindex_free(struct symindex *x)
{
	free(x->v);
	*x = (struct symindex){0};
}

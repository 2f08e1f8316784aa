/*
 * test_symindex.c — the symbolizer's symbol index against
 * dwfl_module_addrinfo(), on real ELF files of this machine.
 *
 * symbols.c answers a function-name lookup from a sorted index of the
 * file's symbols instead of calling dwfl_module_addrinfo(), which reads the
 * whole symbol table on every call. Users rely on the index naming exactly
 * the symbol libdwfl would: the same alias among several symbols at one
 * address, the same sizeless label, nothing where libdwfl finds nothing. So
 * for each file, many addresses (every sampled symbol's start, start + 1,
 * middle, last byte, end and end + 1, the gaps between symbols, the start,
 * middle, last byte and end of every allocated section, random addresses)
 * are looked up both ways on the same Dwfl module, and the names must be
 * equal, or both absent.
 *
 * The index is internal to symbols.c, so this file includes symbols.c
 * itself (and does not link the collector library, which would define its
 * functions twice).
 *
 * This executable carries, in assembly, symbols shaped for the rules the
 * index reproduces: aliases of one function with global, weak and local
 * binding; a larger global with a smaller global at its start and a weak
 * symbol inside, and globals with a weak symbol inside in either table
 * order; sizeless labels inside and after a function and after the
 * last symbol of a run; an object in .text; and libc's debug file, when
 * installed, brings a .symtab with locals and globals (first_global > 1).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <inttypes.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "symbols/symbols.c"

/*
 * Symbols for the rules at the top of symbols.c. Never executed; the bytes
 * are only there to give the symbols extent. ".type x, STT_FUNC" is
 * understood by GNU as on every ELF target.
 */
__asm__("	.text\n"
	"	.p2align 4\n"
	/* Three aliases of one function: global, weak and local. */
	"	.globl symidx_alias_global\n"
	"	.weak symidx_alias_weak\n"
	"	.type symidx_alias_local, STT_FUNC\n"
	"	.type symidx_alias_weak, STT_FUNC\n"
	"	.type symidx_alias_global, STT_FUNC\n"
	"symidx_alias_local:\n"
	"symidx_alias_weak:\n"
	"symidx_alias_global:\n"
	"	.skip 32\n"
	"	.size symidx_alias_local, 32\n"
	"	.size symidx_alias_weak, 32\n"
	"	.size symidx_alias_global, 32\n"
	/* A global with a smaller global at its start and a weak inside. */
	"	.globl symidx_outer\n"
	"	.globl symidx_outer_head\n"
	"	.weak symidx_outer_weak\n"
	"	.type symidx_outer, STT_FUNC\n"
	"	.type symidx_outer_head, STT_FUNC\n"
	"	.type symidx_outer_weak, STT_FUNC\n"
	"symidx_outer:\n"
	"symidx_outer_head:\n"
	"	.skip 8\n"
	"	.size symidx_outer_head, 8\n"
	"symidx_outer_weak:\n"
	"	.skip 8\n"
	"	.size symidx_outer_weak, 8\n"
	"	.skip 16\n"
	"	.size symidx_outer, 32\n"
	/* A sized function with a local label inside. */
	"	.globl symidx_sized\n"
	"	.type symidx_sized, STT_FUNC\n"
	"symidx_sized:\n"
	"	.skip 8\n"
	"symidx_inner_label:\n"
	"	.skip 8\n"
	"	.size symidx_sized, 16\n"
	/* Sizeless labels after it: a global, then a local. */
	"	.globl symidx_sizeless_global\n"
	"symidx_sizeless_global:\n"
	"	.skip 16\n"
	"symidx_sizeless_local:\n"
	"	.skip 16\n"
	/* An object in .text, then a local function. */
	"	.type symidx_text_object, STT_OBJECT\n"
	"symidx_text_object:\n"
	"	.skip 8\n"
	"	.size symidx_text_object, 8\n"
	"	.type symidx_local_function, STT_FUNC\n"
	"symidx_local_function:\n"
	"	.skip 24\n"
	"	.size symidx_local_function, 24\n"
	/*
	 * Globals with a weak symbol inside: where the weak one comes first
	 * in the table the global wins inside it (higher binding), where it
	 * comes second it wins (higher value). Four pairs, so that the
	 * linker's order gives both cases.
	 */
	"	.globl symidx_wrap_a\n"
	"	.weak symidx_wrap_a_weak\n"
	"	.type symidx_wrap_a, STT_FUNC\n"
	"	.type symidx_wrap_a_weak, STT_FUNC\n"
	"symidx_wrap_a:\n"
	"	.skip 8\n"
	"symidx_wrap_a_weak:\n"
	"	.skip 8\n"
	"	.size symidx_wrap_a_weak, 8\n"
	"	.skip 16\n"
	"	.size symidx_wrap_a, 32\n"
	"	.globl symidx_wrap_b\n"
	"	.weak symidx_wrap_b_weak\n"
	"	.type symidx_wrap_b, STT_FUNC\n"
	"	.type symidx_wrap_b_weak, STT_FUNC\n"
	"symidx_wrap_b:\n"
	"	.skip 8\n"
	"symidx_wrap_b_weak:\n"
	"	.skip 8\n"
	"	.size symidx_wrap_b_weak, 8\n"
	"	.skip 16\n"
	"	.size symidx_wrap_b, 32\n"
	"	.globl symidx_wrap_c\n"
	"	.weak symidx_wrap_c_weak\n"
	"	.type symidx_wrap_c, STT_FUNC\n"
	"	.type symidx_wrap_c_weak, STT_FUNC\n"
	"symidx_wrap_c:\n"
	"	.skip 8\n"
	"symidx_wrap_c_weak:\n"
	"	.skip 8\n"
	"	.size symidx_wrap_c_weak, 8\n"
	"	.skip 16\n"
	"	.size symidx_wrap_c, 32\n"
	"	.globl symidx_wrap_d\n"
	"	.weak symidx_wrap_d_weak\n"
	"	.type symidx_wrap_d, STT_FUNC\n"
	"	.type symidx_wrap_d_weak, STT_FUNC\n"
	"symidx_wrap_d:\n"
	"	.skip 8\n"
	"symidx_wrap_d_weak:\n"
	"	.skip 8\n"
	"	.size symidx_wrap_d_weak, 8\n"
	"	.skip 16\n"
	"	.size symidx_wrap_d, 32\n"
	/* A global sizeless label and a local one at the same address. */
	"	.globl symidx_twin_global\n"
	"symidx_twin_local:\n"
	"symidx_twin_global:\n"
	"	.skip 16\n");

/*
 * Addresses compared per file are capped so that the dwfl_module_addrinfo()
 * calls, each reading the whole table, cost a few seconds per file:
 * addresses times table entries stays under this.
 */
#define WORK_BUDGET 200000000ULL

/* Per-file totals, printed as TAP comments. */
struct compare_stats {
	size_t addresses;
	size_t named;       /* addresses dwfl_module_addrinfo() names */
	size_t walks_over;  /* answered by the fallback (SYMINDEX_WALK_MAX) */
	size_t ambiguous;   /* two or more sized symbols contain the address */
	size_t mismatches;
};

/* How many sized candidates of f's index contain Dwfl address a. */
static size_t count_containing(const struct sym_file *f, uint64_t a)
{
	size_t n = 0, total = f->index_nlocal + f->index_nglobal;

	for (size_t i = 0; i < total; i++) {
		const struct symindex_entry *e = &f->index[i];

		if (e->value <= a && a - e->value < e->size)
			n++;
	}
	return n;
}

/* Compare the index with dwfl_module_addrinfo() at Dwfl address a. */
static void compare_one(struct sym_file *f, uint64_t a,
			struct compare_stats *st)
{
	GElf_Off off;
	GElf_Sym sym;
	GElf_Addr value;
	GElf_Word shndx;
	const char *want, *got = NULL;
	uint32_t ndx;

	want = dwfl_module_addrinfo(f->mod, a, &off, &sym, NULL, NULL, NULL);
	st->addresses++;
	if (want)
		st->named++;
	if (count_containing(f, a) >= 2)
		st->ambiguous++;
	if (symindex_lookup(f, a, &ndx) < 0) {
		st->walks_over++;
		return;
	}
	if (ndx)
		got = dwfl_module_getsym_info(f->mod, (int)ndx, &sym, &value,
					      &shndx, NULL, NULL);
	if ((want == NULL) != (got == NULL) ||
	    (want && strcmp(want, got) != 0)) {
		if (st->mismatches < 10)
			printf("# %s: at %#" PRIx64 " (file %#" PRIx64
			       ") dwfl_module_addrinfo gives %s, the index %s"
			       " (entry %u)\n", f->module, a, a - f->dwfl_bias,
			       want ? want : "(none)", got ? got : "(none)",
			       ndx);
		st->mismatches++;
	}
}

/* qsort() order of (start, end) pairs. */
static int range_compare(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] < y[1] ? -1 : x[1] > y[1];
}

/*
 * Open `path` the way the symbolizer does and compare every address class
 * of the comment at the top. Returns false when the file is not there.
 */
static bool compare_file(const char *path, struct compare_stats *st)
{
	struct sym_file f = { 0 };
	uint64_t *ranges = NULL, lo = UINT64_MAX, hi = 0, budget;
	size_t nranges = 0, stride = 1, per_symbol = 7;
	GElf_Addr bias;
	Elf *elf;
	Elf_Scn *scn = NULL;
	int n, first_global;

	memset(st, 0, sizeof(*st));
	if (access(path, R_OK) != 0)
		return false;
	f.path = path;
	f.path_len = (uint32_t)strlen(path);
	f.module = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	CHECK_EQ(file_open(&f), 0);
	if (!f.mod)
		return true;
	CHECK(f.index_ok);
	n = dwfl_module_getsymtab(f.mod);
	first_global = dwfl_module_getsymtab_first_global(f.mod);
	CHECK(n > 1);
	if (n <= 1)
		goto out;

	budget = WORK_BUDGET / (uint64_t)n;
	if ((uint64_t)n * per_symbol > budget / 2)
		stride = (size_t)(((uint64_t)n * per_symbol) / (budget / 2)) + 1;

	/* Symbols: start, start + 1, middle, last byte, end, end + 1. */
	ranges = calloc((size_t)n, 2 * sizeof(*ranges));
	CHECK(ranges != NULL);
	if (!ranges)
		goto out;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr v;
		GElf_Word shndx;
		const char *name = dwfl_module_getsym_info(f.mod, i, &sym, &v,
							   &shndx, NULL, NULL);

		if (!name || sym.st_shndx == SHN_UNDEF)
			continue;
		ranges[2 * nranges] = v;
		ranges[2 * nranges + 1] = v + sym.st_size;
		nranges++;
		if ((size_t)i % stride != 0)
			continue;
		compare_one(&f, v, st);
		compare_one(&f, v + 1, st);
		if (v > 0)
			compare_one(&f, v - 1, st);
		if (sym.st_size > 1) {
			compare_one(&f, v + sym.st_size / 2, st);
			compare_one(&f, v + sym.st_size - 1, st);
		}
		compare_one(&f, v + sym.st_size, st);
		compare_one(&f, v + sym.st_size + 1, st);
	}

	/* The gap after each symbol's end, to the next symbol's start. */
	qsort(ranges, nranges, 2 * sizeof(*ranges), range_compare);
	for (size_t i = 0; i + 1 < nranges; i++) {
		uint64_t end = ranges[2 * i + 1], next = ranges[2 * i + 2];

		if (i % stride != 0 || end >= next)
			continue;
		compare_one(&f, end + (next - end) / 2, st);
		compare_one(&f, next - 1, st);
	}

	/* Allocated sections, symbols or not, and random addresses. */
	elf = dwfl_module_getelf(f.mod, &bias);
	while (elf && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr shdr_mem, *shdr = gelf_getshdr(scn, &shdr_mem);
		uint64_t s;

		if (!shdr || !(shdr->sh_flags & SHF_ALLOC))
			continue;
		s = shdr->sh_addr + bias;
		compare_one(&f, s, st);
		compare_one(&f, s + shdr->sh_size / 2, st);
		if (shdr->sh_size > 0)
			compare_one(&f, s + shdr->sh_size - 1, st);
		compare_one(&f, s + shdr->sh_size, st);
		if (s < lo)
			lo = s;
		if (s + shdr->sh_size > hi)
			hi = s + shdr->sh_size;
	}
	rng_state = 42;
	for (int i = 0; i < 500 && lo < hi; i++)
		compare_one(&f, lo + rng_next() % (hi - lo), st);
	compare_one(&f, 0, st);
	compare_one(&f, bias, st);

	printf("# %s: %d table entries (first global %d), %zu index entries"
	       " (%zu bytes), %zu addresses compared (every %zu. symbol),"
	       " %zu named, %zu inside several sized symbols,"
	       " %zu past the walk limit, %zu mismatches\n",
	       f.module, n, first_global, f.index_nlocal + f.index_nglobal,
	       (f.index_nlocal + f.index_nglobal) *
		       sizeof(struct symindex_entry),
	       st->addresses, stride, st->named, st->ambiguous, st->walks_over,
	       st->mismatches);
out:
	free(ranges);
	file_close(&f);
	return true;
}

/* Check one file; a missing optional file is a TAP skip naming it. */
static void check_file(const char *path, bool optional, size_t min_named)
{
	struct compare_stats st;
	bool found;

	check_test_failed = 0;
	found = compare_file(path, &st);
	check_tests++;
	if (!found) {
		if (optional) {
			printf("ok %d - compare %s # SKIP %s is not installed\n",
			       check_tests, path, path);
			return;
		}
		printf("# %s: not found\n", path);
		check_test_failed = 1;
	} else {
		CHECK_EQ(st.mismatches, 0);
		/* Equality over a handful of addresses would prove little. */
		CHECK(st.named >= min_named);
		/* The fallback must stay rare, or the index saves nothing. */
		CHECK(st.walks_over * 100 <= st.addresses);
	}
	printf("%s %d - compare %s\n", check_test_failed ? "not ok" : "ok",
	       check_tests, path);
	check_failures += check_test_failed;
}

/* Path of the loaded object whose basename starts with prefix, or NULL. */
static char loaded_path[4096];
static int find_loaded(struct dl_phdr_info *info, size_t size, void *prefix)
{
	const char *name = info->dlpi_name, *base;

	(void)size;
	if (!name || !name[0])
		return 0;
	base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	if (strncmp(base, prefix, strlen(prefix)) != 0)
		return 0;
	snprintf(loaded_path, sizeof(loaded_path), "%s", name);
	return 1;
}

int main(void)
{
	char exe[4096], dir[4096], path[4096 + 64];
	const char *triplet;
	ssize_t len;

	/* This executable, with the symbols shaped for the rules. */
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len <= 0)
		return 1;
	exe[len] = '\0';
	check_file(exe, false, 50);

	/* libc as loaded here; its multiarch directory names the others. */
	loaded_path[0] = '\0';
	dl_iterate_phdr(find_loaded, "libc.so");
	if (!loaded_path[0])
		return 1;
	check_file(loaded_path, false, 1000);
	snprintf(dir, sizeof(dir), "%s", loaded_path);
	*strrchr(dir, '/') = '\0';
	triplet = strrchr(dir, '/') ? strrchr(dir, '/') + 1 : dir;

	snprintf(path, sizeof(path), "/usr/lib/%s/libLLVM-14.so.1", triplet);
	check_file(path, true, 1000);
	snprintf(path, sizeof(path), "/usr/lib/%s/libpython3.11.so.1.0",
		 triplet);
	check_file(path, true, 1000);
	check_file("/usr/sbin/nginx", false, 500);
	return check_done();
}

/*
 * symbols.c — out-of-process symbolization with elfutils' libdwfl.
 *
 * Layout of the work:
 *
 *   1. The module containing the looked-up address is found by a backward
 *      scan of the caller's module map (the last entry wins when entries
 *      overlap, as the most recently loaded object is the likeliest owner).
 *   2. The module entry is mapped to a `struct sym_file`, keyed by (path,
 *      build id) in a hash table, so every process mapping the same file
 *      shares one entry. The entry's Dwfl is opened on first use, offline.
 *      A file that is missing, not ELF, or of another build stays unusable
 *      for good; a transient failure (out of file descriptors or memory) is
 *      retried on a later lookup and its results are not cached.
 *   3. Function names are the names dwfl_module_addrinfo() would return
 *      (.symtab, .dynsym or .gnu_debugdata), answered from a sorted index of
 *      the file's symbols built when the file is opened (see "The symbol
 *      index" below): dwfl_module_addrinfo() itself reads the whole symbol
 *      table on every call, a millisecond per address in a library with
 *      tens of thousands of symbols. file:line come from
 *      dwfl_module_getsrc(). libdwfl
 *      finds a compile unit through .debug_aranges only, which clang does
 *      not emit by default, so when that fails the file's compile unit
 *      ranges are read once into a sorted table and searched instead.
 *   4. Results are cached per (file, offset relative to the module's bias)
 *      in an open-addressing hash table, so a repeated address costs one
 *      module scan, one file-table probe and one cache probe.
 *
 * An open Dwfl can hold file descriptors (a separate debug file, and the
 * two sockets of the debuginfod client libdwfl creates when a debug file is
 * not found locally), so at most SYMBOLS_OPEN_MAX Dwfls are open at once:
 * opening one more closes the least recently used, which is reopened, and
 * its build id checked again, only if a new offset in it is looked up.
 *
 * Every string handed out is interned in an arena owned by the symbolizer,
 * so equal strings are the same pointer and all of them stay valid until
 * symbols_free().
 *
 * The symbol index
 * ----------------
 * For a file opened offline (ET_EXEC or ET_DYN), dwfl_module_addrinfo(mod,
 * a) of elfutils (read for 0.188; the equality test in
 * test/unit/test_symindex.c checks it on real files) picks its symbol as
 * follows. Symbols are libdwfl's own table: dwfl_module_getsymtab() entries
 * 1..n-1, read with dwfl_module_getsym_info(), which merges .symtab or
 * .dynsym with .gnu_debugdata and gives each symbol's address ("value")
 * with the module's bias applied for symbols of SHF_ALLOC sections and its
 * section index with SHN_XINDEX resolved.
 *
 *   R1. A candidate is a symbol with a non-empty name, st_shndx not
 *       SHN_UNDEF, type not STT_SECTION, STT_FILE or STT_TLS, and value <= a.
 *       Any type else counts (functions, objects, STT_NOTYPE labels).
 *   R2. Two passes over the table: first the globals, entries from
 *       max(first_global, 1) on (dwfl_module_getsymtab_first_global()),
 *       then, only when the first pass found no sized symbol containing a,
 *       first_global > 1, and the first pass did not find a sizeless symbol
 *       at exactly a (R5), the locals, entries 1..first_global-1.
 *   R3. A sized symbol contains a when a - value < st_size. Among the
 *       containing ones of a pass, taken in table order, a symbol replaces
 *       the current choice when there is none yet, when its value is
 *       higher, or when its binding ranks higher (global 3 > weak 2 >
 *       local 1 > anything else 0, STB_GNU_UNIQUE included); failing that,
 *       when it has the same value and either a smaller size and a binding
 *       ranked no lower, or a size no larger and a binding ranked higher.
 *       So among aliases of equal value, size and binding (C++ D1/D2
 *       constructors) the first in table order wins, and the result can
 *       depend on table order (a weak symbol inside a larger global).
 *   R4. Every candidate raises a bound, min_label, to value + st_size when
 *       that is higher; it runs over both passes.
 *   R5. Without a containing sized symbol, a sizeless candidate is chosen
 *       when its value is at least min_label (so is not inside an earlier
 *       candidate) and it lies in the same section as a: for a symbol of
 *       SHN_ABS or another reserved index, value == a; otherwise the
 *       allocated section libdwfl finds for value and for a
 *       (dwfl_module_address_section()) is the same, or neither is in one.
 *       The last one chosen is returned if its value is still at least the
 *       final min_label. Equivalently: let M be the highest value + st_size
 *       over the candidates of the passes that ran; the answer is the
 *       same-section sizeless candidate of value M that comes last (locals
 *       after globals, then table order), or none.
 *
 * The index keeps, for each pass, the candidates sorted by (value, table
 * index) with each entry's size, binding rank and the running maximum of
 * value + st_size. A lookup binary-searches the last entry at or below a;
 * the containing symbols are found walking down while the running maximum
 * exceeds a, then R3 is applied to them in table order; M is the running
 * maximum at that entry (R5), and the entries of value M are found by
 * binary search. The name is read back with dwfl_module_getsym_info(), so
 * it is the pointer dwfl_module_addrinfo() would return, into libelf's data
 * of the file's Dwfl; it is interned at once, and the index, which holds no
 * pointers into libelf, is freed with the Dwfl in file_close().
 *
 * dwfl_module_addrinfo() is still called, for that address only, when the
 * walk down meets more than SYMINDEX_WALK_MAX entries (symbols nested in a
 * larger one, seen in no file tested), and for a whole file on PowerPC64,
 * whose function descriptors libdwfl resolves through its backend and also
 * tries under their unresolved value, when a size or value + size does not
 * fit the index (st_size of 4 GiB or more, or a sum that wraps), or when the
 * index cannot be allocated.
 */
#include "symbols/symbols.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elfutils/libdwfl.h>
#include <gelf.h>

/* Module name reported for an address that lies in no module. */
#define SYMBOLS_UNKNOWN_MODULE "[unknown]"

/*
 * Function name reported when not even the fallback string could be
 * allocated. A string literal, so it needs no memory and never dangles.
 */
#define SYMBOLS_NOMEM_FUNCTION "[no memory]"

/* Most Dwfl sessions open at once; see the comment at the top. */
#define SYMBOLS_OPEN_MAX 128

/* Size of an ordinary string arena block. */
#define ARENA_BLOCK_SIZE (64 * 1024)

/* Initial slot counts of the hash tables; each is a power of two. */
#define CACHE_INITIAL_SLOTS 1024
#define STRINGS_INITIAL_SLOTS 1024
#define FILES_INITIAL_SLOTS 64

/* Longest fallback name: a module basename, "+0x" and 16 hex digits. */
#define FALLBACK_NAME_MAX (RING_MODULE_PATH_MAX + 32)

/*
 * Most index entries a lookup walks down through to find the symbols
 * containing an address; past it, dwfl_module_addrinfo() answers. See the
 * comment at the top.
 */
#define SYMINDEX_WALK_MAX 64

enum file_state {
	FILE_NEW = 0,  /* not open: new, closed, or failed transiently */
	FILE_OK,       /* dwfl and mod are usable */
	FILE_BAD,      /* missing, not ELF, or a different build: never used */
};

/*
 * One candidate symbol (R1 at the top) of a file's index, 24 bytes. `value`
 * is its Dwfl address and `max_end` the highest value + st_size of this and
 * every entry before it in its pass's part of the index.
 */
struct symindex_entry {
	uint64_t value;
	uint64_t max_end;
	uint32_t size;
	uint32_t ndx_rank;     /* table index << 2 | binding rank (R3) */
};

/* One address range of a compile unit, in DWARF addresses. */
struct cu_range {
	Dwarf_Addr lo;
	Dwarf_Addr hi;
	Dwarf_Die cu;
};

/*
 * One ELF file, identified by its path and the build id the module map
 * recorded for it (empty when the map has none). `path` and `module` are
 * interned strings; `dwfl` and `cu_ranges` belong to the file while it is
 * open and are freed when it is closed.
 */
struct sym_file {
	uint64_t hash;
	const char *path;
	const char *module;         /* basename of path */
	uint32_t path_len;
	uint32_t build_id_len;
	uint8_t build_id[RING_BUILD_ID_MAX];
	enum file_state state;
	uint64_t last_used;         /* symbols.tick at its last use */
	Dwfl *dwfl;
	Dwfl_Module *mod;
	GElf_Addr dwfl_bias;        /* Dwfl address - file address */
	/*
	 * The symbol index while open: the locals' candidates, then the
	 * globals', each part sorted by (value, table index). When
	 * !index_ok, dwfl_module_addrinfo() answers every lookup instead.
	 */
	bool index_ok;
	struct symindex_entry *index;
	size_t index_nlocal;
	size_t index_nglobal;
	bool cu_ranges_read;        /* cu_ranges was built (maybe empty) */
	struct cu_range *cu_ranges; /* sorted by lo, or NULL */
	size_t ncu_ranges;
	Dwarf_Addr cu_bias;         /* Dwfl address - DWARF address */
};

/*
 * A cached result. `file_id` is an index into the file table plus one, or 0
 * for addresses in no module (then `offset` is the address itself). A NULL
 * `function` marks an empty slot.
 */
struct sym_entry {
	uint64_t offset;
	const char *function;
	const char *src;
	int32_t line;
	uint32_t file_id;
	bool known;
};

/* An interned string; a NULL `str` marks an empty slot. */
struct sym_str {
	uint64_t hash;
	const char *str;
	size_t len;
};

/* A block of string storage, freed as a whole by symbols_free(). */
struct arena_block {
	struct arena_block *next;
	size_t used;
	size_t size;
	char data[];
};

struct symbols {
	/* Files, by id - 1, and a hash index over them holding ids. */
	struct sym_file *files;
	uint32_t nfiles;
	uint32_t files_cap;
	uint32_t *file_slots;       /* 0 marks an empty slot */
	size_t file_mask;
	uint32_t nopen;             /* files in state FILE_OK */
	uint64_t tick;              /* advanced by each use of an open file */

	/* Result cache keyed by (file id, offset). */
	struct sym_entry *cache;
	size_t cache_mask;
	size_t cache_count;

	/* Interned strings and the arena holding their bytes. */
	struct sym_str *strs;
	size_t strs_mask;
	size_t strs_count;
	struct arena_block *blocks; /* every block, newest first */
	struct arena_block *current; /* the block small strings go to */
};

/*
 * Callbacks for the per-file Dwfl sessions: the file itself is reported
 * offline, so find_elf is never needed for it; separate debug files are
 * searched by build id and .gnu_debuglink under the default path (which
 * includes /usr/lib/debug). A constant table, not mutable state.
 */
static const Dwfl_Callbacks file_callbacks = {
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = NULL,
};

/*
 * Hash n bytes at p, continuing from seed. Reads eight bytes at a time; the
 * value depends on the host's byte order, which is fine for in-memory tables.
 */
static uint64_t hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	uint64_t w;

	while (n >= 8) {
		memcpy(&w, b, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		b += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, b, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h;
}

/* Hash a cache key; every bit of both fields affects the low bits. */
static uint64_t hash_key(uint32_t file_id, uint64_t offset)
{
	uint64_t h = offset ^ ((uint64_t)file_id << 40) ^ file_id;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/*
 * Copy len bytes at str plus a terminating NUL into the arena and return the
 * copy, or NULL when out of memory. Small strings share blocks; a large one
 * gets a block of its own so the current block is not wasted.
 */
static char *arena_copy(struct symbols *s, const char *str, size_t len)
{
	struct arena_block *b = s->current;
	size_t need = len + 1;
	char *p;

	if (!b || b->size - b->used < need) {
		size_t size = ARENA_BLOCK_SIZE;

		if (need > ARENA_BLOCK_SIZE / 4)
			size = need;
		b = malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->used = 0;
		b->size = size;
		b->next = s->blocks;
		s->blocks = b;
		if (size == ARENA_BLOCK_SIZE)
			s->current = b;
	}
	p = b->data + b->used;
	memcpy(p, str, len);
	p[len] = '\0';
	b->used += need;
	return p;
}

/* Double the string table, or create it. Returns 0 or -ENOMEM. */
static int strings_grow(struct symbols *s)
{
	size_t cap = s->strs ? (s->strs_mask + 1) * 2 : STRINGS_INITIAL_SLOTS;
	struct sym_str *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (s->strs) {
		for (size_t i = 0; i <= s->strs_mask; i++) {
			size_t j;

			if (!s->strs[i].str)
				continue;
			j = s->strs[i].hash & (cap - 1);
			while (t[j].str)
				j = (j + 1) & (cap - 1);
			t[j] = s->strs[i];
		}
		free(s->strs);
	}
	s->strs = t;
	s->strs_mask = cap - 1;
	return 0;
}

/*
 * Return the interned copy of str[0..len): the same pointer for equal
 * contents, valid until symbols_free(). Sets *ret and returns 0, or returns
 * -ENOMEM and leaves *ret alone.
 */
static int strings_intern(struct symbols *s, const char *str, size_t len,
			  const char **ret)
{
	uint64_t h = hash_bytes(str, len, 0x5bd1e9955bd1e995ULL);
	size_t i;
	char *copy;

	if (!s->strs || (s->strs_count + 1) * 2 > s->strs_mask + 1) {
		int r = strings_grow(s);

		if (r < 0)
			return r;
	}
	for (i = h & s->strs_mask; s->strs[i].str; i = (i + 1) & s->strs_mask) {
		const struct sym_str *e = &s->strs[i];

		if (e->hash == h && e->len == len &&
		    memcmp(e->str, str, len) == 0) {
			*ret = e->str;
			return 0;
		}
	}
	copy = arena_copy(s, str, len);
	if (!copy)
		return -ENOMEM;
	s->strs[i] = (struct sym_str){ .hash = h, .str = copy, .len = len };
	s->strs_count++;
	*ret = copy;
	return 0;
}

/*
 * Intern "<module>+0x<value>", or "0x<value>" when module is NULL. Returns
 * the string, or NULL when out of memory.
 */
static const char *strings_format(struct symbols *s, const char *module,
				  uint64_t value)
{
	char buf[FALLBACK_NAME_MAX];
	const char *ret;
	int n;

	if (module)
		n = snprintf(buf, sizeof(buf), "%s+0x%" PRIx64, module, value);
	else
		n = snprintf(buf, sizeof(buf), "0x%" PRIx64, value);
	if (n < 0)
		return NULL;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	if (strings_intern(s, buf, (size_t)n, &ret) < 0)
		return NULL;
	return ret;
}

/* Double the file index, or create it. Returns 0 or -ENOMEM. */
static int files_grow_index(struct symbols *s)
{
	size_t cap = FILES_INITIAL_SLOTS;
	uint32_t *t;

	if (s->file_slots)
		cap = (s->file_mask + 1) * 2;
	t = calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (uint32_t id = 1; id <= s->nfiles; id++) {
		size_t j = s->files[id - 1].hash & (cap - 1);

		while (t[j])
			j = (j + 1) & (cap - 1);
		t[j] = id;
	}
	free(s->file_slots);
	s->file_slots = t;
	s->file_mask = cap - 1;
	return 0;
}

/* Return the part of path after its last '/', or path when that is empty. */
static const char *path_basename(const char *path, size_t len, size_t *ret_len)
{
	size_t i = len;

	while (i > 0 && path[i - 1] != '/')
		i--;
	if (i == len) {
		*ret_len = len;
		return path;
	}
	*ret_len = len - i;
	return path + i;
}

/*
 * Find or add the file of module entry m. Sets *ret_id to its id (index
 * plus one) and returns 0, or returns -ENOMEM. Adding a file does not open
 * it; file_open() does that on the first lookup that needs it.
 */
static int files_get(struct symbols *s, const struct ring_module *m,
		     uint32_t *ret_id)
{
	size_t path_len = strnlen(m->path, RING_MODULE_PATH_MAX);
	uint32_t bid_len = m->build_id_len;
	uint64_t h = hash_bytes(m->build_id, bid_len,
				hash_bytes(m->path, path_len, 0));
	struct sym_file *f;
	const char *base;
	size_t base_len, i;
	int r;

	if (s->file_slots) {
		for (i = h & s->file_mask; s->file_slots[i];
		     i = (i + 1) & s->file_mask) {
			f = &s->files[s->file_slots[i] - 1];
			if (f->hash == h && f->path_len == path_len &&
			    f->build_id_len == bid_len &&
			    memcmp(f->path, m->path, path_len) == 0 &&
			    memcmp(f->build_id, m->build_id, bid_len) == 0) {
				*ret_id = s->file_slots[i];
				return 0;
			}
		}
	}

	if (!s->file_slots || ((size_t)s->nfiles + 1) * 2 > s->file_mask + 1) {
		r = files_grow_index(s);
		if (r < 0)
			return r;
	}
	if (s->nfiles == s->files_cap) {
		uint32_t cap = s->files_cap ? s->files_cap * 2 : 16;
		struct sym_file *t = realloc(s->files, cap * sizeof(*t));

		if (!t)
			return -ENOMEM;
		s->files = t;
		s->files_cap = cap;
	}

	f = &s->files[s->nfiles];
	memset(f, 0, sizeof(*f));
	f->hash = h;
	f->path_len = (uint32_t)path_len;
	f->build_id_len = bid_len;
	memcpy(f->build_id, m->build_id, bid_len);
	f->state = FILE_NEW;
	r = strings_intern(s, m->path, path_len, &f->path);
	if (r < 0)
		return r;
	base = path_basename(f->path, path_len, &base_len);
	r = strings_intern(s, base, base_len, &f->module);
	if (r < 0)
		return r;

	s->nfiles++;
	for (i = h & s->file_mask; s->file_slots[i]; i = (i + 1) & s->file_mask)
		;
	s->file_slots[i] = s->nfiles;
	*ret_id = s->nfiles;
	return 0;
}

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

/*
 * Build f's symbol index from its open module (rules at the top). Sets
 * f->index_ok when lookups may use it; leaves it false, so that
 * dwfl_module_addrinfo() answers, for a PowerPC64 file, a symbol the index
 * cannot represent, or when out of memory. A module without a usable
 * symbol table gets an empty index, which finds nothing, as
 * dwfl_module_addrinfo() does.
 */
static void symindex_build(struct sym_file *f, const GElf_Ehdr *ehdr)
{
	struct symindex_entry *t, *shrunk;
	int n = dwfl_module_getsymtab(f->mod);
	int first_global = dwfl_module_getsymtab_first_global(f->mod);
	size_t nlocal = 0, count = 0;
	int global_start;

	f->index_ok = false;
	if (ehdr->e_machine == EM_PPC64 || n > (int)(UINT32_MAX >> 2))
		return;
	if (n <= 1 || first_global < 0) {
		/* An empty table, or libdwfl found none: nothing matches. */
		f->index_ok = true;
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

		name = dwfl_module_getsym_info(f->mod, i, &sym, &value, &shndx,
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
	f->index = shrunk ? shrunk : t;
	f->index_nlocal = nlocal;
	f->index_nglobal = count - nlocal;
	f->index_ok = true;
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

/*
 * Look Dwfl address a up in f's index (rules at the top). Sets *ret_ndx to
 * the table index of the symbol dwfl_module_addrinfo() would return, or 0
 * when it would return NULL, and returns 0; returns -E2BIG when the index
 * cannot tell cheaply (SYMINDEX_WALK_MAX).
 */
/* symindex_lookup()'s answer: *ret_ndx = ndx, 0. */
static int symindex_found(uint32_t ndx, uint32_t *ret_ndx)
{
	*ret_ndx = ndx;
	return 0;
}

static int symindex_lookup(const struct sym_file *f, uint64_t a,
			   uint32_t *ret_ndx)
{
	const struct symindex_entry *loc = f->index;
	const struct symindex_entry *glob = f->index + f->index_nlocal;
	size_t kg = symindex_upper(glob, f->index_nglobal, a), kl;
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
		ndx = symindex_sizeless(f->mod, glob, kg, a, a);
		if (ndx)
			return symindex_found(ndx, ret_ndx);
	}

	/* The locals' pass. */
	if (f->index_nlocal > 0) {
		kl = symindex_upper(loc, f->index_nlocal, a);
		r = symindex_containing(loc, kl, a, &ndx);
		if (r != 0)
			return r < 0 ? r : symindex_found(ndx, ret_ndx);
		ml = kl > 0 ? loc[kl - 1].max_end : 0;
		if (ml > m)
			m = ml;
		ndx = symindex_sizeless(f->mod, loc, kl, m, a);
		if (ndx)
			return symindex_found(ndx, ret_ndx);
	}
	return symindex_found(symindex_sizeless(f->mod, glob, kg, m, a),
			      ret_ndx);
}

/*
 * The name dwfl_module_addrinfo() gives Dwfl address a in open file f, or
 * NULL. The string belongs to f's Dwfl: intern it before closing f.
 */
static const char *file_symbol(struct sym_file *f, GElf_Addr a)
{
	GElf_Off sym_off;
	GElf_Sym sym;
	GElf_Addr value;
	GElf_Word shndx;
	uint32_t ndx;

	if (f->index_ok && symindex_lookup(f, a, &ndx) == 0) {
		if (ndx == 0)
			return NULL;
		return dwfl_module_getsym_info(f->mod, (int)ndx, &sym, &value,
					       &shndx, NULL, NULL);
	}
	return dwfl_module_addrinfo(f->mod, a, &sym_off, &sym, NULL, NULL,
				    NULL);
}

/*
 * Open f's file and report it to a fresh offline Dwfl. Returns 0 with
 * f->dwfl, f->mod, f->dwfl_bias and the symbol index set, or a negative
 * errno: the file is missing (-ENOENT and the like), not a regular ELF
 * executable or shared
 * object (-ENOEXEC), or not the build the map recorded (-ESTALE). Nothing is
 * left open on failure. The path is opened non-blocking and checked to be a
 * regular file first, so a FIFO or device named by an untrusted map cannot
 * block or confuse the collector.
 */
static int file_open(struct sym_file *f)
{
	unsigned char magic[SELFMAG];
	const unsigned char *bits;
	GElf_Addr bid_vaddr, bias;
	GElf_Ehdr ehdr_mem, *ehdr;
	Dwfl_Module *mod;
	Dwfl *dwfl = NULL;
	struct stat st;
	Elf *elf;
	int fd, r, n;

	fd = open(f->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) ||
	    pread(fd, magic, SELFMAG, 0) != SELFMAG ||
	    memcmp(magic, ELFMAG, SELFMAG) != 0) {
		r = -ENOEXEC;
		goto out;
	}

	dwfl = dwfl_begin(&file_callbacks);
	if (!dwfl) {
		r = -ENOMEM;
		goto out;
	}
	dwfl_report_begin(dwfl);
	/* On success the Dwfl owns fd; on failure it is still ours. */
	mod = dwfl_report_offline(dwfl, f->module, f->path, fd);
	if (!mod) {
		r = -ENOEXEC;
		goto out;
	}
	fd = -1;
	if (dwfl_report_end(dwfl, NULL, NULL) != 0) {
		r = -ENOEXEC;
		goto out;
	}

	/*
	 * Offline reporting places an ET_DYN file at an arbitrary base, so
	 * remember the bias between file addresses and Dwfl addresses.
	 */
	elf = dwfl_module_getelf(mod, &bias);
	if (!elf) {
		r = -ENOEXEC;
		goto out;
	}
	ehdr = gelf_getehdr(elf, &ehdr_mem);
	if (!ehdr || (ehdr->e_type != ET_EXEC && ehdr->e_type != ET_DYN)) {
		r = -ENOEXEC;
		goto out;
	}

	if (f->build_id_len > 0) {
		n = dwfl_module_build_id(mod, &bits, &bid_vaddr);
		if (n != (int)f->build_id_len ||
		    memcmp(bits, f->build_id, f->build_id_len) != 0) {
			r = -ESTALE;
			goto out;
		}
	}

	f->dwfl = dwfl;
	f->mod = mod;
	f->dwfl_bias = bias;
	symindex_build(f, ehdr);
	return 0;

out:
	if (dwfl)
		dwfl_end(dwfl);
	if (fd >= 0)
		close(fd);
	return r;
}

/*
 * True for a file_open() error that may go away by itself: out of file
 * descriptors or memory, or interrupted. Such a file is tried again later.
 */
static bool error_is_transient(int r)
{
	return r == -EMFILE || r == -ENFILE || r == -ENOMEM || r == -EINTR ||
	       r == -EAGAIN;
}

/* Release everything f holds open. Its cached results stay valid. */
static void file_close(struct sym_file *f)
{
	if (f->dwfl)
		dwfl_end(f->dwfl);
	f->dwfl = NULL;
	f->mod = NULL;
	free(f->index);
	f->index = NULL;
	f->index_nlocal = 0;
	f->index_nglobal = 0;
	f->index_ok = false;
	free(f->cu_ranges);
	f->cu_ranges = NULL;
	f->ncu_ranges = 0;
	f->cu_ranges_read = false;
}

/* qsort() order of compile unit ranges: by start address. */
static int cu_range_compare(const void *a, const void *b)
{
	const struct cu_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/*
 * Read the address ranges of every compile unit of f into f->cu_ranges,
 * sorted. Returns 0 (also when f has no DWARF, leaving the table empty) or
 * -ENOMEM, in which case the table is left empty and unread.
 */
static int file_read_cu_ranges(struct sym_file *f)
{
	struct cu_range *t = NULL;
	size_t n = 0, cap = 0;
	Dwarf_Die *cu = NULL;
	Dwarf_Addr bias = 0;

	while ((cu = dwfl_module_nextcu(f->mod, cu, &bias)) != NULL) {
		Dwarf_Addr base, lo, hi;
		ptrdiff_t off = 0;

		while ((off = dwarf_ranges(cu, off, &base, &lo, &hi)) > 0) {
			if (lo >= hi)
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct cu_range *nt;

				nt = realloc(t, ncap * sizeof(*t));
				if (!nt) {
					free(t);
					return -ENOMEM;
				}
				t = nt;
				cap = ncap;
			}
			t[n++] = (struct cu_range){
				.lo = lo, .hi = hi, .cu = *cu,
			};
		}
	}
	if (n > 0)
		qsort(t, n, sizeof(*t), cu_range_compare);
	f->cu_ranges = t;
	f->ncu_ranges = n;
	f->cu_bias = bias;
	f->cu_ranges_read = true;
	return 0;
}

/*
 * The line table row for Dwfl address `a` found through f's compile unit
 * ranges, or NULL. Used when libdwfl's own lookup, which needs
 * .debug_aranges, found nothing.
 */
static Dwarf_Line *file_find_line(struct sym_file *f, GElf_Addr a)
{
	size_t lo = 0, hi;
	Dwarf_Addr da;

	if (!f->cu_ranges_read && file_read_cu_ranges(f) < 0)
		return NULL;
	if (f->ncu_ranges == 0 || a < f->cu_bias)
		return NULL;
	da = a - f->cu_bias;
	/* Find the last range starting at or below da. */
	hi = f->ncu_ranges;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->cu_ranges[mid].lo <= da)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || da >= f->cu_ranges[lo - 1].hi)
		return NULL;
	return dwarf_getsrc_die(&f->cu_ranges[lo - 1].cu, da);
}

/* Close the least recently used open Dwfl, if any. */
static void files_close_lru(struct symbols *s)
{
	struct sym_file *lru = NULL;

	for (uint32_t i = 0; i < s->nfiles; i++) {
		struct sym_file *f = &s->files[i];

		if (f->state != FILE_OK)
			continue;
		if (!lru || f->last_used < lru->last_used)
			lru = f;
	}
	if (!lru)
		return;
	file_close(lru);
	lru->state = FILE_NEW;
	s->nopen--;
}

/*
 * Resolve offset `off` (relative to the module's bias) in file `id` into *e,
 * opening the file when it is not open. Always fills every field of *e, with
 * a non-NULL function. Returns false when the result must not be cached
 * because it is the product of a transient failure (the file could not be
 * opened for lack of descriptors or memory, or a string not interned).
 */
static bool file_resolve(struct symbols *s, uint32_t id, uint64_t off,
			 struct sym_entry *e)
{
	struct sym_file *f = &s->files[id - 1];
	const char *name, *src;
	bool cacheable = true;
	GElf_Addr a;
	Dwfl_Line *line;
	Dwarf_Line *dline;
	Dwarf_Addr line_addr;
	int lineno, r;

	*e = (struct sym_entry){ .offset = off, .file_id = id };

	if (f->state == FILE_NEW) {
		if (s->nopen >= SYMBOLS_OPEN_MAX)
			files_close_lru(s);
		r = file_open(f);
		if (r == 0) {
			f->state = FILE_OK;
			s->nopen++;
		} else if (error_is_transient(r)) {
			cacheable = false;
		} else {
			f->state = FILE_BAD;
		}
	}

	if (f->state == FILE_OK) {
		f->last_used = ++s->tick;
		a = off + f->dwfl_bias;
		name = file_symbol(f, a);
		if (name && name[0]) {
			/* ".dynsym" names may carry their symbol version
			 * ("clock_gettime@@GLIBC_2.17"): one function, one name. */
			size_t nlen = strcspn(name, "@");

			if (nlen == 0)
				nlen = strlen(name);
			if (strings_intern(s, name, nlen, &e->function) == 0)
				e->known = true;
			else
				cacheable = false;
		}

		line = dwfl_module_getsrc(f->mod, a);
		lineno = 0;
		if (line) {
			src = dwfl_lineinfo(line, &line_addr, &lineno, NULL,
					    NULL, NULL);
		} else {
			dline = file_find_line(f, a);
			src = dline ? dwarf_linesrc(dline, NULL, NULL) : NULL;
			if (src && dwarf_lineno(dline, &lineno) != 0)
				src = NULL;
		}
		if (src && src[0] && lineno > 0) {
			if (strings_intern(s, src, strlen(src), &e->src) == 0)
				e->line = lineno;
			else
				cacheable = false;
		}
	}

	if (!e->function)
		e->function = strings_format(s, f->module, off);
	if (!e->function) {
		e->function = SYMBOLS_NOMEM_FUNCTION;
		cacheable = false;
	}
	return cacheable;
}

/* Return the cached entry for (id, off), or NULL. */
static const struct sym_entry *cache_find(const struct symbols *s, uint32_t id,
					  uint64_t off)
{
	size_t i;

	if (!s->cache)
		return NULL;
	for (i = hash_key(id, off) & s->cache_mask; s->cache[i].function;
	     i = (i + 1) & s->cache_mask) {
		const struct sym_entry *e = &s->cache[i];

		if (e->offset == off && e->file_id == id)
			return e;
	}
	return NULL;
}

/* Double the cache, or create it. Returns 0 or -ENOMEM. */
static int cache_grow(struct symbols *s)
{
	size_t cap = s->cache ? (s->cache_mask + 1) * 2 : CACHE_INITIAL_SLOTS;
	struct sym_entry *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (s->cache) {
		for (size_t i = 0; i <= s->cache_mask; i++) {
			const struct sym_entry *e = &s->cache[i];
			size_t j;

			if (!e->function)
				continue;
			j = hash_key(e->file_id, e->offset) & (cap - 1);
			while (t[j].function)
				j = (j + 1) & (cap - 1);
			t[j] = *e;
		}
		free(s->cache);
	}
	s->cache = t;
	s->cache_mask = cap - 1;
	return 0;
}

/*
 * Add *e, which must not be cached yet, keeping the load factor at most
 * 0.7. Returns 0 or -ENOMEM; a result that could not be cached is simply
 * resolved again next time.
 */
static int cache_insert(struct symbols *s, const struct sym_entry *e)
{
	size_t i;

	if (!s->cache || (s->cache_count + 1) * 10 > (s->cache_mask + 1) * 7) {
		int r = cache_grow(s);

		if (r < 0)
			return r;
	}
	for (i = hash_key(e->file_id, e->offset) & s->cache_mask;
	     s->cache[i].function; i = (i + 1) & s->cache_mask)
		;
	s->cache[i] = *e;
	s->cache_count++;
	return 0;
}

/*
 * Return the module entry whose [lo, hi) holds a, or NULL. When entries
 * overlap (an object was unloaded and another loaded in its place), the last
 * one wins: the map is filled in load order, so it is the newest.
 */
static const struct ring_module *modules_find(const struct ring_module *mods,
					      size_t nmods, uint64_t a)
{
	for (size_t i = nmods; i-- > 0;) {
		if (mods[i].lo <= a && a < mods[i].hi)
			return &mods[i];
	}
	return NULL;
}

struct symbols *symbols_new(void)
{
	return calloc(1, sizeof(struct symbols));
}

void symbols_free(struct symbols *s)
{
	struct arena_block *b, *next;

	if (!s)
		return;
	for (uint32_t i = 0; i < s->nfiles; i++)
		file_close(&s->files[i]);
	for (b = s->blocks; b; b = next) {
		next = b->next;
		free(b);
	}
	free(s->files);
	free(s->file_slots);
	free(s->cache);
	free(s->strs);
	free(s);
}

void symbols_lookup(struct symbols *s, const struct ring_module *mods,
		    size_t nmods, uint64_t addr, bool is_return,
		    struct symbols_frame *ret)
{
	/* A return address follows the call; addr - 1 is inside the call. */
	uint64_t a = is_return && addr > 0 ? addr - 1 : addr;
	const struct ring_module *m = modules_find(mods, nmods, a);
	const struct sym_entry *e;
	struct sym_entry fresh;
	uint64_t off = m ? a - m->bias : a;
	uint32_t id = 0;

	if (m && files_get(s, m, &id) < 0) {
		/* Out of memory: nothing can be interned or remembered. */
		*ret = (struct symbols_frame){
			.function = SYMBOLS_NOMEM_FUNCTION,
			.module = SYMBOLS_UNKNOWN_MODULE,
			.offset = off,
			.mod = m,
		};
		return;
	}

	e = cache_find(s, id, off);
	if (!e) {
		bool cacheable;

		if (id) {
			cacheable = file_resolve(s, id, off, &fresh);
		} else {
			fresh = (struct sym_entry){ .offset = off };
			fresh.function = strings_format(s, NULL, a);
			cacheable = fresh.function != NULL;
			if (!fresh.function)
				fresh.function = SYMBOLS_NOMEM_FUNCTION;
		}
		if (cacheable)
			(void)cache_insert(s, &fresh);
		e = &fresh;
	}

	*ret = (struct symbols_frame){
		.function = e->function,
		.module = id ? s->files[id - 1].module : SYMBOLS_UNKNOWN_MODULE,
		.file = e->src,
		.line = e->line,
		.offset = off,
		.known = e->known,
		.mod = m,
	};
}

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
 *   3. Function names come from dwfl_module_addrinfo() (.symtab, .dynsym or
 *      .gnu_debugdata) and file:line from dwfl_module_getsrc(). libdwfl
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
 */
#include "symbols.h"

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

enum file_state {
	FILE_NEW = 0,  /* not open: new, closed, or failed transiently */
	FILE_OK,       /* dwfl and mod are usable */
	FILE_BAD,      /* missing, not ELF, or a different build: never used */
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

/*
 * Open f's file and report it to a fresh offline Dwfl. Returns 0 with
 * f->dwfl, f->mod and f->dwfl_bias set, or a negative errno: the file is
 * missing (-ENOENT and the like), not a regular ELF executable or shared
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
	GElf_Off sym_off;
	GElf_Sym sym;
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
		name = dwfl_module_addrinfo(f->mod, a, &sym_off, &sym, NULL,
					    NULL, NULL);
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

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
 *      shares one entry. The entry's Dwfl is opened on first use, offline
 *      (dwfile.h). A file that is missing, not ELF, or of another build
 *      stays unusable for good; a transient failure (out of file
 *      descriptors or memory) is retried on a later lookup and its results
 *      are not cached.
 *   3. Function names are the names dwfl_module_addrinfo() would return
 *      (.symtab, .dynsym or .gnu_debugdata), answered from a sorted index of
 *      the file's symbols built when the file is opened (symindex.h):
 *      dwfl_module_addrinfo() itself reads the whole symbol table on every
 *      call, a millisecond per address in a library with tens of thousands
 *      of symbols. file:line come from dwfl_module_getsrc(), or from the
 *      file's compile unit ranges where libdwfl finds none (dwfile.h).
 *      The name is then demangled (demangle.h) as it is interned, here and
 *      not in the index, whose equality with dwfl_module_addrinfo() is on
 *      raw names; the raw name is kept as the system name.
 *   4. Results are cached per (file, offset relative to the module's bias)
 *      in an open-addressing hash table, so a repeated address costs one
 *      module scan, one file-table probe and one cache probe.
 *   5. An address in no module, of a process registered with
 *      symbols_jit_open(), is looked up in that process' perf map
 *      (perfmap.h), read again for what was appended when the address is
 *      not in it, at most every SYMBOLS_JIT_REREAD_NS: a stack walker's
 *      stray address in no code would otherwise cost a read at every
 *      lookup. Those results are not cached (each perf map is its own
 *      sorted table); an address not found there gets the "0x<addr>" of
 *      step 4's cache, which is the same for every process.
 *
 * An open Dwfl can hold file descriptors (a separate debug file, and the
 * two sockets of the debuginfod client libdwfl creates when a debug file is
 * not found locally), so at most SYMBOLS_OPEN_MAX Dwfls are open at once:
 * opening one more closes the least recently used, which is reopened, and
 * its build id checked again, only if a new offset in it is looked up.
 *
 * Every string handed out is interned in a pool owned by the symbolizer
 * (strpool.h), so equal strings are the same pointer and all of them stay
 * valid until symbols_free().
 */
#include "symbols/symbols.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "symbols/demangle.h"
#include "symbols/dwfile.h"
#include "symbols/perfmap.h"
#include "symbols/strpool.h"
#include "util/table.h"

/* Module name reported for an address that lies in no module. */
#define SYMBOLS_UNKNOWN_MODULE "[unknown]"

/*
 * Function name reported when not even the fallback string could be
 * allocated. A string literal, so it needs no memory and never dangles.
 */
#define SYMBOLS_NOMEM_FUNCTION "[no memory]"

/* Most Dwfl sessions open at once; see the comment at the top. */
#define SYMBOLS_OPEN_MAX 128

/*
 * What the perf maps of all processes may take together: text read and
 * entries kept (24 bytes each, names interned apart). A V8 server with
 * --perf-basic-prof appends a line for every function it compiles and
 * never removes one, so a long recording must stop somewhere; past this,
 * code compiled later stays unnamed and one line says so.
 */
#define SYMBOLS_JIT_BYTES_MAX (64ull << 20)
#define SYMBOLS_JIT_ENTRIES_MAX (1ull << 20)

/* Shortest time between two reads of one perf map for missing addresses. */
#define SYMBOLS_JIT_REREAD_NS 100000000ull

/* Lines symbols_warning() holds before dropping new ones, and their size. */
#define SYMBOLS_WARNINGS_MAX 8
#define SYMBOLS_WARNING_LEN 320

/* Initial slot counts of the hash tables; each is a power of two. */
#define CACHE_INITIAL_SLOTS 1024
#define FILES_INITIAL_SLOTS 64

/* Longest fallback name: a module basename, "+0x" and 16 hex digits. */
#define FALLBACK_NAME_MAX (RING_MODULE_PATH_MAX + 32)

enum file_state {
	FILE_NEW = 0,  /* not open: new, closed, or failed transiently */
	FILE_OK,       /* df is open: its dwfl and mod are usable */
	FILE_BAD,      /* missing, not ELF, or a different build: never used */
};

/*
 * One ELF file of the file table: its identity (hash and length of the
 * path, which with the build id are in `df`), what became of opening it,
 * and its Dwfl session. `df.path` and `df.module` are interned strings.
 */
struct sym_file {
	uint64_t hash;
	uint32_t path_len;
	enum file_state state;
	uint64_t last_used;         /* symbols.tick at its last use */
	struct dwfile df;
};

/*
 * A cached result. `file_id` is an index into the file table plus one, or 0
 * for addresses in no module (then `offset` is the address itself). A NULL
 * `function` marks an empty slot.
 */
struct sym_entry {
	uint64_t offset;
	const char *function;
	const char *system_name;
	const char *src;
	int32_t line;
	uint32_t file_id;
	bool known;
};

/* One process' perf map (id - 1 in symbols.jits). */
struct sym_jit {
	struct perfmap map;
	uint64_t last_read_ns;      /* CLOCK_MONOTONIC; 0: never read */
	bool stopped;               /* refused or unreadable: not read again */
	bool told_malformed;
};

struct symbols {
	/* How Dwfls search for separate debug files (dwfile_callbacks()),
	 * and the search path it points at: NULL for libdwfl's default. */
	Dwfl_Callbacks callbacks;
	char *debug_path;

	/* Perf maps, by id - 1, and what they may still take. */
	struct sym_jit *jits;
	uint32_t njits;
	size_t jits_cap;
	struct perfmap_budget budget;
	bool told_budget;

	/* Lines for symbols_warning(), oldest at warn_head. */
	char warnings[SYMBOLS_WARNINGS_MAX][SYMBOLS_WARNING_LEN];
	unsigned warn_head, nwarnings;
	char warning[SYMBOLS_WARNING_LEN];

	/* Files, by id - 1, and a hash index over them holding ids. */
	struct sym_file *files;
	uint32_t nfiles;
	size_t files_cap;
	uint32_t *file_slots;       /* 0 marks an empty slot */
	size_t file_mask;
	uint32_t nopen;             /* files in state FILE_OK */
	uint64_t tick;              /* advanced by each use of an open file */

	/* Result cache keyed by (file id, offset). */
	struct sym_entry *cache;
	size_t cache_mask;
	size_t cache_count;

	/* Every string handed out. */
	struct strpool strings;
};

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
	if (strpool_intern(&s->strings, buf, (size_t)n, &ret) < 0)
		return NULL;
	return ret;
}

/*
 * Intern symbol `name` as the function name a frame shows, demangled, in
 * *ret_function, and as its system name in *ret_system (the same pointer
 * when demangling changed nothing). Returns 0, or -ENOMEM with neither set.
 */
static int strings_name(struct symbols *s, const char *name,
			const char **ret_function, const char **ret_system)
{
	char readable[DEMANGLE_OUTPUT_MAX];
	/* ".dynsym" names may carry their symbol version
	 * ("clock_gettime@@GLIBC_2.17"): one function, one name. */
	size_t len = strcspn(name, "@"), rlen;
	const char *sys, *fn;

	if (len == 0)
		len = strlen(name);
	if (strpool_intern(&s->strings, name, len, &sys) < 0)
		return -ENOMEM;
	fn = sys;
	rlen = demangle_name(name, len, readable, sizeof(readable));
	if (rlen > 0 && strpool_intern(&s->strings, readable, rlen, &fn) < 0)
		return -ENOMEM;
	*ret_function = fn;
	*ret_system = sys;
	return 0;
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
 * it; dwfile_open() does that on the first lookup that needs it.
 */
static int files_get(struct symbols *s, const struct ring_module *m,
		     uint32_t *ret_id)
{
	size_t path_len = strnlen(m->path, RING_MODULE_PATH_MAX);
	uint32_t bid_len = m->build_id_len;
	uint64_t h = strpool_hash(m->build_id, bid_len,
				  strpool_hash(m->path, path_len, 0));
	struct sym_file *f;
	const char *base;
	size_t base_len, i;
	int r;

	if (s->file_slots) {
		for (i = h & s->file_mask; s->file_slots[i];
		     i = (i + 1) & s->file_mask) {
			f = &s->files[s->file_slots[i] - 1];
			if (f->hash == h && f->path_len == path_len &&
			    f->df.build_id_len == bid_len &&
			    memcmp(f->df.path, m->path, path_len) == 0 &&
			    memcmp(f->df.build_id, m->build_id, bid_len) == 0) {
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
	if (s->nfiles == s->files_cap &&
	    TABLE_GROW(s->files, s->files_cap, 16) < 0)
		return -ENOMEM;

	f = &s->files[s->nfiles];
	memset(f, 0, sizeof(*f));
	f->hash = h;
	f->path_len = (uint32_t)path_len;
	f->df.build_id_len = bid_len;
	memcpy(f->df.build_id, m->build_id, bid_len);
	f->df.callbacks = &s->callbacks;
	f->state = FILE_NEW;
	r = strpool_intern(&s->strings, m->path, path_len, &f->df.path);
	if (r < 0)
		return r;
	base = path_basename(f->df.path, path_len, &base_len);
	r = strpool_intern(&s->strings, base, base_len, &f->df.module);
	if (r < 0)
		return r;

	s->nfiles++;
	for (i = h & s->file_mask; s->file_slots[i]; i = (i + 1) & s->file_mask)
		;
	s->file_slots[i] = s->nfiles;
	*ret_id = s->nfiles;
	return 0;
}

/* Close the least recently used open Dwfl, if any. Its cached results stay
 * valid: their strings were interned. */
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
	dwfile_close(&lru->df);
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
	int lineno, r;

	*e = (struct sym_entry){ .offset = off, .file_id = id };

	if (f->state == FILE_NEW) {
		if (s->nopen >= SYMBOLS_OPEN_MAX)
			files_close_lru(s);
		r = dwfile_open(&f->df);
		if (r == 0) {
			f->state = FILE_OK;
			s->nopen++;
		} else if (dwfile_error_is_transient(r)) {
			cacheable = false;
		} else {
			f->state = FILE_BAD;
		}
	}

	if (f->state == FILE_OK) {
		f->last_used = ++s->tick;
		a = off + f->df.dwfl_bias;
		name = symindex_name(&f->df.index, a);
		if (name && name[0]) {
			if (strings_name(s, name, &e->function,
					 &e->system_name) == 0)
				e->known = true;
			else
				cacheable = false;
		}

		src = dwfile_source(&f->df, a, &lineno);
		if (src && src[0] && lineno > 0) {
			if (strpool_intern(&s->strings, src, strlen(src),
					   &e->src) == 0)
				e->line = lineno;
			else
				cacheable = false;
		}
	}

	if (!e->function)
		e->function = strings_format(s, f->df.module, off);
	if (!e->function) {
		e->function = SYMBOLS_NOMEM_FUNCTION;
		cacheable = false;
	}
	if (!e->system_name)
		e->system_name = e->function;
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
	struct symbols *s = calloc(1, sizeof(struct symbols));

	if (!s)
		return NULL;
	dwfile_callbacks(&s->callbacks, &s->debug_path);
	s->budget = (struct perfmap_budget){
		.bytes = SYMBOLS_JIT_BYTES_MAX,
		.entries = SYMBOLS_JIT_ENTRIES_MAX,
	};
	return s;
}

void symbols_free(struct symbols *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->nfiles; i++)
		dwfile_close(&s->files[i].df);
	for (uint32_t i = 0; i < s->njits; i++)
		perfmap_free(&s->jits[i].map);
	strpool_free(&s->strings);
	free(s->jits);
	free(s->debug_path);
	free(s->files);
	free(s->file_slots);
	free(s->cache);
	free(s);
}

int symbols_set_debug_dirs(struct symbols *s, const char *dirs)
{
	/* libdwfl's syntax (dwfile_callbacks()): the file's own directory
	 * (the empty entry) and its .debug/, then these, then the default
	 * root. */
	static const char head[] = ":.debug:", tail[] = ":/usr/lib/debug";
	size_t n = strlen(dirs);
	char *p = malloc(sizeof(head) - 1 + n + sizeof(tail));

	if (!p)
		return -ENOMEM;
	memcpy(p, head, sizeof(head) - 1);
	memcpy(p + sizeof(head) - 1, dirs, n);
	memcpy(p + sizeof(head) - 1 + n, tail, sizeof(tail));
	free(s->debug_path);
	s->debug_path = p;
	return 0;
}

/* Queue one line for symbols_warning(); dropped when the queue is full. */
__attribute__((format(printf, 2, 3)))
static void symbols_warn(struct symbols *s, const char *fmt, ...)
{
	va_list ap;

	if (s->nwarnings == SYMBOLS_WARNINGS_MAX)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(s->warnings[(s->warn_head + s->nwarnings) %
				    SYMBOLS_WARNINGS_MAX],
			SYMBOLS_WARNING_LEN, fmt, ap);
	va_end(ap);
	s->nwarnings++;
}

const char *symbols_warning(struct symbols *s)
{
	if (s->nwarnings == 0)
		return NULL;
	memcpy(s->warning, s->warnings[s->warn_head], sizeof(s->warning));
	s->warn_head = (s->warn_head + 1) % SYMBOLS_WARNINGS_MAX;
	s->nwarnings--;
	return s->warning;
}

uint32_t symbols_jit_open(struct symbols *s, uint32_t pid, uint32_t uid)
{
	struct sym_jit *j;

	if (s->njits == UINT32_MAX ||
	    (s->njits == s->jits_cap && TABLE_GROW(s->jits, s->jits_cap, 16) < 0))
		return 0;
	j = &s->jits[s->njits++];
	memset(j, 0, sizeof(*j));
	perfmap_init(&j->map, pid, uid);
	return s->njits;
}

static uint64_t symbols_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Read what was appended to j's perf map, and say once what went wrong. */
static void jit_read(struct symbols *s, struct sym_jit *j)
{
	int r;

	if (j->stopped)
		return;
	j->last_read_ns = symbols_now_ns();
	r = perfmap_read(&j->map, &s->strings, &s->budget);
	if (r == -ENOSPC && !s->told_budget) {
		s->told_budget = true;
		symbols_warn(s, "perf maps: more than %llu MiB or %llu entries "
			     "altogether; JIT code compiled later (pid %u's "
			     "and others') stays unnamed",
			     SYMBOLS_JIT_BYTES_MAX >> 20,
			     SYMBOLS_JIT_ENTRIES_MAX, (unsigned)j->map.pid);
	} else if (r == -EPERM) {
		j->stopped = true;
		symbols_warn(s, "%s: not read: not a regular file owned by "
			     "root or uid %u and not writable by others; pid "
			     "%u's JIT code stays unnamed",
			     j->map.path, (unsigned)j->map.uid,
			     (unsigned)j->map.pid);
	} else if (r < 0 && r != -ENOMEM && r != -EMFILE && r != -ENFILE &&
		   r != -ENOSPC) {
		j->stopped = true;
		symbols_warn(s, "%s: %s; pid %u's JIT code stays unnamed",
			     j->map.path, strerror(-r), (unsigned)j->map.pid);
	}
	if (j->map.malformed && !j->told_malformed) {
		j->told_malformed = true;
		symbols_warn(s, "%s: malformed lines skipped (not \"START SIZE "
			     "NAME\" in hex)", j->map.path);
	}
}

void symbols_jit_exited(struct symbols *s, uint32_t jit)
{
	struct sym_jit *j;

	if (jit == 0 || jit > s->njits)
		return;
	j = &s->jits[jit - 1];
	if (j->map.sealed)
		return;
	jit_read(s, j);
	perfmap_seal(&j->map);
}

/*
 * Name address a of process jit from its perf map into *ret, reading what
 * was appended when a is not in it (no more often than
 * SYMBOLS_JIT_REREAD_NS). Returns false when the map does not name a.
 */
static bool jit_lookup(struct symbols *s, uint32_t jit, uint64_t a,
		       struct symbols_frame *ret)
{
	const struct perfmap_sym *e;
	struct sym_jit *j;

	if (jit == 0 || jit > s->njits)
		return false;
	j = &s->jits[jit - 1];
	e = perfmap_find(&j->map, a);
	if (!e && !j->map.sealed && !j->stopped &&
	    (j->last_read_ns == 0 ||
	     symbols_now_ns() - j->last_read_ns >= SYMBOLS_JIT_REREAD_NS)) {
		jit_read(s, j);
		e = perfmap_find(&j->map, a);
	}
	if (!e)
		return false;
	*ret = (struct symbols_frame){
		.function = e->name,
		.system_name = e->name,
		.module = SYMBOLS_JIT_MODULE,
		.offset = a - e->start,
		.known = true,
		.jit = true,
	};
	return true;
}

void symbols_lookup(struct symbols *s, uint32_t jit,
		    const struct ring_module *mods, size_t nmods, uint64_t addr,
		    bool is_return, struct symbols_frame *ret)
{
	/* A return address follows the call; addr - 1 is inside the call. */
	uint64_t a = is_return && addr > 0 ? addr - 1 : addr;
	const struct ring_module *m = modules_find(mods, nmods, a);
	const struct sym_entry *e;
	struct sym_entry fresh;
	uint64_t off = m ? a - m->bias : a;
	uint32_t id = 0;

	if (!m && jit_lookup(s, jit, a, ret))
		return;
	if (m && files_get(s, m, &id) < 0) {
		/* Out of memory: nothing can be interned or remembered. */
		*ret = (struct symbols_frame){
			.function = SYMBOLS_NOMEM_FUNCTION,
			.system_name = SYMBOLS_NOMEM_FUNCTION,
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
			fresh.system_name = fresh.function;
		}
		if (cacheable)
			(void)cache_insert(s, &fresh);
		e = &fresh;
	}

	*ret = (struct symbols_frame){
		.function = e->function,
		.system_name = e->system_name,
		.module = id ? s->files[id - 1].df.module
			     : SYMBOLS_UNKNOWN_MODULE,
		.file = e->src,
		.line = e->line,
		.offset = off,
		.known = e->known,
		.mod = m,
	};
}

/*
 * symbols.h — out-of-process symbolization with elfutils' libdw.
 *
 * The collector never looks into a server's memory: a sample is a list of
 * addresses, and the ring's module map says which ELF file (path, load bias,
 * build id) was mapped where. This module opens those files itself, so it
 * works after the server has exited, and resolves an address to a function
 * name, the module's name and, where debug information exists, file:line.
 *
 * Names are made readable where they are interned (demangle.h): C++ and
 * Rust names come out demangled, without parameter lists, in every output;
 * the symbol's own name stays the frame's system_name.
 *
 * Code compiled at run time (V8, the JVM, LuaJIT, CPython's perf
 * trampolines) is in no module: for a process registered with
 * symbols_jit_open(), such an address is named from the runtime's perf map,
 * /tmp/perf-PID.map (perfmap.h), under the module name "[jit]".
 *
 * Separate debug files are found as gdb finds them: by build id under
 * /usr/lib/debug/.build-id/ (what Debian's -dbgsym packages install), by
 * .gnu_debuglink next to the file, in its .debug/ directory or under
 * /usr/lib/debug; symbols_set_debug_dirs() adds directories searched like
 * /usr/lib/debug. A file's MiniDebugInfo (.gnu_debugdata, the xz-compressed
 * symbol table of Fedora's and others' stripped binaries) is read too.
 *
 * One `struct symbols` serves every process: ELF files are opened once per
 * (path, build id) and shared by all processes that map them (nginx workers
 * share the nginx binary), and results are cached per file offset. A file's
 * function names are the ones elfutils' dwfl_module_addrinfo() gives, but
 * an address not cached yet costs a binary search in an index of the file's
 * symbols (24 bytes per symbol, built when the file is opened), not a scan
 * of its whole symbol table.
 *
 * Not thread-safe; the collector is single-threaded.
 */
#ifndef PROFSHIM_SYMBOLS_H
#define PROFSHIM_SYMBOLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring_format.h"

struct symbols;

/* Module name of code named from a runtime's perf map. */
#define SYMBOLS_JIT_MODULE "[jit]"

struct symbols_frame {
	const char *function; /* "render_page", "ns::Class<int>::method"
			       * (demangled), "JS:*handler /srv/app.js:10:3"
			       * (a perf map's), or "server+0x1a2b" unknown */
	const char *system_name; /* the symbol as in the file
				  * ("_ZN2ns5Class...") or perf map; the
				  * same pointer as function when equal */
	const char *module;   /* basename of the module's path, "[jit]", or
			       * "[unknown]" */
	const char *file;     /* source file, or NULL without debug info */
	int line;             /* source line, or 0 */
	uint64_t offset;      /* address relative to the module's bias */
	bool known;           /* a symbol was found for the address */
	bool jit;             /* named from a perf map (mod is NULL) */
	const struct ring_module *mod; /* the entry of mods it is in, or NULL */
};

/* Create an empty symbolizer. Returns NULL when out of memory. */
struct symbols *symbols_new(void);

/* Free the symbolizer and every string it handed out. NULL is a no-op. */
void symbols_free(struct symbols *s);

/*
 * Also look for separate debug files under each directory of the
 * colon-separated list `dirs`, as under /usr/lib/debug (DIR/.build-id/xx/
 * yyyy.debug, and DIR/<directory of the file>/<its .gnu_debuglink name>);
 * they are searched before /usr/lib/debug. Affects files opened from then
 * on. Returns 0 or -ENOMEM.
 */
int symbols_set_debug_dirs(struct symbols *s, const char *dirs);

/*
 * Register a process whose code outside its modules is to be named from
 * its perf map, /tmp/perf-PID.map: a file that root or `uid` (the owner of
 * the process' ring) owns. Returns the id to pass to symbols_lookup() for
 * that process (not 0), or 0 when out of memory: its JIT code then stays
 * unnamed. Each call makes a new id, so a process of a reused pid has a
 * map of its own.
 */
uint32_t symbols_jit_open(struct symbols *s, uint32_t pid, uint32_t uid);

/*
 * The process of `jit` has exited: read what its perf map holds one last
 * time, then never again (another process may get its pid). Its names are
 * kept for lookups. 0 is a no-op.
 */
void symbols_jit_exited(struct symbols *s, uint32_t jit);

/*
 * The next line that the symbolizer has to say (a perf map refused or
 * capped, once each), or NULL. The string is valid until the next call.
 * The caller, at the top, prints it.
 */
const char *symbols_warning(struct symbols *s);

/*
 * Resolve `addr`, an address in the process whose module map is
 * mods[0..nmods) and whose perf map is `jit` (symbols_jit_open(), or 0 for
 * none). `is_return` says the address is a return address (every
 * frame but the leaf): the call site, addr - 1, is what is looked up.
 * Always fills *ret: an address in no module gives the name its process'
 * perf map gives it, with module "[jit]", or else function "0x<addr>" and
 * module "[unknown]"; an address in a module whose file cannot be read or
 * has no symbol there gives "<module>+0x<offset>". An address in no module
 * and not in the perf map as read so far makes the symbolizer read what
 * was appended to the map since (at most every 100 ms a process, until it
 * exits). The strings stay valid
 * until symbols_free() and are interned: equal strings are the same
 * pointer, so callers may compare and hash them by address. The module entries must already be validated
 * (NUL-terminated path, build_id_len <= RING_BUILD_ID_MAX).
 *
 * A file whose build id differs from the one in the map (the file was
 * replaced after the server started) is not used for symbols.
 */
void symbols_lookup(struct symbols *s, uint32_t jit,
		    const struct ring_module *mods, size_t nmods, uint64_t addr,
		    bool is_return, struct symbols_frame *ret);

#endif /* PROFSHIM_SYMBOLS_H */

/*
 * symbols.h — out-of-process symbolization with elfutils' libdw.
 *
 * The collector never looks into a server's memory: a sample is a list of
 * addresses, and the ring's module map says which ELF file (path, load bias,
 * build id) was mapped where. This module opens those files itself, so it
 * works after the server has exited, and resolves an address to a function
 * name, the module's name and, where debug information exists, file:line.
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

struct symbols_frame {
	const char *function; /* "render_page", or "server+0x1a2b" when unknown */
	const char *module;   /* basename of the module's path, or "[unknown]" */
	const char *file;     /* source file, or NULL without debug info */
	int line;             /* source line, or 0 */
	uint64_t offset;      /* address relative to the module's bias */
	bool known;           /* a symbol was found for the address */
	const struct ring_module *mod; /* the entry of mods it is in, or NULL */
};

/* Create an empty symbolizer. Returns NULL when out of memory. */
struct symbols *symbols_new(void);

/* Free the symbolizer and every string it handed out. NULL is a no-op. */
void symbols_free(struct symbols *s);

/*
 * Resolve `addr`, an address in the process whose module map is
 * mods[0..nmods). `is_return` says the address is a return address (every
 * frame but the leaf): the call site, addr - 1, is what is looked up.
 * Always fills *ret: an address in no module gives function "0x<addr>" and
 * module "[unknown]"; an address in a module whose file cannot be read or
 * has no symbol there gives "<module>+0x<offset>". The strings stay valid
 * until symbols_free() and are interned: equal strings are the same
 * pointer, so callers may compare and hash them by address. The module entries must already be validated
 * (NUL-terminated path, build_id_len <= RING_BUILD_ID_MAX).
 *
 * A file whose build id differs from the one in the map (the file was
 * replaced after the server started) is not used for symbols.
 */
void symbols_lookup(struct symbols *s, const struct ring_module *mods,
		    size_t nmods, uint64_t addr, bool is_return,
		    struct symbols_frame *ret);

#endif /* PROFSHIM_SYMBOLS_H */

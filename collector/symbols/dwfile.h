/*
 * dwfile.h — one ELF file of a module map, opened offline in a Dwfl session
 * of its own: function names (through its symbol index, symindex.h) and
 * source lines of addresses in it.
 *
 * An open Dwfl can hold file descriptors (a separate debug file, and the
 * two sockets of the debuginfod client libdwfl creates when a debug file is
 * not found locally), so the symbolizer keeps only so many open and closes
 * the least recently used (symbols.c); a closed file can be opened again.
 */
#ifndef PROFSHIM_DWFILE_H
#define PROFSHIM_DWFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <elfutils/libdwfl.h>

#include "ring_format.h"
#include "symbols/symindex.h"

/* One address range of a compile unit, in DWARF addresses. */
struct cu_range {
	Dwarf_Addr lo;
	Dwarf_Addr hi;
	Dwarf_Die cu;
};

/*
 * One ELF file, identified by its path and the build id the module map
 * recorded for it (empty when the map has none); the caller sets those
 * before dwfile_open(). `dwfl`, the index and `cu_ranges` belong to the
 * file while it is open and are freed by dwfile_close().
 */
struct dwfile {
	const char *path;           /* NUL-terminated, stays valid */
	const Dwfl_Callbacks *callbacks; /* dwfile_callbacks(), outliving f;
					  * NULL: the default search */
	const char *module;         /* basename of path, the module's name */
	uint32_t build_id_len;
	uint8_t build_id[RING_BUILD_ID_MAX];
	Dwfl *dwfl;
	Dwfl_Module *mod;
	GElf_Addr dwfl_bias;        /* Dwfl address - file address */
	struct symindex index;      /* the function names while open */
	bool cu_ranges_read;        /* cu_ranges was built (maybe empty) */
	struct cu_range *cu_ranges; /* sorted by lo, or NULL */
	size_t ncu_ranges;
	Dwarf_Addr cu_bias;         /* Dwfl address - DWARF address */
};

/*
 * Fill *ret with the callbacks of the per-file Dwfl sessions: the file
 * itself is reported offline; its separate debug file is searched by build
 * id and by .gnu_debuglink along *debuginfo_path, in libdwfl's syntax
 * (":.debug:/usr/lib/debug" when *debuginfo_path is NULL: the file's
 * directory, its .debug/ subdirectory, then /usr/lib/debug, whose
 * .build-id/ tree is what Debian's -dbgsym packages install). libdwfl
 * keeps pointers to both, so they must outlive every Dwfl opened with them.
 * A file's .gnu_debugdata (MiniDebugInfo) is read by libdwfl itself when
 * no separate debug file gives a symbol table.
 */
void dwfile_callbacks(Dwfl_Callbacks *ret, char **debuginfo_path);

/*
 * Open f's file and report it to a fresh offline Dwfl, with f->callbacks. Returns 0 with
 * f->dwfl, f->mod, f->dwfl_bias and the symbol index set, or a negative
 * errno: the file is missing (-ENOENT and the like), not a regular ELF
 * executable or shared
 * object (-ENOEXEC), or not the build the map recorded (-ESTALE). Nothing is
 * left open on failure. The path is opened non-blocking and checked to be a
 * regular file first, so a FIFO or device named by an untrusted map cannot
 * block or confuse the collector.
 */
int dwfile_open(struct dwfile *f);

/*
 * True for a dwfile_open() error that may go away by itself: out of file
 * descriptors or memory, or interrupted. Such a file is tried again later.
 */
bool dwfile_error_is_transient(int r);

/* Release everything f holds open (strings it returned are gone with it);
 * f may be opened again. */
void dwfile_close(struct dwfile *f);

/*
 * The source file of Dwfl address a in open file f, or NULL, and its line
 * in *ret_line (0 when not known). libdwfl finds a compile
 * unit through .debug_aranges only, which clang does not emit by default,
 * so when that fails the file's compile unit ranges are read once into a
 * sorted table and searched instead. The string belongs to f's Dwfl:
 * intern it before closing f.
 */
const char *dwfile_source(struct dwfile *f, GElf_Addr a, int *ret_line);

#endif /* PROFSHIM_DWFILE_H */

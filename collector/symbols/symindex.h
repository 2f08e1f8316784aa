/*
 * symindex.h — the function name dwfl_module_addrinfo() would give an
 * address of an open file, answered from a sorted index of the file's
 * symbols (24 bytes a symbol, built when the file is opened):
 * dwfl_module_addrinfo() itself reads the whole symbol table on every call,
 * a millisecond per address in a library with tens of thousands of symbols.
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
 * pointers into libelf, is freed with the Dwfl in dwfile_close().
 *
 * dwfl_module_addrinfo() is still called, for that address only, when the
 * walk down meets more than SYMINDEX_WALK_MAX entries (symbols nested in a
 * larger one, seen in no file tested), and for a whole file on PowerPC64,
 * whose function descriptors libdwfl resolves through its backend and also
 * tries under their unresolved value, when a size or value + size does not
 * fit the index (st_size of 4 GiB or more, or a sum that wraps), or when the
 * index cannot be allocated.
 */
#ifndef PROFSHIM_SYMINDEX_H
#define PROFSHIM_SYMINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <elfutils/libdwfl.h>
#include <gelf.h>

/*
 * One candidate symbol (R1 above) of a file's index, 24 bytes. `value` is
 * its Dwfl address and `max_end` the highest value + st_size of this and
 * every entry before it in its pass's part of the index.
 */
struct symindex_entry {
	uint64_t value;
	uint64_t max_end;
	uint32_t size;
	uint32_t ndx_rank;     /* table index << 2 | binding rank (R3) */
};

/*
 * The index of one open module: the locals' candidates, then the globals',
 * each part sorted by (value, table index). When !ok, lookups are answered
 * by dwfl_module_addrinfo() instead. All zero is an empty, unusable index.
 */
struct symindex {
	bool ok;
	Dwfl_Module *mod;      /* the module it was built from */
	struct symindex_entry *v;
	size_t nlocal;
	size_t nglobal;
};

/*
 * Build x from open module mod, whose ELF header is ehdr (rules above).
 * Sets x->ok when lookups may use it; leaves it false, so that
 * dwfl_module_addrinfo() answers, for a PowerPC64 file, a symbol the index
 * cannot represent, or when out of memory. A module without a usable
 * symbol table gets an empty index, which finds nothing, as
 * dwfl_module_addrinfo() does. x must be empty (all zero or freed).
 */
void symindex_build(struct symindex *x, Dwfl_Module *mod,
		    const GElf_Ehdr *ehdr);

/*
 * Look Dwfl address a up in x (x->ok; rules above). Sets *ret_ndx to the
 * table index of the symbol dwfl_module_addrinfo() would return, or 0 when
 * it would return NULL, and returns 0; returns -E2BIG when the index cannot
 * tell cheaply (SYMINDEX_WALK_MAX).
 */
int symindex_lookup(const struct symindex *x, uint64_t a, uint32_t *ret_ndx);

/*
 * The name dwfl_module_addrinfo() gives Dwfl address a in x's module, or
 * NULL: from the index when it can tell, else from dwfl_module_addrinfo().
 * The string belongs to the module's Dwfl: intern it before closing that.
 */
const char *symindex_name(const struct symindex *x, GElf_Addr a);

/* Free x's entries; x is then empty. The module is not the index's. */
void symindex_free(struct symindex *x);

#endif /* PROFSHIM_SYMINDEX_H */

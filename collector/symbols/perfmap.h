/*
 * perfmap.h — names of JIT-compiled code from a runtime's perf map.
 *
 * Code a runtime compiles at run time (V8 with --perf-basic-prof, the JVM
 * with a perf map agent, LuaJIT, CPython 3.12's -X perf trampolines) lies
 * in anonymous executable memory, in no ELF file of the process' module
 * map. Such runtimes append a line for each piece of code to
 * /tmp/perf-PID.map, the convention of Linux perf:
 *
 *     START SIZE NAME\n
 *
 * START and SIZE in hex (without "0x", which is accepted too), NAME the
 * rest of the line. The collector runs on the same host and reads that file
 * itself: when an address is in no module, the symbolizer reads what was
 * appended since its last read (from the last complete line on) and looks
 * the address up again. What was read is kept after the process exits, so
 * its names outlive it and the file (which another process of the same pid
 * may later overwrite) is read no more once the process is known to have
 * exited (perfmap_seal()).
 *
 * The file is untrusted: another user could create /tmp/perf-PID.map
 * before the runtime does, and any runtime may write garbage. It is opened
 * with O_NOFOLLOW (a symbolic link is refused) and O_NONBLOCK (a FIFO
 * cannot block the collector) and read only when fstat() says it is a
 * regular file, not writable by others, owned by root or by the user the
 * process' ring belongs to. A malformed line (bad hex, no name, a zero
 * size, a range that wraps, longer than PERFMAP_LINE_MAX) is skipped and
 * counted. Memory is bounded for all maps together (struct perfmap_budget).
 *
 * When ranges overlap (a runtime reused memory for new code), the line
 * read later wins: the older entry it overlaps is dropped.
 */
#ifndef PROFSHIM_PERFMAP_H
#define PROFSHIM_PERFMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "symbols/strpool.h"

/* Longest line read; a longer one is skipped as malformed. */
#define PERFMAP_LINE_MAX 4096

/* One piece of code: [start, start + size), its interned name, and the
 * order in which its line was read (later wins on overlap). */
struct perfmap_sym {
	uint64_t start;
	uint32_t size;
	uint32_t seq;
	const char *name;
};

/*
 * What all perf maps of one symbolizer may still take: bytes of text read
 * and entries kept. A read that would go past either stops there, and the
 * map reads nothing more (capped).
 */
struct perfmap_budget {
	uint64_t bytes;
	uint64_t entries;
};

/* One process' map. Set path, pid and uid (perfmap_init()); the rest is
 * the map's own. */
struct perfmap {
	char path[64];
	uint32_t pid;
	uint32_t uid;          /* besides root, who may own the file */
	bool sealed;           /* never read again (perfmap_seal()) */
	bool capped;           /* the budget ran out while reading it */
	bool skipping;         /* offset is inside a line too long to keep */
	uint64_t offset;       /* bytes read: always just after a '\n' */
	uint64_t dev, ino;     /* the file offset counts in, 0 before */
	uint64_t malformed;    /* lines skipped */
	uint32_t seq;          /* lines read so far */
	struct perfmap_sym *v; /* sorted by start, not overlapping */
	size_t n, cap;
};

/* Make m the empty map of process pid at /tmp/perf-PID.map, which root or
 * uid may own. */
void perfmap_init(struct perfmap *m, uint32_t pid, uint32_t uid);

/*
 * Read what was appended to m's file since the last read, interning names
 * in pool and charging budget. Returns the number of entries added (0 when
 * nothing new, the map is sealed or capped, or the file does not exist),
 * or a negative errno: -EPERM when the file is not one m may trust (not a
 * regular file, a link, owned by another user, writable by others),
 * -ENOSPC when the budget ran out during this read (what was read before
 * stays), -ENOMEM, or what open() or read() said. A partial last line (the
 * runtime is writing it) is left for the next read.
 */
int perfmap_read(struct perfmap *m, struct strpool *pool,
		 struct perfmap_budget *budget);

/* Read no more of m's file (its process has exited); its entries stay. */
void perfmap_seal(struct perfmap *m);

/* The entry whose range holds addr, or NULL. */
const struct perfmap_sym *perfmap_find(const struct perfmap *m, uint64_t addr);

/* Free m's entries (the names are the pool's); m is then empty. */
void perfmap_free(struct perfmap *m);

#endif /* PROFSHIM_PERFMAP_H */

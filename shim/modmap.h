/*
 * modmap.h — the module map in the ring: which ELF object is mapped where,
 * with its build id, so the collector can symbolize out of process, even
 * after the server has exited.
 *
 * Called from hooks (ring creation, then at most once a second), never from
 * the signal handler: it calls dl_iterate_phdr(), which takes the dynamic
 * loader's lock. Not re-entrant: callers make sure one thread scans at a
 * time. Entries are appended, never changed, and each is published with a
 * store-release of modules_count.
 */
#ifndef PROFSHIM_MODMAP_H
#define PROFSHIM_MODMAP_H

#include "ring_format.h"

/*
 * Append every loaded object not yet in h's module map. `exe` is the main
 * executable's path (dl_iterate_phdr names it ""). Returns the number of
 * modules added, or -ENOSPC when the map is full (what fitted was added).
 */
int modmap_scan(struct ring_header *h, const char *exe);

/*
 * Copy the module map of `src` into the empty map of `dst`: a fork child's
 * address space is its parent's, and a child must not call
 * dl_iterate_phdr() right after fork (the loader's lock may have been held
 * by another thread of the parent, and stays held in the child). Returns
 * the number of modules copied.
 */
int modmap_copy(struct ring_header *dst, const struct ring_header *src);

#endif /* PROFSHIM_MODMAP_H */

#ifndef PROFSHIM_MODMAP_SNAPSHOT
#define PROFSHIM_MODMAP_SNAPSHOT
#include <link.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * A copy of what dl_iterate_phdr() reports (load address, name, program
 * headers of every object), taken in a normal context, so that unwinding
 * in the signal handler never takes the dynamic loader's lock: a thread
 * interrupted while holding malloc's lock, unwinding, would otherwise wait
 * for the loader's lock held by a thread in dlopen waiting for malloc's.
 *
 * modmap_snapshot_take() calls dl_iterate_phdr (not from the handler; one
 * caller at a time, others return at once). modmap_snapshot_drop() makes
 * the snapshot unusable (before dlclose unmaps an object).
 * modmap_snapshot_iterate() is async-signal-safe and lock-free: it calls cb
 * for each object like dl_iterate_phdr, or returns -1 when no usable
 * snapshot exists.
 */
void modmap_snapshot_take(void);
void modmap_snapshot_drop(void);

/*
 * Around anything that unmaps objects (dlclose) or rewrites the snapshot:
 * while one is in progress, modmap_read_begin() fails and the handler
 * takes no sample (it could read memory being unmapped, or a
 * snapshot being rewritten). modmap_change_begin() returns once no handler
 * is between modmap_read_begin() and modmap_read_end(); it may yield the
 * CPU meanwhile, so it is never called from the handler.
 */
void modmap_change_begin(void);
void modmap_change_end(void);

/*
 * The handler brackets everything it reads of the snapshot and of loaded
 * objects (their unwind tables) with these. modmap_read_begin() returns
 * false while a change is in progress: the handler then reads nothing and
 * skips the sample. Async-signal-safe, lock-free, never wait.
 */
bool modmap_read_begin(void);
void modmap_read_end(void);

/*
 * In a fork child (from the atfork handler): the threads that were reading
 * or changing the snapshot when the parent forked do not exist here, so
 * their counts would make modmap_change_begin() wait for ever (the child's
 * first dlclose would hang) or keep every sample skipped. Resets them.
 */
void modmap_fork_child(void);

/*
 * An object's unwind tables: the address of its .eh_frame_hdr and the
 * bounds of the loaded segment holding it, which every read of the tables
 * stays within.
 */
struct modmap_tables {
	uintptr_t eh_hdr;
	uintptr_t seg_lo, seg_hi;
};

/*
 * The tables of the object whose code contains pc, from the snapshot.
 * Returns 0, or -ENOENT (no snapshot, no such object, or no tables).
 * Async-signal-safe; only between modmap_read_begin() and _end().
 */
int modmap_snapshot_find(uintptr_t pc, struct modmap_tables *out);
int modmap_snapshot_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *),
			    void *data);
#endif

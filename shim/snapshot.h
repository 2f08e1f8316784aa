/*
 * snapshot.h — the loaded objects as the signal handler sees them: a copy
 * of what dl_iterate_phdr() reports (load address, name, program
 * headers of every object), taken in a normal context, so that unwinding
 * in the signal handler never takes the dynamic loader's lock: a thread
 * interrupted while holding malloc's lock, unwinding, would otherwise wait
 * for the loader's lock held by a thread in dlopen waiting for malloc's.
 *
 * snapshot_take() reads the live list of loaded objects
 * (libc_dl_iterate_phdr: not from the handler; one caller at a time,
 * others return at once). snapshot_drop() makes
 * the snapshot unusable (before dlclose unmaps an object).
 * snapshot_iterate() is async-signal-safe and lock-free: it calls cb
 * for each object like dl_iterate_phdr, or returns -1 when no usable
 * snapshot exists.
 *
 * The shim takes it at start-up, when it makes a ring, at each look for
 * newly loaded objects (proc.h: once a second, and 10 ms after a walk met
 * an address in no object, if the loader has loaded something since) and
 * after a dlclose.
 */
#ifndef PROFSHIM_SNAPSHOT_H
#define PROFSHIM_SNAPSHOT_H

#include <link.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

void snapshot_take(void);
void snapshot_drop(void);

/*
 * Around anything that unmaps objects (dlclose) or rewrites the snapshot:
 * while one is in progress, snapshot_read_begin() fails and the handler
 * takes no sample (it could read memory being unmapped, or a
 * snapshot being rewritten). snapshot_change_begin() returns once no handler
 * is between snapshot_read_begin() and snapshot_read_end(); it may yield the
 * CPU meanwhile, so it is never called from the handler.
 */
void snapshot_change_begin(void);
void snapshot_change_end(void);

/*
 * The handler brackets everything it reads of the snapshot and of loaded
 * objects (their unwind tables) with these. snapshot_read_begin() returns
 * false while a change is in progress: the handler then reads nothing and
 * skips the sample. Async-signal-safe, lock-free, never wait.
 */
bool snapshot_read_begin(void);
void snapshot_read_end(void);

/*
 * In a fork child (from the atfork handler): the threads that were reading
 * or changing the snapshot when the parent forked do not exist here, so
 * their counts would make snapshot_change_begin() wait for ever (the child's
 * first dlclose would hang) or keep every sample skipped. Resets them.
 */
void snapshot_fork_child(void);

/*
 * An object's unwind tables: the address of its .eh_frame_hdr and the
 * bounds of the loaded segment holding it, which every read of the tables
 * stays within.
 */
struct snapshot_tables {
	uintptr_t eh_hdr;
	uintptr_t seg_lo, seg_hi;
};

/*
 * The tables of the object whose code contains pc, from the snapshot.
 * Returns 0, or -ENOENT (no snapshot, no such object, or no tables).
 * Async-signal-safe; only between snapshot_read_begin() and _end().
 */
int snapshot_find(uintptr_t pc, struct snapshot_tables *out);

/*
 * Whether the snapshot may be out of date: a lookup since the last call
 * found no object for its address (JIT code, or an object dlopen'ed since
 * the snapshot), and the loader has loaded or unloaded objects since the
 * snapshot was taken (dl_iterate_phdr's dlpi_adds and dlpi_subs). Without
 * such a lookup it returns false at once, without calling into the
 * loader; with one, it takes the loader's lock for one callback, so never
 * from the handler. snapshot_missed() is the cheap first half, for a
 * caller's inline test.
 */
bool snapshot_stale(void);
extern atomic_bool snapshot_missed_flag;
static inline bool snapshot_missed(void)
{
	return atomic_load_explicit(&snapshot_missed_flag,
				    memory_order_relaxed);
}
int snapshot_iterate(int (*cb)(struct dl_phdr_info *, size_t, void *),
			    void *data);

#endif

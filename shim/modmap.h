/*
 * modmap.h — the module map in the ring: which ELF object is mapped where,
 * with its build id, so the collector can symbolize out of process, even
 * after the server has exited.
 *
 * Called from hooks (ring creation, then at most once a second: proc.h),
 * never from the signal handler: it reads the live list of loaded objects
 * (libc_dl_iterate_phdr), which takes the dynamic loader's lock. Not re-entrant: callers make sure one thread scans at a
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

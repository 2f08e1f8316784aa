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

#endif /* PROFSHIM_MODMAP_H */

/*
 * ring.h — the shim's side of the shared-memory ring (format and protocol in
 * ring_format.h).
 *
 * ring_create() runs in a hook, never in the signal handler. Everything else
 * here is async-signal-safe and lock-free: no allocation, no locks, no stdio,
 * bounded work (a bounded number of CAS retries; past it the record is
 * dropped and counted). Re-entrant: a signal handler may write a record while
 * the interrupted code on the same thread is between ring_reserve() and
 * ring_commit().
 */
#ifndef PROFSHIM_RING_H
#define PROFSHIM_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "env.h"
#include "ring_format.h"

/* Where a segment is and which file it is: what ring_chown() needs to find
 * the same file again. */
struct ring_file {
	char path[96];
	dev_t dev;
	ino_t ino;
};

/*
 * Create, initialise and publish a new segment /dev/shm/profshim.<pid>.<n>
 * for this process image, mapped shared. On success stores the mapping in
 * *ret_ring and, when ret_file is not NULL, the file in *ret_file, and
 * returns 0; returns a negative errno otherwise. `exe` is the path of the
 * main executable. The file belongs to the process's file-system user (its
 * effective uid) and has mode 0600.
 */
int ring_create(const struct env_config *cfg, const char *exe,
		struct ring_header **ret_ring, struct ring_file *ret_file);

/*
 * Give the segment file f to uid and gid (fchown). The file is opened
 * without following links and must still be the one ring_create() made (the
 * same inode), so a name another user put in its place is never changed;
 * nothing stays open. 0, or a negative errno (-ESTALE: not the same file).
 * Called from hooks; no allocation; errno preserved.
 */
int ring_chown(const struct ring_file *f, uid_t uid, gid_t gid);

/* Unmap a segment (fork child: the parent's ring is not ours). */
void ring_unmap(struct ring_header *h);

/*
 * Reserve `len` bytes (a multiple of RING_ALIGN, at least
 * sizeof(struct ring_rec)) for a record of `type`. Returns the record, whose
 * header fields are already set but not yet committed, or NULL when the ring
 * is full. *ret_pos receives the position ring_commit() needs.
 * Async-signal-safe.
 */
struct ring_rec *ring_reserve(struct ring_header *h, uint32_t len,
			      uint16_t type, uint16_t flags, uint64_t *ret_pos);

/* Publish a record reserved at position `pos`. Async-signal-safe. */
static inline void ring_commit(struct ring_rec *rec, uint64_t pos)
{
	atomic_store_explicit((_Atomic uint64_t *)&rec->seq, pos ^ RING_SEQ_KEY,
			      memory_order_release);
}

/* Add n to one of the header's counters. Async-signal-safe. */
void ring_count(uint64_t *counter, uint64_t n);

/*
 * Endpoint names and their admission to the table.
 *
 * The table holds at most `max_endpoints` (PROFILING_MAX_ENDPOINTS) names,
 * and a slot, once taken, is a name's for the ring's lifetime: the
 * collector reads names from the live table, so a slot that changed name
 * would rename requests it has not drained yet. A scanner asking for
 * thousands of one-off paths must therefore not get the slots that the
 * server's real endpoints need later. A new name is admitted:
 *
 *   - at its request line while the table holds fewer than half of
 *     max_endpoints names (RING_FREE_LIMIT), as every name was before: a
 *     server with fewer endpoints than that never sees the rest;
 *   - past that, when its response is known: at once when the status is
 *     not 4xx (100 to 399, 500 to 599), up to max_endpoints names; when
 *     it is 4xx or missing (the connection closed first), only if the name
 *     was answered so before (a process-local filter of names seen once
 *     remembers about 4,000 of them), and only while the table holds
 *     fewer than three quarters of max_endpoints names (RING_4XX_LIMIT),
 *     so the last quarter stays for names that were answered;
 *   - never past max_endpoints names.
 *
 * A request whose name is not admitted counts under "OTHER", and in
 * overflow_endpoints. Every request is counted exactly once, under its
 * own name or under OTHER.
 */
#define RING_FREE_LIMIT(max) ((max) - (max) / 2)
#define RING_4XX_LIMIT(max) ((max) - (max) / 4)

/*
 * ring_endpoint_line()'s answer for a new name whose admission waits for
 * its response (ring_endpoint_admit()). Never written to the ring.
 */
#define RING_ENDPOINT_DEFER 0xfffffffeu

/*
 * Return the endpoint index for name[0..len) (no NUL needed; cut to
 * RING_ENDPOINT_NAME_MAX - 1 bytes), interning it when new. Beyond
 * `max_endpoints` distinct names, returns the index of "OTHER" (and counts
 * the request in overflow_endpoints), or RING_ENDPOINT_NONE when even
 * "OTHER" finds no slot. Admits every new name at once, up to the cap: for
 * names a client cannot choose ("TCP :<port>"). Lock-free; never waits for
 * another thread. Async-signal-safe, but only called from hooks.
 */
uint32_t ring_endpoint(struct ring_header *h, const char *name, size_t len,
		       unsigned max_endpoints);

/*
 * ring_endpoint(), and *ret_own says whether the index returned is the
 * name's own slot (found or interned just now). An own slot stays the
 * name's for the ring's lifetime, so a caller may remember it and skip the
 * next lookup of the same name in the same ring; an "OTHER" answer must not
 * be remembered, since every such lookup counts in overflow_endpoints.
 */
uint32_t ring_endpoint_own(struct ring_header *h, const char *name,
			   size_t len, unsigned max_endpoints, bool *ret_own);

/*
 * The endpoint of a request line, by the admission rules above. Returns
 * the name's own slot (found, or interned now below RING_FREE_LIMIT;
 * *ret_own true), the index of "OTHER" (counted in overflow_endpoints:
 * the table is full, or no slot was found) or RING_ENDPOINT_NONE as
 * ring_endpoint() does, or RING_ENDPOINT_DEFER: the name is new and the
 * table is half full or more; nothing was interned or counted, and the
 * caller must keep the name and call ring_endpoint_admit() once, when the
 * request's response is known. Called from hooks; lock-free, bounded.
 */
uint32_t ring_endpoint_line(struct ring_header *h, const char *name,
			    size_t len, unsigned max_endpoints, bool *ret_own);

/*
 * Decide a name ring_endpoint_line() deferred, now that its request was
 * answered with `status` (0 when there was no status line): returns the
 * name's own slot (*ret_own true) when it is in the table already or is
 * admitted now, else the index of "OTHER", counted in overflow_endpoints
 * (or RING_ENDPOINT_NONE). A 4xx status notes the name in the filter of
 * names seen once. Called from hooks; lock-free: concurrent callers may
 * lose a note of the filter (the name is then admitted a sighting later)
 * but never make it admit a name it was not given.
 */
uint32_t ring_endpoint_admit(struct ring_header *h, const char *name,
			     size_t len, unsigned status,
			     unsigned max_endpoints, bool *ret_own);

/*
 * The index of "OTHER", interned when it is not yet (it is not one of the
 * max_endpoints names), or RING_ENDPOINT_NONE when it finds no slot. With
 * `count`, one request is counted in overflow_endpoints. For the samples
 * of a request whose name is deferred, and for requests that count there.
 * Called from hooks.
 */
uint32_t ring_endpoint_other(struct ring_header *h, bool count);

#endif /* PROFSHIM_RING_H */

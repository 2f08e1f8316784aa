/*
 * conn_impl.h — what the connection layer's two files share (private to
 * shim/conn.c and shim/conn_fcgi.c; conn.h is the interface).
 *
 * conn.c owns the connection table, the queue of requests in flight, the
 * request records and the sampling decisions, and delimits HTTP/1.x and
 * plain TCP connections; conn_fcgi.c delimits FastCGI connections with the
 * same queue and the same records. conn.c lends conn_fcgi.c the queue
 * operations below as out-of-line copies, so that the HTTP path keeps its
 * own static ones inlined (scripts/bench/hooks.sh counts them).
 *
 * Everything here runs in the socket hooks, on a connection the caller has
 * taken (conn_take()): the contract of conn.h.
 */
#ifndef PROFSHIM_CONN_IMPL_H
#define PROFSHIM_CONN_IMPL_H

#include "conn.h"

#pragma GCC visibility push(hidden)

/* Lent by conn.c. */

/*
 * Open a new request at the back of c's queue, started at now; NULL when
 * the queue is full (counted in the ring's dropped requests). A FastCGI
 * connection pairs answers by id, so one request that found no room costs
 * no other: the queue takes new requests again once one ends.
 */
struct pending *conn_queue_push(struct conn *c, uint64_t now);

/*
 * Report request e of c as ended at end_ns with the ring's request flags,
 * once: decide its name if that waited for its status (e->status), stop
 * sampling it, write its record (when it has a name).
 */
void conn_queue_complete(struct conn *c, struct pending *e, uint64_t end_ns,
			 uint16_t flags);

/*
 * Request e on c has its name, name[0..n) in a buffer of HTTP_ENDPOINT_MAX
 * bytes, or none (n == 0: named "FCGI :<port>"), at now: intern it, decide
 * whether it is sampled (manual: ?profile=1 asked), and serve it on this
 * thread.
 */
void conn_queue_name(struct conn *c, int fd, struct pending *e,
		     const char *name, size_t n, bool manual, uint64_t now);

/* c turns out not to speak a protocol the shim knows: forget its queue and
 * time read/write turns from this read on (CONN_TCP). */
void conn_turns(struct conn *c, int fd);

/* Provided by conn_fcgi.c. */

/* The bytes the HTTP parser refused as the first of c, buf[0..n), begin a
 * FastCGI record: delimit c by records from here on (CONN_FCGI). */
void conn_fcgi_start(struct conn *c, int fd, const char *buf, size_t n);

/* Bytes the server read from, or wrote to (buf NULL: n bytes of
 * sendfile), FastCGI connection c. */
void conn_fcgi_read(struct conn *c, int fd, const char *buf, size_t n);
void conn_fcgi_write(struct conn *c, const char *buf, size_t n);

/* FastCGI connection c closes at now: what it holds was not answered. */
void conn_fcgi_close(struct conn *c, uint64_t now);

#pragma GCC visibility pop

#endif /* PROFSHIM_CONN_IMPL_H */

/*
 * conn.h — the connection table and the life of a request.
 *
 * A connection is tracked from accept()/accept4() to close(). Bytes the
 * server reads feed an HTTP/1.x request delimiter (http.h); bytes it writes
 * feed a response delimiter. A request starts at its first byte and ends
 * when its response is complete (or the connection closes); then one
 * RING_REC_REQUEST record goes to the ring. Responses answer requests in
 * order, so each connection keeps a small queue of requests read but not yet
 * answered (pipelining). A connection whose first bytes are a FastCGI
 * record (a FastCGI application server such as php-fpm, behind its web
 * server) is delimited by FastCGI records instead (fcgi.h): the same queue
 * holds its requests, paired with their answers by request id rather than
 * by order. Connections that speak neither are timed per read-after-write
 * turn under "TCP :<port>". Whether a request is sampled is decided once
 * its name is known (its rate, or a ?profile=1 within the manual cap).
 * Its endpoint is looked up then too; a new name met once the ring's
 * table is half full is admitted or counted under OTHER when its response
 * is known (ring.h says by which rules), so the connection keeps that name
 * until then: one name at a time, shared by the requests queued behind it
 * that ask for the same one; any other new name meanwhile counts under
 * OTHER.
 *
 * Called from the socket hooks (hooks_io.c), never from the signal
 * handler. No malloc, no locks, no stdio: the table is reserved at
 * start-up, parsers work in place, records go to the lock-free ring. A
 * connection used by two threads at once is parsed by one at a time: the
 * second waits, a bounded time, for the first to finish parsing bytes it
 * already has (it never holds a connection across a call). The take/give
 * pair and the read/write tails are inline here: they are on every hooked
 * call's path (scripts/bench/hooks.sh counts them).
 */
#ifndef PROFSHIM_CONN_H
#define PROFSHIM_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "env.h"
#include "fcgi.h"
#include "http.h"
#include "proc.h"
#include "sampler.h"

#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define ALWAYS_INLINE inline __attribute__((always_inline))

#define CONN_MAX 65536      /* fds tracked; beyond: counted, passed through */
#define CONN_QUEUE 16       /* requests read but not yet answered */
#define CONN_WAIT_SPINS 10000

/* The kinds from CONN_TCP on are not HTTP: one compare tells them apart on
 * the hooks' path. */
enum conn_state {
	CONN_NONE = 0,
	CONN_HTTP,
	CONN_BROKEN,  /* requests are no longer HTTP: only answers are read */
	CONN_TCP,     /* timed per read-after-write turn */
	CONN_FCGI,    /* delimited by FastCGI records */
};

/* A request read on a connection and not yet answered. */
struct pending {
	uint64_t req_id;
	uint64_t start_ns;
	uint64_t last_write_ns;
	uint32_t endpoint;
	uint16_t status;
	uint8_t how;            /* enum sampler_how */
	uint32_t tid;           /* thread that read it */
	uint8_t line : 1;       /* request line seen: endpoint is set */
	uint8_t responding : 1; /* response bytes were written */
	uint8_t head : 1;
	uint8_t emitted : 1;    /* its record is already in the ring */
	uint8_t deferred : 1;   /* its name (conn.ep_name) waits for its
				 * response to be admitted: endpoint is
				 * OTHER's until then (ring.h) */
};

/*
 * A FastCGI connection's delimiter state, and for each request in the queue
 * (q[i]) its FastCGI request id and what the delimiter keeps for it.
 */
struct conn_fcgi {
	struct fcgi_in in;
	struct fcgi_out out;
	uint16_t id[CONN_QUEUE];
	struct fcgi_req r[CONN_QUEUE];
};

struct conn {
	_Atomic uint8_t busy;
	_Atomic uint16_t writers; /* write-like calls in flight on it */
	uint8_t state;        /* enum conn_state */
	uint8_t qhead, qlen;
	uint8_t resp_broken;  /* responses are not HTTP: end them by turns */
	uint8_t http_seen;    /* at least one request line was parsed */
	uint8_t overflow;     /* queue overflowed: requests only counted */
	uint8_t pushed;       /* the request being read is in the queue */
	uint8_t ep_deferred;  /* queued requests whose name is ep_name, not
			       * yet admitted to the ring's table */
	uint16_t port;        /* local port, for "TCP :<port>" */
	int owner;            /* pid of the process that accepted or adopted */
	/* The endpoint last looked up on this connection and its own slot in
	 * the ring of generation ep_gen (0: none remembered): a client asking
	 * for the same endpoint again skips the ring's table. While
	 * ep_deferred is not 0, ep_name is the name those requests wait to
	 * have admitted, and stays until the last of them is answered. */
	uint32_t ep_gen;
	uint32_t ep_index;
	uint8_t ep_len;
	char ep_name[HTTP_ENDPOINT_MAX];
	union {
		struct {          /* CONN_HTTP, CONN_BROKEN */
			struct http_req req;
			struct http_resp resp;
		};
		struct conn_fcgi fcgi; /* CONN_FCGI */
	};
	struct pending q[CONN_QUEUE];
};

#pragma GCC visibility push(hidden)

/* CONN_MAX entries indexed by fd, reserved at start-up (conn_init). */
extern struct conn *conn_table;

/* Reserve the table and read the sampling settings from cfg. 0 or a
 * negative errno. From the constructor. */
int conn_init(const struct env_config *cfg);

/* From the atfork child handler: per-thread request numbering restarts. */
void conn_fork_child(void);

/* A connection was accepted on fd. */
void conn_accepted(int fd);

/* Bytes the server read from, or wrote to, taken connection c; a write's
 * time is *now, read by the first buffer of a call that needs it (0 before
 * that). */
void conn_on_read(struct conn *c, int fd, const char *buf, size_t n);
void conn_on_write(struct conn *c, const char *buf, size_t n, uint64_t *now);

/* The connection is closing: end what it still holds. */
void conn_on_close(struct conn *c);

/* readv/recvmsg and writev/sendmsg tails: n bytes over iov. */
void conn_readv_done(int fd, const struct iovec *iov, int iovcnt, ssize_t n);
void conn_writev_done(int fd, const struct iovec *iov, int iovcnt, ssize_t n);

bool conn_take_wait(struct conn *c);

#pragma GCC visibility pop

/*
 * Look up the tracked connection for fd and take it, or NULL. The unlocked
 * state check keeps untracked fds (files, pipes) at a load and a compare.
 * A connection another thread holds is waited for (briefly: see
 * conn_take_wait), since skipping its bytes would lose or mis-pair requests
 * of servers that read on one thread and write on another.
 */
static ALWAYS_INLINE struct conn *conn_take(int fd)
{
	struct conn *c;

	if ((unsigned)fd >= CONN_MAX || !conn_table)
		return NULL;
	c = &conn_table[fd];
	if (c->state == CONN_NONE)
		return NULL;
	if (LIKELY(!atomic_exchange_explicit(&c->busy, 1, memory_order_acquire)))
		sampler_block();
	else if (!conn_take_wait(c))
		return NULL;
	if (c->state == CONN_NONE) {
		sampler_unblock();
		atomic_store_explicit(&c->busy, 0, memory_order_release);
		return NULL;
	}
	return c;
}

static ALWAYS_INLINE void conn_give(struct conn *c)
{
	sampler_unblock();
	atomic_store_explicit(&c->busy, 0, memory_order_release);
}

/*
 * A connection inherited across fork belongs to the process that uses it:
 * a child adopts it at its first read or write.
 */
static ALWAYS_INLINE struct conn *conn_take_using(int fd)
{
	struct conn *c = conn_take(fd);

	if (c && UNLIKELY(c->owner != proc_pid))
		c->owner = proc_pid;
	return c;
}

static ALWAYS_INLINE void conn_read_done(int fd, const void *buf,
					    size_t n)
{
	struct conn *c;

	if (!(c = conn_take_using(fd)))
		return;
	conn_on_read(c, fd, buf, n);
	conn_give(c);
}

static ALWAYS_INLINE void conn_write_done(int fd, const void *buf,
					     size_t n)
{
	uint64_t now = 0;
	struct conn *c;

	if (!(c = conn_take_using(fd)))
		return;
	conn_on_write(c, buf, n, &now);
	conn_give(c);
}

#endif

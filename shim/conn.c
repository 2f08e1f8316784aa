/*
 * conn.c — see conn.h.
 */
#include "conn_impl.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "libc.h"
#include "ring.h"

struct conn *conn_table;

/* The manual cap's window: (second << 32) | requests let through in it. */
static _Atomic uint64_t conn_manual_cap;

static __thread uint64_t conn_rng;
static __thread uint32_t conn_seq;
static __thread uint32_t conn_serial;  /* this thread's number, from 1 */
static __thread int conn_tid;
static _Atomic uint32_t conn_serials;

/* ---- per-request decisions ------------------------------------------------ */

static uint64_t conn_random(void)
{
	uint64_t x = conn_rng;

	if (UNLIKELY(x == 0))
		x = libc_now_ns() ^ ((uint64_t)(uintptr_t)&conn_rng << 16) ^
		    0x2545f4914f6cdd1dULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	conn_rng = x;
	return x;
}

/*
 * Request ids are unique in a process image: the thread's serial number
 * (not its tid, which the kernel reuses) and a per-thread sequence.
 */
static uint64_t conn_req_id(void)
{
	if (UNLIKELY(conn_serial == 0)) {
		conn_serial = atomic_fetch_add(&conn_serials, 1) + 1;
		conn_tid = libc_gettid();
	}
	return ((uint64_t)conn_serial << 32) | ++conn_seq;
}

/*
 * At most manual_max_per_sec forced requests per second per process. The
 * second and its count change together in one atomic word: with two words,
 * a thread could be let through on the old count after another had moved
 * the window and before it had zeroed the count, then be wiped from it.
 * The window only moves forward: a thread whose clock read is a little
 * older than another's (read before the second changed, acting after)
 * counts in the current window; moving it back would reset the count and
 * let more through (a flood on four threads once got 16 past a cap of 5 a
 * second over three seconds). Bounded: a compare-and-swap fails only when
 * another thread changed the word, and after CONN_MANUAL_TRIES failures
 * the request is not forced (it is still timed and may be sampled).
 */
#define CONN_MANUAL_TRIES 64

static bool conn_manual_allowed(uint64_t now)
{
	uint64_t sec = (now / 1000000000ull) & 0xffffffffu;
	uint64_t cur = atomic_load_explicit(&conn_manual_cap, memory_order_relaxed);

	for (int i = 0; i < CONN_MANUAL_TRIES; i++) {
		uint64_t win = cur >> 32, used = cur & 0xffffffffu;

		if (sec > win) {
			win = sec;
			used = 0;
		}
		if (used >= proc_cfg.manual_max_per_sec)
			return false;
		if (atomic_compare_exchange_weak_explicit(
			    &conn_manual_cap, &cur, win << 32 | (used + 1),
			    memory_order_relaxed, memory_order_relaxed))
			return true;
	}
	return false;
}

/*
 * Set once by the constructor from proc_cfg: every request is sampled by
 * rate (continuous mode, or a rate of 1 or more), or some are (a rate above
 * 0). With neither, only a manual request can be sampled.
 */
static bool conn_rate_all;
static bool conn_rate_some;

static enum sampler_how conn_decide(bool manual_asked, uint64_t now)
{
	if (!manual_asked && !conn_rate_all && !conn_rate_some)
		return SAMPLER_OFF; /* the usual case at rate 0: no lookups */
	if (!sampler_ready())
		return SAMPLER_OFF;
	if (manual_asked && proc_cfg.manual && conn_manual_allowed(now))
		return SAMPLER_MANUAL;
	if (conn_rate_all)
		return SAMPLER_RATE;
	if (conn_rate_some &&
	    (double)(conn_random() >> 11) * 0x1.0p-53 < proc_cfg.sample_rate)
		return SAMPLER_RATE;
	return SAMPLER_OFF;
}

/* ---- the request queue of a connection ------------------------------------ */

static inline struct pending *conn_front(struct conn *c)
{
	return c->qlen ? &c->q[c->qhead] : NULL;
}

static inline struct pending *conn_back(struct conn *c)
{
	return c->qlen ? &c->q[(c->qhead + c->qlen - 1) % CONN_QUEUE] : NULL;
}

/* The calling thread serves request e from now on. */
static ALWAYS_INLINE void conn_serve(struct pending *e)
{
	sampler_enter(e->req_id, e->endpoint, (enum sampler_how)e->how);
}

/*
 * Inline, like conn_complete() below: both are on every request's path
 * (conn_finish()), and conn_queue_complete() calls them too (out of line,
 * the write of a record cost each HTTP request 22 instructions more).
 */
static ALWAYS_INLINE void conn_emit(const struct pending *e, uint64_t end_ns,
				    uint16_t flags, uint32_t samples)
{
	struct ring_header *h = proc_ring_get();
	struct ring_request *r;
	uint64_t pos;

	if (!h)
		return;
	if (e->how != SAMPLER_OFF)
		flags |= RING_REQ_SAMPLED;
	if (e->how == SAMPLER_MANUAL)
		flags |= RING_REQ_MANUAL;
	r = (struct ring_request *)ring_reserve(h, sizeof(*r), RING_REC_REQUEST,
						flags, &pos);
	if (!r) {
		ring_count(&h->dropped_events, 1);
		ring_count(&h->dropped_requests, 1);
		return;
	}
	r->req_id = e->req_id;
	r->tid = e->tid;
	r->endpoint = e->endpoint;
	r->start_ns = e->start_ns;
	r->duration_ns = end_ns > e->start_ns ? end_ns - e->start_ns : 0;
	r->status = e->status;
	r->samples = samples;
	ring_commit(&r->rec, pos);
}

/*
 * Decide the name request e waits for (c->ep_name, deferred at its request
 * line by ring_endpoint_line()) now that its status is known: e counts
 * under its own name or OTHER from now on. An admitted name is remembered
 * as the connection's last endpoint, whose slot the requests still waiting
 * for the same name then find in the table.
 */
static __attribute__((noinline)) void conn_admit(struct conn *c,
						 struct pending *e)
{
	struct ring_header *h = proc_ring_get();
	uint32_t idx;
	bool own;

	e->deferred = 0;
	c->ep_deferred--;
	if (!h)
		return;
	idx = ring_endpoint_admit(h, c->ep_name, c->ep_len, e->status,
				  proc_cfg.max_endpoints, &own);
	e->endpoint = idx;
	if (own) {
		c->ep_index = idx;
		c->ep_gen = atomic_load_explicit(&proc_ring_gen,
						 memory_order_relaxed);
	}
}

/*
 * Report request e of connection c as complete at end_ns: decide its name
 * if that waited for its response, stop sampling it on this thread and
 * write its record, once. A request whose line never completed has no
 * endpoint and is not reported.
 */
static ALWAYS_INLINE void conn_complete(struct conn *c, struct pending *e,
					uint64_t end_ns, uint16_t flags)
{
	uint32_t samples = 0;

	/* One test of the flags' byte on the usual path: the compiler
	 * merges the two bits of a || (not of a |) into one mask. */
	if (UNLIKELY(e->emitted || e->deferred)) {
		if (e->emitted)
			return;
		conn_admit(c, e);
	}
	e->emitted = 1;
	if (sampler_current() == e->req_id)
		samples = sampler_leave(e->req_id);
	else if (e->how != SAMPLER_OFF)
		sampler_stop(e->req_id); /* served on another thread */
	if (e->line)
		conn_emit(e, end_ns, flags, samples);
}

/*
 * Remove the front request, completing it if that was not done yet. The
 * next request in the queue, if its line is known, is served by this thread
 * from now on.
 */
static void conn_finish(struct conn *c, uint64_t end_ns, uint16_t flags)
{
	struct pending *e = conn_front(c);

	if (!e)
		return;
	conn_complete(c, e, end_ns, flags);
	/* An emptied queue starts again at its first slot: a connection
	 * with one request at a time, the usual case, keeps using the same
	 * cache lines. */
	c->qhead = c->qlen == 1 ? 0 : (uint8_t)((c->qhead + 1) % CONN_QUEUE);
	c->qlen--;
	e = conn_front(c);
	if (e && e->line)
		conn_serve(e);
}

static void conn_reset(struct conn *c, int state)
{
	c->state = (uint8_t)state;
	c->qhead = c->qlen = 0;
	c->resp_broken = 0;
	c->http_seen = 0;
	c->overflow = 0;
	c->pushed = 0;
	c->ep_deferred = 0;
	c->port = 0;
	c->owner = proc_pid;
	c->ep_gen = 0;
	http_req_init(&c->req);
	http_resp_init(&c->resp);
}

static uint16_t conn_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

/* Open a new request at the back of the queue. */
static struct pending *conn_push(struct conn *c, uint64_t now)
{
	struct pending *e;

	if (c->overflow || c->qlen == CONN_QUEUE) {
		/* More unanswered requests than a queue holds: responses can
		 * no longer be paired with requests. Those queued are still
		 * answered in order; this one and every later one on the
		 * connection are counted as dropped requests. */
		struct ring_header *h = proc_ring_get();

		if (h)
			ring_count(&h->dropped_requests, 1);
		c->overflow = 1;
		return NULL;
	}
	e = &c->q[(c->qhead + c->qlen) % CONN_QUEUE];
	*e = (struct pending){
		.req_id = conn_req_id(),
		.start_ns = now,
		.endpoint = RING_ENDPOINT_NONE,
		.tid = (uint32_t)conn_tid,
	};
	c->qlen++;
	return e;
}

/* The ring index of the endpoint "<kind> :<local port>" of c. */
static uint32_t conn_port_endpoint(struct conn *c, int fd,
				   struct ring_header *h, const char *kind)
{
	char name[32];
	int len;

	if (!c->port)
		c->port = conn_local_port(fd);
	len = snprintf(name, sizeof(name), "%s :%u", kind, c->port);
	return ring_endpoint(h, name, (size_t)len, proc_cfg.max_endpoints);
}

/* A non-HTTP turn starts: it is a request named "TCP :<port>". */
static void conn_tcp_turn(struct conn *c, int fd, uint64_t now)
{
	struct ring_header *h = proc_ring_get();
	struct pending *e;

	if (!h)
		return;
	e = conn_push(c, now);
	if (!e)
		return;
	e->endpoint = conn_port_endpoint(c, fd, h, "TCP");
	e->line = 1;
	e->how = (uint8_t)conn_decide(false, now);
	conn_serve(e);
}

static void conn_on_tcp_read(struct conn *c, int fd)
{
	struct pending *e = conn_front(c);
	uint64_t now = libc_now_ns();

	if (e && e->responding) {
		/* Read after write: the previous turn ended at its last
		 * write. */
		conn_finish(c, e->last_write_ns, RING_REQ_TCP);
		e = NULL;
	}
	if (!e)
		conn_tcp_turn(c, fd, now);
}

/*
 * True when a and b, two endpoint buffers of HTTP_ENDPOINT_MAX bytes, hold
 * the same first n bytes (n < HTTP_ENDPOINT_MAX): eight bytes at a time,
 * the last word masked. Every word read lies inside both buffers.
 */
static ALWAYS_INLINE bool conn_ep_eq(const char *a, const char *b, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t x, y;
	size_t i = 0;

	_Static_assert(HTTP_ENDPOINT_MAX % 8 == 0,
		       "endpoint buffers are read a word at a time");
	for (; i + 8 <= n; i += 8) {
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y)
			return false;
	}
	if (i == n)
		return true;
	memcpy(&x, a + i, 8);
	memcpy(&y, b + i, 8);
	return ((x ^ y) << (64 - 8 * (n - i))) == 0;
#else
	return memcmp(a, b, n) == 0;
#endif
}

/*
 * The name of request e, name[0..n), is new to the ring, and its admission
 * waits for e's response (ring.h): the connection keeps the name in
 * ep_name until then, and e counts under OTHER meanwhile (its samples
 * too). The connection keeps one such name: a request queued behind e
 * with the same name waits for it too; one with another new name counts
 * under OTHER.
 */
static __attribute__((noinline)) uint32_t conn_defer(struct conn *c,
						     struct ring_header *h,
						     struct pending *e,
						     const char *name,
						     size_t n)
{
	if (c->ep_deferred) {
		if (c->ep_len != n || !conn_ep_eq(c->ep_name, name, n))
			return ring_endpoint_other(h, true);
	} else {
		memcpy(c->ep_name, name, n);
		c->ep_len = (uint8_t)n;
		c->ep_gen = 0; /* the name has no slot yet */
	}
	c->ep_deferred++;
	e->deferred = 1;
	return ring_endpoint_other(h, false);
}

/*
 * The ring index of endpoint name[0..n) of request e, a name just parsed
 * on c, in a buffer of HTTP_ENDPOINT_MAX bytes: the slot remembered for
 * the connection when the name is the same as the last one looked up there
 * in this ring, else a lookup in the ring's table, remembered when it
 * found (or made) the name's own slot (unless ep_name holds a name still
 * waiting for admission), or deferred (conn_defer).
 */
static ALWAYS_INLINE uint32_t conn_endpoint(struct conn *c,
					    struct ring_header *h,
					    struct pending *e,
					    const char *name, size_t n)
{
	uint32_t gen = atomic_load_explicit(&proc_ring_gen,
					    memory_order_relaxed);
	bool own;
	uint32_t idx;

	if (c->ep_gen == gen && c->ep_len == n &&
	    conn_ep_eq(c->ep_name, name, n))
		return c->ep_index;
	idx = ring_endpoint_line(h, name, n, proc_cfg.max_endpoints, &own);
	if (own) {
		if (!c->ep_deferred) {
			memcpy(c->ep_name, name, n);
			c->ep_len = (uint8_t)n;
			c->ep_index = idx;
			c->ep_gen = gen;
		}
		return idx;
	}
	if (idx == RING_ENDPOINT_DEFER)
		return conn_defer(c, h, e, name, n);
	return idx;
}

static void conn_line(struct conn *c, uint64_t now)
{
	struct ring_header *h = proc_ring_get();
	struct pending *e = conn_back(c);

	if (!e || !h)
		return;
	proc_rescan(h, now);
	e->endpoint = conn_endpoint(c, h, e, c->req.endpoint,
				    c->req.endpoint_len);
	e->head = c->req.head;
	e->line = 1;
	e->how = (uint8_t)conn_decide(c->req.manual, now);
	c->http_seen = 1;
	if (e == conn_front(c))
		conn_serve(e);
}

/* A request starts: open it at the back of the queue. */
static void conn_start(struct conn *c, uint64_t now)
{
	struct pending *f = conn_front(c);

	/* Responses that are not HTTP cannot say where they end: a new
	 * request ends those already answered. */
	while (c->resp_broken && f && f->responding) {
		conn_finish(c, f->last_write_ns, 0);
		f = conn_front(c);
	}
	c->pushed = conn_push(c, now) != NULL;
}

/* ---- lent to conn_fcgi.c (conn_impl.h) ----------------------------------- */

struct pending *conn_queue_push(struct conn *c, uint64_t now)
{
	struct pending *e = conn_push(c, now);

	c->overflow = 0;
	return e;
}

void conn_queue_complete(struct conn *c, struct pending *e, uint64_t end_ns,
			 uint16_t flags)
{
	conn_complete(c, e, end_ns, flags);
}

void conn_queue_name(struct conn *c, int fd, struct pending *e,
		     const char *name, size_t n, bool manual, uint64_t now)
{
	struct ring_header *h = proc_ring_get();

	if (!h)
		return;
	proc_rescan(h, now);
	e->endpoint = n ? conn_endpoint(c, h, e, name, n)
			: conn_port_endpoint(c, fd, h, "FCGI");
	e->line = 1;
	e->how = (uint8_t)conn_decide(manual, now);
	conn_serve(e);
}

void conn_turns(struct conn *c, int fd)
{
	c->qlen = 0;
	c->ep_deferred = 0;
	c->state = CONN_TCP;
	conn_on_tcp_read(c, fd);
}

/*
 * Bytes the server read from a connection. The clock is read once per call,
 * and only when a request starts or its line completes.
 */
void conn_on_read(struct conn *c, int fd, const char *buf, size_t n)
{
	uint64_t now = 0;
	unsigned ev;
	size_t used;

	if (UNLIKELY(c->state >= CONN_TCP)) {
		if (c->state == CONN_FCGI)
			conn_fcgi_read(c, fd, buf, n);
		else
			conn_on_tcp_read(c, fd);
		return;
	}
	while (n > 0 && c->state == CONN_HTTP) {
		used = http_req_feed(&c->req, buf, n, &ev);
		buf += used;
		n -= used;
		if (ev & (HTTP_REQ_START | HTTP_REQ_LINE) && !now)
			now = libc_now_ns();
		if (ev & HTTP_REQ_START)
			conn_start(c, now);
		if ((ev & HTTP_REQ_LINE) && c->pushed)
			conn_line(c, now);
		if (ev & HTTP_REQ_ERROR) {
			/* The byte refused, buf[-1], may begin a FastCGI
			 * record (no request began before it). */
			if (!c->http_seen && c->qlen == 0 && used > 0 &&
			    (unsigned char)buf[-1] == FCGI_VERSION_1) {
				conn_fcgi_start(c, fd, buf - 1, n + 1);
			} else if (!c->http_seen) {
				/* Not HTTP at all: time read/write turns. */
				conn_turns(c, fd);
			} else {
				c->state = CONN_BROKEN;
			}
			return;
		}
		if (used == 0)
			break;
	}
}

/* Response bytes the server wrote (buf == NULL: n bytes of sendfile), at
 * *now (0: not read yet; read here when needed and kept for the next
 * buffer of the same call). */
void conn_on_write(struct conn *c, const char *buf, size_t n, uint64_t *at)
{
	struct pending *e = conn_front(c);
	uint64_t now;
	unsigned ev;
	size_t used;

	/* A FastCGI connection's records are followed whether or not a
	 * request is in flight (a management record is answered with none). */
	if (UNLIKELY(c->state == CONN_FCGI)) {
		conn_fcgi_write(c, buf, n);
		return;
	}
	if (!e)
		return; /* nothing was asked: a greeting, or a late error page */
	if (!(now = *at))
		now = *at = libc_now_ns();
	if (c->state == CONN_TCP || c->resp_broken) {
		e->responding = 1;
		e->last_write_ns = now;
		return;
	}
	while (n > 0 && (e = conn_front(c)) != NULL) {
		used = buf ? http_resp_feed(&c->resp, buf, n, e->head, &ev)
			   : http_resp_skip(&c->resp, n, &ev);
		if (buf)
			buf += used;
		n -= used;
		e->responding = 1;
		e->last_write_ns = now;
		if (ev & HTTP_RESP_STATUS)
			e->status = c->resp.status;
		if (ev & HTTP_RESP_DONE)
			conn_finish(c, now, 0);
		if (ev & HTTP_RESP_ERROR) {
			c->resp_broken = 1;
			return;
		}
		if (used == 0)
			break;
	}
}

/* The connection is closing: end what it still holds. */
void conn_on_close(struct conn *c)
{
	uint64_t now = libc_now_ns();
	struct pending *e;

	if (c->state == CONN_FCGI) {
		conn_fcgi_close(c, now);
		c->state = CONN_NONE;
		return;
	}
	while ((e = conn_front(c)) != NULL) {
		uint16_t tcp = c->state == CONN_TCP ? RING_REQ_TCP : 0;

		/* An answered request ends at its last write; one whose
		 * response the close cuts short (or that got none) is
		 * reported as aborted. */
		if (e->responding && (tcp || c->resp_broken ||
				      http_resp_ends_at_close(&c->resp)))
			conn_finish(c, e->last_write_ns, tcp);
		else
			conn_finish(c, e->responding ? e->last_write_ns : now,
				    RING_REQ_ABORTED | tcp);
		/* Requests behind the first never saw a response byte. */
		http_resp_init(&c->resp);
	}
	c->state = CONN_NONE;
}

/*
 * Take conn c even if another thread holds it, waiting a bounded time. Used
 * where skipping would lose requests (close, accept on a reused fd). The
 * holders never block while holding a connection: they only parse bytes
 * already read, so the wait is short. Returns false when it timed out.
 */
__attribute__((noinline)) bool conn_take_wait(struct conn *c)
{
	for (int i = 0; i < CONN_WAIT_SPINS; i++) {
		if (!atomic_load_explicit(&c->busy, memory_order_relaxed) &&
		    !atomic_exchange_explicit(&c->busy, 1, memory_order_acquire)) {
			sampler_block();
			return true;
		}
		if (i >= 64)
			(void)sched_yield();
	}
	return false;
}

void conn_accepted(int fd)
{
	struct conn *c;

	if ((unsigned)fd >= CONN_MAX) {
		proc_count_untracked();
		return;
	}
	c = &conn_table[fd];
	if (!conn_take_wait(c))
		return;
	/* State left by a connection closed where the shim could not see it
	 * (close_range, dup2, fclose): report what it still held. */
	if (c->state != CONN_NONE && c->owner == proc_pid)
		conn_on_close(c);
	conn_reset(c, CONN_HTTP);
	conn_give(c);
}

/* The bytes of a vectored call, n in all, one buffer at a time. */
static ALWAYS_INLINE void conn_iov_done(int fd, const struct iovec *iov,
					int iovcnt, ssize_t n, bool write)
{
	uint64_t now = 0;
	struct conn *c;

	if (n <= 0 || !(c = conn_take_using(fd)))
		return;
	for (int i = 0; i < iovcnt && n > 0; i++) {
		size_t k = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;

		if (write)
			conn_on_write(c, iov[i].iov_base, k, &now);
		else
			conn_on_read(c, fd, iov[i].iov_base, k);
		n -= (ssize_t)k;
	}
	conn_give(c);
}

void conn_readv_done(int fd, const struct iovec *iov, int iovcnt, ssize_t n)
{
	conn_iov_done(fd, iov, iovcnt, n, false);
}

void conn_writev_done(int fd, const struct iovec *iov, int iovcnt, ssize_t n)
{
	conn_iov_done(fd, iov, iovcnt, n, true);
}

int conn_init(const struct env_config *cfg)
{
	conn_rate_all = cfg->mode == RING_MODE_CONTINUOUS ||
			cfg->sample_rate >= 1.0;
	conn_rate_some = cfg->sample_rate > 0.0;
	/* Reserved, not committed: pages appear as connections use them. */
	conn_table = mmap(NULL, sizeof(struct conn) * CONN_MAX,
			  PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (conn_table == MAP_FAILED) {
		conn_table = NULL;
		return -ENOMEM;
	}
	return 0;
}

void conn_fork_child(void)
{
	conn_tid = 0;
	conn_seq = 0;
	conn_rng = 0;
}

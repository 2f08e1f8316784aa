/*
 * hooks.c — the shim's entry points: interposed libc socket calls, the
 * per-connection request lifecycle, and the constructor.
 *
 * A connection is tracked from accept()/accept4() to close(). Bytes the
 * server reads feed an HTTP/1.x request delimiter (http.h); bytes it writes
 * feed a response delimiter. A request starts at its first byte and ends
 * when its response is complete (or the connection closes); then one
 * RING_REC_REQUEST record goes to the ring. Responses answer requests in
 * order, so each connection keeps a small queue of requests read but not yet
 * answered (pipelining). Connections that do not speak HTTP are timed per
 * read-after-write turn under "TCP :<port>".
 *
 * Rules every hook keeps (a server's production traffic runs through them):
 *   - the real call is made first, exactly as asked, and its result and
 *     errno are returned unchanged; nothing here blocks or changes blocking
 *     (the one change to a call's surroundings: sigtimedwait and
 *     sigwaitinfo run with profshim's SIGPROF blocked, see there);
 *   - with profiling off, a hook is two loads, two predictable branches
 *     and a jump to libc (six instructions; each hook's work is in its
 *     hooks_slow_ twin, so the fast path builds no stack frame);
 *   - no malloc, no locks, no stdio: the connection table is reserved at
 *     start-up, parsers work in place, records go to the lock-free ring;
 *   - a connection used by two threads at once is parsed by one at a time:
 *     the second waits, a bounded time, for the first to finish parsing
 *     bytes it already has (it never holds a connection across a call);
 *   - the first request of a process creates the ring; other threads wait
 *     for it a bounded number of yields.
 */
/* The build may ask for 64-bit file offsets, which makes glibc's headers
 * rename sendfile to sendfile64; the shim defines both names itself. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "env.h"
#include "http.h"
#include "libc.h"
#include "modmap.h"
#include "ring.h"
#include "sampler.h"
#include "unwind.h"

#define HOOK __attribute__((visibility("default")))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define ALWAYS_INLINE inline __attribute__((always_inline))

#define CONN_MAX 65536      /* fds tracked; beyond: counted, passed through */
#define CONN_QUEUE 16       /* requests read but not yet answered */
#define RING_WAIT_YIELDS 2000
#define CONN_WAIT_SPINS 10000
#define MODMAP_RESCAN_NS 1000000000ull

enum conn_state { CONN_NONE = 0, CONN_HTTP, CONN_TCP, CONN_BROKEN };

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
	uint16_t port;        /* local port, for "TCP :<port>" */
	int owner;            /* pid of the process that accepted or adopted */
	/* The endpoint last looked up on this connection and its own slot in
	 * the ring of generation ep_gen (0: none remembered): a client asking
	 * for the same endpoint again skips the ring's table. */
	uint32_t ep_gen;
	uint32_t ep_index;
	uint8_t ep_len;
	char ep_name[HTTP_ENDPOINT_MAX];
	struct http_req req;
	struct http_resp resp;
	struct pending q[CONN_QUEUE];
};

static bool hooks_on;            /* ENABLE_PROFILING and start-up succeeded */
static struct env_config hooks_cfg;
static struct conn *conns;       /* CONN_MAX entries, reserved, not touched */
static int hooks_pid;            /* this process (updated after fork) */
static char hooks_exe[RING_EXE_MAX];

static _Atomic(struct ring_header *) hooks_ring;
/* Generation of hooks_ring, from 1: raised before each ring is published,
 * so an endpoint slot remembered for one ring (struct conn.ep_gen) is never
 * taken for another, even one mapped at the same address. */
static _Atomic uint32_t hooks_ring_gen;
/* In a fork child: the parent's ring, still mapped, whose module map the
 * child's ring starts from (see modmap_copy). */
static struct ring_header *hooks_parent_ring;
static atomic_int hooks_ring_state; /* 0 none, 1 creating, 2 ready, 3 failed */
static _Atomic uint64_t hooks_untracked; /* counted before the ring exists */

static _Atomic uint64_t modmap_next;     /* when to look for new objects */
static atomic_int modmap_busy;           /* one thread scans at a time */

/* The manual cap's window: (second << 32) | requests let through in it. */
static _Atomic uint64_t manual_cap;

static __thread uint64_t hooks_rng;
static __thread uint32_t hooks_seq;
static __thread uint32_t hooks_serial;  /* this thread's number, from 1 */
static __thread int hooks_tid;
static _Atomic uint32_t hooks_serials;

/* ---- the ring, created at a process' first request ---------------------- */

static struct ring_header *hooks_ring_make(void)
{
	struct ring_header *h = NULL;
	int expected = 0;
	char line[160];
	int r;

	if (atomic_compare_exchange_strong(&hooks_ring_state, &expected, 1)) {
		r = ring_create(&hooks_cfg, hooks_exe, &h);
		if (r < 0) {
			(void)snprintf(line, sizeof(line),
				       "profshim: cannot create the ring in "
				       "/dev/shm (%s); profiling is off in "
				       "process %d",
				       strerror(-r), hooks_pid);
			libc_warn(line);
			atomic_store(&hooks_ring_state, 3);
			return NULL;
		}
		atomic_store(&modmap_busy, 1);
		if (hooks_parent_ring) {
			(void)modmap_copy(h, hooks_parent_ring);
			ring_unmap(hooks_parent_ring);
			hooks_parent_ring = NULL;
		} else {
			/* Objects loaded since start-up (a plugin opened
			 * before the first request) are in the live list:
			 * the ring's map and the handler's snapshot both take
			 * them now. Not in a fork child, which must not call
			 * into the loader (modmap_copy) and has its parent's
			 * snapshot. */
			(void)modmap_scan(h, hooks_exe);
			modmap_snapshot_take();
		}
		atomic_store(&modmap_busy, 0);
		atomic_store(&modmap_next, libc_now_ns() + MODMAP_RESCAN_NS);
		ring_count(&h->untracked_conns, atomic_exchange(&hooks_untracked, 0));
		atomic_fetch_add(&hooks_ring_gen, 1);
		atomic_store_explicit(&hooks_ring, h, memory_order_release);
		sampler_attach(h);
		atomic_store(&hooks_ring_state, 2);
		return h;
	}
	for (int i = 0; i < RING_WAIT_YIELDS &&
			atomic_load(&hooks_ring_state) == 1; i++)
		(void)sched_yield();
	return atomic_load_explicit(&hooks_ring, memory_order_acquire);
}

static inline struct ring_header *hooks_ring_get(void)
{
	struct ring_header *h =
		atomic_load_explicit(&hooks_ring, memory_order_acquire);

	return h ? h : hooks_ring_make();
}

/*
 * Objects loaded after the ring was created (dlopen) go into the module map
 * at the next request after at most MODMAP_RESCAN_NS. The shim does not
 * interpose dlopen: glibc resolves a bare library name with the calling
 * object's RPATH, and an interposed dlopen would make the shim that caller.
 */
static void hooks_rescan(struct ring_header *h, uint64_t now)
{
	uint64_t next = atomic_load_explicit(&modmap_next, memory_order_relaxed);

	if (now < next || atomic_exchange(&modmap_busy, 1))
		return;
	if (atomic_compare_exchange_strong(&modmap_next, &next,
					   now + MODMAP_RESCAN_NS)) {
		(void)modmap_scan(h, hooks_exe);
		modmap_snapshot_take();
	}
	atomic_store(&modmap_busy, 0);
}

/* ---- per-request decisions ------------------------------------------------ */

static uint64_t hooks_random(void)
{
	uint64_t x = hooks_rng;

	if (UNLIKELY(x == 0))
		x = libc_now_ns() ^ ((uint64_t)(uintptr_t)&hooks_rng << 16) ^
		    0x2545f4914f6cdd1dULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	hooks_rng = x;
	return x;
}

/*
 * Request ids are unique in a process image: the thread's serial number
 * (not its tid, which the kernel reuses) and a per-thread sequence.
 */
static uint64_t hooks_req_id(void)
{
	if (UNLIKELY(hooks_serial == 0)) {
		hooks_serial = atomic_fetch_add(&hooks_serials, 1) + 1;
		hooks_tid = libc_gettid();
	}
	return ((uint64_t)hooks_serial << 32) | ++hooks_seq;
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
 * another thread changed the word, and after HOOKS_MANUAL_TRIES failures
 * the request is not forced (it is still timed and may be sampled).
 */
#define HOOKS_MANUAL_TRIES 64

static bool hooks_manual_allowed(uint64_t now)
{
	uint64_t sec = (now / 1000000000ull) & 0xffffffffu;
	uint64_t cur = atomic_load_explicit(&manual_cap, memory_order_relaxed);

	for (int i = 0; i < HOOKS_MANUAL_TRIES; i++) {
		uint64_t win = cur >> 32, used = cur & 0xffffffffu;

		if (sec > win) {
			win = sec;
			used = 0;
		}
		if (used >= hooks_cfg.manual_max_per_sec)
			return false;
		if (atomic_compare_exchange_weak_explicit(
			    &manual_cap, &cur, win << 32 | (used + 1),
			    memory_order_relaxed, memory_order_relaxed))
			return true;
	}
	return false;
}

/*
 * Set once by the constructor from hooks_cfg: every request is sampled by
 * rate (continuous mode, or a rate of 1 or more), or some are (a rate above
 * 0). With neither, only a manual request can be sampled.
 */
static bool hooks_rate_all;
static bool hooks_rate_some;

static enum sampler_how hooks_decide(bool manual_asked, uint64_t now)
{
	if (!manual_asked && !hooks_rate_all && !hooks_rate_some)
		return SAMPLER_OFF; /* the usual case at rate 0: no lookups */
	if (!sampler_ready())
		return SAMPLER_OFF;
	if (manual_asked && hooks_cfg.manual && hooks_manual_allowed(now))
		return SAMPLER_MANUAL;
	if (hooks_rate_all)
		return SAMPLER_RATE;
	if (hooks_rate_some &&
	    (double)(hooks_random() >> 11) * 0x1.0p-53 < hooks_cfg.sample_rate)
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

static void conn_emit(const struct pending *e, uint64_t end_ns,
		      uint16_t flags, uint32_t samples)
{
	struct ring_header *h = hooks_ring_get();
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
 * Report request e as complete at end_ns: stop sampling it on this thread
 * and write its record, once. A request whose line never completed has no
 * endpoint and is not reported.
 */
static void conn_complete(struct pending *e, uint64_t end_ns, uint16_t flags)
{
	uint32_t samples = 0;

	if (e->emitted)
		return;
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
	conn_complete(e, end_ns, flags);
	c->qhead = (uint8_t)((c->qhead + 1) % CONN_QUEUE);
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
	c->port = 0;
	c->owner = hooks_pid;
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
		struct ring_header *h = hooks_ring_get();

		if (h)
			ring_count(&h->dropped_requests, 1);
		c->overflow = 1;
		return NULL;
	}
	e = &c->q[(c->qhead + c->qlen) % CONN_QUEUE];
	*e = (struct pending){
		.req_id = hooks_req_id(),
		.start_ns = now,
		.endpoint = RING_ENDPOINT_NONE,
		.tid = (uint32_t)hooks_tid,
	};
	c->qlen++;
	return e;
}

/* A non-HTTP turn starts: it is a request named "TCP :<port>". */
static void conn_tcp_turn(struct conn *c, int fd, uint64_t now)
{
	struct ring_header *h = hooks_ring_get();
	char name[32];
	struct pending *e;
	int len;

	if (!h)
		return;
	if (!c->port)
		c->port = conn_local_port(fd);
	e = conn_push(c, now);
	if (!e)
		return;
	len = snprintf(name, sizeof(name), "TCP :%u", c->port);
	e->endpoint = ring_endpoint(h, name, (size_t)len,
				    hooks_cfg.max_endpoints);
	e->line = 1;
	e->how = (uint8_t)hooks_decide(false, now);
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
static ALWAYS_INLINE bool hooks_ep_eq(const char *a, const char *b, size_t n)
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
 * The ring index of the endpoint of the request line just parsed on c:
 * the slot remembered for the connection when the name is the same as the
 * last one looked up there in this ring, else a lookup in the ring's
 * table, remembered when it found (or made) the name's own slot.
 */
static ALWAYS_INLINE uint32_t conn_endpoint(struct conn *c,
					    struct ring_header *h)
{
	uint32_t gen = atomic_load_explicit(&hooks_ring_gen,
					    memory_order_relaxed);
	size_t n = c->req.endpoint_len;
	bool own;
	uint32_t idx;

	if (c->ep_gen == gen && c->ep_len == n &&
	    hooks_ep_eq(c->ep_name, c->req.endpoint, n))
		return c->ep_index;
	idx = ring_endpoint_own(h, c->req.endpoint, n,
				hooks_cfg.max_endpoints, &own);
	if (own) {
		memcpy(c->ep_name, c->req.endpoint, n);
		c->ep_len = (uint8_t)n;
		c->ep_index = idx;
		c->ep_gen = gen;
	}
	return idx;
}

static void conn_line(struct conn *c, uint64_t now)
{
	struct ring_header *h = hooks_ring_get();
	struct pending *e = conn_back(c);

	if (!e || !h)
		return;
	hooks_rescan(h, now);
	e->endpoint = conn_endpoint(c, h);
	e->head = c->req.head;
	e->line = 1;
	e->how = (uint8_t)hooks_decide(c->req.manual, now);
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

/*
 * Bytes the server read from a connection. The clock is read once per call,
 * and only when a request starts or its line completes.
 */
static void conn_on_read(struct conn *c, int fd, const char *buf, size_t n)
{
	uint64_t now = 0;
	unsigned ev;
	size_t used;

	if (c->state == CONN_TCP) {
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
			if (!c->http_seen) {
				/* Not HTTP at all: time read/write turns. */
				c->qlen = 0;
				c->state = CONN_TCP;
				conn_on_tcp_read(c, fd);
			} else {
				c->state = CONN_BROKEN;
			}
			return;
		}
		if (used == 0)
			break;
	}
}

/* Response bytes the server wrote (buf == NULL: n bytes of sendfile). */
static void conn_on_write(struct conn *c, const char *buf, size_t n)
{
	struct pending *e = conn_front(c);
	uint64_t now;
	unsigned ev;
	size_t used;

	if (!e)
		return; /* nothing was asked: a greeting, or a late error page */
	now = libc_now_ns();
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
static void conn_on_close(struct conn *c)
{
	uint64_t now = libc_now_ns();
	struct pending *e;

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

static bool conn_take_wait(struct conn *c);

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

	if ((unsigned)fd >= CONN_MAX || !conns)
		return NULL;
	c = &conns[fd];
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
 * Take conn c even if another thread holds it, waiting a bounded time. Used
 * where skipping would lose requests (close, accept on a reused fd). The
 * holders never block while holding a connection: they only parse bytes
 * already read, so the wait is short. Returns false when it timed out.
 */
static __attribute__((noinline)) bool conn_take_wait(struct conn *c)
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

static void conn_accepted(int fd)
{
	struct conn *c;

	if ((unsigned)fd >= CONN_MAX) {
		struct ring_header *h = atomic_load(&hooks_ring);

		if (h)
			ring_count(&h->untracked_conns, 1);
		else
			atomic_fetch_add(&hooks_untracked, 1);
		return;
	}
	c = &conns[fd];
	if (!conn_take_wait(c))
		return;
	/* State left by a connection closed where the shim could not see it
	 * (close_range, dup2, fclose): report what it still held. */
	if (c->state != CONN_NONE && c->owner == hooks_pid)
		conn_on_close(c);
	conn_reset(c, CONN_HTTP);
	conn_give(c);
}

/*
 * A connection inherited across fork belongs to the process that uses it:
 * a child adopts it at its first read or write.
 */
static ALWAYS_INLINE struct conn *conn_take_using(int fd)
{
	struct conn *c = conn_take(fd);

	if (c && UNLIKELY(c->owner != hooks_pid))
		c->owner = hooks_pid;
	return c;
}

static ALWAYS_INLINE void hooks_read_done(int fd, const void *buf,
					    size_t n)
{
	struct conn *c;

	if (!(c = conn_take_using(fd)))
		return;
	conn_on_read(c, fd, buf, n);
	conn_give(c);
}

static void hooks_readv_done(int fd, const struct iovec *iov, int iovcnt,
			     ssize_t n)
{
	struct conn *c;

	if (n <= 0 || !(c = conn_take_using(fd)))
		return;
	for (int i = 0; i < iovcnt && n > 0; i++) {
		size_t k = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;

		conn_on_read(c, fd, iov[i].iov_base, k);
		n -= (ssize_t)k;
	}
	conn_give(c);
}

static ALWAYS_INLINE void hooks_write_done(int fd, const void *buf,
					     size_t n)
{
	struct conn *c;

	if (!(c = conn_take_using(fd)))
		return;
	conn_on_write(c, buf, n);
	conn_give(c);
}

static void hooks_writev_done(int fd, const struct iovec *iov, int iovcnt,
			      ssize_t n)
{
	struct conn *c;

	if (n <= 0 || !(c = conn_take_using(fd)))
		return;
	for (int i = 0; i < iovcnt && n > 0; i++) {
		size_t k = iov[i].iov_len < (size_t)n ? iov[i].iov_len : (size_t)n;

		conn_on_write(c, iov[i].iov_base, k);
		n -= (ssize_t)k;
	}
	conn_give(c);
}

/* ---- the interposed functions --------------------------------------------- */

static __attribute__((noinline)) int
hooks_slow_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int r;

	LIBC_RESOLVE(accept);
	r = real_accept(fd, addr, len);
	if (UNLIKELY(hooks_on) && r >= 0) {
		int saved = errno;

		conn_accepted(r);
		errno = saved;
	}
	return r;
}

/* Profiling off: straight to libc, no frame (see the top of this file). */
HOOK int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (LIKELY(!hooks_on && real_accept))
		return real_accept(fd, addr, len);
	return hooks_slow_accept(fd, addr, len);
}

static __attribute__((noinline)) int
hooks_slow_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int r;

	LIBC_RESOLVE(accept4);
	r = real_accept4(fd, addr, len, flags);
	if (UNLIKELY(hooks_on) && r >= 0) {
		int saved = errno;

		conn_accepted(r);
		errno = saved;
	}
	return r;
}

HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (LIKELY(!hooks_on && real_accept4))
		return real_accept4(fd, addr, len, flags);
	return hooks_slow_accept4(fd, addr, len, flags);
}

/*
 * Flags under which a receive call does not hand the server the next bytes
 * of the stream: MSG_PEEK leaves them to be read again, MSG_TRUNC (TCP)
 * discards them without copying, MSG_ERRQUEUE reads the error queue.
 */
#define RECV_SKIP_FLAGS (MSG_PEEK | MSG_TRUNC | MSG_ERRQUEUE)

/*
 * Shared tail of the read-like hooks: account the bytes read into buf. A
 * call may report more bytes than the buffer holds (MSG_TRUNC on datagram
 * sockets); only what is in the buffer is looked at.
 */
#define READ_TAIL(fd, buf, n, r)                                              \
	do {                                                                  \
		if (UNLIKELY(hooks_on) && (r) > 0) {                          \
			int saved_ = errno;                                   \
			hooks_read_done((fd), (buf),                          \
					(size_t)(r) < (n) ? (size_t)(r) : (n)); \
			errno = saved_;                                       \
		}                                                             \
	} while (0)

/*
 * Write-like hooks count themselves in flight on a tracked connection from
 * before the call until its bytes are accounted, so that a close() on
 * another thread (the client saw the response and hung up) waits for them
 * instead of reporting an answered request as aborted.
 */
static inline struct conn *hooks_write_begin(int fd)
{
	struct conn *c;

	if (!hooks_on || (unsigned)fd >= CONN_MAX || !conns)
		return NULL;
	c = &conns[fd];
	if (c->state == CONN_NONE)
		return NULL;
	atomic_fetch_add_explicit(&c->writers, 1, memory_order_acq_rel);
	return c;
}

/* Shared tail of the write-like hooks (buf NULL: bytes sent from a file). */
#define WRITE_TAIL(wc, fd, buf, n, r)                                         \
	do {                                                                  \
		if (UNLIKELY(wc)) {                                           \
			int saved_ = errno;                                   \
			if ((r) > 0)                                          \
				hooks_write_done((fd), (buf),                 \
						 (size_t)(r) < (n) ? (size_t)(r) : (n)); \
			atomic_fetch_sub_explicit(&(wc)->writers, 1,          \
						  memory_order_acq_rel);      \
			errno = saved_;                                       \
		}                                                             \
	} while (0)

static __attribute__((noinline)) ssize_t
hooks_slow_recv(int fd, void *buf, size_t n, int flags)
{
	ssize_t r;

	LIBC_RESOLVE(recv);
	r = real_recv(fd, buf, n, flags);
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	if (LIKELY(!hooks_on && real_recv))
		return real_recv(fd, buf, n, flags);
	return hooks_slow_recv(fd, buf, n, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	ssize_t r;

	LIBC_RESOLVE(recv_chk);
	r = real_recv_chk(fd, buf, n, buflen, flags);
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (LIKELY(!hooks_on && real_recv_chk))
		return real_recv_chk(fd, buf, n, buflen, flags);
	return hooks_slow_recv_chk(fd, buf, n, buflen, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recvfrom(int fd, void *buf, size_t n, int flags,
		      struct sockaddr *addr, socklen_t *len)
{
	ssize_t r;

	LIBC_RESOLVE(recvfrom);
	r = real_recvfrom(fd, buf, n, flags, addr, len);
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
		      struct sockaddr *addr, socklen_t *len)
{
	if (LIKELY(!hooks_on && real_recvfrom))
		return real_recvfrom(fd, buf, n, flags, addr, len);
	return hooks_slow_recvfrom(fd, buf, n, flags, addr, len);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
			    int flags, struct sockaddr *addr, socklen_t *len)
{
	ssize_t r;

	LIBC_RESOLVE(recvfrom_chk);
	r = real_recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
			    int flags, struct sockaddr *addr, socklen_t *len)
{
	if (LIKELY(!hooks_on && real_recvfrom_chk))
		return real_recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
	return hooks_slow_recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r;

	LIBC_RESOLVE(recvmsg);
	r = real_recvmsg(fd, msg, flags);
	if (UNLIKELY(hooks_on) && r > 0 && !(flags & RECV_SKIP_FLAGS) &&
	    !(msg->msg_flags & MSG_TRUNC)) {
		int saved = errno;

		hooks_readv_done(fd, msg->msg_iov, (int)msg->msg_iovlen, r);
		errno = saved;
	}
	return r;
}

HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (LIKELY(!hooks_on && real_recvmsg))
		return real_recvmsg(fd, msg, flags);
	return hooks_slow_recvmsg(fd, msg, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_read(int fd, void *buf, size_t n)
{
	ssize_t r;

	LIBC_RESOLVE(read);
	r = real_read(fd, buf, n);
	READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t read(int fd, void *buf, size_t n)
{
	if (LIKELY(!hooks_on && real_read))
		return real_read(fd, buf, n);
	return hooks_slow_read(fd, buf, n);
}

static __attribute__((noinline)) ssize_t
hooks_slow_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	ssize_t r;

	LIBC_RESOLVE(read_chk);
	r = real_read_chk(fd, buf, n, buflen);
	READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (LIKELY(!hooks_on && real_read_chk))
		return real_read_chk(fd, buf, n, buflen);
	return hooks_slow_read_chk(fd, buf, n, buflen);
}

static __attribute__((noinline)) ssize_t
hooks_slow_readv(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t r;

	LIBC_RESOLVE(readv);
	r = real_readv(fd, iov, iovcnt);
	if (UNLIKELY(hooks_on) && r > 0) {
		int saved = errno;

		hooks_readv_done(fd, iov, iovcnt, r);
		errno = saved;
	}
	return r;
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	if (LIKELY(!hooks_on && real_readv))
		return real_readv(fd, iov, iovcnt);
	return hooks_slow_readv(fd, iov, iovcnt);
}

static __attribute__((noinline)) ssize_t
hooks_slow_send(int fd, const void *buf, size_t n, int flags)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(send);
	wc = hooks_write_begin(fd);
	r = real_send(fd, buf, n, flags);
	WRITE_TAIL(wc, fd, buf, n, r);
	return r;
}

HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	if (LIKELY(!hooks_on && real_send))
		return real_send(fd, buf, n, flags);
	return hooks_slow_send(fd, buf, n, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_sendto(int fd, const void *buf, size_t n, int flags,
		    const struct sockaddr *addr, socklen_t len)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(sendto);
	wc = hooks_write_begin(fd);
	r = real_sendto(fd, buf, n, flags, addr, len);
	WRITE_TAIL(wc, fd, buf, n, r);
	return r;
}

HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags,
		    const struct sockaddr *addr, socklen_t len)
{
	if (LIKELY(!hooks_on && real_sendto))
		return real_sendto(fd, buf, n, flags, addr, len);
	return hooks_slow_sendto(fd, buf, n, flags, addr, len);
}

static __attribute__((noinline)) ssize_t
hooks_slow_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(sendmsg);
	wc = hooks_write_begin(fd);
	r = real_sendmsg(fd, msg, flags);
	if (UNLIKELY(wc)) {
		int saved = errno;

		if (r > 0)
			hooks_writev_done(fd, msg->msg_iov, (int)msg->msg_iovlen, r);
		atomic_fetch_sub_explicit(&wc->writers, 1, memory_order_acq_rel);
		errno = saved;
	}
	return r;
}

HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (LIKELY(!hooks_on && real_sendmsg))
		return real_sendmsg(fd, msg, flags);
	return hooks_slow_sendmsg(fd, msg, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_write(int fd, const void *buf, size_t n)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(write);
	wc = hooks_write_begin(fd);
	r = real_write(fd, buf, n);
	WRITE_TAIL(wc, fd, buf, n, r);
	return r;
}

HOOK ssize_t write(int fd, const void *buf, size_t n)
{
	if (LIKELY(!hooks_on && real_write))
		return real_write(fd, buf, n);
	return hooks_slow_write(fd, buf, n);
}

static __attribute__((noinline)) ssize_t
hooks_slow_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(writev);
	wc = hooks_write_begin(fd);
	r = real_writev(fd, iov, iovcnt);
	if (UNLIKELY(wc)) {
		int saved = errno;

		if (r > 0)
			hooks_writev_done(fd, iov, iovcnt, r);
		atomic_fetch_sub_explicit(&wc->writers, 1, memory_order_acq_rel);
		errno = saved;
	}
	return r;
}

HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (LIKELY(!hooks_on && real_writev))
		return real_writev(fd, iov, iovcnt);
	return hooks_slow_writev(fd, iov, iovcnt);
}

static __attribute__((noinline)) ssize_t
hooks_slow_sendfile(int out, int in, off_t *off, size_t n)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(sendfile);
	wc = hooks_write_begin(out);
	r = real_sendfile(out, in, off, n);
	WRITE_TAIL(wc, out, NULL, n, r);
	return r;
}

HOOK ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	if (LIKELY(!hooks_on && real_sendfile))
		return real_sendfile(out, in, off, n);
	return hooks_slow_sendfile(out, in, off, n);
}

static __attribute__((noinline)) ssize_t
hooks_slow_sendfile64(int out, int in, off64_t *off, size_t n)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(sendfile64);
	wc = hooks_write_begin(out);
	r = real_sendfile64(out, in, off, n);
	WRITE_TAIL(wc, out, NULL, n, r);
	return r;
}

HOOK ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	if (LIKELY(!hooks_on && real_sendfile64))
		return real_sendfile64(out, in, off, n);
	return hooks_slow_sendfile64(out, in, off, n);
}

static __attribute__((noinline)) int
hooks_slow_close(int fd)
{
	LIBC_RESOLVE(close);
	if (UNLIKELY(hooks_on) && (unsigned)fd < CONN_MAX && conns &&
	    conns[fd].state != CONN_NONE) {
		int saved = errno;
		struct conn *c = &conns[fd];

		for (int i = 0; i < CONN_WAIT_SPINS &&
				atomic_load_explicit(&c->writers,
						     memory_order_acquire); i++)
			if (i >= 64)
				(void)sched_yield();
		if (conn_take_wait(c)) {
			/* A vfork child shares the parent's memory without
			 * running fork handlers: what it closes is the
			 * parent's business. So is a connection a fork child
			 * inherited but never used. */
			bool mine = (int)getpid() == hooks_pid;

			if (mine && c->state != CONN_NONE && c->owner == hooks_pid)
				conn_on_close(c);
			if (mine)
				c->state = CONN_NONE;
			conn_give(c);
		}
		errno = saved;
	}
	return real_close(fd);
}

HOOK int close(int fd)
{
	if (LIKELY(!hooks_on && real_close))
		return real_close(fd);
	return hooks_slow_close(fd);
}

/*
 * A program that takes SIGPROF for itself (its own handler, SIG_IGN, or
 * SIG_DFL, under which the shim's next tick would kill it) gets it: the
 * shim stands aside for the process. A vfork child runs in its parent's
 * memory and often resets every handler before exec; that is not the
 * parent's choice, so it changes nothing here.
 */
static bool hooks_takes_sigprof(const void *handler)
{
	return UNLIKELY(hooks_on) && sampler_ready() &&
	       !sampler_is_own_handler(handler) &&
	       (int)getpid() == hooks_pid;
}

HOOK int sigaction(int sig, const struct sigaction *act,
		   struct sigaction *old)
{
	LIBC_RESOLVE(sigaction);
	if (sig == SIGPROF && act &&
	    hooks_takes_sigprof(act->sa_flags & SA_SIGINFO
					? (const void *)act->sa_sigaction
					: (const void *)act->sa_handler))
		sampler_stand_aside("the program set its own SIGPROF "
				    "disposition");
	return real_sigaction(sig, act, old);
}

HOOK sighandler_t signal(int sig, sighandler_t handler)
{
	LIBC_RESOLVE(signal);
	if (sig == SIGPROF && hooks_takes_sigprof((const void *)handler))
		sampler_stand_aside("the program set its own SIGPROF "
				    "disposition");
	return real_signal(sig, handler);
}

/*
 * libunwind opens a pipe when it initialises (and again if it finds it
 * closed), and tests that memory is readable before reading through frames
 * past the signal frame by writing one byte of it into the pipe with
 * syscall(SYS_write). Two descriptors the program did not open would show
 * in its fd table, which programs and test suites check. So a pipe asked
 * for from inside the shim is not created: libunwind gets two numbers no
 * descriptor can have (above the kernel's fd limit), and syscall() answers
 * for them: a read finds the pipe empty (EAGAIN), a write of one byte
 * succeeds if that byte is readable, tested with process_vm_readv on the
 * process itself, and fails with EFAULT otherwise. Async-signal-safe.
 */
#define HOOKS_FAKE_RD 0x7ffffff0
#define HOOKS_FAKE_WR 0x7ffffff1

static long hooks_fake_pipe(long nr, long fd, const void *addr)
{
	char byte;
	struct iovec local = {&byte, 1}, remote = {(void *)addr, 1};

	if (nr == SYS_read || fd == HOOKS_FAKE_RD) {
		errno = EAGAIN;
		return -1;
	}
	if (real_syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L,
			 &remote, 1L, 0L) == 1)
		return 1;
	errno = EFAULT;
	return -1;
}

HOOK long syscall(long nr, ...)
{
	va_list ap;
	long a1, a2, a3, a4, a5, a6;

	va_start(ap, nr);
	a1 = va_arg(ap, long);
	a2 = va_arg(ap, long);
	a3 = va_arg(ap, long);
	a4 = va_arg(ap, long);
	a5 = va_arg(ap, long);
	a6 = va_arg(ap, long);
	va_end(ap);
	LIBC_RESOLVE(syscall);
	if (UNLIKELY((nr == SYS_read || nr == SYS_write) &&
		     (a1 == HOOKS_FAKE_RD || a1 == HOOKS_FAKE_WR)))
		return hooks_fake_pipe(nr, a1, (const void *)a2);
	return real_syscall(nr, a1, a2, a3, a4, a5, a6);
}

HOOK int pipe2(int fds[2], int flags)
{
	LIBC_RESOLVE(pipe2);
	if (UNLIKELY(sampler_inside())) {
		fds[0] = HOOKS_FAKE_RD;
		fds[1] = HOOKS_FAKE_WR;
		return 0;
	}
	return real_pipe2(fds, flags);
}

/*
 * libunwind looks up unwind information through dl_iterate_phdr(), which
 * takes the dynamic loader's lock. Called from the signal handler, that can
 * deadlock (the interrupted thread holds malloc's lock, a thread in dlopen
 * holds the loader's and waits for malloc's). Calls from inside the shim
 * are answered from a snapshot taken outside the handler (modmap.h); with
 * no usable snapshot they find nothing, and the stack ends there. Every
 * other call passes through.
 */
HOOK int dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
			 void *data)
{
	LIBC_RESOLVE(dl_iterate_phdr);
	if (UNLIKELY(sampler_inside())) {
		int r = modmap_snapshot_iterate(cb, data);

		return r < 0 ? 0 : r;
	}
	return real_dl_iterate_phdr(cb, data);
}

/*
 * dlclose may unmap an object the snapshot describes: the snapshot is
 * dropped first (samples meanwhile end at the first frame that needs a
 * lookup) and taken again after.
 */
HOOK int dlclose(void *handle)
{
	int r;

	LIBC_RESOLVE(dlclose);
	if (!hooks_on)
		return real_dlclose(handle);
	modmap_change_begin();
	modmap_snapshot_drop();
	r = real_dlclose(handle);
	{
		int saved = errno;

		/* Rules cached for the unmapped code would apply to
		 * whatever is mapped there next. */
		unwind_forget();
		modmap_snapshot_take();
		errno = saved;
	}
	modmap_change_end();
	return r;
}

/* A program that profiles itself with ITIMER_PROF gets the SIGPROFs. */
HOOK int setitimer(__itimer_which_t which, const struct itimerval *nv,
		   struct itimerval *old)
{
	LIBC_RESOLVE(setitimer);
	if (which == ITIMER_PROF && nv &&
	    (nv->it_value.tv_sec || nv->it_value.tv_usec) &&
	    hooks_takes_sigprof(NULL))
		sampler_stand_aside("the program set an ITIMER_PROF timer");
	return real_setitimer(which, nv, old);
}

/*
 * sigtimedwait and sigwaitinfo wait with profshim's SIGPROF blocked. The
 * kernel never restarts either call, so a sample taken during the wait made
 * it fail with EINTR; a caller that retries with its remaining time, as
 * CPython's signal.sigtimedwait does, takes an EINTR that lands after its
 * deadline for a received signal and returns an unfilled siginfo (measured
 * before this: 5% of 2 ms waits under 1000 Hz wall-clock sampling). A sample
 * that falls due meanwhile stays pending and is taken as the wait returns,
 * so a thread parked here shows one sample per wait, not one per tick: the
 * threads that sit in these calls are a program's signal-handling threads,
 * not its request threads. With the program's own SIGPROF in the set, or
 * the sampler off, the call is made as asked. Costs two rt_sigprocmask
 * calls; allocates nothing, takes no lock, returns the call's errno.
 */
static bool hooks_wait_masks(const sigset_t *set, sigset_t *old)
{
	sigset_t prof;

	if (!hooks_on || !sampler_ready() || !set ||
	    sigismember(set, SIGPROF) == 1)
		return false;
	sigemptyset(&prof);
	sigaddset(&prof, SIGPROF);
	return pthread_sigmask(SIG_BLOCK, &prof, old) == 0;
}

static void hooks_wait_unmask(const sigset_t *old)
{
	int saved = errno;

	(void)pthread_sigmask(SIG_SETMASK, old, NULL);
	errno = saved;
}

static int hooks_sigwait(const sigset_t *set, siginfo_t *info,
			 const struct timespec *timeout)
{
	sigset_t old;
	int r;

	LIBC_RESOLVE(sigtimedwait);
	if (!hooks_wait_masks(set, &old))
		return real_sigtimedwait(set, info, timeout);
	r = real_sigtimedwait(set, info, timeout);
	hooks_wait_unmask(&old);
	return r;
}

HOOK int sigtimedwait(const sigset_t *set, siginfo_t *info,
		      const struct timespec *timeout)
{
	return hooks_sigwait(set, info, timeout);
}

/* sigwaitinfo is sigtimedwait without a timeout (glibc makes it so too). */
HOOK int sigwaitinfo(const sigset_t *set, siginfo_t *info)
{
	return hooks_sigwait(set, info, NULL);
}

/*
 * A thread the program creates starts in hooks_thread_main(), which finds
 * its stack's bounds for the handler's fast walk and, in continuous mode,
 * arms its timer, then runs the program's routine. The routine and its
 * argument travel in a slot of a fixed pool, not in memory allocated here;
 * with every slot taken (more than HOOKS_STARTS threads starting at the
 * same instant) a thread starts unwrapped: it is walked with libunwind, and
 * in continuous mode not sampled.
 */
#define HOOKS_STARTS 1024

struct hooks_start {
	atomic_int used;
	void *(*fn)(void *);
	void *arg;
	size_t stack_size;
};

static struct hooks_start hooks_starts[HOOKS_STARTS];
static atomic_uint hooks_starts_hint;

static void *hooks_thread_main(void *p)
{
	struct hooks_start *slot = p;
	void *(*fn)(void *) = slot->fn;
	void *arg = slot->arg;
	size_t size = slot->stack_size;

	atomic_store_explicit(&slot->used, 0, memory_order_release);
	sampler_thread_stack(size);
	sampler_thread_start();
	return fn(arg);
}

/* The stack size a thread created with `attr` gets. */
static size_t hooks_stack_size(const pthread_attr_t *attr)
{
	pthread_attr_t def;
	size_t size = 8u << 20;

	if (attr) {
		(void)pthread_attr_getstacksize(attr, &size);
	} else if (pthread_getattr_default_np(&def) == 0) {
		(void)pthread_attr_getstacksize(&def, &size);
		(void)pthread_attr_destroy(&def);
	}
	return size;
}

HOOK int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			void *(*fn)(void *), void *arg)
{
	struct hooks_start *slot = NULL;
	int r;

	LIBC_RESOLVE(pthread_create);
	if (!hooks_on || !sampler_ready())
		return real_pthread_create(thread, attr, fn, arg);
	for (unsigned i = 0; i < HOOKS_STARTS && !slot; i++) {
		unsigned k = (atomic_fetch_add(&hooks_starts_hint, 1) + i) %
			     HOOKS_STARTS;
		int free_ = 0;

		if (atomic_compare_exchange_strong(&hooks_starts[k].used,
						   &free_, 1))
			slot = &hooks_starts[k];
	}
	if (!slot)
		return real_pthread_create(thread, attr, fn, arg);
	slot->fn = fn;
	slot->arg = arg;
	slot->stack_size = hooks_stack_size(attr);
	r = real_pthread_create(thread, attr, hooks_thread_main, slot);
	if (r != 0)
		atomic_store(&slot->used, 0);
	return r;
}

/* ---- start-up, fork, exit ------------------------------------------------- */

static void hooks_atfork_child(void)
{
	struct ring_header *h = atomic_exchange(&hooks_ring, NULL);

	hooks_pid = (int)getpid();
	hooks_tid = 0;
	hooks_seq = 0;
	hooks_rng = 0;
	modmap_fork_child();
	atomic_store(&modmap_busy, 0);
	sampler_fork_child();
	atomic_store(&hooks_ring_state, 0);
	/* Keep the parent's ring mapped (never written) until this process
	 * makes its own, which copies its module map. */
	if (h) {
		if (hooks_parent_ring)
			ring_unmap(hooks_parent_ring);
		hooks_parent_ring = h;
	}
	/* The next look for new objects after a second, not right away. */
	atomic_store(&modmap_next, libc_now_ns() + MODMAP_RESCAN_NS);
	/* The child's one thread goes on being sampled, into a ring of its
	 * own, in continuous mode; in request mode at its first request. */
	if (hooks_cfg.mode == RING_MODE_CONTINUOUS) {
		(void)hooks_ring_get();
		sampler_thread_start();
	}
}

__attribute__((constructor)) static void hooks_init(void)
{
	ssize_t n;
	int r;

	libc_resolve();
	env_load(&hooks_cfg, getenv, libc_warn);
	if (!hooks_cfg.enabled)
		return; /* pure pass-through: no memory, no handler, no timer */
	hooks_rate_all = hooks_cfg.mode == RING_MODE_CONTINUOUS ||
			 hooks_cfg.sample_rate >= 1.0;
	hooks_rate_some = hooks_cfg.sample_rate > 0.0;

	hooks_pid = (int)getpid();
	n = readlink("/proc/self/exe", hooks_exe, sizeof(hooks_exe) - 1);
	hooks_exe[n > 0 ? n : 0] = '\0';

	/* Reserved, not committed: pages appear as connections use them. */
	conns = mmap(NULL, sizeof(struct conn) * CONN_MAX,
		     PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (conns == MAP_FAILED) {
		conns = NULL;
		libc_warn("profshim: cannot reserve the connection table; "
			   "profiling is off");
		return;
	}
	modmap_snapshot_take();
	r = sampler_init(&hooks_cfg);
	(void)r; /* -EBUSY: requests are still timed, without stacks */
	if (pthread_atfork(NULL, NULL, hooks_atfork_child) != 0) {
		libc_warn("profshim: pthread_atfork failed; profiling is off");
		return;
	}
	hooks_on = true;
	/* Continuous mode samples from the start, requests or not. */
	if (hooks_cfg.mode == RING_MODE_CONTINUOUS) {
		(void)hooks_ring_get();
		sampler_thread_start();
	}
}

__attribute__((destructor)) static void hooks_fini(void)
{
	struct ring_header *h = atomic_load(&hooks_ring);

	if (h)
		atomic_store((_Atomic uint32_t *)&h->exited, 1);
}

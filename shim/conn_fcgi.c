/*
 * conn_fcgi.c — FastCGI connections (see conn.h; conn_impl.h for what this
 * file shares with conn.c).
 *
 * A connection whose first bytes are a FastCGI record is one a FastCGI
 * application server (php-fpm) accepted from its web server. Its requests
 * go in the connection's queue like HTTP requests, and each is reported by
 * the same record once it ends; what differs is what delimits them
 * (fcgi.h):
 *
 *   - a request starts at the read that completes the header of its
 *     FCGI_BEGIN_REQUEST, gets its name and its sampling decision when its
 *     FCGI_PARAMS end, and is served (sampled) by the thread that read them;
 *   - it ends at the write that carries its FCGI_END_REQUEST, with the
 *     status of its Status: header (200 without one); it counts as aborted
 *     when the web server sent FCGI_ABORT_REQUEST for it or the application
 *     answered with a protocolStatus other than FCGI_REQUEST_COMPLETE;
 *   - answers name their request by id, so the queue is searched by id
 *     instead of answering its front, and a request that ends is replaced
 *     by the front one, which keeps the queue contiguous;
 *   - what is read after a request's end (php-fpm reads the web server's
 *     empty FCGI_STDIN record after it has answered) belongs to no request
 *     and starts none;
 *   - a close ends the requests still held, unanswered, as aborted.
 *
 * Same rules as conn.c: called from the hooks on a taken connection, no
 * allocation, no locks, bounded work (the queue has CONN_QUEUE entries).
 */
#include "conn_impl.h"

#include "libc.h"
#include "ring_format.h"

/* The queue slot of the request with FastCGI id `id`, or -1. */
static int conn_fcgi_slot(const struct conn *c, uint16_t id)
{
	if (id == 0)
		return -1;
	for (unsigned i = 0; i < c->qlen; i++) {
		unsigned s = (c->qhead + i) % CONN_QUEUE;

		if (c->fcgi.id[s] == id)
			return (int)s;
	}
	return -1;
}

/* Report the request in slot s as ended at end_ns and take it out of the
 * queue; the front request takes its slot. */
static void conn_fcgi_end(struct conn *c, int s, uint64_t end_ns,
			  uint16_t flags)
{
	struct conn_fcgi *f = &c->fcgi;
	unsigned front = c->qhead;

	conn_queue_complete(c, &c->q[s], end_ns, flags);
	fcgi_in_forget(&f->in, f->id[s]);
	if ((unsigned)s != front) {
		c->q[s] = c->q[front];
		f->id[s] = f->id[front];
		f->r[s] = f->r[front];
	}
	c->qhead = c->qlen == 1 ? 0 : (uint8_t)((front + 1) % CONN_QUEUE);
	c->qlen--;
}

/* End the request in slot s without its FCGI_END_REQUEST: aborted, at its
 * last write if it had one, with the status its headers gave, if any. */
static void conn_fcgi_abort(struct conn *c, int s, uint64_t now)
{
	struct pending *e = &c->q[s];

	e->status = c->fcgi.r[s].status;
	conn_fcgi_end(c, s, e->responding ? e->last_write_ns : now,
		      RING_REQ_ABORTED);
}

/* FCGI_BEGIN_REQUEST for id: open a request at the back of the queue. */
static void conn_fcgi_begin(struct conn *c, uint16_t id, uint64_t now)
{
	int s = conn_fcgi_slot(c, id);

	/* The same id again before its FCGI_END_REQUEST: the application
	 * never answered the first. */
	if (s >= 0)
		conn_fcgi_abort(c, s, now);
	if (!conn_queue_push(c, now))
		return;
	s = (c->qhead + c->qlen - 1) % CONN_QUEUE;
	c->fcgi.id[s] = id;
	fcgi_req_init(&c->fcgi.r[s]);
}

void conn_fcgi_read(struct conn *c, int fd, const char *buf, size_t n)
{
	struct conn_fcgi *f = &c->fcgi;
	uint64_t now = 0;
	unsigned ev;

	do {
		int s = conn_fcgi_slot(c, fcgi_in_id(&f->in));
		size_t used = fcgi_in_feed(&f->in, s >= 0 ? &f->r[s] : NULL,
					   buf, n, &ev);

		buf += used;
		n -= used;
		if (ev & (FCGI_IN_BEGIN | FCGI_IN_NAME) && !now)
			now = libc_now_ns();
		if (ev & FCGI_IN_BEGIN)
			conn_fcgi_begin(c, f->in.id, now);
		if ((ev & FCGI_IN_NAME) && s >= 0)
			conn_queue_name(c, fd, &c->q[s], f->in.endpoint,
					f->in.endpoint_len, f->in.manual, now);
		if (ev & FCGI_IN_ERROR) {
			/* Not FastCGI after all (its first record was not a
			 * responder's FCGI_BEGIN_REQUEST): time turns. After
			 * that, malformed: the requests held end at close. */
			if (!f->in.detected) {
				http_req_init(&c->req);
				http_resp_init(&c->resp);
				conn_turns(c, fd);
			}
			return;
		}
		if (used == 0 && !(ev & FCGI_IN_HEAD))
			return;
	} while (n > 0 || (ev & FCGI_IN_HEAD));
}

void conn_fcgi_start(struct conn *c, int fd, const char *buf, size_t n)
{
	c->state = CONN_FCGI;
	fcgi_in_init(&c->fcgi.in);
	fcgi_out_init(&c->fcgi.out);
	conn_fcgi_read(c, fd, buf, n);
}

void conn_fcgi_write(struct conn *c, const char *buf, size_t n)
{
	struct conn_fcgi *f = &c->fcgi;
	uint64_t now = libc_now_ns();
	unsigned ev;

	while (n > 0) {
		int s = conn_fcgi_slot(c, fcgi_out_id(&f->out));
		struct fcgi_req *r = s >= 0 ? &f->r[s] : NULL;
		size_t used = buf ? fcgi_out_feed(&f->out, r, buf, n, &ev)
				  : fcgi_out_skip(&f->out, r, n, &ev);

		if (buf)
			buf += used;
		n -= used;
		if ((ev & FCGI_OUT_HEAD) &&
		    (s = conn_fcgi_slot(c, fcgi_out_id(&f->out))) >= 0) {
			c->q[s].responding = 1;
			c->q[s].last_write_ns = now;
		}
		if ((ev & FCGI_OUT_END) && s >= 0) {
			bool complete = !(r->flags & FCGI_REQ_ABORTED) &&
					f->out.proto_status ==
						FCGI_REQUEST_COMPLETE;

			c->q[s].status = r->status ? r->status : 200;
			conn_fcgi_end(c, s, now,
				      complete ? 0 : RING_REQ_ABORTED);
		}
		if ((ev & FCGI_OUT_ERROR) ||
		    (used == 0 && !(ev & FCGI_OUT_HEAD)))
			return;
	}
}

void conn_fcgi_close(struct conn *c, uint64_t now)
{
	while (c->qlen)
		conn_fcgi_abort(c, c->qhead, now);
}

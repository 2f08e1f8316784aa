/*
 * hooks_io.c — the socket interposers: where requests start and end.
 *
 * Rules every hook keeps (a server's production traffic runs through them):
 *   - the real call is made first, exactly as asked, and its result and
 *     errno are returned unchanged; nothing here blocks or changes blocking;
 *   - with profiling off, a hook is two loads, two predictable branches
 *     and a jump to libc (six instructions; each hook's work is in its
 *     hooks_slow_ twin, so the fast path builds no stack frame);
 *   - the bytes are handed to the connection's request life (conn.h),
 *     which never allocates, locks or blocks.
 */
/* The build may ask for 64-bit file offsets, which makes glibc's headers
 * rename sendfile to sendfile64; the shim defines both names itself. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conn.h"
#include "cpuclock.h"
#include "hooks_wait.h"
#include "interposed.h"
#include "libc.h"
#include "sigrestart.h"

/*
 * Make the libc call `call` for the program, marked for sigrestart.h, into
 * r; make it again when the profiling signal alone made it fail (a socket
 * with a receive timeout: with the time left, hooks_resume). With no
 * signal it costs a flag test, two thread-local stores and a load; what
 * resumes the call is out of the way.
 */
#define HOOKS_READ(r, fd, fn, call)                                           \
	do {                                                                  \
		hooks_note_start();                                           \
		sigrestart_enter(0);                                          \
		(r) = (call);                                                 \
		if (UNLIKELY(sigrestart_leave())) {                           \
			ssize_t v_ = (r);                                     \
			while (hooks_resume(&v_, (const void *)(fn), (fd),    \
					    POLLIN, 0, 0) == HOOKS_AGAIN) {   \
				sigrestart_enter(0);                          \
				v_ = (call);                                  \
				if (!sigrestart_leave())                      \
					break;                                \
			}                                                     \
			(r) = v_;                                             \
		}                                                             \
	} while (0)

/*
 * The same for a call that writes n bytes from buf (`call` writes
 * hooks_n bytes from hooks_p): a blocking write the profiling signal alone
 * cut short goes on with the rest, and r is the whole count, as if no
 * signal had come.
 */
#define HOOKS_WRITE(r, fd, fn, buf, n, flags, call)                           \
	do {                                                                  \
		const char *hooks_p = (const char *)(buf);                    \
		size_t hooks_n = (n);                                         \
		(void)hooks_p;                                                \
		hooks_note_start();                                           \
		sigrestart_enter(0);                                          \
		(r) = (call);                                                 \
		if (UNLIKELY(sigrestart_leave()))                             \
			HOOKS_WRITE_AFTER(r, fd, fn, buf, n, flags, call);    \
	} while (0)

/* HOOKS_WRITE once the call `call` returned r with the profiling signal
 * held (sigrestart_leave). */
#define HOOKS_WRITE_AFTER(r, fd, fn, buf, n, flags, call)                     \
	do {                                                                  \
		const char *hooks_p = (const char *)(buf);                    \
		size_t hooks_n = (n);                                         \
		size_t done_ = 0;                                             \
		ssize_t v_ = (r);                                             \
		for (;;) {                                                    \
			enum hooks_resume a_ = hooks_resume(                  \
				&v_, (const void *)(fn), (fd), POLLOUT,       \
				hooks_n, (flags));                            \
			if (a_ == HOOKS_REST) {                               \
				done_ += (size_t)v_;                          \
				hooks_p += v_;                                \
				hooks_n -= (size_t)v_;                        \
			} else if (a_ != HOOKS_AGAIN) {                       \
				break;                                        \
			}                                                     \
			sigrestart_enter(0);                                  \
			v_ = (call);                                          \
			if (!sigrestart_leave())                              \
				break;                                        \
		}                                                             \
		(r) = v_ > 0 ? v_ + (ssize_t)done_                            \
		      : done_ ? (ssize_t)done_ : v_;                          \
	} while (0)

/* Bytes in an iovec array. */
static size_t hooks_iov_len(const struct iovec *iov, int cnt)
{
	size_t n = 0;

	for (int i = 0; i < cnt; i++)
		n += iov[i].iov_len;
	return n;
}

/*
 * The rest of a blocking writev or sendmsg that the profiling signal alone
 * cut short after `done` bytes, segment by segment (the ancillary data and
 * the address went with the first part). Returns the whole count.
 */
static ssize_t hooks_write_iov_rest(int fd, const struct iovec *iov, int cnt,
				    size_t done, int flags, bool sock)
{
	size_t skip = done;
	ssize_t total = (ssize_t)done;
	int saved = errno;

	for (int i = 0; i < cnt; i++) {
		size_t len = iov[i].iov_len, left;
		const char *p;
		ssize_t r;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		p = (const char *)iov[i].iov_base + skip;
		left = len - skip;
		skip = 0;
		if (sock)
			HOOKS_WRITE(r, fd, real_send, p, left, flags,
				    real_send(fd, hooks_p, hooks_n, flags));
		else
			HOOKS_WRITE(r, fd, real_write, p, left, 0,
				    real_write(fd, hooks_p, hooks_n));
		if (r <= 0)
			break;
		total += r;
		if ((size_t)r < left)
			break;
	}
	errno = saved;
	return total;
}

static __attribute__((noinline)) int
hooks_slow_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int r;

	LIBC_RESOLVE(accept);
	HOOKS_READ(r, fd, real_accept, real_accept(fd, addr, len));
	if (UNLIKELY(proc_on) && r >= 0) {
		int saved = errno;

		conn_accepted(r);
		errno = saved;
	}
	return r;
}

/* Profiling off: straight to libc, no frame (see the top of this file). */
HOOK int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (LIKELY(!proc_on && real_accept))
		return real_accept(fd, addr, len);
	return hooks_slow_accept(fd, addr, len);
}

static __attribute__((noinline)) int
hooks_slow_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int r;

	LIBC_RESOLVE(accept4);
	HOOKS_READ(r, fd, real_accept4,
		   real_accept4(fd, addr, len, flags));
	if (UNLIKELY(proc_on) && r >= 0) {
		int saved = errno;

		conn_accepted(r);
		errno = saved;
	}
	return r;
}

HOOK int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (LIKELY(!proc_on && real_accept4))
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
		if (UNLIKELY(proc_on) && (r) > 0) {                          \
			int saved_ = errno;                                   \
			conn_read_done((fd), (buf),                          \
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

	if (!proc_on || (unsigned)fd >= CONN_MAX || !conn_table)
		return NULL;
	c = &conn_table[fd];
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
				conn_write_done((fd), (buf),                 \
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
	HOOKS_READ(r, fd, real_recv, real_recv(fd, buf, n, flags));
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	if (LIKELY(!proc_on && real_recv))
		return real_recv(fd, buf, n, flags);
	return hooks_slow_recv(fd, buf, n, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	ssize_t r;

	LIBC_RESOLVE(recv_chk);
	HOOKS_READ(r, fd, real_recv_chk,
		   real_recv_chk(fd, buf, n, buflen, flags));
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	if (LIKELY(!proc_on && real_recv_chk))
		return real_recv_chk(fd, buf, n, buflen, flags);
	return hooks_slow_recv_chk(fd, buf, n, buflen, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recvfrom(int fd, void *buf, size_t n, int flags,
		      struct sockaddr *addr, socklen_t *len)
{
	ssize_t r;

	LIBC_RESOLVE(recvfrom);
	HOOKS_READ(r, fd, real_recvfrom,
		   real_recvfrom(fd, buf, n, flags, addr, len));
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t recvfrom(int fd, void *buf, size_t n, int flags,
		      struct sockaddr *addr, socklen_t *len)
{
	if (LIKELY(!proc_on && real_recvfrom))
		return real_recvfrom(fd, buf, n, flags, addr, len);
	return hooks_slow_recvfrom(fd, buf, n, flags, addr, len);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
			    int flags, struct sockaddr *addr, socklen_t *len)
{
	ssize_t r;

	LIBC_RESOLVE(recvfrom_chk);
	HOOKS_READ(r, fd, real_recvfrom_chk,
		   real_recvfrom_chk(fd, buf, n, buflen, flags, addr, len));
	if (!(flags & RECV_SKIP_FLAGS))
		READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
			    int flags, struct sockaddr *addr, socklen_t *len)
{
	if (LIKELY(!proc_on && real_recvfrom_chk))
		return real_recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
	return hooks_slow_recvfrom_chk(fd, buf, n, buflen, flags, addr, len);
}

static __attribute__((noinline)) ssize_t
hooks_slow_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r;

	LIBC_RESOLVE(recvmsg);
	HOOKS_READ(r, fd, real_recvmsg, real_recvmsg(fd, msg, flags));
	if (UNLIKELY(proc_on) && r > 0 && !(flags & RECV_SKIP_FLAGS) &&
	    !(msg->msg_flags & MSG_TRUNC)) {
		int saved = errno;

		conn_readv_done(fd, msg->msg_iov, (int)msg->msg_iovlen, r);
		errno = saved;
	}
	return r;
}

HOOK ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (LIKELY(!proc_on && real_recvmsg))
		return real_recvmsg(fd, msg, flags);
	return hooks_slow_recvmsg(fd, msg, flags);
}

static __attribute__((noinline)) ssize_t
hooks_slow_read(int fd, void *buf, size_t n)
{
	ssize_t r;

	LIBC_RESOLVE(read);
	HOOKS_READ(r, fd, real_read, real_read(fd, buf, n));
	READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t read(int fd, void *buf, size_t n)
{
	if (LIKELY(!proc_on && real_read))
		return real_read(fd, buf, n);
	return hooks_slow_read(fd, buf, n);
}

static __attribute__((noinline)) ssize_t
hooks_slow_read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	ssize_t r;

	LIBC_RESOLVE(read_chk);
	HOOKS_READ(r, fd, real_read_chk, real_read_chk(fd, buf, n, buflen));
	READ_TAIL(fd, buf, n, r);
	return r;
}

HOOK ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	if (LIKELY(!proc_on && real_read_chk))
		return real_read_chk(fd, buf, n, buflen);
	return hooks_slow_read_chk(fd, buf, n, buflen);
}

static __attribute__((noinline)) ssize_t
hooks_slow_readv(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t r;

	LIBC_RESOLVE(readv);
	HOOKS_READ(r, fd, real_readv, real_readv(fd, iov, iovcnt));
	if (UNLIKELY(proc_on) && r > 0) {
		int saved = errno;

		conn_readv_done(fd, iov, iovcnt, r);
		errno = saved;
	}
	return r;
}

HOOK ssize_t readv(int fd, const struct iovec *iov, int iovcnt)
{
	if (LIKELY(!proc_on && real_readv))
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
	HOOKS_WRITE(r, fd, real_send, buf, n, flags,
		    real_send(fd, hooks_p, hooks_n, flags));
	WRITE_TAIL(wc, fd, buf, n, r);
	return r;
}

HOOK ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	if (LIKELY(!proc_on && real_send))
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
	HOOKS_WRITE(r, fd, real_sendto, buf, n, flags,
		    real_sendto(fd, hooks_p, hooks_n, flags, addr, len));
	WRITE_TAIL(wc, fd, buf, n, r);
	return r;
}

HOOK ssize_t sendto(int fd, const void *buf, size_t n, int flags,
		    const struct sockaddr *addr, socklen_t len)
{
	if (LIKELY(!proc_on && real_sendto))
		return real_sendto(fd, buf, n, flags, addr, len);
	return hooks_slow_sendto(fd, buf, n, flags, addr, len);
}

/* sendmsg, resumed as HOOKS_WRITE does. */
static ssize_t hooks_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	hooks_note_start();
	for (;;) {
		ssize_t r;

		sigrestart_enter(0);
		r = real_sendmsg(fd, msg, flags);
		enum hooks_resume a;

		if (!sigrestart_leave())
			return r;
		a = hooks_resume(&r, (const void *)real_sendmsg, fd, POLLOUT,
				 hooks_iov_len(msg->msg_iov, (int)msg->msg_iovlen),
				 flags);
		if (a == HOOKS_REST)
			return hooks_write_iov_rest(fd, msg->msg_iov,
						    (int)msg->msg_iovlen,
						    (size_t)r, flags, true);
		if (a != HOOKS_AGAIN)
			return r;
	}
}

static __attribute__((noinline)) ssize_t
hooks_slow_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(sendmsg);
	wc = hooks_write_begin(fd);
	r = hooks_sendmsg(fd, msg, flags);
	if (UNLIKELY(wc)) {
		int saved = errno;

		if (r > 0)
			conn_writev_done(fd, msg->msg_iov, (int)msg->msg_iovlen, r);
		atomic_fetch_sub_explicit(&wc->writers, 1, memory_order_acq_rel);
		errno = saved;
	}
	return r;
}

HOOK ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (LIKELY(!proc_on && real_sendmsg))
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
	HOOKS_WRITE(r, fd, real_write, buf, n, 0,
		    real_write(fd, hooks_p, hooks_n));
	WRITE_TAIL(wc, fd, buf, n, r);
	return r;
}

HOOK ssize_t write(int fd, const void *buf, size_t n)
{
	if (LIKELY(!proc_on && real_write))
		return real_write(fd, buf, n);
	return hooks_slow_write(fd, buf, n);
}

/* writev, resumed as HOOKS_WRITE does. */
static ssize_t hooks_writev(int fd, const struct iovec *iov, int iovcnt)
{
	hooks_note_start();
	for (;;) {
		ssize_t r;

		sigrestart_enter(0);
		r = real_writev(fd, iov, iovcnt);
		enum hooks_resume a;

		if (!sigrestart_leave())
			return r;
		a = hooks_resume(&r, (const void *)real_writev, fd, POLLOUT,
				 hooks_iov_len(iov, iovcnt),
				 0);
		if (a == HOOKS_REST)
			return hooks_write_iov_rest(fd, iov, iovcnt, (size_t)r,
						    0, false);
		if (a != HOOKS_AGAIN)
			return r;
	}
}

static __attribute__((noinline)) ssize_t
hooks_slow_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct conn *wc;
	ssize_t r;

	LIBC_RESOLVE(writev);
	wc = hooks_write_begin(fd);
	r = hooks_writev(fd, iov, iovcnt);
	if (UNLIKELY(wc)) {
		int saved = errno;

		if (r > 0)
			conn_writev_done(fd, iov, iovcnt, r);
		atomic_fetch_sub_explicit(&wc->writers, 1, memory_order_acq_rel);
		errno = saved;
	}
	return r;
}

HOOK ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	if (LIKELY(!proc_on && real_writev))
		return real_writev(fd, iov, iovcnt);
	return hooks_slow_writev(fd, iov, iovcnt);
}

/*
 * sendfile and sendfile64 are one call on the 64-bit targets the shim
 * supports (off_t is off64_t); each hook passes its own libc entry.
 */
_Static_assert(sizeof(off_t) == sizeof(off64_t), "64-bit file offsets");

static __attribute__((noinline)) ssize_t
hooks_slow_sendfile(ssize_t (*fn)(int, int, off64_t *, size_t), int out,
		    int in, off64_t *off, size_t n)
{
	struct conn *wc = hooks_write_begin(out);
	ssize_t r;

	/* The kernel moves *off, or the input's position, past what went. */
	HOOKS_WRITE(r, out, fn, "", n, 0, fn(out, in, off, hooks_n));

	WRITE_TAIL(wc, out, NULL, n, r);
	return r;
}

HOOK ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	if (LIKELY(!proc_on && real_sendfile))
		return real_sendfile(out, in, off, n);
	LIBC_RESOLVE(sendfile);
	return hooks_slow_sendfile(real_sendfile, out, in, off, n);
}

HOOK ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	if (LIKELY(!proc_on && real_sendfile64))
		return real_sendfile64(out, in, off, n);
	LIBC_RESOLVE(sendfile64);
	return hooks_slow_sendfile(real_sendfile64, out, in, off, n);
}

static __attribute__((noinline)) int
hooks_slow_close(int fd)
{
	LIBC_RESOLVE(close);
	if (UNLIKELY(proc_on) && (unsigned)fd < CONN_MAX && conn_table &&
	    conn_table[fd].state != CONN_NONE) {
		int saved = errno;
		struct conn *c = &conn_table[fd];

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
			bool mine = (int)getpid() == proc_pid;

			if (mine && c->state != CONN_NONE && c->owner == proc_pid)
				conn_on_close(c);
			if (mine)
				c->state = CONN_NONE;
			conn_give(c);
		}
		errno = saved;
	}
	if (UNLIKELY(fd >= cpuclock_fd_floor))
		cpuclock_fd_closed(fd); /* a CPU clock's: set up again */
	return real_close(fd);
}

HOOK int close(int fd)
{
	if (LIKELY(!proc_on && real_close))
		return real_close(fd);
	return hooks_slow_close(fd);
}

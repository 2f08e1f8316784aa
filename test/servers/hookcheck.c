/*
 * hookcheck — edge cases of the socket calls the shim interposes, run on
 * loopback with this process as both server (accept) and client (connect).
 * test/integration/shim/test_hooks.py runs each scenario without and with
 * the shim and compares what it prints: the shim must never change a
 * call's return value or errno, nor crash the process.
 *
 *   hookcheck SCENARIO
 *
 * Prints result lines (return values and errno names only: no addresses,
 * ports, pids or timings), lines starting with "info " that may differ
 * between runs (the tests read them but do not compare them), then "done".
 * It then waits for EOF on stdin before exiting, so that a collector
 * started with --pid can attach to its ring while it is still alive
 * (run it with stdin at /dev/null to exit at once). Exit status 0 when the
 * scenario ran; 1 with a message on stderr when something it relies on
 * failed (that is a failure of the test, not a result).
 *
 * Every wait here restarts after EINTR: with the shim, SIGPROF ticks
 * interrupt calls SA_RESTART does not restart (poll, nanosleep).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

/* ---- helpers ------------------------------------------------------------- */

static void die(const char *fmt, ...)
{
	va_list ap;
	int e = errno;

	fprintf(stderr, "hookcheck: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (errno %s)\n", strerrorname_np(e) ? strerrorname_np(e) : "0");
	exit(1);
}

/* "N" for a successful call, "-1 ENAME" for a failed one. */
static const char *ret(ssize_t r, int e, char *buf, size_t len)
{
	if (r >= 0)
		snprintf(buf, len, "%zd", r);
	else
		snprintf(buf, len, "%zd %s", r,
			 strerrorname_np(e) ? strerrorname_np(e) : "E?");
	return buf;
}

#define RET(r, e) ret((r), (e), (char[64]){0}, 64)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static int tcp_listener(unsigned short *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("listen on 127.0.0.1");
	*port = ntohs(sa.sin_port);
	return fd;
}

static int tcp_connect(unsigned short port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	if (fd < 0)
		die("socket");
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINTR)
			die("connect to 127.0.0.1:%u", port);
		/* An interrupted connect goes on in the background. */
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
		break;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int accept_one(int lfd)
{
	int one = 1, fd;

	while ((fd = accept(lfd, NULL, NULL)) < 0)
		if (errno != EINTR)
			die("accept");
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Wait until at least n bytes are readable on fd. */
static void wait_readable(int fd, int n)
{
	uint64_t deadline = now_ns() + 5000000000ull;

	for (;;) {
		int avail = 0;

		if (ioctl(fd, FIONREAD, &avail) < 0)
			die("FIONREAD");
		if (avail >= n)
			return;
		if (now_ns() > deadline)
			die("timed out waiting for %d bytes (have %d)", n, avail);
		sleep_ms(1);
	}
}

/*
 * A buffered reader of HTTP messages (heads and Content-Length bodies).
 */
struct rd {
	int fd;
	size_t have;
	char buf[16384];
};

/* Read more into r; returns bytes read, 0 at EOF, -1 on error. */
static ssize_t rd_fill(struct rd *r)
{
	ssize_t n;

	if (r->have == sizeof(r->buf))
		return -1;
	do
		n = read(r->fd, r->buf + r->have, sizeof(r->buf) - r->have);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		r->have += (size_t)n;
	return n;
}

/*
 * Read one message (head, then a body of Content-Length bytes). Returns the
 * status code of a response (0 for a request), 0 with *eof set at a clean
 * EOF before any byte, -1 on error. The message is consumed.
 */
static int rd_message(struct rd *r, int *eof)
{
	char *end, *cl;
	size_t hlen, body = 0;
	int status = 0;

	*eof = 0;
	while (!(end = memmem(r->buf, r->have, "\r\n\r\n", 4))) {
		ssize_t n = rd_fill(r);

		if (n == 0 && r->have == 0) {
			*eof = 1;
			return 0;
		}
		if (n <= 0)
			return -1;
	}
	hlen = (size_t)(end - r->buf) + 4;
	*end = '\0';
	if (strncmp(r->buf, "HTTP/1.", 7) == 0)
		status = atoi(r->buf + 9);
	cl = strcasestr(r->buf, "\r\ncontent-length:");
	if (cl)
		body = strtoul(cl + 17, NULL, 10);
	while (r->have < hlen + body)
		if (rd_fill(r) <= 0)
			return -1;
	memmove(r->buf, r->buf + hlen + body, r->have - hlen - body);
	r->have -= hlen + body;
	return status;
}

static int rd_request(struct rd *r)
{
	int eof;

	if (rd_message(r, &eof) < 0 || eof)
		die("reading a request");
	return 0;
}

static int rd_response(struct rd *r)
{
	int eof, st = rd_message(r, &eof);

	if (st < 0 || eof)
		die("reading a response");
	return st;
}

static const char OK[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/*
 * A loopback connection on a listener of its own: the client's end (cfd,
 * read through cr) and the server's (sfd, read through sr).
 */
struct conn {
	unsigned short port;
	int lfd, cfd, sfd;
	struct rd sr, cr;
};

static void conn_open(struct conn *c)
{
	c->lfd = tcp_listener(&c->port);
	c->cfd = tcp_connect(c->port);
	c->sfd = accept_one(c->lfd);
	c->sr.fd = c->sfd;
	c->sr.have = 0;
	c->cr.fd = c->cfd;
	c->cr.have = 0;
}

static void client_send(struct conn *c, const char *buf, size_t n)
{
	if (write_all(c->cfd, buf, n) < 0)
		die("client write");
}

static void server_answer(struct conn *c)
{
	if (write_all(c->sfd, OK, sizeof(OK) - 1) < 0)
		die("server write");
}

/* conn_open(), then the client sends the request req (a string) and the
 * server reads it. */
static void conn_request(struct conn *c, const char *req)
{
	conn_open(c);
	client_send(c, req, strlen(req));
	rd_request(&c->sr);
}

/* The client reads the response, then EOF: prints "<what>status=S then
 * eof=E", and closes its end and the listener. */
static void client_read_to_eof(struct conn *c, const char *what)
{
	int eof, st = rd_response(&c->cr);

	(void)rd_message(&c->cr, &eof);
	printf("%sstatus=%d then eof=%d\n", what, st, eof);
	close(c->cfd);
	close(c->lfd);
}

/* 8 bytes at the very end of a page followed by an inaccessible page: a
 * read past them faults. */
static char *guarded8(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *p = mmap(NULL, (size_t)pg * 2, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED || mprotect(p + pg, (size_t)pg, PROT_NONE) < 0)
		die("guard page");
	return p + pg - 8;
}

/* ---- scenarios ------------------------------------------------------------ */

/*
 * MSG_TRUNC on TCP discards bytes without copying them (buffer may be
 * NULL); MSG_PEEK leaves them to be read again. On a Unix SOCK_SEQPACKET
 * connection MSG_TRUNC makes recv report the whole record's length, more
 * than the buffer holds.
 */
static void msg_trunc(void)
{
	struct conn c;
	char req[101], peek[64], got[64];
	ssize_t r1, r2, r3;
	int e1, e2, e3;

	/* Exactly 100 bytes of an HTTP request. */
	snprintf(req, sizeof(req), "GET /msgtrunc HTTP/1.1\r\nHost: 127.0.0.1"
				   "\r\nX-Pad: %-*s\r\n\r\n",
		 100 - 52, "p");
	if (strlen(req) != 100)
		die("request is %zu bytes", strlen(req));
	conn_open(&c);
	client_send(&c, req, 100);
	wait_readable(c.sfd, 100);
	r1 = recv(c.sfd, NULL, 50, MSG_TRUNC);
	e1 = errno;
	r2 = recv(c.sfd, peek, 50, MSG_PEEK);
	e2 = errno;
	r3 = recv(c.sfd, got, 50, 0);
	e3 = errno;
	printf("tcp recv(NULL, 50, MSG_TRUNC)=%s\n", RET(r1, e1));
	printf("tcp recv(50, MSG_PEEK)=%s\n", RET(r2, e2));
	printf("tcp recv(50)=%s\n", RET(r3, e3));
	printf("tcp peeked bytes read again: %s\n",
	       r2 == 50 && r3 == 50 && memcmp(peek, got, 50) == 0 ? "yes" : "no");
	printf("tcp bytes after the discarded ones: %s\n",
	       r3 == 50 && memcmp(got, req + 50, 50) == 0 ? "yes" : "no");
	server_answer(&c);
	close(c.sfd);
	client_read_to_eof(&c, "tcp response ");

	/* Unix SOCK_SEQPACKET: records of 100 bytes into an 8-byte buffer
	 * that has an inaccessible page right behind it. */
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	socklen_t slen;
	int ul, uc, us;
	char *b8 = guarded8();
	struct iovec iov = {.iov_base = b8, .iov_len = 8};
	ssize_t r;

	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
		 "profshim-hookcheck.%d", (int)getpid());
	slen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			   strlen(sun.sun_path + 1));
	ul = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (ul < 0 || bind(ul, (struct sockaddr *)&sun, slen) < 0 ||
	    listen(ul, 4) < 0)
		die("unix listen");
	uc = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (uc < 0 || connect(uc, (struct sockaddr *)&sun, slen) < 0)
		die("unix connect");
	while ((us = accept(ul, NULL, NULL)) < 0)
		if (errno != EINTR)
			die("unix accept");
	for (int i = 0; i < 4; i++)
		if (send(uc, req, 100, 0) != 100)
			die("unix send");

	/* One record each: recvmsg() with and without MSG_TRUNC, then
	 * recv() the same way (b8 is zeroed before each). */
	for (int i = 0; i < 2; i++) {
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
		int flags = i == 0 ? MSG_TRUNC : 0;

		memset(b8, 0, 8);
		r = recvmsg(us, &msg, flags);
		printf("seqpacket recvmsg(8%s)=%s msg_flags.MSG_TRUNC=%d "
		       "data=%.8s\n", flags ? ", MSG_TRUNC" : "",
		       RET(r, errno), !!(msg.msg_flags & MSG_TRUNC), b8);
	}
	for (int i = 0; i < 2; i++) {
		int flags = i == 0 ? MSG_TRUNC : 0;

		memset(b8, 0, 8);
		r = recv(us, b8, 8, flags);
		printf("seqpacket recv(8%s)=%s data=%.8s\n",
		       flags ? ", MSG_TRUNC" : "", RET(r, errno), b8);
	}

	close(us);
	close(uc);
	close(ul);
}

/*
 * Calls that fail: a bad buffer on a tracked connection (EFAULT) and a bad
 * descriptor with a bad message (EBADF). Then the request is answered.
 */
static void efault(void)
{
	/* volatile: the compiler need not know the pointer is bad */
	void *volatile one = (void *)1;
	struct iovec bad = {.iov_base = one, .iov_len = 10};
	struct msghdr m = {.msg_iov = &bad, .msg_iovlen = 1};
	struct conn c;
	int sfd;
	ssize_t r;

	conn_request(&c, "GET /efault HTTP/1.1\r\nHost: x\r\n\r\n");
	sfd = c.sfd;

	errno = 0;
	r = write(sfd, one, 10);
	printf("write(conn, 1, 10)=%s\n", RET(r, errno));
	errno = 0;
	r = send(sfd, one, 10, 0);
	printf("send(conn, 1, 10)=%s\n", RET(r, errno));
	errno = 0;
	r = sendto(sfd, one, 10, 0, NULL, 0);
	printf("sendto(conn, 1, 10)=%s\n", RET(r, errno));
	errno = 0;
	r = writev(sfd, &bad, 1);
	printf("writev(conn, {1, 10})=%s\n", RET(r, errno));
	errno = 0;
	r = sendmsg(sfd, &m, 0);
	printf("sendmsg(conn, {{1, 10}})=%s\n", RET(r, errno));
	errno = 0;
	r = sendmsg(sfd, one, 0);
	printf("sendmsg(conn, 1)=%s\n", RET(r, errno));
	if (fcntl(99, F_GETFD) >= 0)
		die("fd 99 is open");
	errno = 0;
	r = sendmsg(99, one, 0);
	printf("sendmsg(99, 1)=%s\n", RET(r, errno));
	errno = 0;
	r = write(99, one, 10);
	printf("write(99, 1, 10)=%s\n", RET(r, errno));

	server_answer(&c);
	close(sfd);
	client_read_to_eof(&c, "response ");
}

/*
 * One thread reads a request asking to be profiled (?profile=1), another
 * writes its whole response. The reading thread then waits in poll() on an
 * idle connection: once the request is complete its sampling timer must
 * stop, or every tick interrupts the poll (EINTR: SA_RESTART does not
 * restart poll). The number of EINTRs is printed as an "info" line.
 */
static void *handoff_writer(void *arg)
{
	int fd = *(int *)arg;

	if (write_all(fd, OK, sizeof(OK) - 1) < 0)
		die("writer thread: write");
	return NULL;
}

static void handoff(void)
{
	static const char req[] =
		"GET /handoff?profile=1 HTTP/1.1\r\n\r\n";
	struct conn c;
	int icfd, isfd, pr, pe, st, eintr = 0;
	pthread_t b;
	struct pollfd p;
	uint64_t end;

	conn_open(&c);
	icfd = tcp_connect(c.port);
	isfd = accept_one(c.lfd);
	client_send(&c, req, sizeof(req) - 1);
	rd_request(&c.sr);               /* this thread read it ... */
	if (pthread_create(&b, NULL, handoff_writer, &c.sfd) != 0)
		die("pthread_create");
	pthread_join(b, NULL);           /* ... another one answered it */

	end = now_ns() + 1000000000ull;
	for (;;) {
		uint64_t t = now_ns();
		int left = t >= end ? 0 : (int)((end - t + 999999) / 1000000);

		p.fd = isfd;
		p.events = POLLIN;
		p.revents = 0;
		pr = poll(&p, 1, left);
		pe = errno;
		if (pr < 0 && pe == EINTR) {
			eintr++;
			continue;
		}
		break;
	}
	printf("poll(idle connection, 1000 ms)=%s\n", RET(pr, pe));
	printf("info eintr=%d\n", eintr);

	st = rd_response(&c.cr);
	printf("response status=%d\n", st);
	close(c.sfd);
	close(isfd);
	close(icfd);
	close(c.cfd);
	close(c.lfd);
}

/*
 * Keep-alive connections where one thread reads the requests and another
 * writes the responses; at the client's EOF the reader closes the
 * connection at once, while the writer may still be inside write().
 */
#define RACE_CLIENTS 4
#define RACE_REQUESTS 500

struct race_conn {
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending, quit, written;
	unsigned short port;
	int ok;
};

static void *race_writer(void *arg)
{
	struct race_conn *c = arg;

	for (;;) {
		pthread_mutex_lock(&c->mu);
		while (!c->pending && !c->quit)
			pthread_cond_wait(&c->cv, &c->mu);
		if (!c->pending) {
			pthread_mutex_unlock(&c->mu);
			return NULL;
		}
		c->pending--;
		pthread_mutex_unlock(&c->mu);
		if (write_all(c->fd, OK, sizeof(OK) - 1) < 0)
			die("race writer: write");
		c->written++;
	}
}

static void *race_reader(void *arg)
{
	struct race_conn *c = arg;
	static __thread struct rd r;
	pthread_t w;
	int eof;

	r.fd = c->fd;
	r.have = 0;
	if (pthread_create(&w, NULL, race_writer, c) != 0)
		die("pthread_create");
	for (;;) {
		if (rd_message(&r, &eof) < 0)
			die("race reader: read");
		if (eof)
			break;
		pthread_mutex_lock(&c->mu);
		c->pending++;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	close(c->fd);
	pthread_mutex_lock(&c->mu);
	c->quit = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(w, NULL);
	return NULL;
}

static void *race_client(void *arg)
{
	static const char req[] = "GET /race HTTP/1.1\r\nHost: x\r\n\r\n";
	struct race_conn *c = arg;
	static __thread struct rd r;

	r.fd = tcp_connect(c->port);
	r.have = 0;
	for (int i = 0; i < RACE_REQUESTS; i++) {
		if (write_all(r.fd, req, sizeof(req) - 1) < 0)
			die("race client: write");
		if (rd_response(&r) == 200)
			c->ok++;
	}
	close(r.fd);
	return NULL;
}

static void close_race(void)
{
	static struct race_conn conns[RACE_CLIENTS];
	pthread_t clients[RACE_CLIENTS], readers[RACE_CLIENTS];
	unsigned short port;
	int lfd = tcp_listener(&port), ok = 0, written = 0;

	for (int i = 0; i < RACE_CLIENTS; i++) {
		conns[i].port = port;
		pthread_mutex_init(&conns[i].mu, NULL);
		pthread_cond_init(&conns[i].cv, NULL);
		if (pthread_create(&clients[i], NULL, race_client, &conns[i]))
			die("pthread_create");
	}
	for (int i = 0; i < RACE_CLIENTS; i++) {
		conns[i].fd = accept_one(lfd);
		if (pthread_create(&readers[i], NULL, race_reader, &conns[i]))
			die("pthread_create");
	}
	for (int i = 0; i < RACE_CLIENTS; i++) {
		pthread_join(clients[i], NULL);
		pthread_join(readers[i], NULL);
	}
	/* Accepted connections pair with clients in any order: only totals
	 * are deterministic. */
	for (int i = 0; i < RACE_CLIENTS; i++) {
		ok += conns[i].ok;
		written += conns[i].written;
	}
	printf("requests sent=%d answered 200=%d responses written=%d\n",
	       RACE_CLIENTS * RACE_REQUESTS, ok, written);
	close(lfd);
}

/*
 * A response whose head promises 1000 bytes of body, of which 10 are sent
 * before the server closes the connection.
 */
static void truncated(void)
{
	static const char req[] = "GET /truncated HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000"
				   "\r\n\r\n0123456789";
	struct conn c;
	char buf[4096];
	size_t total = 0;
	ssize_t n, r;

	conn_request(&c, req);
	sleep_ms(100);  /* the request lasts ~100 ms ... */
	if (write_all(c.sfd, resp, sizeof(resp) - 1) < 0)
		die("server write");
	sleep_ms(400);  /* ... and is not still running until the close */
	r = close(c.sfd);
	printf("close(conn)=%s\n", RET(r, errno));
	for (;;) {
		n = read(c.cfd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (size_t)n;
	}
	printf("client got %zu bytes (head %zu + body 10), then read=%s\n",
	       total, sizeof(resp) - 1 - 10, RET(n, errno));
	close(c.cfd);
	close(c.lfd);
}

/*
 * 20 requests pipelined in one write, all read before the first response
 * is written (more than the shim's per-connection queue holds), then 5
 * more keep-alive requests on the same connection.
 */
static void pipeline_overflow(void)
{
	static const char req[] = "GET /pipe HTTP/1.1\r\nHost: x\r\n\r\n";
	char all[20 * sizeof(req)];
	struct conn c;
	int ok = 0;
	size_t len = 0;

	for (int i = 0; i < 20; i++) {
		memcpy(all + len, req, sizeof(req) - 1);
		len += sizeof(req) - 1;
	}
	conn_open(&c);
	client_send(&c, all, len);
	for (int i = 0; i < 20; i++)
		rd_request(&c.sr);
	for (int i = 0; i < 20; i++)
		server_answer(&c);
	for (int i = 0; i < 20; i++)
		ok += rd_response(&c.cr) == 200;
	printf("pipelined 20: answered 200=%d\n", ok);
	ok = 0;
	for (int i = 0; i < 5; i++) {
		client_send(&c, req, sizeof(req) - 1);
		rd_request(&c.sr);
		server_answer(&c);
		ok += rd_response(&c.cr) == 200;
	}
	printf("then keep-alive 5: answered 200=%d\n", ok);
	close(c.sfd);
	close(c.cfd);
	close(c.lfd);
}

/*
 * A vfork() child closes its copy of the connection (sharing the parent's
 * memory, without fork handlers); the parent then answers the request.
 */
static void vfork_close(void)
{
	struct conn c;
	int ws = 0;
	pid_t pid;
	ssize_t r;

	conn_request(&c, "GET /vfork HTTP/1.1\r\nHost: x\r\n\r\n");
	pid = vfork();
	if (pid == 0) {
		close(c.sfd);
		_exit(0);
	}
	if (pid < 0)
		die("vfork");
	while (waitpid(pid, &ws, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	printf("vfork child exited=%d status=%d\n", WIFEXITED(ws),
	       WEXITSTATUS(ws));
	server_answer(&c);
	r = close(c.sfd);
	printf("close(conn)=%s\n", RET(r, errno));
	client_read_to_eof(&c, "response ");
}

static const struct {
	const char *name;
	void (*run)(void);
} scenarios[] = {
	{"msg_trunc", msg_trunc},
	{"efault", efault},
	{"handoff", handoff},
	{"close_race", close_race},
	{"truncated", truncated},
	{"pipeline_overflow", pipeline_overflow},
	{"vfork_close", vfork_close},
};

int main(int argc, char **argv)
{
	char b[256];
	ssize_t n;

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; argc == 2 && i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strcmp(argv[1], scenarios[i].name) != 0)
			continue;
		printf("scenario %s\n", scenarios[i].name);
		scenarios[i].run();
		printf("done\n");
		fflush(stdout);
		/* Stay alive until stdin closes (see the top of the file). */
		while ((n = read(0, b, sizeof(b))) > 0 || (n < 0 && errno == EINTR))
			;
		return 0;
	}
	fprintf(stderr, "usage: hookcheck SCENARIO (one of:");
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(stderr, " %s", scenarios[i].name);
	fprintf(stderr, ")\n");
	return 2;
}

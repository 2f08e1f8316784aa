/*
 * control.c — the collector's control socket (see control.h).
 */
#include "util/control.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int control_path(const char *override, int create_dir, char *buf, size_t len)
{
	const char *env = getenv("PROFSHIM_SOCKET");
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char dir[200];
	struct stat st;
	int n;

	if (override || (env && *env)) {
		n = snprintf(buf, len, "%s", override ? override : env);
		return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
	}
	if (rt && *rt)
		n = snprintf(dir, sizeof(dir), "%s/profshim", rt);
	else
		n = snprintf(dir, sizeof(dir), "/tmp/profshim-%u",
			     (unsigned)getuid());
	if (n < 0 || (size_t)n >= sizeof(dir))
		return -ENAMETOOLONG;
	if (create_dir && mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (create_dir) {
		if (lstat(dir, &st) < 0)
			return -errno;
		/* Someone else's directory, or one others can write, would
		 * let them hand our users a fake collector. */
		if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
		    (st.st_mode & 077))
			return -EPERM;
	}
	n = snprintf(buf, len, "%s/collector.sock", dir);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static uint64_t control_now_ms(void)
{
	return clock_now_ns() / 1000000;
}

static int control_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

int control_listen(const char *path)
{
	struct sockaddr_un sa;
	int fd, r;

	r = control_addr(path, &sa);
	if (r < 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int probe;

		if (errno != EADDRINUSE) {
			r = -errno;
			goto fail;
		}
		/* A socket file exists: is a collector answering? */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa,
					  sizeof(sa)) == 0) {
			(void)close(probe);
			r = -EADDRINUSE;
			goto fail;
		}
		if (probe >= 0)
			(void)close(probe);
		(void)unlink(path); /* stale, from a collector that died */
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			r = -errno;
			goto fail;
		}
	}
	(void)chmod(path, 0600);
	if (listen(fd, 16) < 0) {
		r = -errno;
		goto fail;
	}
	return fd;
fail:
	(void)close(fd);
	return r;
}

int control_accept(int lfd, char *req, size_t reqlen)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	size_t got = 0;
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != getuid() && cred.uid != 0)) {
		(void)close(fd);
		return 0;
	}
	while (got + 1 < reqlen) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 1000) <= 0)
			break;
		n = read(fd, req + got, reqlen - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(req, '\n', got))
			break;
	}
	req[got] = '\0';
	req[strcspn(req, "\n")] = '\0';
	/* A client that gave up (it waited on a stopped collector) has
	 * closed its end: its request is not carried out. */
	{
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR))) {
			(void)close(fd);
			return 0;
		}
	}
	return fd;
}

static void control_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

void control_reply(int fd, int ok, const char *body, size_t len)
{
	if (ok) {
		control_write_all(fd, "ok\n", 3);
		control_write_all(fd, body, len);
	} else {
		control_write_all(fd, "error: ", 7);
		control_write_all(fd, body, len);
		control_write_all(fd, "\n", 1);
	}
	(void)close(fd);
}

/* Seconds a client waits for the first byte of an answer, or between two
 * later ones; a stopped collector is told apart at once. */
#define CONTROL_ANSWER_SECONDS 60

/* True when process pid is stopped (SIGSTOP, a debugger). */
static bool control_stopped(pid_t pid)
{
	char path[64], buf[512], *paren;
	ssize_t n;
	int fd;

	(void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	paren = strrchr(buf, ')');
	return paren && paren[1] == ' ' && (paren[2] == 'T' || paren[2] == 't');
}

/*
 * Wait until fd has something to read. Returns 0, or CONTROL_SILENT with
 * the reason in err when the collector (the socket's listener, `peer`) is
 * stopped (looked at after 200 ms, then every second) or says nothing for
 * CONTROL_ANSWER_SECONDS.
 */
static int control_wait(int fd, pid_t peer, const char *path, char *err,
			size_t errlen)
{
	uint64_t deadline = control_now_ms() + CONTROL_ANSWER_SECONDS * 1000;
	int slice = 200;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, slice);

		if (r > 0 || (r < 0 && errno != EINTR))
			return 0;
		if (peer > 0 && control_stopped(peer)) {
			(void)snprintf(err, errlen,
				       "the collector at %s (pid %d) is stopped "
				       "and cannot answer (the request is "
				       "dropped); resume it with 'kill -CONT "
				       "%d'",
				       path, (int)peer, (int)peer);
			return CONTROL_SILENT;
		}
		if (control_now_ms() >= deadline)
			break;
		slice = 1000;
	}
	(void)snprintf(err, errlen, "the collector at %s did not answer within "
		       "%d s (the request is dropped)", path,
		       CONTROL_ANSWER_SECONDS);
	return CONTROL_SILENT;
}

/*
 * Connect to the listener at sa. A collector that accepts nobody (stopped,
 * with its queue of waiting clients full) would make a blocking connect
 * wait for ever: the socket is non-blocking while connecting, and a full
 * queue is tried again for CONTROL_CONNECT_MS. Returns the connected
 * (blocking) fd, -ENOENT-like negative errno when nothing listens there,
 * or -EAGAIN when the queue stayed full.
 */
#define CONTROL_CONNECT_MS 3000

static int control_connect(const struct sockaddr_un *sa)
{
	uint64_t deadline = control_now_ms() + CONTROL_CONNECT_MS;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	while (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		int e = errno;

		if ((e != EAGAIN && e != EINTR) || control_now_ms() >= deadline) {
			(void)close(fd);
			return -e;
		}
		(void)poll(NULL, 0, 100);
	}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

int control_call(const char *path, const char *req, FILE *out, char *err,
		 size_t errlen)
{
	struct ucred cred = {0};
	socklen_t clen = sizeof(cred);
	struct sockaddr_un sa;
	char buf[65536];
	size_t head = 0;
	int fd, ok = -1;
	ssize_t n;

	if (control_addr(path, &sa) < 0) {
		(void)snprintf(err, errlen, "socket path too long: %s", path);
		return 1;
	}
	fd = control_connect(&sa);
	if (fd == -EAGAIN) {
		(void)snprintf(err, errlen,
			       "the collector at %s accepts no connection (it "
			       "is stopped or overloaded)", path);
		return CONTROL_SILENT;
	}
	if (fd < 0) {
		(void)snprintf(err, errlen,
			       "no collector is running (nothing answers at "
			       "%s); start one with 'profshim-collector record'",
			       path);
		return 1;
	}
	/* The listener's pid: whoever called listen(), the collector. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
		cred.pid = 0;
	control_write_all(fd, req, strlen(req));
	control_write_all(fd, "\n", 1);
	(void)shutdown(fd, SHUT_WR);
	for (;;) {
		char *nl;
		int w = control_wait(fd, cred.pid, path, err, errlen);

		if (w) {
			(void)close(fd);
			return w;
		}
		n = read(fd, buf + head, sizeof(buf) - 1 - head);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;

		head += (size_t)n;
		if (ok >= 0) {
			(void)fwrite(buf, 1, head, out);
			head = 0;
			continue;
		}
		buf[head] = '\0';
		nl = memchr(buf, '\n', head);
		if (!nl && head < sizeof(buf) - 1)
			continue;
		if (strncmp(buf, "ok\n", 3) == 0) {
			ok = 1;
			(void)fwrite(buf + 3, 1, head - 3, out);
			head = 0;
		} else {
			ok = 0;
			if (nl)
				*nl = '\0';
			(void)snprintf(err, errlen, "%s",
				       strncmp(buf, "error: ", 7) == 0 ? buf + 7
								       : buf);
			break;
		}
	}
	(void)close(fd);
	if (ok < 0) {
		(void)snprintf(err, errlen,
			       "the collector at %s closed without answering",
			       path);
		return 1;
	}
	return ok ? 0 : 1;
}

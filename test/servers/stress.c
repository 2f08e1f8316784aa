/*
 * stress — 16 threads doing what makes signal-based profilers deadlock or
 * crash, for a given time, while profshim samples them:
 *
 *   4 threads  dlopen + dlclose (the dynamic loader's lock)
 *   4 threads  malloc + free of varied sizes (malloc's locks)
 *   4 threads  fork + _exit in the child + waitpid (fork with timers armed)
 *   4 threads  HTTP requests over loopback to themselves (the shim's hooks)
 *
 *   stress SECONDS
 *
 * Prints "dlopen=N malloc=N fork=N requests=N" and exits 0. A deadlock
 * shows as the program not finishing; a crash as a signal exit.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double stress_end;
static atomic_long n_dlopen, n_malloc, n_fork, n_requests;
static atomic_int failures;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *loop_dlopen(void *arg)
{
	static const char *const libs[] = {"libz.so.1", "libm.so.6",
					   "libresolv.so.2", "libutil.so.1"};
	int k = (int)(long)arg;

	while (now() < stress_end) {
		void *h = dlopen(libs[k % 4], RTLD_NOW | RTLD_LOCAL);

		if (!h) {
			atomic_fetch_add(&failures, 1);
			break;
		}
		dlclose(h);
		atomic_fetch_add(&n_dlopen, 1);
	}
	return NULL;
}

static void *loop_malloc(void *arg)
{
	unsigned seed = (unsigned)(long)arg * 2654435761u;
	void *keep[64] = {0};

	while (now() < stress_end) {
		for (int i = 0; i < 1000; i++) {
			int slot = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 64;
			size_t size = 1 + ((seed >> 8) % 70000);

			free(keep[slot]);
			keep[slot] = malloc(size);
			if (keep[slot])
				memset(keep[slot], 1, size < 64 ? size : 64);
		}
		atomic_fetch_add(&n_malloc, 1000);
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	return NULL;
}

static void *loop_fork(void *arg)
{
	(void)arg;
	while (now() < stress_end) {
		pid_t p = fork();
		int st;

		if (p == 0) {
			/* A little work in the child, with its timer armed. */
			volatile double x = 0;

			for (int i = 0; i < 20000; i++)
				x += i * 0.5;
			_exit(0);
		}
		if (p < 0 || waitpid(p, &st, 0) != p || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0) {
			atomic_fetch_add(&failures, 1);
			break;
		}
		atomic_fetch_add(&n_fork, 1);
		usleep(20000);
	}
	return NULL;
}

static int read_until(int fd, char *buf, size_t cap, const char *end)
{
	size_t have = 0;

	while (!memmem(buf, have, end, strlen(end))) {
		ssize_t n = read(fd, buf + have, cap - have);

		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	return (int)have;
}

/* One thread plays client and server over a loopback connection. */
static void *loop_http(void *arg)
{
	static const char req[] = "GET /stress/42 HTTP/1.1\r\nHost: s\r\n\r\n";
	static const char resp[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	char buf[4096];
	int lfd, cfd, sfd;

	(void)arg;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 4) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		goto fail;
	while (now() < stress_end) {
		cfd = socket(AF_INET, SOCK_STREAM, 0);
		if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
		sfd = accept(lfd, NULL, NULL);
		if (sfd < 0)
			goto fail;
		for (int i = 0; i < 50; i++) {
			if (write(cfd, req, sizeof(req) - 1) != sizeof(req) - 1 ||
			    read_until(sfd, buf, sizeof(buf), "\r\n\r\n") < 0 ||
			    write(sfd, resp, sizeof(resp) - 1) != sizeof(resp) - 1 ||
			    read_until(cfd, buf, sizeof(buf), "hello") < 0)
				goto fail;
			atomic_fetch_add(&n_requests, 1);
		}
		close(sfd);
		close(cfd);
	}
	close(lfd);
	return NULL;
fail:
	perror("stress: http");
	atomic_fetch_add(&failures, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	void *(*kinds[4])(void *) = {loop_dlopen, loop_malloc, loop_fork,
				     loop_http};
	pthread_t t[16];

	if (argc != 2 || atof(argv[1]) <= 0) {
		fprintf(stderr, "usage: stress SECONDS\n");
		return 2;
	}
	stress_end = now() + atof(argv[1]);
	for (int i = 0; i < 16; i++)
		if (pthread_create(&t[i], NULL, kinds[i % 4], (void *)(long)i)) {
			perror("stress: pthread_create");
			return 1;
		}
	for (int i = 0; i < 16; i++)
		pthread_join(t[i], NULL);
	printf("dlopen=%ld malloc=%ld fork=%ld requests=%ld\n",
	       atomic_load(&n_dlopen), atomic_load(&n_malloc),
	       atomic_load(&n_fork), atomic_load(&n_requests));
	return atomic_load(&failures) ? 1 : 0;
}

/*
 * cpuserver — an HTTP/1.1 test server whose endpoints burn CPU in distinctly
 * named functions, so tests can check that each endpoint's top function is
 * its own.
 *
 *   cpuserver [PORT [PLUGIN [--plugin-early]]]
 *                         listen on 127.0.0.1:PORT (0 or none: any free
 *                         port); prints "listening on PORT" when ready.
 *                         PLUGIN is a shared library (burnplugin.c) that
 *                         /load opens with dlopen(); --plugin-early opens
 *                         it before the first request instead
 *
 * Endpoints (GET, keep-alive, thread per connection):
 *   /alpha?ms=N   burn_alpha() for N ms of CPU (default 20)
 *   /beta?ms=N    burn_beta()
 *   /gamma?ms=N   burn_gamma()
 *   /mix?ms=N&alpha=P[&first=beta]
 *                 burn_alpha() for P% of N ms, then burn_beta() for the
 *                 rest (default P 70): two named functions in a known
 *                 ratio; first=beta burns beta's share first. /mix-NAME is
 *                 the same (/mix-ab2, /mix-ba8: an endpoint name per shape)
 *   /closeall     closes every descriptor from 3 up to its limit but this
 *                 connection's and the listening socket, as a daemon that
 *                 tidies its descriptors does (one connection at a time)
 *   /cputime      the process' CPU time so far in ms (all its threads,
 *                 CLOCK_PROCESS_CPUTIME_ID), as text: benchmarks read it
 *                 around a run of requests
 *   /stats        JSON: per path served so far, "requests", "cpu_ms" (the
 *                 serving thread's CPU time from a request's head read to
 *                 its answer written), "alpha_ms" and "beta_ms" (CPU time
 *                 in burn_alpha and burn_beta): the ground truth tests
 *                 compare profiles with; ?profile=1 requests apart, as
 *                 "PATH (profile=1)"
 *   /sleep?ms=N   sleeps N ms (default 50) in clock_nanosleep, to an
 *                 absolute deadline so that signals do not shorten it
 *   /fast         answers at once
 *   /load         dlopen()s PLUGIN (once; 500 if it cannot)
 *   /plugin?ms=N  burn_plugin() of PLUGIN for N ms (500 before /load)
 *   /big?kb=N     a body of N KiB (default 16384) sent with send() in
 *                 64 KiB calls: a request whose time is in the shim's
 *                 send hook and the kernel under it (test_sampling.py)
 * Anything else: 404. Requests with a body are read and the body ignored.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

static volatile unsigned long sink;
static int listen_fd = -1;

/* Per-path CPU accounting for /stats. */
#define STATS_MAX 64
static struct {
	char path[64];
	unsigned long requests;
	double cpu_ms, alpha_ms, beta_ms;
} stats[STATS_MAX];
static int nstats;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread double req_alpha_ms, req_beta_ms;
static const char *plugin_path;
static void (*_Atomic plugin_burn)(double ms);

/* Open the plugin and find its function; 0, or -1 after a message. */
static int plugin_load(void)
{
	void *h;

	if (plugin_burn)
		return 0;
	h = plugin_path ? dlopen(plugin_path, RTLD_NOW) : NULL;
	if (!h || !(plugin_burn = (void (*)(double))dlsym(h, "burn_plugin"))) {
		fprintf(stderr, "cpuserver: plugin: %s\n",
			plugin_path ? dlerror() : "none given");
		return -1;
	}
	return 0;
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

#define BURN(name, mul)                                                       \
	__attribute__((noinline)) void name(double ms)                        \
	{                                                                     \
		double end = cpu_ms() + ms;                                   \
		unsigned long x = sink;                                       \
		while (cpu_ms() < end)                                        \
			for (int i = 0; i < 20000; i++)                       \
				x = x * (mul) + (unsigned long)i;             \
		sink = x;                                                     \
	}

__attribute__((noinline)) static void sleep_ms(double ms)
{
	struct timespec end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)(ms / 1000);
	end.tv_nsec += (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL) ==
	       EINTR)
		;
}

BURN(burn_alpha, 6364136223846793005ul)
BURN(burn_beta, 2862933555777941757ul)
BURN(burn_gamma, 3202034522624059733ul)

/* One write per response: a head and a body written apart would meet
 * Nagle's algorithm and the client's delayed ACK (40 ms stalls). */
static void respond(int fd, int status, const char *body)
{
	char msg[STATS_MAX * 160 + 256];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 status, status == 200 ? "OK" : "Not Found",
			 strlen(body), body);

	(void)write_all(fd, msg, (size_t)n);
}

/* A head, then `kb` KiB of body with send(), 64 KiB a call (no Nagle
 * delay on the last short segment). Called through its own name, so that
 * a profile shows send() called from here. */
__attribute__((noinline)) static void send_big(int fd, size_t kb)
{
	static char chunk[65536];
	char head[128];
	size_t left = kb * 1024;
	int one = 1, n;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream"
		     "\r\nContent-Length: %zu\r\n\r\n", left);
	if (write_all(fd, head, (size_t)n) < 0)
		return;
	while (left > 0) {
		size_t want = left < sizeof(chunk) ? left : sizeof(chunk);
		ssize_t w = send(fd, chunk, want, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		left -= (size_t)w;
	}
}

/* Add one request of `path` to /stats; a ?profile=1 one under "PATH
 * (profile=1)". */
static void stats_add(const char *path, size_t plen, bool manual, double cpu)
{
	char key[sizeof(stats[0].path)];
	int i;

	if (plen >= sizeof(key) - 16)
		plen = sizeof(key) - 16;
	memcpy(key, path, plen);
	key[plen] = '\0';
	if (manual)
		strcat(key, " (profile=1)");
	path = key;
	plen = strlen(key);
	pthread_mutex_lock(&stats_lock);
	for (i = 0; i < nstats; i++)
		if (strlen(stats[i].path) == plen &&
		    strncmp(stats[i].path, path, plen) == 0)
			break;
	if (i == nstats && nstats < STATS_MAX) {
		memcpy(stats[i].path, path, plen);
		stats[i].path[plen] = '\0';
		nstats++;
	}
	if (i < nstats) {
		stats[i].requests++;
		stats[i].cpu_ms += cpu;
		stats[i].alpha_ms += req_alpha_ms;
		stats[i].beta_ms += req_beta_ms;
	}
	pthread_mutex_unlock(&stats_lock);
}

static void stats_respond(int fd)
{
	char body[STATS_MAX * 160 + 8];
	size_t n = 0;

	pthread_mutex_lock(&stats_lock);
	n += (size_t)snprintf(body + n, sizeof(body) - n, "{");
	for (int i = 0; i < nstats; i++)
		n += (size_t)snprintf(
			body + n, sizeof(body) - n,
			"%s\"%s\": {\"requests\": %lu, \"cpu_ms\": %.3f, "
			"\"alpha_ms\": %.3f, \"beta_ms\": %.3f}",
			i ? ", " : "", stats[i].path, stats[i].requests,
			stats[i].cpu_ms, stats[i].alpha_ms, stats[i].beta_ms);
	pthread_mutex_unlock(&stats_lock);
	(void)snprintf(body + n, sizeof(body) - n, "}\n");
	respond(fd, 200, body);
}

static void handle(int fd, const char *target)
{
	const char *q = strchr(target, '?');
	size_t plen = q ? (size_t)(q - target) : strlen(target);
	double ms = 20;

	if (q && strstr(q, "ms="))
		ms = atof(strstr(q, "ms=") + 3);
	if (plen == 6 && strncmp(target, "/alpha", 6) == 0) {
		burn_alpha(ms);
		respond(fd, 200, "alpha\n");
	} else if (plen == 5 && strncmp(target, "/beta", 5) == 0) {
		burn_beta(ms);
		respond(fd, 200, "beta\n");
	} else if (plen == 6 && strncmp(target, "/gamma", 6) == 0) {
		burn_gamma(ms);
		respond(fd, 200, "gamma\n");
	} else if (plen >= 4 && strncmp(target, "/mix", 4) == 0 &&
		   (plen == 4 || target[4] == '-')) {
		double share = q && strstr(q, "alpha=")
				       ? atof(strstr(q, "alpha=") + 6) / 100
				       : 0.7;
		int beta_first = q && strstr(q, "first=beta");
		double t0, t1, t2;

		t0 = cpu_ms();
		if (beta_first)
			burn_beta(ms * (1 - share));
		else
			burn_alpha(ms * share);
		t1 = cpu_ms();
		if (beta_first)
			burn_alpha(ms * share);
		else
			burn_beta(ms * (1 - share));
		t2 = cpu_ms();
		req_alpha_ms = beta_first ? t2 - t1 : t1 - t0;
		req_beta_ms = beta_first ? t1 - t0 : t2 - t1;
		respond(fd, 200, "mix\n");
	} else if (plen == 9 && strncmp(target, "/closeall", 9) == 0) {
		long max = sysconf(_SC_OPEN_MAX);

		for (int i = 3; i < max; i++)
			if (i != fd && i != listen_fd)
				(void)close(i);
		respond(fd, 200, "closed\n");
	} else if (plen == 8 && strncmp(target, "/cputime", 8) == 0) {
		struct timespec ts;
		char body[64];

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
		(void)snprintf(body, sizeof(body), "%.6f\n",
			       ts.tv_sec * 1e3 + ts.tv_nsec / 1e6);
		respond(fd, 200, body);
	} else if (plen == 6 && strncmp(target, "/stats", 6) == 0) {
		stats_respond(fd);
	} else if (plen == 6 && strncmp(target, "/sleep", 6) == 0) {
		sleep_ms(q && strstr(q, "ms=") ? ms : 50);
		respond(fd, 200, "slept\n");
	} else if (plen == 5 && strncmp(target, "/fast", 5) == 0) {
		respond(fd, 200, "fast\n");
	} else if (plen == 5 && strncmp(target, "/load", 5) == 0) {
		if (plugin_load() == 0)
			respond(fd, 200, "loaded\n");
		else
			respond(fd, 500, "no plugin\n");
	} else if (plen == 7 && strncmp(target, "/plugin", 7) == 0) {
		void (*burn)(double) = plugin_burn;

		if (burn) {
			burn(ms);
			respond(fd, 200, "plugin\n");
		} else {
			respond(fd, 500, "not loaded\n");
		}
	} else if (plen == 4 && strncmp(target, "/big", 4) == 0) {
		send_big(fd, q && strstr(q, "kb=")
				     ? strtoul(strstr(q, "kb=") + 3, NULL, 10)
				     : 16384);
	} else {
		respond(fd, 404, "not found\n");
	}
}

/* Serve one keep-alive connection: requests are read into a buffer and
 * handled in order. */
static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	char buf[65536];
	size_t have = 0;

	for (;;) {
		char *end = NULL, method[16], target[2048];
		size_t body = 0, hlen;
		double t0;
		ssize_t n;
		char *cl;

		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			if (have == sizeof(buf))
				goto out;
			n = read(fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		hlen = (size_t)(end - buf) + 4;
		*end = '\0';
		t0 = cpu_ms();
		if (sscanf(buf, "%15s %2047s", method, target) != 2)
			goto out;
		cl = strcasestr(buf, "\r\ncontent-length:");
		if (cl)
			body = strtoul(cl + 17, NULL, 10);
		while (have < hlen + body) {
			if (hlen + body > sizeof(buf))
				goto out;
			n = read(fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		req_alpha_ms = req_beta_ms = 0;
		handle(fd, target);
		if (strncmp(target, "/stats", 6) != 0)
			stats_add(target, strcspn(target, "?"),
				  strstr(target, "profile=1") != NULL,
				  cpu_ms() - t0);
		memmove(buf, buf + hlen + body, have - hlen - body);
		have -= hlen + body;
	}
out:
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int one = 1, lfd;

	signal(SIGPIPE, SIG_IGN);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(argc > 1 ? (unsigned short)atoi(argv[1]) : 0);
	plugin_path = argc > 2 ? argv[2] : NULL;
	if (argc > 3 && strcmp(argv[3], "--plugin-early") == 0 &&
	    plugin_load() < 0)
		return 1;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 128) < 0) {
		perror("cpuserver: listen");
		return 1;
	}
	listen_fd = lfd;
	getsockname(lfd, (struct sockaddr *)&sa, &len);
	printf("listening on %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t t;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("cpuserver: accept");
			return 1;
		}
		if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

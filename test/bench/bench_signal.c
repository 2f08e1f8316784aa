/*
 * bench_signal — per-sample cost of a SIGPROF-driven profiler, measured the
 * same way for every profiler: a thread serving a request raises SIGPROF N
 * times from a stack DEPTH frames deep, and the time per signal is printed.
 *
 *   bench_signal N DEPTH MODE
 *     MODE floor     the program installs an empty SIGPROF handler (the
 *                    cost of delivering a signal at all)
 *     MODE preload   whatever profiler is preloaded owns SIGPROF
 *                    (libprofshim, or gperftools' libprofiler with CPUPROFILE)
 *     MODE rate      the same, but the request is not a ?profile=1 one:
 *                    libprofshim samples it as PROFILING_SAMPLE_RATE says,
 *                    on its CPU clock (at rate 1 every signal is kept; at
 *                    rate 0 none is: the cost of a signal not kept)
 *
 * "Serving a request" is real: the program listens on 127.0.0.1, connects
 * to itself, accepts, and reads "GET /bench?profile=1 HTTP/1.1" (MODE rate:
 * "GET /bench HTTP/1.1") on the accepted socket before raising, and writes
 * the response afterwards. Under libprofshim that makes the thread serve a
 * manual (?profile=1) request, so its handler takes a sample for each
 * signal; with MODE rate, a request sampled on the CPU clock, whose engine
 * (PROFILING_CPU_ENGINE) is set up for the thread.
 *
 * Prints one line: "ns_per_signal=<float> signals=<N> depth=<DEPTH>
 * pid=<PID>".
 * Built with -O2 and without frame pointers, like most production code.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long bench_sink;

static void bench_empty(int sig)
{
	(void)sig;
}

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Recurse to the requested depth, then raise n signals. noinline and the
 * use of the result after the call keep every frame a real frame. */
__attribute__((noinline)) static unsigned long bench_deep(int depth, long n,
							  double *ret_s)
{
	unsigned long r;

	if (depth > 1) {
		r = bench_deep(depth - 1, n, ret_s);
		bench_sink += r;
		return r + (unsigned long)depth;
	}
	double t0 = bench_now();

	for (long i = 0; i < n; i++)
		raise(SIGPROF);
	*ret_s = bench_now() - t0;
	return 1;
}

static int bench_request(const char *req, int *ret_conn, int *ret_client)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	size_t reqlen = strlen(req);
	char buf[256];
	int lfd, cfd, afd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (cfd < 0 || connect(cfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	afd = accept(lfd, NULL, NULL);
	close(lfd);
	if (afd < 0 || write(cfd, req, reqlen) != (ssize_t)reqlen)
		return -1;
	if (recv(afd, buf, sizeof(buf), 0) != (ssize_t)reqlen)
		return -1;
	*ret_conn = afd;
	*ret_client = cfd;
	return 0;
}

int main(int argc, char **argv)
{
	static const char resp[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
	long n;
	int depth, conn, client;
	double s = 0;

	if (argc != 4 || (strcmp(argv[3], "floor") && strcmp(argv[3], "preload") &&
			  strcmp(argv[3], "rate"))) {
		fprintf(stderr, "usage: bench_signal N DEPTH floor|preload|rate\n");
		return 2;
	}
	n = atol(argv[1]);
	depth = atoi(argv[2]);
	if (n <= 0 || depth < 1 || depth > 10000) {
		fprintf(stderr, "bench_signal: bad N or DEPTH\n");
		return 2;
	}
	if (strcmp(argv[3], "floor") == 0) {
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = bench_empty;
		sa.sa_flags = SA_RESTART;
		sigaction(SIGPROF, &sa, NULL);
	}
	if (bench_request(strcmp(argv[3], "rate") == 0
				  ? "GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n"
				  : "GET /bench?profile=1 HTTP/1.1\r\nHost: bench\r\n\r\n",
			  &conn, &client) < 0) {
		perror("bench_signal: loopback request");
		return 1;
	}
	bench_sink += bench_deep(depth, n, &s);
	if (write(conn, resp, sizeof(resp) - 1) < 0)
		perror("bench_signal: write");
	close(conn);
	close(client);
	printf("ns_per_signal=%.1f signals=%ld depth=%d pid=%d\n",
	       s * 1e9 / (double)n, n, depth, (int)getpid());
	return 0;
}

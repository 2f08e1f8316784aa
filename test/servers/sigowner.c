/*
 * sigowner — an HTTP/1.1 test server that owns SIGPROF, as PHP
 * (max_execution_time) and programs that profile themselves do, and that
 * serves from a thread blocking every signal, as Apache's MPMs and many
 * thread pools do (test/integration/shim/test_signals.py).
 *
 *   sigowner PORT WORKER_PORT [--late]
 *
 * Two serving threads, one connection at a time each, keep-alive:
 *   - the main thread serves 127.0.0.1:PORT. Its mask is set with
 *     sigprocmask(SIG_SETMASK) to block SIGHUP, SIGUSR1 and SIGUSR2 only;
 *     it installs a SIGPROF handler of its own with sigaction (counting the
 *     signals) and arms setitimer(ITIMER_PROF) at 100 Hz, at start-up, or
 *     with --late only when a request asks for it (/arm);
 *   - a worker thread serves 127.0.0.1:WORKER_PORT, and starts by blocking
 *     every signal with pthread_sigmask(SIG_SETMASK, full set).
 * ITIMER_PROF's SIGPROF is sent to the process, so the main thread is the
 * one that takes it; the program's handler running on the worker would
 * mean the worker's block was lifted (counted as "on_worker"). The
 * handler (SA_SIGINFO) also counts the signals that are not its timer's
 * ("foreign": si_code other than SI_KERNEL), such as a profiler's.
 *
 * After every request each thread reads its mask back, with
 * pthread_sigmask(SIG_BLOCK, NULL, &cur) and sigprocmask(SIG_BLOCK, NULL,
 * &cur), and compares both with what it set (less what the kernel never
 * blocks, SIGKILL and SIGSTOP: glibc's sigfillset already leaves out its
 * own two internal signals); the main thread also reads SIGPROF's action
 * back with sigaction(SIGPROF, NULL, &old) once it has set it.
 *
 * Endpoints (GET):
 *   /burn?ms=N, /burn-NAME?ms=N
 *                 burn() N ms of the serving thread's CPU time (default 20)
 *   /arm          install the SIGPROF handler and arm ITIMER_PROF (once;
 *                 what --late waits for)
 *   /stats        JSON: "sigprof" (the program's handler's count so far),
 *                 "on_worker" (of those, run on the worker thread),
 *                 "foreign" (of those, not sent by ITIMER_PROF) and
 *                 "foreign_code" (the last such one's si_code),
 *                 "process_cpu_ms" (CLOCK_PROCESS_CPUTIME_ID, read with
 *                 the count), "armed", "armed_cpu_ms" and "armed_sigprof"
 *                 (the CPU time and count when the timer was armed), and
 *                 "threads": {"main": ..., "worker": ...}, each with
 *                 "requests", "checks" (read-backs done), "mask_ok" (every
 *                 read-back equal to what the thread set), "set" and
 *                 "read" (the blocked signals as a hex mask, bit n-1 for
 *                 signal n: expected and last read back), "handler_ok"
 *                 (main: SIGPROF's action read back is the program's own,
 *                 at every check since /arm), "cpu_ms" (the thread's CPU
 *                 time)
 * Anything else: 404. Prints "listening on PORT WORKER_PORT" when both
 * listen. Runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "io.h"

enum { MAIN, WORKER, NTHREADS };
static const char *const thread_name[NTHREADS] = {"main", "worker"};

static atomic_ulong sigprof_count, sigprof_on_worker, sigprof_foreign;
static atomic_int foreign_code;
static __thread int this_thread = -1;
static volatile unsigned long sink;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool armed;
static double armed_cpu_ms;
static unsigned long armed_sigprof;

static struct {
	clockid_t cpu_clock;
	sigset_t set;            /* what the thread set */
	uint64_t expected, read; /* blocked signals, bit n-1 for signal n */
	unsigned long requests, checks, mismatches, handler_bad;
	bool handler_checked;
} threads[NTHREADS];

/* ITIMER_PROF's signal comes from the kernel (si_code SI_KERNEL); one
 * with another code (a POSIX timer's SI_TIMER, a perf counter's POLL_*, a
 * kill's SI_USER) is not the program's own. */
static void on_sigprof(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	atomic_fetch_add_explicit(&sigprof_count, 1, memory_order_relaxed);
	if (si->si_code != SI_KERNEL) {
		atomic_fetch_add_explicit(&sigprof_foreign, 1,
					  memory_order_relaxed);
		atomic_store_explicit(&foreign_code, si->si_code,
				      memory_order_relaxed);
	}
	if (this_thread == WORKER)
		atomic_fetch_add_explicit(&sigprof_on_worker, 1,
					  memory_order_relaxed);
}

static double clock_ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) void burn(double ms)
{
	double end = clock_ms(CLOCK_THREAD_CPUTIME_ID) + ms;
	unsigned long x = sink;

	while (clock_ms(CLOCK_THREAD_CPUTIME_ID) < end)
		for (int i = 0; i < 20000; i++)
			x = x * 6364136223846793005ul + (unsigned long)i;
	sink = x;
}

static uint64_t mask_bits(const sigset_t *s)
{
	uint64_t m = 0;

	for (int sig = 1; sig <= 64; sig++)
		if (sigismember(s, sig) == 1)
			m |= 1ull << (sig - 1);
	return m;
}

/* The signals a thread that set `s` reads back as blocked: all but those
 * the kernel never blocks. */
static uint64_t expected_bits(const sigset_t *s)
{
	return mask_bits(s) & ~(1ull << (SIGKILL - 1)) &
	       ~(1ull << (SIGSTOP - 1));
}

static void arm(void)
{
	struct sigaction sa;
	struct itimerval it = {{0, 10000}, {0, 10000}};

	pthread_mutex_lock(&lock);
	if (!armed) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_sigaction = on_sigprof;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART | SA_SIGINFO;
		if (sigaction(SIGPROF, &sa, NULL) < 0 ||
		    setitimer(ITIMER_PROF, &it, NULL) < 0) {
			perror("sigowner: arm");
			exit(1);
		}
		armed_sigprof = atomic_load(&sigprof_count);
		armed_cpu_ms = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
		armed = true;
	}
	pthread_mutex_unlock(&lock);
}

/* The thread reads its mask back both ways (and the main thread SIGPROF's
 * action, once armed) and records what it found. */
static void check(int t)
{
	sigset_t a, b;
	struct sigaction old;
	uint64_t ra, rb;
	bool handler_bad = false, handler_checked = false;

	sigemptyset(&a);
	sigemptyset(&b);
	(void)pthread_sigmask(SIG_BLOCK, NULL, &a);
	(void)sigprocmask(SIG_BLOCK, NULL, &b);
	ra = mask_bits(&a);
	rb = mask_bits(&b);
	pthread_mutex_lock(&lock);
	if (t == MAIN && armed) {
		handler_checked = true;
		handler_bad = sigaction(SIGPROF, NULL, &old) < 0 ||
			      !(old.sa_flags & SA_SIGINFO) ||
			      old.sa_sigaction != on_sigprof ||
			      !(old.sa_flags & SA_RESTART);
	}
	threads[t].checks++;
	threads[t].read = ra != threads[t].expected ? ra : rb;
	if (ra != threads[t].expected || rb != threads[t].expected)
		threads[t].mismatches++;
	if (handler_checked)
		threads[t].handler_checked = true;
	if (handler_bad)
		threads[t].handler_bad++;
	pthread_mutex_unlock(&lock);
}

static void respond(int fd, int status, const char *body)
{
	char msg[4096];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 status, status == 200 ? "OK" : "Not Found",
			 strlen(body), body);

	(void)write_all(fd, msg, (size_t)n);
}

static void stats_respond(int fd)
{
	char body[3072];
	size_t n = 0;
	unsigned long count;
	double cpu;

	pthread_mutex_lock(&lock);
	/* The count and the CPU time read together. */
	count = atomic_load(&sigprof_count);
	cpu = clock_ms(CLOCK_PROCESS_CPUTIME_ID);
	n += (size_t)snprintf(
		body + n, sizeof(body) - n,
		"{\"sigprof\": %lu, \"on_worker\": %lu, \"foreign\": %lu, "
		"\"foreign_code\": %d, "
		"\"process_cpu_ms\": %.3f, \"armed\": %s, "
		"\"armed_cpu_ms\": %.3f, \"armed_sigprof\": %lu, "
		"\"threads\": {",
		count, atomic_load(&sigprof_on_worker),
		atomic_load(&sigprof_foreign), atomic_load(&foreign_code), cpu,
		armed ? "true" : "false", armed_cpu_ms, armed_sigprof);
	for (int t = 0; t < NTHREADS; t++)
		n += (size_t)snprintf(
			body + n, sizeof(body) - n,
			"%s\"%s\": {\"requests\": %lu, \"checks\": %lu, "
			"\"mask_ok\": %s, \"set\": \"%016llx\", "
			"\"read\": \"%016llx\", \"handler_ok\": %s, "
			"\"cpu_ms\": %.3f}",
			t ? ", " : "", thread_name[t], threads[t].requests,
			threads[t].checks,
			threads[t].checks && !threads[t].mismatches ? "true"
								    : "false",
			(unsigned long long)threads[t].expected,
			(unsigned long long)threads[t].read,
			t == MAIN ? (!threads[t].handler_checked ? "null"
				     : threads[t].handler_bad    ? "false"
								 : "true")
				  : "null",
			clock_ms(threads[t].cpu_clock));
	pthread_mutex_unlock(&lock);
	(void)snprintf(body + n, sizeof(body) - n, "}}\n");
	respond(fd, 200, body);
}

static void handle(int t, int fd, const char *target)
{
	const char *q = strchr(target, '?');
	size_t plen = q ? (size_t)(q - target) : strlen(target);
	double ms = 20;

	if (q && strstr(q, "ms="))
		ms = atof(strstr(q, "ms=") + 3);
	pthread_mutex_lock(&lock);
	threads[t].requests++;
	pthread_mutex_unlock(&lock);
	if (plen >= 5 && strncmp(target, "/burn", 5) == 0 &&
	    (plen == 5 || target[5] == '-')) {
		burn(ms);
		check(t);
		respond(fd, 200, "burnt\n");
	} else if (plen == 4 && strncmp(target, "/arm", 4) == 0) {
		arm();
		check(t);
		respond(fd, 200, "armed\n");
	} else if (plen == 6 && strncmp(target, "/stats", 6) == 0) {
		check(t);
		stats_respond(fd);
	} else {
		check(t);
		respond(fd, 404, "not found\n");
	}
}

/* Serve one keep-alive connection until the client closes it. */
static void serve_connection(int t, int fd)
{
	char buf[16384];
	size_t have = 0;

	for (;;) {
		char *end, method[16], target[2048];
		size_t hlen;
		ssize_t n;

		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			if (have == sizeof(buf))
				goto out;
			n = read(fd, buf + have, sizeof(buf) - have);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		hlen = (size_t)(end - buf) + 4;
		*end = '\0';
		if (sscanf(buf, "%15s %2047s", method, target) != 2)
			goto out;
		handle(t, fd, target);
		memmove(buf, buf + hlen, have - hlen);
		have -= hlen;
	}
out:
	close(fd);
}

static void serve(int t, int lfd)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("sigowner: accept");
			exit(1);
		}
		serve_connection(t, fd);
	}
}

/* Distinct frames for each thread's requests in the profile's stacks. */
__attribute__((noinline)) static void *worker_thread(void *arg)
{
	sigset_t full;

	this_thread = WORKER;
	sigfillset(&full);
	if (pthread_sigmask(SIG_SETMASK, &full, NULL) != 0) {
		fprintf(stderr, "sigowner: pthread_sigmask failed\n");
		exit(1);
	}
	pthread_mutex_lock(&lock);
	threads[WORKER].set = full;
	threads[WORKER].expected = expected_bits(&full);
	pthread_mutex_unlock(&lock);
	serve(WORKER, (int)(long)arg);
	return NULL;
}

__attribute__((noinline)) static void main_thread(int lfd)
{
	serve(MAIN, lfd);
}

static int listen_on(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((unsigned short)port);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 128) < 0) {
		perror("sigowner: listen");
		exit(1);
	}
	return fd;
}

int main(int argc, char **argv)
{
	sigset_t mine;
	pthread_t worker;
	int lfd, wfd;

	if (argc < 3) {
		fprintf(stderr, "usage: sigowner PORT WORKER_PORT [--late]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	this_thread = MAIN;
	sigemptyset(&mine);
	sigaddset(&mine, SIGHUP);
	sigaddset(&mine, SIGUSR1);
	sigaddset(&mine, SIGUSR2);
	if (sigprocmask(SIG_SETMASK, &mine, NULL) < 0) {
		perror("sigowner: sigprocmask");
		return 1;
	}
	threads[MAIN].set = mine;
	threads[MAIN].expected = expected_bits(&mine);
	if (!(argc > 3 && strcmp(argv[3], "--late") == 0))
		arm();
	lfd = listen_on(atoi(argv[1]));
	wfd = listen_on(atoi(argv[2]));
	pthread_getcpuclockid(pthread_self(), &threads[MAIN].cpu_clock);
	if (pthread_create(&worker, NULL, worker_thread, (void *)(long)wfd) !=
	    0) {
		fprintf(stderr, "sigowner: pthread_create failed\n");
		return 1;
	}
	pthread_getcpuclockid(worker, &threads[WORKER].cpu_clock);
	printf("listening on %s %s\n", argv[1], argv[2]);
	fflush(stdout);
	main_thread(lfd);
	return 0;
}

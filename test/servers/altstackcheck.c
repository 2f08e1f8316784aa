/*
 * altstackcheck — does the shim's SIGPROF handler stay within a program's
 * alternate signal stack? (test_safety.py runs it under the shim.)
 *
 *   altstackcheck [BYTES [SIGNALS]]
 *
 * A program's handler installed with SA_ONSTACK runs on the thread's
 * alternate signal stack, as CPython's handlers do on the one faulthandler
 * allocates (16,880 bytes on an AVX-512 machine: SIGSTKSZ plus
 * AT_MINSIGSTKSZ). A SIGPROF arriving meanwhile runs the shim's handler
 * on that same stack, below the program's frames. Here the alternate stack
 * is BYTES long (default 16880) with an inaccessible page right below it,
 * so a handler that overruns it faults at once instead of silently
 * overwriting what lies below (CPython's heap); the program's SIGUSR1
 * handler spins 3 ms on it, SIGNALS times (default 10), so that samples at
 * 1000 Hz land there. The stack is painted first; prints
 * "signals N deepest D" (D: bytes of the alternate stack ever used) and
 * exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAINT 0xa5

static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	struct timespec a, b;

	(void)sig;
	(void)clock_gettime(CLOCK_MONOTONIC, &a);
	do
		(void)clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) <
	       3000000L);
	handled++;
}

int main(int argc, char **argv)
{
	size_t size = argc > 1 ? strtoul(argv[1], NULL, 0) : 16880;
	int n = argc > 2 ? atoi(argv[2]) : 10;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t span = (size + page - 1) & ~(page - 1);
	unsigned char *map, *p;
	stack_t ss;
	struct sigaction sa;

	map = mmap(NULL, span + page, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED || mprotect(map, page, PROT_NONE) < 0) {
		perror("altstackcheck: mmap");
		return 2;
	}
	memset(map + page, PAINT, span);
	memset(&ss, 0, sizeof(ss));
	ss.ss_sp = map + page; /* the guard page is right below it */
	ss.ss_size = size;
	if (sigaltstack(&ss, NULL) < 0) {
		perror("altstackcheck: sigaltstack");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0) {
		perror("altstackcheck: sigaction");
		return 2;
	}
	for (int i = 0; i < n; i++)
		(void)raise(SIGUSR1);
	for (p = ss.ss_sp; p < (unsigned char *)ss.ss_sp + size && *p == PAINT;
	     p++)
		;
	printf("signals %d deepest %zu\n", (int)handled,
	       (size_t)((unsigned char *)ss.ss_sp + size - p));
	return 0;
}

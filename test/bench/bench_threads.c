/*
 * bench_threads — THREADS threads, each DEPTH frames deep, waking every
 * millisecond for SECONDS seconds: the load for the ring and collector
 * benchmark (scripts/bench/ring.sh). Under continuous wall-clock sampling
 * at 1 kHz each thread takes about 1000 samples a second, wherever it is.
 *
 *   bench_threads THREADS SECONDS DEPTH
 *
 * Prints "threads=N seconds=S depth=D" and exits 0.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double bench_end;
static int bench_depth;
static volatile unsigned long bench_sink;

static double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A little work and a 1 ms sleep, until the end. */
static void bench_loop(void)
{
	struct timespec ms = {0, 1000000};

	while (bench_now() < bench_end) {
		for (int i = 0; i < 2000; i++)
			bench_sink += (unsigned long)i * 7;
		nanosleep(&ms, NULL);
	}
}

/* Two alternating functions, so that the stack is not one repeated
 * return address. */
__attribute__((noinline)) static unsigned long bench_down_b(int depth);

__attribute__((noinline)) static unsigned long bench_down_a(int depth)
{
	if (depth <= 1) {
		bench_loop();
		return 1;
	}
	return bench_down_b(depth - 1) + (unsigned long)depth;
}

__attribute__((noinline)) static unsigned long bench_down_b(int depth)
{
	volatile char pad[40];

	pad[depth % 40] = 1;
	if (depth <= 1) {
		bench_loop();
		return pad[0];
	}
	return bench_down_a(depth - 1) * 3 + pad[depth % 40];
}

static void *bench_thread(void *arg)
{
	(void)arg;
	bench_sink += bench_down_a(bench_depth);
	return NULL;
}

int main(int argc, char **argv)
{
	int n;
	double seconds;
	pthread_t *th;

	if (argc != 4) {
		fprintf(stderr, "usage: bench_threads THREADS SECONDS DEPTH\n");
		return 2;
	}
	n = atoi(argv[1]);
	seconds = atof(argv[2]);
	bench_depth = atoi(argv[3]);
	if (n < 1 || n > 1024 || seconds <= 0 || bench_depth < 1 ||
	    bench_depth > 10000) {
		fprintf(stderr, "bench_threads: bad THREADS, SECONDS or DEPTH\n");
		return 2;
	}
	th = calloc((size_t)n, sizeof(*th));
	if (!th) {
		fprintf(stderr, "bench_threads: out of memory\n");
		return 1;
	}
	bench_end = bench_now() + seconds;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&th[i], NULL, bench_thread, NULL) != 0) {
			fprintf(stderr, "bench_threads: pthread_create failed\n");
			return 1;
		}
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	printf("threads=%d seconds=%g depth=%d\n", n, seconds, bench_depth);
	free(th);
	return 0;
}

/*
 * clock.h — the collector's one reading of CLOCK_MONOTONIC.
 *
 * Every loop, timeout and pacing decision in the collector measures time
 * on CLOCK_MONOTONIC, the clock the shim stamps its records with (see
 * shim/ring_format.h), so the two sides' times compare directly.
 */
#ifndef PROFSHIM_CLOCK_H
#define PROFSHIM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Nanoseconds on CLOCK_MONOTONIC. */
static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Seconds on CLOCK_MONOTONIC, for pacing a display. */
static inline double clock_now_s(void)
{
	return (double)clock_now_ns() / 1e9;
}

#endif

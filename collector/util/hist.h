/*
 * hist.h — latency histogram with at most 1% relative error.
 *
 * Log-linear buckets: values below 64 ns are exact; above, every power of
 * two is split into 64 equal buckets, so a bucket is at most 1/64 of its
 * value wide and its midpoint is within 1/128 of any value in it. Values
 * from 0 to about 2^41 ns (36 minutes) are kept; larger ones fall into the
 * last bucket. Percentiles are clamped to the exact min and max.
 */
#ifndef PROFSHIM_HIST_H
#define PROFSHIM_HIST_H

#include <stdint.h>

#define HIST_SUB 64
#define HIST_MAX_EXP 41
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_EXP - 6) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t buckets[HIST_BUCKETS];
};

/* Reset to empty. */
void hist_init(struct hist *h);

/* Add one value (nanoseconds). */
void hist_add(struct hist *h, uint64_t v);

/* Value at quantile q (0..1), nearest rank; 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Index of the bucket holding v, and the [lo, hi] range of bucket i. */
unsigned hist_index(uint64_t v);
void hist_bounds(unsigned i, uint64_t *ret_lo, uint64_t *ret_hi);

#endif /* PROFSHIM_HIST_H */

/*
 * hist.c — log-linear latency histogram (see hist.h).
 */
#include "util/hist.h"

#include <math.h>
#include <string.h>

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

unsigned hist_index(uint64_t v)
{
	unsigned e;

	if (v < HIST_SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);
	if (e >= HIST_MAX_EXP)
		return HIST_BUCKETS - 1;
	return HIST_SUB + (e - 6) * HIST_SUB +
	       (unsigned)((v >> (e - 6)) & (HIST_SUB - 1));
}

void hist_bounds(unsigned i, uint64_t *ret_lo, uint64_t *ret_hi)
{
	unsigned e, sub;

	if (i < HIST_SUB) {
		*ret_lo = *ret_hi = i;
		return;
	}
	e = (i - HIST_SUB) / HIST_SUB + 6;
	sub = (i - HIST_SUB) % HIST_SUB;
	*ret_lo = ((uint64_t)HIST_SUB + sub) << (e - 6);
	*ret_hi = *ret_lo + ((uint64_t)1 << (e - 6)) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->count++;
	h->buckets[hist_index(v)]++;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0, lo, hi, v;

	if (h->count == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)ceil(q * (double)h->count);
	if (rank == 0)
		rank = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen < rank)
			continue;
		hist_bounds(i, &lo, &hi);
		v = lo + (hi - lo) / 2;
		if (v < h->min)
			v = h->min;
		if (v > h->max)
			v = h->max;
		return v;
	}
	return h->max;
}

/*
 * test_hist.c — unit tests for the latency histogram (hist.h): the 1%
 * relative error promise against exact nearest-rank quantiles, bucket
 * geometry, clamping to min and max, empty and single-value histograms.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/hist.h"


/* Uniform in [0, 1). */
static double rng_unit(void)
{
	return (double)(rng_next() >> 11) * 0x1.0p-53;
}

/* Log-uniform integer nanoseconds in [1 ns, 1000 s]. */
static uint64_t rng_latency(void)
{
	double x = exp(rng_unit() * log(1e12));
	uint64_t v = (uint64_t)llround(x);

	return v < 1 ? 1 : v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static const struct {
	double q;
	uint64_t num; /* q = num / 1000, for an exact integer rank */
} quantiles[] = {
	{0.5, 500}, {0.9, 900}, {0.95, 950}, {0.99, 990}, {0.999, 999},
};

/* Exact nearest-rank quantile num/1000 of n sorted values. */
static uint64_t exact_quantile(const uint64_t *sorted, size_t n, uint64_t num)
{
	uint64_t rank = (num * n + 999) / 1000; /* ceil(q * n) */

	if (rank == 0)
		rank = 1;
	return sorted[rank - 1];
}

/* Checks every quantile of vals[0..n) (sorted in place) against exact. */
static int check_quantiles(uint64_t *vals, size_t n, const char *what)
{
	struct hist *h = malloc(sizeof(*h));
	int bad = 0;

	hist_init(h);
	for (size_t i = 0; i < n; i++)
		hist_add(h, vals[i]);
	qsort(vals, n, sizeof(*vals), cmp_u64);
	CHECK(h->count == n);
	CHECK(h->min == vals[0]);
	CHECK(h->max == vals[n - 1]);
	for (size_t k = 0; k < sizeof(quantiles) / sizeof(quantiles[0]); k++) {
		uint64_t exact = exact_quantile(vals, n, quantiles[k].num);
		uint64_t got = hist_quantile(h, quantiles[k].q);
		double err = fabs((double)got - (double)exact) / (double)exact;

		if (err > 0.01 || (exact < 64 && got != exact)) {
			if (bad++ < 5)
				printf("# %s n=%zu q=%g: exact %llu, got %llu "
				       "(error %.4f%%)\n",
				       what, n, quantiles[k].q,
				       (unsigned long long)exact,
				       (unsigned long long)got, err * 100);
		}
		CHECK(got >= vals[0] && got <= vals[n - 1]);
	}
	free(h);
	CHECK_EQ(bad, 0);
	return bad;
}

static void test_quantiles_log_uniform(void)
{
	const size_t n = 200000;
	uint64_t *vals = malloc(n * sizeof(*vals));

	rng_state = 20240607;
	for (size_t i = 0; i < n; i++)
		vals[i] = rng_latency();
	check_quantiles(vals, n, "log-uniform");
	/* The sample really spans the range. */
	CHECK(vals[0] < 10);
	CHECK(vals[n - 1] > 500000000000ull);
	free(vals);
}

/* Small and odd counts, where the nearest rank matters most. */
static void test_quantiles_small_counts(void)
{
	uint64_t vals[2500];
	int bad = 0;

	rng_state = 7;
	for (size_t n = 1; n <= 2500; n += (n < 300 ? 1 : 97)) {
		for (size_t i = 0; i < n; i++)
			vals[i] = rng_latency();
		bad += check_quantiles(vals, n, "small") != 0;
		if (bad > 3)
			break;
	}
	CHECK_EQ(bad, 0);
}

/* Other shapes: narrow clusters, duplicates, values at bucket edges. */
static void test_quantiles_shapes(void)
{
	const size_t n = 50000;
	uint64_t *vals = malloc(n * sizeof(*vals));

	/* All within one or two buckets around 1 ms. */
	rng_state = 11;
	for (size_t i = 0; i < n; i++)
		vals[i] = 1000000 + rng_next() % 40000;
	check_quantiles(vals, n, "cluster");

	/* Heavy duplicates. */
	for (size_t i = 0; i < n; i++)
		vals[i] = (i % 3 == 0) ? 12345 : (i % 3 == 1) ? 999999 : 5;
	check_quantiles(vals, n, "duplicates");

	/* Powers of two and their neighbours: bucket edges. */
	for (size_t i = 0; i < n; i++) {
		unsigned e = (unsigned)(rng_next() % 40);
		int d = (int)(rng_next() % 3) - 1;
		uint64_t v = (1ull << e) + (uint64_t)(int64_t)d;

		vals[i] = v ? v : 1;
	}
	check_quantiles(vals, n, "edges");

	/* Exact region only (below 64 ns). */
	for (size_t i = 0; i < n; i++)
		vals[i] = rng_next() % 64;
	check_quantiles(vals, n, "small values");

	/* A long tail of slow requests. */
	rng_state = 12;
	for (size_t i = 0; i < n; i++)
		vals[i] = i % 100 ? 50000 + rng_next() % 1000
				  : rng_latency() * 1000 % 1000000000000ull + 1;
	check_quantiles(vals, n, "tail");
	free(vals);
}

static void test_index_bounds_roundtrip(void)
{
	uint64_t prev_hi = 0;
	int bad = 0;

	/* Buckets are contiguous, ordered, and narrow. */
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo, hi;

		hist_bounds(i, &lo, &hi);
		if (lo > hi || (i > 0 && lo != prev_hi + 1) ||
		    hist_index(lo) != i || hist_index(hi) != i ||
		    (i < 64 && (lo != i || hi != i)) ||
		    (i >= 64 && hi - lo + 1 > lo / 64)) {
			if (bad++ < 5)
				printf("# bucket %u: [%llu, %llu]\n", i,
				       (unsigned long long)lo,
				       (unsigned long long)hi);
		}
		/* The midpoint is within 1/128 of every value in it. */
		if (i >= 64) {
			uint64_t mid = lo + (hi - lo) / 2;

			CHECK((double)(mid - lo) <= (double)lo / 128);
			CHECK((double)(hi - mid) <= (double)hi / 128);
		}
		prev_hi = hi;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(HIST_BUCKETS, 64 + (41 - 6) * 64);
	/* The last bucket ends at 2^41 - 1; larger values also go there. */
	CHECK(prev_hi == (1ull << HIST_MAX_EXP) - 1);
	CHECK_EQ(hist_index(1ull << HIST_MAX_EXP), HIST_BUCKETS - 1);
	CHECK_EQ(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	CHECK_EQ(hist_index(0), 0);
	CHECK_EQ(hist_index(63), 63);
	CHECK_EQ(hist_index(64), 64);
	CHECK_EQ(hist_index(127), 127);
	CHECK_EQ(hist_index(128), 128);
	CHECK_EQ(hist_index(129), 128);

	/* Random values of every magnitude fall within their bucket. */
	rng_state = 99;
	bad = 0;
	for (int k = 0; k < 1000000; k++) {
		unsigned e = (unsigned)(rng_next() % HIST_MAX_EXP);
		uint64_t v = rng_next() & ((2ull << e) - 1);
		unsigned i = hist_index(v);
		uint64_t lo, hi;

		if (i >= HIST_BUCKETS) {
			bad++;
			continue;
		}
		hist_bounds(i, &lo, &hi);
		if (v < lo || v > hi || (v >= 64 && hi - lo + 1 > lo / 64)) {
			if (bad++ < 5)
				printf("# value %llu in bucket %u [%llu, %llu]\n",
				       (unsigned long long)v, i,
				       (unsigned long long)lo,
				       (unsigned long long)hi);
		}
	}
	CHECK_EQ(bad, 0);
}

static void test_clamping(void)
{
	struct hist h;

	/* Both values in bucket [1000, 1007], midpoint 1003 < min. */
	CHECK_EQ(hist_index(1006), hist_index(1000));
	hist_init(&h);
	hist_add(&h, 1006);
	hist_add(&h, 1007);
	CHECK(hist_quantile(&h, 0.5) == 1006);
	CHECK(hist_quantile(&h, 0.0) == 1006);
	CHECK(hist_quantile(&h, -1.0) == 1006);
	CHECK(hist_quantile(&h, 1.0) == 1007);
	CHECK(hist_quantile(&h, 2.0) == 1007);
	CHECK(hist_quantile(&h, 0.999) == 1007 || hist_quantile(&h, 0.999) == 1006);

	/* Midpoint above max. */
	hist_init(&h);
	hist_add(&h, 1000);
	hist_add(&h, 1001);
	CHECK(hist_quantile(&h, 0.5) == 1000 || hist_quantile(&h, 0.5) == 1001);
	CHECK(hist_quantile(&h, 0.99) == 1001);

	/*
	 * Beyond the last bucket (about 36 minutes) values are only kept as
	 * "large": quantiles stay within the exact min and max, and q = 0
	 * and 1 are exact.
	 */
	hist_init(&h);
	hist_add(&h, 5000000000000ull);
	hist_add(&h, 9000000000000ull);
	CHECK(hist_quantile(&h, 0.99) >= 5000000000000ull);
	CHECK(hist_quantile(&h, 0.99) <= 9000000000000ull);
	CHECK(hist_quantile(&h, 0.5) >= 5000000000000ull);
	CHECK(hist_quantile(&h, 0.5) <= 9000000000000ull);
	CHECK(hist_quantile(&h, 0) == 5000000000000ull);
	CHECK(hist_quantile(&h, 1) == 9000000000000ull);

	/* min/max tracking in any insertion order, including 0. */
	hist_init(&h);
	hist_add(&h, 500);
	hist_add(&h, 0);
	hist_add(&h, 70000);
	hist_add(&h, 3);
	CHECK(h.min == 0);
	CHECK(h.max == 70000);
	CHECK(h.count == 4);
	CHECK(hist_quantile(&h, 0.25) == 0);
	CHECK(hist_quantile(&h, 0.5) == 3);
	CHECK(hist_quantile(&h, 1) == 70000);
	CHECK(hist_quantile(&h, 0.999) == 70000);
}

static void test_empty(void)
{
	struct hist h;

	memset(&h, 0x5a, sizeof(h));
	hist_init(&h);
	CHECK(h.count == 0);
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		CHECK(h.buckets[i] == 0);
	CHECK(hist_quantile(&h, 0) == 0);
	CHECK(hist_quantile(&h, 0.5) == 0);
	CHECK(hist_quantile(&h, 0.999) == 0);
	CHECK(hist_quantile(&h, 1) == 0);
}

static void test_single_value(void)
{
	static const uint64_t vals[] = {
		0, 1, 63, 64, 65, 127, 128, 1000, 1003, 123456789,
		1000000007, 1000000000000ull, (1ull << 41) - 1, 1ull << 41,
		(1ull << 41) + 12345, UINT64_MAX,
	};

	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		struct hist h;

		hist_init(&h);
		hist_add(&h, vals[i]);
		CHECK(h.count == 1);
		for (size_t k = 0; k < 5; k++)
			CHECK(hist_quantile(&h, quantiles[k].q) == vals[i]);
		CHECK(hist_quantile(&h, 0) == vals[i]);
		CHECK(hist_quantile(&h, 1) == vals[i]);
		CHECK(hist_quantile(&h, 1e-12) == vals[i]);
	}
}

int main(void)
{
	RUN(test_quantiles_log_uniform);
	RUN(test_quantiles_small_counts);
	RUN(test_quantiles_shapes);
	RUN(test_index_bounds_roundtrip);
	RUN(test_clamping);
	RUN(test_empty);
	RUN(test_single_value);
	return check_done();
}

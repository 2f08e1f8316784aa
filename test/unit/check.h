/*
 * check.h — the unit tests' small runner: TAP output, one line per check
 * that fails with both values printed, exit status 1 when any check failed.
 *
 *   static void test_something(void) { CHECK_EQ(1 + 1, 2); }
 *   int main(void) { RUN(test_something); return check_done(); }
 */
#ifndef PROFSHIM_CHECK_H
#define PROFSHIM_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_tests;
static int check_test_failed;

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			printf("# %s:%d: CHECK(%s) failed\n", __FILE__,      \
			       __LINE__, #cond);                              \
			check_test_failed = 1;                                \
		}                                                             \
	} while (0)

#define CHECK_EQ(a, b)                                                        \
	do {                                                                  \
		long long check_a_ = (long long)(a);                          \
		long long check_b_ = (long long)(b);                          \
		if (check_a_ != check_b_) {                                   \
			printf("# %s:%d: %s == %s failed: %lld != %lld\n",   \
			       __FILE__, __LINE__, #a, #b, check_a_,          \
			       check_b_);                                     \
			check_test_failed = 1;                                \
		}                                                             \
	} while (0)

#define CHECK_STR(a, b)                                                       \
	do {                                                                  \
		const char *check_a_ = (a);                                   \
		const char *check_b_ = (b);                                   \
		if (strcmp(check_a_, check_b_) != 0) {                        \
			printf("# %s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
			       __FILE__, __LINE__, #a, #b, check_a_,          \
			       check_b_);                                     \
			check_test_failed = 1;                                \
		}                                                             \
	} while (0)

#define RUN(fn)                                                               \
	do {                                                                  \
		check_test_failed = 0;                                        \
		fn();                                                         \
		check_tests++;                                                \
		printf("%s %d - %s\n", check_test_failed ? "not ok" : "ok",  \
		       check_tests, #fn);                                     \
		check_failures += check_test_failed;                          \
	} while (0)

/* Tests' random numbers: splitmix64 from a fixed seed (set rng_state to
 * choose another), the same sequence on every run. */
static uint64_t rng_state;

static inline uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline int check_done(void)
{
	printf("1..%d\n", check_tests);
	return check_failures ? 1 : 0;
}

#endif /* PROFSHIM_CHECK_H */

/*
 * fuzz_assert.h — the invariant check of profshim's fuzz targets.
 *
 * ASSERT stops the fuzzer with a crash that names the broken invariant, so
 * libFuzzer saves the input and scripts/fuzz.sh reports it.
 */
#ifndef PROFSHIM_FUZZ_ASSERT_H
#define PROFSHIM_FUZZ_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define ASSERT(cond)                                                          \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: invariant broken: %s\n",      \
				__FILE__, __LINE__, #cond);                   \
			abort();                                              \
		}                                                             \
	} while (0)

#endif /* PROFSHIM_FUZZ_ASSERT_H */

/*
 * env.h — the server's profiling settings, read once from its environment.
 *
 * Every variable has a safe default. A value that cannot be parsed prints one
 * line on stderr naming the variable, the value (its first 64 bytes, bytes
 * outside printable ASCII as \xNN, '"' and '\\' escaped with a backslash)
 * and the default used; the server never stops because of a bad setting.
 *
 * The parse functions are pure (no I/O, no allocation) so that unit tests and
 * fuzz targets can call them directly. env_load() is called once from the
 * shim's constructor, never from a hook or the signal handler.
 */
#ifndef PROFSHIM_ENV_H
#define PROFSHIM_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct env_config {
	bool enabled;                 /* ENABLE_PROFILING */
	double sample_rate;           /* PROFILING_SAMPLE_RATE, 0.0..1.0 */
	unsigned max_depth;           /* PROFILING_MAX_DEPTH, 1..RING_MAX_FRAMES */
	unsigned hz;                  /* PROFILING_HZ, 1..10000 */
	unsigned clock;               /* PROFILING_CLOCK: enum ring_clock */
	unsigned mode;                /* PROFILING_MODE: enum ring_mode */
	unsigned cpu_engine;          /* PROFILING_CPU_ENGINE: cpuclock.h */
	bool manual;                  /* PROFILING_MANUAL */
	unsigned manual_hz;           /* PROFILING_MANUAL_HZ, 1..10000 */
	unsigned manual_max_per_sec;  /* PROFILING_MANUAL_MAX_PER_SEC */
	unsigned max_endpoints;       /* PROFILING_MAX_ENDPOINTS, 1..65536 */
	uint64_t ring_size;           /* PROFILING_RING_SIZE, bytes, power of 2 */
};

/* Fill *cfg with the defaults of doc/design.md (profiling off). */
void env_defaults(struct env_config *cfg);

/*
 * Parse a boolean: true/1/yes/on and false/0/no/off, any case, surrounding
 * blanks ignored. Returns 0 and sets *ret, or -EINVAL.
 */
int env_parse_bool(const char *s, bool *ret);

/* Parse a decimal fraction in [min, max]. Returns 0 or -EINVAL/-ERANGE. */
int env_parse_double(const char *s, double min, double max, double *ret);

/* Parse a decimal integer in [min, max]. Returns 0 or -EINVAL/-ERANGE. */
int env_parse_uint(const char *s, unsigned long min, unsigned long max,
		   unsigned long *ret);

/*
 * Parse a byte size: a decimal number with an optional K, M or G suffix
 * (powers of 1024, any case, optional trailing B/iB). Returns 0 or
 * -EINVAL/-ERANGE when outside [min, max].
 */
int env_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret);

/*
 * Read every PROFILING_* variable and ENABLE_PROFILING through `get` (getenv
 * in the shim, a table in tests) into *cfg, starting from the defaults. For
 * each bad value, calls `warn` once with a complete one-line message (no
 * newline). Never fails.
 */
void env_load(struct env_config *cfg, char *(*get)(const char *name),
	      void (*warn)(const char *line));

#endif /* PROFSHIM_ENV_H */

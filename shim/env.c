/*
 * env.c — parsing of the shim's environment variables (see env.h).
 */
#include "env.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ring_format.h"

void env_defaults(struct env_config *cfg)
{
	*cfg = (struct env_config){
		.enabled = false,
		.sample_rate = 0.1,
		.max_depth = 50,
		.hz = 99,
		.clock = RING_CLOCK_CPU,
		.mode = RING_MODE_REQUEST,
		.manual = true,
		.manual_hz = 997,
		.manual_max_per_sec = 10,
		.max_endpoints = 1000,
		.ring_size = 4u << 20,
	};
}

/* Copy s without surrounding blanks into buf; -EINVAL when empty or long. */
static int env_trim(const char *s, char *buf, size_t bufsz)
{
	size_t len;

	if (!s)
		return -EINVAL;
	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len >= bufsz)
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return 0;
}

int env_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	char buf[16];

	if (env_trim(s, buf, sizeof(buf)) < 0)
		return -EINVAL;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(buf, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(buf, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

int env_parse_double(const char *s, double min, double max, double *ret)
{
	char buf[64], *end;
	double v;

	if (env_trim(s, buf, sizeof(buf)) < 0)
		return -EINVAL;
	/* strtod() sets ERANGE on underflow too: a number too small for a
	 * double is still a number, read as 0 or the nearest tiny value.
	 * Overflow gives infinity, which is rejected. */
	v = strtod(buf, &end);
	if (*end != '\0' || !isfinite(v))
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int env_parse_uint(const char *s, unsigned long min, unsigned long max,
		   unsigned long *ret)
{
	char buf[32], *end;
	unsigned long v;

	if (env_trim(s, buf, sizeof(buf)) < 0 || !isdigit((unsigned char)buf[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno != 0 || v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int env_parse_size(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	char buf[32], *end;
	unsigned long long v;
	unsigned shift = 0;

	if (env_trim(s, buf, sizeof(buf)) < 0 || !isdigit((unsigned char)buf[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno != 0)
		return -ERANGE;
	switch (tolower((unsigned char)*end)) {
	case 'k': shift = 10; end++; break;
	case 'm': shift = 20; end++; break;
	case 'g': shift = 30; end++; break;
	default: break;
	}
	if (shift && tolower((unsigned char)*end) == 'i')
		end++;
	if (tolower((unsigned char)*end) == 'b')
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	v <<= shift;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/*
 * Copy the first ENV_SHOWN_MAX bytes of value into out for a warning, each
 * byte outside printable ASCII as \xNN and '"' and '\\' preceded by '\\', so
 * that a value holding line breaks or terminal escapes still makes one plain
 * line. out holds at least 4 * ENV_SHOWN_MAX + 1 bytes.
 */
#define ENV_SHOWN_MAX 64

static void env_shown(const char *value, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (size_t i = 0; value[i] && i < ENV_SHOWN_MAX; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c > 0x7e) {
			out[n++] = '\\';
			out[n++] = 'x';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else {
			out[n++] = (char)c;
		}
	}
	out[n] = '\0';
}

static void env_warn(void (*warn)(const char *), const char *name,
		     const char *value, const char *what, const char *dflt)
{
	char shown[4 * ENV_SHOWN_MAX + 1], line[512];

	env_shown(value, shown);
	(void)snprintf(line, sizeof(line),
		       "profshim: %s=\"%s\" is not %s; using %s", name, shown,
		       what, dflt);
	warn(line);
}

static void env_get_uint(char *(*get)(const char *),
			 void (*warn)(const char *), const char *name,
			 unsigned long min, unsigned long max, unsigned *val)
{
	const char *s = get(name);
	unsigned long v;
	char what[96], dflt[32];

	if (!s)
		return;
	if (env_parse_uint(s, min, max, &v) == 0) {
		*val = (unsigned)v;
		return;
	}
	(void)snprintf(what, sizeof(what), "a whole number from %lu to %lu",
		       min, max);
	(void)snprintf(dflt, sizeof(dflt), "%u", *val);
	env_warn(warn, name, s, what, dflt);
}

static void env_get_bool(char *(*get)(const char *),
			 void (*warn)(const char *), const char *name,
			 bool *val)
{
	const char *s = get(name);

	if (!s)
		return;
	if (env_parse_bool(s, val) < 0)
		env_warn(warn, name, s, "one of true/1/yes/on or false/0/no/off",
			 *val ? "on" : "off");
}

/* One of the NULL-terminated `names`, any case: its index into *val. */
static void env_get_choice(char *(*get)(const char *),
			   void (*warn)(const char *), const char *name,
			   const char *const *names, unsigned *val)
{
	const char *s = get(name);
	char buf[16], what[64];
	size_t len = 0;

	if (!s)
		return;
	if (env_trim(s, buf, sizeof(buf)) == 0)
		for (unsigned i = 0; names[i]; i++)
			if (strcasecmp(buf, names[i]) == 0) {
				*val = i;
				return;
			}
	what[0] = '\0';
	for (unsigned i = 0; names[i]; i++)
		len += (size_t)snprintf(what + len, sizeof(what) - len, "%s%s",
					i == 0	       ? ""
					: names[i + 1] ? ", "
						       : " or ",
					names[i]);
	env_warn(warn, name, s, what, names[*val]);
}

void env_load(struct env_config *cfg, char *(*get)(const char *),
	      void (*warn)(const char *))
{
	const char *s;
	char dflt[32];

	env_defaults(cfg);
	env_get_bool(get, warn, "ENABLE_PROFILING", &cfg->enabled);

	s = get("PROFILING_SAMPLE_RATE");
	if (s && env_parse_double(s, 0.0, 1.0, &cfg->sample_rate) < 0) {
		(void)snprintf(dflt, sizeof(dflt), "%g", cfg->sample_rate);
		env_warn(warn, "PROFILING_SAMPLE_RATE", s,
			 "a number from 0.0 to 1.0", dflt);
	}
	env_get_uint(get, warn, "PROFILING_MAX_DEPTH", 1, RING_MAX_FRAMES,
		     &cfg->max_depth);
	env_get_uint(get, warn, "PROFILING_HZ", 1, 10000, &cfg->hz);
	env_get_choice(get, warn, "PROFILING_CLOCK",
		       (const char *const[]){"cpu", "wall", NULL}, &cfg->clock);
	env_get_choice(get, warn, "PROFILING_MODE",
		       (const char *const[]){"request", "continuous", NULL},
		       &cfg->mode);
	env_get_choice(get, warn, "PROFILING_CPU_ENGINE",
		       (const char *const[]){"auto", "perf", "timer", NULL},
		       &cfg->cpu_engine);
	env_get_bool(get, warn, "PROFILING_MANUAL", &cfg->manual);
	env_get_uint(get, warn, "PROFILING_MANUAL_HZ", 1, 10000,
		     &cfg->manual_hz);
	env_get_uint(get, warn, "PROFILING_MANUAL_MAX_PER_SEC", 0, 1000000,
		     &cfg->manual_max_per_sec);
	env_get_uint(get, warn, "PROFILING_MAX_ENDPOINTS", 1, 65536,
		     &cfg->max_endpoints);

	s = get("PROFILING_RING_SIZE");
	if (s) {
		uint64_t v;

		if (env_parse_size(s, 64u << 10, 1ull << 30, &v) == 0) {
			/* The data area is a power of two: round down. */
			uint64_t p = 1;

			while (p * 2 <= v)
				p *= 2;
			cfg->ring_size = p;
		} else {
			env_warn(warn, "PROFILING_RING_SIZE", s,
				 "a size from 64K to 1G (e.g. 4M)", "4M");
		}
	}
}

/*
 * fuzz_env.c — libFuzzer target for the shim's environment parsing (env.h).
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=undefined -D_GNU_SOURCE -Ishim \
 *         shim/env.c test/fuzz/fuzz_env.c -lm -o fuzz_env
 *   ./fuzz_env test/fuzz/corpus_env
 *
 * Input: an environment, as entries separated by NUL bytes (an environment
 * value can hold any byte but NUL, line breaks included). An entry whose
 * first byte is 0x80 or above names a known variable by number
 * ((byte & 0x7f) % 11, in the order of env.h) and the rest of the entry is
 * its value; any other entry is NAME=VALUE, split at its first '=' (an entry
 * without '=' is ignored, as in a real environ). NAME may be anything: a
 * known name, a near miss, or junk. The getter given to env_load() answers
 * like getenv(): the first entry with that exact name wins.
 *
 * Checked invariants:
 *   - env_load() asks for every known variable exactly once and for nothing
 *     else;
 *   - every setting ends inside its documented range (README, env.h):
 *     sample rate 0.0..1.0 and finite, max depth 1..RING_MAX_FRAMES, hz and
 *     manual hz 1..10000, clock and mode 0 or 1, manual max per second
 *     0..1000000, max endpoints 1..65536, ring size a power of two in
 *     64K..1G;
 *   - a variable that is absent keeps its default and gets no warning;
 *   - a present variable either gets the value an independent model of the
 *     documented syntax gives it (booleans, choices, whole numbers, sizes
 *     with K/M/G[i][B] rounded down to a power of two, decimal fractions as
 *     strtod() reads them), and no warning, or — exactly when the model
 *     rejects the value — its default and exactly one warning;
 *   - a warning is one line (no control character at all), at most 511
 *     bytes, reads `profshim: NAME="VALUE" is not ...; using DEFAULT` with
 *     the value shown as env.h says (first 64 bytes, bytes outside
 *     printable ASCII as \xNN, quote and backslash escaped).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "env.h"
#include "ring_format.h"
#include "fuzz_assert.h"


enum kind { K_BOOL, K_FRAC, K_UINT, K_CHOICE, K_SIZE };

/* The known variables, with their documented syntax (setting() knows
 * each one's place). */
static const struct var {
	const char *name;
	enum kind kind;
	unsigned long min, max;  /* K_UINT */
	const char *a, *b;       /* K_CHOICE: values 0 and 1 */
	const char *dflt;        /* the default as the warning names it */
	const char *c;           /* K_CHOICE: value 2, if any */
} vars[] = {
	{"ENABLE_PROFILING", K_BOOL, 0, 0, NULL, NULL, "off"},
	{"PROFILING_SAMPLE_RATE", K_FRAC, 0, 0, NULL, NULL, "0.1"},
	{"PROFILING_MAX_DEPTH", K_UINT, 1, RING_MAX_FRAMES, NULL, NULL, "50"},
	{"PROFILING_HZ", K_UINT, 1, 10000, NULL, NULL, "99"},
	{"PROFILING_CLOCK", K_CHOICE, 0, 0, "cpu", "wall", "cpu"},
	{"PROFILING_MODE", K_CHOICE, 0, 0, "request", "continuous", "request"},
	{"PROFILING_MANUAL", K_BOOL, 0, 0, NULL, NULL, "on"},
	{"PROFILING_MANUAL_HZ", K_UINT, 1, 10000, NULL, NULL, "997"},
	{"PROFILING_MANUAL_MAX_PER_SEC", K_UINT, 0, 1000000, NULL, NULL, "10"},
	{"PROFILING_MAX_ENDPOINTS", K_UINT, 1, 65536, NULL, NULL, "1000"},
	{"PROFILING_RING_SIZE", K_SIZE, 0, 0, NULL, NULL, "4M"},
	{"PROFILING_CPU_ENGINE", K_CHOICE, 0, 0, "auto", "perf", "auto", "timer"},
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

#define MAX_ENTRIES 64
#define MAX_WARN 32

struct entry {
	char *name;
	char *value;
};

static struct entry entries[MAX_ENTRIES];
static size_t nentries;
static unsigned asked[NVARS];
static char warns[MAX_WARN][512];
static size_t nwarns;

static int var_index(const char *name)
{
	for (size_t i = 0; i < NVARS; i++)
		if (strcmp(vars[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* getenv() over the decoded entries; also counts what is asked. */
static char *fake_get(const char *name)
{
	int v = var_index(name);

	ASSERT(v >= 0);
	asked[v]++;
	for (size_t i = 0; i < nentries; i++)
		if (strcmp(entries[i].name, name) == 0)
			return entries[i].value;
	return NULL;
}

static void fake_warn(const char *line)
{
	size_t len = strlen(line);

	ASSERT(len < 512);
	ASSERT(nwarns < MAX_WARN);
	memcpy(warns[nwarns++], line, len + 1);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' ||
	       c == '\r';
}

/* The value without surrounding blanks, in buf; false when empty or when it
 * does not fit in bufsz - 1 bytes. */
static bool trim(const char *s, char *buf, size_t bufsz)
{
	size_t len;

	while (is_blank(*s))
		s++;
	len = strlen(s);
	while (len > 0 && is_blank(s[len - 1]))
		len--;
	if (len == 0 || len >= bufsz)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return true;
}

/* A decimal number of digits only (saturating); false otherwise. */
static bool digits(const char *s, const char **end, uint64_t *ret)
{
	uint64_t v = 0;
	const char *p = s;

	for (; *p >= '0' && *p <= '9'; p++)
		v = v > (UINT64_MAX - 9) / 10 ? UINT64_MAX : v * 10 + (*p - '0');
	*end = p;
	*ret = v;
	return p != s;
}

/*
 * The model: what a variable of this kind makes of the value, as the
 * documentation states it. Returns false when the value must be rejected;
 * else true with the setting in *u (integers, booleans, choices) or *d.
 * Length bounds: a boolean or a choice is at most 15 bytes, a number 31,
 * a fraction 63 (no valid value is longer, leading zeros aside).
 */
static bool model(const struct var *v, const char *s, uint64_t *u, double *d)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	char buf[64], *fend;
	const char *end;
	uint64_t n;

	switch (v->kind) {
	case K_BOOL:
		if (!trim(s, buf, 16))
			return false;
		for (int i = 0; i < 4; i++) {
			if (strcasecmp(buf, yes[i]) == 0)
				return *u = 1, true;
			if (strcasecmp(buf, no[i]) == 0)
				return *u = 0, true;
		}
		return false;
	case K_CHOICE:
		if (!trim(s, buf, 16))
			return false;
		if (strcasecmp(buf, v->a) == 0)
			return *u = 0, true;
		if (strcasecmp(buf, v->b) == 0)
			return *u = 1, true;
		if (v->c && strcasecmp(buf, v->c) == 0)
			return *u = 2, true;
		return false;
	case K_UINT:
		if (!trim(s, buf, 32) || !digits(buf, &end, &n) || *end)
			return false;
		if (n < v->min || n > v->max)
			return false;
		*u = n;
		return true;
	case K_SIZE: {
		unsigned shift = 0;
		uint64_t p = 1;

		if (!trim(s, buf, 32) || !digits(buf, &end, &n))
			return false;
		switch (*end | 0x20) {
		case 'k': shift = 10; end++; break;
		case 'm': shift = 20; end++; break;
		case 'g': shift = 30; end++; break;
		default: break;
		}
		if (shift && (*end | 0x20) == 'i')
			end++;
		if ((*end | 0x20) == 'b')
			end++;
		if (*end)
			return false;
		if (n > (1ull << 30) >> shift)
			return false;
		n <<= shift;
		if (n < (64u << 10))
			return false;
		while (p * 2 <= n)
			p *= 2;
		*u = p;
		return true;
	}
	case K_FRAC:
		if (!trim(s, buf, 64))
			return false;
		*d = strtod(buf, &fend);
		return *fend == '\0' && isfinite(*d) && *d >= 0.0 && *d <= 1.0;
	}
	return false;
}

/* The setting of variable i in cfg, as an integer (not for the fraction). */
static uint64_t setting(const struct env_config *c, size_t i)
{
	switch (i) {
	case 0: return c->enabled;
	case 2: return c->max_depth;
	case 3: return c->hz;
	case 4: return c->clock;
	case 5: return c->mode;
	case 6: return c->manual;
	case 7: return c->manual_hz;
	case 8: return c->manual_max_per_sec;
	case 9: return c->max_endpoints;
	case 10: return c->ring_size;
	case 11: return c->cpu_engine;
	}
	return 0;
}

/* Index of the warning about variable name, or -1; traps on two. */
static int warn_for(const char *name)
{
	char key[64];
	int found = -1;

	(void)snprintf(key, sizeof(key), "profshim: %s=\"", name);
	for (size_t i = 0; i < nwarns; i++) {
		if (strncmp(warns[i], key, strlen(key)) != 0)
			continue;
		ASSERT(found < 0);
		found = (int)i;
	}
	return found;
}

/* Checks one warning line about variable v and its value s. */
static void check_warning(const char *line, const struct var *v, const char *s)
{
	char tail[64], shown[4 * 64 + 16];
	size_t len = strlen(line), tl, i, n;

	for (i = 0; i < len; i++)
		ASSERT((unsigned char)line[i] >= 0x20 && line[i] != 0x7f);
	(void)snprintf(tail, sizeof(tail), "; using %s", v->dflt);
	tl = strlen(tail);
	ASSERT(len > tl && strcmp(line + len - tl, tail) == 0);
	/* The value as env.h says it is shown: its first 64 bytes, those
	 * outside printable ASCII as \xNN, quote and backslash escaped. */
	n = (size_t)sprintf(shown, "=\"");
	for (i = 0; s[i] && i < 64; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			n += (size_t)sprintf(shown + n, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			n += (size_t)sprintf(shown + n, "\\x%02x", c);
		else
			shown[n++] = (char)c;
	}
	(void)sprintf(shown + n, "\" is not ");
	ASSERT(strstr(line, shown) != NULL);
}

/* Splits the input into entries (copies, so each is its own heap block). */
static void decode(const uint8_t *data, size_t size)
{
	size_t off = 0;

	nentries = 0;
	while (off < size && nentries < MAX_ENTRIES) {
		const uint8_t *end = memchr(data + off, 0, size - off);
		size_t len = end ? (size_t)(end - (data + off)) : size - off;
		const char *p = (const char *)data + off;
		struct entry *e = &entries[nentries];

		off += len + 1;
		if (len > 0 && (uint8_t)p[0] >= 0x80) {
			const char *name = vars[(p[0] & 0x7f) % NVARS].name;

			e->name = strdup(name);
			e->value = strndup(p + 1, len - 1);
		} else {
			const char *eq = memchr(p, '=', len);

			if (!eq)
				continue;
			e->name = strndup(p, (size_t)(eq - p));
			e->value = strndup(eq + 1, len - (size_t)(eq - p) - 1);
		}
		ASSERT(e->name && e->value);
		nentries++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env_config cfg, dflt;
	size_t expected_warns = 0;

	decode(data, size);
	memset(asked, 0, sizeof(asked));
	nwarns = 0;
	env_defaults(&dflt);
	env_load(&cfg, fake_get, fake_warn);

	for (size_t i = 0; i < NVARS; i++)
		ASSERT(asked[i] == 1);

	/* Documented ranges, whatever the input. */
	ASSERT(isfinite(cfg.sample_rate) && cfg.sample_rate >= 0.0 &&
	       cfg.sample_rate <= 1.0);
	ASSERT(cfg.max_depth >= 1 && cfg.max_depth <= RING_MAX_FRAMES);
	ASSERT(cfg.hz >= 1 && cfg.hz <= 10000);
	ASSERT(cfg.clock <= RING_CLOCK_WALL && cfg.mode <= RING_MODE_CONTINUOUS);
	ASSERT(cfg.cpu_engine <= 2);
	ASSERT(cfg.manual_hz >= 1 && cfg.manual_hz <= 10000);
	ASSERT(cfg.manual_max_per_sec <= 1000000);
	ASSERT(cfg.max_endpoints >= 1 && cfg.max_endpoints <= 65536);
	ASSERT(cfg.ring_size >= (64u << 10) && cfg.ring_size <= (1u << 30) &&
	       (cfg.ring_size & (cfg.ring_size - 1)) == 0);

	for (size_t i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];
		const char *s = NULL;
		uint64_t u = 0;
		double d = 0;
		int w;

		for (size_t k = 0; k < nentries && !s; k++)
			if (strcmp(entries[k].name, v->name) == 0)
				s = entries[k].value;
		w = warn_for(v->name);
		if (s && !model(v, s, &u, &d)) {
			/* Rejected: the default and one warning. */
			ASSERT(w >= 0);
			check_warning(warns[w], v, s);
			expected_warns++;
			if (v->kind == K_FRAC)
				ASSERT(cfg.sample_rate == dflt.sample_rate);
			else
				ASSERT(setting(&cfg, i) == setting(&dflt, i));
			continue;
		}
		ASSERT(w < 0);
		if (!s) {
			u = setting(&dflt, i);
			d = dflt.sample_rate;
		}
		if (v->kind == K_FRAC)
			ASSERT(cfg.sample_rate == d);
		else
			ASSERT(setting(&cfg, i) == u);
	}
	ASSERT(nwarns == expected_warns);

	for (size_t i = 0; i < nentries; i++) {
		free(entries[i].name);
		free(entries[i].value);
	}
	return 0;
}

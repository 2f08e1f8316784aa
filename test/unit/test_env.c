/*
 * test_env.c — unit tests for the environment parsing of the shim (env.h):
 * the pure parse functions, and env_load() driven by a fake getter table.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "env.h"
#include "ring_format.h"

/* ------------------------------------------------------------------------ */
/* Parse functions                                                          */
/* ------------------------------------------------------------------------ */

/* Returns the result of env_parse_bool, with *val the parsed value. */
static int pbool(const char *s, bool *val)
{
	*val = !*val; /* must be overwritten on success */
	return env_parse_bool(s, val);
}

static void test_parse_bool(void)
{
	static const char *const yes[] = {
		"true", "TRUE", "True", "tRuE", "1", "yes", "YES", "Yes",
		"on", "ON", "On", " true", "true ", "\t yes \n", " 1 ", "oN",
	};
	static const char *const no[] = {
		"false", "FALSE", "False", "0", "no", "NO", "No", "off",
		"OFF", "Off", "  off", "off  ", "\tfalse\t", " 0 ", "nO",
	};
	static const char *const bad[] = {
		"", " ", "\t\n", "2", "-1", "00", "01", "10", "y", "n", "t", "f",
		"truee", "tru", "yess", "of", "onn", "o n", "true false",
		"1 1", "enable", "disabled", "+1", "0x1", "true\x01", "\x01true",
		"on;", "yes!", "verylongvaluethatdoesnotfit",
		"true                                                            x",
	};
	bool v;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		v = false;
		CHECK_EQ(pbool(yes[i], &v), 0);
		CHECK(v == true);
		v = true;
		CHECK_EQ(pbool(yes[i], &v), 0);
		CHECK(v == true);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		v = false;
		CHECK_EQ(pbool(no[i], &v), 0);
		CHECK(v == false);
		v = true;
		CHECK_EQ(pbool(no[i], &v), 0);
		CHECK(v == false);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = true;
		if (env_parse_bool(bad[i], &v) != -EINVAL)
			printf("# bool \"%s\" accepted\n", bad[i]);
		CHECK_EQ(env_parse_bool(bad[i], &v), -EINVAL);
		CHECK(v == true); /* untouched on failure */
		v = false;
		CHECK_EQ(env_parse_bool(bad[i], &v), -EINVAL);
		CHECK(v == false);
	}
	/* Long blank padding around a valid word is fine. */
	CHECK_EQ(env_parse_bool("                                        on"
				"                                        ",
				&v),
		 0);
	CHECK(v == true);
	CHECK_EQ(env_parse_bool(NULL, &v), -EINVAL);
}

static void test_parse_double(void)
{
	static const struct {
		const char *s;
		double v;
	} good[] = {
		{"0", 0.0}, {"1", 1.0}, {"0.5", 0.5}, {".5", 0.5},
		{"0.25", 0.25}, {"1.0", 1.0}, {"1e-3", 0.001},
		{"1E-3", 0.001}, {" 0.1 ", 0.1}, {"\t0.75\n", 0.75},
		{"0.000001", 0.000001}, {"0.", 0.0}, {"00.5", 0.5},
		{"5e-1", 0.5}, {"+0.5", 0.5},
	};
	static const char *const bad[] = {
		"", " ", "abc", "0.5x", "0.5 x", "x0.5", "0,5", "nan", "NaN",
		"inf", "-inf", "infinity", "1e", "e1", "--0.5", "0.5.5",
		"0.5%", "1/2", ". 5",
	};
	static const char *const range[] = {
		"1.0000001", "2", "-0.1", "-1", "1e3", "1e300", "-1e300",
		"10",
	};
	double v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = -42;
		CHECK_EQ(env_parse_double(good[i].s, 0.0, 1.0, &v), 0);
		CHECK(v == good[i].v);
		if (v != good[i].v)
			printf("# \"%s\" -> %g\n", good[i].s, v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = -42;
		if (env_parse_double(bad[i], 0.0, 1.0, &v) != -EINVAL)
			printf("# double \"%s\" not rejected as invalid\n",
			       bad[i]);
		CHECK_EQ(env_parse_double(bad[i], 0.0, 1.0, &v), -EINVAL);
		CHECK(v == -42);
	}
	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		v = -42;
		if (env_parse_double(range[i], 0.0, 1.0, &v) != -ERANGE)
			printf("# double \"%s\" not out of range\n", range[i]);
		CHECK_EQ(env_parse_double(range[i], 0.0, 1.0, &v), -ERANGE);
		CHECK(v == -42);
	}
	/* Overflowing strtod is invalid, not a huge number. */
	CHECK(env_parse_double("1e999", 0.0, 1e308, &v) < 0);
	/* Bounds are inclusive. */
	CHECK_EQ(env_parse_double("2.5", 2.5, 2.5, &v), 0);
	CHECK(v == 2.5);
	CHECK_EQ(env_parse_double("-3", -5.0, 5.0, &v), 0);
	CHECK(v == -3.0);
	CHECK_EQ(env_parse_double(NULL, 0.0, 1.0, &v), -EINVAL);
}

static void test_parse_uint(void)
{
	static const struct {
		const char *s;
		unsigned long v;
	} good[] = {
		{"0", 0}, {"1", 1}, {"42", 42}, {"007", 7}, {" 99 ", 99},
		{"\t10000\n", 10000}, {"4294967295", 4294967295ul},
		{"18446744073709551615", 18446744073709551615ul},
	};
	static const char *const bad[] = {
		"", " ", "-1", "+1", " -1", "1.5", "1e3", "0x10", "12abc",
		"12 34", "abc", "1k", "½", "１", "99999999999999999999999999999999",
	};
	unsigned long v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		CHECK_EQ(env_parse_uint(good[i].s, 0, ~0ul, &v), 0);
		CHECK(v == good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (env_parse_uint(bad[i], 0, ~0ul, &v) != -EINVAL)
			printf("# uint \"%s\" not rejected\n", bad[i]);
		CHECK_EQ(env_parse_uint(bad[i], 0, ~0ul, &v), -EINVAL);
		CHECK_EQ(v, 12345);
	}
	/* Overflow of unsigned long. */
	v = 12345;
	CHECK_EQ(env_parse_uint("18446744073709551616", 0, ~0ul, &v), -ERANGE);
	CHECK_EQ(env_parse_uint("99999999999999999999", 0, ~0ul, &v), -ERANGE);
	CHECK_EQ(v, 12345);
	/* Range, inclusive bounds. */
	CHECK_EQ(env_parse_uint("0", 1, 10, &v), -ERANGE);
	CHECK_EQ(env_parse_uint("11", 1, 10, &v), -ERANGE);
	CHECK_EQ(env_parse_uint("4294967296", 1, 4294967295ul, &v), -ERANGE);
	CHECK_EQ(v, 12345);
	CHECK_EQ(env_parse_uint("1", 1, 10, &v), 0);
	CHECK_EQ(v, 1);
	CHECK_EQ(env_parse_uint("10", 1, 10, &v), 0);
	CHECK_EQ(v, 10);
	CHECK_EQ(env_parse_uint(NULL, 0, 10, &v), -EINVAL);
}

static void test_parse_size(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{"0", 0}, {"1", 1}, {"4096", 4096}, {"1b", 1}, {"1B", 1},
		{"1k", 1024}, {"1K", 1024}, {"1kb", 1024}, {"1KB", 1024},
		{"1KiB", 1024}, {"1kib", 1024}, {"1KIB", 1024},
		{"64K", 64 << 10}, {"4m", 4 << 20}, {"4M", 4 << 20},
		{"4MB", 4 << 20}, {"4MiB", 4 << 20}, {"4mib", 4 << 20},
		{"1G", 1ull << 30}, {"1GB", 1ull << 30}, {"1GiB", 1ull << 30},
		{"3g", 3ull << 30}, {" 8M ", 8 << 20}, {"\t2k\n", 2048},
		{"0K", 0}, {"010K", 10 << 10},
		{"17179869183G", 17179869183ull << 30},
		{"18446744073709551615", UINT64_MAX},
	};
	static const char *const bad[] = {
		"", "  ", "K", "M", "-1", "+1", "-1K", "1.5M", "1 M", "1M B",
		"1T", "1E", "1KK", "1MiBx", "1iB", "1i", "1KBB", "1Kib x",
		"1MBi", "1bK", "x1M", "1M!", "0x10", "4,096", "1e3",
		"4MiB  junk",
	};
	static const char *const range[] = {
		"18446744073709551616", "99999999999999999999",
		"17179869184G", "18014398509481984M",
		"18014398509481984K",
	};
	uint64_t v;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		v = 12345;
		if (env_parse_size(good[i].s, 0, UINT64_MAX, &v) != 0 ||
		    v != good[i].v)
			printf("# size \"%s\" -> %llu\n", good[i].s,
			       (unsigned long long)v);
		CHECK_EQ(env_parse_size(good[i].s, 0, UINT64_MAX, &v), 0);
		CHECK(v == good[i].v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = 12345;
		if (env_parse_size(bad[i], 0, UINT64_MAX, &v) != -EINVAL)
			printf("# size \"%s\" not rejected\n", bad[i]);
		CHECK_EQ(env_parse_size(bad[i], 0, UINT64_MAX, &v), -EINVAL);
		CHECK_EQ(v, 12345);
	}
	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		v = 12345;
		if (env_parse_size(range[i], 0, UINT64_MAX, &v) != -ERANGE)
			printf("# size \"%s\" not out of range\n", range[i]);
		CHECK_EQ(env_parse_size(range[i], 0, UINT64_MAX, &v), -ERANGE);
		CHECK_EQ(v, 12345);
	}
	/* Bounds apply to the value after the suffix, inclusive. */
	CHECK_EQ(env_parse_size("64K", 64 << 10, 1 << 30, &v), 0);
	CHECK(v == 64 << 10);
	CHECK_EQ(env_parse_size("65535", 64 << 10, 1 << 30, &v), -ERANGE);
	CHECK_EQ(env_parse_size("63K", 64 << 10, 1 << 30, &v), -ERANGE);
	CHECK_EQ(env_parse_size("1G", 64 << 10, 1 << 30, &v), 0);
	CHECK(v == 1 << 30);
	CHECK_EQ(env_parse_size("1073741825", 64 << 10, 1 << 30, &v), -ERANGE);
	CHECK_EQ(env_parse_size("1025M", 64 << 10, 1 << 30, &v), -ERANGE);
	CHECK_EQ(env_parse_size("2G", 64 << 10, 1 << 30, &v), -ERANGE);
	CHECK_EQ(env_parse_size(NULL, 0, 10, &v), -EINVAL);
}

/* ------------------------------------------------------------------------ */
/* env_load with a fake environment                                         */
/* ------------------------------------------------------------------------ */

#define MAX_VARS 16
#define MAX_WARN 32

static struct {
	const char *name;
	const char *value;
} fake_env[MAX_VARS];
static int fake_n;
static int fake_gets[MAX_VARS]; /* how often each variable was read */

static char warn_lines[MAX_WARN][512];
static int warn_n;

static void fake_reset(void)
{
	fake_n = 0;
	warn_n = 0;
	memset(fake_gets, 0, sizeof(fake_gets));
	memset(warn_lines, 0, sizeof(warn_lines));
}

static void fake_set(const char *name, const char *value)
{
	fake_env[fake_n].name = name;
	fake_env[fake_n].value = value;
	fake_n++;
}

static char *fake_get(const char *name)
{
	for (int i = 0; i < fake_n; i++)
		if (strcmp(fake_env[i].name, name) == 0) {
			fake_gets[i]++;
			return (char *)fake_env[i].value;
		}
	return NULL;
}

static void fake_warn(const char *line)
{
	CHECK(strchr(line, '\n') == NULL);
	CHECK(strlen(line) < sizeof(warn_lines[0]));
	if (warn_n < MAX_WARN)
		(void)snprintf(warn_lines[warn_n], sizeof(warn_lines[0]), "%s",
			       line);
	warn_n++;
}

/* Index of the warning line mentioning `NAME="`, or -1. */
static int warn_find(const char *name)
{
	char key[64];
	int found = -1;

	(void)snprintf(key, sizeof(key), "%s=\"", name);
	for (int i = 0; i < warn_n && i < MAX_WARN; i++) {
		if (strstr(warn_lines[i], key)) {
			CHECK(found < 0); /* only one line per variable */
			found = i;
		}
	}
	return found;
}

static void check_defaults(const struct env_config *c)
{
	CHECK(c->enabled == false);
	CHECK(c->sample_rate == 0.1);
	CHECK_EQ(c->max_depth, 50);
	CHECK_EQ(c->hz, 99);
	CHECK_EQ(c->clock, RING_CLOCK_CPU);
	CHECK_EQ(c->mode, RING_MODE_REQUEST);
	CHECK(c->manual == true);
	CHECK_EQ(c->manual_hz, 997);
	CHECK_EQ(c->manual_max_per_sec, 10);
	CHECK_EQ(c->max_endpoints, 1000);
	CHECK(c->ring_size == 4u << 20);
	CHECK_EQ(c->cpu_engine, 0); /* auto */
}

static void test_defaults(void)
{
	struct env_config c;

	memset(&c, 0xa5, sizeof(c));
	env_defaults(&c);
	check_defaults(&c);

	fake_reset();
	memset(&c, 0xa5, sizeof(c));
	env_load(&c, fake_get, fake_warn);
	check_defaults(&c);
	CHECK_EQ(warn_n, 0);
}

static void test_load_valid(void)
{
	struct env_config c;

	fake_reset();
	fake_set("ENABLE_PROFILING", "yes");
	fake_set("PROFILING_SAMPLE_RATE", "0.25");
	fake_set("PROFILING_MAX_DEPTH", "256");
	fake_set("PROFILING_HZ", "10000");
	fake_set("PROFILING_CLOCK", "wall");
	fake_set("PROFILING_MODE", "continuous");
	fake_set("PROFILING_MANUAL", "off");
	fake_set("PROFILING_MANUAL_HZ", "1");
	fake_set("PROFILING_MANUAL_MAX_PER_SEC", "0");
	fake_set("PROFILING_MAX_ENDPOINTS", "65536");
	fake_set("PROFILING_RING_SIZE", "16M");
	fake_set("PROFILING_CPU_ENGINE", "timer");
	env_load(&c, fake_get, fake_warn);
	CHECK_EQ(warn_n, 0);
	CHECK_EQ(c.cpu_engine, 2);
	CHECK(c.enabled == true);
	CHECK(c.sample_rate == 0.25);
	CHECK_EQ(c.max_depth, 256);
	CHECK_EQ(c.hz, 10000);
	CHECK_EQ(c.clock, RING_CLOCK_WALL);
	CHECK_EQ(c.mode, RING_MODE_CONTINUOUS);
	CHECK(c.manual == false);
	CHECK_EQ(c.manual_hz, 1);
	CHECK_EQ(c.manual_max_per_sec, 0);
	CHECK_EQ(c.max_endpoints, 65536);
	CHECK(c.ring_size == 16u << 20);
	/* Every variable is read exactly once. */
	for (int i = 0; i < fake_n; i++)
		CHECK_EQ(fake_gets[i], 1);

	/* The other bounds, other spellings. */
	fake_reset();
	fake_set("ENABLE_PROFILING", " ON ");
	fake_set("PROFILING_SAMPLE_RATE", "1");
	fake_set("PROFILING_MAX_DEPTH", "1");
	fake_set("PROFILING_HZ", " 1");
	fake_set("PROFILING_CLOCK", " CPU ");
	fake_set("PROFILING_MODE", "Request");
	fake_set("PROFILING_MANUAL", "TRUE");
	fake_set("PROFILING_MANUAL_HZ", "10000");
	fake_set("PROFILING_MANUAL_MAX_PER_SEC", "1000000");
	fake_set("PROFILING_MAX_ENDPOINTS", "1");
	fake_set("PROFILING_RING_SIZE", "1G");
	fake_set("PROFILING_CPU_ENGINE", " Perf ");
	env_load(&c, fake_get, fake_warn);
	CHECK_EQ(warn_n, 0);
	CHECK_EQ(c.cpu_engine, 1);
	CHECK(c.enabled == true);
	CHECK(c.sample_rate == 1.0);
	CHECK_EQ(c.max_depth, 1);
	CHECK_EQ(c.hz, 1);
	CHECK_EQ(c.clock, RING_CLOCK_CPU);
	CHECK_EQ(c.mode, RING_MODE_REQUEST);
	CHECK(c.manual == true);
	CHECK_EQ(c.manual_hz, 10000);
	CHECK_EQ(c.manual_max_per_sec, 1000000);
	CHECK_EQ(c.max_endpoints, 1);
	CHECK(c.ring_size == 1u << 30);

	fake_reset();
	fake_set("PROFILING_SAMPLE_RATE", "0");
	fake_set("PROFILING_RING_SIZE", "64K");
	fake_set("PROFILING_CLOCK", "WALL");
	fake_set("PROFILING_MODE", "\tCONTINUOUS\t");
	env_load(&c, fake_get, fake_warn);
	CHECK_EQ(warn_n, 0);
	CHECK(c.sample_rate == 0.0);
	CHECK(c.ring_size == 64u << 10);
	CHECK_EQ(c.clock, RING_CLOCK_WALL);
	CHECK_EQ(c.mode, RING_MODE_CONTINUOUS);
}

/* One bad value per variable: name, value, and the expected default text. */
struct bad_var {
	const char *name;
	const char *value;
	const char *expect; /* the whole warning line */
};

static void check_bad_set(const struct bad_var *bad, size_t n)
{
	struct env_config c;

	fake_reset();
	for (size_t i = 0; i < n; i++)
		fake_set(bad[i].name, bad[i].value);
	env_load(&c, fake_get, fake_warn);
	check_defaults(&c);
	CHECK_EQ(warn_n, (int)n);
	for (size_t i = 0; i < n; i++) {
		int w = warn_find(bad[i].name);

		CHECK(w >= 0);
		if (w < 0) {
			printf("# no warning for %s\n", bad[i].name);
			continue;
		}
		CHECK_STR(warn_lines[w], bad[i].expect);
	}
}

static void test_load_invalid(void)
{
	static const struct bad_var bad[] = {
		{"ENABLE_PROFILING", "maybe",
		 "profshim: ENABLE_PROFILING=\"maybe\" is not one of "
		 "true/1/yes/on or false/0/no/off; using off"},
		{"PROFILING_SAMPLE_RATE", "1.5",
		 "profshim: PROFILING_SAMPLE_RATE=\"1.5\" is not a number from "
		 "0.0 to 1.0; using 0.1"},
		{"PROFILING_MAX_DEPTH", "257",
		 "profshim: PROFILING_MAX_DEPTH=\"257\" is not a whole number "
		 "from 1 to 256; using 50"},
		{"PROFILING_HZ", "0",
		 "profshim: PROFILING_HZ=\"0\" is not a whole number from 1 to "
		 "10000; using 99"},
		{"PROFILING_CLOCK", "monotonic",
		 "profshim: PROFILING_CLOCK=\"monotonic\" is not cpu or wall; "
		 "using cpu"},
		{"PROFILING_MODE", "sometimes",
		 "profshim: PROFILING_MODE=\"sometimes\" is not request or "
		 "continuous; using request"},
		{"PROFILING_MANUAL", "2",
		 "profshim: PROFILING_MANUAL=\"2\" is not one of true/1/yes/on "
		 "or false/0/no/off; using on"},
		{"PROFILING_MANUAL_HZ", "10001",
		 "profshim: PROFILING_MANUAL_HZ=\"10001\" is not a whole number "
		 "from 1 to 10000; using 997"},
		{"PROFILING_MANUAL_MAX_PER_SEC", "-5",
		 "profshim: PROFILING_MANUAL_MAX_PER_SEC=\"-5\" is not a whole "
		 "number from 0 to 1000000; using 10"},
		{"PROFILING_MAX_ENDPOINTS", "65537",
		 "profshim: PROFILING_MAX_ENDPOINTS=\"65537\" is not a whole "
		 "number from 1 to 65536; using 1000"},
		{"PROFILING_RING_SIZE", "2G",
		 "profshim: PROFILING_RING_SIZE=\"2G\" is not a size from 64K "
		 "to 1G (e.g. 4M); using 4M"},
		{"PROFILING_CPU_ENGINE", "pmu",
		 "profshim: PROFILING_CPU_ENGINE=\"pmu\" is not auto, perf or "
		 "timer; using auto"},
	};
	static const struct bad_var bad2[] = {
		{"ENABLE_PROFILING", "",
		 "profshim: ENABLE_PROFILING=\"\" is not one of "
		 "true/1/yes/on or false/0/no/off; using off"},
		{"PROFILING_SAMPLE_RATE", "lots",
		 "profshim: PROFILING_SAMPLE_RATE=\"lots\" is not a number from "
		 "0.0 to 1.0; using 0.1"},
		{"PROFILING_MAX_DEPTH", " ",
		 "profshim: PROFILING_MAX_DEPTH=\" \" is not a whole number "
		 "from 1 to 256; using 50"},
		{"PROFILING_HZ", "99Hz",
		 "profshim: PROFILING_HZ=\"99Hz\" is not a whole number from 1 "
		 "to 10000; using 99"},
		{"PROFILING_CLOCK", "",
		 "profshim: PROFILING_CLOCK=\"\" is not cpu or wall; "
		 "using cpu"},
		{"PROFILING_MODE", "continuousxxxxxxxxxx",
		 "profshim: PROFILING_MODE=\"continuousxxxxxxxxxx\" is not "
		 "request or continuous; using request"},
		{"PROFILING_MANUAL", "nope",
		 "profshim: PROFILING_MANUAL=\"nope\" is not one of "
		 "true/1/yes/on or false/0/no/off; using on"},
		{"PROFILING_MANUAL_HZ", "1e3",
		 "profshim: PROFILING_MANUAL_HZ=\"1e3\" is not a whole number "
		 "from 1 to 10000; using 997"},
		{"PROFILING_MANUAL_MAX_PER_SEC", "99999999999999999999",
		 "profshim: PROFILING_MANUAL_MAX_PER_SEC=\"99999999999999999999\""
		 " is not a whole number from 0 to 1000000; using 10"},
		{"PROFILING_MAX_ENDPOINTS", "0",
		 "profshim: PROFILING_MAX_ENDPOINTS=\"0\" is not a whole "
		 "number from 1 to 65536; using 1000"},
		{"PROFILING_RING_SIZE", "65535",
		 "profshim: PROFILING_RING_SIZE=\"65535\" is not a size from "
		 "64K to 1G (e.g. 4M); using 4M"},
	};
	static const struct bad_var bad3[] = {
		{"PROFILING_SAMPLE_RATE", "nan",
		 "profshim: PROFILING_SAMPLE_RATE=\"nan\" is not a number from "
		 "0.0 to 1.0; using 0.1"},
		{"PROFILING_RING_SIZE", "4 MB",
		 "profshim: PROFILING_RING_SIZE=\"4 MB\" is not a size from "
		 "64K to 1G (e.g. 4M); using 4M"},
		{"PROFILING_HZ", "-1",
		 "profshim: PROFILING_HZ=\"-1\" is not a whole number from 1 "
		 "to 10000; using 99"},
	};

	check_bad_set(bad, sizeof(bad) / sizeof(bad[0]));
	check_bad_set(bad2, sizeof(bad2) / sizeof(bad2[0]));
	check_bad_set(bad3, sizeof(bad3) / sizeof(bad3[0]));
	/* Each one alone. */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_bad_set(&bad[i], 1);
}

/* A long value is cut in the message, which stays one bounded line. */
static void test_load_long_value(void)
{
	struct env_config c;
	char val[4096];
	int w;

	memset(val, 'x', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	fake_reset();
	fake_set("PROFILING_HZ", val);
	fake_set("PROFILING_MODE", val);
	env_load(&c, fake_get, fake_warn);
	check_defaults(&c);
	CHECK_EQ(warn_n, 2);
	w = warn_find("PROFILING_HZ");
	CHECK(w >= 0);
	if (w >= 0) {
		CHECK(strstr(warn_lines[w], "using 99") != NULL);
		CHECK(strlen(warn_lines[w]) < 256);
	}
}

/* A bad value leaves the default; good values next to it still apply. */
static void test_load_mixed(void)
{
	struct env_config c;
	int w;

	fake_reset();
	fake_set("ENABLE_PROFILING", "1");
	fake_set("PROFILING_HZ", "abc");
	fake_set("PROFILING_MAX_DEPTH", "100");
	fake_set("PROFILING_RING_SIZE", "junk");
	env_load(&c, fake_get, fake_warn);
	CHECK_EQ(warn_n, 2);
	CHECK(c.enabled == true);
	CHECK_EQ(c.hz, 99);
	CHECK_EQ(c.max_depth, 100);
	CHECK(c.ring_size == 4u << 20);
	w = warn_find("PROFILING_HZ");
	CHECK(w >= 0);
	w = warn_find("PROFILING_RING_SIZE");
	CHECK(w >= 0);
}

static void test_ring_size_rounding(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} cases[] = {
		{"64K", 64 << 10}, {"65536", 64 << 10}, {"65537", 64 << 10},
		{"100K", 64 << 10}, {"127K", 64 << 10}, {"128K", 128 << 10},
		{"131071", 64 << 10}, {"131072", 128 << 10},
		{"3M", 2 << 20}, {"4M", 4 << 20}, {"5MiB", 4 << 20},
		{"8388607", 4 << 20}, {"1000000", 512 << 10},
		{"1023M", 512 << 20}, {"1073741823", 512 << 20},
		{"1073741824", 1 << 30}, {"1G", 1 << 30}, {"1024M", 1 << 30},
		{"1048576K", 1 << 30},
	};
	struct env_config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_reset();
		fake_set("PROFILING_RING_SIZE", cases[i].s);
		env_load(&c, fake_get, fake_warn);
		CHECK_EQ(warn_n, 0);
		CHECK(c.ring_size == cases[i].v);
		if (c.ring_size != cases[i].v)
			printf("# ring size \"%s\" -> %llu\n", cases[i].s,
			       (unsigned long long)c.ring_size);
		CHECK(c.ring_size && !(c.ring_size & (c.ring_size - 1)));
	}
}

static void test_enable_variants(void)
{
	static const struct {
		const char *s;
		bool on;
		bool warn;
	} cases[] = {
		{"1", true, false}, {"true", true, false},
		{"TRUE", true, false}, {"yes", true, false},
		{"Yes", true, false}, {"on", true, false},
		{" on ", true, false}, {"0", false, false},
		{"false", false, false}, {"no", false, false},
		{"OFF", false, false}, {"", false, true}, {"  ", false, true},
		{"2", false, true}, {"enabled", false, true},
		{"y", false, true}, {"1 ", true, false},
	};
	struct env_config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fake_reset();
		fake_set("ENABLE_PROFILING", cases[i].s);
		env_load(&c, fake_get, fake_warn);
		CHECK(c.enabled == cases[i].on);
		CHECK_EQ(warn_n, cases[i].warn ? 1 : 0);
		if (cases[i].warn && warn_n == 1) {
			char expect[256];

			(void)snprintf(expect, sizeof(expect),
				       "profshim: ENABLE_PROFILING=\"%s\" is "
				       "not one of true/1/yes/on or "
				       "false/0/no/off; using off",
				       cases[i].s);
			CHECK_STR(warn_lines[0], expect);
		}
	}
	/* Unset: off, and no warning. */
	fake_reset();
	env_load(&c, fake_get, fake_warn);
	CHECK(c.enabled == false);
	CHECK_EQ(warn_n, 0);
}

int main(void)
{
	RUN(test_parse_bool);
	RUN(test_parse_double);
	RUN(test_parse_uint);
	RUN(test_parse_size);
	RUN(test_defaults);
	RUN(test_load_valid);
	RUN(test_load_invalid);
	RUN(test_load_long_value);
	RUN(test_load_mixed);
	RUN(test_ring_size_rounding);
	RUN(test_enable_variants);
	return check_done();
}

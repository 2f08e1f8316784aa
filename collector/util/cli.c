/*
 * cli.c — see cli.h.
 */
#include "util/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int cli_vusage_error(const struct cli *c, const char *fmt, va_list ap)
{
	fprintf(stderr, "%s: ", c->name);
	vfprintf(stderr, fmt, ap);
	if (c->hint)
		fprintf(stderr, "%s\n", c->hint);
	else
		fprintf(stderr, "\n\n%s", c->usage);
	return CLI_EXIT_USAGE;
}

int cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = cli_vusage_error(c, fmt, ap);
	va_end(ap);
	return r;
}

int cli_help(const struct cli *c)
{
	fputs(c->usage, stdout);
	return 0;
}

int cli_help_or_bad(const struct cli *c, int opt, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (opt == 'h')
		return cli_help(c);
	va_start(ap, fmt);
	r = cli_vusage_error(c, fmt, ap);
	va_end(ap);
	return r;
}

int cli_parse_number(const char *s, double lo, bool above_lo, double hi,
		     double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(above_lo ? v > lo : v >= lo) ||
	    v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cli_parse_seconds(const char *s, double *ret)
{
	return cli_parse_number(s, 0, true, 1e9, ret);
}

int cli_parse_long(const char *s, long lo, long hi, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cli_parse_pid(const char *s, int *ret)
{
	long v;

	if (cli_parse_long(s, 1, INT_MAX, &v) < 0)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

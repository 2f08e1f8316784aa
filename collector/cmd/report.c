/*
 * report.c — see report.h.
 */
#include "cmd/report.h"
#include "util/cli.h"
#include "util/atomic_file.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/folded.h"
#include "formats/html.h"
#include "formats/pprof.h"
#include "model/profile.h"
#include "formats/prom.h"
#include "formats/speedscope.h"

static const char report_usage[] =
	"usage: " CLI_PROG " report [--input FILE] [--format F] [--endpoint E]\n"
	"         [--request ID] [--function NAME] [--output FILE] [--socket PATH]\n"
	"\n"
	"Make a report from a saved profile (--input, \"-\" for stdin) or, without\n"
	"--input, from the running collector. Written to stdout unless --output.\n"
	"\n"
	"  --format F      json (default), folded, pprof, speedscope, html,\n"
	"                  prometheus\n"
	"  --endpoint E    one endpoint, as named in the profile (\"GET /users/:id\")\n"
	"  --request ID    one kept request, by id: its own stacks\n"
	"  --function NAME only stacks passing through the function NAME\n"
	"  --output FILE   write there (made atomically: the file is complete or\n"
	"                  untouched)\n";

enum { OPT_SOCKET = 1000 };

struct report_format {
	const char *name;
	int (*write)(const struct profile *p, FILE *out);
	bool binary;
};

static int report_json(const struct profile *p, FILE *out)
{
	json_t *j = profile_to_json(p);
	int r;

	if (!j)
		return -ENOMEM;
	r = json_dumpf(j, out, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	json_decref(j);
	if (r == 0 && fputc('\n', out) == EOF)
		r = -1;
	return r < 0 || ferror(out) ? -EIO : 0;
}

static const struct report_format report_formats[] = {
	{"json", report_json, false},
	{"folded", folded_write, false},
	{"pprof", pprof_write, true},
	{"speedscope", speedscope_write, false},
	{"html", html_write, false},
	{"prometheus", prom_write, false},
};

static const struct cli report_cli = {.name = CLI_PROG " report",
				      .usage = report_usage};

/* What atomic_file_write() fills: one format of one profile. */
struct report_job {
	const struct report_format *f;
	const struct profile *p;
};

static int report_fill(FILE *out, void *arg)
{
	const struct report_job *job = arg;

	return job->f->write(job->p, out);
}

int report_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_ARG("input", 'i'), CLI_ARG("format", 'f'),
		CLI_ARG("endpoint", 'e'), CLI_ARG("request", 'r'),
		CLI_ARG("function", 'F'), CLI_ARG("output", 'o'),
		CLI_ARG("socket", OPT_SOCKET), CLI_HELP, {0},
	};
	const struct report_format *fmt = &report_formats[0];
	const char *input = NULL, *output = NULL, *socket = NULL;
	struct profile_filter filter = {0};
	struct profile *p = NULL;
	char err[512];
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+i:f:e:r:F:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			input = optarg;
			break;
		case 'f':
			fmt = NULL;
			for (size_t i = 0; i < sizeof(report_formats) /
						   sizeof(report_formats[0]);
			     i++)
				if (strcmp(optarg, report_formats[i].name) == 0)
					fmt = &report_formats[i];
			if (!fmt)
				return cli_usage_error(&report_cli, "unknown "
						       "format '%s'", optarg);
			break;
		case 'e':
			filter.endpoint = optarg;
			break;
		case 'r':
			filter.request = optarg;
			break;
		case 'F':
			filter.function = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_SOCKET:
			socket = optarg;
			break;
		default:
			return cli_help_or_bad(&report_cli, c, "%s",
					       "bad option");
		}
	}
	if (optind < argc)
		return cli_usage_error(&report_cli, "unexpected argument '%s'",
				       argv[optind]);
	if (fmt->binary && !output && isatty(STDOUT_FILENO))
		return cli_usage_error(&report_cli, "%s output is binary: give "
				       "--output FILE or redirect stdout",
				       fmt->name);
	if (input)
		r = profile_load(input, &p, err, sizeof(err)) < 0 ? 1 : 0;
	else
		r = profile_fetch(socket, &p, err, sizeof(err));
	if (r != 0) {
		fprintf(stderr, CLI_PROG " report: %s\n", err);
		return 1;
	}
	r = profile_select(p, &filter, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, CLI_PROG " report: %s\n",
			r == -ENOMEM ? "out of memory" : err);
		profile_free(p);
		return 1;
	}
	if (output) {
		struct report_job job = {fmt, p};
		char werr[400];

		/* The file is whole or untouched: a failed report never
		 * leaves a truncated file where a good one was. */
		r = atomic_file_write(output, report_fill, &job, werr,
				      sizeof(werr));
	} else {
		r = fmt->write(p, stdout);
		if (fflush(stdout) != 0 && r == 0)
			r = -errno;
	}
	profile_free(p);
	if (r < 0) {
		fprintf(stderr, CLI_PROG " report: writing %s %s: %s\n", fmt->name,
			output ? output : "to stdout", strerror(-r));
		return 1;
	}
	return 0;
}

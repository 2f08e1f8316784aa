/*
 * main.c — profshim-collector's command line.
 *
 * Exit status: 0 success, 1 the command could not do its work (no collector
 * running, unwritable file, ...), 2 bad arguments (usage on stderr).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/control.h"
#include "cmd/diff.h"
#include "cmd/gc.h"
#include "cmd/record.h"
#include "cmd/report.h"
#include "cmd/top.h"
#include "cmd/usage.h"
#include "util/cli.h"

#define PROG CLI_PROG

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\n%s", usage_text);
	return 2;
}

enum { OPT_SOCKET = 1000, OPT_SHM_DIR };

static int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dry-run", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"shm-dir", required_argument, NULL, OPT_SHM_DIR},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *dir = "/dev/shm", *socket = NULL;
	bool dry = false, verbose = false;
	char path[256], err[512];
	FILE *sink;
	int c;

	while ((c = getopt_long(argc, argv, "+nvh", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			dry = true;
			break;
		case 'v':
			verbose = true;
			break;
		case OPT_SHM_DIR:
			dir = optarg;
			break;
		case OPT_SOCKET:
			socket = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage_error("%s", "bad option for gc");
		}
	}
	if (optind < argc)
		return usage_error("gc takes no argument '%s'", argv[optind]);
	/* A running collector drains the rings of exited processes it reads
	 * and removes them itself: let it, before removing what is left. */
	sink = fopen("/dev/null", "we");
	if (!dry && sink && control_path(socket, 0, path, sizeof(path)) == 0) {
		int r = control_call(path, "reap", sink, err, sizeof(err));

		if (r == 0)
			printf("profshim-collector gc: the running collector "
			       "drained the rings it reads first\n");
		/* It may not have read a ring of an exited process yet:
		 * removing that ring would lose its requests. */
		if (r == CONTROL_SILENT) {
			fprintf(stderr, PROG " gc: %s; nothing removed\n", err);
			fclose(sink);
			return 1;
		}
	}
	if (sink)
		fclose(sink);
	return gc_run(dir, dry, verbose);
}

static int call(const char *socket, const char *req)
{
	char path[256], err[512];
	int r = control_path(socket, 0, path, sizeof(path));

	if (r < 0) {
		fprintf(stderr, PROG ": control socket path: %s\n", strerror(-r));
		return 1;
	}
	if (control_call(path, req, stdout, err, sizeof(err)) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_control(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{"endpoint", required_argument, NULL, 'e'},
		{"function", required_argument, NULL, 'f'},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	const char *endpoint = "", *function = "", *socket = NULL;
	char req[PATH_MAX + 64];
	bool dump = strcmp(cmd, "dump") == 0;
	int c;

	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
		case 'f':
			if (!dump)
				return usage_error("%s takes no --endpoint or "
						   "--function", cmd);
			if (strpbrk(optarg, "\t\n"))
				return usage_error("'%s' has a tab or newline",
						   optarg);
			if (c == 'e')
				endpoint = optarg;
			else
				function = optarg;
			break;
		case OPT_SOCKET:
			socket = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage_error("bad option for %s", cmd);
		}
	}
	if (dump || strcmp(cmd, "reset") == 0) {
		if (optind < argc)
			return usage_error("unexpected argument '%s'",
					   argv[optind]);
		if (dump)
			(void)snprintf(req, sizeof(req), "dump\t%s\t%s",
				       endpoint, function);
		else
			(void)snprintf(req, sizeof(req), "reset");
		return call(socket, req);
	}
	/* save FILE: the collector's working directory is not ours, so a
	 * relative path is made absolute here. */
	{
		char dir[PATH_MAX];
		const char *file;

		if (optind + 1 != argc)
			return usage_error("%s", "save needs exactly one FILE");
		file = argv[optind];
		if (!*file || strpbrk(file, "\t\n"))
			return usage_error("bad file name '%s'", file);
		if (file[0] == '/') {
			(void)snprintf(req, sizeof(req), "save\t%s", file);
		} else {
			if (!getcwd(dir, sizeof(dir))) {
				fprintf(stderr, PROG ": getcwd: %s\n",
					strerror(errno));
				return 1;
			}
			(void)snprintf(req, sizeof(req), "save\t%s/%s", dir,
				       file);
		}
		return call(socket, req);
	}
}

int main(int argc, char **argv)
{
	const char *cmd;

	/* libdw would fetch missing debug information over the network when
	 * DEBUGINFOD_URLS is set; a profiler should not do that unasked. */
	if (!getenv("PROFSHIM_DEBUGINFOD"))
		(void)unsetenv("DEBUGINFOD_URLS");
	if (argc < 2)
		return usage_error("%s", "a command is needed");
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		puts(PROG " " PROFSHIM_VERSION);
		return 0;
	}
	if (strcmp(cmd, "record") == 0)
		return record_main(argc - 1, argv + 1);
	if (strcmp(cmd, "gc") == 0)
		return cmd_gc(argc - 1, argv + 1);
	if (strcmp(cmd, "report") == 0)
		return report_main(argc - 1, argv + 1);
	if (strcmp(cmd, "diff") == 0)
		return diff_main(argc - 1, argv + 1);
	if (strcmp(cmd, "top") == 0)
		return top_main(argc - 1, argv + 1);
	if (strcmp(cmd, "dump") == 0 || strcmp(cmd, "reset") == 0 ||
	    strcmp(cmd, "save") == 0)
		return cmd_control(cmd, argc - 1, argv + 1);
	return usage_error("unknown command '%s'", cmd);
}

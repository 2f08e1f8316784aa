/*
 * remote.c — see remote.h. The answer (dump's profile JSON) goes to stdout
 * as the collector sends it.
 */
#include "cmd/remote.h"
#include "cmd/usage.h"
#include "util/cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/control.h"

enum { OPT_SOCKET = 1000 };

/* Send req to the collector; its answer to stdout. The exit status. */
static int remote_call(const char *socket, const char *req)
{
	char path[256], err[512];
	int r = control_path(socket, 0, path, sizeof(path));

	if (r < 0) {
		fprintf(stderr, CLI_PROG ": control socket path: %s\n",
			strerror(-r));
		return 1;
	}
	if (control_call(path, req, stdout, err, sizeof(err)) != 0) {
		fprintf(stderr, CLI_PROG ": %s\n", err);
		return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* save FILE: the collector's working directory is not ours, so a relative
 * path is made absolute here. */
static int remote_save(const char *socket, int argc, char **argv)
{
	char req[PATH_MAX + 64], dir[PATH_MAX];
	const char *file;

	if (optind + 1 != argc)
		return cli_usage_error(&usage_cli, "%s", "save needs exactly "
				       "one FILE");
	file = argv[optind];
	if (!*file || strpbrk(file, "\t\n"))
		return cli_usage_error(&usage_cli, "bad file name '%s'", file);
	if (file[0] == '/') {
		(void)snprintf(req, sizeof(req), "save\t%s", file);
	} else {
		if (!getcwd(dir, sizeof(dir))) {
			fprintf(stderr, CLI_PROG ": getcwd: %s\n",
				strerror(errno));
			return 1;
		}
		(void)snprintf(req, sizeof(req), "save\t%s/%s", dir, file);
	}
	return remote_call(socket, req);
}

int remote_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_ARG("endpoint", 'e'), CLI_ARG("function", 'f'),
		CLI_ARG("socket", OPT_SOCKET), CLI_HELP, {0},
	};
	const char *cmd = argv[0];
	const char *endpoint = "", *function = "", *socket = NULL;
	char req[PATH_MAX + 64];
	bool dump = strcmp(cmd, "dump") == 0;
	int c;

	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == OPT_SOCKET) {
			socket = optarg;
		} else if (c != 'e' && c != 'f') {
			return cli_help_or_bad(&usage_cli, c,
					       "bad option for %s", cmd);
		} else if (!dump) {
			return cli_usage_error(&usage_cli, "%s takes no "
					       "--endpoint or --function", cmd);
		} else if (strpbrk(optarg, "\t\n")) {
			return cli_usage_error(&usage_cli, "'%s' has a tab or "
					       "newline", optarg);
		} else if (c == 'e') {
			endpoint = optarg;
		} else {
			function = optarg;
		}
	}
	if (!dump && strcmp(cmd, "reset") != 0)
		return remote_save(socket, argc, argv);
	if (optind < argc)
		return cli_usage_error(&usage_cli, "unexpected argument '%s'",
				       argv[optind]);
	if (dump)
		(void)snprintf(req, sizeof(req), "dump\t%s\t%s", endpoint,
			       function);
	else
		(void)snprintf(req, sizeof(req), "reset");
	return remote_call(socket, req);
}

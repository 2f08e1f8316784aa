/*
 * main.c — profshim-collector's command line: which command runs. Each
 * command parses its own arguments (X_main) and prints its own messages.
 *
 * Exit status: 0 success, 1 the command could not do its work (no collector
 * running, unwritable file, ...), 2 bad arguments (usage on stderr).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/diff.h"
#include "cmd/gc.h"
#include "cmd/record.h"
#include "cmd/remote.h"
#include "cmd/report.h"
#include "cmd/top.h"
#include "cmd/usage.h"
#include "util/cli.h"

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} cmds[] = {
		{"record", record_main}, {"gc", gc_main},
		{"report", report_main}, {"diff", diff_main}, {"top", top_main},
		{"dump", remote_main}, {"reset", remote_main},
		{"save", remote_main},
	};
	const char *cmd;

	/* libdw would fetch missing debug information over the network when
	 * DEBUGINFOD_URLS is set; a profiler should not do that unasked. */
	if (!getenv("PROFSHIM_DEBUGINFOD"))
		(void)unsetenv("DEBUGINFOD_URLS");
	if (argc < 2)
		return cli_usage_error(&usage_cli, "%s", "a command is needed");
	cmd = argv[1];
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "help") == 0)
		return cli_help(&usage_cli);
	if (strcmp(cmd, "--version") == 0) {
		puts(CLI_PROG " " PROFSHIM_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			return cmds[i].run(argc - 1, argv + 1);
	return cli_usage_error(&usage_cli, "unknown command '%s'", cmd);
}

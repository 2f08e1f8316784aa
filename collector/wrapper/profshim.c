/*
 * profshim.c — the `profshim` command: one-command entry points for users.
 * Today it has one command, `run` (run.h); the collector's own commands stay
 * in profshim-collector.
 *
 * Exit status: as the command's; 2 for an unknown command or no command.
 */
#include <stdio.h>
#include <string.h>

#include "wrapper/run.h"

static const char usage_text[] =
	"usage: profshim run [OPTIONS] -- SERVER [ARGS...]\n"
	"       profshim --help | --version\n"
	"\n";

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "profshim: no command; try 'profshim --help'\n");
		return 2;
	}
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_text, stdout);
		fputs(run_usage, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("profshim %s\n", PROFSHIM_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") == 0)
		return run_command(argc - 1, argv + 1);
	fprintf(stderr, "profshim: unknown command '%s'; try 'profshim --help'\n",
		argv[1]);
	return 2;
}

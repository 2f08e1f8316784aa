/*
 * cli.h — what the command lines of profshim-collector and profshim share:
 * the program's name, usage errors and help, getopt_long tables, and the
 * values options take (seconds, pids, bounded numbers). Each command owns
 * its options, messages and usage text; this only prints and parses them
 * the one way.
 *
 * Exit status of a usage error: CLI_EXIT_USAGE (2), the message and the
 * usage (or a hint) on stderr.
 */
#ifndef PROFSHIM_CLI_H
#define PROFSHIM_CLI_H

#include <getopt.h>
#include <stdbool.h>

#define CLI_PROG "profshim-collector"
#define CLI_EXIT_USAGE 2
/*
 * Exit status of `profshim-collector record --pid` that read nothing (no
 * request, no sample) and refused rings of the processes it recorded: the
 * profile is written, empty, and the line before says which rings and
 * what to do. `profshim run` reports it as its own failure.
 */
#define CLI_EXIT_UNREAD 3

/* One command line's voice. */
struct cli {
	const char *name;   /* what its messages begin with ("profshim run") */
	const char *usage;  /* its help text: -h, and after a usage error */
	const char *hint;   /* NULL, or what a usage error ends with instead
			     * of the usage ("; try 'profshim run --help'") */
};

/* getopt_long table entries: an option with a value, one without, -h. */
#define CLI_ARG(name, key) {name, required_argument, NULL, key}
#define CLI_FLAG(name, key) {name, no_argument, NULL, key}
#define CLI_HELP CLI_FLAG("help", 'h')

/*
 * Print "NAME: <message>" and then the usage text (blank line between) or
 * the hint on stderr. Returns CLI_EXIT_USAGE.
 */
int cli_usage_error(const struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print the usage text on stdout. Returns 0 (the exit status of -h). */
int cli_help(const struct cli *c);

/*
 * The end of a command's option switch, for an option it does not take
 * itself: -h (opt 'h') prints the help and returns 0; anything else is a
 * usage error with this message (as cli_usage_error()).
 */
int cli_help_or_bad(const struct cli *c, int opt, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The message of a bad option, for commands that name it: the option as
 * given (argv[optind - 1]), then the command. */
#define CLI_BAD_OPTION "bad option '%s' for %s (unknown, or without its value)"

/*
 * The whole of s as a number from lo to hi (lo itself excluded when
 * `above_lo`): no trailing text, no NaN, nothing out of range. 0 or
 * -EINVAL.
 */
int cli_parse_number(const char *s, double lo, bool above_lo, double hi,
		     double *ret);

/* A number of seconds (or milliseconds) above 0, at most 1e9. */
int cli_parse_seconds(const char *s, double *ret);

/* The whole of s as a decimal whole number from lo to hi. 0 or -EINVAL. */
int cli_parse_long(const char *s, long lo, long hi, long *ret);

/* A process id: a whole number from 1 to INT_MAX. 0 or -EINVAL. */
int cli_parse_pid(const char *s, int *ret);

#endif /* PROFSHIM_CLI_H */

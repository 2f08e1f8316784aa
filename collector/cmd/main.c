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

#define PROG "profshim-collector"

static const char usage_text[] =
	"usage: " PROG " COMMAND [OPTIONS]\n"
	"\n"
	"Collects what libprofshim.so records in servers started with\n"
	"  LD_PRELOAD=/path/to/libprofshim.so ENABLE_PROFILING=true SERVER\n"
	"\n"
	"commands:\n"
	"  record [--pid PID] [--ring PATH] [--out FILE] [--duration S]\n"
	"         [--slow-ms N] [--checkpoint S]\n"
	"         attach to every ring of this user (present and future), or to\n"
	"         PID and its descendants, or to one ring file; on Ctrl-C or\n"
	"         SIGTERM, after S seconds, or when the PID tree has exited,\n"
	"         write FILE (default profshim.json) and exit 0. Each ?profile=1\n"
	"         request gets a line on stderr as it completes; --slow-ms N\n"
	"         prints a JSON line on stdout per request slower than N ms.\n"
	"         FILE is also a checkpoint, rewritten every S seconds (default\n"
	"         1, 0: never): a collector killed and started again with the\n"
	"         same --out resumes it and counts every request exactly once\n"
	"         [--http [ADDR:]PORT --api-key-file FILE [--save-dir DIR]]\n"
	"         serve the HTTP API (data, reset, save, report.html, metrics)\n"
	"         on ADDR (default 127.0.0.1); every request must carry the key\n"
	"         in FILE (mode 0600) as X-API-Key or Authorization: Bearer;\n"
	"         a changed FILE is read again within a second (key rotation);\n"
	"         saves only into DIR\n"
	"         [--push URL [--push-interval S] [--app NAME] [--tag K=V]...\n"
	"          [--push-format pprof|folded]]\n"
	"         every S seconds (default 10) push the samples since the last\n"
	"         push to the Pyroscope-compatible store at URL as NAME{K=V,...}\n"
	"         (default name profshim); $PYROSCOPE_AUTH_TOKEN, when set, is\n"
	"         sent as a bearer token\n"
	"  dump [--endpoint E] [--function NAME]\n"
	"         print the running collector's profile JSON; --endpoint keeps\n"
	"         one endpoint (\"GET /users/:id\"), --function keeps only stacks\n"
	"         passing through NAME\n"
	"  reset  clear the running collector's statistics\n"
	"  save FILE\n"
	"         write the running collector's profile JSON to FILE\n"
	"  report [--input FILE] [--format F] [--endpoint E] [--request ID]\n"
	"         [--function NAME] [--output FILE]\n"
	"         a report from a saved profile or the running collector: json,\n"
	"         folded, pprof, speedscope, html or prometheus\n"
	"  diff BASE NEW [--format text|json|html] [--endpoint E]\n"
	"         what changed between two saved profiles\n"
	"  top [--once] [--interval S]\n"
	"         live view of the running collector; q quits\n"
	"  gc [--dry-run] [--verbose]\n"
	"         remove rings (in /dev/shm) of your processes that have exited,\n"
	"         after the running collector (if any) has drained them\n"
	"\n"
	"options for every command:\n"
	"  --socket PATH  the control socket (default: $PROFSHIM_SOCKET, else\n"
	"                 $XDG_RUNTIME_DIR/profshim/collector.sock, else\n"
	"                 /tmp/profshim-UID/collector.sock)\n"
	"  -h, --help     this text\n"
	"  --version      print the version\n";

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\n%s", usage_text);
	return 2;
}

enum { OPT_SOCKET = 1000, OPT_VERSION, OPT_SHM_DIR, OPT_SLOW_MS,
       OPT_CHECKPOINT, OPT_HTTP, OPT_API_KEY_FILE, OPT_SAVE_DIR, OPT_PUSH,
       OPT_PUSH_INTERVAL, OPT_PUSH_FORMAT, OPT_APP, OPT_TAG };

static int parse_pid(const char *s, int *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static int parse_seconds(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || end == s || !(v > 0) || v > 1e9)
		return -EINVAL;
	*ret = v;
	return 0;
}

#define RECORD_TAGS_MAX 32
#define RECORD_TAGS_MAX_TEXT "32"

/* Options of record that only make sense together. 0, or 2 after usage. */
static int record_check(const struct record_opts *o, int argc, char **argv)
{
	if (optind < argc)
		return usage_error("record takes no argument '%s'", argv[optind]);
	if (o->pid && o->ring)
		return usage_error("%s", "--pid and --ring cannot go together");
	if (o->http && !o->api_key_file)
		return usage_error("%s", "--http needs --api-key-file FILE (a "
				   "file of mode 0600 holding the key clients "
				   "send)");
	if (!o->http && (o->api_key_file || o->save_dir))
		return usage_error("%s", "--api-key-file and --save-dir go "
				   "with --http");
	if (!o->push_url && (o->push_ntags || strcmp(o->push_app, "profshim") ||
			     o->push_interval != 10.0 ||
			     strcmp(o->push_format, "pprof")))
		return usage_error("%s", "--tag, --app, --push-interval and "
				   "--push-format go with --push URL");
	return 0;
}

static int cmd_record(int argc, char **argv)
{
	static const struct option opts[] = {
		{"pid", required_argument, NULL, 'p'},
		{"ring", required_argument, NULL, 'r'},
		{"out", required_argument, NULL, 'o'},
		{"duration", required_argument, NULL, 'd'},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"shm-dir", required_argument, NULL, OPT_SHM_DIR},
		{"slow-ms", required_argument, NULL, OPT_SLOW_MS},
		{"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
		{"http", required_argument, NULL, OPT_HTTP},
		{"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
		{"save-dir", required_argument, NULL, OPT_SAVE_DIR},
		{"push", required_argument, NULL, OPT_PUSH},
		{"push-interval", required_argument, NULL, OPT_PUSH_INTERVAL},
		{"push-format", required_argument, NULL, OPT_PUSH_FORMAT},
		{"app", required_argument, NULL, OPT_APP},
		{"tag", required_argument, NULL, OPT_TAG},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct record_opts o = {.out = "profshim.json", .shm_dir = "/dev/shm",
				.checkpoint = 1.0, .push_interval = 10.0,
				.push_app = "profshim", .push_format = "pprof"};
	/* --tag values point into argv. */
	static const char *tags[RECORD_TAGS_MAX];
	int c;

	o.push_tags = tags;

	while ((c = getopt_long(argc, argv, "+p:r:o:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (parse_pid(optarg, &o.pid) < 0)
				return usage_error("--pid needs a process id, "
						   "not '%s'", optarg);
			break;
		case 'r':
			o.ring = optarg;
			break;
		case 'o':
			o.out = optarg;
			break;
		case 'd':
			if (parse_seconds(optarg, &o.duration) < 0)
				return usage_error("--duration needs a number "
						   "of seconds above 0, not '%s'",
						   optarg);
			break;
		case OPT_SOCKET:
			o.socket = optarg;
			break;
		case OPT_SHM_DIR:
			o.shm_dir = optarg;
			break;
		case OPT_SLOW_MS:
			if (parse_seconds(optarg, &o.slow_ms) < 0)
				return usage_error("--slow-ms needs a number of "
						   "milliseconds above 0, not '%s'",
						   optarg);
			break;
		case OPT_CHECKPOINT:
			if (strcmp(optarg, "0") == 0)
				o.checkpoint = 0;
			else if (parse_seconds(optarg, &o.checkpoint) < 0)
				return usage_error("--checkpoint needs a number "
						   "of seconds (0: no "
						   "checkpoints), not '%s'",
						   optarg);
			break;
		case OPT_HTTP:
			o.http = optarg;
			break;
		case OPT_API_KEY_FILE:
			o.api_key_file = optarg;
			break;
		case OPT_SAVE_DIR:
			o.save_dir = optarg;
			break;
		case OPT_PUSH:
			o.push_url = optarg;
			break;
		case OPT_PUSH_INTERVAL:
			if (parse_seconds(optarg, &o.push_interval) < 0)
				return usage_error("--push-interval needs a "
						   "number of seconds above 0, "
						   "not '%s'", optarg);
			break;
		case OPT_PUSH_FORMAT:
			if (strcmp(optarg, "pprof") != 0 &&
			    strcmp(optarg, "folded") != 0)
				return usage_error("--push-format is pprof or "
						   "folded, not '%s'", optarg);
			o.push_format = optarg;
			break;
		case OPT_APP:
			o.push_app = optarg;
			break;
		case OPT_TAG:
			if (o.push_ntags == RECORD_TAGS_MAX)
				return usage_error("at most %s --tag options",
						   RECORD_TAGS_MAX_TEXT);
			tags[o.push_ntags++] = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage_error("%s", "bad option for record");
		}
	}
	c = record_check(&o, argc, argv);
	return c ? c : record_run(&o);
}

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
		return cmd_record(argc - 1, argv + 1);
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

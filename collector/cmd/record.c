/*
 * record.c — `profshim-collector record` (see record.h): its options, and
 * the collector's main loop.
 *
 * Single-threaded: every ~10 ms it drains each attached ring, every 100 ms
 * it looks for new rings and for processes that have ended, and in between
 * it answers control requests. A ring whose process has ended is drained to
 * the last record, its module map kept for symbols, and its file removed.
 * The rings are record_rings.c, the profile and its checkpoints
 * record_checkpoint.c, the control socket, HTTP API and pushes
 * record_serve.c.
 */
#include "cmd/record_impl.h"
#include "cmd/usage.h"
#include "util/cli.h"
#include "util/clock.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "util/control.h"
#include "services/httpapi.h"
#include "services/push.h"
#include "ingest/reader.h"
#include "model/stats.h"
#include "symbols/symbols.h"

#define RECORD_SCAN_NS 100000000ull
/* An idle loop waits 10 ms, then 20 ms while turns find nothing to read.
 * A ring must hold what arrives during the longest wait, also at
 * the start of a burst after a quiet spell: with 100 ms, the per-sample
 * benchmark's bursts (600,000 samples a second) overflowed the default
 * ring and 80.6-82.6% of samples were recorded, against 88.7-100.2% at
 * 20 ms (and 89.5-100.2% with a fixed 10 ms wait). Control requests and
 * the HTTP API wake it at once. */
#define RECORD_IDLE_MIN_MS 10
#define RECORD_IDLE_MAX_MS 20

#define RECORD_TAGS_MAX 32
#define RECORD_TAGS_MAX_TEXT "32"

enum { OPT_SOCKET = 1000, OPT_SHM_DIR, OPT_SLOW_MS, OPT_CHECKPOINT, OPT_HTTP,
       OPT_API_KEY_FILE, OPT_SAVE_DIR, OPT_PUSH, OPT_PUSH_INTERVAL,
       OPT_PUSH_FORMAT, OPT_APP, OPT_TAG, OPT_DEBUG_DIR };

static volatile sig_atomic_t record_stop;

static void record_on_signal(int sig)
{
	(void)sig;
	record_stop = 1;
}

/* Options of record that only make sense together. 0, or 2 after usage. */
static int record_check(const struct record_opts *o, int argc, char **argv)
{
	if (optind < argc)
		return cli_usage_error(&usage_cli, "record takes no argument "
				       "'%s'", argv[optind]);
	if (o->pid && o->ring)
		return cli_usage_error(&usage_cli, "%s", "--pid and --ring "
				       "cannot go together");
	if (o->http && !o->api_key_file)
		return cli_usage_error(&usage_cli, "%s", "--http needs "
				       "--api-key-file FILE (a file of mode "
				       "0600 holding the key clients send)");
	if (!o->http && (o->api_key_file || o->save_dir))
		return cli_usage_error(&usage_cli, "%s", "--api-key-file and "
				       "--save-dir go with --http");
	if (!o->push_url && (o->push_ntags || strcmp(o->push_app, "profshim") ||
			     o->push_interval != 10.0 ||
			     strcmp(o->push_format, "pprof")))
		return cli_usage_error(&usage_cli, "%s", "--tag, --app, "
				       "--push-interval and --push-format go "
				       "with --push URL");
	return 0;
}

/* Where an option kept as given goes, or NULL for the others. */
static const char **record_text(struct record_opts *o, int c)
{
	static const int keys[] = {'r', 'o', OPT_SOCKET, OPT_SHM_DIR, OPT_HTTP,
				   OPT_API_KEY_FILE, OPT_SAVE_DIR, OPT_PUSH,
				   OPT_APP, OPT_DEBUG_DIR};
	const char **fields[] = {&o->ring, &o->out, &o->socket, &o->shm_dir,
				 &o->http, &o->api_key_file, &o->save_dir,
				 &o->push_url, &o->push_app, &o->debug_dirs};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i] == c)
			return fields[i];
	return NULL;
}

/*
 * Where an option taking a number above 0 goes (seconds, or for --slow-ms
 * milliseconds: *unit), or NULL for the others.
 */
static double *record_number(struct record_opts *o, int c, const char **name,
			     const char **unit)
{
	static const int keys[] = {'d', OPT_SLOW_MS, OPT_PUSH_INTERVAL};
	static const char *const names[] = {"--duration", "--slow-ms",
					    "--push-interval"};
	double *fields[] = {&o->duration, &o->slow_ms, &o->push_interval};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i] == c) {
			*name = names[i];
			*unit = c == OPT_SLOW_MS ? "milliseconds" : "seconds";
			return fields[i];
		}
	}
	return NULL;
}

/* One option into o. Returns -1 when it was taken, else the exit status. */
static int record_option(struct record_opts *o, int c, const char **tags)
{
	const char **text = record_text(o, c), *name, *unit;
	double *number = record_number(o, c, &name, &unit);

	if (text) {
		*text = optarg;
		return -1;
	}
	if (number) {
		if (cli_parse_seconds(optarg, number) < 0)
			return cli_usage_error(&usage_cli, "%s needs a "
					       "number of %s above 0, not "
					       "'%s'", name, unit, optarg);
		return -1;
	}
	switch (c) {
	case 'p':
		if (cli_parse_pid(optarg, &o->pid) < 0)
			return cli_usage_error(&usage_cli, "--pid needs a "
					       "process id, not '%s'", optarg);
		break;
	case OPT_CHECKPOINT:
		if (strcmp(optarg, "0") == 0)
			o->checkpoint = 0;
		else if (cli_parse_seconds(optarg, &o->checkpoint) < 0)
			return cli_usage_error(&usage_cli, "--checkpoint "
					       "needs a number of seconds (0: "
					       "no checkpoints), not '%s'",
					       optarg);
		break;
	case OPT_PUSH_FORMAT:
		if (strcmp(optarg, "pprof") != 0 &&
		    strcmp(optarg, "folded") != 0)
			return cli_usage_error(&usage_cli, "--push-format is "
					       "pprof or folded, not '%s'",
					       optarg);
		o->push_format = optarg;
		break;
	case OPT_TAG:
		if (o->push_ntags == RECORD_TAGS_MAX)
			return cli_usage_error(&usage_cli, "at most %s --tag "
					       "options", RECORD_TAGS_MAX_TEXT);
		tags[o->push_ntags++] = optarg;
		break;
	default:
		return cli_help_or_bad(&usage_cli, c, "%s",
				       "bad option for record");
	}
	return -1;
}

int record_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_ARG("pid", 'p'), CLI_ARG("ring", 'r'), CLI_ARG("out", 'o'),
		CLI_ARG("duration", 'd'), CLI_ARG("socket", OPT_SOCKET),
		CLI_ARG("shm-dir", OPT_SHM_DIR),
		CLI_ARG("slow-ms", OPT_SLOW_MS),
		CLI_ARG("checkpoint", OPT_CHECKPOINT),
		CLI_ARG("http", OPT_HTTP), CLI_ARG("save-dir", OPT_SAVE_DIR),
		CLI_ARG("api-key-file", OPT_API_KEY_FILE),
		CLI_ARG("push", OPT_PUSH), CLI_ARG("app", OPT_APP),
		CLI_ARG("push-interval", OPT_PUSH_INTERVAL),
		CLI_ARG("push-format", OPT_PUSH_FORMAT),
		CLI_ARG("tag", OPT_TAG), CLI_ARG("debug-dir", OPT_DEBUG_DIR),
		CLI_HELP, {0},
	};
	struct record_opts o = {.out = "profshim.json", .shm_dir = "/dev/shm",
				.checkpoint = 1.0, .push_interval = 10.0,
				.push_app = "profshim", .push_format = "pprof"};
	/* --tag values point into argv. */
	static const char *tags[RECORD_TAGS_MAX];
	int c, r;

	o.push_tags = tags;
	while ((c = getopt_long(argc, argv, "+p:r:o:d:h", opts, NULL)) != -1)
		if ((r = record_option(&o, c, tags)) >= 0)
			return r;
	r = record_check(&o, argc, argv);
	return r ? r : record_run(&o);
}

/*
 * Everything the loop needs: signals, the control socket, the aggregation,
 * a checkpoint to resume, the services; then one line saying what is
 * recorded. Returns 0, or -1 after saying why (record_close() cleans up
 * either way).
 */
static int record_open(struct recorder *rc, const struct record_opts *o)
{
	struct sigaction sa;
	int r;

	memset(rc, 0, sizeof(*rc));
	rc->o = o;
	rc->ctl = -1;
	rc->watch = -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = record_on_signal;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
	(void)signal(SIGPIPE, SIG_IGN);

	r = control_path(o->socket, 1, rc->ctl_path, sizeof(rc->ctl_path));
	if (r == 0)
		r = rc->ctl = control_listen(rc->ctl_path);
	if (r == -EADDRINUSE) {
		fprintf(stderr,
			"profshim-collector: another collector is running (it "
			"answers at %s); stop it, or give this one its own "
			"--socket\n",
			rc->ctl_path);
		return -1;
	}
	if (r < 0) {
		fprintf(stderr, "profshim-collector: control socket %s: %s\n",
			rc->ctl_path, strerror(-r));
		return -1;
	}
	rc->stats = stats_new();
	rc->syms = symbols_new();
	if (!rc->stats || !rc->syms ||
	    (o->debug_dirs && symbols_set_debug_dirs(rc->syms,
						     o->debug_dirs) < 0)) {
		fprintf(stderr, "profshim-collector: out of memory\n");
		return -1;
	}
	if (o->checkpoint > 0 && record_resume(rc) < 0)
		return -1;
	if (record_start_services(rc) < 0)
		return -1;
	/* A recording resumed after its process ended still has that
	 * process' rings to drain. */
	if (o->pid && !o->ring && !rc->resume && !record_proc(o->pid, NULL, NULL)) {
		fprintf(stderr, "profshim-collector: no running process %d\n",
			o->pid);
		return -1;
	}
	rc->last_checkpoint = clock_now_ns();
	rc->privileged = creds_privileged();
	record_watch_start(rc);
	if (o->ring)
		fprintf(stderr, "profshim-collector: reading ring %s\n", o->ring);
	else if (o->pid)
		fprintf(stderr,
			"profshim-collector: recording pid %d and its "
			"children; stops when they exit or on Ctrl-C\n",
			o->pid);
	else if (rc->privileged)
		fprintf(stderr,
			"profshim-collector: recording every profshim ring, "
			"of every user (a ring is read when root or the user "
			"its process runs as owns it); stop with Ctrl-C\n");
	else
		fprintf(stderr,
			"profshim-collector: recording every profshim ring of "
			"uid %u; stop with Ctrl-C\n",
			(unsigned)getuid());
	return 0;
}

/* Print what the symbolizer has to say (perf maps refused or capped). */
static void record_say_symbols(struct recorder *rc)
{
	const char *w;

	while ((w = symbols_warning(rc->syms)) != NULL)
		fprintf(stderr, "profshim-collector: %s\n", w);
}

/*
 * Read, answer and checkpoint until stopped: a signal, --duration, or the
 * end of what is recorded (record_done()).
 */
static void record_loop(struct recorder *rc)
{
	const struct record_opts *o = rc->o;
	uint64_t start = clock_now_ns(), last_scan = 0;
	int idle_ms = RECORD_IDLE_MIN_MS;
	bool ctl_maybe = true;

	while (!record_stop) {
		uint64_t now = clock_now_ns();
		size_t n;

		if (now - last_scan >= RECORD_SCAN_NS) {
			last_scan = now;
			record_scan(rc);
			if (rc->resume) {
				/* The checkpoint's rings present are
				 * attached now; the rest are gone. */
				record_resume_gone(rc);
				json_decref(rc->resume);
				rc->resume = NULL;
			}
			record_reap(rc);
			if (record_done(rc))
				break;
		}
		if (o->duration > 0 && (double)(now - start) / 1e9 >= o->duration)
			break;
		record_watch(rc);
		n = record_drain_all(rc, false);
		record_say_symbols(rc);
		if (ctl_maybe)
			record_control(rc);
		if (rc->http)
			httpapi_run(rc->http);
		if (rc->push)
			push_step(rc->push, now, record_snapshot, rc);
		if (record_checkpoint_due(rc, now))
			(void)record_checkpoint(rc);
		if (n > 0 || record_push_busy(rc))
			idle_ms = RECORD_IDLE_MIN_MS;
		ctl_maybe = true;
		if (n == 0) {
			struct pollfd p[3] = {
				{.fd = rc->ctl, .events = POLLIN},
				{.fd = rc->http ? httpapi_fd(rc->http) : -1,
				 .events = POLLIN},
				{.fd = rc->watch, .events = POLLIN},
			};

			/* A wait that ran out leaves nothing to accept. */
			ctl_maybe = poll(p, 3, idle_ms) != 0;
			idle_ms = RECORD_IDLE_MAX_MS;
		}
	}
}

/*
 * The final write: drain dry, write the profile (not a checkpoint), say
 * what it holds and which rings it could not read, push the last interval.
 * Returns the exit status: CLI_EXIT_UNREAD when a --pid recording read
 * nothing but refused rings of its processes (they served, and the
 * profile is empty for want of the right user).
 */
static int record_finish(struct recorder *rc)
{
	const struct record_opts *o = rc->o;
	uint64_t reqs, samples, eps;
	char err[512];

	(void)record_drain_all(rc, true);
	if (record_write(rc, o->out, NULL, err, sizeof(err)) < 0) {
		record_say_symbols(rc);
		fprintf(stderr, "profshim-collector: %s\n", err);
		return 1;
	}
	record_say_symbols(rc);
	/* The profile holds everything read: the rings may have it back. */
	for (size_t i = 0; i < rc->natt; i++)
		reader_release(rc->att[i].r, reader_position(rc->att[i].r));
	stats_totals(rc->stats, &reqs, &samples, &eps);
	fprintf(stderr,
		"profshim-collector: wrote %s: %llu requests in %llu "
		"endpoints, %llu samples\n",
		o->out, (unsigned long long)reqs, (unsigned long long)eps,
		(unsigned long long)samples);
	record_say_refused(rc, reqs == 0 && samples == 0);
	/* The last interval's samples go to the store too, if it answers
	 * soon: a stopping collector waits for it at most this long. */
	if (rc->push)
		push_finish(rc->push, record_snapshot_as_written, rc, 5.0);
	return o->pid && rc->refused && reqs == 0 && samples == 0
		       ? CLI_EXIT_UNREAD : 0;
}

/* Release what record_open() set up, however far it got. */
static void record_close(struct recorder *rc)
{
	httpapi_stop(rc->http);
	push_free(rc->push);
	for (size_t i = 0; i < rc->natt; i++)
		reader_close(rc->att[i].r);
	free(rc->att);
	for (size_t i = 0; i < rc->nignored; i++)
		free(rc->ignored[i]);
	free(rc->ignored);
	if (rc->ctl >= 0) {
		(void)close(rc->ctl);
		(void)unlink(rc->ctl_path);
	}
	if (rc->watch >= 0)
		(void)close(rc->watch);
	json_decref(rc->resume);
	free(rc->seen);
	stats_free(rc->stats);
	symbols_free(rc->syms);
}

int record_run(const struct record_opts *o)
{
	struct recorder rc;
	int status = 1;

	if (record_open(&rc, o) == 0) {
		record_loop(&rc);
		status = record_finish(&rc);
	}
	record_close(&rc);
	return status;
}

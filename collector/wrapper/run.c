/*
 * run.c — `profshim run`: start a collector, run one server under the shim,
 * forward signals to it, and turn its profile into an HTML report when it
 * exits. The contract is in run.h.
 *
 * Order of events: the server is forked first but waits on a pipe before
 * exec, so the collector can be given its pid; the collector is started on a
 * private control socket, and only once it answers there (it answers only
 * after it has checked that the pid is alive) is the server released to
 * exec. So the collector is reading before the server's first request, and
 * even a server that exits at once has its rings drained.
 *
 * Signals: profshim blocks the signals it forwards and SIGCHLD and takes them
 * with sigtimedwait, so it runs no signal handler at all. A signal the kernel
 * sent (si_code SI_KERNEL: Ctrl-C, Ctrl-\ or a hangup from the terminal) has
 * already reached the server too when it shares profshim's process group,
 * and is not sent a second time; a signal another process sent to profshim
 * (kill, a supervisor) is passed on. The collector runs in a process group
 * of its own, so Ctrl-C does not stop it before the server has finished: it
 * ends by itself when the server and its children have exited.
 *
 * Where things are found is run_locate.c; starting and waiting for
 * processes, run_spawn.c.
 */
#include "wrapper/run.h"
#include "wrapper/run_impl.h"
#include "util/cli.h"
#include "util/clock.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/*
 * How long after the server has exited the collector may keep recording
 * children the server left running, before it is told to write what it
 * has.
 */
#define RUN_LINGER_NS (10ull * 1000000000ull)

/* What a phase of the session returns to go on to the next. */
#define RUN_ON -1

const char run_usage[] =
	"usage: profshim run [--rate R] [--hz N] [--clock cpu|wall]\n"
	"                    [--mode request|continuous] [--out FILE]\n"
	"                    [--] SERVER [ARGS...]\n"
	"\n"
	"Runs SERVER with libprofshim.so preloaded and a collector recording\n"
	"it; when SERVER exits, writes the profile to FILE (default\n"
	"profshim.json) and the HTML report beside it (FILE with .json\n"
	"replaced by .html), and exits with SERVER's exit status (128+N when\n"
	"signal N killed it). SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and\n"
	"SIGUSR2 sent to profshim are passed on to SERVER.\n"
	"\n"
	"options (each sets the shim's variable; without it, the variable in\n"
	"your environment, if any, applies):\n"
	"  --rate R    PROFILING_SAMPLE_RATE: share of requests sampled, 0 to 1\n"
	"  --hz N      PROFILING_HZ: samples per second, 1 to 10000\n"
	"  --clock C   PROFILING_CLOCK: cpu (CPU time) or wall (wall time)\n"
	"  --mode M    PROFILING_MODE: request (inside requests) or continuous\n"
	"  --out FILE  the profile to write (default profshim.json)\n"
	"  -h, --help  this text\n"
	"\n"
	"The first argument that is not an option starts the server command;\n"
	"'--' before it is needed only when SERVER itself begins with '-'.\n"
	"libprofshim.so and profshim-collector are looked for beside profshim\n"
	"(build tree or installed layout); PROFSHIM_LIB and PROFSHIM_COLLECTOR\n"
	"name them instead.\n"
	"\n"
	"exit status: SERVER's; 1 profshim failed (no profile written, nothing\n"
	"recorded because the collector could not read SERVER's rings, a file\n"
	"not found; SERVER's status wins when it is not 0); 2 bad usage;\n"
	"126 SERVER cannot be executed; 127 SERVER not found\n";

static const struct cli run_cli = {.name = "profshim run",
				   .usage = run_usage,
				   .hint = "; try 'profshim run --help'"};

/* The options that set one of the shim's variables, in this order. */
enum { RUN_RATE, RUN_HZ, RUN_CLOCK, RUN_MODE, RUN_NVARS };

struct run_opts {
	const char *vars[RUN_NVARS];          /* NULL: leave the environment */
	const char *out;
	char **argv;                          /* the server command */
};

static bool run_valid_rate(const char *s)
{
	double v;

	return cli_parse_number(s, 0, false, 1, &v) == 0;
}

static bool run_valid_hz(const char *s)
{
	long v;

	return cli_parse_long(s, 1, 10000, &v) == 0;
}

static bool run_valid_clock(const char *s)
{
	return strcmp(s, "cpu") == 0 || strcmp(s, "wall") == 0;
}

static bool run_valid_mode(const char *s)
{
	return strcmp(s, "request") == 0 || strcmp(s, "continuous") == 0;
}

/* Each variable's option (its getopt code is its index), and what a bad
 * value is told. */
static const struct run_var {
	const char *env;
	bool (*valid)(const char *s);
	const char *bad;
} run_vars[RUN_NVARS] = {
	{"PROFILING_SAMPLE_RATE", run_valid_rate,
	 "--rate needs a number from 0 to 1, not '%s'"},
	{"PROFILING_HZ", run_valid_hz,
	 "--hz needs a whole number from 1 to 10000, not '%s'"},
	{"PROFILING_CLOCK", run_valid_clock, "--clock is cpu or wall, not '%s'"},
	{"PROFILING_MODE", run_valid_mode,
	 "--mode is request or continuous, not '%s'"},
};

/*
 * Parse argv (argv[0] is "run") into o. Returns RUN_ON when parsing is done
 * and the command should run, otherwise the exit status to return at once.
 */
static int run_parse(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		CLI_ARG("rate", RUN_RATE), CLI_ARG("hz", RUN_HZ),
		CLI_ARG("clock", RUN_CLOCK), CLI_ARG("mode", RUN_MODE),
		CLI_ARG("out", 'o'), CLI_HELP, {0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->out = "profshim.json";
	opterr = 0;
	optind = 1;
	/* '+': stop at the first non-option, which starts the server command;
	 * ':': a missing option argument is told apart from an unknown one. */
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c >= 0 && c < RUN_NVARS) {
			if (!run_vars[c].valid(optarg))
				return cli_usage_error(&run_cli,
						       run_vars[c].bad, optarg);
			o->vars[c] = optarg;
			continue;
		}
		switch (c) {
		case 'o':
			if (!*optarg)
				return cli_usage_error(&run_cli, "%s", "--out "
						       "needs a file name");
			o->out = optarg;
			break;
		case 'h':
			return cli_help(&run_cli);
		case ':':
			return cli_usage_error(&run_cli, "option '%s' needs a "
					       "value", argv[optind - 1]);
		default:
			return cli_usage_error(&run_cli, "unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_usage_error(&run_cli, "%s", "no server command "
				       "given (profshim run [OPTIONS] -- "
				       "SERVER [ARGS...])");
	o->argv = argv + optind;
	return RUN_ON;
}

static bool run_has_name(const char *entry, const char *name)
{
	size_t n = strlen(name);

	return strncmp(entry, name, n) == 0 && entry[n] == '=';
}

/*
 * The server's environment: profshim's, with the shim added at the end of
 * LD_PRELOAD (what the user preloads keeps its place: a sanitizer runtime,
 * for one, must come first), ENABLE_PROFILING=true, and the variables of
 * the flags given. Returns NULL when out of memory;
 * run_env_free releases it.
 */
static char **run_env(const struct run_opts *o, const char *lib)
{
	const char *preload = getenv("LD_PRELOAD");
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 7, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool drop = run_has_name(environ[i], "LD_PRELOAD") ||
			    run_has_name(environ[i], "ENABLE_PROFILING");

		for (size_t j = 0; j < RUN_NVARS; j++)
			drop = drop ||
			       (o->vars[j] &&
				run_has_name(environ[i], run_vars[j].env));
		if (!drop)
			env[k++] = strdup(environ[i]);
		if (!drop && !env[k - 1])
			goto fail;
	}
	if (preload && *preload) {
		if (asprintf(&env[k], "LD_PRELOAD=%s:%s", preload, lib) < 0)
			goto fail;
	} else if (asprintf(&env[k], "LD_PRELOAD=%s", lib) < 0) {
		goto fail;
	}
	k++;
	if (!(env[k++] = strdup("ENABLE_PROFILING=true")))
		goto fail;
	for (size_t j = 0; j < RUN_NVARS; j++) {
		if (!o->vars[j])
			continue;
		if (asprintf(&env[k], "%s=%s", run_vars[j].env, o->vars[j]) < 0)
			goto fail;
		k++;
	}
	env[k] = NULL;
	return env;
fail:
	env[k] = NULL;
	for (size_t i = 0; env[i]; i++)
		free(env[i]);
	free(env);
	return NULL;
}

static void run_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* What a session has started and where it stands; run_cleanup() undoes
 * it, however far it got. */
struct run_state {
	const struct run_opts *o;
	struct run_paths *p;
	const sigset_t *mask;  /* the mask profshim started with */
	const sigset_t *set;   /* the forwarded signals and SIGCHLD, blocked */
	char **env;            /* the server's environment */
	pid_t server, collector;
	int go_fd, err_fd;     /* the waiting server's pipes */
	int st, cst;           /* the server's and the collector's exits */
	bool server_gone, collector_gone;
};

/*
 * The phases of a session, in order. Each prints its own messages and
 * returns RUN_ON to go on, or the exit status.
 */

/* Locate: the server's executable, the shim, the collector, the report. */
static int run_locate_all(struct run_state *s)
{
	const struct run_opts *o = s->o;
	struct run_paths *p = s->p;
	char err[sizeof(p->tried) + 2 * PATH_MAX];
	int r = run_which(o->argv[0], p->server, sizeof(p->server));

	if (r < 0) {
		fprintf(stderr, "profshim: %s: %s\n", o->argv[0],
			r == -ENOENT && !strchr(o->argv[0], '/')
				? "command not found" : strerror(-r));
		return r == -ENOENT ? 127 : 126;
	}
	if (run_locate(p, err, sizeof(err)) < 0) {
		fprintf(stderr, "profshim: %s\n", err);
		return 1;
	}
	if (run_html_path(o->out, p->html, sizeof(p->html)) < 0) {
		fprintf(stderr, "profshim: --out %s: name too long\n", o->out);
		return 1;
	}
	return RUN_ON;
}

/* The server's environment and the collector's socket directory. */
static int run_prepare(struct run_state *s)
{
	int r;

	s->env = run_env(s->o, s->p->lib);
	if (!s->env) {
		fprintf(stderr, "profshim: out of memory\n");
		return 1;
	}
	r = run_socket_dir(s->p);
	if (r < 0) {
		fprintf(stderr, "profshim: cannot make a directory for the "
				"collector's socket: %s\n", strerror(-r));
		return 1;
	}
	return RUN_ON;
}

/* Fork the server to wait, start the collector on its pid, wait until the
 * collector answers. */
static int run_start_collector(struct run_state *s)
{
	const struct run_opts *o = s->o;
	struct run_paths *p = s->p;
	char pidbuf[16];
	int r;

	r = run_fork_server(p->server, o->argv, s->env, s->mask, &s->server,
			    &s->go_fd, &s->err_fd);
	if (r < 0) {
		fprintf(stderr, "profshim: cannot start %s: %s\n", o->argv[0],
			strerror(-r));
		return 1;
	}
	/* --checkpoint 0: each run profiles a new process; a checkpoint left
	 * in FILE by an earlier, interrupted run must not be resumed into
	 * this one. */
	(void)snprintf(pidbuf, sizeof(pidbuf), "%d", (int)s->server);
	{
		char *cargv[] = {p->collector, "record", "--pid", pidbuf,
				 "--out", (char *)o->out, "--socket", p->sock,
				 "--checkpoint", "0", NULL};

		r = run_spawn(p->collector, cargv, true, s->mask,
			      &s->collector);
	}
	if (r < 0) {
		fprintf(stderr, "profshim: cannot start %s: %s\n", p->collector,
			strerror(-r));
		return 1;
	}
	r = run_wait_ready(p->sock, s->collector, &s->cst);
	if (r == -ECHILD) {
		s->collector_gone = true;
		fprintf(stderr, "profshim: the collector failed to start (exit "
				"status %d); the server was not started\n",
			run_status(s->cst));
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "profshim: the collector did not answer on %s: "
				"%s; the server was not started\n", p->sock,
			strerror(-r));
		return 1;
	}
	return RUN_ON;
}

/* Release the server; its exec error, if any, comes back on err_fd. */
static int run_release_server(struct run_state *s)
{
	ssize_t n;
	int e = 0;

	if (write(s->go_fd, "g", 1) != 1) {
		fprintf(stderr, "profshim: cannot start %s: %s\n",
			s->o->argv[0], strerror(errno));
		return 1;
	}
	(void)close(s->go_fd);
	s->go_fd = -1;
	do
		n = read(s->err_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	(void)close(s->err_fd);
	s->err_fd = -1;
	if (n == (ssize_t)sizeof(e)) {
		fprintf(stderr, "profshim: cannot execute %s: %s\n",
			s->p->server, strerror(e));
		return e == ENOENT ? 127 : 126;
	}
	return RUN_ON;
}

/* Whether pid has exited (its status in *st); *gone says it from then on. */
static bool run_exited(pid_t pid, int *st, bool *gone)
{
	if (waitpid(pid, st, WNOHANG) != pid)
		return false;
	*gone = true;
	return true;
}

/* Until the server exits, pass signals on to it. */
static int run_wait_server(struct run_state *s)
{
	while (!run_exited(s->server, &s->st, &s->server_gone)) {
		siginfo_t si;
		int sig;

		if (!s->collector_gone &&
		    run_exited(s->collector, &s->cst, &s->collector_gone))
			fprintf(stderr, "profshim: the collector exited while "
					"the server runs (exit status %d); no "
					"profile will be written\n",
				run_status(s->cst));
		sig = run_wait_signal(s->set, &si);
		if (sig && sig != SIGCHLD && run_should_forward(&si, s->server))
			(void)kill(s->server, sig);
	}
	return RUN_ON;
}

/*
 * The collector ends by itself once the server and its children are gone
 * and their rings drained; children left running past RUN_LINGER_NS, or a
 * signal to profshim now, make it stop and write what it has.
 */
static int run_wait_collector(struct run_state *s)
{
	uint64_t server_end = clock_now_ns();
	bool stopped = false;

	while (!s->collector_gone &&
	       !run_exited(s->collector, &s->cst, &s->collector_gone)) {
		siginfo_t si;
		int sig;

		sig = run_wait_signal(s->set, &si);
		if (!stopped && ((sig && sig != SIGCHLD) ||
				 clock_now_ns() - server_end > RUN_LINGER_NS)) {
			if (!sig || sig == SIGCHLD)
				fprintf(stderr, "profshim: processes the server "
						"started still run; writing the "
						"profile now\n");
			(void)kill(s->collector, SIGINT);
			stopped = true;
		}
	}
	s->collector = -1;
	return RUN_ON;
}

/*
 * The HTML report beside the profile; the exit status: the server's, or 1
 * when it was 0 and profshim failed. A collector that could not read the
 * server's rings (CLI_EXIT_UNREAD) wrote an empty profile and named the
 * rings, which stay in /dev/shm: the one who can read them may still (they
 * belong to the user the server ran as, whom profshim could not act for);
 * profshim says nothing was recorded and fails.
 */
static int run_report(struct run_state *s)
{
	const struct run_opts *o = s->o;
	struct run_paths *p = s->p;
	int status = run_status(s->st), rst = 0, r;
	bool unread = WIFEXITED(s->cst) &&
		      WEXITSTATUS(s->cst) == CLI_EXIT_UNREAD;
	pid_t rep;

	if (!WIFEXITED(s->cst) || (WEXITSTATUS(s->cst) != 0 && !unread) ||
	    access(o->out, R_OK) < 0) {
		fprintf(stderr, "profshim: no profile written to %s (collector "
				"exit status %d)\n", o->out,
			run_status(s->cst));
		return status ? status : 1;
	}
	{
		char *rargv[] = {p->collector, "report", "--input", (char *)o->out,
				 "--format", "html", "--output", p->html, NULL};

		r = run_spawn(p->collector, rargv, false, s->mask, &rep);
		if (r == 0)
			rst = run_reap(rep);
	}
	if (r < 0 || !WIFEXITED(rst) || WEXITSTATUS(rst) != 0) {
		fprintf(stderr, "profshim: profile in %s; the HTML report could "
				"not be written to %s%s%s\n", o->out, p->html,
			r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
		return status ? status : 1;
	}
	if (unread) {
		fprintf(stderr, "profshim: nothing recorded: the collector "
				"could not read the server's rings (the line "
				"above names them and says what to do); %s and "
				"%s are empty\n", o->out, p->html);
		return status ? status : 1;
	}
	fprintf(stderr, "profshim: profile in %s, HTML report in %s\n", o->out,
		p->html);
	return status;
}

/* Close, stop and remove what the phases left. */
static void run_cleanup(struct run_state *s)
{
	if (s->go_fd >= 0)
		(void)close(s->go_fd);
	if (s->err_fd >= 0)
		(void)close(s->err_fd);
	/* Failing before the server ran: the waiting child and the collector
	 * are stopped here. */
	if (s->server > 0 && !s->server_gone) {
		(void)kill(s->server, SIGKILL);
		(void)run_reap(s->server);
	}
	if (s->collector > 0 && !s->collector_gone) {
		(void)kill(s->collector, SIGINT);
		(void)run_reap(s->collector);
	}
	if (s->p->sock[0])
		(void)unlink(s->p->sock);
	if (s->p->dir[0])
		(void)rmdir(s->p->dir);
	run_env_free(s->env);
}

/*
 * Everything after parsing: the top of `profshim run`. `mask` is the signal
 * mask profshim started with; `set` holds the forwarded signals and
 * SIGCHLD, blocked.
 */
static int run_session(const struct run_opts *o, struct run_paths *p,
		       const sigset_t *mask, const sigset_t *set)
{
	static int (*const phases[])(struct run_state *) = {
		run_locate_all, run_prepare, run_start_collector,
		run_release_server, run_wait_server, run_wait_collector,
		run_report,
	};
	struct run_state s = {.o = o, .p = p, .mask = mask, .set = set,
			      .server = -1, .collector = -1, .go_fd = -1,
			      .err_fd = -1};
	int status = RUN_ON;

	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]) &&
			   status == RUN_ON; i++)
		status = phases[i](&s);
	run_cleanup(&s);
	return status;
}

int run_command(int argc, char **argv)
{
	struct run_opts o;
	struct run_paths *p;
	sigset_t set, mask;
	int r;

	r = run_parse(argc, argv, &o);
	if (r != RUN_ON)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p) {
		fprintf(stderr, "profshim: out of memory\n");
		return 1;
	}
	sigemptyset(&set);
	for (size_t i = 0; i < run_nforwarded; i++)
		sigaddset(&set, run_forwarded[i]);
	sigaddset(&set, SIGCHLD);
	(void)sigprocmask(SIG_BLOCK, &set, &mask);
	{
		struct sigaction ign = {.sa_handler = SIG_IGN};

		sigemptyset(&ign.sa_mask);
		(void)sigaction(SIGPIPE, &ign, &run_old_pipe);
	}
	r = run_session(&o, p, &mask, &set);
	(void)sigprocmask(SIG_SETMASK, &mask, NULL);
	free(p);
	return r;
}

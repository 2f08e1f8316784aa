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
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/control.h"
#include "util/clock.h"
#include "wrapper/run.h"

#ifndef PROFSHIM_LIBDIR
#define PROFSHIM_LIBDIR "lib"
#endif

extern char **environ;

/* How long the collector may take to answer on its socket at start. */
#define RUN_READY_NS (10ull * 1000000000ull)
/*
 * How long after the server has exited the collector may keep recording
 * children the server left running, before it is told to write what it
 * has.
 */
#define RUN_LINGER_NS (10ull * 1000000000ull)
/* sigtimedwait's period: also how often exits are polled with waitpid. */
#define RUN_TICK_NS (50ull * 1000000ull)

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
	"exit status: SERVER's; 1 profshim failed (no profile written, a file\n"
	"not found; SERVER's status wins when it is not 0); 2 bad usage;\n"
	"126 SERVER cannot be executed; 127 SERVER not found\n";

/* The signals passed on to the server. */
static const int run_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT,
				    SIGUSR1, SIGUSR2};

/*
 * SIGPIPE as profshim found it. profshim ignores SIGPIPE (a collector that
 * closes its socket early is an error to report, not a reason to die); the
 * processes it starts get the disposition back.
 */
static struct sigaction run_old_pipe;

struct run_opts {
	const char *rate, *hz, *clock, *mode; /* NULL: leave the environment */
	const char *out;
	char **argv;                          /* the server command */
};

struct run_paths {
	char lib[PATH_MAX];
	char collector[PATH_MAX];
	char server[PATH_MAX];
	char html[PATH_MAX];
	char dir[PATH_MAX];                   /* private socket directory */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char tried[2048];                     /* where run_find looked */
};

static int run_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "profshim run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "; try 'profshim run --help'\n");
	return 2;
}

static bool run_valid_rate(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	return !errno && end != s && !*end && isfinite(v) && v >= 0 && v <= 1;
}

static bool run_valid_hz(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	return !errno && end != s && !*end && v >= 1 && v <= 10000;
}

/*
 * Parse argv (argv[0] is "run") into o. Returns -1 when parsing is done and
 * the command should run, otherwise the exit status to return at once.
 */
static int run_parse(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		{"rate", required_argument, NULL, 'r'},
		{"hz", required_argument, NULL, 'z'},
		{"clock", required_argument, NULL, 'c'},
		{"mode", required_argument, NULL, 'm'},
		{"out", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->out = "profshim.json";
	opterr = 0;
	optind = 1;
	/* '+': stop at the first non-option, which starts the server command;
	 * ':': a missing option argument is told apart from an unknown one. */
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (!run_valid_rate(optarg))
				return run_usage_error("--rate needs a number "
						       "from 0 to 1, not '%s'",
						       optarg);
			o->rate = optarg;
			break;
		case 'z':
			if (!run_valid_hz(optarg))
				return run_usage_error("--hz needs a whole "
						       "number from 1 to 10000, "
						       "not '%s'", optarg);
			o->hz = optarg;
			break;
		case 'c':
			if (strcmp(optarg, "cpu") != 0 &&
			    strcmp(optarg, "wall") != 0)
				return run_usage_error("--clock is cpu or wall, "
						       "not '%s'", optarg);
			o->clock = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "request") != 0 &&
			    strcmp(optarg, "continuous") != 0)
				return run_usage_error("--mode is request or "
						       "continuous, not '%s'",
						       optarg);
			o->mode = optarg;
			break;
		case 'o':
			if (!*optarg)
				return run_usage_error("%s", "--out needs a file "
							     "name");
			o->out = optarg;
			break;
		case 'h':
			fputs(run_usage, stdout);
			return 0;
		case ':':
			return run_usage_error("option '%s' needs a value",
					       argv[optind - 1]);
		default:
			return run_usage_error("unknown option '%s'",
					       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return run_usage_error("%s", "no server command given "
					     "(profshim run [OPTIONS] -- SERVER "
					     "[ARGS...])");
	o->argv = argv + optind;
	return -1;
}

/* The directory holding the running executable, from /proc/self/exe. */
static int run_self_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	if ((size_t)n >= len - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

/*
 * Find `name`: $var when it is set (and then only there), else in the first
 * of dir/rel[i] holding it with access `mode` (parent is dir's parent, for
 * the rel[i] beginning with "../"). The canonical path goes to
 * buf; where it looked goes to tried (for the message). Returns 0, or a
 * negative errno (-ENOENT when nothing was found).
 */
static int run_find(const char *var, const char *dir, const char *parent,
		    const char *const rel[],
		    size_t nrel, const char *name, int mode, char *buf,
		    size_t len, char *tried, size_t triedlen)
{
	const char *env = getenv(var);
	char cand[PATH_MAX];
	size_t used = 0;

	tried[0] = '\0';
	if (env && *env) {
		(void)snprintf(tried, triedlen, "%s=%s", var, env);
		if (access(env, mode) < 0)
			return -errno;
		if (!realpath(env, buf))
			return -errno;
		return 0;
	}
	for (size_t i = 0; i < nrel; i++) {
		const char *base = dir, *sub = rel[i];
		int n;

		/* A candidate already tried under another spelling. */
		for (size_t j = 0; j < i && sub; j++)
			if (strcmp(rel[j], rel[i]) == 0)
				sub = NULL;
		if (!sub)
			continue;
		/* "../x" is named from the parent directory, so the message
		 * shows plain paths. */
		if (strncmp(sub, "../", 3) == 0) {
			base = parent;
			sub += 3;
		}
		if (sub[0] == '/')
			n = snprintf(cand, sizeof(cand), "%s/%s", sub, name);
		else if (strcmp(sub, ".") == 0)
			n = snprintf(cand, sizeof(cand), "%s/%s", base, name);
		else
			n = snprintf(cand, sizeof(cand), "%s/%s/%s", base, sub,
				     name);
		if (n < 0 || (size_t)n >= sizeof(cand))
			continue;
		if (used < triedlen) {
			n = snprintf(tried + used, triedlen - used, "%s%s",
				     used ? ", " : "", cand);
			if (n > 0)
				used += (size_t)n;
		}
		if (access(cand, mode) == 0 && realpath(cand, buf) &&
		    strlen(buf) < len)
			return 0;
	}
	return -ENOENT;
}

/*
 * The server's executable as execvp would find it, searched here so the
 * forked child needs nothing but execve. Returns 0, -ENOENT (not found) or
 * -EACCES (found, not executable).
 */
static int run_which(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *colon;
	struct stat st;
	int r = -ENOENT;

	if (strchr(name, '/')) {
		if ((size_t)snprintf(buf, len, "%s", name) >= len)
			return -ENAMETOOLONG;
		if (stat(buf, &st) < 0)
			return -errno;
		return access(buf, X_OK) == 0 && S_ISREG(st.st_mode) ? 0
								     : -EACCES;
	}
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path;; p = colon + 1) {
		int dlen, n;

		colon = strchr(p, ':');
		dlen = colon ? (int)(colon - p) : (int)strlen(p);
		/* An empty element is the current directory. */
		if (dlen == 0)
			n = snprintf(buf, len, "%s", name);
		else
			n = snprintf(buf, len, "%.*s/%s", dlen, p, name);
		if (n > 0 && (size_t)n < len && stat(buf, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			if (access(buf, X_OK) == 0)
				return 0;
			r = -EACCES;
		}
		if (!colon)
			break;
	}
	return r;
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
	const char *names[] = {"PROFILING_SAMPLE_RATE", "PROFILING_HZ",
			       "PROFILING_CLOCK", "PROFILING_MODE"};
	const char *values[] = {o->rate, o->hz, o->clock, o->mode};
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

		for (size_t j = 0; j < 4; j++)
			drop = drop || (values[j] &&
					run_has_name(environ[i], names[j]));
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
	for (size_t j = 0; j < 4; j++) {
		if (!values[j])
			continue;
		if (asprintf(&env[k], "%s=%s", names[j], values[j]) < 0)
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

/*
 * Fork the server; it waits until a byte arrives on *go_fd, then execs
 * path. An exec failure comes back as an errno on *err_fd (closed on a
 * successful exec). The child gets `mask` (the mask profshim started with)
 * and only calls async-signal-safe functions. Returns 0 or a negative
 * errno.
 */
static int run_fork_server(const char *path, char **argv, char **envp,
			   const sigset_t *mask, pid_t *ret, int *go_fd,
			   int *err_fd)
{
	int go[2], err[2];
	pid_t pid;

	if (pipe2(go, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(err, O_CLOEXEC) < 0) {
		int e = -errno;

		(void)close(go[0]);
		(void)close(go[1]);
		return e;
	}
	pid = fork();
	if (pid < 0) {
		int e = -errno;

		(void)close(go[0]);
		(void)close(go[1]);
		(void)close(err[0]);
		(void)close(err[1]);
		return e;
	}
	if (pid == 0) {
		char c;
		ssize_t n;
		int e;

		(void)close(go[1]);
		(void)close(err[0]);
		(void)sigaction(SIGPIPE, &run_old_pipe, NULL);
		(void)sigprocmask(SIG_SETMASK, mask, NULL);
		do
			n = read(go[0], &c, 1);
		while (n < 0 && errno == EINTR);
		/* profshim gave up (the collector did not start). */
		if (n != 1)
			_exit(127);
		(void)execve(path, argv, envp);
		e = errno;
		(void)!write(err[1], &e, sizeof(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	(void)close(go[0]);
	(void)close(err[1]);
	*ret = pid;
	*go_fd = go[1];
	*err_fd = err[0];
	return 0;
}

/*
 * posix_spawn path with argv, stdin from /dev/null when `quiet_stdin`, in a
 * process group of its own when `own_group`, with profshim's original
 * signal mask and the forwarded signals at their default action. Returns 0
 * or a negative errno.
 */
static int run_spawn(const char *path, char *const argv[], bool own_group,
		     const sigset_t *mask, pid_t *ret)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t dflt;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	int r;

	sigemptyset(&dflt);
	for (size_t i = 0; i < sizeof(run_forwarded) / sizeof(run_forwarded[0]);
	     i++)
		sigaddset(&dflt, run_forwarded[i]);
	if (run_old_pipe.sa_handler == SIG_DFL)
		sigaddset(&dflt, SIGPIPE);
	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		return -r;
	if ((r = posix_spawnattr_init(&attr)) != 0) {
		(void)posix_spawn_file_actions_destroy(&fa);
		return -r;
	}
	if (own_group)
		flags |= POSIX_SPAWN_SETPGROUP;
	r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!r)
		r = posix_spawnattr_setflags(&attr, flags);
	if (!r)
		r = posix_spawnattr_setpgroup(&attr, 0);
	if (!r)
		r = posix_spawnattr_setsigmask(&attr, mask);
	if (!r)
		r = posix_spawnattr_setsigdefault(&attr, &dflt);
	if (!r)
		r = posix_spawn(ret, path, &fa, &attr, argv, environ);
	(void)posix_spawnattr_destroy(&attr);
	(void)posix_spawn_file_actions_destroy(&fa);
	return -r;
}

/* Wait for pid without being interrupted; returns its status. */
static int run_reap(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/* A wait status as a shell reports it: the code, or 128 + the signal. */
static int run_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/* Wait up to one tick for a signal in set; returns it, or 0. */
static int run_wait_signal(const sigset_t *set, siginfo_t *si)
{
	struct timespec ts = {0, (long)RUN_TICK_NS};
	int s = sigtimedwait(set, si, &ts);

	return s > 0 ? s : 0;
}

/*
 * Whether a signal profshim got should also be sent to the server: not when
 * the terminal sent it to the whole foreground process group the server
 * still shares with profshim, since the server has it already.
 */
static bool run_should_forward(const siginfo_t *si, pid_t server)
{
	if (si->si_code != SI_KERNEL)
		return true;
	return getpgid(server) != getpgrp();
}

/*
 * Wait until the collector answers on its socket (ready, with the server's
 * pid checked). Returns 0, -ECHILD with *st set when the collector exited,
 * or -ETIMEDOUT.
 */
static int run_wait_ready(const char *sock, pid_t collector, int *st)
{
	uint64_t deadline = clock_now_ns() + RUN_READY_NS;
	char err[256];
	FILE *sink = fopen("/dev/null", "we");
	int r = -ETIMEDOUT;

	if (!sink)
		return -errno;
	while (clock_now_ns() < deadline) {
		struct timespec ts = {0, 10 * 1000000};

		if (waitpid(collector, st, WNOHANG) == collector) {
			r = -ECHILD;
			break;
		}
		if (control_call(sock, "dump\t\t", sink, err, sizeof(err)) == 0) {
			r = 0;
			break;
		}
		(void)nanosleep(&ts, NULL);
	}
	(void)fclose(sink);
	return r;
}

/* The HTML file beside the profile: .json replaced by .html, else +.html. */
static int run_html_path(const char *out, char *buf, size_t len)
{
	size_t n = strlen(out);
	int w;

	if (n > 5 && strcmp(out + n - 5, ".json") == 0)
		w = snprintf(buf, len, "%.*s.html", (int)(n - 5), out);
	else
		w = snprintf(buf, len, "%s.html", out);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

/* Find the shim and the collector; messages are printed here (top). */
static int run_locate(struct run_paths *p)
{
	char self[PATH_MAX], parent[PATH_MAX], *slash;
	const char *libdirs[6];
	const char *collector_dirs[] = {".", "collector"};
	char libdir_rel[PATH_MAX];
	size_t nlib = 0;
	int r;

	r = run_self_dir(self, sizeof(self));
	if (r < 0) {
		fprintf(stderr, "profshim: cannot read /proc/self/exe: %s; set "
				"PROFSHIM_LIB and PROFSHIM_COLLECTOR\n",
			strerror(-r));
		return r;
	}
	(void)snprintf(parent, sizeof(parent), "%s", self);
	slash = strrchr(parent, '/');
	if (slash && slash != parent)
		*slash = '\0';
	else
		(void)snprintf(parent, sizeof(parent), "/");
	/* Build tree (profshim in build/collector/ or build/), then the
	 * installed layout: libdir beside bindir. */
	libdirs[nlib++] = "../shim";
	libdirs[nlib++] = "shim";
	if (PROFSHIM_LIBDIR[0] == '/') {
		libdirs[nlib++] = PROFSHIM_LIBDIR;
	} else {
		(void)snprintf(libdir_rel, sizeof(libdir_rel), "../%s",
			       PROFSHIM_LIBDIR);
		libdirs[nlib++] = libdir_rel;
	}
	libdirs[nlib++] = "../lib/x86_64-linux-gnu";
	libdirs[nlib++] = "../lib";
	libdirs[nlib++] = "../lib64";
	r = run_find("PROFSHIM_LIB", self, parent, libdirs, nlib, "libprofshim.so", R_OK,
		     p->lib, sizeof(p->lib), p->tried, sizeof(p->tried));
	if (r == -ENOENT && !getenv("PROFSHIM_LIB")) {
		fprintf(stderr, "profshim: cannot find libprofshim.so (looked "
				"for %s); set PROFSHIM_LIB to its path\n",
			p->tried);
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "profshim: %s: %s\n", p->tried, strerror(-r));
		return r;
	}
	/* LD_PRELOAD separates its entries with spaces and colons. */
	if (strpbrk(p->lib, " :\t")) {
		fprintf(stderr, "profshim: the path %s has a space or colon, "
				"which LD_PRELOAD cannot carry; set PROFSHIM_LIB "
				"to a path without them\n", p->lib);
		return -EINVAL;
	}
	r = run_find("PROFSHIM_COLLECTOR", self, parent, collector_dirs, 2,
		     "profshim-collector", X_OK, p->collector,
		     sizeof(p->collector), p->tried, sizeof(p->tried));
	if (r == -ENOENT && !getenv("PROFSHIM_COLLECTOR")) {
		fprintf(stderr, "profshim: cannot find profshim-collector "
				"(looked for %s); set PROFSHIM_COLLECTOR to its "
				"path\n", p->tried);
		return r;
	}
	if (r < 0) {
		fprintf(stderr, "profshim: %s: %s\n", p->tried, strerror(-r));
		return r;
	}
	return 0;
}

/* A private directory for the collector's control socket. */
static int run_socket_dir(struct run_paths *p)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	n = snprintf(p->dir, sizeof(p->dir), "%s/profshim-run.XXXXXX", tmp);
	if (n < 0 || (size_t)n >= sizeof(p->dir))
		return -ENAMETOOLONG;
	if (!mkdtemp(p->dir))
		return -errno;
	n = snprintf(p->sock, sizeof(p->sock), "%s/collector.sock", p->dir);
	if (n < 0 || (size_t)n >= sizeof(p->sock)) {
		(void)rmdir(p->dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * Everything after parsing: the top of `profshim run`, where every message
 * is printed. `mask` is the signal mask profshim started with; `set` holds
 * the forwarded signals and SIGCHLD, blocked.
 */
static int run_session(const struct run_opts *o, struct run_paths *p,
		       const sigset_t *mask, const sigset_t *set)
{
	char pidbuf[16];
	char **env = NULL;
	pid_t server = -1, collector = -1;
	int go_fd = -1, err_fd = -1, st = 0, cst = 0, status, r, e = 0;
	bool server_gone = false, collector_gone = false, stopped = false;
	uint64_t server_end;
	ssize_t n;

	r = run_which(o->argv[0], p->server, sizeof(p->server));
	if (r < 0) {
		fprintf(stderr, "profshim: %s: %s\n", o->argv[0],
			r == -ENOENT && !strchr(o->argv[0], '/')
				? "command not found" : strerror(-r));
		return r == -ENOENT ? 127 : 126;
	}
	if (run_locate(p) < 0)
		return 1;
	if (run_html_path(o->out, p->html, sizeof(p->html)) < 0) {
		fprintf(stderr, "profshim: --out %s: name too long\n", o->out);
		return 1;
	}
	env = run_env(o, p->lib);
	if (!env) {
		fprintf(stderr, "profshim: out of memory\n");
		return 1;
	}
	r = run_socket_dir(p);
	if (r < 0) {
		fprintf(stderr, "profshim: cannot make a directory for the "
				"collector's socket: %s\n", strerror(-r));
		run_env_free(env);
		return 1;
	}
	r = run_fork_server(p->server, o->argv, env, mask, &server, &go_fd,
			    &err_fd);
	if (r < 0) {
		fprintf(stderr, "profshim: cannot start %s: %s\n", o->argv[0],
			strerror(-r));
		status = 1;
		goto out;
	}
	/* --checkpoint 0: each run profiles a new process; a checkpoint left
	 * in FILE by an earlier, interrupted run must not be resumed into
	 * this one. */
	(void)snprintf(pidbuf, sizeof(pidbuf), "%d", (int)server);
	{
		char *cargv[] = {p->collector, "record", "--pid", pidbuf,
				 "--out", (char *)o->out, "--socket", p->sock,
				 "--checkpoint", "0", NULL};

		r = run_spawn(p->collector, cargv, true, mask, &collector);
	}
	if (r < 0) {
		fprintf(stderr, "profshim: cannot start %s: %s\n", p->collector,
			strerror(-r));
		status = 1;
		goto out;
	}
	r = run_wait_ready(p->sock, collector, &cst);
	if (r < 0) {
		if (r == -ECHILD) {
			collector_gone = true;
			fprintf(stderr, "profshim: the collector failed to "
					"start (exit status %d); the server was "
					"not started\n", run_status(cst));
		} else {
			fprintf(stderr, "profshim: the collector did not "
					"answer on %s: %s; the server was not "
					"started\n", p->sock, strerror(-r));
		}
		status = 1;
		goto out;
	}
	/* Release the server; its exec error, if any, comes back on err_fd. */
	if (write(go_fd, "g", 1) != 1) {
		fprintf(stderr, "profshim: cannot start %s: %s\n", o->argv[0],
			strerror(errno));
		status = 1;
		goto out;
	}
	(void)close(go_fd);
	go_fd = -1;
	do
		n = read(err_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	(void)close(err_fd);
	err_fd = -1;
	if (n == (ssize_t)sizeof(e)) {
		fprintf(stderr, "profshim: cannot execute %s: %s\n",
			p->server, strerror(e));
		status = e == ENOENT ? 127 : 126;
		goto out;
	}

	while (!server_gone) {
		siginfo_t si;
		int s;

		if (waitpid(server, &st, WNOHANG) == server) {
			server_gone = true;
			break;
		}
		if (!collector_gone &&
		    waitpid(collector, &cst, WNOHANG) == collector) {
			collector_gone = true;
			fprintf(stderr, "profshim: the collector exited while "
					"the server runs (exit status %d); no "
					"profile will be written\n",
				run_status(cst));
		}
		s = run_wait_signal(set, &si);
		if (s && s != SIGCHLD && run_should_forward(&si, server))
			(void)kill(server, s);
	}

	/* The collector ends by itself once the server and its children are
	 * gone and their rings drained; children left running past
	 * RUN_LINGER_NS, or a signal to profshim now, make it stop and write
	 * what it has. */
	server_end = clock_now_ns();
	while (!collector_gone) {
		siginfo_t si;
		int s;

		if (waitpid(collector, &cst, WNOHANG) == collector) {
			collector_gone = true;
			break;
		}
		s = run_wait_signal(set, &si);
		if (!stopped && ((s && s != SIGCHLD) ||
				 clock_now_ns() - server_end > RUN_LINGER_NS)) {
			if (!s || s == SIGCHLD)
				fprintf(stderr, "profshim: processes the server "
						"started still run; writing the "
						"profile now\n");
			(void)kill(collector, SIGINT);
			stopped = true;
		}
	}
	collector = -1;
	status = run_status(st);
	if (!WIFEXITED(cst) || WEXITSTATUS(cst) != 0 ||
	    access(o->out, R_OK) < 0) {
		fprintf(stderr, "profshim: no profile written to %s (collector "
				"exit status %d)\n", o->out, run_status(cst));
		status = status ? status : 1;
		goto out;
	}
	{
		pid_t rep;
		char *rargv[] = {p->collector, "report", "--input", (char *)o->out,
				 "--format", "html", "--output", p->html, NULL};

		r = run_spawn(p->collector, rargv, false, mask, &rep);
		if (r == 0)
			cst = run_reap(rep);
	}
	if (r < 0 || !WIFEXITED(cst) || WEXITSTATUS(cst) != 0) {
		fprintf(stderr, "profshim: profile in %s; the HTML report could "
				"not be written to %s%s%s\n", o->out, p->html,
			r < 0 ? ": " : "", r < 0 ? strerror(-r) : "");
		status = status ? status : 1;
		goto out;
	}
	fprintf(stderr, "profshim: profile in %s, HTML report in %s\n", o->out,
		p->html);
out:
	if (go_fd >= 0)
		(void)close(go_fd);
	if (err_fd >= 0)
		(void)close(err_fd);
	/* Failing before the server ran: the waiting child and the collector
	 * are stopped here. */
	if (server > 0 && !server_gone) {
		(void)kill(server, SIGKILL);
		(void)run_reap(server);
	}
	if (collector > 0 && !collector_gone) {
		(void)kill(collector, SIGINT);
		(void)run_reap(collector);
	}
	(void)unlink(p->sock);
	(void)rmdir(p->dir);
	run_env_free(env);
	return status;
}

int run_command(int argc, char **argv)
{
	struct run_opts o;
	struct run_paths *p;
	sigset_t set, mask;
	int r;

	r = run_parse(argc, argv, &o);
	if (r >= 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p) {
		fprintf(stderr, "profshim: out of memory\n");
		return 1;
	}
	sigemptyset(&set);
	for (size_t i = 0; i < sizeof(run_forwarded) / sizeof(run_forwarded[0]);
	     i++)
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

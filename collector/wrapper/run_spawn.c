/*
 * run_spawn.c — the processes `profshim run` starts and waits for: the
 * server, forked to wait on a pipe until the collector is ready; the
 * collector and the report, with posix_spawn; their exits, and the signals
 * passed on to the server (run.c says which and why).
 */
#include "wrapper/run_impl.h"
#include "util/clock.h"
#include "util/control.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* How long the collector may take to answer on its socket at start. */
#define RUN_READY_NS (10ull * 1000000000ull)
/* sigtimedwait's period: also how often exits are polled with waitpid. */
#define RUN_TICK_NS (50ull * 1000000ull)

/* The signals passed on to the server. */
const int run_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
			     SIGUSR2};
const size_t run_nforwarded = sizeof(run_forwarded) / sizeof(run_forwarded[0]);

/*
 * SIGPIPE as profshim found it. profshim ignores SIGPIPE (a collector that
 * closes its socket early is an error to report, not a reason to die); the
 * processes it starts get the disposition back.
 */
struct sigaction run_old_pipe;


/*
 * Fork the server; it waits until a byte arrives on *go_fd, then execs
 * path. An exec failure comes back as an errno on *err_fd (closed on a
 * successful exec). The child gets `mask` (the mask profshim started with)
 * and only calls async-signal-safe functions. Returns 0 or a negative
 * errno.
 */
int run_fork_server(const char *path, char **argv, char **envp,
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
int run_spawn(const char *path, char *const argv[], bool own_group,
	      const sigset_t *mask, pid_t *ret)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t dflt;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	int r;

	sigemptyset(&dflt);
	for (size_t i = 0; i < run_nforwarded; i++)
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
int run_reap(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return st;
}

/* A wait status as a shell reports it: the code, or 128 + the signal. */
int run_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/* Wait up to one tick for a signal in set; returns it, or 0. */
int run_wait_signal(const sigset_t *set, siginfo_t *si)
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
bool run_should_forward(const siginfo_t *si, pid_t server)
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
int run_wait_ready(const char *sock, pid_t collector, int *st)
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

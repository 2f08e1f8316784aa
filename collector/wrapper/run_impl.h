/*
 * run_impl.h — what the parts of `profshim run` share; not a public
 * interface (that is run.h).
 *
 *   run.c         the command: options, the server's environment, and the
 *                 session phase by phase
 *   run_locate.c  where things are: the server's executable, the shim and
 *                 the collector, the HTML report, the control socket
 *   run_spawn.c   the processes: the waiting server, the collector and the
 *                 report, their exits, the signals passed on
 */
#ifndef PROFSHIM_RUN_IMPL_H
#define PROFSHIM_RUN_IMPL_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/un.h>

struct run_paths {
	char lib[PATH_MAX];
	char collector[PATH_MAX];
	char server[PATH_MAX];
	char html[PATH_MAX];
	char dir[PATH_MAX];                   /* private socket directory */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char tried[2048];                     /* where run_find looked */
};

/* run_locate.c */

/*
 * The server's executable as execvp would find it, searched here so the
 * forked child needs nothing but execve. Returns 0, -ENOENT (not found) or
 * -EACCES (found, not executable).
 */
int run_which(const char *name, char *buf, size_t len);
/* Find the shim (p->lib) and the collector (p->collector). 0, or a
 * negative errno with the message in err. */
int run_locate(struct run_paths *p, char *err, size_t errlen);
/* The HTML file beside the profile: .json replaced by .html, else +.html. */
int run_html_path(const char *out, char *buf, size_t len);
/* A private directory (p->dir) for the collector's control socket
 * (p->sock); both stay "" when it could not be made. 0 or -errno. */
int run_socket_dir(struct run_paths *p);

/* run_spawn.c */

/* The signals passed on to the server. */
extern const int run_forwarded[];
extern const size_t run_nforwarded;
/* SIGPIPE as profshim found it; what the processes it starts get back. */
extern struct sigaction run_old_pipe;

/*
 * Fork the server; it waits until a byte arrives on *go_fd, then execs
 * path. An exec failure comes back as an errno on *err_fd. 0 or -errno.
 */
int run_fork_server(const char *path, char **argv, char **envp,
		    const sigset_t *mask, pid_t *ret, int *go_fd, int *err_fd);
/* posix_spawn path with argv (see run_spawn.c). 0 or -errno. */
int run_spawn(const char *path, char *const argv[], bool own_group,
	      const sigset_t *mask, pid_t *ret);
/* Wait for pid without being interrupted; returns its status. */
int run_reap(pid_t pid);
/* A wait status as a shell reports it: the code, or 128 + the signal. */
int run_status(int st);
/* Wait up to one tick for a signal in set; returns it, or 0. */
int run_wait_signal(const sigset_t *set, siginfo_t *si);
/* Whether a signal profshim got should also be sent to the server. */
bool run_should_forward(const siginfo_t *si, pid_t server);
/* Wait until the collector answers on sock. 0, -ECHILD with *st set when
 * the collector exited, or -ETIMEDOUT. */
int run_wait_ready(const char *sock, pid_t collector, int *st);

#endif /* PROFSHIM_RUN_IMPL_H */

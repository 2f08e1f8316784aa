/*
 * control.h — the Unix socket through which `dump`, `reset` and `save` talk
 * to the running collector.
 *
 * The socket lives in a directory of mode 0700 owned by the user
 * ($XDG_RUNTIME_DIR/profshim/ or /tmp/profshim-<uid>/), and the server also
 * checks each peer's uid with SO_PEERCRED: only the collector's own user
 * and root get in (root may read and stop the process anyway; so root can
 * query a collector run as www-data, and `profshim run` started by root
 * one it runs as another user). PROFSHIM_SOCKET or --socket names another
 * path.
 *
 * Protocol: the client sends one line ("dump\t<endpoint>\t<function>",
 * "reset", "save\t<absolute path>"); the server answers "ok\n" followed by
 * the body, or "error: <reason>\n", and closes.
 */
#ifndef PROFSHIM_CONTROL_H
#define PROFSHIM_CONTROL_H

#include <stddef.h>
#include <stdio.h>

/*
 * The socket path: `override`, else $PROFSHIM_SOCKET, else the default.
 * With `create_dir`, the default directory is created (0700) and checked.
 * Returns 0 or a negative errno.
 */
int control_path(const char *override, int create_dir, char *buf, size_t len);

/*
 * Listen on path. Returns the listening fd, -EADDRINUSE when a collector
 * already answers there, or another negative errno.
 */
int control_listen(const char *path);

/*
 * Accept one client if one is waiting and read its request line (at most
 * reqlen - 1 bytes, waiting at most a second). Returns the client fd, 0 when
 * none was waiting or the one waiting has already gone (its request is
 * not to be carried out), or a negative errno.
 */
int control_accept(int lfd, char *req, size_t reqlen);

/* Send "ok\n" + body (ok != 0) or "error: body\n", then close fd. */
void control_reply(int fd, int ok, const char *body, size_t len);

/*
 * Send `req` to the collector at path and copy the answer's body to out.
 * Returns 0 on "ok"; 1 with the reason in err when the collector refused
 * or none is running; CONTROL_SILENT with the reason when one is there but
 * does not answer: it is stopped (found in about a second), accepts no
 * connection for 3 s, or says nothing for 60 s. The request is then
 * dropped: a collector resumed later does not carry it out.
 */
#define CONTROL_SILENT 3
int control_call(const char *path, const char *req, FILE *out, char *err,
		 size_t errlen);

#endif /* PROFSHIM_CONTROL_H */

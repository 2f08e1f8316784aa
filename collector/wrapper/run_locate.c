/*
 * run_locate.c — where `profshim run` finds what it needs: the server's
 * executable (as execvp would), libprofshim.so and profshim-collector
 * (beside profshim in the build tree or the installed layout, or where
 * PROFSHIM_LIB and PROFSHIM_COLLECTOR say), the HTML report's name, and a
 * private directory for the collector's control socket.
 */
#include "wrapper/run_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PROFSHIM_LIBDIR
#define PROFSHIM_LIBDIR "lib"
#endif

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

int run_which(const char *name, char *buf, size_t len)
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

int run_html_path(const char *out, char *buf, size_t len)
{
	size_t n = strlen(out);
	int w;

	if (n > 5 && strcmp(out + n - 5, ".json") == 0)
		w = snprintf(buf, len, "%.*s.html", (int)(n - 5), out);
	else
		w = snprintf(buf, len, "%s.html", out);
	return w < 0 || (size_t)w >= len ? -ENAMETOOLONG : 0;
}

/*
 * Find `name` as run_find() does, $var naming it instead; the message for
 * a failure goes to err.
 */
static int run_find_named(struct run_paths *p, const char *var,
			  const char *self, const char *parent,
			  const char *const rel[], size_t nrel,
			  const char *name, int mode, char *buf, size_t len,
			  char *err, size_t errlen)
{
	int r = run_find(var, self, parent, rel, nrel, name, mode, buf, len,
			 p->tried, sizeof(p->tried));

	if (r == -ENOENT && !getenv(var))
		(void)snprintf(err, errlen, "cannot find %s (looked for %s); "
			       "set %s to its path", name, p->tried, var);
	else if (r < 0)
		(void)snprintf(err, errlen, "%s: %s", p->tried, strerror(-r));
	return r;
}

int run_locate(struct run_paths *p, char *err, size_t errlen)
{
	char self[PATH_MAX], parent[PATH_MAX], *slash;
	const char *libdirs[6];
	const char *collector_dirs[] = {".", "collector"};
	char libdir_rel[PATH_MAX];
	size_t nlib = 0;
	int r;

	r = run_self_dir(self, sizeof(self));
	if (r < 0) {
		(void)snprintf(err, errlen, "cannot read /proc/self/exe: %s; "
			       "set PROFSHIM_LIB and PROFSHIM_COLLECTOR",
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
	r = run_find_named(p, "PROFSHIM_LIB", self, parent, libdirs, nlib,
			   "libprofshim.so", R_OK, p->lib, sizeof(p->lib), err,
			   errlen);
	if (r < 0)
		return r;
	/* LD_PRELOAD separates its entries with spaces and colons. */
	if (strpbrk(p->lib, " :\t")) {
		(void)snprintf(err, errlen, "the path %s has a space or colon, "
			       "which LD_PRELOAD cannot carry; set PROFSHIM_LIB "
			       "to a path without them", p->lib);
		return -EINVAL;
	}
	return run_find_named(p, "PROFSHIM_COLLECTOR", self, parent,
			      collector_dirs, 2, "profshim-collector", X_OK,
			      p->collector, sizeof(p->collector), err, errlen);
}

int run_socket_dir(struct run_paths *p)
{
	const char *tmp = getenv("TMPDIR");
	int n;

	if (!tmp || !*tmp || strlen(tmp) > 60)
		tmp = "/tmp";
	n = snprintf(p->dir, sizeof(p->dir), "%s/profshim-run.XXXXXX", tmp);
	if (n < 0 || (size_t)n >= sizeof(p->dir)) {
		p->dir[0] = '\0';
		return -ENAMETOOLONG;
	}
	if (!mkdtemp(p->dir)) {
		p->dir[0] = '\0';
		return -errno;
	}
	n = snprintf(p->sock, sizeof(p->sock), "%s/collector.sock", p->dir);
	if (n < 0 || (size_t)n >= sizeof(p->sock)) {
		(void)rmdir(p->dir);
		p->dir[0] = p->sock[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/*
 * httpapi.c — see httpapi.h.
 *
 * Every request is answered from the first call of the access handler,
 * when its headers have arrived: no endpoint takes a body, so none is read
 * (libmicrohttpd closes a connection whose body was not read after the
 * response), and a client without the key costs nothing beyond its
 * headers.
 */
#include "services/httpapi.h"
#include "util/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "formats/html.h"
#include "model/profile.h"
#include "formats/prom.h"

/* Longest key accepted; it travels in a header. */
#define HTTPAPI_KEY_MAX 256
#define HTTPAPI_CONNECTIONS 64
/* One address cannot take every connection (loopback is one address). */
#define HTTPAPI_PER_IP 16
#define HTTPAPI_IDLE_SECONDS 10
#define HTTPAPI_LOG_LINES 5
/* The key file is looked at again at most this often (see
 * httpapi_key_refresh). */
#define HTTPAPI_KEY_CHECK_NS 1000000000ull

/* What identifies one version of the key file: a new file renamed over it,
 * or the file rewritten in place, changes at least one of these. */
struct httpapi_key_sig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime; /* ctime: a chmod or chown alone */
	bool missing;          /* it could not be looked at */
};

static struct httpapi_key_sig httpapi_key_sig_of(const struct stat *st)
{
	return (struct httpapi_key_sig){
		.dev = st->st_dev, .ino = st->st_ino, .size = st->st_size,
		.mtime = st->st_mtim, .ctime = st->st_ctim };
}

struct httpapi {
	struct MHD_Daemon *d;
	struct httpapi_ops ops;
	char key[HTTPAPI_KEY_MAX + 1];
	size_t keylen;
	char *key_path;        /* --api-key-file, re-read when it changes */
	struct httpapi_key_sig key_sig; /* the version last read or refused */
	uint64_t key_checked;  /* CLOCK_MONOTONIC ns of the last look */
	char *save_dir;        /* realpath of --save-dir, or NULL */
	int fd;                /* libmicrohttpd's epoll descriptor */
	unsigned port;
	time_t log_minute;     /* CLOCK_MONOTONIC second the current minute of
				* logging began, 0 before the first line */
	unsigned long log_lines, log_muted;
};

/*
 * libmicrohttpd's own complaints (a client that broke off, ...): one line
 * each, with the collector's prefix, and at most HTTPAPI_LOG_LINES a
 * minute, since any client can cause them; the rest are counted and the
 * count said with the next line printed.
 */
static void httpapi_log(void *cls, const char *fmt, va_list ap)
{
	struct httpapi *h = cls;
	time_t now = (time_t)(clock_now_ns() / 1000000000u);
	char line[512];
	size_t n;

	if (h->log_minute == 0 || now - h->log_minute >= 60) {
		if (h->log_muted)
			fprintf(stderr, "profshim-collector: http: %lu more "
				"messages in the last minute not shown\n",
				h->log_muted);
		h->log_minute = now;
		h->log_lines = 0;
		h->log_muted = 0;
	}
	if (h->log_lines >= HTTPAPI_LOG_LINES) {
		h->log_muted++;
		return;
	}
	h->log_lines++;
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	n = strcspn(line, "\r\n");
	line[n] = '\0';
	fprintf(stderr, "profshim-collector: http: %s\n", line);
}

/*
 * The key: the file's first line without trailing blanks. The file must be
 * a regular file of the collector's user giving group and others no access
 * at all, as ssh asks of private keys (opened without blocking, so a FIFO
 * put there cannot hold up the start).
 */
static int httpapi_read_key(struct httpapi *h, const char *path, char *err,
			    size_t errlen)
{
	struct stat st;
	char buf[HTTPAPI_KEY_MAX + 2];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), r = 0;

	if (fd < 0) {
		r = -errno;
		(void)snprintf(err, errlen, "cannot read the key file %.300s: %s",
			       path, strerror(-r));
		h->key_sig = (struct httpapi_key_sig){ .missing = true };
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		(void)snprintf(err, errlen, "cannot read the key file %.300s: %s",
			       path, strerror(-r));
		goto out;
	}
	h->key_sig = httpapi_key_sig_of(&st);
	if (!S_ISREG(st.st_mode)) {
		(void)snprintf(err, errlen, "the key file %.300s is not a "
			       "regular file", path);
		r = -EINVAL;
		goto out;
	}
	if (st.st_uid != geteuid()) {
		(void)snprintf(err, errlen, "the key file %.300s belongs to uid "
			       "%u, not to the collector's user (uid %u); chown "
			       "it", path, (unsigned)st.st_uid,
			       (unsigned)geteuid());
		r = -EPERM;
		goto out;
	}
	if (st.st_mode & 077) {
		(void)snprintf(err, errlen, "the key file %.300s may be read "
			       "by others (mode %04o); chmod 600 it", path,
			       (unsigned)(st.st_mode & 07777));
		r = -EPERM;
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		r = -errno;
		(void)snprintf(err, errlen, "cannot read the key file %.300s: %s",
			       path, strerror(-r));
		goto out;
	}
	buf[n] = '\0';
	n = (ssize_t)strcspn(buf, "\n");
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t' ||
			 buf[n - 1] == '\r'))
		n--;
	for (ssize_t i = 0; i < n; i++) {
		if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 127)
			n = -1;
	}
	if (n <= 0 || n > HTTPAPI_KEY_MAX) {
		(void)snprintf(err, errlen, "the key file %.300s must hold one "
			       "key of 1 to %d printable characters without "
			       "spaces on its first line", path, HTTPAPI_KEY_MAX);
		r = -EINVAL;
		goto out;
	}
	explicit_bzero(h->key, sizeof(h->key));
	memcpy(h->key, buf, (size_t)n);
	h->keylen = (size_t)n;
out:
	(void)close(fd);
	return r;
}

static bool httpapi_key_sig_same(const struct httpapi_key_sig *a,
				  const struct httpapi_key_sig *b)
{
	if (a->missing || b->missing)
		return a->missing == b->missing;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/*
 * Keys are rotated by changing the key file: before a request is checked,
 * the file is looked at (at most once a second), and a new version is read
 * with the same checks as at start. One that passes replaces the key; one
 * that does not leaves the previous key in use. Either is said in one line,
 * once per version of the file.
 */
static void httpapi_key_refresh(struct httpapi *h)
{
	struct httpapi_key_sig now_sig = { .missing = true };
	char err[512], old[HTTPAPI_KEY_MAX + 1];
	size_t oldlen = h->keylen;
	struct stat st;
	uint64_t now = clock_now_ns();
	bool same;

	if (now - h->key_checked < HTTPAPI_KEY_CHECK_NS)
		return;
	h->key_checked = now;
	if (stat(h->key_path, &st) == 0)
		now_sig = httpapi_key_sig_of(&st);
	if (httpapi_key_sig_same(&now_sig, &h->key_sig))
		return;
	memcpy(old, h->key, sizeof(old));
	if (httpapi_read_key(h, h->key_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "profshim-collector: http: %s; the previous key "
			"stays in use\n", err);
	} else {
		same = oldlen == h->keylen && memcmp(old, h->key, oldlen) == 0;
		fprintf(stderr, "profshim-collector: http: the key file %s "
			"changed and was read again: %s\n", h->key_path,
			same ? "the key is the same"
			     : "a new key; the previous one no longer opens "
			       "the API");
	}
	explicit_bzero(old, sizeof(old));
}

/*
 * "PORT", "ADDR:PORT" or "[ADDR6]:PORT" into a socket address; 127.0.0.1
 * when no address is given, so nothing is exposed unless asked for.
 */
static int httpapi_parse_listen(const char *s, struct sockaddr_storage *ss,
				bool *ipv6)
{
	char host[INET6_ADDRSTRLEN + 2] = "127.0.0.1";
	const char *port = s;
	char *end;
	long v;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':' ||
		    (size_t)(close - s - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(close - s - 1));
		host[close - s - 1] = '\0';
		port = close + 2;
	} else if (strchr(s, ':')) {
		const char *colon = strrchr(s, ':');

		if ((size_t)(colon - s) >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		port = colon + 1;
	}
	errno = 0;
	v = strtol(port, &end, 10);
	if (errno || end == port || *end || v < 0 || v > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)v);
		*ipv6 = true;
		return 0;
	}
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)v);
		*ipv6 = false;
		return 0;
	}
	return -EINVAL;
}

/* The presented key against ours, in time that does not depend on where
 * they first differ. */
static bool httpapi_key_ok(const struct httpapi *h, const char *key)
{
	size_t n = key ? strlen(key) : 0;
	unsigned char diff = n != h->keylen;

	for (size_t i = 0; i < h->keylen; i++)
		diff |= (unsigned char)(h->key[i] ^ (i < n ? key[i] : 0));
	return key && diff == 0;
}

static bool httpapi_authorized(const struct httpapi *h,
			       struct MHD_Connection *c)
{
	const char *key = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						      "X-API-Key");
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       MHD_HTTP_HEADER_AUTHORIZATION);

	if (key && httpapi_key_ok(h, key))
		return true;
	if (auth && strncasecmp(auth, "Bearer ", 7) == 0) {
		auth += 7;
		while (*auth == ' ')
			auth++;
		return httpapi_key_ok(h, auth);
	}
	return false;
}

/* Queue `body` (malloc'd, taken) as the response; `allow` lists the
 * methods a 405 names. */
static enum MHD_Result httpapi_send(struct MHD_Connection *c, unsigned status,
				    const char *type, char *body, size_t len,
				    const char *allow)
{
	struct MHD_Response *resp;
	enum MHD_Result r;

	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (type)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					      type);
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				      "no-store");
	if (allow)
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	if (status == MHD_HTTP_UNAUTHORIZED)
		(void)MHD_add_response_header(resp,
					      MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					      "Bearer realm=\"profshim\"");
	r = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* {"error": msg}, with an Allow header naming `allow` unless it is NULL
 * (a 405 must name the methods the path takes). */
static enum MHD_Result httpapi_fail(struct MHD_Connection *c, unsigned status,
				    const char *msg, const char *allow)
{
	json_t *j = json_pack("{s:s}", "error", msg);
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!s)
		return MHD_NO;
	return httpapi_send(c, status, "application/json", s, strlen(s), allow);
}

static enum MHD_Result httpapi_error(struct MHD_Connection *c, unsigned status,
				     const char *msg)
{
	return httpapi_fail(c, status, msg, NULL);
}

/* 405 for a path that takes only `allow`. */
static enum MHD_Result httpapi_only(struct MHD_Connection *c,
				    const char *allow)
{
	return httpapi_fail(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			    strcmp(allow, "POST") == 0 ? "use POST" : "use GET",
			    allow);
}

static enum MHD_Result httpapi_json(struct MHD_Connection *c, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	if (!s)
		return httpapi_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				     "out of memory building the profile");
	return httpapi_send(c, MHD_HTTP_OK, "application/json", s, strlen(s),
			    NULL);
}

/* The whole profile, or with `summary` its summary, through a writer
 * (html_write, prom_write), then `extra` (the collector's own metrics)
 * when it is not NULL. */
static enum MHD_Result httpapi_render(struct httpapi *h,
				      struct MHD_Connection *c,
				      int (*render)(const struct profile *,
						    FILE *),
				      int (*extra)(void *, FILE *),
				      bool summary, const char *type)
{
	json_t *doc = summary ? h->ops.summary(h->ops.arg)
			      : h->ops.profile(h->ops.arg, NULL, NULL);
	struct profile *p = NULL;
	char err[256], *buf = NULL;
	size_t len = 0;
	FILE *f;
	int r = -ENOMEM;

	if (doc)
		r = profile_from_json(doc, &p, err, sizeof(err));
	json_decref(doc);
	if (r < 0)
		return httpapi_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				     "cannot build the profile");
	f = open_memstream(&buf, &len);
	r = f ? render(p, f) : -ENOMEM;
	if (r == 0 && extra)
		r = extra(h->ops.arg, f);
	if (f && fclose(f) != 0 && r == 0)
		r = -EIO;
	profile_free(p);
	if (r < 0) {
		free(buf);
		return httpapi_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				     "cannot render the report");
	}
	return httpapi_send(c, MHD_HTTP_OK, type, buf, len, NULL);
}

/*
 * Where `file_path` lands: relative paths are taken from the save
 * directory; the directory part, with its symbolic links resolved, must be
 * the save directory or below it, and the name must be a plain name. The
 * file itself is replaced by rename, which never follows a link there.
 */
static int httpapi_save_path(const struct httpapi *h, const char *file_path,
			     char *out, size_t outlen)
{
	char joined[PATH_MAX], dir[PATH_MAX];
	const char *slash, *name;
	size_t rootlen = strlen(h->save_dir);
	int n;

	if (file_path[0] == '/')
		n = snprintf(joined, sizeof(joined), "%s", file_path);
	else
		n = snprintf(joined, sizeof(joined), "%s/%s", h->save_dir,
			     file_path);
	if (n < 0 || (size_t)n >= sizeof(joined))
		return -ENAMETOOLONG;
	slash = strrchr(joined, '/');
	name = slash + 1;
	if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	joined[slash - joined] = '\0';
	if (!realpath(joined[0] ? joined : "/", dir))
		return -errno;
	if (rootlen == 1)  /* --save-dir / */
		rootlen = 0;
	if (strncmp(dir, h->save_dir, rootlen) != 0 ||
	    (dir[rootlen] != '\0' && dir[rootlen] != '/'))
		return -EACCES;
	n = snprintf(out, outlen, "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

static enum MHD_Result httpapi_save(struct httpapi *h, struct MHD_Connection *c)
{
	const char *p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						    "file_path");
	char path[PATH_MAX], err[512];
	int r;

	if (!h->save_dir)
		return httpapi_error(c, MHD_HTTP_FORBIDDEN,
				     "saving is off: start the collector with "
				     "--save-dir DIR");
	if (!p || !*p)
		return httpapi_error(c, MHD_HTTP_BAD_REQUEST,
				     "save needs ?file_path=NAME");
	r = httpapi_save_path(h, p, path, sizeof(path));
	if (r == -EACCES)
		return httpapi_error(c, MHD_HTTP_FORBIDDEN,
				     "file_path must lie in the save directory");
	if (r < 0) {
		(void)snprintf(err, sizeof(err), "bad file_path: %s",
			       strerror(-r));
		return httpapi_error(c, MHD_HTTP_BAD_REQUEST, err);
	}
	if (h->ops.save(h->ops.arg, path, err, sizeof(err)) < 0)
		return httpapi_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err);
	return httpapi_json(c, json_pack("{s:s}", "saved", path));
}

/* The access handler: one call per request, with its headers read. */
static enum MHD_Result httpapi_answer(void *cls, struct MHD_Connection *c,
				      const char *url, const char *method,
				      const char *version,
				      const char *upload_data,
				      size_t *upload_data_size, void **con_cls)
{
	struct httpapi *h = cls;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
		   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;

	(void)version;
	(void)upload_data;
	if (*con_cls) {
		/* Answered already; whatever body follows is not read. */
		*upload_data_size = 0;
		return MHD_YES;
	}
	*con_cls = h;
	httpapi_key_refresh(h);
	if (!httpapi_authorized(h, c))
		return httpapi_error(c, MHD_HTTP_UNAUTHORIZED,
				     "send the API key in X-API-Key or "
				     "Authorization: Bearer");
	if (strcmp(url, "/api/v1/profiling/data") == 0) {
		if (!get)
			return httpapi_only(c, "GET, HEAD");
		return httpapi_json(c, h->ops.profile(
			h->ops.arg,
			MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						    "endpoint"),
			MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND,
						    "function_name")));
	}
	if (strcmp(url, "/api/v1/profiling/reset") == 0) {
		if (!post)
			return httpapi_only(c, "POST");
		h->ops.reset(h->ops.arg);
		return httpapi_send(c, MHD_HTTP_NO_CONTENT, NULL, NULL, 0, NULL);
	}
	if (strcmp(url, "/api/v1/profiling/save") == 0) {
		if (!post)
			return httpapi_only(c, "POST");
		return httpapi_save(h, c);
	}
	if (strcmp(url, "/report.html") == 0 && get)
		return httpapi_render(h, c, html_write, NULL, false,
				      "text/html; charset=utf-8");
	if (strcmp(url, "/metrics") == 0 && get)
		return httpapi_render(h, c, prom_write, h->ops.metrics, true,
				      "text/plain; version=0.0.4; "
				      "charset=utf-8");
	if (strcmp(url, "/report.html") == 0 || strcmp(url, "/metrics") == 0)
		return httpapi_only(c, "GET, HEAD");
	return httpapi_error(c, MHD_HTTP_NOT_FOUND,
			     "no such path; the API has /api/v1/profiling/"
			     "{data,reset,save}, /report.html and /metrics");
}

int httpapi_start(struct httpapi **ret, const struct httpapi_opts *o,
		  const struct httpapi_ops *ops, char *err, size_t errlen)
{
	struct httpapi *h = calloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	bool ipv6 = false;
	int r;

	if (!h) {
		(void)snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	h->ops = *ops;
	if (httpapi_parse_listen(o->listen, &ss, &ipv6) < 0) {
		(void)snprintf(err, errlen, "'%.200s' is not PORT, ADDR:PORT or "
			       "[ADDR6]:PORT with a numeric address",
			       o->listen);
		r = -EINVAL;
		goto fail;
	}
	r = httpapi_read_key(h, o->key_file, err, errlen);
	if (r < 0)
		goto fail;
	h->key_path = strdup(o->key_file);
	if (!h->key_path) {
		(void)snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	h->key_checked = clock_now_ns();
	if (o->save_dir) {
		struct stat st;

		h->save_dir = realpath(o->save_dir, NULL);
		if (!h->save_dir || stat(h->save_dir, &st) < 0 ||
		    !S_ISDIR(st.st_mode)) {
			(void)snprintf(err, errlen, "--save-dir %.300s is not a "
				       "directory", o->save_dir);
			r = -ENOTDIR;
			goto fail;
		}
	}
	/* An address already bound makes libmicrohttpd fail without saying
	 * why; errno still holds the reason from bind(). */
	errno = 0;
	h->d = MHD_start_daemon(
		MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, httpapi_answer, h,
		/* First, or libmicrohttpd says so with its own logger. */
		MHD_OPTION_EXTERNAL_LOGGER, httpapi_log, h,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPAPI_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTPAPI_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPAPI_IDLE_SECONDS,
		MHD_OPTION_END);
	if (!h->d) {
		r = errno ? -errno : -EIO;
		(void)snprintf(err, errlen, "cannot listen on %.200s: %s%s",
			       o->listen, strerror(-r),
			       r == -EADDRINUSE ? " (choose another port)" : "");
		goto fail;
	}
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	h->fd = info ? info->epoll_fd : -1;
	info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = info ? info->port : 0;
	if (h->fd < 0) {
		(void)snprintf(err, errlen, "libmicrohttpd gave no epoll "
			       "descriptor");
		r = -EIO;
		goto fail;
	}
	*ret = h;
	return 0;
fail:
	httpapi_stop(h);
	return r;
}

int httpapi_fd(const struct httpapi *h)
{
	return h->fd;
}

unsigned httpapi_port(const struct httpapi *h)
{
	return h->port;
}

void httpapi_run(struct httpapi *h)
{
	(void)MHD_run(h->d);
}

void httpapi_stop(struct httpapi *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	explicit_bzero(h->key, sizeof(h->key));
	free(h->key_path);
	free(h->save_dir);
	free(h);
}

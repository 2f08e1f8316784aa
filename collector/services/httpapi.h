/*
 * httpapi.h — the collector's HTTP API (`record --http ADDR:PORT`):
 *
 *   GET  /api/v1/profiling/data[?function_name=F][&endpoint=E]
 *                                  the profile JSON, as `dump` prints it
 *   POST /api/v1/profiling/reset   clear the statistics; 204
 *   POST /api/v1/profiling/save?file_path=P
 *                                  write the profile JSON to P, which must
 *                                  lie in the save directory; 200
 *   GET  /report.html              the HTML report
 *   GET  /metrics                  Prometheus text exposition (prom.h): the
 *                                  profile's, then the collector's own
 *
 * Every request carries the key, in `X-API-Key: KEY` or
 * `Authorization: Bearer KEY`; any request without it, or with another key,
 * gets 401 before its path is looked at. The key file is looked at again,
 * at most once a second, before a request is checked: a changed file that
 * passes the start-up checks replaces the key, one that does not leaves
 * the previous key in use (one line on stderr either way). Errors are JSON
 * {"error": "one line"}.
 *
 * libmicrohttpd runs without threads of its own: httpapi_fd() is one file
 * descriptor the caller polls for reading, and httpapi_run() does whatever
 * work is ready without blocking. Handlers therefore run on the caller's
 * thread, between its other work, and may use its state freely. At most 64
 * connections are served at once; an idle one is closed after 10 s.
 */
#ifndef PROFSHIM_HTTPAPI_H
#define PROFSHIM_HTTPAPI_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* What the API does, supplied by the collector's loop. */
struct httpapi_ops {
	void *arg;
	/* The profile document (a new reference) of one endpoint or all
	 * (NULL), with only stacks through `function` (NULL: all); NULL when
	 * it cannot be built. */
	json_t *(*profile)(void *arg, const char *endpoint,
			   const char *function);
	/* The profile's summary (stats_json_summary(): counts and
	 * histograms, no stacks), for /metrics. */
	json_t *(*summary)(void *arg);
	/* Clear the statistics. */
	void (*reset)(void *arg);
	/* Write the profile to path (already checked to lie in the save
	 * directory). 0, or -1 with one line in err. */
	int (*save)(void *arg, const char *path, char *err, size_t errlen);
	/* Append the collector's own metrics to /metrics (prom.h's
	 * prom_write_collector()). 0, or a negative errno. */
	int (*metrics)(void *arg, FILE *out);
};

struct httpapi_opts {
	const char *listen;    /* "PORT", "ADDR:PORT" or "[ADDR6]:PORT";
				* ADDR defaults to 127.0.0.1 */
	const char *key_file;  /* holds the key; must not be readable, writable
				* or executable by group or others */
	const char *save_dir;  /* saves allowed under it, or NULL for none */
};

struct httpapi;

/*
 * Read the key, check the address, and start listening. Returns 0, or a
 * negative errno with one line in err saying what to do (-EPERM for a key
 * file others may read, -EINVAL for a bad address or an empty key,
 * -EADDRINUSE when the port is taken).
 */
int httpapi_start(struct httpapi **ret, const struct httpapi_opts *o,
		  const struct httpapi_ops *ops, char *err, size_t errlen);

/* The descriptor to poll for POLLIN. */
int httpapi_fd(const struct httpapi *h);

/* The port listened on (useful with port 0). */
unsigned httpapi_port(const struct httpapi *h);

/* Accept, read, answer and close whatever is ready; never blocks. */
void httpapi_run(struct httpapi *h);

/* Close every connection and the listening socket. NULL is a no-op. */
void httpapi_stop(struct httpapi *h);

#endif /* PROFSHIM_HTTPAPI_H */

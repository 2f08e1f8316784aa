/*
 * push_impl.h — what the parts of the push module share; not a public
 * interface (that is push.h).
 *
 *   push.c        the transfers: libcurl, the queue, backoff, the log
 *   push_url.c    checking the options: URL, application name, tags; the
 *                 name as the store gets it; keeping the token out of text
 *   push_delta.c  each look at the profile: samples per stack content and
 *                 what grew since the previous look, encoded as a body
 */
#ifndef PROFSHIM_PUSH_IMPL_H
#define PROFSHIM_PUSH_IMPL_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "services/push.h"
#include "util/table.h"

#define PUSH_QUEUE_MAX 16
/* Bytes of a failed reply shown in the log to say why. */
#define PUSH_REPLY_MAX 160

struct push_body {
	char *url;         /* the whole request URL, query included */
	char *data;
	size_t len;
	uint64_t samples;  /* what the body carries, for the log */
};

/* Samples per stack content in one look at the profile. */
struct push_counts {
	struct intern keys;
	uint64_t *counts;  /* by key id */
	size_t cap;
};

struct push {
	char *base;        /* the URL without trailing '/' */
	char *shown;       /* the same without user and password, for logs */
	char *name;        /* APP{k=v,...}, URL-encoded */
	char *token;       /* the bearer token (NULL for none), only to keep
			    * it out of the log; zeroed before it is freed */
	size_t token_len;
	bool folded;
	uint64_t interval_ns;

	CURLM *multi;
	CURL *easy;
	struct curl_slist *headers;
	bool busy;         /* easy is in multi: queue[0] is in flight */
	char curl_err[CURL_ERROR_SIZE];
	/* The start of a reply: PUSH_REPLY_MAX bytes and a token's length
	 * more, so a token the store echoes that begins within what the log
	 * shows is whole here and can be replaced. */
	char *reply;
	size_t reply_len, reply_cap;

	bool looked;       /* push_step() looked at the profile once */
	bool started;      /* the baseline is taken */
	uint64_t last_look;   /* CLOCK_MONOTONIC ns of the last look */
	int64_t from;      /* unix seconds the next push's interval starts at */
	struct push_counts prev;

	struct push_body queue[PUSH_QUEUE_MAX];
	size_t count;
	uint64_t retry_at; /* no transfer starts before this (monotonic ns) */
	uint64_t backoff;  /* ns; 0 after a success */

	uint64_t dropped, dropped_samples;  /* bodies given up on */
	uint64_t failures; /* since the last success */
	uint64_t failures_total, sent, sent_samples;  /* since the start */
	time_t failing_since;
	bool logged;       /* a failure line was printed since the last success */
	bool ever_logged;
	uint64_t logged_at;
	char reason[256];  /* the last failure */
};

/* push_url.c */

/*
 * Copy at most n bytes of src to dst (of size dstsz) for a log line:
 * control characters and bytes outside ASCII become '?'.
 */
void push_printable(char *dst, size_t dstsz, const char *src, size_t n);
/*
 * Copy the n bytes of src (fewer when a NUL comes first) to dst (of size
 * dstsz, truncated, NUL-terminated) with every occurrence of the token
 * (token_len bytes; none when 0) replaced by "<token>". Returns the length
 * of the whole result, as snprintf() does.
 */
size_t push_redact(const char *token, size_t token_len, char *dst,
		   size_t dstsz, const char *src, size_t n);
/* Whether s holds a control character. */
bool push_has_control(const char *s);
/* Print the reason into err; returns -EINVAL. */
int push_invalid(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Check the URL; p->base as requests use it, p->shown as logs show it.
 * 0 or a negative errno (with err for -EINVAL). */
int push_parse_url(struct push *p, const char *url, char *err, size_t errlen);
/* Check the app name and tags; p->name, the name query value. 0 or a
 * negative errno (with err for -EINVAL). */
int push_parse_name(struct push *p, const struct push_opts *o, char *err,
		    size_t errlen);

/* push_delta.c */

/* The unix second of the monotonic instant now_ns. */
int64_t push_unix_at(uint64_t now_ns);
/*
 * Look at the profile: queue what grew since the previous look (with
 * `baseline`, only remember it). Returns false when the look fails.
 */
bool push_take(struct push *p, uint64_t now, push_snapshot_fn snapshot,
	       void *arg, bool baseline);
void push_counts_free(struct push_counts *c);

/* push.c */

/* Record a failure (the reason as printf makes it) and maybe log it. */
void push_fail(struct push *p, uint64_t now, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void push_body_free(struct push_body *b);
/* Queue a body (taken over); the oldest one not in flight makes room. */
void push_enqueue(struct push *p, struct push_body *b);

#endif /* PROFSHIM_PUSH_IMPL_H */

/*
 * push.c — see push.h.
 *
 * The options are checked in push_url.c, the bodies made in push_delta.c;
 * this file sends them.
 *
 * Bodies wait in a queue of PUSH_QUEUE_MAX, the oldest first; only the
 * oldest is ever in flight, so the store receives them in order. A body
 * the store fails (a libcurl error or a status other than 2xx) is sent
 * again after a backoff growing from 1 s to 60 s, except when the store
 * says that body itself is wrong (400, 413, 415, 422): sending it again
 * would fail forever and hold up every later one, so it is dropped.
 */
#include "services/push_impl.h"
#include "util/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PUSH_BACKOFF_MIN_NS 1000000000ull
#define PUSH_BACKOFF_MAX_NS 60000000000ull
#define PUSH_LOG_EVERY_NS 60000000000ull
#define PUSH_CONNECT_TIMEOUT_MS 5000L
#define PUSH_TIMEOUT_MS 30000L

/*
 * Print one line (fmt without its newline) on stderr, the token replaced:
 * a store or proxy that echoes the request's headers in its reply, or a
 * URL that happens to hold the token, must not put it in the log. Nothing
 * is printed when there is no memory to build the line.
 */
static void push_say(const struct push *p, const char *fmt, ...)
{
	va_list ap;
	char *line, *shown;
	size_t need;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	need = push_redact(p->token, p->token_len, NULL, 0, line, (size_t)n);
	shown = malloc(need + 2);
	if (shown) {
		(void)push_redact(p->token, p->token_len, shown, need + 1, line,
				  (size_t)n);
		shown[need] = '\n';
		shown[need + 1] = '\0';
		fputs(shown, stderr);
	}
	free(shown);
	free(line);
}

/* libcurl's write callback: keep the start of the reply for the log. */
static size_t push_on_reply(char *data, size_t size, size_t n, void *arg)
{
	struct push *p = arg;
	size_t len = size * n, room = p->reply_cap - p->reply_len;

	if (room > len)
		room = len;
	memcpy(p->reply + p->reply_len, data, room);
	p->reply_len += room;
	p->reply[p->reply_len] = '\0';
	return len;
}

static int push_setup_curl(struct push *p, const char *token, char *err,
			   size_t errlen)
{
	char *auth = NULL;
	struct curl_slist *h;
	CURLcode c = CURLE_OK;

	p->multi = curl_multi_init();
	p->easy = curl_easy_init();
	if (!p->multi || !p->easy)
		return -ENOMEM;
	h = curl_slist_append(NULL, p->folded ? "Content-Type: text/plain"
					      : "Content-Type: "
						"application/octet-stream");
	/* No "Expect: 100-continue" round trip before larger bodies. */
	if (h)
		p->headers = curl_slist_append(h, "Expect:");
	if (!p->headers) {
		curl_slist_free_all(h);
		return -ENOMEM;
	}
	if (token) {
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
			return -ENOMEM;
		h = curl_slist_append(p->headers, auth);
		/* The copy libcurl keeps is freed with the list; this one
		 * does not linger in freed memory. */
		explicit_bzero(auth, strlen(auth));
		free(auth);
		if (!h)
			return -ENOMEM;
		p->headers = h;
	}
	/* No signals (the collector's loop owns them), no redirects (a
	 * token must not follow one elsewhere), bounded waits. */
	c |= curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
	/* libcurl resolves names on a thread of its own. When a transfer
	 * ends while that lookup still waits for a slow or silent name
	 * server (the connect timeout; push_free() removing a transfer in
	 * flight), libcurl by default joins the thread, and the collector's
	 * loop would stop draining the rings for as long as the lookup takes
	 * (the resolver's timeouts, often 10 s or more). With quick exit it
	 * leaves the thread to end on its own, which frees its own data when
	 * the lookup returns. Older libcurl has no such option and joins. */
	c |= curl_easy_setopt(p->easy, CURLOPT_QUICK_EXIT, 1L);
#endif
	c |= curl_easy_setopt(p->easy, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	c |= curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	c |= curl_easy_setopt(p->easy, CURLOPT_PROTOCOLS,
			      (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	c |= curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS,
			      PUSH_CONNECT_TIMEOUT_MS);
	c |= curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, PUSH_TIMEOUT_MS);
	c |= curl_easy_setopt(p->easy, CURLOPT_POST, 1L);
	c |= curl_easy_setopt(p->easy, CURLOPT_HTTPHEADER, p->headers);
	c |= curl_easy_setopt(p->easy, CURLOPT_USERAGENT, "profshim-collector");
	c |= curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, push_on_reply);
	c |= curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, p);
	c |= curl_easy_setopt(p->easy, CURLOPT_ERRORBUFFER, p->curl_err);
	if (c != CURLE_OK) {
		(void)snprintf(err, errlen, "libcurl does not take the "
			       "transfer options");
		return -ENOTSUP;
	}
	return 0;
}

int push_new(struct push **ret, const struct push_opts *o, char *err,
	     size_t errlen)
{
	struct push *p;
	int r;

	*ret = NULL;
	if (!(o->interval > 0))
		return push_invalid(err, errlen, "the push interval must be "
				    "above 0 seconds");
	if (o->format && strcmp(o->format, "pprof") != 0 &&
	    strcmp(o->format, "folded") != 0)
		return push_invalid(err, errlen, "the push format is pprof or "
				    "folded");
	/* Not quoted: the token is a secret. */
	if (o->token && push_has_control(o->token))
		return push_invalid(err, errlen, "PYROSCOPE_AUTH_TOKEN holds "
				    "control characters");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		(void)snprintf(err, errlen, "libcurl cannot start");
		return -ENOMEM;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		r = -ENOMEM;
		goto fail;
	}
	p->folded = o->format && strcmp(o->format, "folded") == 0;
	if (o->token && *o->token) {
		p->token = strdup(o->token);
		if (!p->token) {
			r = -ENOMEM;
			goto fail;
		}
		p->token_len = strlen(p->token);
	}
	p->reply_cap = PUSH_REPLY_MAX + p->token_len;
	p->reply = malloc(p->reply_cap + 1);
	if (!p->reply) {
		r = -ENOMEM;
		goto fail;
	}
	p->interval_ns = o->interval >= 1e9 ? UINT64_MAX / 2
					    : (uint64_t)(o->interval * 1e9);
	r = push_parse_url(p, o->url ? o->url : "", err, errlen);
	if (r == 0)
		r = push_parse_name(p, o, err, errlen);
	if (r == 0)
		r = push_setup_curl(p, o->token, err, errlen);
	if (r < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	if (r == -ENOMEM)
		(void)snprintf(err, errlen, "out of memory");
	/* A tag or app name quoted in err might hold the token. */
	if (o->token && *o->token && errlen) {
		char *shown = strdup(err);

		if (shown)
			(void)push_redact(o->token, strlen(o->token), err,
					  errlen, shown, strlen(shown));
		else
			(void)snprintf(err, errlen, "out of memory");
		free(shown);
	}
	if (p)
		push_free(p); /* its curl_global_cleanup() pairs with ours */
	else
		curl_global_cleanup();
	return r;
}

/*
 * Say why pushing fails, at most once a minute: the first failure after a
 * success at once, then how many followed.
 */
static void push_log(struct push *p, uint64_t now)
{
	char since[32];
	struct tm tm;

	if (p->ever_logged && now < p->logged_at + PUSH_LOG_EVERY_NS)
		return;
	if (!localtime_r(&p->failing_since, &tm) ||
	    !strftime(since, sizeof(since), "%H:%M:%S", &tm))
		(void)snprintf(since, sizeof(since), "start");
	push_say(p,
		 "profshim-collector: push to %s failed: %s (%" PRIu64
		 " failure%s since %s, %zu bod%s queued, %" PRIu64
		 " dropped); retrying",
		 p->shown, p->reason, p->failures, p->failures == 1 ? "" : "s",
		 since, p->count, p->count == 1 ? "y" : "ies", p->dropped);
	p->logged = p->ever_logged = true;
	p->logged_at = now;
}

void push_fail(struct push *p, uint64_t now, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
	p->failures_total++;
	if (!p->failures++)
		p->failing_since = time(NULL);
	push_log(p, now);
}

void push_body_free(struct push_body *b)
{
	free(b->url);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Forget queue[i], which is not in flight. */
static void push_remove(struct push *p, size_t i)
{
	push_body_free(&p->queue[i]);
	memmove(&p->queue[i], &p->queue[i + 1],
		(p->count - i - 1) * sizeof(p->queue[0]));
	p->count--;
	memset(&p->queue[p->count], 0, sizeof(p->queue[0]));
}

/* Queue a body (taken over); the oldest one not in flight makes room. */
void push_enqueue(struct push *p, struct push_body *b)
{
	if (p->count == PUSH_QUEUE_MAX) {
		size_t victim = p->busy ? 1 : 0;

		p->dropped++;
		p->dropped_samples += p->queue[victim].samples;
		push_remove(p, victim);
	}
	p->queue[p->count++] = *b;
}

/* ------------------------------------------------------------------------ */
/* Transfers                                                                */
/* ------------------------------------------------------------------------ */

static void push_start(struct push *p, uint64_t now)
{
	struct push_body *b = &p->queue[0];
	CURLcode c = CURLE_OK;

	p->curl_err[0] = '\0';
	p->reply_len = 0;
	p->reply[0] = '\0';
	c |= curl_easy_setopt(p->easy, CURLOPT_URL, b->url);
	c |= curl_easy_setopt(p->easy, CURLOPT_POSTFIELDSIZE_LARGE,
			      (curl_off_t)b->len);
	c |= curl_easy_setopt(p->easy, CURLOPT_POSTFIELDS, b->data);
	if (c != CURLE_OK || curl_multi_add_handle(p->multi, p->easy) !=
				     CURLM_OK) {
		p->retry_at = now + PUSH_BACKOFF_MIN_NS;
		push_fail(p, now, "libcurl cannot start the transfer");
		return;
	}
	p->busy = true;
}

/*
 * What the log says of n bytes of src (a reply, libcurl's error): the
 * token replaced before the text is cut to PUSH_REPLY_MAX bytes, so not
 * even its start shows, and no control characters.
 */
static void push_why(const struct push *p, char *why, size_t whysz,
		     const char *src, size_t n)
{
	char redacted[PUSH_REPLY_MAX + 1];

	(void)push_redact(p->token, p->token_len, redacted, sizeof(redacted),
			  src, n);
	push_printable(why, whysz, redacted, sizeof(redacted) - 1);
}

/* The transfer of queue[0] ended with `result`. */
static void push_done(struct push *p, uint64_t now, CURLcode result)
{
	long status = 0;
	char why[PUSH_REPLY_MAX + 1];

	(void)curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	(void)curl_multi_remove_handle(p->multi, p->easy);
	p->busy = false;
	if (result == CURLE_OK && status >= 200 && status < 300) {
		p->sent++;
		p->sent_samples += p->queue[0].samples;
		push_remove(p, 0);
		p->backoff = 0;
		p->retry_at = 0;
		if (p->logged)
			push_say(p,
				 "profshim-collector: push to %s works again "
				 "(after %" PRIu64 " failure%s; %" PRIu64
				 " bodies dropped so far)",
				 p->shown, p->failures,
				 p->failures == 1 ? "" : "s", p->dropped);
		p->failures = 0;
		p->logged = false;
		return;
	}
	if (result != CURLE_OK) {
		const char *e = p->curl_err[0] ? p->curl_err
					       : curl_easy_strerror(result);

		push_why(p, why, sizeof(why), e, strlen(e));
		push_fail(p, now, "%s", why);
	} else {
		bool permanent = status == 400 || status == 413 ||
				 status == 415 || status == 422;

		push_why(p, why, sizeof(why), p->reply, p->reply_len);
		if (permanent) {
			p->dropped++;
			p->dropped_samples += p->queue[0].samples;
			push_remove(p, 0);
		}
		push_fail(p, now, "HTTP %ld%s%s%s", status, *why ? ": " : "",
			  why, permanent ? " (that body is dropped)" : "");
		if (permanent)
			return;
	}
	p->backoff = p->backoff ? 2 * p->backoff : PUSH_BACKOFF_MIN_NS;
	if (p->backoff > PUSH_BACKOFF_MAX_NS)
		p->backoff = PUSH_BACKOFF_MAX_NS;
	p->retry_at = now + p->backoff;
}

/*
 * Advance transfers without waiting: start the oldest body when its time
 * has come, let libcurl do what its sockets allow, collect the end. A
 * success lets the next body start at once.
 */
static void push_pump(struct push *p, uint64_t now)
{
	for (int round = 0; round < 4; round++) {
		bool ended = false;
		CURLMsg *m;
		int running, left;

		if (!p->busy && p->count && now >= p->retry_at)
			push_start(p, now);
		if (!p->busy)
			return;
		(void)curl_multi_perform(p->multi, &running);
		while ((m = curl_multi_info_read(p->multi, &left)))
			if (m->msg == CURLMSG_DONE && m->easy_handle == p->easy) {
				push_done(p, now, m->data.result);
				ended = true;
			}
		if (!ended)
			return;
	}
}

void push_step(struct push *p, uint64_t now_ns, push_snapshot_fn snapshot,
	       void *arg)
{
	if (!p->looked || now_ns - p->last_look >= p->interval_ns) {
		p->looked = true;
		p->last_look = now_ns;
		/* A baseline that could not be taken is tried again after
		 * an interval. */
		if (!p->started) {
			p->from = push_unix_at(now_ns);
			p->started = push_take(p, now_ns, snapshot, arg, true);
		} else {
			(void)push_take(p, now_ns, snapshot, arg, false);
		}
	}
	push_pump(p, now_ns);
}

void push_reset(struct push *p, uint64_t now_ns, push_snapshot_fn snapshot,
		void *arg)
{
	if (!p->started)
		return;
	(void)push_take(p, now_ns, snapshot, arg, false);
	push_counts_free(&p->prev);
	push_pump(p, now_ns);
}

void push_finish(struct push *p, push_snapshot_fn snapshot, void *arg,
		 double seconds)
{
	uint64_t now = clock_now_ns();
	uint64_t deadline = now + (uint64_t)(seconds > 0 ? seconds * 1e9 : 0);
	uint64_t samples = 0;
	char left[400] = "", dropped[100] = "";

	if (p->started)
		(void)push_take(p, now, snapshot, arg, false);
	/* The last chance: a store failing for a while is tried at once. */
	p->retry_at = now;
	p->backoff = 0;
	while (p->count) {
		uint64_t wait;

		push_pump(p, now);
		now = clock_now_ns();
		if (!p->count || now >= deadline)
			break;
		wait = deadline - now;
		if (p->busy) {
			if (wait > 100000000ull)
				wait = 100000000ull;
			(void)curl_multi_poll(p->multi, NULL, 0,
					      (int)(wait / 1000000) + 1, NULL);
		} else if (p->retry_at > now) {
			struct timespec ts;

			if (p->retry_at - now < wait)
				wait = p->retry_at - now;
			ts.tv_sec = (time_t)(wait / 1000000000ull);
			ts.tv_nsec = (long)(wait % 1000000000ull);
			(void)nanosleep(&ts, NULL);
		}
		now = clock_now_ns();
	}
	if (!p->count && !p->dropped)
		return;
	for (size_t i = 0; i < p->count; i++)
		samples += p->queue[i].samples;
	if (p->count)
		(void)snprintf(left, sizeof(left),
			       "%zu bod%s (%" PRIu64 " samples) not delivered "
			       "within %g s: %s",
			       p->count, p->count == 1 ? "y" : "ies", samples,
			       seconds, p->busy ? "no answer yet" : p->reason);
	if (p->dropped)
		(void)snprintf(dropped, sizeof(dropped),
			       "%s%" PRIu64 " bod%s (%" PRIu64 " samples) "
			       "dropped during the recording",
			       p->count ? "; " : "", p->dropped,
			       p->dropped == 1 ? "y" : "ies",
			       p->dropped_samples);
	push_say(p, "profshim-collector: push to %s: %s%s", p->shown, left,
		 dropped);
}

void push_counters(const struct push *p, struct push_counters *out)
{
	*out = (struct push_counters){
		.sent_bodies = p->sent, .sent_samples = p->sent_samples,
		.dropped_bodies = p->dropped,
		.dropped_samples = p->dropped_samples,
		.failures = p->failures_total, .queued_bodies = p->count};
}

void push_free(struct push *p)
{
	if (!p)
		return;
	if (p->busy)
		(void)curl_multi_remove_handle(p->multi, p->easy);
	if (p->easy)
		curl_easy_cleanup(p->easy);
	if (p->multi)
		curl_multi_cleanup(p->multi);
	curl_slist_free_all(p->headers);
	for (size_t i = 0; i < p->count; i++)
		push_body_free(&p->queue[i]);
	push_counts_free(&p->prev);
	free(p->base);
	free(p->shown);
	free(p->name);
	/* Neither the token nor a reply that may have echoed it stays in
	 * freed memory. */
	if (p->token)
		explicit_bzero(p->token, p->token_len);
	free(p->token);
	if (p->reply)
		explicit_bzero(p->reply, p->reply_cap + 1);
	free(p->reply);
	free(p);
	curl_global_cleanup();
}

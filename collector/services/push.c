/*
 * push.c — see push.h.
 *
 * Each look at the profile counts its samples per stack, keyed by what the
 * stack is (endpoint, then each frame's function, module, file and line):
 * frame and stack indices are only meaningful within one document, the
 * symbolized content is the same in every one. The pushed body is the
 * profile with each stack's count replaced by its growth since the previous
 * look, written by the encoders `report` uses (pprof.h, folded.h).
 *
 * Bodies wait in a queue of PUSH_QUEUE_MAX, the oldest first; only the
 * oldest is ever in flight, so the store receives them in order. A body
 * the store fails (a libcurl error or a status other than 2xx) is sent
 * again after a backoff growing from 1 s to 60 s, except when the store
 * says that body itself is wrong (400, 413, 415, 422): sending it again
 * would fail forever and hold up every later one, so it is dropped.
 */
#include "services/push.h"
#include "util/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/bytebuf.h"
#include "formats/folded.h"
#include "formats/pprof.h"
#include "model/profile.h"
#include "util/table.h"

#define PUSH_QUEUE_MAX 16
#define PUSH_BACKOFF_MIN_NS 1000000000ull
#define PUSH_BACKOFF_MAX_NS 60000000000ull
#define PUSH_LOG_EVERY_NS 60000000000ull
#define PUSH_CONNECT_TIMEOUT_MS 5000L
#define PUSH_TIMEOUT_MS 30000L
/* Bytes of a failed reply shown in the log to say why. */
#define PUSH_REPLY_MAX 160
/* What the log shows in place of the token. */
#define PUSH_TOKEN_SHOWN "<token>"

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

/*
 * The unix second of the monotonic instant now_ns, both clocks read
 * together: an interval's end is the time of the loop's turn that looked,
 * so looks `interval` apart end that far apart however long each took.
 */
static int64_t push_unix_at(uint64_t now_ns)
{
	struct timespec real, mono;
	int64_t mono_ns, real_ns;

	(void)clock_gettime(CLOCK_REALTIME, &real);
	(void)clock_gettime(CLOCK_MONOTONIC, &mono);
	real_ns = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec;
	mono_ns = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
	real_ns -= mono_ns - (int64_t)now_ns;
	return real_ns >= 0 ? real_ns / 1000000000 : 0;
}

/*
 * Copy at most n bytes of src to dst (of size dstsz) for a log line:
 * control characters and bytes outside ASCII become '?', so no text a user
 * or a server supplied can break the line or the terminal.
 */
static void push_printable(char *dst, size_t dstsz, const char *src, size_t n)
{
	size_t j = 0;

	for (size_t i = 0; i < n && src[i] && j + 1 < dstsz; i++)
		dst[j++] = (unsigned char)src[i] < 0x20 ||
					   (unsigned char)src[i] >= 0x7f
				   ? '?'
				   : src[i];
	if (dstsz)
		dst[j] = '\0';
}

/*
 * Copy the n bytes of src (fewer when a NUL comes first) to dst (of size
 * dstsz, truncated, NUL-terminated) with every occurrence of the token
 * (token_len bytes; none when 0) replaced by PUSH_TOKEN_SHOWN. Returns the
 * length of the whole result, as snprintf() does: a dst of that size plus
 * one would hold it.
 */
static size_t push_redact(const char *token, size_t token_len, char *dst,
			  size_t dstsz, const char *src, size_t n)
{
	size_t i = 0, j = 0;

	while (i < n && src[i]) {
		const char *piece = src + i;
		size_t len = 1;

		if (token_len && n - i >= token_len &&
		    memcmp(src + i, token, token_len) == 0) {
			piece = PUSH_TOKEN_SHOWN;
			len = sizeof(PUSH_TOKEN_SHOWN) - 1;
			i += token_len;
		} else {
			i++;
		}
		for (size_t k = 0; k < len; k++, j++)
			if (j + 1 < dstsz)
				dst[j] = piece[k];
	}
	if (dstsz)
		dst[j < dstsz ? j : dstsz - 1] = '\0';
	return j;
}

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

static bool push_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int push_invalid(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Percent-encode s (every byte but RFC 3986's unreserved ones). NULL on
 * ENOMEM; free() the result. */
static char *push_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(3 * strlen(s) + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

/*
 * Check the URL and keep it twice: as requests use it, and as logs show it
 * (without a user or password it may carry). Both lose trailing slashes:
 * requests go to BASE/ingest.
 */
static int push_parse_url(struct push *p, const char *url, char *err,
			  size_t errlen)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL, *query = NULL, *frag = NULL;
	char *full = NULL, *bare = NULL;
	int r;

	if (strncasecmp(url, "http://", 7) != 0 &&
	    strncasecmp(url, "https://", 8) != 0)
		return push_invalid(err, errlen, "the store's URL must start "
				    "with http:// or https://");
	if (push_has_control(url) || strchr(url, ' '))
		return push_invalid(err, errlen, "the store's URL holds spaces "
				    "or control characters");
	u = curl_url();
	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    !*host) {
		r = push_invalid(err, errlen, "the store's URL is not a valid "
				 "http:// or https:// URL");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
		r = push_invalid(err, errlen, "the store's URL must not have a "
				 "query or fragment (pushes go to "
				 "URL/ingest?...)");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_URL, &bare, 0) != CURLUE_OK) {
		r = -ENOMEM;
		goto out;
	}
	p->base = strdup(full);
	p->shown = strdup(bare);
	if (!p->base || !p->shown) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t n = strlen(p->base); n && p->base[n - 1] == '/'; n--)
		p->base[n - 1] = '\0';
	for (size_t n = strlen(p->shown); n && p->shown[n - 1] == '/'; n--)
		p->shown[n - 1] = '\0';
	r = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(query);
	curl_free(frag);
	curl_free(full);
	curl_free(bare);
	curl_url_cleanup(u);
	return r;
}

/* A Pyroscope label name: [A-Za-z_][A-Za-z0-9_.]*. */
static bool push_label_key(const char *k, size_t n)
{
	if (!n || !((k[0] >= 'A' && k[0] <= 'Z') ||
		    (k[0] >= 'a' && k[0] <= 'z') || k[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= 'a' && k[i] <= 'z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_' ||
		      k[i] == '.'))
			return false;
	return true;
}

/* Check the tags and the app name; the name query value in p->name. */
static int push_parse_name(struct push *p, const struct push_opts *o,
			   char *err, size_t errlen)
{
	char shown[80], *name, *w;
	size_t len;

	if (!o->app || !*o->app)
		return push_invalid(err, errlen, "the application name (--app) "
				    "must not be empty");
	if (push_has_control(o->app) || strpbrk(o->app, "{}")) {
		push_printable(shown, sizeof(shown), o->app, 64);
		return push_invalid(err, errlen, "the application name '%s' "
				    "must not contain '{', '}' or control "
				    "characters", shown);
	}
	len = strlen(o->app) + 3;
	for (size_t i = 0; i < o->ntags; i++) {
		const char *t = o->tags[i], *eq = strchr(t, '=');

		push_printable(shown, sizeof(shown), t, 64);
		if (!eq)
			return push_invalid(err, errlen, "tag '%s' is not "
					    "KEY=VALUE", shown);
		if (!push_label_key(t, (size_t)(eq - t)))
			return push_invalid(err, errlen, "tag '%s': the key must "
					    "be a letter or '_' followed by "
					    "letters, digits, '_' or '.'", shown);
		if (!eq[1] || push_has_control(eq + 1) ||
		    strpbrk(eq + 1, ",{}="))
			return push_invalid(err, errlen, "tag '%s': the value "
					    "must be non-empty, without ',', "
					    "'{', '}', '=' or control "
					    "characters", shown);
		for (size_t k = 0; k < i; k++)
			if (strncmp(o->tags[k], t, (size_t)(eq - t) + 1) == 0)
				return push_invalid(err, errlen, "tag '%s': "
						    "that key is given twice",
						    shown);
		len += strlen(t) + 1;
	}
	name = malloc(len);
	if (!name)
		return -ENOMEM;
	w = name + sprintf(name, "%s", o->app);
	if (o->ntags) {
		*w++ = '{';
		for (size_t i = 0; i < o->ntags; i++)
			w += sprintf(w, "%s%s", i ? "," : "", o->tags[i]);
		*w++ = '}';
		*w = '\0';
	}
	p->name = push_escape(name);
	free(name);
	return p->name ? 0 : -ENOMEM;
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

static void push_fail(struct push *p, uint64_t now, const char *fmt, ...)
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

static void push_body_free(struct push_body *b)
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
static void push_enqueue(struct push *p, struct push_body *b)
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
/* Deltas                                                                   */
/* ------------------------------------------------------------------------ */

/* A string and its terminating NUL: fields cannot run into each other. */
static void push_key_str(struct bytebuf *k, const char *s)
{
	bytebuf_append(k, s ? s : "", strlen(s ? s : "") + 1);
}

/* What stack i of the document is, the same in every look. */
static void push_key_stack(struct bytebuf *k, const struct profile *p,
			   size_t i, const char *endpoint)
{
	const struct profile_stack *s = &p->stacks[i];

	k->len = 0;
	push_key_str(k, endpoint);
	for (uint32_t j = 0; j < s->nframes; j++) {
		const struct profile_frame *f = &p->frames[s->frames[j]];
		const struct profile_module *m =
			f->module >= 0 ? &p->modules[f->module] : NULL;

		push_key_str(k, f->function);
		push_key_str(k, m ? m->path : NULL);
		push_key_str(k, m ? m->build_id : NULL);
		push_key_str(k, f->file);
		bytebuf_append(k, &f->line, sizeof(f->line));
	}
}

static void push_counts_free(struct push_counts *c)
{
	intern_free(&c->keys);
	free(c->counts);
	memset(c, 0, sizeof(*c));
}

/*
 * Count the document's samples per stack content into c (empty before);
 * rep[id] is the first stack of key id, for its frames and endpoint.
 * Returns 0 or -ENOMEM.
 */
static int push_count(const struct profile *p, struct push_counts *c,
		      size_t **ret_rep)
{
	json_t *stacks = json_object_get(p->root, "stacks");
	struct bytebuf k = {0};
	size_t *rep = malloc((p->nstacks + 1) * sizeof(*rep));
	int r = -ENOMEM;

	*ret_rep = NULL;
	if (!rep)
		return -ENOMEM;
	for (size_t i = 0; i < p->nstacks; i++) {
		/* By name: an endpoint missing from `data` has no index. */
		const char *ep = json_string_value(json_object_get(
			json_array_get(stacks, i), "endpoint"));
		size_t known = c->keys.count;
		int64_t id;

		push_key_stack(&k, p, i, ep);
		if (k.nomem)
			goto out;
		id = intern_put(&c->keys, k.data, k.len);
		if (id < 0)
			goto out;
		if ((size_t)id >= c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 64;
			uint64_t *v = realloc(c->counts, cap * sizeof(*v));

			if (!v)
				goto out;
			memset(v + c->cap, 0, (cap - c->cap) * sizeof(*v));
			c->counts = v;
			c->cap = cap;
		}
		if (c->keys.count > known)
			rep[id] = i;
		c->counts[id] += p->stacks[i].samples;
	}
	*ret_rep = rep;
	rep = NULL;
	r = 0;
out:
	free(rep);
	bytebuf_free(&k);
	return r;
}

/*
 * Were the statistics cleared since the previous look? Counts only grow
 * otherwise, so a stack counted before that is missing now or has fewer
 * samples says so; the whole document then counts from 0.
 */
static bool push_was_reset(const struct push_counts *prev,
			   const struct push_counts *cur)
{
	for (size_t id = 0; id < prev->keys.count; id++) {
		size_t len;
		const void *key = intern_get(&prev->keys, (uint32_t)id, &len);
		int64_t now = intern_find(&cur->keys, key, len);

		if (prev->counts[id] &&
		    (now < 0 || cur->counts[now] < prev->counts[id]))
			return true;
	}
	return false;
}

/* Encode the body of the stacks d (the deltas) into b. 0 or -errno. */
static int push_encode(const struct push *p, const struct profile *d,
		       struct push_body *b)
{
	FILE *f = open_memstream(&b->data, &b->len);
	int r;

	if (!f)
		return -ENOMEM;
	r = p->folded ? folded_write(d, f) : pprof_write(d, f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(b->data);
		b->data = NULL;
	}
	return r;
}

static int push_url(const struct push *p, const struct profile *prof,
		    int64_t from, int64_t until, struct push_body *b)
{
	double hz = 1e9 / prof->period_ns;

	if (asprintf(&b->url,
		     "%s/ingest?name=%s&from=%" PRId64 "&until=%" PRId64
		     "&format=%s&sampleRate=%.0f&spyName=profshim"
		     "&units=samples&aggregationType=sum",
		     p->base, p->name, from, until,
		     p->folded ? "folded" : "pprof",
		     hz >= 1 && hz < 1e9 ? round(hz) : 100.0) < 0) {
		b->url = NULL;
		return -ENOMEM;
	}
	return 0;
}

/*
 * Queue the body of what grew from p->prev to cur (nothing when nothing
 * did) for the interval from p->from to until. Returns 0 or -errno.
 */
static int push_queue_growth(struct push *p, const struct profile *prof,
			     const struct push_counts *cur, const size_t *rep,
			     int64_t until)
{
	bool reset = push_was_reset(&p->prev, cur);
	struct profile_stack *deltas;
	struct push_body b = {0};
	struct profile d;
	size_t nd = 0;
	int r = 0;

	deltas = malloc((cur->keys.count + 1) * sizeof(*deltas));
	if (!deltas)
		return -ENOMEM;
	for (size_t id = 0; id < cur->keys.count; id++) {
		size_t len;
		const void *key = intern_get(&cur->keys, (uint32_t)id, &len);
		int64_t old = reset ? -1 : intern_find(&p->prev.keys, key, len);
		uint64_t base = old >= 0 ? p->prev.counts[old] : 0;

		if (cur->counts[id] <= base)
			continue;
		deltas[nd] = prof->stacks[rep[id]];
		deltas[nd].samples = cur->counts[id] - base;
		deltas[nd].request = -1;
		b.samples += deltas[nd++].samples;
	}
	if (nd) {
		/* The document's tables, the deltas as its only stacks. */
		d = *prof;
		d.stacks = deltas;
		d.nstacks = nd;
		d.requests = NULL;
		d.nrequests = 0;
		r = push_encode(p, &d, &b);
		if (r == 0)
			r = push_url(p, prof, p->from, until, &b);
		if (r == 0)
			push_enqueue(p, &b);
		else
			push_body_free(&b);
	}
	free(deltas);
	return r;
}

/*
 * Look at the profile: queue what grew since the previous look (with
 * `baseline`, only remember it). An interval without samples sends
 * nothing; the next push starts where this look ended. Returns false when
 * the look fails: the previous one stays the reference, and the next push
 * covers both intervals.
 */
static bool push_take(struct push *p, uint64_t now, push_snapshot_fn snapshot,
		      void *arg, bool baseline)
{
	struct push_counts cur = {0};
	struct profile *prof = NULL;
	size_t *rep = NULL;
	json_t *doc = snapshot(arg);
	int64_t until = push_unix_at(now);
	char err[256];
	int r;

	if (!doc) {
		push_fail(p, now, "cannot build the profile (out of memory)");
		return false;
	}
	r = profile_from_json(doc, &prof, err, sizeof(err));
	json_decref(doc);
	if (r < 0) {
		push_fail(p, now, "cannot read the profile: %s", err);
		return false;
	}
	/* A clock set back must not make an interval end before it began. */
	if (until < p->from)
		until = p->from;
	r = push_count(prof, &cur, &rep);
	if (r == 0 && !baseline)
		r = push_queue_growth(p, prof, &cur, rep, until);
	if (r == 0) {
		push_counts_free(&p->prev);
		p->prev = cur;
		p->from = until;
	} else {
		push_counts_free(&cur);
		push_fail(p, now, "cannot encode the samples: %s", strerror(-r));
	}
	free(rep);
	profile_free(prof);
	return r == 0;
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

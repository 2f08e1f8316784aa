/*
 * push_url.c — checking what `record --push` is given before anything is
 * sent: the store's URL (and a copy without user and password for the
 * log), the application name and tags (and the name query value made of
 * them), and keeping the token out of every text that could show it.
 */
#include "services/push_impl.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What the log shows in place of the token. */
#define PUSH_TOKEN_SHOWN "<token>"

/*
 * Copy at most n bytes of src to dst (of size dstsz) for a log line:
 * control characters and bytes outside ASCII become '?', so no text a user
 * or a server supplied can break the line or the terminal.
 */
void push_printable(char *dst, size_t dstsz, const char *src, size_t n)
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
size_t push_redact(const char *token, size_t token_len, char *dst,
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

bool push_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

int push_invalid(char *err, size_t errlen, const char *fmt, ...)
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
int push_parse_url(struct push *p, const char *url, char *err,
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
int push_parse_name(struct push *p, const struct push_opts *o,
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

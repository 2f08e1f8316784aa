/*
 * http_target.h — what the HTTP/1.x request parser and the FastCGI
 * delimiter share about a request target (private to shim/http_req.c and
 * shim/fcgi.c; http.h and fcgi.h are the interfaces): the matcher of the
 * "scheme://" that starts an absolute-form target, and the query matcher
 * that finds profile=1|true|yes.
 *
 * Written once so that an HTTP request and the same request passed on by
 * FastCGI (REQUEST_URI, QUERY_STRING) get the same endpoint and the same
 * manual flag. Everything is static inline: it runs for every target byte
 * in the socket hooks. Same contract as http.h: no allocation, no locks, no
 * stdio, no system calls, bounded work per byte.
 */
#ifndef PROFSHIM_HTTP_TARGET_H
#define PROFSHIM_HTTP_TARGET_H

#include "http.h"
#include "http_scan.h"

/* Progress of "scheme://" at the target's start (a uint8_t the caller
 * keeps, zero to start). */
enum target_scheme {
	S_START = 0,   /* nothing seen yet */
	S_NAME,        /* a letter, then scheme characters */
	S_COLON,       /* "scheme:" */
	S_SLASH,       /* "scheme:/" */
	S_OFF,         /* not an absolute-form target */
};

/*
 * Follows "scheme://" at the start of a target, given its bytes one at a
 * time. Returns true when byte c completes it: the target is in absolute
 * form, and what was taken for its path so far was the scheme.
 */
static inline bool scheme_byte(uint8_t *scheme, unsigned char c)
{
	switch (*scheme) {
	case S_START:
		*scheme = is_alpha(c) ? S_NAME : S_OFF;
		return false;
	case S_NAME:
		if (c == ':')
			*scheme = S_COLON;
		else if (!is_scheme_char(c))
			*scheme = S_OFF;
		return false;
	case S_COLON:
		*scheme = c == '/' ? S_SLASH : S_OFF;
		return false;
	case S_SLASH:
		*scheme = S_OFF;
		return c == '/';
	default:
		return false;
	}
}

/* struct http_query.state; zero is "at the start of a parameter". */
enum query_state {
	Q_NAME = 0,    /* in a parameter name that may still be "profile" */
	Q_VALUE,       /* in the value of a "profile" parameter */
	Q_SKIP,        /* in a parameter of no interest, until '&' */
};

static const char param_profile[] = "profile";

#define PARAM_PROFILE_LEN (sizeof(param_profile) - 1)

/* The values of profile= that ask for a manual profile, in any case. */
static const struct {
	char text[8];
	uint8_t len;
} profile_values[] = { { "1", 1 }, { "true", 4 }, { "yes", 3 } };

#define PROFILE_VALUES (sizeof(profile_values) / sizeof(profile_values[0]))
#define PROFILE_MASK_ALL ((1u << PROFILE_VALUES) - 1)

/* Resets q to the start of a query string. */
static inline void query_reset(struct http_query *q)
{
	q->state = Q_NAME;
	q->idx = 0;
	q->mask = 0;
}

/*
 * Ends a query parameter (at '&' or at the end of the query): a "profile"
 * value of 1, true or yes sets *manual.
 */
static inline void query_param_end(struct http_query *q, bool *manual)
{
	unsigned k;

	if (q->state == Q_VALUE) {
		for (k = 0; k < PROFILE_VALUES; k++) {
			if ((q->mask & (1u << k)) &&
			    q->idx == profile_values[k].len)
				*manual = true;
		}
	}
	q->state = Q_NAME;
	q->idx = 0;
	q->mask = 0;
}

/* Narrows the candidate values of a "profile" parameter with byte c. */
static inline void query_value_byte(struct http_query *q, unsigned char c)
{
	unsigned k, i = q->idx;

	for (k = 0; k < PROFILE_VALUES; k++) {
		if (i >= profile_values[k].len ||
		    to_lower(c) != (unsigned char)profile_values[k].text[i])
			q->mask &= (uint8_t)~(1u << k);
	}
	if (q->idx < UINT8_MAX)
		q->idx++;
}

/* Takes a byte of the query string, looking for profile=1|true|yes. */
static inline void query_byte(struct http_query *q, bool *manual,
			      unsigned char c)
{
	if (c == '&') {
		query_param_end(q, manual);
		return;
	}
	switch (q->state) {
	case Q_NAME:
		if (c == '=' && q->idx == PARAM_PROFILE_LEN) {
			q->state = Q_VALUE;
			q->idx = 0;
			q->mask = PROFILE_MASK_ALL;
		} else if (q->idx < PARAM_PROFILE_LEN &&
			   to_lower(c) == (unsigned char)param_profile[q->idx]) {
			q->idx++;
		} else {
			q->state = Q_SKIP;
		}
		break;
	case Q_VALUE:
		query_value_byte(q, c);
		break;
	default:
		break;
	}
}

/*
 * Returns true when the query string s[0..n) has a parameter "profile" (any
 * case) whose value is 1, true or yes (any case): what query_byte() and
 * query_param_end() find a byte at a time.
 */
static inline bool query_asks_profile(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		const unsigned char *amp = memchr(s + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - s) : n;
		size_t vlen = end - i - (PARAM_PROFILE_LEN + 1);

		if (end - i > PARAM_PROFILE_LEN &&
		    s[i + PARAM_PROFILE_LEN] == '=' &&
		    lower_eq(s + i, param_profile, PARAM_PROFILE_LEN)) {
			for (unsigned k = 0; k < PROFILE_VALUES; k++)
				if (vlen == profile_values[k].len &&
				    lower_eq(s + end - vlen,
					     profile_values[k].text, vlen))
					return true;
		}
		i = end + 1;
	}
	return false;
}

#endif /* PROFSHIM_HTTP_TARGET_H */

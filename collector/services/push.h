/*
 * push.h — `record --push URL`: send the samples of each interval to a
 * Pyroscope-compatible store.
 *
 * Every `interval` seconds the collector's loop hands push_step() its whole
 * profile; this module keeps the stack counts it saw last time and encodes
 * only the difference (pprof, or folded lines) as one
 *
 *   POST URL/ingest?name=APP{k=v,…}&from=UNIX&until=UNIX&format=pprof
 *        &sampleRate=HZ&spyName=profshim&units=samples&aggregationType=sum
 *
 * with `Authorization: Bearer TOKEN` when a token is given. from and until
 * are the unix seconds of the looks at the profile (of the now_ns they
 * were given): each push starts where the previous look ended (the
 * previous push, or a look that found nothing new), so every sample is in
 * exactly one interval, and looks a second or more apart give from <
 * until (push_finish()'s may share its second with the look before it,
 * from == until). sampleRate is the profile's
 * rate (1e9 / period_ns). The pprof body is gzipped profile.proto as
 * pprof.h writes it (Content-Type application/octet-stream), the folded
 * one the lines of folded.h (text/plain).
 *
 * Transfers run on libcurl's multi interface, advanced a little on every
 * call: the loop that drains the rings is never blocked by a slow or absent
 * store (connect timeout 5 s, whole transfer 30 s, no signals, no
 * redirects), nor, with libcurl 7.87 or later, by a name server that does
 * not answer. Bodies wait in a queue of 16 and go out one at a time, in
 * order; one the store fails (a libcurl error, a status other than 2xx) is
 * sent again after a backoff from 1 s doubling to 60 s. A body the store
 * calls malformed (400, 413, 415, 422) is dropped instead, as is the oldest
 * one not in flight when the queue is full; both are counted. Failures are
 * logged on stderr at most once a minute, with how many there were, and
 * the return to working once. The token is never printed: wherever it
 * would show (a reply that echoes the request's headers, the URL, a tag
 * quoted in push_new()'s reason), "<token>" stands instead; nor is a user
 * or password in the URL.
 *
 * Not thread-safe; called from the collector's single loop only.
 */
#ifndef PROFSHIM_PUSH_H
#define PROFSHIM_PUSH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct push_opts {
	const char *url;          /* the store's base URL, http:// or https:// */
	const char *app;          /* application name (name=APP{…}) */
	const char *const *tags;  /* "key=value" each, ntags of them */
	size_t ntags;
	double interval;          /* seconds between pushes, > 0 */
	const char *format;       /* "pprof" (default when NULL) or "folded" */
	const char *token;        /* bearer token, or NULL for none */
};

struct push;

/*
 * The whole profile document now (a new reference, as stats_json() gives
 * it), or NULL when it cannot be built.
 */
typedef json_t *(*push_snapshot_fn)(void *arg);

/*
 * Check the options and set up libcurl: an http:// or https:// URL without
 * query or fragment, a non-empty app name without '{', '}' or control
 * characters, tags KEY=VALUE with KEY [A-Za-z_][A-Za-z0-9_.]* (each once)
 * and a non-empty VALUE without ',', '{', '}', '=' or control characters,
 * a token without control characters. Returns 0, or a negative errno
 * (-EINVAL for options) with one line in err.
 */
int push_new(struct push **ret, const struct push_opts *o, char *err,
	     size_t errlen);

/*
 * One turn of the collector's loop, `now_ns` on CLOCK_MONOTONIC. The first
 * call takes the baseline (stacks counted before it, such as those of a
 * resumed checkpoint, were pushed by an earlier run); afterwards, once
 * `interval` has passed, it takes snapshot(arg) and queues what was sampled
 * since the previous push (nothing when nothing was). Then it advances
 * transfers without waiting.
 */
void push_step(struct push *p, uint64_t now_ns, push_snapshot_fn snapshot,
	       void *arg);

/*
 * The statistics are about to be cleared (`reset`): queue what was sampled
 * since the previous push now, and count everything after it from zero.
 * Without this call a reset is still noticed at the next push (a stack
 * whose count fell), but the samples between the previous push and the
 * reset are not pushed. Nothing before the baseline.
 */
void push_reset(struct push *p, uint64_t now_ns, push_snapshot_fn snapshot,
		void *arg);

/*
 * At the end of a recording: queue what was sampled since the last push
 * and try for at most `seconds` to deliver the queue (bodies waiting for
 * their backoff are tried at once). Whatever is still undelivered, or was
 * dropped during the recording, is reported in one line.
 */
void push_finish(struct push *p, push_snapshot_fn snapshot, void *arg,
		 double seconds);

/* What pushing has done since the start, for the collector's metrics. */
struct push_counters {
	uint64_t sent_bodies, sent_samples;       /* the store took them */
	uint64_t dropped_bodies, dropped_samples; /* given up on */
	uint64_t failures;       /* failed attempts (a retried body counts
				  * once per attempt) */
	uint64_t queued_bodies;  /* waiting now, the one in flight included */
};

void push_counters(const struct push *p, struct push_counters *out);

/* Abort transfers still running and free everything. NULL is a no-op. */
void push_free(struct push *p);

#endif /* PROFSHIM_PUSH_H */

/*
 * stats_json.h — the profile JSON of doc/profile-json.md built from what
 * the collector has aggregated (stats.h): the writer of the schema that
 * model/profile.c reads (profile.h lists the parts reports read). Stacks
 * are kept as raw addresses and symbolized here, when JSON is built.
 *
 * stats.h includes this header, so its callers need not.
 */
#ifndef PROFSHIM_STATS_JSON_H
#define PROFSHIM_STATS_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct stats;
struct symbols;

/*
 * Build the profile JSON (profile.h lists the parts reports read). `endpoint`
 * keeps one endpoint; `function` keeps only stacks passing through that
 * function (an endpoint with none is left out). Either may be NULL. Returns
 * a new reference or NULL (ENOMEM).
 */
json_t *stats_json(struct stats *s, struct symbols *syms, const char *endpoint,
		   const char *function);

/*
 * The profile's summary: the same document without stacks, kept requests,
 * frames, modules and top functions (empty arrays), built without
 * symbolizing anything. Every count is the whole profile's; what /metrics
 * needs, at a fraction of the cost. A new reference or NULL (ENOMEM).
 */
json_t *stats_json_summary(struct stats *s);

/*
 * The request stats_event() accounted last, as one object: "id", "pid",
 * "endpoint", "duration" (s), "status", "manual", "samples" and, when it was
 * sampled, "top_frames": its functions by self samples, at most `nframes`
 * ([{"function", "module", "samples"}]). NULL when there is none.
 */
json_t *stats_json_last_request(struct stats *s, struct symbols *syms,
				unsigned nframes);

/* A signal's name, "SIGPROF", "SIGRTMAX-3" (as profile JSON writes it). */
void stats_signal_name(uint32_t sig, char *buf, size_t len);

/* Why a process stood aside (enum ring_aside), in words. */
const char *stats_aside_text(uint32_t why);

#endif /* PROFSHIM_STATS_JSON_H */

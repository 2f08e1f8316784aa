/*
 * stats.h — what the collector knows: processes, per-endpoint statistics,
 * stack samples and the bounded list of kept requests. The profile JSON of
 * doc/profile-json.md built from it is stats_json.h, included here so that
 * callers of stats.h have it.
 *
 * Every request is counted and timed per endpoint (calls, total, min, max,
 * percentiles from struct hist, status classes). Samples are aggregated per
 * endpoint as raw address stacks and symbolized only when JSON is built.
 * Kept requests: the ~100 slowest, the ~100 most recent, and every manual
 * (?profile=1) request up to STATS_MANUAL_MAX, each with its own stacks and
 * their times (up to STATS_TRACE_MAX samples a request).
 */
#ifndef PROFSHIM_STATS_H
#define PROFSHIM_STATS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ingest/reader.h"
#include "symbols/symbols.h"
#include "model/stats_json.h"

#define STATS_KEEP_SLOW 100
#define STATS_KEEP_RECENT 100
#define STATS_MANUAL_MAX 10000
#define STATS_TOP_FUNCTIONS 25
#define STATS_TRACE_MAX 4096

struct stats;

struct stats *stats_new(void);
void stats_free(struct stats *s);

/* Forget every count, sample and kept request; processes stay known. */
void stats_reset(struct stats *s);

/* Index of the running (not exited) process with this pid, or -ENOENT. */
int stats_process_find(const struct stats *s, uint32_t pid);

/* Index of the process with this pid, added when new; negative errno. */
int stats_process(struct stats *s, uint32_t pid, uint32_t ppid,
		  const char *exe);

/* Replace a process' module map (validated entries). */
int stats_set_modules(struct stats *s, int proc, const struct ring_module *m,
		      uint32_t n);

/* Record the ring's latest counters (absolute values) for a process. */
void stats_set_counters(struct stats *s, int proc,
			const struct reader_counters *c);

void stats_set_exited(struct stats *s, int proc);

/* The perf map its code outside modules is named from (symbols_jit_open()
 * of the symbolizer passed to the JSON writers), or 0 for none. */
void stats_set_jit(struct stats *s, int proc, uint32_t jit);

/* How the process samples (its ring header's clock and rates), which gives
 * the profile's sample type and the weight of one sample. */
void stats_set_sampling(struct stats *s, int proc, uint32_t clock,
			uint32_t hz, uint32_t manual_hz);

/*
 * The process' CPU clock as its ring now says. Returns true when that
 * changed what the profile says of it.
 */
bool stats_set_engine(struct stats *s, int proc, const struct reader_engine *e);

/* The kernel's perf_event_paranoid when the process' perf was refused
 * (after stats_set_engine() said the engine changed). */
void stats_set_paranoid(struct stats *s, int proc, int paranoid);

/* Account one drained record of process `proc`. Negative errno: ENOMEM. */
int stats_event(struct stats *s, int proc, const struct reader_event *ev);

/* Totals, for progress lines. */
void stats_totals(const struct stats *s, uint64_t *ret_requests,
		  uint64_t *ret_samples, uint64_t *ret_endpoints);

/*
 * Checkpoints. stats_state_json() is everything aggregated so far, in a
 * form stats_state_load() turns back into exactly this state (raw addresses,
 * full histograms, counters at the last reset, requests in flight); it is
 * not a profile. stats_state_load() fills an s fresh from stats_new();
 * on failure it returns a negative errno with one line in err, and s must be
 * freed.
 */
json_t *stats_state_json(const struct stats *s);
int stats_state_load(struct stats *s, const json_t *state, char *err,
		     size_t errlen);

#endif /* PROFSHIM_STATS_H */

/*
 * stats_impl.h — the aggregation state behind stats.h, shared by stats.c
 * (aggregation), stats_json.c (the profile JSON) and stats_state.c
 * (checkpoints). Nothing else includes it.
 */
#ifndef PROFSHIM_STATS_IMPL_H
#define PROFSHIM_STATS_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "util/hist.h"
#include "ingest/reader.h"
#include "util/table.h"

#define STATS_NO_REQUEST "(no request)"
#define STATS_PENDING_MAX 100000

struct process {
	uint32_t pid;
	uint32_t ppid;
	char *exe;
	bool exited;
	struct ring_module *mods;
	uint32_t nmods;
	uint32_t jit;                 /* its perf map (symbols_jit_open()), 0 */
	uint32_t clock, hz;           /* how its samples are taken */
	uint32_t manual_hz;           /* PROFILING_MANUAL_HZ */
	struct reader_engine engine;  /* its CPU clock, as last read */
	int paranoid;                 /* perf_event_paranoid then, -1: unknown */
	struct reader_counters now;   /* latest values read from the ring */
	struct reader_counters base;  /* values at the last reset */
};

struct endpoint {
	uint64_t calls;
	uint64_t total_ns;
	uint64_t sampled_calls;
	uint64_t samples;
	uint64_t status[6];           /* 1xx..5xx, then none/other */
	uint64_t aborted;             /* closed before a complete response */
	struct hist hist;
};

/*
 * A request's own samples, in arrival order: the stack (id in
 * stats.stacks) and when it was taken. Shared by the kept lists that hold
 * the request (slowest, most recent, manual); freed with the last.
 */
struct trace {
	uint32_t refs;
	uint32_t n, cap;
	struct trace_sample {
		uint32_t stack;
		double time;          /* epoch seconds */
	} *v;
};

struct kept {
	struct trace *trace;          /* NULL: no samples */
	uint64_t req_id;
	uint32_t proc;
	uint32_t tid;
	uint32_t endpoint;            /* id in stats.names */
	uint32_t status;
	uint32_t samples;
	uint16_t flags;
	double start;
	uint64_t duration_ns;
};

struct stats {
	struct process *procs;
	size_t nprocs, procs_cap;

	struct intern names;          /* endpoint names -> endpoint ids */
	struct endpoint **eps;        /* by endpoint id, NULL until used */
	size_t eps_cap;

	struct intern stacks;         /* (proc, frames...) -> stack id */
	struct pairmap stack_counts;  /* (endpoint id, stack id) -> samples */
	struct pairmap pending;       /* (proc, req_id) -> samples so far */
	struct pairmap traces;        /* (proc, req_id) -> struct trace * */

	struct kept slow[STATS_KEEP_SLOW];   /* min-heap by duration */
	size_t nslow;
	struct kept recent[STATS_KEEP_RECENT];
	size_t nrecent, recent_next;
	struct kept *manual;
	size_t nmanual, manual_cap;

	uint64_t requests;
	uint64_t samples;
};

/* Endpoint id and statistics for a name, created when new (stats.c). */
int64_t stats_endpoint(struct stats *s, const char *raw,
		       struct endpoint **ret);

/* src into dst (dstsz bytes, NUL-terminated) with every byte that is not
 * part of valid UTF-8 replaced by '?' (stats.c). */
void stats_utf8(const char *src, char *dst, size_t dstsz);

/* m's build id in lowercase hex, NUL-terminated, into hex (at least
 * 2 * RING_BUILD_ID_MAX + 1 bytes; "" without one) (stats.c). */
void stats_build_id_hex(const struct ring_module *m, char *hex);

#endif /* PROFSHIM_STATS_IMPL_H */

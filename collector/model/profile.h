/*
 * profile.h — a saved profile (the JSON `record` and `save` write) loaded for
 * reports, and the selection a report asks for.
 *
 * Every output format (report, diff, top) is made from this model, whether
 * the JSON came from a file or from the running collector's `dump`, so a
 * profile saved on one machine gives the same reports on another: the
 * stacks in it are already symbolized.
 *
 * The JSON's parts this model reads (doc/profile-json.md has the rest):
 *
 *   "sample": {"clock": "cpu"|"wall", "period_ns": 10000000}
 *   "modules": [{"name": "server", "path": "/srv/server",
 *                "build_id": "9f2c…" (hex, "" when none)}]
 *   "frames":  [{"function": "burn_alpha", "module": 0 (index, -1 none),
 *                "file": "cpuserver.c", "line": 42}]   (file, line optional)
 *   "stacks":  [{"endpoint": "GET /alpha", "frames": [3, 7, 9] (root first),
 *                "samples": 12}]
 *   "data":    {"GET /alpha": {"calls", "total_time", "min_time", "max_time",
 *                "avg_time", "p50_time", "p95_time", "p99_time",
 *                "sampled_calls", "samples", "status": {"2xx": 10},
 *                "histogram": [[upper_seconds, count], ...] (non-cumulative,
 *                increasing bounds, only non-empty buckets), "top_functions"}}
 *   "requests": [{"id", "pid", "tid", "endpoint", "start", "duration",
 *                "status", "sampled", "manual", "samples",
 *                "stacks": [{"frames": [...], "samples": n}],
 *                "timeline": [[seconds_after_start, stack_index], ...]}]
 *   "dropped": {"samples", "events", "requests"}
 *
 * Not thread-safe; strings point into the JSON document the profile holds.
 */
#ifndef PROFSHIM_PROFILE_H
#define PROFSHIM_PROFILE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct profile_module {
	const char *name;      /* basename, "[unknown]" for none */
	const char *path;
	const char *build_id;  /* lower-case hex, "" when unknown */
};

struct profile_frame {
	const char *function;  /* never NULL */
	const char *system_name; /* the symbol as in the file (mangled);
				  * function when the profile has none */
	int module;            /* index into modules, -1 for none */
	const char *file;      /* NULL without debug information */
	int line;              /* 0 without */
};

struct profile_stack {
	uint32_t *frames;      /* indices into frames, root first */
	uint32_t nframes;
	uint64_t samples;
	int endpoint;          /* index into endpoints, -1 outside any */
	int request;           /* index into requests, -1: not one request's */
};

struct profile_bucket {
	double le;             /* upper bound, seconds */
	uint64_t count;        /* requests in this bucket (not cumulative) */
};

struct profile_endpoint {
	const char *name;
	uint64_t calls, sampled_calls, samples;
	double total, min, max, avg, p50, p95, p99;  /* seconds */
	uint64_t status[6];    /* 1xx, 2xx, 3xx, 4xx, 5xx, other */
	struct profile_bucket *buckets;
	size_t nbuckets;
};

struct profile_tick {
	double offset;         /* seconds after the request's start */
	uint32_t stack;        /* index into the request's stacks */
};

struct profile_request {
	json_t *json;          /* its object in the document */
	const char *id;
	const char *endpoint;
	uint32_t pid, tid;
	double start, duration;  /* epoch seconds, seconds */
	int status;
	bool sampled, manual;
	uint64_t samples;
	struct profile_stack *stacks;  /* this request's own stacks */
	size_t nstacks;
	struct profile_tick *timeline; /* samples in time order */
	size_t ntimeline;
};

/* A process that takes no stack samples, and why (processes[].sample). */
struct profile_unsampled {
	uint64_t pid;
	const char *exe;
	const char *why;
};

struct profile {
	json_t *root;          /* the document; strings point into it */
	const char *clock;     /* "cpu" or "wall" */
	double period_ns;      /* weight of one sample */
	struct profile_module *modules;
	size_t nmodules;
	struct profile_frame *frames;
	size_t nframes;
	struct profile_stack *stacks;  /* per endpoint, every request's samples */
	size_t nstacks;
	struct profile_endpoint *endpoints;
	size_t nendpoints;
	struct profile_request *requests;
	size_t nrequests;
	uint64_t dropped_samples, dropped_events, dropped_requests;
	struct profile_unsampled *unsampled; /* processes without stacks */
	size_t nunsampled;
};

/* What a report keeps; NULL members keep everything. */
struct profile_filter {
	const char *endpoint;  /* one endpoint, by name */
	const char *request;   /* one kept request, by id: its own stacks */
	const char *function;  /* stacks passing through this function */
};

/*
 * Build the model from a profile document (takes a reference of its own).
 * Returns 0, or -EINVAL with the reason in err ("frames[3]: module 9 out of
 * range") for a document that is not a profshim profile. Every reason this
 * module gives is one line: control characters it quotes from the document
 * become '?'.
 */
int profile_from_json(json_t *root, struct profile **ret, char *err,
		      size_t errlen);

/*
 * Read and parse FILE ("-" for stdin). Negative errno, reason in err.
 */
int profile_load(const char *path, struct profile **ret, char *err,
		 size_t errlen);

/*
 * The same for a document in memory, buf[0..len) (no NUL needed); `name`
 * stands for the file in reasons. Lets tests and fuzzers skip the file.
 */
int profile_load_buffer(const char *buf, size_t len, const char *name,
			struct profile **ret, char *err, size_t errlen);

/*
 * Ask the running collector (control socket `socket`, NULL for the default)
 * for its whole profile. Returns 0, or 1 with the reason in err when no
 * collector answers or the answer is not a profile, as control_call().
 */
int profile_fetch(const char *socket, struct profile **ret, char *err,
		  size_t errlen);

/*
 * Keep only what `f` selects: endpoints, stacks and requests of
 * f->endpoint; with f->request, that request alone, and `stacks` becomes
 * its own stacks; with f->function, only stacks with a frame of that
 * function. Returns 0, or -ENOENT with the reason in err when the endpoint
 * or request is not in the profile.
 */
int profile_select(struct profile *p, const struct profile_filter *f,
		   char *err, size_t errlen);

/* Per-function totals over `stacks`, most self samples first. */
struct profile_func {
	const char *function;
	const char *module;    /* module name, "" for none */
	uint64_t self;         /* samples with it as the leaf */
	uint64_t total;        /* samples with it anywhere (counted once) */
};

/*
 * Aggregate the stacks stacks[0..n) by (function, module). Returns the
 * number of functions and the array in *ret (free() it), or -ENOMEM.
 * *ret_samples gets the samples of all those stacks.
 */
long profile_functions(const struct profile *p,
		       const struct profile_stack *stacks, size_t n,
		       struct profile_func **ret, uint64_t *ret_samples);

/* The document for the selection: `data`, `stacks`, `requests` and each
 * endpoint's `top_functions` as selected. New reference, NULL on ENOMEM. */
json_t *profile_to_json(const struct profile *p);

void profile_free(struct profile *p);

#endif /* PROFSHIM_PROFILE_H */

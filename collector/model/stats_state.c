/*
 * stats_state.c — the aggregation state as JSON and back, for checkpoints
 * (see stats.h).
 *
 * The state is not the profile: it keeps raw addresses per process (the
 * profile has symbols), histogram buckets at full resolution, the ring
 * counters at the last reset, and requests still in flight, so that a
 * collector restarted from it goes on exactly as the one that wrote it
 * would have. 64-bit values are stored as JSON integers through int64
 * (addresses above 2^63 come back unchanged).
 *
 * The file it is read from is the user's own output, but still input: every
 * index is checked against the tables read before it, and a state that
 * breaks a rule is refused as a whole with one line saying where.
 */
#include "model/stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/stats_impl.h"

#define STATE_FORMAT 1

/* ---- writing ------------------------------------------------------------- */

static json_t *state_u64(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *state_counters(const struct reader_counters *c)
{
	return json_pack("[I, I, I, I, I, I, I, I, I]",
			 (json_int_t)c->dropped_samples,
			 (json_int_t)c->dropped_events,
			 (json_int_t)c->dropped_requests,
			 (json_int_t)c->skipped_samples,
			 (json_int_t)c->untracked_conns,
			 (json_int_t)c->overflow_endpoints,
			 (json_int_t)c->samples, (json_int_t)c->sample_bytes,
			 (json_int_t)c->unresolved_samples);
}

static json_t *state_process(const struct process *p)
{
	json_t *mods = json_array();

	for (uint32_t i = 0; i < p->nmods; i++) {
		const struct ring_module *m = &p->mods[i];
		char hex[2 * RING_BUILD_ID_MAX + 1];

		stats_build_id_hex(m, hex);
		json_array_append_new(mods, json_pack("[o, o, o, s, s#]",
						      state_u64(m->bias),
						      state_u64(m->lo),
						      state_u64(m->hi), hex,
						      m->path,
						      strnlen(m->path,
							      RING_MODULE_PATH_MAX - 1)));
	}
	return json_pack("{s:I, s:I, s:s, s:b, s:I, s:I, s:o, s:o, s:o, s:[I, I, I, I, I, I], s:[I, I, I, o]}",
			 "pid", (json_int_t)p->pid, "ppid", (json_int_t)p->ppid,
			 "exe", p->exe, "exited", p->exited, "clock",
			 (json_int_t)p->clock, "hz", (json_int_t)p->hz, "modules",
			 mods, "now", state_counters(&p->now), "base",
			 state_counters(&p->base), "engine",
			 (json_int_t)p->engine.engine, (json_int_t)p->engine.hz,
			 (json_int_t)p->engine.error,
			 (json_int_t)p->engine.tick_hz, (json_int_t)p->manual_hz,
			 (json_int_t)p->paranoid, "signal",
			 (json_int_t)p->engine.signo, (json_int_t)p->engine.sampling,
			 (json_int_t)p->engine.aside, state_u64(p->engine.taken));
}

static json_t *state_endpoint(const char *name, const struct endpoint *e)
{
	json_t *buckets = json_array(), *status = json_array();

	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		if (e->hist.buckets[i])
			json_array_append_new(buckets,
					      json_pack("[I, I]", (json_int_t)i,
							(json_int_t)e->hist.buckets[i]));
	for (int i = 0; i < 6; i++)
		json_array_append_new(status, state_u64(e->status[i]));
	return json_pack("[s, I, I, I, I, o, I, I, I, I, o]", name,
			 (json_int_t)e->calls, (json_int_t)e->total_ns,
			 (json_int_t)e->sampled_calls, (json_int_t)e->samples,
			 status, (json_int_t)e->aborted,
			 (json_int_t)e->hist.count, (json_int_t)e->hist.min,
			 (json_int_t)e->hist.max, buckets);
}

/* Traces are shared by the kept lists: written once each, by index. */
struct state_traces {
	json_t *arr;
	struct pairmap index;   /* trace pointer -> index + 1 */
};

static json_int_t state_trace(struct state_traces *t, const struct trace *tr)
{
	uint64_t *slot;
	json_t *v;

	if (!tr)
		return -1;
	slot = pairmap_put(&t->index, (uintptr_t)tr, 0);
	if (!slot)
		return -1;
	if (*slot)
		return (json_int_t)*slot - 1;
	v = json_array();
	for (uint32_t i = 0; i < tr->n; i++)
		json_array_append_new(v, json_pack("[I, f]",
						   (json_int_t)tr->v[i].stack,
						   tr->v[i].time));
	json_array_append_new(t->arr, v);
	*slot = json_array_size(t->arr);
	return (json_int_t)*slot - 1;
}

static json_t *state_kept(struct state_traces *t, const struct kept *k,
			  size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(
			arr, json_pack("[I, I, I, I, I, I, I, f, I, I]",
				       (json_int_t)k[i].req_id,
				       (json_int_t)k[i].proc, (json_int_t)k[i].tid,
				       (json_int_t)k[i].endpoint,
				       (json_int_t)k[i].status,
				       (json_int_t)k[i].samples,
				       (json_int_t)k[i].flags, k[i].start,
				       (json_int_t)k[i].duration_ns,
				       state_trace(t, k[i].trace)));
	return arr;
}

json_t *stats_state_json(const struct stats *s)
{
	struct state_traces t = {.arr = json_array()};
	json_t *procs = json_array(), *eps = json_array(), *stacks = json_array();
	json_t *counts = json_array(), *pending = json_array();
	json_t *inflight = json_array(), *root;

	for (size_t i = 0; i < s->nprocs; i++)
		json_array_append_new(procs, state_process(&s->procs[i]));
	for (size_t id = 0; id < s->names.count; id++) {
		static const struct endpoint unused;

		json_array_append_new(
			eps, state_endpoint(intern_get(&s->names, (uint32_t)id, NULL),
					    s->eps[id] ? s->eps[id] : &unused));
	}
	for (size_t id = 0; id < s->stacks.count; id++) {
		size_t len;
		const uint64_t *key = intern_get(&s->stacks, (uint32_t)id, &len);
		json_t *st = json_array();

		for (size_t j = 0; j < len / sizeof(uint64_t); j++)
			json_array_append_new(st, state_u64(key[j]));
		json_array_append_new(stacks, st);
	}
	for (size_t i = 0; i < s->stack_counts.cap; i++) {
		const struct pairmap_slot *sl = &s->stack_counts.slots[i];

		if (sl->used)
			json_array_append_new(counts,
					      json_pack("[I, I, I]", (json_int_t)sl->k1,
							(json_int_t)sl->k2,
							(json_int_t)sl->v));
	}
	for (size_t i = 0; i < s->pending.cap; i++) {
		const struct pairmap_slot *sl = &s->pending.slots[i];

		if (sl->used)
			json_array_append_new(pending,
					      json_pack("[I, I, I]", (json_int_t)sl->k1,
							(json_int_t)sl->k2,
							(json_int_t)sl->v));
	}
	for (size_t i = 0; i < s->traces.cap; i++) {
		const struct pairmap_slot *sl = &s->traces.slots[i];

		if (sl->used)
			json_array_append_new(
				inflight,
				json_pack("[I, I, I]", (json_int_t)sl->k1,
					  (json_int_t)sl->k2,
					  state_trace(&t, (const struct trace *)(uintptr_t)sl->v)));
	}
	root = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, "
			 "s:I, s:I}",
			 "format", STATE_FORMAT, "processes", procs, "endpoints",
			 eps, "stacks", stacks, "stack_counts", counts, "pending",
			 pending, "inflight", inflight, "slow",
			 state_kept(&t, s->slow, s->nslow), "recent",
			 state_kept(&t, s->recent, s->nrecent), "recent_next",
			 (json_int_t)s->recent_next, "manual",
			 state_kept(&t, s->manual, s->nmanual), "requests",
			 (json_int_t)s->requests, "samples",
			 (json_int_t)s->samples);
	if (root)
		json_object_set(root, "traces", t.arr);
	json_decref(t.arr);
	pairmap_free(&t.index);
	return root;
}

/* ---- reading ------------------------------------------------------------- */

struct state_in {
	struct stats *s;
	char *err;
	size_t errlen;
	struct trace **traces;   /* by index; refs counted as they are used */
	size_t ntraces;
};

static int state_bad(struct state_in *in, const char *what)
{
	(void)snprintf(in->err, in->errlen, "bad checkpoint state: %s", what);
	return -EINVAL;
}

/* Element i of array a as an integer; false when it is not one. */
static bool state_int(const json_t *a, size_t i, uint64_t *ret)
{
	const json_t *v = json_array_get(a, i);

	if (!json_is_integer(v))
		return false;
	*ret = (uint64_t)json_integer_value(v);
	return true;
}

/* Integers a[0..n) into out; false unless a is an array of exactly n. */
static bool state_ints(const json_t *a, size_t n, uint64_t *out)
{
	if (!json_is_array(a) || json_array_size(a) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!state_int(a, i, &out[i]))
			return false;
	return true;
}

static bool state_read_counters(const json_t *a, struct reader_counters *c)
{
	uint64_t v[9];

	if (!state_ints(a, 9, v))
		return false;
	*c = (struct reader_counters){v[0], v[1], v[2], v[3], v[4],
				      v[5], v[6], v[7], v[8]};
	return true;
}

static int state_read_module(const json_t *a, struct ring_module *m)
{
	uint64_t v[3];
	const char *hex, *path;
	size_t hl;

	if (!json_is_array(a) || json_array_size(a) != 5)
		return -1;
	for (size_t i = 0; i < 3; i++)
		if (!state_int(a, i, &v[i]))
			return -1;
	hex = json_string_value(json_array_get(a, 3));
	path = json_string_value(json_array_get(a, 4));
	if (!hex || !path || (hl = strlen(hex)) % 2 ||
	    hl > 2 * RING_BUILD_ID_MAX || strlen(path) >= RING_MODULE_PATH_MAX)
		return -1;
	memset(m, 0, sizeof(*m));
	m->bias = v[0];
	m->lo = v[1];
	m->hi = v[2] < v[1] ? v[1] : v[2];
	m->build_id_len = (uint32_t)(hl / 2);
	for (size_t i = 0; i < hl / 2; i++) {
		unsigned byte;

		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return -1;
		m->build_id[i] = (uint8_t)byte;
	}
	memcpy(m->path, path, strlen(path) + 1);
	return 0;
}

/*
 * A process' CPU clock: [engine, hz, error, tick_hz, manual_hz, paranoid]
 * (absent in checkpoints of collectors before it: left as it is).
 */
static bool state_read_engine(const json_t *a, struct process *p)
{
	json_int_t v[6];

	if (!a)
		return true;
	if (!json_is_array(a) || json_array_size(a) != 6)
		return false;
	for (size_t i = 0; i < 6; i++) {
		const json_t *x = json_array_get(a, i);

		if (!json_is_integer(x))
			return false;
		v[i] = json_integer_value(x);
		if (v[i] < (i == 5 ? -1 : 0) || v[i] > 1000000)
			return false;
	}
	if (v[0] > RING_ENGINE_FAILED)
		return false;
	p->engine = (struct reader_engine){(uint32_t)v[0], (uint32_t)v[1],
					   (uint32_t)v[2], (uint32_t)v[3]};
	p->manual_hz = (uint32_t)v[4];
	p->paranoid = (int)v[5];
	return true;
}

/*
 * A process' signal: [signo, sampling, aside, taken] (absent in
 * checkpoints of collectors before it: left as it is).
 */
static bool state_read_signal(const json_t *a, struct process *p)
{
	json_int_t v[3];
	uint64_t taken;

	if (!a)
		return true;
	if (!json_is_array(a) || json_array_size(a) != 4)
		return false;
	for (size_t i = 0; i < 3; i++) {
		const json_t *x = json_array_get(a, i);

		if (!json_is_integer(x))
			return false;
		v[i] = json_integer_value(x);
	}
	if (v[0] < 0 || v[0] > 64 || v[1] < 0 || v[1] > RING_SAMPLING_ASIDE ||
	    v[2] < 0 || v[2] > RING_ASIDE_INIT ||
	    !state_int(a, 3, &taken))
		return false;
	p->engine.signo = (uint32_t)v[0];
	p->engine.sampling = (uint32_t)v[1];
	p->engine.aside = (uint32_t)v[2];
	p->engine.taken = taken;
	return true;
}

static int state_read_processes(struct state_in *in, const json_t *arr)
{
	struct ring_module *mods = NULL;
	const json_t *o;
	size_t i;
	int ret = 0;

	if (!json_is_array(arr))
		return state_bad(in, "\"processes\" is not an array");
	json_array_foreach(arr, i, o) {
		json_int_t pid, ppid, clock, hz;
		const char *exe;
		int exited, idx;
		json_t *jm, *jnow, *jbase;
		struct process *p;
		size_t nm;

		if (json_unpack((json_t *)o, "{s:I, s:I, s:s, s:b, s:I, s:I, s:o, s:o, s:o}",
				"pid", &pid, "ppid", &ppid, "exe", &exe,
				"exited", &exited, "clock", &clock, "hz", &hz,
				"modules", &jm, "now", &jnow, "base",
				&jbase) < 0 ||
		    !json_is_array(jm) ||
		    json_array_size(jm) > RING_MODULES_MAX)
			return state_bad(in, "a process is malformed");
		/* Exited processes may share a pid with a later one: each
		 * gets its own entry, as when it was recorded. */
		idx = stats_process(in->s, (uint32_t)pid, (uint32_t)ppid, exe);
		if (idx < 0)
			return idx;
		if ((size_t)idx != i)
			return state_bad(in, "a live pid is listed twice");
		p = &in->s->procs[idx];
		p->exited = exited;
		p->clock = (uint32_t)clock;
		p->hz = (uint32_t)hz;
		if (!state_read_engine(json_object_get(o, "engine"), p))
			return state_bad(in, "a process' engine is malformed");
		if (!state_read_signal(json_object_get(o, "signal"), p))
			return state_bad(in, "a process' signal is malformed");
		if (!state_read_counters(jnow, &p->now) ||
		    !state_read_counters(jbase, &p->base))
			return state_bad(in, "a process' counters are malformed");
		nm = json_array_size(jm);
		mods = calloc(nm ? nm : 1, sizeof(*mods));
		if (!mods)
			return -ENOMEM;
		for (size_t j = 0; j < nm; j++)
			if (state_read_module(json_array_get(jm, j), &mods[j]) < 0) {
				ret = state_bad(in, "a module is malformed");
				goto out;
			}
		ret = stats_set_modules(in->s, idx, mods, (uint32_t)nm);
		free(mods);
		mods = NULL;
		if (ret < 0)
			return ret;
	}
out:
	free(mods);
	return ret;
}

static int state_read_endpoints(struct state_in *in, const json_t *arr)
{
	const json_t *a;
	size_t i;

	if (!json_is_array(arr))
		return state_bad(in, "\"endpoints\" is not an array");
	json_array_foreach(arr, i, a) {
		uint64_t v[9], st[6];
		struct endpoint *e;
		const char *name = json_string_value(json_array_get(a, 0));
		const json_t *buckets = json_array_get(a, 10), *b;
		int64_t id;
		size_t j;

		if (!json_is_array(a) || json_array_size(a) != 11 || !name ||
		    !state_ints(json_array_get(a, 5), 6, st) ||
		    !json_is_array(buckets))
			return state_bad(in, "an endpoint is malformed");
		for (j = 0; j < 4; j++)
			if (!state_int(a, 1 + j, &v[j]))
				return state_bad(in, "an endpoint is malformed");
		for (j = 4; j < 8; j++)
			if (!state_int(a, 2 + j, &v[j]))
				return state_bad(in, "an endpoint is malformed");
		id = stats_endpoint(in->s, name, &e);
		if (id < 0)
			return (int)id;
		if ((size_t)id != i)
			return state_bad(in, "an endpoint name is listed twice");
		e->calls = v[0];
		e->total_ns = v[1];
		e->sampled_calls = v[2];
		e->samples = v[3];
		memcpy(e->status, st, sizeof(st));
		e->aborted = v[4];
		e->hist.count = v[5];
		e->hist.min = v[6];
		e->hist.max = v[7];
		json_array_foreach(buckets, j, b) {
			uint64_t bv[2];

			if (!state_ints(b, 2, bv) || bv[0] >= HIST_BUCKETS)
				return state_bad(in, "a histogram bucket is malformed");
			e->hist.buckets[bv[0]] = bv[1];
		}
	}
	return 0;
}

static int state_read_stacks(struct state_in *in, const json_t *arr)
{
	uint64_t key[1 + RING_MAX_FRAMES];
	const json_t *a;
	size_t i;

	if (!json_is_array(arr))
		return state_bad(in, "\"stacks\" is not an array");
	json_array_foreach(arr, i, a) {
		size_t n = json_array_size(a);
		int64_t id;

		if (!json_is_array(a) || n < 1 || n > 1 + RING_MAX_FRAMES ||
		    !state_ints(a, n, key) || key[0] >= in->s->nprocs)
			return state_bad(in, "a stack is malformed");
		id = intern_put(&in->s->stacks, key, n * sizeof(uint64_t));
		if (id < 0)
			return (int)id;
		if ((size_t)id != i)
			return state_bad(in, "a stack is listed twice");
	}
	return 0;
}

/* [k1, k2, v] triples into m; k1 below lim1, k2 below lim2. */
static int state_read_pairs(struct state_in *in, const json_t *arr,
			    struct pairmap *m, uint64_t lim1, uint64_t lim2,
			    const char *what)
{
	const json_t *a;
	size_t i;

	if (!json_is_array(arr))
		return state_bad(in, what);
	json_array_foreach(arr, i, a) {
		uint64_t v[3], *slot;

		if (!state_ints(a, 3, v) || v[0] >= lim1 || v[1] >= lim2)
			return state_bad(in, what);
		slot = pairmap_put(m, v[0], v[1]);
		if (!slot)
			return -ENOMEM;
		*slot = v[2];
	}
	return 0;
}

static int state_read_traces(struct state_in *in, const json_t *arr)
{
	const json_t *a;
	size_t i;

	if (!json_is_array(arr))
		return state_bad(in, "\"traces\" is not an array");
	in->traces = calloc(json_array_size(arr) + 1, sizeof(*in->traces));
	if (!in->traces)
		return -ENOMEM;
	json_array_foreach(arr, i, a) {
		size_t n = json_array_size(a), j;
		struct trace *t;
		const json_t *e;

		if (!json_is_array(a) || n > STATS_TRACE_MAX)
			return state_bad(in, "a trace is malformed");
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		in->traces[in->ntraces++] = t;
		t->v = calloc(n ? n : 1, sizeof(*t->v));
		if (!t->v)
			return -ENOMEM;
		t->cap = (uint32_t)(n ? n : 1);
		json_array_foreach(a, j, e) {
			uint64_t stack;
			const json_t *time = json_array_get(e, 1);

			if (json_array_size(e) != 2 || !state_int(e, 0, &stack) ||
			    stack >= in->s->stacks.count || !json_is_number(time))
				return state_bad(in, "a trace is malformed");
			t->v[t->n].stack = (uint32_t)stack;
			t->v[t->n++].time = json_number_value(time);
		}
	}
	return 0;
}

/* Trace index v (-1: none) as a new reference. */
static int state_ref_trace(struct state_in *in, uint64_t v,
			   struct trace **ret)
{
	*ret = NULL;
	if ((json_int_t)v == -1)
		return 0;
	if (v >= in->ntraces)
		return state_bad(in, "a trace index is out of range");
	*ret = in->traces[v];
	(*ret)->refs++;
	return 0;
}

static int state_read_kept(struct state_in *in, const json_t *arr,
			   struct kept *out, size_t cap, size_t *ret_n)
{
	const json_t *a;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) > cap)
		return state_bad(in, "a list of kept requests is malformed");
	json_array_foreach(arr, i, a) {
		uint64_t v[10];
		const json_t *start = json_array_get(a, 7);
		struct kept *k = &out[i];
		int r;

		if (!json_is_array(a) || json_array_size(a) != 10 ||
		    !json_is_number(start))
			return state_bad(in, "a kept request is malformed");
		for (size_t j = 0; j < 10; j++)
			if (j != 7 && !state_int(a, j, &v[j]))
				return state_bad(in, "a kept request is malformed");
		if (v[1] >= in->s->nprocs || v[3] >= in->s->names.count ||
		    !in->s->eps[v[3]])
			return state_bad(in, "a kept request's index is out of range");
		memset(k, 0, sizeof(*k));
		r = state_ref_trace(in, v[9], &k->trace);
		if (r < 0)
			return r;
		k->req_id = v[0];
		k->proc = (uint32_t)v[1];
		k->tid = (uint32_t)v[2];
		k->endpoint = (uint32_t)v[3];
		k->status = (uint32_t)v[4];
		k->samples = (uint32_t)v[5];
		k->flags = (uint16_t)v[6];
		k->start = json_number_value(start);
		k->duration_ns = v[8];
		*ret_n = i + 1;
	}
	return 0;
}

static int state_read_inflight(struct state_in *in, const json_t *arr)
{
	const json_t *a;
	size_t i;

	if (!json_is_array(arr))
		return state_bad(in, "\"inflight\" is not an array");
	json_array_foreach(arr, i, a) {
		uint64_t v[3], *slot;
		struct trace *t;
		int r;

		if (!state_ints(a, 3, v) || v[0] >= in->s->nprocs ||
		    (json_int_t)v[2] == -1)
			return state_bad(in, "an in-flight request is malformed");
		r = state_ref_trace(in, v[2], &t);
		if (r < 0)
			return r;
		slot = pairmap_put(&in->s->traces, v[0], v[1]);
		if (!slot) {
			t->refs--;
			return -ENOMEM;
		}
		if (*slot) {
			t->refs--;
			return state_bad(in, "an in-flight request is listed twice");
		}
		*slot = (uintptr_t)t;
	}
	return 0;
}

int stats_state_load(struct stats *s, const json_t *state, char *err,
		     size_t errlen)
{
	struct state_in in = {.s = s, .err = err, .errlen = errlen};
	json_int_t format = 0, recent_next = 0, requests = 0, samples = 0;
	json_t *procs, *eps, *stacks, *counts, *pending, *inflight, *traces;
	json_t *slow, *recent, *manual;
	int r;

	if (json_unpack((json_t *)state,
			"{s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, "
			"s:o, s:I, s:I}",
			"format", &format, "processes", &procs, "endpoints", &eps,
			"stacks", &stacks, "stack_counts", &counts, "pending",
			&pending, "inflight", &inflight, "traces", &traces,
			"slow", &slow, "recent", &recent, "recent_next",
			&recent_next, "manual", &manual, "requests", &requests,
			"samples", &samples) < 0)
		return state_bad(&in, "a part is missing");
	if (format != STATE_FORMAT)
		return state_bad(&in, "written by another version");
	r = state_read_processes(&in, procs);
	if (r == 0)
		r = state_read_endpoints(&in, eps);
	if (r == 0)
		r = state_read_stacks(&in, stacks);
	if (r == 0)
		r = state_read_pairs(&in, counts, &s->stack_counts,
				     s->names.count, s->stacks.count,
				     "a stack count is malformed");
	if (r == 0)
		r = state_read_pairs(&in, pending, &s->pending, s->nprocs,
				     UINT64_MAX, "a pending count is malformed");
	if (r == 0)
		r = state_read_traces(&in, traces);
	if (r == 0)
		r = state_read_inflight(&in, inflight);
	if (r == 0)
		r = state_read_kept(&in, slow, s->slow, STATS_KEEP_SLOW, &s->nslow);
	if (r == 0)
		r = state_read_kept(&in, recent, s->recent, STATS_KEEP_RECENT,
				    &s->nrecent);
	if (r == 0 && json_array_size(manual) > STATS_MANUAL_MAX)
		r = state_bad(&in, "too many manual requests");
	if (r == 0 && json_array_size(manual)) {
		s->manual = calloc(json_array_size(manual), sizeof(*s->manual));
		s->manual_cap = json_array_size(manual);
		r = s->manual ? state_read_kept(&in, manual, s->manual,
						s->manual_cap, &s->nmanual)
			      : -ENOMEM;
	}
	if (r == 0 && (recent_next < 0 || recent_next >= STATS_KEEP_RECENT ||
		       (s->nrecent < STATS_KEEP_RECENT &&
			(size_t)recent_next != s->nrecent)))
		r = state_bad(&in, "\"recent_next\" is out of range");
	if (r == 0) {
		s->recent_next = (size_t)recent_next;
		s->requests = (uint64_t)requests;
		s->samples = (uint64_t)samples;
	}
	/* Traces no list took are freed here; the others belong to s now. */
	for (size_t i = 0; i < in.ntraces; i++)
		if (in.traces[i]->refs == 0) {
			free(in.traces[i]->v);
			free(in.traces[i]);
		}
	free(in.traces);
	if (r == -ENOMEM)
		(void)snprintf(err, errlen, "out of memory");
	return r;
}

/*
 * stats_json.c — the profile JSON of doc/profile-json.md from struct stats
 * (see stats_json.h): the schema's writer; model/profile.c is its reader.
 */
#include "model/stats_json.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/stats.h"
#include "model/stats_impl.h"

/* A JSON string for text that may not be valid UTF-8. */
static json_t *stats_jstr(const char *text)
{
	char buf[1024];
	json_t *j = json_string(text);

	if (j)
		return j;
	stats_utf8(text, buf, sizeof(buf));
	return json_string(buf);
}

struct func_acc {
	const char *function;
	const char *module;
	const char *file;       /* source of the function's hottest leaf */
	int line;
	uint64_t line_samples;  /* self samples at that line */
	uint64_t self;
	uint64_t total;
	uint64_t seen;   /* stack serial that last counted total */
};

struct func_table {
	struct func_acc *v;
	size_t n, cap;
	struct pairmap index;   /* (function ptr, module ptr) -> v index + 1 */
};

static struct func_acc *func_get(struct func_table *t, const char *f,
				 const char *m)
{
	uint64_t *slot = pairmap_put(&t->index, (uintptr_t)f, (uintptr_t)m);

	if (!slot)
		return NULL;
	if (!*slot) {
		if (t->n == t->cap && TABLE_GROW(t->v, t->cap, 64) < 0)
			return NULL;
		t->v[t->n] = (struct func_acc){.function = f, .module = m};
		*slot = ++t->n;
	}
	return &t->v[*slot - 1];
}

static int func_cmp(const void *a, const void *b)
{
	const struct func_acc *x = a, *y = b;

	if (x->self != y->self)
		return x->self < y->self ? 1 : -1;
	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->function, y->function);
}

static double ns_to_s(uint64_t ns)
{
	return (double)ns / 1e9;
}

/*
 * Every endpoint's functions in one pass over the stacks (a pass per
 * endpoint would read every endpoint's stacks once per endpoint): symbolize
 * each stack, keep those passing `function`, and accumulate self and total
 * samples per function in ft[endpoint id], the samples kept in
 * kept[endpoint id]. Only endpoint `only` when it is not UINT64_MAX.
 * Without syms (and then without `function`), only the samples are
 * counted. Returns 0, or -ENOMEM with the tables partly filled.
 */
static int stats_functions(struct stats *s, struct symbols *syms,
			   uint64_t only, const char *function,
			   struct func_table *ft, uint64_t *kept)
{
	struct symbols_frame fr[RING_MAX_FRAMES];
	uint64_t serial = 0;

	for (size_t i = 0; i < s->stack_counts.cap; i++) {
		const struct pairmap_slot *sl = &s->stack_counts.slots[i];
		const uint64_t *key;
		const struct process *p;
		struct func_table *t;
		size_t len, n;
		bool pass;

		if (!sl->used || sl->k1 >= s->names.count || !s->eps[sl->k1] ||
		    (only != UINT64_MAX && sl->k1 != only))
			continue;
		t = &ft[sl->k1];
		key = intern_get(&s->stacks, (uint32_t)sl->k2, &len);
		n = len / sizeof(uint64_t) - 1;
		p = &s->procs[key[0]];
		if (!syms) {
			kept[sl->k1] += n ? sl->v : 0;
			continue;
		}
		pass = function == NULL;
		for (size_t j = 0; j < n; j++) {
			symbols_lookup(syms, p->jit, p->mods, p->nmods,
				       key[1 + j], j > 0, &fr[j]);
			if (!pass && strcmp(fr[j].function, function) == 0)
				pass = true;
		}
		if (!pass || n == 0)
			continue;
		kept[sl->k1] += sl->v;
		serial++;
		for (size_t j = 0; j < n; j++) {
			struct func_acc *a =
				func_get(t, fr[j].function, fr[j].module);

			if (!a)
				return -ENOMEM;
			if (j == 0) {
				a->self += sl->v;
				/* Keep the line where most of its own time
				 * was seen (the stack's count is one line's). */
				if (fr[j].file && sl->v > a->line_samples) {
					a->file = fr[j].file;
					a->line = fr[j].line;
					a->line_samples = sl->v;
				}
			} else if (!a->file && fr[j].file) {
				a->file = fr[j].file;
				a->line = fr[j].line;
			}
			/* serial is unique per stack across all tables */
			if (a->seen != serial) {
				a->seen = serial;
				a->total += sl->v;
			}
		}
	}
	return 0;
}

/* The non-empty buckets: [upper bound in seconds, count], increasing. */
static json_t *stats_hist_json(const struct hist *h)
{
	json_t *a = json_array();

	for (unsigned i = 0; h->count && i < HIST_BUCKETS; i++) {
		uint64_t lo, hi;

		if (!h->buckets[i])
			continue;
		hist_bounds(i, &lo, &hi);
		json_array_append_new(a, json_pack("[f, I]", ns_to_s(hi),
						   (json_int_t)h->buckets[i]));
	}
	return a;
}

/*
 * Endpoint `id` in the profile; ft and samples are its functions and the
 * samples kept (stats_functions()). ft's order is changed.
 */
static json_t *stats_endpoint_json(struct stats *s, uint64_t id,
				   const char *function, struct func_table *ft,
				   uint64_t samples)
{
	static const char *const cls[6] = {"1xx", "2xx", "3xx",
					   "4xx", "5xx", "other"};
	struct endpoint *e = s->eps[id];
	json_t *o = json_object(), *st = json_object(), *top = json_array();

	if (!e->samples)
		samples = 0;
	if (function && samples == 0)
		goto none;
	if (ft->n)
		qsort(ft->v, ft->n, sizeof(*ft->v), func_cmp);
	for (size_t i = 0; i < ft->n && i < STATS_TOP_FUNCTIONS; i++) {
		const struct func_acc *a = &ft->v[i];
		json_t *f = json_pack("{s:o, s:o, s:I, s:I}", "function",
				      stats_jstr(a->function), "module",
				      stats_jstr(a->module), "self_samples",
				      (json_int_t)a->self, "total_samples",
				      (json_int_t)a->total);

		if (a->file) {
			json_object_set_new(f, "file", stats_jstr(a->file));
			json_object_set_new(f, "line", json_integer(a->line));
		}
		json_array_append_new(top, f);
	}
	for (int i = 0; i < 6; i++)
		if (e->status[i])
			json_object_set_new(st, cls[i],
					    json_integer((json_int_t)e->status[i]));
	json_object_set_new(o, "calls", json_integer((json_int_t)e->calls));
	json_object_set_new(o, "total_time", json_real(ns_to_s(e->total_ns)));
	json_object_set_new(o, "min_time", json_real(ns_to_s(e->hist.min)));
	json_object_set_new(o, "max_time", json_real(ns_to_s(e->hist.max)));
	json_object_set_new(o, "avg_time",
			    json_real(e->calls ? ns_to_s(e->total_ns) /
							 (double)e->calls
					       : 0.0));
	json_object_set_new(o, "p50_time",
			    json_real(ns_to_s(hist_quantile(&e->hist, 0.50))));
	json_object_set_new(o, "p95_time",
			    json_real(ns_to_s(hist_quantile(&e->hist, 0.95))));
	json_object_set_new(o, "p99_time",
			    json_real(ns_to_s(hist_quantile(&e->hist, 0.99))));
	json_object_set_new(o, "sampled_calls",
			    json_integer((json_int_t)e->sampled_calls));
	json_object_set_new(o, "samples", json_integer((json_int_t)samples));
	json_object_set_new(o, "status", st);
	json_object_set_new(o, "aborted", json_integer((json_int_t)e->aborted));
	json_object_set_new(o, "top_functions", top);
	json_object_set_new(o, "histogram", stats_hist_json(&e->hist));
	return o;
none:
	json_decref(o);
	json_decref(st);
	json_decref(top);
	return NULL;
}

/* The id a kept request goes by in the JSON: pid-hi-lo of its req_id. */
static void stats_request_id(const struct stats *s, const struct kept *k,
			     char *buf, size_t len)
{
	(void)snprintf(buf, len, "%" PRIu32 "-%" PRIu32 "-%" PRIu32,
		       s->procs[k->proc].pid, (uint32_t)(k->req_id >> 32),
		       (uint32_t)k->req_id);
}

/*
 * The symbolized stacks of the profile: modules and frames are tables that
 * stacks refer to by index, so a frame shared by many stacks is written
 * once. One builder serves the endpoints' stacks and the kept requests'.
 */
struct stack_builder {
	struct stats *s;
	struct symbols *syms;
	const char *function;     /* keep only stacks through it, or NULL */
	json_t *modules, *frames;
	struct intern module_ids; /* path NUL build id */
	struct pairmap module_of; /* (struct ring_module *, 0) -> id + 1 */
	struct intern frame_ids;  /* function, file pointers, module, line */
	json_t **done;            /* by stack id: frames array, once built */
	bool *pass;               /* by stack id: passes `function` */
	size_t ndone;
};

static int64_t builder_module(struct stack_builder *b,
			      const struct ring_module *m)
{
	char key[RING_MODULE_PATH_MAX + 2 * RING_BUILD_ID_MAX + 2];
	char hex[2 * RING_BUILD_ID_MAX + 1];
	size_t pl = strnlen(m->path, RING_MODULE_PATH_MAX - 1);
	const char *base = strrchr(m->path, '/');
	/* Every frame asks; each module entry is looked up once. */
	uint64_t *known = pairmap_put(&b->module_of, (uintptr_t)m, 0);
	int64_t id;

	if (known && *known)
		return (int64_t)*known - 1;
	stats_build_id_hex(m, hex);
	memcpy(key, m->path, pl);
	key[pl] = '\0';
	memcpy(key + pl + 1, hex, strlen(hex) + 1);
	id = intern_put(&b->module_ids, key, pl + 1 + strlen(hex));
	if (id >= 0 && (size_t)id == json_array_size(b->modules))
		json_array_append_new(
			b->modules,
			json_pack("{s:o, s:o, s:s}", "name",
				  stats_jstr(base ? base + 1 : m->path), "path",
				  stats_jstr(m->path), "build_id", hex));
	if (known && id >= 0)
		*known = (uint64_t)id + 1;
	return id;
}

/*
 * The module entry of code named from a perf map: one for every process,
 * named "[jit]" (its path too, which no file's can be: they are absolute),
 * without a build id.
 */
static int64_t builder_jit_module(struct stack_builder *b)
{
	static const char key[] = SYMBOLS_JIT_MODULE "\0";
	int64_t id = intern_put(&b->module_ids, key, sizeof(key) - 1);

	if (id >= 0 && (size_t)id == json_array_size(b->modules))
		json_array_append_new(
			b->modules,
			json_pack("{s:s, s:s, s:s}", "name", SYMBOLS_JIT_MODULE,
				  "path", SYMBOLS_JIT_MODULE, "build_id", ""));
	return id;
}

static int64_t builder_frame(struct stack_builder *b,
			     const struct symbols_frame *f)
{
	int64_t mod = f->mod   ? builder_module(b, f->mod)
		      : f->jit ? builder_jit_module(b)
			       : -1;
	/* The symbolizer's strings are interned: equal names are the same
	 * pointer, so the pointers identify a frame. */
	struct {
		const char *function, *system_name, *file;
		int64_t mod;
		int64_t line;
	} key = {f->function, f->system_name, f->file, mod, f->line};
	int id;

	id = (int)intern_put(&b->frame_ids, &key, sizeof(key));
	if (id >= 0 && (size_t)id == json_array_size(b->frames)) {
		json_t *o = json_pack("{s:o, s:I}", "function",
				      stats_jstr(f->function), "module",
				      (json_int_t)mod);

		/* The symbol's own name, where demangling changed it. */
		if (f->system_name && f->system_name != f->function)
			json_object_set_new(o, "system_name",
					    stats_jstr(f->system_name));
		if (f->file) {
			json_object_set_new(o, "file", stats_jstr(f->file));
			json_object_set_new(o, "line", json_integer(f->line));
		}
		json_array_append_new(b->frames, o);
	}
	return id;
}

/*
 * The frames array (root first) of stack `id`, a new reference, or NULL
 * when it does not pass the builder's function or memory ran out.
 */
static json_t *builder_stack(struct stack_builder *b, uint32_t id)
{
	struct symbols_frame fr;
	const struct process *p;
	const uint64_t *key;
	json_t *arr;
	size_t len, n;

	if (id < b->ndone && b->done[id])
		return b->pass[id] ? json_incref(b->done[id]) : NULL;
	if (id >= b->ndone)
		return NULL;
	key = intern_get(&b->s->stacks, id, &len);
	n = len / sizeof(uint64_t) - 1;
	p = &b->s->procs[key[0]];
	arr = json_array();
	if (!arr)
		return NULL;
	b->pass[id] = b->function == NULL;
	/* The ring's frames are leaf first. */
	for (size_t j = n; j-- > 0;) {
		int64_t f;

		symbols_lookup(b->syms, p->jit, p->mods, p->nmods, key[1 + j],
			       j > 0, &fr);
		if (!b->pass[id] && strcmp(fr.function, b->function) == 0)
			b->pass[id] = true;
		f = builder_frame(b, &fr);
		if (f >= 0)
			json_array_append_new(arr, json_integer(f));
	}
	b->done[id] = arr;
	return b->pass[id] ? json_incref(arr) : NULL;
}

static int builder_init(struct stack_builder *b, struct stats *s,
			struct symbols *syms, const char *function)
{
	memset(b, 0, sizeof(*b));
	b->s = s;
	b->syms = syms;
	b->function = function;
	b->modules = json_array();
	b->frames = json_array();
	b->ndone = s->stacks.count;
	b->done = calloc(b->ndone + 1, sizeof(*b->done));
	b->pass = calloc(b->ndone + 1, sizeof(*b->pass));
	return b->modules && b->frames && b->done && b->pass ? 0 : -ENOMEM;
}

static void builder_free(struct stack_builder *b)
{
	for (size_t i = 0; i < b->ndone; i++)
		json_decref(b->done[i]);
	free(b->done);
	free(b->pass);
	intern_free(&b->module_ids);
	pairmap_free(&b->module_of);
	intern_free(&b->frame_ids);
	json_decref(b->modules);
	json_decref(b->frames);
}

/* Every (endpoint, stack) count of the selection. */
static json_t *stats_stacks_json(struct stats *s, struct stack_builder *b,
				 const char *endpoint)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < s->stack_counts.cap; i++) {
		const struct pairmap_slot *sl = &s->stack_counts.slots[i];
		const char *name;
		json_t *fr;

		if (!sl->used)
			continue;
		name = intern_get(&s->names, (uint32_t)sl->k1, NULL);
		if (endpoint && strcmp(endpoint, name) != 0)
			continue;
		fr = builder_stack(b, (uint32_t)sl->k2);
		if (!fr)
			continue;
		json_array_append_new(arr, json_pack("{s:s, s:o, s:I}", "endpoint",
						     name, "frames", fr, "samples",
						     (json_int_t)sl->v));
	}
	return arr;
}

/* A kept request's own stacks, and its samples' times after its start. */
static void stats_trace_json(struct stack_builder *b, const struct kept *k,
			     json_t *req)
{
	const struct trace *t = k->trace;
	json_t *stacks = json_array(), *timeline = json_array();
	struct pairmap local = {0};   /* stack id -> index in stacks + 1 */

	for (uint32_t i = 0; t && i < t->n; i++) {
		uint64_t *slot = pairmap_put(&local, t->v[i].stack, 0);
		json_t *st;

		if (!slot)
			break;
		if (!*slot) {
			json_t *fr = builder_stack(b, t->v[i].stack);

			if (!fr) {
				*slot = UINT64_MAX; /* filtered out */
				continue;
			}
			json_array_append_new(stacks,
					      json_pack("{s:o, s:I}", "frames",
							fr, "samples",
							(json_int_t)0));
			*slot = json_array_size(stacks);
		}
		if (*slot == UINT64_MAX)
			continue;
		st = json_array_get(stacks, *slot - 1);
		json_object_set_new(
			st, "samples",
			json_integer(json_integer_value(
					     json_object_get(st, "samples")) +
				     1));
		json_array_append_new(timeline,
				      json_pack("[f, I]", t->v[i].time - k->start,
						(json_int_t)(*slot - 1)));
	}
	pairmap_free(&local);
	json_object_set_new(req, "stacks", stacks);
	json_object_set_new(req, "timeline", timeline);
}

/* The rate process p's rate-sampled samples come at: the asked one on
 * the wall clock, its CPU clock's on the CPU clock (0 before it has one). */
static uint32_t stats_effective_hz(const struct process *p)
{
	if (p->clock == RING_CLOCK_WALL)
		return p->hz;
	if (p->engine.engine == RING_ENGINE_NONE ||
	    p->engine.engine == RING_ENGINE_FAILED)
		return 0;
	return p->engine.hz;
}

/* The clock and weight of one sample, from the first process that
 * samples (processes of one profile share their environment). */
static json_t *stats_sample_json(const struct stats *s)
{
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct process *p = &s->procs[i];
		uint32_t hz = stats_effective_hz(p);

		if (!hz)
			hz = p->hz;
		if (hz)
			return json_pack("{s:s, s:f}", "clock",
					 p->clock == RING_CLOCK_WALL ? "wall"
								     : "cpu",
					 "period_ns", 1e9 / hz);
	}
	return json_pack("{s:s, s:f}", "clock", "cpu", "period_ns", 1e7);
}

void stats_signal_name(uint32_t sig, char *buf, size_t len)
{
	const char *abbrev = sig ? sigabbrev_np((int)sig) : NULL;

	if (abbrev)
		(void)snprintf(buf, len, "SIG%s", abbrev);
	else if (sig >= (uint32_t)SIGRTMIN && sig <= (uint32_t)SIGRTMAX)
		(void)snprintf(buf, len, "SIGRTMAX-%u",
			       (unsigned)(SIGRTMAX - (int)sig));
	else
		(void)snprintf(buf, len, "signal %u", (unsigned)sig);
	if (!strcmp(buf, "SIGRTMAX-0"))
		(void)snprintf(buf, len, "SIGRTMAX");
}

const char *stats_aside_text(uint32_t why)
{
	switch (why) {
	case RING_ASIDE_NO_SIGNAL:
		return "the program holds SIGPROF and every other signal "
		       "profshim could sample with";
	case RING_ASIDE_INIT:
		return "profshim could not install its signal handler";
	default:
		return "profshim stood aside";
	}
}

/*
 * The signal part of a process' "sample" object: "sampling" ("on", "stood
 * aside", or "unknown" for a shim that does not say), "signal", the
 * signals the program holds ("program_holds"), and why it stood aside.
 */
static void stats_proc_signal_json(const struct process *p, json_t *o)
{
	static const char *const states[] = {
		[RING_SAMPLING_UNKNOWN] = "unknown", [RING_SAMPLING_ON] = "on",
		[RING_SAMPLING_ASIDE] = "stood aside",
	};
	const struct reader_engine *e = &p->engine;
	char name[32];
	json_t *held = json_array();

	json_object_set_new(o, "sampling", json_string(states[e->sampling]));
	if (e->signo) {
		stats_signal_name(e->signo, name, sizeof(name));
		json_object_set_new(o, "signal", json_string(name));
	} else {
		json_object_set_new(o, "signal", json_null());
	}
	for (uint32_t sig = 1; sig <= 64; sig++)
		if (e->taken & (1ull << (sig - 1))) {
			stats_signal_name(sig, name, sizeof(name));
			json_array_append_new(held, json_string(name));
		}
	json_object_set_new(o, "program_holds", held);
	if (e->sampling == RING_SAMPLING_ASIDE)
		json_object_set_new(o, "stood_aside",
				    json_string(stats_aside_text(e->aside)));
}

/*
 * How process p takes its samples: the clock, the engine behind it, the
 * asked and the effective rate, why perf was refused, if it was, and its
 * signal.
 */
static json_t *stats_proc_sample_json(const struct process *p)
{
	static const char *const engines[] = {
		[RING_ENGINE_NONE] = "none",   [RING_ENGINE_PERF] = "perf",
		[RING_ENGINE_PERF_USER] = "perf", [RING_ENGINE_TIMER] = "timer",
		[RING_ENGINE_FAILED] = "failed",
	};
	bool wall = p->clock == RING_CLOCK_WALL;
	json_t *o = json_pack(
		"{s:s, s:s, s:I, s:I, s:I, s:I}", "clock", wall ? "wall" : "cpu",
		"engine", wall ? "wall-timer" : engines[p->engine.engine],
		"asked_hz", (json_int_t)p->hz, "effective_hz",
		(json_int_t)stats_effective_hz(p), "manual_hz",
		(json_int_t)p->manual_hz, "tick_hz",
		(json_int_t)p->engine.tick_hz);

	if (!wall && p->engine.engine != RING_ENGINE_NONE)
		json_object_set_new(o, "kernel_time",
				    json_boolean(p->engine.engine !=
						 RING_ENGINE_PERF_USER));
	if (p->engine.error) {
		const char *name = strerrorname_np((int)p->engine.error);
		json_t *why = json_pack("{s:s}", "errno", name ? name : "?");

		if (p->paranoid >= 0)
			json_object_set_new(why, "perf_event_paranoid",
					    json_integer(p->paranoid));
		json_object_set_new(o, "perf_refused", why);
	}
	stats_proc_signal_json(p, o);
	return o;
}

static int kept_cmp(const void *a, const void *b)
{
	const struct kept *x = *(const struct kept *const *)a;
	const struct kept *y = *(const struct kept *const *)b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->proc != y->proc)
		return x->proc < y->proc ? -1 : 1;
	return x->req_id < y->req_id ? -1 : x->req_id > y->req_id;
}

static json_t *stats_requests_json(struct stats *s, struct stack_builder *b,
				   const char *endpoint)
{
	size_t n = s->nslow + s->nrecent + s->nmanual, m = 0;
	const struct kept **all = calloc(n ? n : 1, sizeof(*all));
	json_t *arr = json_array();

	if (!all)
		return arr;
	for (size_t i = 0; i < s->nslow; i++)
		all[m++] = &s->slow[i];
	for (size_t i = 0; i < s->nrecent; i++)
		all[m++] = &s->recent[i];
	for (size_t i = 0; i < s->nmanual; i++)
		all[m++] = &s->manual[i];
	qsort(all, m, sizeof(*all), kept_cmp);
	for (size_t i = 0; i < m; i++) {
		const struct kept *k = all[i];
		const char *name = intern_get(&s->names, k->endpoint, NULL);
		char id[48];
		json_t *req;

		if (i > 0 && all[i - 1]->proc == k->proc &&
		    all[i - 1]->req_id == k->req_id)
			continue; /* kept as both slow and recent */
		if (endpoint && strcmp(endpoint, name) != 0)
			continue;
		stats_request_id(s, k, id, sizeof(id));
		req = json_pack("{s:s, s:I, s:I, s:s, s:f, s:f, s:I, s:b, s:b, s:I, s:b}",
				  "id", id, "pid",
				  (json_int_t)s->procs[k->proc].pid, "tid",
				  (json_int_t)k->tid, "endpoint", name, "start",
				  k->start, "duration", ns_to_s(k->duration_ns),
				  "status", (json_int_t)k->status, "sampled",
				  (k->flags & RING_REQ_SAMPLED) != 0, "manual",
				  (k->flags & RING_REQ_MANUAL) != 0, "samples",
				  (json_int_t)k->samples, "aborted",
				  (k->flags & RING_REQ_ABORTED) != 0);
		if (!req)
			continue;
		stats_trace_json(b, k, req);
		json_array_append_new(arr, req);
	}
	free(all);
	return arr;
}

/* A leaf address of a request's trace and the samples taken there. */
struct leaf {
	uint64_t addr;
	uint64_t samples;
};

static int leaf_cmp(const void *a, const void *b)
{
	const struct leaf *x = a, *y = b;

	return x->samples < y->samples ? 1 : x->samples > y->samples ? -1 : 0;
}

/*
 * The distinct leaf addresses of trace t (t->n > 0) with their samples,
 * most samples first, in a new array of *ret_n entries; NULL when out of
 * memory.
 */
static struct leaf *stats_trace_leaves(const struct stats *s,
				       const struct trace *t, size_t *ret_n)
{
	struct leaf *leaves = calloc(t->n, sizeof(*leaves));
	size_t nl = 0;

	if (!leaves)
		return NULL;
	for (uint32_t i = 0; i < t->n; i++) {
		const uint64_t *key = intern_get(&s->stacks, t->v[i].stack,
						 NULL);
		size_t j;

		for (j = 0; j < nl && leaves[j].addr != key[1]; j++)
			;
		if (j == nl)
			leaves[nl++].addr = key[1];
		leaves[j].samples++;
	}
	qsort(leaves, nl, sizeof(*leaves), leaf_cmp);
	*ret_n = nl;
	return leaves;
}

/*
 * Count `samples` for function fr in top, the "top_frames" array: added
 * to the entry already holding that name, else appended as a new entry
 * while top has fewer than nframes.
 */
static void stats_top_frame_add(json_t *top, const struct symbols_frame *fr,
				uint64_t samples, unsigned nframes)
{
	bool merged = false;
	size_t j;
	json_t *v;

	json_array_foreach(top, j, v)
		if (strcmp(json_string_value(json_object_get(v, "function")),
			   fr->function) == 0) {
			json_object_set_new(
				v, "samples",
				json_integer(json_integer_value(json_object_get(
						     v, "samples")) +
					     (json_int_t)samples));
			merged = true;
		}
	if (merged || json_array_size(top) >= nframes)
		return;
	json_array_append_new(top, json_pack("{s:o, s:o, s:I}", "function",
					     stats_jstr(fr->function), "module",
					     stats_jstr(fr->module), "samples",
					     (json_int_t)samples));
}

json_t *stats_json_last_request(struct stats *s, struct symbols *syms,
				unsigned nframes)
{
	const struct kept *k;
	const struct process *p;
	struct leaf *leaves;
	json_t *o, *top;
	char id[48];
	size_t nl = 0;

	if (!s->nrecent)
		return NULL;
	k = &s->recent[(s->recent_next + STATS_KEEP_RECENT - 1) %
		       STATS_KEEP_RECENT];
	p = &s->procs[k->proc];
	stats_request_id(s, k, id, sizeof(id));
	o = json_pack("{s:s, s:I, s:s, s:f, s:I, s:b, s:I}", "id", id, "pid",
		      (json_int_t)p->pid, "endpoint",
		      intern_get(&s->names, k->endpoint, NULL), "duration",
		      ns_to_s(k->duration_ns), "status", (json_int_t)k->status,
		      "manual", (k->flags & RING_REQ_MANUAL) != 0, "samples",
		      (json_int_t)k->samples);
	if (!o || !k->trace || !k->trace->n)
		return o;
	/* Leaf addresses by samples; their symbols merge equal names. */
	leaves = stats_trace_leaves(s, k->trace, &nl);
	top = json_array();
	if (!leaves || !top) {
		free(leaves);
		json_decref(top);
		return o;
	}
	for (size_t i = 0; i < nl; i++) {
		struct symbols_frame fr;

		symbols_lookup(syms, p->jit, p->mods, p->nmods,
			       leaves[i].addr, false, &fr);
		stats_top_frame_add(top, &fr, leaves[i].samples, nframes);
	}
	free(leaves);
	json_object_set_new(o, "top_frames", top);
	return o;
}

/* Every endpoint of the selection (stats_endpoint_json()), by name; ft and
 * kept are stats_functions()'s, by endpoint id. */
static json_t *stats_endpoints_json(struct stats *s, const char *endpoint,
				    const char *function,
				    struct func_table *ft, const uint64_t *kept)
{
	json_t *data = json_object();

	for (size_t id = 0; id < s->names.count; id++) {
		const char *name = intern_get(&s->names, (uint32_t)id, NULL);
		json_t *e;

		if (!s->eps[id] || (endpoint && strcmp(endpoint, name) != 0))
			continue;
		e = stats_endpoint_json(s, id, function, &ft[id], kept[id]);
		if (e)
			json_object_set_new(data, name, e);
	}
	return data;
}

/* The processes: samples and sample_bytes are what the ring carried since
 * the process started, for sizing rings. */
static json_t *stats_processes_json(const struct stats *s)
{
	json_t *procs = json_array();

	for (size_t i = 0; i < s->nprocs; i++) {
		const struct process *p = &s->procs[i];

		json_array_append_new(
			procs, json_pack("{s:I, s:I, s:s, s:b, s:I, s:I, s:o}",
					 "pid", (json_int_t)p->pid, "ppid",
					 (json_int_t)p->ppid, "exe", p->exe,
					 "exited", p->exited, "ring_samples",
					 (json_int_t)p->now.samples,
					 "ring_sample_bytes",
					 (json_int_t)p->now.sample_bytes,
					 "sample", stats_proc_sample_json(p)));
	}
	return procs;
}

/* What the rings lost or left out since the last reset, all processes'. */
static json_t *stats_dropped_json(const struct stats *s)
{
	uint64_t ds = 0, de = 0, dr = 0, sk = 0, un = 0, uc = 0, oe = 0;

	for (size_t i = 0; i < s->nprocs; i++) {
		const struct process *p = &s->procs[i];

		ds += p->now.dropped_samples - p->base.dropped_samples;
		de += p->now.dropped_events - p->base.dropped_events;
		dr += p->now.dropped_requests - p->base.dropped_requests;
		sk += p->now.skipped_samples - p->base.skipped_samples;
		un += p->now.unresolved_samples - p->base.unresolved_samples;
		uc += p->now.untracked_conns - p->base.untracked_conns;
		oe += p->now.overflow_endpoints - p->base.overflow_endpoints;
	}
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "samples",
			 (json_int_t)ds, "events", (json_int_t)de, "requests",
			 (json_int_t)dr, "skipped_samples", (json_int_t)sk,
			 "unresolved_samples", (json_int_t)un,
			 "untracked_conns", (json_int_t)uc,
			 "overflow_endpoints", (json_int_t)oe);
}

static void func_tables_free(struct func_table *ft, size_t n)
{
	for (size_t i = 0; ft && i < n; i++) {
		free(ft[i].v);
		pairmap_free(&ft[i].index);
	}
	free(ft);
}

/* The profile, or with !whole its summary (stats_json_summary()). */
static json_t *stats_json_build(struct stats *s, struct symbols *syms,
				const char *endpoint, const char *function,
				bool whole)
{
	size_t neps = s->names.count;
	uint64_t only = UINT64_MAX;
	struct func_table *ft = calloc(neps + 1, sizeof(*ft));
	uint64_t *kept = calloc(neps + 1, sizeof(*kept));
	struct stack_builder b;
	json_t *root = NULL, *data, *stacks, *reqs;

	if (endpoint) {
		int64_t id = intern_find(&s->names, endpoint, strlen(endpoint));

		/* No such endpoint: no stack passes. */
		only = id >= 0 ? (uint64_t)id : neps;
	}
	if (builder_init(&b, s, syms, function) < 0 || !ft || !kept ||
	    stats_functions(s, whole ? syms : NULL, only, function, ft,
			    kept) < 0)
		goto out;

	data = stats_endpoints_json(s, endpoint, function, ft, kept);
	/* Stacks first: the modules and frames tables are numbered in the
	 * order the stacks, then the kept requests, refer to them. */
	stacks = whole ? stats_stacks_json(s, &b, endpoint) : json_array();
	reqs = whole ? stats_requests_json(s, &b, endpoint) : json_array();
	root = json_pack("{s:i, s:o, s:o, s:o, s:o}", "version", 1, "data",
			 data, "requests", reqs, "processes",
			 stats_processes_json(s), "dropped",
			 stats_dropped_json(s));
	if (root) {
		json_object_set_new(root, "sample", stats_sample_json(s));
		json_object_set(root, "modules", b.modules);
		json_object_set(root, "frames", b.frames);
		json_object_set_new(root, "stacks", stacks);
	} else {
		json_decref(stacks);
	}
out:
	builder_free(&b);
	func_tables_free(ft, neps + 1);
	free(kept);
	return root;
}

json_t *stats_json(struct stats *s, struct symbols *syms, const char *endpoint,
		   const char *function)
{
	return stats_json_build(s, syms, endpoint, function, true);
}

json_t *stats_json_summary(struct stats *s)
{
	return stats_json_build(s, NULL, NULL, NULL, false);
}

/*
 * stats.c — aggregation and the profile JSON (see stats.h).
 */
#include "model/stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/stats_impl.h"

/*
 * Copy src into dst (dstsz bytes, NUL-terminated) with every byte that is
 * not part of valid UTF-8 replaced by '?'. Names come from the wire and from
 * file systems; JSON needs valid UTF-8.
 */
static void stats_utf8(const char *src, char *dst, size_t dstsz)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t o = 0;

	while (*p && o + 1 < dstsz) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 :
			   (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = n > 0 && o + n < dstsz && (n == 1 || *p >= 0xc2) &&
			  *p <= 0xf4;

		for (size_t i = 1; ok && i < n; i++)
			ok = (p[i] & 0xc0) == 0x80;
		/* Overlong 3/4-byte forms, surrogates, beyond U+10FFFF. */
		if (ok && n == 3)
			ok = !(p[0] == 0xe0 && p[1] < 0xa0) &&
			     !(p[0] == 0xed && p[1] >= 0xa0);
		if (ok && n == 4)
			ok = !(p[0] == 0xf0 && p[1] < 0x90) &&
			     !(p[0] == 0xf4 && p[1] >= 0x90);
		if (!ok) {
			dst[o++] = '?';
			p++;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			dst[o++] = (char)p[i];
		p += n;
	}
	dst[o] = '\0';
}

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

struct stats *stats_new(void)
{
	return calloc(1, sizeof(struct stats));
}

static void trace_unref(struct trace *t)
{
	if (t && --t->refs == 0) {
		free(t->v);
		free(t);
	}
}

/* Free the traces of requests still in flight. */
static void stats_drop_traces(struct stats *s)
{
	for (size_t i = 0; i < s->traces.cap; i++) {
		struct trace *t;

		if (!s->traces.slots[i].used)
			continue;
		t = (struct trace *)(uintptr_t)s->traces.slots[i].v;
		free(t->v);
		free(t);
	}
	pairmap_free(&s->traces);
}

static void stats_clear(struct stats *s)
{
	for (size_t i = 0; i < s->nslow; i++)
		trace_unref(s->slow[i].trace);
	for (size_t i = 0; i < s->nrecent; i++)
		trace_unref(s->recent[i].trace);
	for (size_t i = 0; i < s->nmanual; i++)
		trace_unref(s->manual[i].trace);
	stats_drop_traces(s);
	for (size_t i = 0; i < s->eps_cap; i++)
		free(s->eps[i]);
	free(s->eps);
	s->eps = NULL;
	s->eps_cap = 0;
	intern_free(&s->names);
	intern_free(&s->stacks);
	pairmap_free(&s->stack_counts);
	pairmap_free(&s->pending);
	free(s->manual);
	s->manual = NULL;
	s->nmanual = s->manual_cap = 0;
	s->nslow = s->nrecent = s->recent_next = 0;
	s->requests = s->samples = 0;
}

void stats_free(struct stats *s)
{
	if (!s)
		return;
	stats_clear(s);
	for (size_t i = 0; i < s->nprocs; i++) {
		free(s->procs[i].exe);
		free(s->procs[i].mods);
	}
	free(s->procs);
	free(s);
}

void stats_reset(struct stats *s)
{
	stats_clear(s);
	for (size_t i = 0; i < s->nprocs; i++)
		s->procs[i].base = s->procs[i].now;
}

int stats_process_find(const struct stats *s, uint32_t pid)
{
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid && !s->procs[i].exited)
			return (int)i;
	return -ENOENT;
}

int stats_process(struct stats *s, uint32_t pid, uint32_t ppid,
		  const char *exe)
{
	struct process *p;
	int found = stats_process_find(s, pid);

	if (found >= 0)
		return found;
	if (s->nprocs == s->procs_cap) {
		size_t n = s->procs_cap ? s->procs_cap * 2 : 16;
		struct process *np = realloc(s->procs, n * sizeof(*np));

		if (!np)
			return -ENOMEM;
		s->procs = np;
		s->procs_cap = n;
	}
	p = &s->procs[s->nprocs];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->ppid = ppid;
	p->exe = malloc(RING_EXE_MAX * 4);
	if (!p->exe)
		return -ENOMEM;
	stats_utf8(exe ? exe : "", p->exe, RING_EXE_MAX * 4);
	return (int)s->nprocs++;
}

int stats_set_modules(struct stats *s, int proc, const struct ring_module *m,
		      uint32_t n)
{
	struct process *p = &s->procs[proc];
	struct ring_module *mods;

	if (n == p->nmods)
		return 0;
	mods = realloc(p->mods, (n ? n : 1) * sizeof(*mods));
	if (!mods)
		return -ENOMEM;
	memcpy(mods, m, n * sizeof(*mods));
	p->mods = mods;
	p->nmods = n;
	return 0;
}

void stats_set_counters(struct stats *s, int proc,
			const struct reader_counters *c)
{
	s->procs[proc].now = *c;
}

void stats_set_exited(struct stats *s, int proc)
{
	s->procs[proc].exited = true;
}

void stats_set_sampling(struct stats *s, int proc, uint32_t clock,
			uint32_t hz)
{
	s->procs[proc].clock = clock;
	s->procs[proc].hz = hz;
}

void stats_totals(const struct stats *s, uint64_t *ret_requests,
		  uint64_t *ret_samples, uint64_t *ret_endpoints)
{
	*ret_requests = s->requests;
	*ret_samples = s->samples;
	*ret_endpoints = s->names.count;
}

/* Endpoint id and statistics for a name, created when new. */
int64_t stats_endpoint(struct stats *s, const char *raw,
		       struct endpoint **ret)
{
	char name[RING_ENDPOINT_NAME_MAX * 3];
	int64_t id;

	stats_utf8(raw, name, sizeof(name));
	id = intern_put(&s->names, name, strlen(name));

	if (id < 0)
		return id;
	if ((size_t)id >= s->eps_cap) {
		size_t n = s->eps_cap ? s->eps_cap * 2 : 64;
		struct endpoint **np;

		while (n <= (size_t)id)
			n *= 2;
		np = realloc(s->eps, n * sizeof(*np));
		if (!np)
			return -ENOMEM;
		memset(np + s->eps_cap, 0, (n - s->eps_cap) * sizeof(*np));
		s->eps = np;
		s->eps_cap = n;
	}
	if (!s->eps[id]) {
		s->eps[id] = calloc(1, sizeof(struct endpoint));
		if (!s->eps[id])
			return -ENOMEM;
	}
	*ret = s->eps[id];
	return id;
}

static void stats_heap_down(struct kept *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		struct kept t;

		if (l < n && h[l].duration_ns < h[m].duration_ns)
			m = l;
		if (r < n && h[r].duration_ns < h[m].duration_ns)
			m = r;
		if (m == i)
			return;
		t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void stats_keep(struct stats *s, const struct kept *k)
{
	if (s->nslow < STATS_KEEP_SLOW) {
		size_t i = s->nslow++;

		s->slow[i] = *k;
		while (i > 0 && s->slow[(i - 1) / 2].duration_ns >
					s->slow[i].duration_ns) {
			struct kept t = s->slow[i];

			s->slow[i] = s->slow[(i - 1) / 2];
			s->slow[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
	} else if (k->duration_ns > s->slow[0].duration_ns) {
		trace_unref(s->slow[0].trace);
		s->slow[0] = *k;
		stats_heap_down(s->slow, s->nslow, 0);
	} else {
		goto recent;
	}
	if (k->trace)
		k->trace->refs++;
recent:
	if (s->nrecent == STATS_KEEP_RECENT)
		trace_unref(s->recent[s->recent_next].trace);
	if (k->trace)
		k->trace->refs++;
	s->recent[s->recent_next] = *k;
	s->recent_next = (s->recent_next + 1) % STATS_KEEP_RECENT;
	if (s->nrecent < STATS_KEEP_RECENT)
		s->nrecent++;
	if ((k->flags & RING_REQ_MANUAL) && s->nmanual < STATS_MANUAL_MAX) {
		if (s->nmanual == s->manual_cap) {
			size_t n = s->manual_cap ? s->manual_cap * 2 : 16;
			struct kept *np = realloc(s->manual, n * sizeof(*np));

			if (!np)
				return;
			s->manual = np;
			s->manual_cap = n;
		}
		if (k->trace)
			k->trace->refs++;
		s->manual[s->nmanual++] = *k;
	}
}

static int stats_request(struct stats *s, int proc,
			 const struct reader_event *ev)
{
	struct endpoint *e;
	int64_t id = stats_endpoint(s, ev->endpoint, &e);
	uint64_t *pending;
	struct kept k;
	unsigned cls;

	if (id < 0)
		return (int)id;
	e->calls++;
	e->total_ns += ev->duration_ns;
	hist_add(&e->hist, ev->duration_ns);
	cls = ev->status >= 100 && ev->status < 600 ? ev->status / 100 - 1 : 5;
	e->status[cls]++;
	if (ev->flags & RING_REQ_SAMPLED)
		e->sampled_calls++;
	if (ev->flags & RING_REQ_ABORTED)
		e->aborted++;
	s->requests++;

	memset(&k, 0, sizeof(k));
	pending = pairmap_find(&s->pending, (uint64_t)proc, ev->req_id);
	if (pending) {
		k.samples = (uint32_t)*pending;
		pairmap_del(&s->pending, (uint64_t)proc, ev->req_id);
	}
	{
		uint64_t *t = pairmap_find(&s->traces, (uint64_t)proc, ev->req_id);

		if (t) {
			k.trace = (struct trace *)(uintptr_t)*t;
			pairmap_del(&s->traces, (uint64_t)proc, ev->req_id);
		}
	}
	k.req_id = ev->req_id;
	k.proc = (uint32_t)proc;
	k.tid = ev->tid;
	k.endpoint = (uint32_t)id;
	k.status = ev->status;
	k.flags = ev->flags;
	k.start = ev->start;
	k.duration_ns = ev->duration_ns;
	if (k.trace)
		k.trace->refs = 0;
	stats_keep(s, &k);
	if (k.trace && k.trace->refs == 0) {
		/* Kept nowhere. */
		free(k.trace->v);
		free(k.trace);
	}
	return 0;
}

/* Note the sample in its request's trace (at most STATS_TRACE_MAX). */
static int stats_trace(struct stats *s, int proc, const struct reader_event *ev,
		       uint32_t stack)
{
	uint64_t *slot = pairmap_put(&s->traces, (uint64_t)proc, ev->req_id);
	struct trace *t;

	if (!slot)
		return -ENOMEM;
	t = (struct trace *)(uintptr_t)*slot;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			pairmap_del(&s->traces, (uint64_t)proc, ev->req_id);
			return -ENOMEM;
		}
		*slot = (uintptr_t)t;
	}
	if (t->n == t->cap) {
		uint32_t n = t->cap ? t->cap * 2 : 8;
		struct trace_sample *v;

		if (t->cap >= STATS_TRACE_MAX)
			return 0;
		v = realloc(t->v, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = n;
	}
	t->v[t->n].stack = stack;
	t->v[t->n++].time = ev->start;
	return 0;
}

static int stats_sample(struct stats *s, int proc, const struct reader_event *ev)
{
	uint64_t key[1 + RING_MAX_FRAMES];
	struct endpoint *e;
	int64_t id, stack;
	uint64_t *count;

	id = stats_endpoint(s, ev->endpoint ? ev->endpoint : STATS_NO_REQUEST,
			    &e);
	if (id < 0)
		return (int)id;
	key[0] = (uint64_t)proc;
	memcpy(key + 1, ev->frames, ev->nframes * sizeof(uint64_t));
	stack = intern_put(&s->stacks, key, (1 + ev->nframes) * sizeof(uint64_t));
	if (stack < 0)
		return (int)stack;
	count = pairmap_put(&s->stack_counts, (uint64_t)id, (uint64_t)stack);
	if (!count)
		return -ENOMEM;
	(*count)++;
	e->samples++;
	s->samples++;
	if (ev->req_id) {
		/* A request whose record was dropped (ring full) never claims
		 * its entry: bound the map rather than grow without end. */
		if (s->pending.count >= STATS_PENDING_MAX) {
			pairmap_free(&s->pending);
			stats_drop_traces(s);
		}
		count = pairmap_put(&s->pending, (uint64_t)proc, ev->req_id);
		if (!count)
			return -ENOMEM;
		(*count)++;
		return stats_trace(s, proc, ev, (uint32_t)stack);
	}
	return 0;
}

int stats_event(struct stats *s, int proc, const struct reader_event *ev)
{
	if (ev->kind == READER_REQUEST)
		return stats_request(s, proc, ev);
	return stats_sample(s, proc, ev);
}

/* ---- JSON ---------------------------------------------------------------- */

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
		if (t->n == t->cap) {
			size_t n = t->cap ? t->cap * 2 : 64;
			struct func_acc *nv = realloc(t->v, n * sizeof(*nv));

			if (!nv)
				return NULL;
			t->v = nv;
			t->cap = n;
		}
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
			symbols_lookup(syms, p->mods, p->nmods, key[1 + j], j > 0,
				       &fr[j]);
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

void stats_build_id_hex(const struct ring_module *m, char *hex)
{
	static const char digits[] = "0123456789abcdef";
	uint32_t n = m->build_id_len < RING_BUILD_ID_MAX ? m->build_id_len
							 : RING_BUILD_ID_MAX;

	for (uint32_t i = 0; i < n; i++) {
		hex[2 * i] = digits[m->build_id[i] >> 4];
		hex[2 * i + 1] = digits[m->build_id[i] & 15];
	}
	hex[2 * n] = '\0';
}

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

static int64_t builder_frame(struct stack_builder *b,
			     const struct symbols_frame *f)
{
	int64_t mod = f->mod ? builder_module(b, f->mod) : -1;
	/* The symbolizer's strings are interned: equal names are the same
	 * pointer, so the pointers identify a frame. */
	struct {
		const char *function, *file;
		int64_t mod;
		int64_t line;
	} key = {f->function, f->file, mod, f->line};
	int id;

	id = (int)intern_put(&b->frame_ids, &key, sizeof(key));
	if (id >= 0 && (size_t)id == json_array_size(b->frames)) {
		json_t *o = json_pack("{s:o, s:I}", "function",
				      stats_jstr(f->function), "module",
				      (json_int_t)mod);

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

		symbols_lookup(b->syms, p->mods, p->nmods, key[1 + j], j > 0, &fr);
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

/* The clock and weight of one sample, from the first process that
 * samples (processes of one profile share their environment). */
static json_t *stats_sample_json(const struct stats *s)
{
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].hz)
			return json_pack("{s:s, s:f}", "clock",
					 s->procs[i].clock == RING_CLOCK_WALL
						 ? "wall"
						 : "cpu",
					 "period_ns", 1e9 / s->procs[i].hz);
	return json_pack("{s:s, s:f}", "clock", "cpu", "period_ns", 1e7);
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

static int leaf_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return x[1] < y[1] ? 1 : x[1] > y[1] ? -1 : 0;
}

json_t *stats_last_request(struct stats *s, struct symbols *syms,
			   unsigned nframes)
{
	const struct kept *k;
	const struct process *p;
	json_t *o, *top;
	char id[48];
	uint64_t (*leaves)[2];
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
	leaves = calloc(k->trace->n, sizeof(*leaves));
	top = json_array();
	if (!leaves || !top) {
		free(leaves);
		json_decref(top);
		return o;
	}
	for (uint32_t i = 0; i < k->trace->n; i++) {
		const uint64_t *key = intern_get(&s->stacks, k->trace->v[i].stack,
						 NULL);
		size_t j;

		for (j = 0; j < nl && leaves[j][0] != key[1]; j++)
			;
		if (j == nl)
			leaves[nl++][0] = key[1];
		leaves[j][1]++;
	}
	qsort(leaves, nl, sizeof(*leaves), leaf_cmp);
	for (size_t i = 0; i < nl; i++) {
		struct symbols_frame fr;
		json_t *f, *v;
		size_t j;
		bool merged = false;

		symbols_lookup(syms, p->mods, p->nmods, leaves[i][0], false, &fr);
		json_array_foreach(top, j, v)
			if (strcmp(json_string_value(json_object_get(v, "function")),
				   fr.function) == 0) {
				json_object_set_new(
					v, "samples",
					json_integer(json_integer_value(json_object_get(
							     v, "samples")) +
						     (json_int_t)leaves[i][1]));
				merged = true;
			}
		if (merged || json_array_size(top) >= nframes)
			continue;
		f = json_pack("{s:o, s:o, s:I}", "function",
			      stats_jstr(fr.function), "module",
			      stats_jstr(fr.module), "samples",
			      (json_int_t)leaves[i][1]);
		json_array_append_new(top, f);
	}
	free(leaves);
	json_object_set_new(o, "top_frames", top);
	return o;
}

/* The profile, or with !whole its summary (stats_json_summary()). */
static json_t *stats_json_build(struct stats *s, struct symbols *syms,
				const char *endpoint, const char *function,
				bool whole)
{
	json_t *root = NULL, *data = json_object(), *procs = json_array();
	uint64_t ds = 0, de = 0, dr = 0, sk = 0, un = 0, uc = 0, oe = 0;
	size_t neps = s->names.count;
	uint64_t only = UINT64_MAX;
	struct func_table *ft = calloc(neps + 1, sizeof(*ft));
	uint64_t *kept = calloc(neps + 1, sizeof(*kept));
	struct stack_builder b;
	json_t *stacks, *reqs;

	if (endpoint) {
		int64_t id = intern_find(&s->names, endpoint, strlen(endpoint));

		/* No such endpoint: no stack passes. */
		only = id >= 0 ? (uint64_t)id : neps;
	}
	if (builder_init(&b, s, syms, function) < 0 || !ft || !kept ||
	    stats_functions(s, whole ? syms : NULL, only, function, ft,
			    kept) < 0) {
		json_decref(data);
		json_decref(procs);
		goto out;
	}

	for (size_t id = 0; id < neps; id++) {
		const char *name = intern_get(&s->names, (uint32_t)id, NULL);
		json_t *e;

		if (!s->eps[id] || (endpoint && strcmp(endpoint, name) != 0))
			continue;
		e = stats_endpoint_json(s, id, function, &ft[id], kept[id]);
		if (e)
			json_object_set_new(data, name, e);
	}
	for (size_t i = 0; i < s->nprocs; i++) {
		const struct process *p = &s->procs[i];

		ds += p->now.dropped_samples - p->base.dropped_samples;
		de += p->now.dropped_events - p->base.dropped_events;
		dr += p->now.dropped_requests - p->base.dropped_requests;
		sk += p->now.skipped_samples - p->base.skipped_samples;
		un += p->now.unresolved_samples - p->base.unresolved_samples;
		uc += p->now.untracked_conns - p->base.untracked_conns;
		oe += p->now.overflow_endpoints - p->base.overflow_endpoints;
		/* samples and sample_bytes: what the ring carried since the
		 * process started, for sizing rings. */
		json_array_append_new(
			procs, json_pack("{s:I, s:I, s:s, s:b, s:I, s:I}", "pid",
					 (json_int_t)p->pid, "ppid",
					 (json_int_t)p->ppid, "exe", p->exe,
					 "exited", p->exited, "ring_samples",
					 (json_int_t)p->now.samples,
					 "ring_sample_bytes",
					 (json_int_t)p->now.sample_bytes));
	}
	stacks = whole ? stats_stacks_json(s, &b, endpoint) : json_array();
	reqs = whole ? stats_requests_json(s, &b, endpoint) : json_array();
	root = json_pack("{s:i, s:o, s:o, s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I}}",
			 "version", 1, "data", data, "requests", reqs,
			 "processes", procs,
			 "dropped", "samples", (json_int_t)ds, "events",
			 (json_int_t)de, "requests", (json_int_t)dr,
			 "skipped_samples", (json_int_t)sk,
			 "unresolved_samples", (json_int_t)un,
			 "untracked_conns", (json_int_t)uc,
			 "overflow_endpoints", (json_int_t)oe);
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
	for (size_t i = 0; ft && i <= neps; i++) {
		free(ft[i].v);
		pairmap_free(&ft[i].index);
	}
	free(ft);
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

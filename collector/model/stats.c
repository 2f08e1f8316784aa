/*
 * stats.c — aggregation: processes, endpoints, kept requests and samples
 * (see stats.h). The profile JSON built from it is stats_json.c.
 */
#include "model/stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model/stats_impl.h"

/*
 * Copy src into dst (dstsz bytes, NUL-terminated) with every byte that is
 * not part of valid UTF-8 replaced by '?'. Names come from the wire and from
 * file systems; JSON needs valid UTF-8.
 */
void stats_utf8(const char *src, char *dst, size_t dstsz)
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
	if (s->nprocs == s->procs_cap &&
	    TABLE_GROW(s->procs, s->procs_cap, 16) < 0)
		return -ENOMEM;
	p = &s->procs[s->nprocs];
	memset(p, 0, sizeof(*p));
	p->paranoid = -1;
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

void stats_set_jit(struct stats *s, int proc, uint32_t jit)
{
	s->procs[proc].jit = jit;
}

void stats_set_sampling(struct stats *s, int proc, uint32_t clock,
			uint32_t hz, uint32_t manual_hz)
{
	s->procs[proc].clock = clock;
	s->procs[proc].hz = hz;
	s->procs[proc].manual_hz = manual_hz;
}

bool stats_set_engine(struct stats *s, int proc, const struct reader_engine *e)
{
	struct process *p = &s->procs[proc];

	if (memcmp(&p->engine, e, sizeof(*e)) == 0)
		return false;
	p->engine = *e;
	p->paranoid = -1;
	return true;
}

void stats_set_paranoid(struct stats *s, int proc, int paranoid)
{
	s->procs[proc].paranoid = paranoid;
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
		if (s->nmanual == s->manual_cap &&
		    TABLE_GROW(s->manual, s->manual_cap, 16) < 0)
			return;
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

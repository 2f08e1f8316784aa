/*
 * push_delta.c — what a push carries. Each look at the profile counts its
 * samples per stack, keyed by what the stack is (endpoint, then each
 * frame's function, module, file and line): frame and stack indices are
 * only meaningful within one document, the symbolized content is the same
 * in every one. The pushed body is the profile with each stack's count
 * replaced by its growth since the previous look, written by the encoders
 * `report` uses (pprof.h, folded.h).
 */
#include "services/push_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "util/bytebuf.h"
#include "formats/folded.h"
#include "formats/pprof.h"
#include "model/profile.h"

/*
 * The unix second of the monotonic instant now_ns, both clocks read
 * together: an interval's end is the time of the loop's turn that looked,
 * so looks `interval` apart end that far apart however long each took.
 */
int64_t push_unix_at(uint64_t now_ns)
{
	struct timespec real, mono;
	int64_t mono_ns, real_ns;

	(void)clock_gettime(CLOCK_REALTIME, &real);
	(void)clock_gettime(CLOCK_MONOTONIC, &mono);
	real_ns = (int64_t)real.tv_sec * 1000000000 + real.tv_nsec;
	mono_ns = (int64_t)mono.tv_sec * 1000000000 + mono.tv_nsec;
	real_ns -= mono_ns - (int64_t)now_ns;
	return real_ns >= 0 ? real_ns / 1000000000 : 0;
}

/* A string and its terminating NUL: fields cannot run into each other. */
static void push_key_str(struct bytebuf *k, const char *s)
{
	bytebuf_append(k, s ? s : "", strlen(s ? s : "") + 1);
}

/* What stack i of the document is, the same in every look. */
static void push_key_stack(struct bytebuf *k, const struct profile *p,
			   size_t i, const char *endpoint)
{
	const struct profile_stack *s = &p->stacks[i];

	k->len = 0;
	push_key_str(k, endpoint);
	for (uint32_t j = 0; j < s->nframes; j++) {
		const struct profile_frame *f = &p->frames[s->frames[j]];
		const struct profile_module *m =
			f->module >= 0 ? &p->modules[f->module] : NULL;

		push_key_str(k, f->function);
		push_key_str(k, m ? m->path : NULL);
		push_key_str(k, m ? m->build_id : NULL);
		push_key_str(k, f->file);
		bytebuf_append(k, &f->line, sizeof(f->line));
	}
}

void push_counts_free(struct push_counts *c)
{
	intern_free(&c->keys);
	free(c->counts);
	memset(c, 0, sizeof(*c));
}

/*
 * Count the document's samples per stack content into c (empty before);
 * rep[id] is the first stack of key id, for its frames and endpoint.
 * Returns 0 or -ENOMEM.
 */
static int push_count(const struct profile *p, struct push_counts *c,
		      size_t **ret_rep)
{
	json_t *stacks = json_object_get(p->root, "stacks");
	struct bytebuf k = {0};
	size_t *rep = malloc((p->nstacks + 1) * sizeof(*rep));
	int r = -ENOMEM;

	*ret_rep = NULL;
	if (!rep)
		return -ENOMEM;
	for (size_t i = 0; i < p->nstacks; i++) {
		/* By name: an endpoint missing from `data` has no index. */
		const char *ep = json_string_value(json_object_get(
			json_array_get(stacks, i), "endpoint"));
		size_t known = c->keys.count;
		int64_t id;

		push_key_stack(&k, p, i, ep);
		if (k.nomem)
			goto out;
		id = intern_put(&c->keys, k.data, k.len);
		if (id < 0)
			goto out;
		if ((size_t)id >= c->cap) {
			size_t cap = c->cap ? 2 * c->cap : 64;
			uint64_t *v = realloc(c->counts, cap * sizeof(*v));

			if (!v)
				goto out;
			memset(v + c->cap, 0, (cap - c->cap) * sizeof(*v));
			c->counts = v;
			c->cap = cap;
		}
		if (c->keys.count > known)
			rep[id] = i;
		c->counts[id] += p->stacks[i].samples;
	}
	*ret_rep = rep;
	rep = NULL;
	r = 0;
out:
	free(rep);
	bytebuf_free(&k);
	return r;
}

/*
 * Were the statistics cleared since the previous look? Counts only grow
 * otherwise, so a stack counted before that is missing now or has fewer
 * samples says so; the whole document then counts from 0.
 */
static bool push_was_reset(const struct push_counts *prev,
			   const struct push_counts *cur)
{
	for (size_t id = 0; id < prev->keys.count; id++) {
		size_t len;
		const void *key = intern_get(&prev->keys, (uint32_t)id, &len);
		int64_t now = intern_find(&cur->keys, key, len);

		if (prev->counts[id] &&
		    (now < 0 || cur->counts[now] < prev->counts[id]))
			return true;
	}
	return false;
}

/* Encode the body of the stacks d (the deltas) into b. 0 or -errno. */
static int push_encode(const struct push *p, const struct profile *d,
		       struct push_body *b)
{
	FILE *f = open_memstream(&b->data, &b->len);
	int r;

	if (!f)
		return -ENOMEM;
	r = p->folded ? folded_write(d, f) : pprof_write(d, f);
	if (fclose(f) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0) {
		free(b->data);
		b->data = NULL;
	}
	return r;
}

static int push_body_url(const struct push *p, const struct profile *prof,
			 int64_t from, int64_t until, struct push_body *b)
{
	double hz = 1e9 / prof->period_ns;

	if (asprintf(&b->url,
		     "%s/ingest?name=%s&from=%" PRId64 "&until=%" PRId64
		     "&format=%s&sampleRate=%.0f&spyName=profshim"
		     "&units=samples&aggregationType=sum",
		     p->base, p->name, from, until,
		     p->folded ? "folded" : "pprof",
		     hz >= 1 && hz < 1e9 ? round(hz) : 100.0) < 0) {
		b->url = NULL;
		return -ENOMEM;
	}
	return 0;
}

/*
 * Queue the body of what grew from p->prev to cur (nothing when nothing
 * did) for the interval from p->from to until. Returns 0 or -errno.
 */
static int push_queue_growth(struct push *p, const struct profile *prof,
			     const struct push_counts *cur, const size_t *rep,
			     int64_t until)
{
	bool reset = push_was_reset(&p->prev, cur);
	struct profile_stack *deltas;
	struct push_body b = {0};
	struct profile d;
	size_t nd = 0;
	int r = 0;

	deltas = malloc((cur->keys.count + 1) * sizeof(*deltas));
	if (!deltas)
		return -ENOMEM;
	for (size_t id = 0; id < cur->keys.count; id++) {
		size_t len;
		const void *key = intern_get(&cur->keys, (uint32_t)id, &len);
		int64_t old = reset ? -1 : intern_find(&p->prev.keys, key, len);
		uint64_t base = old >= 0 ? p->prev.counts[old] : 0;

		if (cur->counts[id] <= base)
			continue;
		deltas[nd] = prof->stacks[rep[id]];
		deltas[nd].samples = cur->counts[id] - base;
		deltas[nd].request = -1;
		b.samples += deltas[nd++].samples;
	}
	if (nd) {
		/* The document's tables, the deltas as its only stacks. */
		d = *prof;
		d.stacks = deltas;
		d.nstacks = nd;
		d.requests = NULL;
		d.nrequests = 0;
		r = push_encode(p, &d, &b);
		if (r == 0)
			r = push_body_url(p, prof, p->from, until, &b);
		if (r == 0)
			push_enqueue(p, &b);
		else
			push_body_free(&b);
	}
	free(deltas);
	return r;
}

/*
 * Look at the profile: queue what grew since the previous look (with
 * `baseline`, only remember it). An interval without samples sends
 * nothing; the next push starts where this look ended. Returns false when
 * the look fails: the previous one stays the reference, and the next push
 * covers both intervals.
 */
bool push_take(struct push *p, uint64_t now, push_snapshot_fn snapshot,
	       void *arg, bool baseline)
{
	struct push_counts cur = {0};
	struct profile *prof = NULL;
	size_t *rep = NULL;
	json_t *doc = snapshot(arg);
	int64_t until = push_unix_at(now);
	char err[256];
	int r;

	if (!doc) {
		push_fail(p, now, "cannot build the profile (out of memory)");
		return false;
	}
	r = profile_from_json(doc, &prof, err, sizeof(err));
	json_decref(doc);
	if (r < 0) {
		push_fail(p, now, "cannot read the profile: %s", err);
		return false;
	}
	/* A clock set back must not make an interval end before it began. */
	if (until < p->from)
		until = p->from;
	r = push_count(prof, &cur, &rep);
	if (r == 0 && !baseline)
		r = push_queue_growth(p, prof, &cur, rep, until);
	if (r == 0) {
		push_counts_free(&p->prev);
		p->prev = cur;
		p->from = until;
	} else {
		push_counts_free(&cur);
		push_fail(p, now, "cannot encode the samples: %s", strerror(-r));
	}
	free(rep);
	profile_free(prof);
	return r == 0;
}

/*
 * speedscope.c — see speedscope.h.
 *
 * Every profile is "sampled" with nanosecond weights: a stack seen n times
 * weighs n sampling periods, so speedscope shows CPU (or wall) time rather
 * than sample counts.
 */
#include "formats/speedscope.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/table.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"
#define SPEEDSCOPE_OUTSIDE "(outside any endpoint)"

/* One "sampled" profile being built. */
struct sampled {
	const uint32_t *map; /* profile frame -> speedscope frame */
	json_t *samples;     /* [[frame, ...] root first, ...] */
	json_t *weights;     /* nanoseconds, one per sample */
	uint64_t total;      /* sum of weights */
};

/* A speedscope frame: one function of one module. */
struct ss_frame {
	const char *function;
	int module;
	const char *file;    /* source file, NULL when none is known */
	int line;            /* lowest line of `file` seen, 0 for none */
};

/*
 * speedscope's frames are functions (it merges samples by frame, and shows
 * a frame's file and line as where the function is), while the profile's
 * are call sites, one per line. Map each profile frame to the frame of its
 * (function, module) in `v`, so a function is one box in a flame graph and
 * one row in the sandwich view however many of its lines were sampled.
 * Returns the number of functions, or -ENOMEM.
 */
static long speedscope_merge(const struct profile *p, uint32_t *map,
			     struct ss_frame *v)
{
	struct intern seen = {0};
	char *key = NULL;
	size_t cap = 0;
	long n = 0;

	for (size_t i = 0; i < p->nframes; i++) {
		const struct profile_frame *f = &p->frames[i];
		size_t len = strlen(f->function);
		struct ss_frame *m;
		int64_t id;

		/* Key: the module index, then the whole name. */
		if (len + sizeof(f->module) > cap) {
			char *nk = realloc(key, len + sizeof(f->module));

			if (!nk)
				goto nomem;
			key = nk;
			cap = len + sizeof(f->module);
		}
		memcpy(key, &f->module, sizeof(f->module));
		memcpy(key + sizeof(f->module), f->function, len);
		id = intern_put(&seen, key, len + sizeof(f->module));
		if (id < 0)
			goto nomem;
		if (id == n)
			v[n++] = (struct ss_frame){.function = f->function,
						   .module = f->module};
		map[i] = (uint32_t)id;
		m = &v[id];
		if (!f->file || !f->file[0])
			continue;
		if (!m->file) {
			m->file = f->file;
			m->line = f->line > 0 ? f->line : 0;
		} else if (strcmp(m->file, f->file) == 0 && f->line > 0 &&
			   (m->line == 0 || f->line < m->line)) {
			m->line = f->line;
		}
	}
	free(key);
	intern_free(&seen);
	return n;
nomem:
	free(key);
	intern_free(&seen);
	return -ENOMEM;
}

/*
 * The shared frame table, and in map the speedscope frame of each profile
 * frame. "file" is the source file when the debug information gave one
 * (with the lowest line sampled in it: the nearest known to the function's
 * start), else the module's path, so a frame without sources still says
 * where its code lives.
 */
static json_t *speedscope_frames(const struct profile *p, uint32_t *map)
{
	struct ss_frame *v = calloc(p->nframes + 1, sizeof(*v));
	json_t *arr = json_array();
	long n = v ? speedscope_merge(p, map, v) : -ENOMEM;

	if (n < 0 || !arr)
		goto nomem;
	for (long i = 0; i < n; i++) {
		const char *file = v[i].file;
		json_t *o = json_object();

		if (!file && v[i].module >= 0 && p->modules[v[i].module].path[0])
			file = p->modules[v[i].module].path;
		if (!o || json_array_append_new(arr, o) < 0 ||
		    json_object_set_new(o, "name",
					json_string(v[i].function)) < 0 ||
		    (file && json_object_set_new(o, "file",
						 json_string(file)) < 0) ||
		    (v[i].file && v[i].line > 0 &&
		     json_object_set_new(o, "line",
					 json_integer(v[i].line)) < 0))
			goto nomem;
	}
	free(v);
	return arr;
nomem:
	free(v);
	json_decref(arr);
	return NULL;
}

static void sampled_drop(struct sampled *s)
{
	json_decref(s->samples);
	json_decref(s->weights);
}

/* An empty profile; on failure s holds nothing (sampled_drop() is safe). */
static int sampled_init(struct sampled *s, const uint32_t *map)
{
	s->map = map;
	s->samples = json_array();
	s->weights = json_array();
	s->total = 0;
	if (!s->samples || !s->weights) {
		sampled_drop(s);
		s->samples = s->weights = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Append the stack seen n times (n > 0) as one weighted sample. */
static int sampled_add(struct sampled *s, const struct profile *p,
		       const struct profile_stack *st, uint64_t n)
{
	uint64_t w = (uint64_t)llround((double)n * p->period_ns);
	json_t *fr = json_array();

	if (!fr || json_array_append_new(s->samples, fr) < 0)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->nframes; i++)
		if (json_array_append_new(fr,
					  json_integer(s->map[st->frames[i]])) < 0)
			return -ENOMEM;
	if (json_array_append_new(s->weights, json_integer((json_int_t)w)) < 0)
		return -ENOMEM;
	s->total += w;
	return 0;
}

/*
 * The profile object named `name` (a new reference, NULL on ENOMEM). Takes
 * over `name` and s's arrays whatever happens.
 */
static json_t *sampled_finish(struct sampled *s, json_t *name)
{
	json_t *o = json_object();

	if (o && (json_object_set_new(o, "type", json_string("sampled")) < 0 ||
		  json_object_set_new(o, "name", json_incref(name)) < 0 ||
		  json_object_set_new(o, "unit", json_string("nanoseconds")) < 0 ||
		  json_object_set_new(o, "startValue", json_integer(0)) < 0 ||
		  json_object_set_new(o, "endValue",
				      json_integer((json_int_t)s->total)) < 0 ||
		  json_object_set(o, "samples", s->samples) < 0 ||
		  json_object_set(o, "weights", s->weights) < 0)) {
		json_decref(o);
		o = NULL;
	}
	json_decref(name);
	json_decref(s->samples);
	json_decref(s->weights);
	return o;
}

/* Append the profile sampled_finish() makes; takes over s and name. */
static int sampled_append(struct sampled *s, json_t *name, json_t *profiles)
{
	json_t *o = sampled_finish(s, name);

	return json_array_append_new(profiles, o) < 0 ? -ENOMEM : 0;
}

/*
 * The stacks of endpoint `ep` (-1: of no endpoint) as the profile `name`;
 * nothing is added when they have no samples.
 */
static int speedscope_endpoint(const struct profile *p, const uint32_t *map,
			       int ep, const char *name, json_t *profiles)
{
	struct sampled s;
	int r;

	r = sampled_init(&s, map);
	for (size_t i = 0; i < p->nstacks && r == 0; i++) {
		const struct profile_stack *st = &p->stacks[i];

		if (st->endpoint == ep && st->samples > 0)
			r = sampled_add(&s, p, st, st->samples);
	}
	if (r < 0 || json_array_size(s.samples) == 0) {
		sampled_drop(&s);
		return r;
	}
	return sampled_append(&s, json_string(name), profiles);
}

/*
 * One request's profile. When its timeline accounts for every sample, the
 * samples go in the order they were taken, so speedscope's "Time Order"
 * view shows what the request did when; otherwise (the timeline was cut,
 * or --function moved the stacks) one weighted sample per stack.
 */
static int speedscope_request(const struct profile *p, const uint32_t *map,
			      const struct profile_request *q, json_t *profiles)
{
	uint64_t samples = 0;
	struct sampled s;
	int r;

	for (size_t i = 0; i < q->nstacks; i++)
		samples += q->stacks[i].samples;
	r = sampled_init(&s, map);
	if (q->ntimeline > 0 && q->ntimeline == samples) {
		for (size_t i = 0; i < q->ntimeline && r == 0; i++)
			r = sampled_add(&s, p, &q->stacks[q->timeline[i].stack],
					1);
	} else {
		for (size_t i = 0; i < p->nstacks && r == 0; i++)
			if (p->stacks[i].samples > 0)
				r = sampled_add(&s, p, &p->stacks[i],
						p->stacks[i].samples);
	}
	if (r < 0) {
		sampled_drop(&s);
		return r;
	}
	return sampled_append(&s, json_sprintf("%s request %s", q->endpoint,
					       q->id), profiles);
}

/* Heaviest profile first: it is the one speedscope opens on. */
static int profile_cmp(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	json_int_t wx = json_integer_value(json_object_get(x, "endValue"));
	json_int_t wy = json_integer_value(json_object_get(y, "endValue"));

	if (wx != wy)
		return wx < wy ? 1 : -1;
	return strcmp(json_string_value(json_object_get(x, "name")),
		      json_string_value(json_object_get(y, "name")));
}

static int speedscope_sort(json_t *profiles)
{
	size_t n = json_array_size(profiles);
	json_t **v = calloc(n + 1, sizeof(*v));
	int r = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(profiles, i));
	qsort(v, n, sizeof(*v), profile_cmp);
	json_array_clear(profiles);
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(profiles, v[i]) < 0)
			r = -ENOMEM;
	free(v);
	return r;
}

/* Does the selection hold one request alone (report --request)? */
static bool speedscope_one_request(const struct profile *p)
{
	if (p->nrequests != 1)
		return false;
	for (size_t i = 0; i < p->nstacks; i++)
		if (p->stacks[i].request != 0)
			return false;
	return true;
}

/* One profile per endpoint with samples, heaviest first. */
static int speedscope_endpoints(const struct profile *p, const uint32_t *map,
				json_t *profiles)
{
	bool outside = false;
	int r = 0;

	for (size_t e = 0; e < p->nendpoints && r == 0; e++)
		r = speedscope_endpoint(p, map, (int)e, p->endpoints[e].name,
					profiles);
	for (size_t i = 0; i < p->nstacks && !outside; i++)
		outside = p->stacks[i].endpoint < 0;
	if (r == 0 && outside)
		r = speedscope_endpoint(p, map, -1, SPEEDSCOPE_OUTSIDE,
					profiles);
	if (r == 0)
		r = speedscope_sort(profiles);
	return r;
}

int speedscope_write(const struct profile *p, FILE *out)
{
	json_t *root = json_object(), *profiles = json_array(), *name = NULL;
	uint32_t *map = malloc((p->nframes + 1) * sizeof(*map));
	json_t *frames = map ? speedscope_frames(p, map) : NULL;
	int r = -ENOMEM;

	if (!root || !profiles || !frames)
		goto out;
	if (speedscope_one_request(p)) {
		const struct profile_request *q = &p->requests[0];

		name = json_sprintf("profshim %s profile: %s request %s",
				    p->clock, q->endpoint, q->id);
		r = speedscope_request(p, map, q, profiles);
	} else {
		if (p->nendpoints == 1)
			name = json_sprintf("profshim %s profile: %s", p->clock,
					    p->endpoints[0].name);
		else
			name = json_sprintf("profshim %s profile", p->clock);
		r = speedscope_endpoints(p, map, profiles);
	}
	/* speedscope refuses a file without profiles: an empty selection
	 * is one profile without samples, named as the file. */
	if (r == 0 && json_array_size(profiles) == 0) {
		struct sampled s;

		r = sampled_init(&s, map);
		if (r == 0)
			r = sampled_append(&s, json_incref(name), profiles);
	}
	if (json_object_set_new(root, "$schema",
				json_string(SPEEDSCOPE_SCHEMA)) < 0 ||
	    json_object_set_new(root, "shared", json_object()) < 0 ||
	    json_object_set(json_object_get(root, "shared"), "frames",
			    frames) < 0 ||
	    json_object_set(root, "profiles", profiles) < 0 ||
	    json_object_set(root, "name", name) < 0 ||
	    json_object_set_new(root, "activeProfileIndex", json_integer(0)) < 0 ||
	    json_object_set_new(root, "exporter",
				json_string("profshim-collector")) < 0)
		r = -ENOMEM;
	if (r < 0)
		goto out;
	r = json_dumpf(root, out, JSON_COMPACT) < 0 || fputc('\n', out) == EOF ||
	    ferror(out) ? -EIO : 0;
out:
	free(map);
	json_decref(frames);
	json_decref(name);
	json_decref(root);
	json_decref(profiles);
	return r;
}

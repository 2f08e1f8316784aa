/*
 * profile.c — see profile.h.
 */
#include "model/profile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/control.h"
#include "util/table.h"

/*
 * Make err one line: a reason can quote the document (an endpoint name with
 * a line break, jansson's "near '...'"), and it is printed on a terminal.
 */
static void profile_one_line(char *err)
{
	for (; *err; err++)
		if ((unsigned char)*err < 0x20 || *err == 0x7f)
			*err = '?';
}

static int profile_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A selection's reason (it quotes names from the document): -ENOENT. */
static int profile_noent(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	profile_one_line(err);
	return -ENOENT;
}

static const char *str_or(json_t *o, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : dflt;
}

static uint64_t uint_of(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v > 0 ? (uint64_t)v : 0;
}

static double real_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : 0.0;
}

/* frames[] of a stack object: indices into the profile's frames. */
static int stack_from_json(const struct profile *p, json_t *o,
			   struct profile_stack *s, const char *where,
			   char *err, size_t errlen)
{
	json_t *fr = json_object_get(o, "frames");
	size_t n = json_array_size(fr);

	if (!json_is_array(fr))
		return profile_fail(err, errlen, "%s: no frames array", where);
	s->frames = malloc((n ? n : 1) * sizeof(uint32_t));
	if (!s->frames)
		return -ENOMEM;
	s->nframes = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(fr, i);
		json_int_t f = json_integer_value(v);

		if (!json_is_integer(v) || f < 0 || (size_t)f >= p->nframes)
			return profile_fail(err, errlen,
					    "%s: frame %zu is not a frame index",
					    where, i);
		s->frames[i] = (uint32_t)f;
	}
	s->samples = uint_of(o, "samples");
	s->endpoint = -1;
	s->request = -1;
	return 0;
}

static int endpoint_index(const struct profile *p, const char *name)
{
	for (size_t i = 0; i < p->nendpoints; i++)
		if (strcmp(p->endpoints[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int load_endpoints(struct profile *p, char *err, size_t errlen)
{
	static const char *const cls[6] = {"1xx", "2xx", "3xx",
					   "4xx", "5xx", "other"};
	json_t *data = json_object_get(p->root, "data");
	const char *name;
	json_t *e;
	size_t i = 0;

	if (!json_is_object(data))
		return profile_fail(err, errlen, "no \"data\" object: not a "
				    "profshim profile");
	p->endpoints = calloc(json_object_size(data) + 1, sizeof(*p->endpoints));
	if (!p->endpoints)
		return -ENOMEM;
	json_object_foreach(data, name, e) {
		struct profile_endpoint *ep = &p->endpoints[i++];
		json_t *h = json_object_get(e, "histogram"), *b;
		size_t k;

		/* Counted before anything can fail, so that profile_free()
		 * frees this endpoint's buckets too. */
		p->nendpoints = i;

		ep->name = name;
		ep->calls = uint_of(e, "calls");
		ep->sampled_calls = uint_of(e, "sampled_calls");
		ep->samples = uint_of(e, "samples");
		ep->total = real_of(e, "total_time");
		ep->min = real_of(e, "min_time");
		ep->max = real_of(e, "max_time");
		ep->avg = real_of(e, "avg_time");
		ep->p50 = real_of(e, "p50_time");
		ep->p95 = real_of(e, "p95_time");
		ep->p99 = real_of(e, "p99_time");
		for (int c = 0; c < 6; c++)
			ep->status[c] =
				uint_of(json_object_get(e, "status"), cls[c]);
		ep->buckets = calloc(json_array_size(h) + 1, sizeof(*ep->buckets));
		if (!ep->buckets)
			return -ENOMEM;
		json_array_foreach(h, k, b) {
			double le = json_number_value(json_array_get(b, 0));
			json_int_t c = json_integer_value(json_array_get(b, 1));

			if (!json_is_number(json_array_get(b, 0)) || c < 0 ||
			    (ep->nbuckets &&
			     le <= ep->buckets[ep->nbuckets - 1].le))
				return profile_fail(err, errlen,
						    "data[\"%s\"].histogram[%zu]: "
						    "not [increasing bound, count]",
						    name, k);
			ep->buckets[ep->nbuckets].le = le;
			ep->buckets[ep->nbuckets++].count = (uint64_t)c;
		}
	}
	return 0;
}

static int load_tables(struct profile *p, char *err, size_t errlen)
{
	json_t *mods = json_object_get(p->root, "modules");
	json_t *frames = json_object_get(p->root, "frames");
	json_t *v;
	size_t i;

	p->modules = calloc(json_array_size(mods) + 1, sizeof(*p->modules));
	p->frames = calloc(json_array_size(frames) + 1, sizeof(*p->frames));
	if (!p->modules || !p->frames)
		return -ENOMEM;
	json_array_foreach(mods, i, v) {
		p->modules[i].name = str_or(v, "name", "[unknown]");
		p->modules[i].path = str_or(v, "path", "");
		p->modules[i].build_id = str_or(v, "build_id", "");
	}
	p->nmodules = json_array_size(mods);
	json_array_foreach(frames, i, v) {
		struct profile_frame *f = &p->frames[i];
		json_t *m = json_object_get(v, "module");

		f->function = json_string_value(json_object_get(v, "function"));
		if (!f->function)
			return profile_fail(err, errlen,
					    "frames[%zu]: no function name", i);
		f->system_name = json_string_value(
			json_object_get(v, "system_name"));
		if (!f->system_name)
			f->system_name = f->function;
		f->module = m ? (int)json_integer_value(m) : -1;
		if (f->module < -1 || f->module >= (int)p->nmodules)
			return profile_fail(err, errlen,
					    "frames[%zu]: module %d out of range",
					    i, f->module);
		f->file = json_string_value(json_object_get(v, "file"));
		f->line = (int)json_integer_value(json_object_get(v, "line"));
	}
	p->nframes = json_array_size(frames);
	return 0;
}

static int load_stacks(struct profile *p, char *err, size_t errlen)
{
	json_t *stacks = json_object_get(p->root, "stacks"), *v;
	char where[32];
	size_t i;
	int r;

	p->stacks = calloc(json_array_size(stacks) + 1, sizeof(*p->stacks));
	if (!p->stacks)
		return -ENOMEM;
	json_array_foreach(stacks, i, v) {
		(void)snprintf(where, sizeof(where), "stacks[%zu]", i);
		r = stack_from_json(p, v, &p->stacks[i], where, err, errlen);
		p->nstacks = i + 1;
		if (r < 0)
			return r;
		p->stacks[i].endpoint =
			endpoint_index(p, str_or(v, "endpoint", ""));
	}
	return 0;
}

static int load_requests(struct profile *p, char *err, size_t errlen)
{
	json_t *reqs = json_object_get(p->root, "requests"), *v;
	char where[64];
	size_t i;
	int r;

	p->requests = calloc(json_array_size(reqs) + 1, sizeof(*p->requests));
	if (!p->requests)
		return -ENOMEM;
	json_array_foreach(reqs, i, v) {
		struct profile_request *q = &p->requests[i];
		json_t *st = json_object_get(v, "stacks");
		json_t *tl = json_object_get(v, "timeline");
		json_t *s;
		size_t k;

		p->nrequests = i + 1;
		q->json = v;
		q->id = str_or(v, "id", "");
		q->endpoint = str_or(v, "endpoint", "");
		q->pid = (uint32_t)uint_of(v, "pid");
		q->tid = (uint32_t)uint_of(v, "tid");
		q->start = real_of(v, "start");
		q->duration = real_of(v, "duration");
		q->status = (int)json_integer_value(json_object_get(v, "status"));
		q->sampled = json_is_true(json_object_get(v, "sampled"));
		q->manual = json_is_true(json_object_get(v, "manual"));
		q->samples = uint_of(v, "samples");
		q->stacks = calloc(json_array_size(st) + 1, sizeof(*q->stacks));
		q->timeline = calloc(json_array_size(tl) + 1, sizeof(*q->timeline));
		if (!q->stacks || !q->timeline)
			return -ENOMEM;
		json_array_foreach(st, k, s) {
			(void)snprintf(where, sizeof(where),
				       "requests[%zu].stacks[%zu]", i, k);
			r = stack_from_json(p, s, &q->stacks[k], where, err,
					    errlen);
			q->nstacks = k + 1;
			if (r < 0)
				return r;
			q->stacks[k].endpoint = endpoint_index(p, q->endpoint);
			q->stacks[k].request = (int)i;
		}
		json_array_foreach(tl, k, s) {
			json_int_t idx = json_integer_value(json_array_get(s, 1));

			if (idx < 0 || (size_t)idx >= q->nstacks)
				return profile_fail(err, errlen,
						    "requests[%zu].timeline[%zu]: "
						    "no such stack", i, k);
			q->timeline[k].offset =
				json_number_value(json_array_get(s, 0));
			q->timeline[k].stack = (uint32_t)idx;
		}
		q->ntimeline = json_array_size(tl);
	}
	return 0;
}

/*
 * The processes whose shim stood aside (processes[].sample.sampling is
 * "stood aside"): a report says why they have no stacks. Malformed
 * entries are left out.
 */
static int load_unsampled(struct profile *p)
{
	json_t *procs = json_object_get(p->root, "processes"), *o;
	size_t i;

	if (!json_is_array(procs))
		return 0;
	json_array_foreach(procs, i, o) {
		json_t *sample = json_object_get(o, "sample");
		struct profile_unsampled *u;

		if (strcmp(str_or(sample, "sampling", ""), "stood aside") != 0)
			continue;
		u = realloc(p->unsampled, (p->nunsampled + 1) * sizeof(*u));
		if (!u)
			return -ENOMEM;
		p->unsampled = u;
		u += p->nunsampled++;
		u->pid = uint_of(o, "pid");
		u->exe = str_or(o, "exe", "?");
		u->why = str_or(sample, "stood_aside", "profshim stood aside");
	}
	return 0;
}

int profile_from_json(json_t *root, struct profile **ret, char *err,
		      size_t errlen)
{
	struct profile *p = calloc(1, sizeof(*p));
	json_t *sample, *dropped;
	int r;

	if (!p)
		return -ENOMEM;
	p->root = json_incref(root);
	if (!json_is_object(root) ||
	    json_integer_value(json_object_get(root, "version")) != 1) {
		r = profile_fail(err, errlen, "not a profshim profile "
				 "(version 1 JSON object expected)");
		goto fail;
	}
	sample = json_object_get(root, "sample");
	p->clock = str_or(sample, "clock", "cpu");
	if (strcmp(p->clock, "wall") != 0)
		p->clock = "cpu";
	p->period_ns = real_of(sample, "period_ns");
	if (!(p->period_ns > 0))
		p->period_ns = 1e7; /* 100 Hz, the default rate */
	dropped = json_object_get(root, "dropped");
	p->dropped_samples = uint_of(dropped, "samples");
	p->dropped_events = uint_of(dropped, "events");
	p->dropped_requests = uint_of(dropped, "requests");
	if ((r = load_endpoints(p, err, errlen)) < 0 ||
	    (r = load_tables(p, err, errlen)) < 0 ||
	    (r = load_stacks(p, err, errlen)) < 0 ||
	    (r = load_requests(p, err, errlen)) < 0 ||
	    (r = load_unsampled(p)) < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	if (r == -ENOMEM)
		(void)snprintf(err, errlen, "out of memory");
	profile_one_line(err);
	profile_free(p);
	return r;
}

/*
 * The part of profile_load() and profile_load_buffer() after parsing: the
 * parse error, or the model built from root, with reasons prefixed by name.
 */
static int profile_parsed(json_t *root, const json_error_t *je,
			  const char *name, struct profile **ret, char *err,
			  size_t errlen)
{
	int r;

	if (!root) {
		/* jansson's text already names the file when it cannot be
		 * opened (no line then). */
		if (je->line < 0)
			(void)snprintf(err, errlen, "%s", je->text);
		else
			(void)snprintf(err, errlen, "%s: %s (line %d)", name,
				       je->text, je->line);
		profile_one_line(err);
		return -EINVAL;
	}
	r = profile_from_json(root, ret, err, errlen);
	json_decref(root);
	if (r < 0 && r != -ENOMEM) {
		char why[400];

		(void)snprintf(why, sizeof(why), "%s", err);
		(void)snprintf(err, errlen, "%s: %s", name, why);
	}
	if (r < 0)
		profile_one_line(err);
	return r;
}

int profile_load(const char *path, struct profile **ret, char *err,
		 size_t errlen)
{
	json_error_t je;
	json_t *root;

	if (strcmp(path, "-") == 0)
		root = json_loadf(stdin, 0, &je);
	else
		root = json_load_file(path, 0, &je);
	return profile_parsed(root, &je, path, ret, err, errlen);
}

int profile_load_buffer(const char *buf, size_t len, const char *name,
			struct profile **ret, char *err, size_t errlen)
{
	json_error_t je;

	return profile_parsed(json_loadb(buf, len, 0, &je), &je, name, ret,
			      err, errlen);
}

int profile_fetch(const char *socket, struct profile **ret, char *err,
		  size_t errlen)
{
	char path[256], *buf = NULL;
	size_t len = 0;
	FILE *mem;
	json_error_t je;
	json_t *root;
	int r = control_path(socket, 0, path, sizeof(path));

	if (r < 0) {
		(void)snprintf(err, errlen, "control socket path: %s",
			       strerror(-r));
		return 1;
	}
	mem = open_memstream(&buf, &len);
	if (!mem) {
		(void)snprintf(err, errlen, "out of memory");
		return 1;
	}
	r = control_call(path, "dump\t\t", mem, err, errlen);
	if (fclose(mem) != 0 && r == 0) {
		(void)snprintf(err, errlen, "out of memory");
		r = 1;
	}
	if (r != 0) {
		free(buf);
		return 1;
	}
	root = json_loadb(buf, len, 0, &je);
	free(buf);
	if (!root) {
		(void)snprintf(err, errlen, "the collector's answer is not "
			       "JSON: %s", je.text);
		return 1;
	}
	r = profile_from_json(root, ret, err, errlen);
	json_decref(root);
	return r < 0 ? 1 : 0;
}

/* Does the stack have a frame of function `fn`? */
static bool stack_has(const struct profile *p, const struct profile_stack *s,
		      const char *fn)
{
	for (uint32_t i = 0; i < s->nframes; i++)
		if (strcmp(p->frames[s->frames[i]].function, fn) == 0)
			return true;
	return false;
}

static void stacks_free(struct profile_stack *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].frames);
	free(v);
}

/* Keep the stacks of v[0..*n) that `keep` accepts, in order. */
static void stacks_filter(const struct profile *p, struct profile_stack *v,
			  size_t *n, int endpoint, const char *fn)
{
	size_t m = 0;

	for (size_t i = 0; i < *n; i++) {
		bool keep = (endpoint < 0 || v[i].endpoint == endpoint) &&
			    (!fn || stack_has(p, &v[i], fn));

		if (keep)
			v[m++] = v[i];
		else
			free(v[i].frames);
	}
	*n = m;
}

static void request_clear(struct profile_request *q)
{
	stacks_free(q->stacks, q->nstacks);
	free(q->timeline);
	q->stacks = NULL;
	q->timeline = NULL;
	q->nstacks = q->ntimeline = 0;
}

int profile_select(struct profile *p, const struct profile_filter *f,
		   char *err, size_t errlen)
{
	int ep = -1;

	if (f->endpoint) {
		ep = endpoint_index(p, f->endpoint);
		if (ep < 0)
			return profile_noent(err, errlen, "no endpoint \"%s\" "
					     "in the profile", f->endpoint);
	}
	if (f->request) {
		size_t r;

		for (r = 0; r < p->nrequests; r++)
			if (strcmp(p->requests[r].id, f->request) == 0)
				break;
		if (r == p->nrequests)
			return profile_noent(err, errlen, "no request \"%s\" in "
					     "the profile (only kept requests "
					     "are)", f->request);
		if (ep >= 0 && strcmp(p->requests[r].endpoint, f->endpoint))
			return profile_noent(err, errlen, "request \"%s\" is "
					     "not one of \"%s\"", f->request,
					     f->endpoint);
		/* The request alone: its stacks become the profile's. */
		for (size_t i = 0; i < p->nrequests; i++)
			if (i != r)
				request_clear(&p->requests[i]);
		p->requests[0] = p->requests[r];
		p->nrequests = 1;
		for (size_t i = 0; i < p->requests[0].nstacks; i++)
			p->requests[0].stacks[i].request = 0;
		stacks_free(p->stacks, p->nstacks);
		p->stacks = malloc((p->requests[0].nstacks + 1) *
				   sizeof(*p->stacks));
		if (!p->stacks)
			return -ENOMEM;
		for (size_t i = 0; i < p->requests[0].nstacks; i++) {
			p->stacks[i] = p->requests[0].stacks[i];
			p->stacks[i].frames =
				malloc((p->stacks[i].nframes + 1) * sizeof(uint32_t));
			if (!p->stacks[i].frames)
				return -ENOMEM;
			memcpy(p->stacks[i].frames, p->requests[0].stacks[i].frames,
			       p->stacks[i].nframes * sizeof(uint32_t));
		}
		p->nstacks = p->requests[0].nstacks;
		ep = endpoint_index(p, p->requests[0].endpoint);
	}
	stacks_filter(p, p->stacks, &p->nstacks, ep, f->function);
	if (ep >= 0) {
		struct profile_endpoint keep = p->endpoints[ep];

		for (size_t i = 0; i < p->nendpoints; i++)
			if ((int)i != ep)
				free(p->endpoints[i].buckets);
		p->endpoints[0] = keep;
		p->nendpoints = 1;
		for (size_t i = 0; i < p->nstacks; i++)
			p->stacks[i].endpoint = 0;
	}
	if (f->endpoint && !f->request) {
		size_t m = 0;

		for (size_t i = 0; i < p->nrequests; i++) {
			if (strcmp(p->requests[i].endpoint, f->endpoint) == 0)
				p->requests[m++] = p->requests[i];
			else
				request_clear(&p->requests[i]);
		}
		p->nrequests = m;
	}
	for (size_t i = 0; i < p->nrequests && f->function; i++) {
		struct profile_request *q = &p->requests[i];

		/* The timeline names stacks by index: drop it when filtering
		 * moves them. */
		stacks_filter(p, q->stacks, &q->nstacks, -1, f->function);
		free(q->timeline);
		q->timeline = NULL;
		q->ntimeline = 0;
	}
	if (f->function) {
		/* Endpoints with no stack through the function go. */
		size_t m = 0;

		for (size_t e = 0; e < p->nendpoints; e++) {
			bool has = false;

			for (size_t i = 0; i < p->nstacks && !has; i++)
				has = p->stacks[i].endpoint == (int)e;
			if (!has) {
				free(p->endpoints[e].buckets);
				continue;
			}
			for (size_t i = 0; i < p->nstacks; i++)
				if (p->stacks[i].endpoint == (int)e)
					p->stacks[i].endpoint = (int)m;
			p->endpoints[m++] = p->endpoints[e];
		}
		p->nendpoints = m;
	}
	/* Only now are the endpoints final: the requests' stacks name them
	 * by index. */
	for (size_t i = 0; i < p->nrequests; i++) {
		struct profile_request *q = &p->requests[i];

		for (size_t k = 0; k < q->nstacks; k++) {
			q->stacks[k].request = (int)i;
			q->stacks[k].endpoint = endpoint_index(p, q->endpoint);
		}
	}
	return 0;
}

static int func_cmp(const void *a, const void *b)
{
	const struct profile_func *x = a, *y = b;

	if (x->self != y->self)
		return x->self < y->self ? 1 : -1;
	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->function, y->function);
}

/* Index in v of the frame's (function, module), added when new. */
static int64_t func_slot(const struct profile *p, uint32_t frame,
			 struct intern *names, int64_t *fid,
			 struct profile_func **v, size_t *nv, size_t *cap)
{
	const struct profile_frame *f = &p->frames[frame];
	const char *mod = f->module >= 0 ? p->modules[f->module].name : "";
	size_t fl = strlen(f->function), ml = strlen(mod);
	char key[1024];
	int64_t id;

	if (fid[frame] >= 0)
		return fid[frame];
	/* function NUL module: a long name is cut, the module kept apart. */
	if (fl > sizeof(key) / 2)
		fl = sizeof(key) / 2;
	if (ml > sizeof(key) / 2 - 1)
		ml = sizeof(key) / 2 - 1;
	memcpy(key, f->function, fl);
	key[fl] = '\0';
	memcpy(key + fl + 1, mod, ml);
	id = intern_put(names, key, fl + 1 + ml);
	if (id < 0)
		return id;
	if ((size_t)id == *nv) {
		if (*nv == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			struct profile_func *n = realloc(*v, nc * sizeof(**v));

			if (!n)
				return -ENOMEM;
			*v = n;
			*cap = nc;
		}
		(*v)[(*nv)++] = (struct profile_func){.function = f->function,
						      .module = mod};
	}
	fid[frame] = id;
	return id;
}

long profile_functions(const struct profile *p,
		       const struct profile_stack *stacks, size_t n,
		       struct profile_func **ret, uint64_t *ret_samples)
{
	struct intern names = {0};
	struct profile_func *v = NULL;
	int64_t *fid = malloc((p->nframes + 1) * sizeof(*fid));
	/* There are at most as many functions as frames. */
	uint64_t *seen = calloc(p->nframes + 1, sizeof(*seen)), total = 0;
	size_t nv = 0, cap = 0;

	if (!fid || !seen) {
		free(fid);
		free(seen);
		return -ENOMEM;
	}
	for (size_t i = 0; i < p->nframes; i++)
		fid[i] = -1;
	for (size_t i = 0; i < n; i++) {
		const struct profile_stack *s = &stacks[i];

		total += s->samples;
		for (uint32_t j = 0; j < s->nframes; j++) {
			int64_t k = func_slot(p, s->frames[j], &names, fid, &v,
					      &nv, &cap);

			if (k < 0)
				goto nomem;
			if (j + 1 == s->nframes)
				v[k].self += s->samples;
			/* Counted once per stack however often it recurses. */
			if (seen[k] != i + 1) {
				seen[k] = i + 1;
				v[k].total += s->samples;
			}
		}
	}
	intern_free(&names);
	free(fid);
	free(seen);
	if (nv)
		qsort(v, nv, sizeof(*v), func_cmp);
	*ret = v;
	if (ret_samples)
		*ret_samples = total;
	return (long)nv;
nomem:
	intern_free(&names);
	free(fid);
	free(seen);
	free(v);
	return -ENOMEM;
}

static json_t *stack_json(const struct profile_stack *s, bool with_endpoint,
			  const struct profile *p)
{
	json_t *fr = json_array();
	json_t *o;

	for (uint32_t i = 0; i < s->nframes; i++)
		json_array_append_new(fr, json_integer(s->frames[i]));
	o = json_pack("{s:o, s:I}", "frames", fr, "samples",
		      (json_int_t)s->samples);
	if (with_endpoint && s->endpoint >= 0)
		json_object_set_new(o, "endpoint",
				    json_string(p->endpoints[s->endpoint].name));
	return o;
}

json_t *profile_to_json(const struct profile *p)
{
	json_t *root = json_deep_copy(p->root);
	json_t *data = json_object(), *stacks = json_array(), *reqs = json_array();
	json_t *old_data = json_object_get(p->root, "data");

	if (!root || !data || !stacks || !reqs)
		goto nomem;
	for (size_t e = 0; e < p->nendpoints; e++) {
		json_t *o = json_deep_copy(
			json_object_get(old_data, p->endpoints[e].name));
		json_t *top = json_array();
		struct profile_stack *mine = calloc(p->nstacks + 1, sizeof(*mine));
		struct profile_func *fv = NULL;
		uint64_t samples = 0;
		size_t m = 0;
		long nf;

		if (!o || !top || !mine) {
			json_decref(o);
			json_decref(top);
			free(mine);
			goto nomem;
		}
		for (size_t i = 0; i < p->nstacks; i++)
			if (p->stacks[i].endpoint == (int)e)
				mine[m++] = p->stacks[i];
		nf = profile_functions(p, mine, m, &fv, &samples);
		for (long i = 0; i < nf && i < 25; i++)
			json_array_append_new(
				top, json_pack("{s:s, s:s, s:I, s:I}", "function",
					       fv[i].function, "module",
					       fv[i].module, "self_samples",
					       (json_int_t)fv[i].self,
					       "total_samples",
					       (json_int_t)fv[i].total));
		free(fv);
		free(mine);
		json_object_set_new(o, "top_functions", top);
		json_object_set_new(o, "samples", json_integer((json_int_t)samples));
		json_object_set_new(data, p->endpoints[e].name, o);
	}
	for (size_t i = 0; i < p->nstacks; i++)
		json_array_append_new(stacks, stack_json(&p->stacks[i], true, p));
	for (size_t i = 0; i < p->nrequests; i++) {
		const struct profile_request *q = &p->requests[i];
		json_t *o = json_deep_copy(q->json);
		json_t *st = json_array(), *tl = json_array();
		size_t k;

		if (!o || !st || !tl) {
			json_decref(o);
			json_decref(st);
			json_decref(tl);
			continue;
		}
		for (k = 0; k < q->nstacks; k++)
			json_array_append_new(st, stack_json(&q->stacks[k], false, p));
		for (k = 0; k < q->ntimeline; k++)
			json_array_append_new(tl, json_pack("[f, I]",
							    q->timeline[k].offset,
							    (json_int_t)q->timeline[k].stack));
		json_object_set_new(o, "stacks", st);
		json_object_set_new(o, "timeline", tl);
		json_array_append_new(reqs, o);
	}
	json_object_set_new(root, "data", data);
	json_object_set_new(root, "stacks", stacks);
	json_object_set_new(root, "requests", reqs);
	return root;
nomem:
	json_decref(root);
	json_decref(data);
	json_decref(stacks);
	json_decref(reqs);
	return NULL;
}

void profile_free(struct profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nrequests; i++)
		request_clear(&p->requests[i]);
	free(p->requests);
	stacks_free(p->stacks, p->nstacks);
	for (size_t i = 0; i < p->nendpoints; i++)
		free(p->endpoints[i].buckets);
	free(p->endpoints);
	free(p->frames);
	free(p->modules);
	free(p->unsampled);
	json_decref(p->root);
	free(p);
}

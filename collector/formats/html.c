/*
 * html.c — see html.h.
 *
 * The page is collector/formats/report.html.in, compiled in line by line as
 * html_template[] (scripts/embed.py writes html_template.h from it in the
 * build directory, at build time: collector/meson.build). Its
 * one line "@PROFILE_DATA@" becomes the data: one JSON document in a
 * <script type="application/json"> element, from which the page's script
 * builds the flame graph, tables and charts. The C side only packs the
 * profile compactly; all the layout lives in the template.
 *
 * The data's shape (arrays where objects would repeat their keys for every
 * stack of a large profile):
 *
 *   {"kind": "report", "profile": P}  or
 *   {"kind": "diff", "before": P, "after": P}
 *
 *   P = {"clock", "period_ns", "modules": [name, ...],
 *        "frames": [[function, module index or -1, file or null, line]],
 *        "endpoints": [{"name", "calls", "avg", "min", "max", "p50", "p95",
 *                       "p99", "status": [1xx, 2xx, 3xx, 4xx, 5xx, other],
 *                       "histogram": [[upper seconds, count], ...]}],
 *        "stacks": [[endpoint index or -1, samples, [frame, ...]]],
 *        "requests": [{"id", "endpoint", "pid", "tid", "start", "duration",
 *                      "status", "sampled", "manual", "samples",
 *                      "stacks": [[samples, [frame, ...]]],
 *                      "timeline": [[seconds after start, stack], ...]}],
 *        "dropped": {"samples", "events", "requests"},
 *        "unsampled": [[pid, exe, why], ...]}
 *
 * Frames are root first, as in the profile.
 */
#include "formats/html.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Generated at build time (collector/meson.build), in the build directory. */
#include "html_template.h"

#define HTML_DATA_MARK "@PROFILE_DATA@\n"

/* Strings in the profile come from a parsed JSON document and so are valid
 * UTF-8; should one not be, it is replaced rather than lost. */
static json_t *html_str(const char *s)
{
	json_t *j = json_string(s ? s : "");

	return j ? j : json_string("?");
}

/* JSON has no NaN or infinity: such a number (never in a sane profile)
 * becomes 0 rather than failing the page. */
static json_t *html_num(double v)
{
	return json_real(isfinite(v) ? v : 0.0);
}

static json_t *html_uint(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Append v to a, which takes the reference; false when either is missing
 * (out of memory), so a caller can test a whole chain of appends. */
static bool put(json_t *a, json_t *v)
{
	return v && json_array_append_new(a, v) == 0;
}

static bool set(json_t *o, const char *key, json_t *v)
{
	return v && json_object_set_new(o, key, v) == 0;
}

static json_t *frame_list(const struct profile_stack *s)
{
	json_t *a = json_array();

	for (uint32_t i = 0; a && i < s->nframes; i++)
		if (!put(a, json_integer(s->frames[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *modules_json(const struct profile *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->nmodules; i++)
		if (!put(a, html_str(p->modules[i].name))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *frames_json(const struct profile *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->nframes; i++) {
		const struct profile_frame *f = &p->frames[i];
		json_t *t = json_array();

		if (!t || !put(t, html_str(f->function)) ||
		    !put(t, json_integer(f->module)) ||
		    !put(t, f->file ? html_str(f->file) : json_null()) ||
		    !put(t, json_integer(f->line)) || !put(a, t)) {
			json_decref(t);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *endpoint_json(const struct profile_endpoint *e)
{
	json_t *o = json_object(), *st = json_array(), *h = json_array();
	bool ok = o && st && h;

	for (int c = 0; ok && c < 6; c++)
		ok = put(st, html_uint(e->status[c]));
	for (size_t i = 0; ok && i < e->nbuckets; i++) {
		json_t *b = json_array();

		ok = b && put(b, html_num(e->buckets[i].le)) &&
		     put(b, html_uint(e->buckets[i].count)) && put(h, b);
		if (!ok)
			json_decref(b);
	}
	ok = ok && set(o, "name", html_str(e->name)) &&
	     set(o, "calls", html_uint(e->calls)) &&
	     set(o, "avg", html_num(e->avg)) &&
	     set(o, "min", html_num(e->min)) &&
	     set(o, "max", html_num(e->max)) &&
	     set(o, "p50", html_num(e->p50)) &&
	     set(o, "p95", html_num(e->p95)) &&
	     set(o, "p99", html_num(e->p99)) &&
	     set(o, "status", json_incref(st)) &&
	     set(o, "histogram", json_incref(h));
	json_decref(st);
	json_decref(h);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* [endpoint, samples, frames] for the profile's stacks; [samples, frames]
 * for a request's own (they are all of its endpoint). */
static json_t *stacks_json(const struct profile_stack *v, size_t n,
			   bool with_endpoint)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		json_t *t = json_array();
		bool ok = t;

		if (ok && with_endpoint)
			ok = put(t, json_integer(v[i].endpoint));
		ok = ok && put(t, html_uint(v[i].samples)) &&
		     put(t, frame_list(&v[i])) && put(a, t);
		if (!ok) {
			json_decref(t);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *request_json(const struct profile_request *q)
{
	json_t *o = json_object(), *tl = json_array();
	bool ok = o && tl;

	for (size_t i = 0; ok && i < q->ntimeline; i++) {
		json_t *t = json_array();

		ok = t && put(t, html_num(q->timeline[i].offset)) &&
		     put(t, json_integer(q->timeline[i].stack)) && put(tl, t);
		if (!ok)
			json_decref(t);
	}
	ok = ok && set(o, "id", html_str(q->id)) &&
	     set(o, "endpoint", html_str(q->endpoint)) &&
	     set(o, "pid", json_integer(q->pid)) &&
	     set(o, "tid", json_integer(q->tid)) &&
	     set(o, "start", html_num(q->start)) &&
	     set(o, "duration", html_num(q->duration)) &&
	     set(o, "status", json_integer(q->status)) &&
	     set(o, "sampled", json_boolean(q->sampled)) &&
	     set(o, "manual", json_boolean(q->manual)) &&
	     set(o, "samples", html_uint(q->samples)) &&
	     set(o, "stacks", stacks_json(q->stacks, q->nstacks, false)) &&
	     set(o, "timeline", json_incref(tl));
	json_decref(tl);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The processes that take no stack samples: [[pid, exe, why], ...]. */
static json_t *unsampled_json(const struct profile *p)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < p->nunsampled; i++)
		if (!put(a, json_pack("[o, s, s]",
				      html_uint(p->unsampled[i].pid),
				      p->unsampled[i].exe,
				      p->unsampled[i].why))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The page's view of one profile (P above); NULL when out of memory. */
static json_t *profile_data(const struct profile *p)
{
	json_t *o = json_object(), *eps = json_array(), *reqs = json_array();
	bool ok = o && eps && reqs;

	for (size_t i = 0; ok && i < p->nendpoints; i++)
		ok = put(eps, endpoint_json(&p->endpoints[i]));
	for (size_t i = 0; ok && i < p->nrequests; i++)
		ok = put(reqs, request_json(&p->requests[i]));
	ok = ok && set(o, "clock", html_str(p->clock)) &&
	     set(o, "period_ns", html_num(p->period_ns)) &&
	     set(o, "modules", modules_json(p)) &&
	     set(o, "frames", frames_json(p)) &&
	     set(o, "endpoints", json_incref(eps)) &&
	     set(o, "stacks", stacks_json(p->stacks, p->nstacks, true)) &&
	     set(o, "requests", json_incref(reqs)) &&
	     set(o, "dropped", json_pack("{s:o, s:o, s:o}",
					 "samples", html_uint(p->dropped_samples),
					 "events", html_uint(p->dropped_events),
					 "requests",
					 html_uint(p->dropped_requests))) &&
	     set(o, "unsampled", unsampled_json(p));
	json_decref(eps);
	json_decref(reqs);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * Write the JSON text for a <script> element. Inside one, "</script" ends
 * the element whatever the quoting, and "<!--" changes how the rest is
 * parsed; '<' only ever occurs inside JSON strings, where \u003c means the
 * same character, so every '<' (and '>' and '&', for good measure) is
 * written escaped and the text cannot contain any markup.
 */
static void write_script_json(const char *s, FILE *out)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("\\u003c", out);
			break;
		case '>':
			fputs("\\u003e", out);
			break;
		case '&':
			fputs("\\u0026", out);
			break;
		default:
			putc(*s, out);
		}
	}
	putc('\n', out);
}

/* The template with `data` in place of its data line; takes `data`. */
static int html_page(json_t *data, FILE *out)
{
	char *text;
	bool placed = false;

	if (!data)
		return -ENOMEM;
	text = json_dumps(data, JSON_COMPACT);
	json_decref(data);
	if (!text)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(html_template) / sizeof(*html_template);
	     i++) {
		if (!placed && strcmp(html_template[i], HTML_DATA_MARK) == 0) {
			write_script_json(text, out);
			placed = true;
		} else {
			fputs(html_template[i], out);
		}
	}
	free(text);
	/* A template without its data line is a build mistake, not the
	 * user's: the page would show nothing. */
	if (!placed)
		return -EINVAL;
	return ferror(out) ? -EIO : 0;
}

int html_write(const struct profile *p, FILE *out)
{
	json_t *o = json_object();

	if (!o || !set(o, "kind", json_string("report")) ||
	    !set(o, "profile", profile_data(p))) {
		json_decref(o);
		return -ENOMEM;
	}
	return html_page(o, out);
}

int html_write_diff(const struct profile *before, const struct profile *after,
		    FILE *out)
{
	json_t *o = json_object();

	if (!o || !set(o, "kind", json_string("diff")) ||
	    !set(o, "before", profile_data(before)) ||
	    !set(o, "after", profile_data(after))) {
		json_decref(o);
		return -ENOMEM;
	}
	return html_page(o, out);
}

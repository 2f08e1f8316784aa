/*
 * diff.c — see diff.h.
 *
 * Both profiles are compared as shares, not as sample counts: BASE may have
 * been recorded for ten minutes and NEW for one, so a function's weight is
 * its self samples over all the samples of its profile (0..1), and its
 * change is the difference of the two shares.
 */
#include "cmd/diff.h"
#include "util/cli.h"
#include "util/atomic_file.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/html.h"
#include "model/profile.h"

#define DIFF_TEXT_FUNCTIONS 20

static const char diff_usage_text[] =
	"usage: " CLI_PROG " diff BASE NEW [--format text|json|html]\n"
	"                          [--endpoint E] [--output FILE]\n"
	"\n"
	"Compares two saved profiles (files `record` or `save` wrote; \"-\" is\n"
	"stdin): each function's share of the samples before and after, and\n"
	"each endpoint's latency and calls.\n"
	"\n"
	"  --format F     text (default), json, or html (a differential flame\n"
	"                 graph: frames that grew red, shrank green)\n"
	"  --endpoint E   compare one endpoint (\"GET /users/:id\") only\n"
	"  --output FILE  write there instead of stdout\n"
	"  -h, --help     this text\n";

enum diff_format { DIFF_TEXT, DIFF_JSON, DIFF_HTML };

/* One function of either profile. */
struct diff_func {
	const char *function;
	const char *module;
	double before, after, delta;  /* shares 0..1, after - before */
};

/* One endpoint of either profile; NULL for the side it is missing from. */
struct diff_endpoint {
	const char *name;
	const struct profile_endpoint *before, *after;
};

/* Everything the text and json outputs show. */
struct diff {
	struct diff_func *funcs;
	size_t nfuncs;
	struct diff_endpoint *eps;
	size_t neps;
	uint64_t before_samples, after_samples;
};

static const struct cli diff_cli = {.name = CLI_PROG,
				    .usage = diff_usage_text};

static int func_key_cmp(const void *a, const void *b)
{
	const struct profile_func *x = a, *y = b;
	int c = strcmp(x->function, y->function);

	return c ? c : strcmp(x->module, y->module);
}

/* Largest change first; equal changes by name, so the output is stable. */
static int func_delta_cmp(const void *a, const void *b)
{
	const struct diff_func *x = a, *y = b;
	double dx = fabs(x->delta), dy = fabs(y->delta);
	int c;

	if (dx != dy)
		return dx < dy ? 1 : -1;
	if (x->after != y->after)
		return x->after < y->after ? 1 : -1;
	c = strcmp(x->function, y->function);
	return c ? c : strcmp(x->module, y->module);
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0.0;
}

/*
 * The functions of both profiles, matched by (function, module): both lists
 * are sorted by that key and merged. Negative errno.
 */
static int diff_functions(const struct profile *b, const struct profile *a,
			  struct diff *d)
{
	struct profile_func *fb = NULL, *fa = NULL;
	long nb, na, i = 0, j = 0;
	int r = -ENOMEM;

	nb = profile_functions(b, b->stacks, b->nstacks, &fb,
			       &d->before_samples);
	na = profile_functions(a, a->stacks, a->nstacks, &fa,
			       &d->after_samples);
	if (nb < 0 || na < 0)
		goto out;
	d->funcs = calloc((size_t)(nb + na) + 1, sizeof(*d->funcs));
	if (!d->funcs)
		goto out;
	if (nb)
		qsort(fb, (size_t)nb, sizeof(*fb), func_key_cmp);
	if (na)
		qsort(fa, (size_t)na, sizeof(*fa), func_key_cmp);
	while (i < nb || j < na) {
		struct diff_func *f = &d->funcs[d->nfuncs++];
		int c;

		/* c < 0: only BASE has it, c > 0: only NEW, 0: both. */
		c = i == nb ? 1 : j == na ? -1 : func_key_cmp(&fb[i], &fa[j]);

		if (c <= 0) {
			f->function = fb[i].function;
			f->module = fb[i].module;
			f->before = share(fb[i++].self, d->before_samples);
		}
		if (c >= 0) {
			f->function = fa[j].function;
			f->module = fa[j].module;
			f->after = share(fa[j++].self, d->after_samples);
		}
		f->delta = f->after - f->before;
	}
	if (d->nfuncs)
		qsort(d->funcs, d->nfuncs, sizeof(*d->funcs), func_delta_cmp);
	r = 0;
out:
	free(fb);
	free(fa);
	return r;
}

static uint64_t endpoint_calls(const struct diff_endpoint *e)
{
	uint64_t b = e->before ? e->before->calls : 0;
	uint64_t a = e->after ? e->after->calls : 0;

	return a > b ? a : b;
}

/* Busiest endpoint (on either side) first, then by name. */
static int endpoint_cmp(const void *x, const void *y)
{
	const struct diff_endpoint *a = x, *b = y;
	uint64_t ca = endpoint_calls(a), cb = endpoint_calls(b);

	if (ca != cb)
		return ca < cb ? 1 : -1;
	return strcmp(a->name, b->name);
}

/* The endpoints present in either profile. Negative errno. */
static int diff_endpoints(const struct profile *b, const struct profile *a,
			  struct diff *d)
{
	d->eps = calloc(b->nendpoints + a->nendpoints + 1, sizeof(*d->eps));
	if (!d->eps)
		return -ENOMEM;
	for (size_t i = 0; i < b->nendpoints; i++)
		d->eps[d->neps++] = (struct diff_endpoint){
			.name = b->endpoints[i].name,
			.before = &b->endpoints[i]};
	for (size_t i = 0; i < a->nendpoints; i++) {
		size_t k;

		for (k = 0; k < d->neps; k++)
			if (strcmp(d->eps[k].name, a->endpoints[i].name) == 0)
				break;
		if (k == d->neps)
			d->eps[d->neps++] = (struct diff_endpoint){
				.name = a->endpoints[i].name};
		d->eps[k].after = &a->endpoints[i];
	}
	if (d->neps)
		qsort(d->eps, d->neps, sizeof(*d->eps), endpoint_cmp);
	return 0;
}

/*
 * Text for a terminal: control characters (C0, DEL and C1, which some
 * terminals obey) are written as escapes, so a hostile function or endpoint
 * name cannot move the cursor, end a line or change colours. The profile's
 * strings are valid UTF-8 (the JSON parser checked), so the rest is copied.
 */
static void text_put(const char *s, FILE *out)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p == '\n')
			(void)fputs("\\n", out);
		else if (*p == '\t')
			(void)fputs("\\t", out);
		else if (*p < 0x20 || *p == 0x7f)
			(void)fprintf(out, "\\x%02x", *p);
		else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			(void)fprintf(out, "\\u%04x", *++p);
		else if (*p == '\\')
			(void)fputs("\\\\", out);
		else
			(void)fputc(*p, out);
	}
}

/* A share change in percentage points, without a "-0.0". */
static double points(double delta)
{
	double v = delta * 100.0;

	return fabs(v) < 0.05 ? 0.0 : v;
}

static void text_ms(const struct profile_endpoint *e, double sec, FILE *out)
{
	if (e)
		(void)fprintf(out, "%9.2f", sec * 1e3);
	else
		(void)fprintf(out, "%9s", "-");
}

static void text_calls(const struct profile_endpoint *e, FILE *out)
{
	if (e)
		(void)fprintf(out, "%9" PRIu64, e->calls);
	else
		(void)fprintf(out, "%9s", "-");
}

/*
 * The table: numbers first in fixed columns, names last, so a long or
 * non-ASCII name never breaks the alignment.
 */
static void diff_text(const struct diff *d, const char *base,
		      const char *newer, FILE *out)
{
	size_t n = d->nfuncs < DIFF_TEXT_FUNCTIONS ? d->nfuncs
						    : DIFF_TEXT_FUNCTIONS;

	(void)fputs("BASE ", out);
	text_put(base, out);
	(void)fprintf(out, ": %" PRIu64 " samples\nNEW  ", d->before_samples);
	text_put(newer, out);
	(void)fprintf(out, ": %" PRIu64 " samples\n\n", d->after_samples);

	(void)fprintf(out, "functions: share of self samples, largest change "
		      "first (%zu of %zu)\n", n, d->nfuncs);
	(void)fprintf(out, "%8s %8s %8s  %s\n", "before", "after", "delta",
		      "function (module)");
	for (size_t i = 0; i < n; i++) {
		const struct diff_func *f = &d->funcs[i];

		(void)fprintf(out, "%7.1f%% %7.1f%% %+8.1f  ", f->before * 100.0,
			      f->after * 100.0, points(f->delta));
		text_put(f->function, out);
		if (*f->module) {
			(void)fputs(" (", out);
			text_put(f->module, out);
			(void)fputc(')', out);
		}
		(void)fputc('\n', out);
	}
	if (!d->nfuncs)
		(void)fputs("  (no samples in either profile)\n", out);
	(void)fputs("  (delta in percentage points)\n\nendpoints: before -> "
		    "after\n", out);
	(void)fprintf(out, "%22s %22s %22s  %s\n", "p50 ms", "p99 ms",
		      "calls", "endpoint");
	for (size_t i = 0; i < d->neps; i++) {
		const struct diff_endpoint *e = &d->eps[i];

		text_ms(e->before, e->before ? e->before->p50 : 0, out);
		(void)fputs(" -> ", out);
		text_ms(e->after, e->after ? e->after->p50 : 0, out);
		(void)fputc(' ', out);
		text_ms(e->before, e->before ? e->before->p99 : 0, out);
		(void)fputs(" -> ", out);
		text_ms(e->after, e->after ? e->after->p99 : 0, out);
		(void)fputc(' ', out);
		text_calls(e->before, out);
		(void)fputs(" -> ", out);
		text_calls(e->after, out);
		(void)fputs("  ", out);
		text_put(e->name, out);
		(void)fputc('\n', out);
	}
	if (!d->neps)
		(void)fputs("  (no endpoints in either profile)\n", out);
}

/* A number from one side, or null when the endpoint is not there. */
static json_t *side(const struct profile_endpoint *e, double v)
{
	return e ? json_real(v) : json_null();
}

static json_t *side_calls(const struct profile_endpoint *e)
{
	return e ? json_integer((json_int_t)e->calls) : json_null();
}

static int diff_json(const struct diff *d, FILE *out)
{
	json_t *root = json_object(), *funcs = json_array();
	json_t *eps = json_array();
	int r = -ENOMEM;

	if (!root || !funcs || !eps)
		goto out;
	for (size_t i = 0; i < d->nfuncs; i++) {
		const struct diff_func *f = &d->funcs[i];

		if (json_array_append_new(funcs, json_pack(
				"{s:s, s:s, s:f, s:f, s:f}", "function",
				f->function, "module", f->module, "before",
				f->before, "after", f->after, "delta",
				f->delta)) < 0)
			goto out;
	}
	for (size_t i = 0; i < d->neps; i++) {
		const struct diff_endpoint *e = &d->eps[i];
		const struct profile_endpoint *b = e->before, *a = e->after;

		if (json_array_append_new(eps, json_pack(
				"{s:s, s:o, s:o, s:o, s:o, s:o, s:o}",
				"endpoint", e->name,
				"before_p50_time", side(b, b ? b->p50 : 0),
				"after_p50_time", side(a, a ? a->p50 : 0),
				"before_p99_time", side(b, b ? b->p99 : 0),
				"after_p99_time", side(a, a ? a->p99 : 0),
				"before_calls", side_calls(b),
				"after_calls", side_calls(a))) < 0)
			goto out;
	}
	if (json_object_set_new(root, "samples",
				json_pack("{s:I, s:I}", "before",
					  (json_int_t)d->before_samples,
					  "after",
					  (json_int_t)d->after_samples)) < 0 ||
	    json_object_set(root, "functions", funcs) < 0 ||
	    json_object_set(root, "endpoints", eps) < 0)
		goto out;
	r = json_dumpf(root, out, JSON_INDENT(1) |
		       JSON_REAL_PRECISION(10)) < 0 ? -EIO : 0;
	if (r == 0 && fputc('\n', out) == EOF)
		r = -EIO;
out:
	json_decref(root);
	json_decref(funcs);
	json_decref(eps);
	return r;
}

/* A profile with nothing in it: the side an --endpoint is missing from. */
static int empty_profile(struct profile **ret, char *err, size_t errlen)
{
	json_t *root = json_pack("{s:i, s:{}}", "version", 1, "data");
	int r;

	if (!root)
		return -ENOMEM;
	r = profile_from_json(root, ret, err, errlen);
	json_decref(root);
	return r;
}

/*
 * Load both profiles and keep `endpoint` (NULL: everything). An endpoint
 * that only one profile has is compared against nothing. Returns 0, or 1
 * after printing the reason.
 */
static int diff_load(const char *base, const char *newer, const char *endpoint,
		     struct profile **ret_b, struct profile **ret_a)
{
	const struct profile_filter f = {.endpoint = endpoint};
	struct profile *p[2] = {NULL, NULL};
	const char *path[2] = {base, newer};
	char err[512];
	int missing = 0;

	for (int i = 0; i < 2; i++) {
		int r = profile_load(path[i], &p[i], err, sizeof(err));

		if (r < 0) {
			fprintf(stderr, CLI_PROG ": %s\n", r == -ENOMEM ?
				"out of memory" : err);
			goto fail;
		}
	}
	/* Shares of CPU time and of wall time are different questions. */
	if (strcmp(p[0]->clock, p[1]->clock) != 0)
		fprintf(stderr, CLI_PROG ": warning: %s samples %s time, %s %s "
			"time\n", base, p[0]->clock, newer, p[1]->clock);
	for (int i = 0; i < 2; i++) {
		int r = profile_select(p[i], &f, err, sizeof(err));

		if (r == -ENOENT) {
			profile_free(p[i]);
			p[i] = NULL;
			missing++;
			r = empty_profile(&p[i], err, sizeof(err));
		}
		if (r < 0) {
			fprintf(stderr, CLI_PROG ": %s\n", r == -ENOMEM ?
				"out of memory" : err);
			goto fail;
		}
	}
	if (missing == 2) {
		fprintf(stderr, CLI_PROG ": no endpoint \"%s\" in %s or %s\n",
			endpoint, base, newer);
		goto fail;
	}
	*ret_b = p[0];
	*ret_a = p[1];
	return 0;
fail:
	profile_free(p[0]);
	profile_free(p[1]);
	return 1;
}

struct diff_text {
	const char *buf;
	size_t len;
};

static int diff_fill(FILE *out, void *arg)
{
	const struct diff_text *t = arg;

	return fwrite(t->buf, 1, t->len, out) == t->len ? 0 : -EIO;
}

/*
 * Write len bytes to `path` (NULL: stdout), a file atomically, as every
 * output of the collector (atomic_file.h). 0, or 1 after the reason.
 */
static int diff_emit(const char *path, const char *buf, size_t len)
{
	struct diff_text t = {buf, len};
	char err[400];

	if (!path) {
		if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0) {
			fprintf(stderr, CLI_PROG ": stdout: %s\n", strerror(errno));
			return 1;
		}
		return 0;
	}
	if (atomic_file_write(path, diff_fill, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, CLI_PROG ": %s\n", err);
		return 1;
	}
	return 0;
}

int diff_main(int argc, char **argv)
{
	static const struct option opts[] = {
		CLI_ARG("format", 'f'), CLI_ARG("endpoint", 'e'),
		CLI_ARG("output", 'o'), CLI_HELP, {0},
	};
	enum diff_format fmt = DIFF_TEXT;
	const char *endpoint = NULL, *output = NULL, *base, *newer;
	const char *paths[3];
	int npaths = 0;
	struct profile *b = NULL, *a = NULL;
	struct diff d = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;
	int c, r, status = 1;

	/* Options may come before, between or after BASE and NEW: getopt
	 * stops at each operand ("+": argv is never reordered), which is
	 * taken here, and parsing goes on after it; "--" ends the options. */
	optind = 1;
	opterr = 0;
	while (optind < argc) {
		int at = optind;

		c = getopt_long(argc, argv, "+o:h", opts, NULL);
		if (c == -1) {
			bool dashdash = optind == at + 1 &&
					strcmp(argv[at], "--") == 0;

			while (optind < argc && npaths < 3) {
				paths[npaths++] = argv[optind++];
				if (!dashdash)
					break;
			}
			if (npaths == 3)
				return cli_usage_error(&diff_cli, "unexpected "
						       "argument '%s'",
						       paths[2]);
			continue;
		}
		switch (c) {
		case 'f':
			if (strcmp(optarg, "text") == 0)
				fmt = DIFF_TEXT;
			else if (strcmp(optarg, "json") == 0)
				fmt = DIFF_JSON;
			else if (strcmp(optarg, "html") == 0)
				fmt = DIFF_HTML;
			else
				return cli_usage_error(&diff_cli, "--format is "
						       "text, json or html, "
						       "not '%s'", optarg);
			break;
		case 'e':
			endpoint = optarg;
			break;
		case 'o':
			output = optarg;
			break;
		default:
			return cli_help_or_bad(&diff_cli, c, CLI_BAD_OPTION,
					       argv[optind - 1], "diff");
		}
	}
	if (npaths != 2)
		return cli_usage_error(&diff_cli, "%s", "diff needs two "
				       "profiles, BASE and NEW");
	base = paths[0];
	newer = paths[1];
	if (strcmp(base, "-") == 0 && strcmp(newer, "-") == 0)
		return cli_usage_error(&diff_cli, "%s", "BASE and NEW cannot "
				       "both be stdin (\"-\")");
	if (diff_load(base, newer, endpoint, &b, &a) != 0)
		return 1;

	/* The whole output is made in memory first: a failure then leaves
	 * neither half a file nor an existing FILE truncated. */
	mem = open_memstream(&buf, &len);
	if (!mem) {
		r = -ENOMEM;
		goto fail;
	}
	if (fmt == DIFF_HTML) {
		r = html_write_diff(b, a, mem);
	} else {
		r = diff_functions(b, a, &d);
		if (r == 0)
			r = diff_endpoints(b, a, &d);
		if (r == 0 && fmt == DIFF_JSON)
			r = diff_json(&d, mem);
		else if (r == 0)
			diff_text(&d, base, newer, mem);
	}
	if (fclose(mem) != 0 && r == 0)
		r = -ENOMEM;
	if (r < 0)
		goto fail;
	status = diff_emit(output, buf, len);
	goto out;
fail:
	fprintf(stderr, CLI_PROG ": diff: %s\n", r == -ENOSYS ?
		"--format html is not implemented yet" : strerror(-r));
out:
	free(buf);
	free(d.funcs);
	free(d.eps);
	profile_free(b);
	profile_free(a);
	return status;
}

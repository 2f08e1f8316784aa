/*
 * fuzz_profile.c — libFuzzer target for the saved-profile reader
 * (profile.h: profile_load_buffer, profile_select, profile_functions,
 * profile_to_json).
 *
 *   clang-14 -g -O1 -fsanitize=fuzzer,address,undefined \
 *         -fno-sanitize-recover=undefined -D_GNU_SOURCE -Ishim -Icollector \
 *         collector/model/profile.c collector/util/control.c collector/util/table.c \
 *         test/fuzz/fuzz_profile.c -ljansson -o fuzz_profile
 *   ./fuzz_profile test/fuzz/corpus_profile
 *
 * Input: two control bytes, then the JSON document. The control bytes
 * choose the selection a report would ask for, by what the document holds:
 * byte 0 bits 0-1 pick the endpoint filter (none, the endpoint numbered
 * byte 1 % n, a name that is not there), bits 2-3 the request filter (none,
 * a kept request's id, a missing id), bits 4-5 the function filter (none,
 * the function of a frame, a missing name). Bit 6 also round-trips the
 * selection's JSON through the loader.
 *
 * Checked invariants (and, through AddressSanitizer's leak check, no
 * allocation is lost on any path):
 *   - loading gives either a profile, or a negative errno with a reason that
 *     is one non-empty line (no control character) and no profile;
 *   - a loaded profile's model is consistent: every stack's frame indices
 *     are frames, every frame's module is -1 or a module, every function
 *     name is a string, histogram bounds increase, every timeline entry
 *     names one of its request's stacks, stack endpoints are -1 or
 *     endpoints;
 *   - profile_select() either fails with -ENOENT and a reason, exactly when
 *     the endpoint or request asked for is not in the profile (or the
 *     request is not of that endpoint), or keeps only what was asked: that
 *     one endpoint, that one request, only stacks through that function,
 *     and the model stays consistent;
 *   - profile_functions() accounts for every sample: the functions' self
 *     samples add up to the samples of the stacks that have frames, the
 *     total it reports is the stacks' samples, the order is by self, then
 *     total, then name, and no (function, module) pair appears twice;
 *   - profile_to_json() gives a document; with bit 6, that document loads
 *     again as a profile with as many endpoints, stacks, requests, frames
 *     and modules as the selection.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/profile.h"
#include "fuzz_assert.h"


#define MISSING "(not in this profile)"

static void check_reason(const char *err)
{
	ASSERT(err[0] != '\0');
	for (const char *c = err; *c; c++)
		ASSERT((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static void check_stack(const struct profile *p, const struct profile_stack *s)
{
	ASSERT(s->nframes == 0 || s->frames != NULL);
	for (uint32_t i = 0; i < s->nframes; i++)
		ASSERT(s->frames[i] < p->nframes);
	ASSERT(s->endpoint >= -1 && s->endpoint < (int)p->nendpoints);
}

static void check_model(const struct profile *p)
{
	ASSERT(p->clock && (strcmp(p->clock, "cpu") == 0 ||
			    strcmp(p->clock, "wall") == 0));
	ASSERT(p->period_ns > 0);
	for (size_t i = 0; i < p->nmodules; i++)
		ASSERT(p->modules[i].name && p->modules[i].path &&
		       p->modules[i].build_id);
	for (size_t i = 0; i < p->nframes; i++) {
		ASSERT(p->frames[i].function != NULL);
		ASSERT(p->frames[i].module >= -1 &&
		       p->frames[i].module < (int)p->nmodules);
	}
	for (size_t i = 0; i < p->nstacks; i++)
		check_stack(p, &p->stacks[i]);
	for (size_t e = 0; e < p->nendpoints; e++) {
		const struct profile_endpoint *ep = &p->endpoints[e];

		ASSERT(ep->name != NULL);
		for (size_t b = 1; b < ep->nbuckets; b++)
			ASSERT(ep->buckets[b].le > ep->buckets[b - 1].le);
	}
	for (size_t i = 0; i < p->nrequests; i++) {
		const struct profile_request *q = &p->requests[i];

		ASSERT(q->id && q->endpoint);
		for (size_t k = 0; k < q->nstacks; k++) {
			ASSERT(q->stacks[k].request == (int)i);
			check_stack(p, &q->stacks[k]);
		}
		for (size_t k = 0; k < q->ntimeline; k++)
			ASSERT(q->timeline[k].stack < q->nstacks);
	}
}

/* profile_functions() over stacks[0..n), checked against the stacks. */
static void check_functions(const struct profile *p,
			    const struct profile_stack *stacks, size_t n)
{
	struct profile_func *fv = NULL;
	uint64_t total = 0, want_total = 0, self = 0, want_self = 0;
	long nf = profile_functions(p, stacks, n, &fv, &total);

	ASSERT(nf >= 0);
	for (size_t i = 0; i < n; i++) {
		want_total += stacks[i].samples;
		if (stacks[i].nframes)
			want_self += stacks[i].samples;
	}
	ASSERT(total == want_total);
	for (long i = 0; i < nf; i++) {
		ASSERT(fv[i].function != NULL && fv[i].module != NULL);
		self += fv[i].self;
		if (i == 0)
			continue;
		ASSERT(fv[i - 1].self > fv[i].self ||
		       (fv[i - 1].self == fv[i].self &&
			(fv[i - 1].total > fv[i].total ||
			 (fv[i - 1].total == fv[i].total &&
			  strcmp(fv[i - 1].function, fv[i].function) <= 0))));
	}
	/* No pair twice (small lists only: this is quadratic). */
	for (long i = 0; i < nf && nf <= 64; i++)
		for (long j = i + 1; j < nf; j++)
			ASSERT(strcmp(fv[i].function, fv[j].function) != 0 ||
			       strcmp(fv[i].module, fv[j].module) != 0);
	ASSERT(self == want_self);
	free(fv);
}

/* Picks the filter values the control bytes ask for. */
static void choose(const struct profile *p, uint8_t c0, uint8_t c1,
		   struct profile_filter *f)
{
	memset(f, 0, sizeof(*f));
	switch (c0 & 3) {
	case 1:
		if (p->nendpoints)
			f->endpoint = p->endpoints[c1 % p->nendpoints].name;
		break;
	case 2: f->endpoint = MISSING; break;
	}
	switch ((c0 >> 2) & 3) {
	case 1:
		if (p->nrequests)
			f->request = p->requests[c1 % p->nrequests].id;
		break;
	case 2: f->request = MISSING; break;
	}
	switch ((c0 >> 4) & 3) {
	case 1:
		if (p->nframes)
			f->function = p->frames[c1 % p->nframes].function;
		break;
	case 2: f->function = MISSING; break;
	}
}

/* Whether profile_select() must fail for f (before it runs). */
static bool must_fail(const struct profile *p, const struct profile_filter *f)
{
	bool ep = !f->endpoint, req = !f->request;

	for (size_t i = 0; i < p->nendpoints && !ep; i++)
		ep = strcmp(p->endpoints[i].name, f->endpoint) == 0;
	if (!ep)
		return true;
	for (size_t i = 0; i < p->nrequests && !req; i++)
		/* The first request of that id is the one selected. */
		if (strcmp(p->requests[i].id, f->request) == 0)
			return f->endpoint &&
			       strcmp(p->requests[i].endpoint, f->endpoint) != 0;
	return !req;
}

static bool stack_through(const struct profile *p,
			  const struct profile_stack *s, const char *fn)
{
	for (uint32_t i = 0; i < s->nframes; i++)
		if (strcmp(p->frames[s->frames[i]].function, fn) == 0)
			return true;
	return false;
}

/* What a successful selection keeps. */
static void check_selected(const struct profile *p,
			   const struct profile_filter *f)
{
	if (f->endpoint) {
		ASSERT(p->nendpoints <= 1);
		ASSERT(p->nendpoints == 1 || f->function);
		if (p->nendpoints)
			ASSERT(strcmp(p->endpoints[0].name, f->endpoint) == 0);
		for (size_t i = 0; i < p->nrequests; i++)
			ASSERT(strcmp(p->requests[i].endpoint, f->endpoint) == 0);
		for (size_t i = 0; i < p->nstacks; i++)
			ASSERT(p->stacks[i].endpoint == 0);
	}
	if (f->request) {
		ASSERT(p->nrequests == 1);
		ASSERT(strcmp(p->requests[0].id, f->request) == 0);
		ASSERT(p->nstacks == p->requests[0].nstacks);
	}
	if (f->function) {
		for (size_t i = 0; i < p->nstacks; i++)
			ASSERT(stack_through(p, &p->stacks[i], f->function));
		for (size_t i = 0; i < p->nrequests; i++)
			for (size_t k = 0; k < p->requests[i].nstacks; k++)
				ASSERT(stack_through(p,
						     &p->requests[i].stacks[k],
						     f->function));
		for (size_t e = 0; e < p->nendpoints; e++) {
			bool has = false;

			for (size_t i = 0; i < p->nstacks && !has; i++)
				has = p->stacks[i].endpoint == (int)e;
			ASSERT(has);
		}
	}
}

/* The selection's document loads again, with the same counts. */
static void check_round_trip(const struct profile *p, json_t *doc)
{
	char err[512];
	struct profile *q = NULL;
	char *text = json_dumps(doc, JSON_COMPACT);
	int r;

	ASSERT(text != NULL);
	r = profile_load_buffer(text, strlen(text), "selection", &q, err,
				sizeof(err));
	if (r < 0)
		fprintf(stderr, "round trip: %s\n", err);
	ASSERT(r == 0 && q != NULL);
	ASSERT(q->nendpoints == p->nendpoints);
	ASSERT(q->nstacks == p->nstacks);
	ASSERT(q->nrequests == p->nrequests);
	ASSERT(q->nframes == p->nframes && q->nmodules == p->nmodules);
	profile_free(q);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct profile *p = NULL;
	struct profile_filter f;
	char err[512];
	json_t *doc;
	uint8_t c0, c1;
	bool fail;
	int r;

	if (size < 2)
		return 0;
	c0 = data[0];
	c1 = data[1];
	err[0] = '\0';
	r = profile_load_buffer((const char *)data + 2, size - 2, "input", &p,
				err, sizeof(err));
	if (r < 0) {
		ASSERT(p == NULL);
		check_reason(err);
		return 0;
	}
	ASSERT(r == 0 && p != NULL);
	check_model(p);
	check_functions(p, p->stacks, p->nstacks);

	choose(p, c0, c1, &f);
	fail = must_fail(p, &f);
	err[0] = '\0';
	r = profile_select(p, &f, err, sizeof(err));
	if (fail) {
		ASSERT(r == -ENOENT);
		check_reason(err);
	} else {
		ASSERT(r == 0);
		check_model(p);
		check_selected(p, &f);
		check_functions(p, p->stacks, p->nstacks);
		for (size_t i = 0; i < p->nrequests; i++)
			check_functions(p, p->requests[i].stacks,
					p->requests[i].nstacks);
	}
	doc = profile_to_json(p);
	ASSERT(doc != NULL);
	if (c0 & 0x40)
		check_round_trip(p, doc);
	json_decref(doc);
	profile_free(p);
	return 0;
}

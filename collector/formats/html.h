/*
 * html.h — one self-contained HTML page (no network): an interactive flame
 * graph (click to zoom, search that highlights and totals matches), the
 * endpoint table with calls and p50/p95/p99, a latency histogram per
 * endpoint, and per-request drill-down for kept requests; and the
 * differential flame graph `diff --format html` writes.
 */
#ifndef PROFSHIM_HTML_H
#define PROFSHIM_HTML_H

#include <stdio.h>

#include "model/profile.h"

/* The report page for the profile. 0, or a negative errno. */
int html_write(const struct profile *p, FILE *out);

/* A differential flame graph of `after` against `before` (both already
 * selected): frames that grew red, shrank green. 0, or a negative errno. */
int html_write_diff(const struct profile *before, const struct profile *after,
		    FILE *out);

#endif /* PROFSHIM_HTML_H */

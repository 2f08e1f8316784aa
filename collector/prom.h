/*
 * prom.h — Prometheus text exposition (format 0.0.4) of a profile:
 *
 *   profshim_request_duration_seconds{endpoint}   histogram over the bounds
 *       0.0005 … 10 s and +Inf, made from the endpoint's fine buckets (each
 *       counted at the first bound at or above its upper end); _sum is the
 *       total time, _count and +Inf the calls
 *   profshim_requests_total{endpoint,status_class}  (classes with requests)
 *   profshim_samples_total{endpoint}
 *   profshim_dropped_{samples,events,requests}_total
 *
 * Every family has its HELP and TYPE once, even without samples; label
 * values are escaped. `promtool check metrics` accepts it without a lint
 * warning.
 */
#ifndef PROFSHIM_PROM_H
#define PROFSHIM_PROM_H

#include <stdio.h>

#include "profile.h"

/* Write the exposition to out. 0, or a negative errno. */
int prom_write(const struct profile *p, FILE *out);

#endif /* PROFSHIM_PROM_H */

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

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model/profile.h"

/* Write the exposition to out. 0, or a negative errno. */
int prom_write(const struct profile *p, FILE *out);

/*
 * The running collector's own state, appended to its /metrics so that
 * failing pushes or a collector that sees no ring can be alerted on:
 *
 *   profshim_collector_rings               rings being read now
 *   profshim_collector_push_bodies_total{result="sent"|"dropped"}
 *   profshim_collector_push_samples_total{result="sent"|"dropped"}
 *   profshim_collector_push_failures_total failed attempts, and bodies
 *                                          that could not be built
 *   profshim_collector_push_queued_bodies  bodies waiting
 *
 * (the push families only when the collector pushes).
 */
struct prom_collector {
	uint64_t rings;
	bool push;
	uint64_t push_sent_bodies, push_sent_samples;
	uint64_t push_dropped_bodies, push_dropped_samples;
	uint64_t push_failures, push_queued_bodies;
};

int prom_write_collector(const struct prom_collector *c, FILE *out);

#endif /* PROFSHIM_PROM_H */

/*
 * prom.h — Prometheus text exposition of a profile:
 * profshim_request_duration_seconds histogram per endpoint, request and
 * sample counters, drops. `promtool check metrics` accepts it.
 */
#ifndef PROFSHIM_PROM_H
#define PROFSHIM_PROM_H

#include <stdio.h>

#include "profile.h"

/* 0, or a negative errno. */
int prom_write(const struct profile *p, FILE *out);

#endif /* PROFSHIM_PROM_H */

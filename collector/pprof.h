/*
 * pprof.h — the profile as gzip-compressed profile.proto, for `go tool pprof`.
 *
 * Sample types samples/count and cpu|wall/nanoseconds (the profile's clock),
 * labels `endpoint` and `request_id` (when a stack is one request's),
 * mappings with build ids, functions with file names and lines.
 */
#ifndef PROFSHIM_PPROF_H
#define PROFSHIM_PPROF_H

#include <stdio.h>

#include "profile.h"

/* Encode and gzip the profile's stacks. 0, or a negative errno. */
int pprof_write(const struct profile *p, FILE *out);

#endif /* PROFSHIM_PPROF_H */

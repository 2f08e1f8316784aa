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

#include "model/profile.h"

/*
 * Encode the profile's stacks (one Sample each, with its endpoint's and
 * request's labels) and write them gzipped to out, which is flushed.
 * Returns 0, -ENOMEM, or the negative errno of the failed write (-EIO when
 * the stream gives none).
 */
int pprof_write(const struct profile *p, FILE *out);

#endif /* PROFSHIM_PPROF_H */

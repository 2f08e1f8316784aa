/*
 * speedscope.h — the speedscope file format
 * (https://www.speedscope.app/file-format-schema.json): one "sampled"
 * profile per endpoint, or per request when the profile was selected with
 * --request.
 */
#ifndef PROFSHIM_SPEEDSCOPE_H
#define PROFSHIM_SPEEDSCOPE_H

#include <stdio.h>

#include "profile.h"

/* 0, or a negative errno. */
int speedscope_write(const struct profile *p, FILE *out);

#endif /* PROFSHIM_SPEEDSCOPE_H */

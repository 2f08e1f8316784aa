/*
 * speedscope.h — the speedscope file format
 * (https://www.speedscope.app/file-format-schema.json).
 *
 * One "sampled" profile per endpoint with samples, heaviest first (the one
 * speedscope opens on), weighted in nanoseconds (samples x period). When
 * the profile was selected with --request, one profile of that request
 * alone, its samples in the order they were taken when its timeline has
 * them all. speedscope's frames are functions: the profile's frames of one
 * (function, module) are one frame.
 */
#ifndef PROFSHIM_SPEEDSCOPE_H
#define PROFSHIM_SPEEDSCOPE_H

#include <stdio.h>

#include "model/profile.h"

/* Write the file to out. 0, or a negative errno. */
int speedscope_write(const struct profile *p, FILE *out);

#endif /* PROFSHIM_SPEEDSCOPE_H */

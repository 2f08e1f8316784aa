/*
 * folded.h — the folded-stacks text FlameGraph and speedscope read: one line
 * per distinct stack, root to leaf frames joined by ';', a space, the count.
 */
#ifndef PROFSHIM_FOLDED_H
#define PROFSHIM_FOLDED_H

#include <stdio.h>

#include "model/profile.h"

/* Write the profile's stacks. Returns 0, or a negative errno from writing. */
int folded_write(const struct profile *p, FILE *out);

#endif /* PROFSHIM_FOLDED_H */

/*
 * usage.h — profshim-collector's usage text, which names every command, and
 * the command line of the commands without one of their own (record, gc,
 * dump, reset, save): their messages begin "profshim-collector:" and their
 * usage errors end with this text.
 */
#ifndef PROFSHIM_USAGE_H
#define PROFSHIM_USAGE_H

#include "util/cli.h"

extern const char usage_text[];
extern const struct cli usage_cli;

#endif /* PROFSHIM_USAGE_H */

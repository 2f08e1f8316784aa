/*
 * diff.h — `profshim-collector diff BASE NEW`: what changed between two saved
 * profiles, as text, json or a differential flame graph.
 */
#ifndef PROFSHIM_DIFF_H
#define PROFSHIM_DIFF_H

/* Run the command with its arguments (argv[0] is the command's name).
 * Returns the exit status: 0, 1 when it could not do its work, 2 for bad
 * arguments. */
int diff_main(int argc, char **argv);

#endif /* PROFSHIM_DIFF_H */

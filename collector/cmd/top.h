/*
 * top.h — `profshim-collector top`: a live terminal view of the running
 * collector.
 */
#ifndef PROFSHIM_TOP_H
#define PROFSHIM_TOP_H

/* Run the command with its arguments (argv[0] is the command's name).
 * Returns the exit status: 0, 1 when it could not do its work, 2 for bad
 * arguments. */
int top_main(int argc, char **argv);

#endif /* PROFSHIM_TOP_H */

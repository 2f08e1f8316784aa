/*
 * report.h — `profshim-collector report`: a saved profile, or the running
 * collector's, as json, folded, pprof, speedscope, html or prometheus.
 */
#ifndef PROFSHIM_REPORT_H
#define PROFSHIM_REPORT_H

/* Run the command with its arguments (argv[0] is the command's name).
 * Returns the exit status: 0, 1 when it could not do its work, 2 for bad
 * arguments. */
int report_main(int argc, char **argv);

#endif /* PROFSHIM_REPORT_H */

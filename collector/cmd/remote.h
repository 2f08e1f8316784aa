/*
 * remote.h — `profshim-collector dump`, `reset` and `save FILE`: requests to
 * the running collector over its control socket.
 */
#ifndef PROFSHIM_REMOTE_H
#define PROFSHIM_REMOTE_H

/* Run dump, reset or save (argv[0], the command's name, says which) with
 * its arguments. Returns the exit status: 0, 1 when it could not do its
 * work (no collector running, ...), 2 for bad arguments. */
int remote_main(int argc, char **argv);

#endif /* PROFSHIM_REMOTE_H */

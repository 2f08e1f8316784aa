/*
 * run.h — `profshim run`: profile one server from start to exit with one
 * command.
 *
 *   profshim run [--rate R] [--hz N] [--clock cpu|wall]
 *                [--mode request|continuous] [--out FILE] -- SERVER ARGS...
 *
 * starts `profshim-collector record --pid <server>` on a private control
 * socket, runs SERVER with libprofshim.so preloaded and ENABLE_PROFILING=true
 * (plus PROFILING_SAMPLE_RATE, PROFILING_HZ, PROFILING_CLOCK, PROFILING_MODE
 * for the flags given; without a flag the user's own variable is left as it
 * is), forwards SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the
 * server, and when the server has exited waits for the collector to write
 * FILE (default profshim.json), writes the HTML report beside it and prints
 * one line on stderr naming both.
 *
 * libprofshim.so and profshim-collector are found relative to the profshim
 * executable (the build tree and the installed layout), or through
 * PROFSHIM_LIB and PROFSHIM_COLLECTOR.
 *
 * Exit status: the server's (128 + N when signal N killed it); 1 when
 * profshim could not do its part (a file not found, the collector failed, no
 * profile written, nothing recorded because the collector could not read
 * the server's rings; the server's own status wins when it is not 0); 2 bad
 * usage; 127 SERVER not found, 126 SERVER could not be executed.
 */
#ifndef PROFSHIM_RUN_H
#define PROFSHIM_RUN_H

/* The usage text of `profshim run`. */
extern const char run_usage[];

/*
 * Run `profshim run` with argv[0] == "run". Returns the process exit status
 * described above; messages go to stderr.
 */
int run_command(int argc, char **argv);

#endif /* PROFSHIM_RUN_H */

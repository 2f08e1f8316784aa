/*
 * sigrestart.h — keep a program's EINTR when its signal meets a sample.
 *
 * A program that installs a handler without SA_RESTART (signal.siginterrupt
 * in Python, a SIGALRM that bounds a blocking read) relies on that signal
 * making the blocking call fail with EINTR. The kernel decides between
 * restarting a call and failing it with the first signal it delivers: when
 * profshim's SIGPROF (SA_RESTART) is delivered first — a thread's own timer
 * signal is taken before a process-wide one, and both often expire on the
 * same tick — the call is set up to restart, the program's handler then runs
 * on top of ours, and the call goes back to blocking as if its signal had
 * never come. Measured before this module: 5–9% of one-shot SIGALRMs lost
 * their EINTR under 1000 Hz wall-clock sampling.
 *
 * sigrestart_fixup() undoes that at the end of the SIGPROF handler: if the
 * interrupted thread was in a call the kernel set up to restart, and a signal
 * whose handler lacks SA_RESTART is pending and not blocked in the
 * interrupted code, the call is made to return -EINTR instead, which is what
 * the kernel does when that signal comes alone. The handler runs with
 * asynchronous signals blocked (sampler.c), so a signal that arrives while
 * it runs waits and is seen here; only one arriving in the last instructions
 * of the handler, after the check, still loses its EINTR.
 *
 * Only the calls signal(7) lists as "restarted with SA_RESTART, EINTR
 * otherwise" are changed, for which failing with EINTR before any transfer is
 * always a permitted outcome. x86-64 Linux only; elsewhere it does nothing.
 */
#ifndef PROFSHIM_SIGRESTART_H
#define PROFSHIM_SIGRESTART_H

/*
 * Called from the sampler's handler with its ucontext and the profiling
 * signal `own` (never counted as the program's). Async-signal-safe: no
 * allocation, no locks, errno preserved; at most one rt_sigpending and one
 * rt_sigaction per pending signal, and those only when the thread was
 * interrupted inside a restartable call.
 */
void sigrestart_fixup(void *ucontext, int own);

#endif

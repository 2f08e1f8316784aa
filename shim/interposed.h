/*
 * interposed.h — the one list of the libc functions libprofshim.so
 * interposes. Everything that needs the list is generated from it: the
 * pointers to the real functions and their resolution (libc.h, libc.c),
 * and the layering check (test/unit/test_layering.c) that no shim module
 * but the interposer files calls one of these names.
 *
 * X(return type, C name, symbol, parameter list). The C name is the one
 * the shim uses (real_<name>); the symbol is what the dynamic linker
 * binds (the _FORTIFY_SOURCE variants are __read_chk and friends).
 *
 * Why each is interposed:
 *   - accept … close: where requests start and end (hooks_io.c);
 *   - sigaction, signal, setitimer: a program that takes the profiling
 *     signal (SIGPROF, or the one profshim moved to) gets it, and the
 *     sampler moves to another (hooks_guard.c);
 *   - pthread_sigmask, sigprocmask: a thread that blocks the profiling
 *     signal is still sampled, and reads back the mask it set
 *     (hooks_guard.c);
 *   - sigtimedwait, sigwaitinfo, sigwait: they wait with the profiling
 *     signal blocked and never take it (hooks_guard.c);
 *   - pthread_create: new threads learn their stack bounds and, in
 *     continuous mode, arm their timer (hooks_guard.c);
 *   - pipe2, syscall, dl_iterate_phdr, dlclose: libunwind and the loader
 *     called from the signal handler are kept from descriptors the
 *     program would see and from the loader's lock (hooks_guard.c);
 *   - poll … pause: calls that a signal makes return, resumed when only
 *     the profiling signal came (hooks_wait.c; the socket calls above
 *     are resumed in hooks_io.c), and setsockopt for the socket timeouts
 *     a resumed call keeps to.
 * dlopen is deliberately not interposed: glibc resolves a bare library
 * name with the calling object's RPATH, and an interposed dlopen would
 * make the shim that caller.
 */
#ifndef PROFSHIM_INTERPOSED_H
#define PROFSHIM_INTERPOSED_H

/* An interposer: the one kind of symbol libprofshim.so exports (the shim
 * is built with -fvisibility=hidden). Only hooks_io.c, hooks_guard.c and
 * hooks_cred.c define them. */
#define HOOK __attribute__((visibility("default")))

/* An interposer the AddressSanitizer runtime calls while it starts, before
 * its shadow memory exists (it walks the loaded objects with
 * dl_iterate_phdr): a build with -fsanitize=address must not check this
 * one's memory accesses, or its first load of a pointer the shim shares
 * between files faults. Plain builds are unaffected. */
#define HOOK_EARLY HOOK __attribute__((no_sanitize_address))

#define INTERPOSED(X)                                                         \
	X(int, accept, "accept", (int, struct sockaddr *, socklen_t *))       \
	X(int, accept4, "accept4",                                            \
	  (int, struct sockaddr *, socklen_t *, int))                         \
	X(ssize_t, recv, "recv", (int, void *, size_t, int))                  \
	X(ssize_t, recvfrom, "recvfrom",                                      \
	  (int, void *, size_t, int, struct sockaddr *, socklen_t *))         \
	X(ssize_t, recvmsg, "recvmsg", (int, struct msghdr *, int))           \
	X(ssize_t, read, "read", (int, void *, size_t))                       \
	X(ssize_t, readv, "readv", (int, const struct iovec *, int))          \
	X(ssize_t, send, "send", (int, const void *, size_t, int))            \
	X(ssize_t, sendto, "sendto",                                          \
	  (int, const void *, size_t, int, const struct sockaddr *,           \
	   socklen_t))                                                        \
	X(ssize_t, sendmsg, "sendmsg", (int, const struct msghdr *, int))     \
	X(ssize_t, write, "write", (int, const void *, size_t))               \
	X(ssize_t, writev, "writev", (int, const struct iovec *, int))        \
	X(ssize_t, sendfile, "sendfile", (int, int, off_t *, size_t))         \
	X(ssize_t, sendfile64, "sendfile64", (int, int, off64_t *, size_t))   \
	X(int, close, "close", (int))                                         \
	X(ssize_t, read_chk, "__read_chk", (int, void *, size_t, size_t))     \
	X(ssize_t, recv_chk, "__recv_chk",                                    \
	  (int, void *, size_t, size_t, int))                                 \
	X(ssize_t, recvfrom_chk, "__recvfrom_chk",                            \
	  (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *)) \
	X(int, sigaction, "sigaction",                                        \
	  (int, const struct sigaction *, struct sigaction *))                \
	X(sighandler_t, signal, "signal", (int, sighandler_t))                \
	X(int, setitimer, "setitimer",                                        \
	  (__itimer_which_t, const struct itimerval *, struct itimerval *))   \
	X(int, sigtimedwait, "sigtimedwait",                                  \
	  (const sigset_t *, siginfo_t *, const struct timespec *))           \
	X(int, sigwaitinfo, "sigwaitinfo", (const sigset_t *, siginfo_t *))   \
	X(int, sigwait, "sigwait", (const sigset_t *, int *))                 \
	X(int, pthread_sigmask, "pthread_sigmask",                            \
	  (int, const sigset_t *, sigset_t *))                                \
	X(int, sigprocmask, "sigprocmask",                                    \
	  (int, const sigset_t *, sigset_t *))                                \
	X(int, pthread_create, "pthread_create",                              \
	  (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))   \
	X(int, pipe2, "pipe2", (int[2], int))                                 \
	X(long, syscall, "syscall", (long, ...))                              \
	X(int, dl_iterate_phdr, "dl_iterate_phdr",                            \
	  (int (*)(struct dl_phdr_info *, size_t, void *), void *))           \
	X(int, dlclose, "dlclose", (void *))                                  \
	X(int, setuid, "setuid", (uid_t))                                     \
	X(int, seteuid, "seteuid", (uid_t))                                   \
	X(int, setreuid, "setreuid", (uid_t, uid_t))                          \
	X(int, setresuid, "setresuid", (uid_t, uid_t, uid_t))                 \
	X(int, poll, "poll", (struct pollfd *, nfds_t, int))                  \
	X(int, poll_chk, "__poll_chk", (struct pollfd *, nfds_t, int, size_t)) \
	X(int, ppoll, "ppoll",                                                \
	  (struct pollfd *, nfds_t, const struct timespec *, const sigset_t *)) \
	X(int, epoll_wait, "epoll_wait", (int, struct epoll_event *, int, int)) \
	X(int, epoll_pwait, "epoll_pwait",                                    \
	  (int, struct epoll_event *, int, int, const sigset_t *))            \
	X(int, epoll_pwait2, "epoll_pwait2",                                  \
	  (int, struct epoll_event *, int, const struct timespec *,           \
	   const sigset_t *))                                                 \
	X(int, select, "select",                                              \
	  (int, fd_set *, fd_set *, fd_set *, struct timeval *))              \
	X(int, pselect, "pselect",                                            \
	  (int, fd_set *, fd_set *, fd_set *, const struct timespec *,        \
	   const sigset_t *))                                                 \
	X(int, nanosleep, "nanosleep",                                        \
	  (const struct timespec *, struct timespec *))                       \
	X(int, clock_nanosleep, "clock_nanosleep",                            \
	  (clockid_t, int, const struct timespec *, struct timespec *))       \
	X(int, usleep, "usleep", (useconds_t))                                \
	X(unsigned, sleep, "sleep", (unsigned))                               \
	X(int, sem_timedwait, "sem_timedwait",                                \
	  (sem_t *, const struct timespec *))                                 \
	X(int, sem_clockwait, "sem_clockwait",                                \
	  (sem_t *, clockid_t, const struct timespec *))                      \
	X(int, connect, "connect", (int, const struct sockaddr *, socklen_t)) \
	X(int, setsockopt, "setsockopt",                                      \
	  (int, int, int, const void *, socklen_t))                           \
	X(int, sigsuspend, "sigsuspend", (const sigset_t *))                  \
	X(int, pause, "pause", (void))

#endif

/*
 * libc.h — level 0 of the shim: the real libc entry points, and the few
 * calls every shim module makes to the system.
 *
 * libprofshim.so defines the names in interposed.h, and, preloaded, comes
 * first in the program's lookup scope: a call to one of those names from
 * anywhere in the shim would land back in the shim's own hooks. So no shim
 * module calls them; the interposer files (hooks_io.c, hooks_guard.c,
 * hooks_cred.c, init.c) call the real functions through the real_<name>
 * pointers, and every other module goes through the functions below. The
 * rule is checked on the built objects by test/unit/test_layering.c.
 *
 * The pointers are resolved by libc_resolve() in the constructor, or by a
 * hook that runs before it (another library's constructor may read a
 * socket) with LIBC_RESOLVE. Nothing here allocates or takes a lock once
 * resolved.
 */
#ifndef PROFSHIM_LIBC_H
#define PROFSHIM_LIBC_H

/* glibc's headers rename sendfile to sendfile64 under 64-bit file offsets;
 * the shim names both itself. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "interposed.h"

#pragma GCC visibility push(hidden)

#define LIBC_POINTER(ret, name, sym, params) extern ret(*real_##name) params;
INTERPOSED(LIBC_POINTER)
#undef LIBC_POINTER

/*
 * Resolve real_<name> if it is not yet: for a hook that may run before the
 * constructor. dlsym may allocate: never from the signal handler (every
 * pointer the handler's path uses is resolved by then).
 */
#define LIBC_RESOLVE(name)                                                    \
	do {                                                                  \
		if (!real_##name)                                             \
			libc_resolve_one((void **)&real_##name,               \
					 libc_symbol_##name);                 \
	} while (0)

#define LIBC_SYMBOL(ret, name, sym, params)                                   \
	static const char libc_symbol_##name[] = sym;
INTERPOSED(LIBC_SYMBOL)
#undef LIBC_SYMBOL

void libc_resolve_one(void **ptr, const char *symbol);

/* Resolve every real_<name>. From the constructor. */
void libc_resolve(void);

/*
 * Write `text` as it is to standard error with the real write(2), however
 * the program has redirected or replaced its stdio. Async-signal-safe once
 * resolved; errno preserved.
 */
void libc_write_stderr(const char *text);

/* libc_write_stderr() of `line` and a newline: the shim's one-line
 * warnings (env_load's warn callback). */
void libc_warn(const char *line);

/* close(2) of a descriptor the shim opened itself. errno preserved. */
void libc_close(int fd);

/*
 * perf_event_open(2) (glibc has no wrapper: through the real syscall(),
 * not the shim's hook). Returns the descriptor or -1 with errno set.
 */
struct perf_event_attr;
int libc_perf_event_open(struct perf_event_attr *attr, int pid, int cpu,
			 int group_fd, unsigned long flags);

/* sigaction(2) itself, not the hook that watches the program's calls. */
int libc_sigaction(int sig, const struct sigaction *act,
		   struct sigaction *old);

/* rt_tgsigqueueinfo(2): signal `sig` with *si to thread `tid` of process
 * `pid` (no glibc wrapper: through the real syscall()). 0 or -1 with
 * errno. */
int libc_tgsigqueueinfo(int pid, int tid, int sig, siginfo_t *si);

/* pthread_sigmask(3) itself, not the hook that keeps the profiling signal
 * deliverable. Returns 0 or an error number, as it does. */
int libc_sigmask(int how, const sigset_t *set, sigset_t *old);

/* nanosleep(2) itself, not the hook that resumes it. */
int libc_nanosleep(const struct timespec *req, struct timespec *rem);

/*
 * dl_iterate_phdr() over the live list of loaded objects: it takes the
 * dynamic loader's lock, so never from the signal handler.
 */
int libc_dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
			 void *data);

#pragma GCC visibility pop

/* The calling thread's id. Async-signal-safe. */
static inline int libc_gettid(void)
{
	return (int)gettid();
}

/* Nanoseconds on `clock` (through the vDSO: no system call for the
 * monotonic and real-time clocks). Async-signal-safe. */
static inline uint64_t libc_clock_ns(clockid_t clock)
{
	struct timespec ts;

	(void)clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds on CLOCK_MONOTONIC, the clock of every record in the ring. */
static inline uint64_t libc_now_ns(void)
{
	return libc_clock_ns(CLOCK_MONOTONIC);
}

#endif

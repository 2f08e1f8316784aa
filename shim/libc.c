/*
 * libc.c — see libc.h.
 */
#include "libc.h"

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>

#define LIBC_DEFINE(ret, name, sym, params) ret(*real_##name) params;
INTERPOSED(LIBC_DEFINE)
#undef LIBC_DEFINE

/* Unchecked under AddressSanitizer: the dl_iterate_phdr hook resolves
 * through here while the ASan runtime is still starting (interposed.h,
 * HOOK_EARLY). */
__attribute__((no_sanitize_address))
void libc_resolve_one(void **ptr, const char *symbol)
{
	/* RTLD_NEXT: the definition after the shim's own, libc's. */
	*ptr = dlsym(RTLD_NEXT, symbol);
}

void libc_resolve(void)
{
#define LIBC_RESOLVE_ONE(ret, name, sym, params) LIBC_RESOLVE(name);
	INTERPOSED(LIBC_RESOLVE_ONE)
#undef LIBC_RESOLVE_ONE
}

void libc_write_stderr(const char *text)
{
	int saved = errno;

	LIBC_RESOLVE(write);
	if (real_write)
		(void)!real_write(2, text, strlen(text));
	errno = saved;
}

void libc_warn(const char *line)
{
	libc_write_stderr(line);
	libc_write_stderr("\n");
}

void libc_close(int fd)
{
	int saved = errno;

	LIBC_RESOLVE(close);
	if (real_close)
		(void)real_close(fd);
	errno = saved;
}

int libc_perf_event_open(struct perf_event_attr *attr, int pid, int cpu,
			 int group_fd, unsigned long flags)
{
	LIBC_RESOLVE(syscall);
	return (int)real_syscall(SYS_perf_event_open, attr, (long)pid,
				 (long)cpu, (long)group_fd, flags);
}

int libc_sigaction(int sig, const struct sigaction *act,
		   struct sigaction *old)
{
	LIBC_RESOLVE(sigaction);
	return real_sigaction(sig, act, old);
}

int libc_tgsigqueueinfo(int pid, int tid, int sig, siginfo_t *si)
{
	LIBC_RESOLVE(syscall);
	return (int)real_syscall(SYS_rt_tgsigqueueinfo, (long)pid, (long)tid,
				 (long)sig, si);
}

int libc_nanosleep(const struct timespec *req, struct timespec *rem)
{
	LIBC_RESOLVE(nanosleep);
	return real_nanosleep(req, rem);
}

int libc_sigmask(int how, const sigset_t *set, sigset_t *old)
{
	LIBC_RESOLVE(pthread_sigmask);
	return real_pthread_sigmask(how, set, old);
}

int libc_dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
			 void *data)
{
	LIBC_RESOLVE(dl_iterate_phdr);
	return real_dl_iterate_phdr(cb, data);
}

/*
 * io.h — what the C test servers share (included by cpuserver.c and
 * hookcheck.c; each is one file built on its own).
 */
#ifndef PROFSHIM_TEST_SERVERS_IO_H
#define PROFSHIM_TEST_SERVERS_IO_H

#include <errno.h>
#include <stddef.h>
#include <unistd.h>

/* Write all n bytes, going on after a short write or EINTR (the shim's
 * sampling signals interrupt writes); 0, or -1 when write() fails. */
static inline int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

#endif /* PROFSHIM_TEST_SERVERS_IO_H */

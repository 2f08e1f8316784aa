/*
 * atomic_file.c — see atomic_file.h.
 */
#include "util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_file_write(const char *path, int (*fill)(FILE *out, void *arg),
		      void *arg, char *err, size_t errlen)
{
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n);
	FILE *out;
	int r, fd;

	if (!tmp) {
		(void)snprintf(err, errlen, "cannot write %.300s: out of memory",
			       path);
		return -ENOMEM;
	}
	(void)snprintf(tmp, n, "%s.tmp.XXXXXX", path);
	/* mkstemp creates a new file of our own (O_EXCL): a link someone
	 * planted at a predictable name is never followed. */
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = -errno;
		(void)snprintf(err, errlen, "cannot write %.300s: %s", tmp,
			       strerror(-r));
		goto out;
	}
	out = fdopen(fd, "w");
	if (!out) {
		r = -errno;
		(void)close(fd);
		(void)unlink(tmp);
		(void)snprintf(err, errlen, "cannot write %.300s: %s", tmp,
			       strerror(-r));
		goto out;
	}
	/* mkstemp makes 0600; outputs are meant to be read like any file
	 * the user writes. */
	(void)fchmod(fd, 0666 & ~umask(umask(0)));
	r = fill(out, arg);
	if (fflush(out) != 0 && r == 0)
		r = -errno;
	if (fclose(out) != 0 && r == 0)
		r = -EIO;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlink(tmp);
		(void)snprintf(err, errlen, "cannot write %.300s: %s", path,
			       strerror(-r));
	}
out:
	free(tmp);
	return r;
}

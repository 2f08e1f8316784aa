/*
 * atomic_file.h — write a file so that readers see the old one or the
 * whole new one, never a part.
 *
 * Every output the collector writes to a path (profiles, checkpoints,
 * reports, diffs) goes through here: the content is written to a new file
 * of our own beside `path` (created with O_EXCL|O_NOFOLLOW, so a link
 * planted in a shared directory is never followed), flushed, and renamed
 * over `path`. A failure leaves `path` as it was and removes the
 * temporary file. The new file gets mode 0666 less the umask.
 */
#ifndef PROFSHIM_ATOMIC_FILE_H
#define PROFSHIM_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

/*
 * Writes what fill() writes to `out`. fill() returns 0 or a negative
 * errno; its error is returned as is. Returns 0, or a negative errno with
 * a one-line reason in err (naming the file) when the file could not be
 * made, written or renamed.
 */
int atomic_file_write(const char *path, int (*fill)(FILE *out, void *arg),
		      void *arg, char *err, size_t errlen);

#endif

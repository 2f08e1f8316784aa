/*
 * bytebuf.h — a growing byte buffer whose out-of-memory is sticky: once an
 * append fails, later appends do nothing and the caller checks `nomem`
 * once at the end instead of after every append. Used by the pprof
 * encoder and by push's stack keys.
 */
#ifndef PROFSHIM_BYTEBUF_H
#define PROFSHIM_BYTEBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bytebuf {
	uint8_t *data;
	size_t len, cap;
	bool nomem;
};

/* Append data[0..n); on ENOMEM set nomem and keep what is there. */
void bytebuf_append(struct bytebuf *b, const void *data, size_t n);

/* Free the data; the buffer is empty (and usable) again. */
void bytebuf_free(struct bytebuf *b);

#endif /* PROFSHIM_BYTEBUF_H */

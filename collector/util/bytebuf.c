/*
 * bytebuf.c — see bytebuf.h.
 */
#include "util/bytebuf.h"

#include <stdlib.h>
#include <string.h>

void bytebuf_append(struct bytebuf *b, const void *data, size_t n)
{
	if (b->nomem)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;

		while (cap < b->len + n)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d) {
			b->nomem = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
}

void bytebuf_free(struct bytebuf *b)
{
	free(b->data);
	*b = (struct bytebuf){0};
}

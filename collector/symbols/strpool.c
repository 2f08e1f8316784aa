/*
 * strpool.c — interned strings in an arena (see strpool.h).
 */
#include "symbols/strpool.h"

#include <errno.h>
#include <stdlib.h>

/* Size of an ordinary string arena block. */
#define ARENA_BLOCK_SIZE (64 * 1024)

/* Initial slot count of the index; a power of two. */
#define STRINGS_INITIAL_SLOTS 1024

/* An interned string; a NULL `str` marks an empty slot. */
struct strpool_str {
	uint64_t hash;
	const char *str;
	size_t len;
};

/* A block of string storage, freed as a whole by strpool_free(). */
struct strpool_block {
	struct strpool_block *next;
	size_t used;
	size_t size;
	char data[];
};

/*
 * Copy len bytes at str plus a terminating NUL into the arena and return the
 * copy, or NULL when out of memory. Small strings share blocks; a large one
 * gets a block of its own so the current block is not wasted.
 */
static char *arena_copy(struct strpool *p, const char *str, size_t len)
{
	struct strpool_block *b = p->current;
	size_t need = len + 1;
	char *copy;

	if (!b || b->size - b->used < need) {
		size_t size = ARENA_BLOCK_SIZE;

		if (need > ARENA_BLOCK_SIZE / 4)
			size = need;
		b = malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->used = 0;
		b->size = size;
		b->next = p->blocks;
		p->blocks = b;
		if (size == ARENA_BLOCK_SIZE)
			p->current = b;
	}
	copy = b->data + b->used;
	memcpy(copy, str, len);
	copy[len] = '\0';
	b->used += need;
	return copy;
}

/* Double the index, or create it. Returns 0 or -ENOMEM. */
static int strings_grow(struct strpool *p)
{
	size_t cap = p->strs ? (p->mask + 1) * 2 : STRINGS_INITIAL_SLOTS;
	struct strpool_str *t = calloc(cap, sizeof(*t));

	if (!t)
		return -ENOMEM;
	if (p->strs) {
		for (size_t i = 0; i <= p->mask; i++) {
			size_t j;

			if (!p->strs[i].str)
				continue;
			j = p->strs[i].hash & (cap - 1);
			while (t[j].str)
				j = (j + 1) & (cap - 1);
			t[j] = p->strs[i];
		}
		free(p->strs);
	}
	p->strs = t;
	p->mask = cap - 1;
	return 0;
}

int strpool_intern(struct strpool *p, const char *str, size_t len,
		   const char **ret)
{
	uint64_t h = strpool_hash(str, len, 0x5bd1e9955bd1e995ULL);
	size_t i;
	char *copy;

	if (!p->strs || (p->count + 1) * 2 > p->mask + 1) {
		int r = strings_grow(p);

		if (r < 0)
			return r;
	}
	for (i = h & p->mask; p->strs[i].str; i = (i + 1) & p->mask) {
		const struct strpool_str *e = &p->strs[i];

		if (e->hash == h && e->len == len &&
		    memcmp(e->str, str, len) == 0) {
			*ret = e->str;
			return 0;
		}
	}
	copy = arena_copy(p, str, len);
	if (!copy)
		return -ENOMEM;
	p->strs[i] = (struct strpool_str){ .hash = h, .str = copy, .len = len };
	p->count++;
	*ret = copy;
	return 0;
}

void strpool_free(struct strpool *p)
{
	struct strpool_block *b, *next;

	for (b = p->blocks; b; b = next) {
		next = b->next;
		free(b);
	}
	free(p->strs);
	memset(p, 0, sizeof(*p));
}

/*
 * strpool.h — the symbolizer's interned strings: equal contents give the
 * same pointer, so callers may compare and hash names by address, and every
 * string stays valid until strpool_free().
 *
 * The bytes live in an arena owned by the pool: small strings share 64 KiB
 * blocks, a large one gets a block of its own, so many short names cost one
 * allocation a block rather than one a string. The index over them is an
 * open-addressing table grown at 50% load.
 *
 * util/table.h's `struct intern` is a different tool: it numbers byte
 * strings with dense ids and copies each into its own allocation; here no
 * ids are needed, only stable pointers, and names are hashed eight bytes a
 * step (C++ names in a large library run to hundreds of bytes).
 */
#ifndef PROFSHIM_STRPOOL_H
#define PROFSHIM_STRPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A pool; all zero is an empty one. The fields are the pool's own. */
struct strpool {
	struct strpool_str *strs;        /* the index; NULL until first use */
	size_t mask;                     /* its slot count minus one */
	size_t count;
	struct strpool_block *blocks;    /* every block, newest first */
	struct strpool_block *current;   /* the block small strings go to */
};

/*
 * Set *ret to the interned copy of str[0..len) (NUL-terminated) and return
 * 0, or return -ENOMEM and leave *ret alone.
 */
int strpool_intern(struct strpool *p, const char *str, size_t len,
		   const char **ret);

/* Free every string of the pool and the pool's index; p is then empty. */
void strpool_free(struct strpool *p);

/*
 * Hash n bytes at p, continuing from seed: the pool's hash, and the
 * symbolizer's for its file table, whose every lookup hashes a path (so it
 * is inline). Reads eight bytes at a time; the value depends on the host's
 * byte order, which is fine for in-memory tables.
 */
static inline uint64_t strpool_hash(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
	uint64_t w;

	while (n >= 8) {
		memcpy(&w, b, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		b += 8;
		n -= 8;
	}
	w = 0;
	memcpy(&w, b, n);
	h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	return h;
}

#endif /* PROFSHIM_STRPOOL_H */

/*
 * table.h — the collector's two hash tables.
 *
 *   intern: byte strings (endpoint names, stacks) to dense ids 0, 1, 2...;
 *           the bytes are copied and stay valid until intern_free().
 *   pairmap: a pair of 64-bit keys to a 64-bit value.
 *
 * Open addressing with linear probing, grown at 50% load. Out of memory is
 * reported as -ENOMEM; nothing is lost from the table when it happens.
 */
#ifndef PROFSHIM_TABLE_H
#define PROFSHIM_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct intern {
	uint32_t *slots;     /* id + 1, 0 when empty */
	size_t cap;          /* power of two */
	size_t count;
	struct intern_item {
		uint64_t hash;
		size_t len;
		void *data;
	} *items;
	size_t items_cap;
};

/* Id of the len bytes at data, added when new; negative errno on failure. */
int64_t intern_put(struct intern *t, const void *data, size_t len);

/* Id of the bytes or -1 when absent. */
int64_t intern_find(const struct intern *t, const void *data, size_t len);

/* The bytes of id (NUL-terminated copy) and their length. */
const void *intern_get(const struct intern *t, uint32_t id, size_t *ret_len);

void intern_free(struct intern *t);

struct pairmap {
	struct pairmap_slot {
		uint64_t k1, k2, v;
		int used;
	} *slots;
	size_t cap;
	size_t count;
};

/* Pointer to the value of (k1, k2), inserted as 0 when new; NULL: ENOMEM. */
uint64_t *pairmap_put(struct pairmap *m, uint64_t k1, uint64_t k2);

/* Pointer to the value or NULL when absent. */
uint64_t *pairmap_find(const struct pairmap *m, uint64_t k1, uint64_t k2);

/* Remove (k1, k2) if present. */
void pairmap_del(struct pairmap *m, uint64_t k1, uint64_t k2);

void pairmap_free(struct pairmap *m);

/* 64-bit hash of bytes (FNV-1a folded with a final mix). */
uint64_t table_hash(const void *data, size_t len);

#endif /* PROFSHIM_TABLE_H */

/*
 * table.c — interning table and pair map (see table.h).
 */
#include "util/table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t table_hash(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static uint64_t table_mix(uint64_t a, uint64_t b)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull);

	h ^= h >> 31;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 29;
	return h;
}

static int intern_grow(struct intern *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	uint32_t *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < t->count; i++) {
		size_t j = t->items[i].hash & (cap - 1);

		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = (uint32_t)i + 1;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

static int64_t intern_lookup(const struct intern *t, const void *data,
			     size_t len, uint64_t hash, size_t *ret_slot)
{
	size_t j;

	if (!t->cap)
		return -1;
	for (j = hash & (t->cap - 1); t->slots[j]; j = (j + 1) & (t->cap - 1)) {
		const struct intern_item *it = &t->items[t->slots[j] - 1];

		if (it->hash == hash && it->len == len &&
		    memcmp(it->data, data, len) == 0)
			return t->slots[j] - 1;
	}
	*ret_slot = j;
	return -1;
}

int64_t intern_find(const struct intern *t, const void *data, size_t len)
{
	size_t slot;

	return intern_lookup(t, data, len, table_hash(data, len), &slot);
}

int64_t intern_put(struct intern *t, const void *data, size_t len)
{
	uint64_t hash = table_hash(data, len);
	size_t slot = 0;
	int64_t id = intern_lookup(t, data, len, hash, &slot);
	struct intern_item *it;

	if (id >= 0)
		return id;
	if ((t->count + 1) * 2 > t->cap) {
		if (intern_grow(t) < 0)
			return -ENOMEM;
		(void)intern_lookup(t, data, len, hash, &slot);
	}
	if (t->count == t->items_cap) {
		size_t n = t->items_cap ? t->items_cap * 2 : 64;
		struct intern_item *items = realloc(t->items, n * sizeof(*items));

		if (!items)
			return -ENOMEM;
		t->items = items;
		t->items_cap = n;
	}
	it = &t->items[t->count];
	it->data = malloc(len + 1);
	if (!it->data)
		return -ENOMEM;
	memcpy(it->data, data, len);
	((char *)it->data)[len] = '\0';
	it->len = len;
	it->hash = hash;
	t->slots[slot] = (uint32_t)t->count + 1;
	return (int64_t)t->count++;
}

const void *intern_get(const struct intern *t, uint32_t id, size_t *ret_len)
{
	if (id >= t->count)
		return NULL;
	if (ret_len)
		*ret_len = t->items[id].len;
	return t->items[id].data;
}

void intern_free(struct intern *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->items[i].data);
	free(t->items);
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

static struct pairmap_slot *pairmap_slot(const struct pairmap *m, uint64_t k1,
					 uint64_t k2)
{
	size_t j;

	for (j = table_mix(k1, k2) & (m->cap - 1); m->slots[j].used;
	     j = (j + 1) & (m->cap - 1))
		if (m->slots[j].k1 == k1 && m->slots[j].k2 == k2)
			return &m->slots[j];
	return &m->slots[j];
}

static int pairmap_grow(struct pairmap *m)
{
	struct pairmap old = *m;
	size_t cap = m->cap ? m->cap * 2 : 64;

	m->slots = calloc(cap, sizeof(*m->slots));
	if (!m->slots) {
		*m = old;
		return -ENOMEM;
	}
	m->cap = cap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].used)
			*pairmap_slot(m, old.slots[i].k1, old.slots[i].k2) =
				old.slots[i];
	free(old.slots);
	return 0;
}

uint64_t *pairmap_put(struct pairmap *m, uint64_t k1, uint64_t k2)
{
	struct pairmap_slot *s;

	if ((m->count + 1) * 2 > m->cap && pairmap_grow(m) < 0)
		return NULL;
	s = pairmap_slot(m, k1, k2);
	if (!s->used) {
		s->used = 1;
		s->k1 = k1;
		s->k2 = k2;
		s->v = 0;
		m->count++;
	}
	return &s->v;
}

uint64_t *pairmap_find(const struct pairmap *m, uint64_t k1, uint64_t k2)
{
	struct pairmap_slot *s;

	if (!m->cap)
		return NULL;
	s = pairmap_slot(m, k1, k2);
	return s->used ? &s->v : NULL;
}

/* Deletion with backward shift, so probing needs no tombstones. */
void pairmap_del(struct pairmap *m, uint64_t k1, uint64_t k2)
{
	struct pairmap_slot *s;
	size_t i, j, k, mask = m->cap - 1;

	if (!m->cap)
		return;
	s = pairmap_slot(m, k1, k2);
	if (!s->used)
		return;
	i = (size_t)(s - m->slots);
	s->used = 0;
	m->count--;
	for (j = (i + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
		k = table_mix(m->slots[j].k1, m->slots[j].k2) & mask;
		/* Move j back to i unless its home k lies cyclically in (i, j]. */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			m->slots[i] = m->slots[j];
			m->slots[j].used = 0;
			i = j;
		}
	}
}

void pairmap_free(struct pairmap *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

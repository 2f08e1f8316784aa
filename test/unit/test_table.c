/*
 * test_table.c — unit tests for the collector's hash tables (table.h): the
 * interning table (dense stable ids, binary keys) and the pair map
 * (insertion, lookup, backward-shift deletion, reinsertion).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "util/table.h"


/* ------------------------------------------------------------------------ */
/* intern                                                                   */
/* ------------------------------------------------------------------------ */

#define NKEYS 100000

/*
 * Key i: a few bytes derived from i, with NULs inside. Keys of different i
 * differ (the index is encoded in them), and some keys are prefixes of
 * others only by length.
 */
static size_t make_key(uint32_t i, uint8_t *buf)
{
	size_t len = 0;

	switch (i % 4) {
	case 0: /* text */
		len = (size_t)snprintf((char *)buf, 64, "/api/v1/items/%u", i);
		break;
	case 1: /* binary, NULs everywhere */
		buf[len++] = 0;
		memcpy(buf + len, &i, sizeof(i));
		len += sizeof(i);
		buf[len++] = 0;
		buf[len++] = 0;
		break;
	case 2: /* binary, longer, NUL-separated */
		for (int k = 0; k < 6; k++) {
			buf[len++] = (uint8_t)(i >> (k * 3));
			buf[len++] = 0;
		}
		memcpy(buf + len, &i, sizeof(i));
		len += sizeof(i);
		break;
	default: /* the index as 4 raw bytes plus a run of NULs of i-length */
		memcpy(buf, &i, sizeof(i));
		len = sizeof(i);
		memset(buf + len, 0, i % 29);
		len += i % 29;
		break;
	}
	return len;
}

static void test_intern_many(void)
{
	struct intern t = {0};
	uint8_t key[128];
	int bad = 0;

	for (uint32_t i = 0; i < NKEYS; i++) {
		size_t len = make_key(i, key);
		int64_t id = intern_put(&t, key, len);

		if (id != (int64_t)i) {
			if (bad++ < 5)
				printf("# put key %u -> id %lld\n", i,
				       (long long)id);
		}
		/* Interning the same bytes again gives the same id. */
		if (intern_put(&t, key, len) != id)
			bad++;
		/* Ids stay stable while the table grows: spot-check. */
		if (i && (i & (i - 1)) == 0) {
			for (uint32_t j = 0; j < i; j += 1 + j / 7) {
				size_t l2 = make_key(j, key);

				if (intern_find(&t, key, l2) != (int64_t)j)
					bad++;
			}
		}
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(t.count, NKEYS);

	bad = 0;
	for (uint32_t i = 0; i < NKEYS; i++) {
		size_t len = make_key(i, key), glen = 0;
		const uint8_t *got;

		if (intern_find(&t, key, len) != (int64_t)i)
			bad++;
		if (intern_put(&t, key, len) != (int64_t)i)
			bad++;
		got = intern_get(&t, i, &glen);
		if (!got || glen != len || memcmp(got, key, len) != 0 ||
		    got[len] != '\0')
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(t.count, NKEYS);

	/* Absent keys: other lengths of present keys, unseen values. */
	bad = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		size_t len = make_key(i, key);

		if ((i % 4 == 1 || i % 4 == 2) &&
		    intern_find(&t, key, len - 1) >= 0)
			bad++;
		key[len] = 0x7f;
		if (intern_find(&t, key, len + 1) >= 0)
			bad++;
		len = make_key(NKEYS + i, key);
		if (intern_find(&t, key, len) >= 0)
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK(intern_get(&t, NKEYS, NULL) == NULL);
	CHECK(intern_get(&t, UINT32_MAX, NULL) == NULL);
	intern_free(&t);
	CHECK_EQ(t.count, 0);
}

/* The keys of test_intern_nul_keys() in the order they are put, so the
 * id of each is its number: the empty key, 1 to 64 NUL bytes, then keys
 * that differ only after a NUL or only in length. */
#define NUL_KEYS 69

static const uint8_t zeros[64];

static const void *nul_key(size_t id, size_t *len)
{
	static const struct {
		const char *key;
		size_t len;
	} a_keys[] = {{"a\0b", 3}, {"a\0c", 3}, {"a", 1}, {"a\0", 2}};

	if (id <= 64) {
		*len = id;
		return zeros;
	}
	*len = a_keys[id - 65].len;
	return a_keys[id - 65].key;
}

/* Keys that differ only in length or only after a NUL. */
static void test_intern_nul_keys(void)
{
	struct intern t = {0};
	const uint8_t *p;
	size_t len;

	CHECK_EQ(intern_find(&t, "a", 1), -1);
	CHECK_EQ(intern_get(&t, 0, NULL) == NULL, 1);
	/* The empty key is a key: id 0. */
	for (size_t id = 0; id < NUL_KEYS; id++) {
		const void *k = nul_key(id, &len);

		CHECK_EQ(intern_put(&t, k, len), (int64_t)id);
	}
	for (size_t id = 0; id < NUL_KEYS; id++) {
		const void *k = nul_key(id, &len);

		CHECK_EQ(intern_find(&t, k, len), (int64_t)id);
	}
	CHECK_EQ(intern_find(&t, "a\0d", 3), -1);
	p = intern_get(&t, 66, &len);
	CHECK_EQ(len, 3);
	CHECK(p && memcmp(p, "a\0c", 4) == 0);
	p = intern_get(&t, 0, &len);
	CHECK_EQ(len, 0);
	CHECK(p && p[0] == '\0');
	p = intern_get(&t, 64, &len);
	CHECK_EQ(len, 64);
	CHECK(p && memcmp(p, zeros, 64) == 0);
	intern_free(&t);
	/* A freed table can be used again. */
	CHECK_EQ(intern_put(&t, "x", 1), 0);
	intern_free(&t);
}

/* ------------------------------------------------------------------------ */
/* pairmap                                                                  */
/* ------------------------------------------------------------------------ */

#define NPAIRS 100000

struct pair {
	uint64_t k1, k2;
};

/* Checks every present pair has its value and every absent one is absent. */
static int pairmap_verify(const struct pairmap *m, const struct pair *keys,
			  const char *present, size_t n)
{
	int bad = 0;
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t *v = pairmap_find(m, keys[i].k1, keys[i].k2);

		if (present[i]) {
			count++;
			if (!v || *v != i * 3 + 1) {
				if (bad++ < 5)
					printf("# pair %zu lost\n", i);
			}
		} else if (v) {
			if (bad++ < 5)
				printf("# pair %zu still there\n", i);
		}
	}
	if (count != m->count) {
		printf("# count %zu, expected %zu\n", m->count, count);
		bad++;
	}
	return bad;
}

/* Put every pair of keys[0..n-1] not marked present: each must be new
 * (value 0); it gets the value i * 3 + 1. Returns how many were not new. */
static int pairmap_put_missing(struct pairmap *m, const struct pair *keys,
			       char *present, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t *v;

		if (present[i])
			continue;
		v = pairmap_put(m, keys[i].k1, keys[i].k2);
		if (!v || *v != 0) {
			bad++;
			continue;
		}
		*v = i * 3 + 1;
		present[i] = 1;
	}
	return bad;
}

static void test_pairmap_random(void)
{
	struct pairmap m = {0};
	struct pair *keys = malloc(NPAIRS * sizeof(*keys));
	char *present = calloc(NPAIRS, 1);

	rng_state = 42;
	for (size_t i = 0; i < NPAIRS; i++) {
		/* Small key ranges make collisions of k1 or k2 likely. */
		keys[i].k1 = i % 5 ? rng_next() : rng_next() % 64;
		keys[i].k2 = i % 7 ? rng_next() : i;
		for (size_t j = i; j-- > 0 && j + 64 > i;)
			if (keys[j].k1 == keys[i].k1 && keys[j].k2 == keys[i].k2)
				keys[i].k2 ^= 1ull << 63;
	}
	CHECK(pairmap_find(&m, 1, 2) == NULL);
	pairmap_del(&m, 1, 2); /* empty map: no-op */
	CHECK_EQ(pairmap_put_missing(&m, keys, present, NPAIRS), 0);
	CHECK_EQ(m.count, NPAIRS);
	CHECK_EQ(pairmap_verify(&m, keys, present, NPAIRS), 0);

	/* Putting an existing pair returns its value unchanged. */
	for (size_t i = 0; i < NPAIRS; i += 101) {
		uint64_t *v = pairmap_put(&m, keys[i].k1, keys[i].k2);

		CHECK(v && *v == i * 3 + 1);
	}
	CHECK_EQ(m.count, NPAIRS);

	/* Delete a random half, checking along the way. */
	for (size_t i = 0; i < NPAIRS; i++) {
		if (rng_next() & 1) {
			pairmap_del(&m, keys[i].k1, keys[i].k2);
			present[i] = 0;
			/* Deleting an absent pair is a no-op. */
			pairmap_del(&m, keys[i].k1, keys[i].k2);
		}
		if (i % 20000 == 0)
			CHECK_EQ(pairmap_verify(&m, keys, present, NPAIRS), 0);
	}
	CHECK_EQ(pairmap_verify(&m, keys, present, NPAIRS), 0);
	pairmap_del(&m, 0x1234, 0x5678); /* absent */
	CHECK_EQ(pairmap_verify(&m, keys, present, NPAIRS), 0);

	/* Reinsert the deleted ones: new entries start at 0. */
	CHECK_EQ(pairmap_put_missing(&m, keys, present, NPAIRS), 0);
	CHECK_EQ(m.count, NPAIRS);
	CHECK_EQ(pairmap_verify(&m, keys, present, NPAIRS), 0);

	/* Delete everything, in another order. */
	for (size_t i = NPAIRS; i-- > 0;) {
		pairmap_del(&m, keys[i].k1, keys[i].k2);
		present[i] = 0;
	}
	CHECK_EQ(m.count, 0);
	CHECK_EQ(pairmap_verify(&m, keys, present, NPAIRS), 0);
	pairmap_free(&m);
	CHECK(m.slots == NULL && m.count == 0 && m.cap == 0);
	free(keys);
	free(present);
}

/*
 * Clusters that wrap around the end of the slot array: many keys, small
 * table, deletions in every position of a probe run. Uses a model with
 * only a few live keys at a time so the table stays at 64 slots.
 */
static void test_pairmap_churn(void)
{
	struct pairmap m = {0};
	struct pair keys[31];
	char present[31] = {0};
	int bad = 0;

	rng_state = 5;
	for (int i = 0; i < 31; i++) {
		keys[i].k1 = rng_next() % 8;
		keys[i].k2 = (uint64_t)i;
	}
	for (int round = 0; round < 200000; round++) {
		int i = (int)(rng_next() % 31);

		if (present[i]) {
			pairmap_del(&m, keys[i].k1, keys[i].k2);
			present[i] = 0;
		} else {
			uint64_t *v = pairmap_put(&m, keys[i].k1, keys[i].k2);

			if (!v || *v != 0)
				bad++;
			else
				*v = (uint64_t)i * 3 + 1;
			present[i] = 1;
		}
		if (round % 97 == 0 &&
		    pairmap_verify(&m, keys, present, 31) != 0 && bad++ < 1)
			printf("# after round %d\n", round);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(m.cap, 64);
	CHECK_EQ(pairmap_verify(&m, keys, present, 31), 0);
	pairmap_free(&m);
}

static void test_table_hash(void)
{
	CHECK(table_hash("a", 1) != table_hash("b", 1));
	CHECK(table_hash("a", 1) != table_hash("a\0", 2));
	CHECK(table_hash("", 0) == table_hash("x", 0));
	CHECK(table_hash("abc", 3) == table_hash("abc", 3));
}

int main(void)
{
	RUN(test_intern_many);
	RUN(test_intern_nul_keys);
	RUN(test_pairmap_random);
	RUN(test_pairmap_churn);
	RUN(test_table_hash);
	return check_done();
}

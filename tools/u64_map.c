#include "tools/u64_map.h"

#include <stdlib.h>

/* splitmix64's finalizer: pointers and ids are far from uniform in their low bits. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static size_t find_slot(const struct u64_map *m, uint64_t key)
{
	size_t mask = m->cap - 1, i = mix(key) & mask;
	while (m->slots[i].used && m->slots[i].key != key)
		i = (i + 1) & mask;
	return i;
}

static int grow(struct u64_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct u64_map_entry *old = m->slots;
	size_t old_cap = m->cap;
	struct u64_map_entry *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	m->slots = slots;
	m->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].used)
			m->slots[find_slot(m, old[i].key)] = old[i];
	free(old);
	return 0;
}

int u64_map_put(struct u64_map *m, uint64_t key, uint64_t a, uint64_t b)
{
	/* Keep the load under 3/4 so probe chains stay short. */
	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != 0)
		return -1;
	struct u64_map_entry *e = &m->slots[find_slot(m, key)];
	if (!e->used) {
		e->used = 1;
		e->key = key;
		m->n++;
	}
	e->a = a;
	e->b = b;
	return 0;
}

struct u64_map_entry *u64_map_get(const struct u64_map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	struct u64_map_entry *e = &m->slots[find_slot(m, key)];
	return e->used ? e : NULL;
}

int u64_map_del(struct u64_map *m, uint64_t key)
{
	if (!m->cap)
		return 0;
	size_t mask = m->cap - 1, i = find_slot(m, key);
	if (!m->slots[i].used)
		return 0;
	m->slots[i].used = 0;
	m->n--;
	/* Backward shift: pull later members of the probe chain into the hole unless their
	 * home slot lies cyclically after the hole (then they are already reachable). */
	for (size_t j = (i + 1) & mask; m->slots[j].used; j = (j + 1) & mask) {
		size_t home = mix(m->slots[j].key) & mask;
		int reachable = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (reachable)
			continue;
		m->slots[i] = m->slots[j];
		m->slots[j].used = 0;
		i = j;
	}
	return 1;
}

void u64_map_free(struct u64_map *m)
{
	free(m->slots);
	m->slots = NULL;
	m->cap = m->n = 0;
}

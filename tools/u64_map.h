/* A small open-addressing hash map from u64 keys to two u64 values, used by the trace reader
 * for kernel ids, call sites and live allocations. Linear probing with backward-shift
 * deletion, so frees leave no tombstones behind and the table stays proportional to the
 * number of live keys however many alloc/free pairs a trace holds. */
#ifndef GSA_U64_MAP_H
#define GSA_U64_MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64_map_entry {
	uint64_t key, a, b;
	uint8_t used;
};

struct u64_map {
	struct u64_map_entry *slots;
	size_t cap, n; /* cap is 0 or a power of two */
};

/* Inserts or overwrites. Returns 0, or -1 when out of memory (the map is unchanged). */
int u64_map_put(struct u64_map *m, uint64_t key, uint64_t a, uint64_t b);
/* The entry for key, or NULL; valid until the next put or del. */
struct u64_map_entry *u64_map_get(const struct u64_map *m, uint64_t key);
/* Removes key; returns 1 if it was there, 0 if not. */
int u64_map_del(struct u64_map *m, uint64_t key);
void u64_map_free(struct u64_map *m);

#endif

/* Live device allocations (address, size, call site, device), so that a pointer argument of
 * a launch (a KV cache, say) maps to the allocation that contains it in O(log n).
 * Thread-safe; updated from the allocation wrappers, never on the launch path. */
#ifndef GSA_ALLOC_REGISTRY_H
#define GSA_ALLOC_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gsa_alloc {
	uint64_t ptr, size, callsite;
	int device;
	int api; /* enum gsa_alloc_api */
};

/* False when the registry could not grow (the allocation is then just not tracked). */
bool gsa_allocs_add(const struct gsa_alloc *a);
/* Removes the allocation starting at ptr; false if there was none. */
bool gsa_allocs_remove(uint64_t ptr, struct gsa_alloc *removed);
/* The allocation containing addr (ptr <= addr < ptr + size); false if none. */
bool gsa_allocs_find(uint64_t addr, struct gsa_alloc *out);
size_t gsa_allocs_count(void);

#endif

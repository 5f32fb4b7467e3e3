/* Recording allocations: shared by the driver wrappers (memory.c) and the runtime wrappers
 * (runtime.c), which record only what the driver layer did not already see. */
#ifndef GSA_MEMORY_H
#define GSA_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "preload/alloc_registry.h"

/* Set by the driver's cuMemGetInfo wrapper when it adjusted the numbers, so that the
 * runtime's cudaMemGetInfo wrapper, which usually reaches it, adjusts only otherwise. */
extern __thread bool gsa_info_adjusted;

/* Reports the library's future buffers as used (see gsa_sparse_reserve). */
void gsa_memory_adjust_info(size_t *free_bytes, size_t *total_bytes);

void gsa_memory_record_alloc(uint64_t ptr, uint64_t size, int api, uint64_t stream);
/* Removes ptr from the registry; true if it was a known allocation. */
bool gsa_memory_forget(uint64_t ptr, struct gsa_alloc *removed);

#endif

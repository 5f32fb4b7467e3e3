/* Recording allocations: shared by the driver wrappers (memory.c) and the runtime wrappers
 * (runtime.c), which record only what the driver layer did not already see. */
#ifndef GSA_MEMORY_H
#define GSA_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "preload/alloc_registry.h"

void gsa_memory_record_alloc(uint64_t ptr, uint64_t size, int api, uint64_t stream);
/* Removes ptr from the registry; true if it was a known allocation. */
bool gsa_memory_forget(uint64_t ptr, struct gsa_alloc *removed);

#endif

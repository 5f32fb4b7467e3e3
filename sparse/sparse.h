/* The sparse layer's entry points for the hooks: block selection for one attention launch,
 * on the launch's own stream, into shadow buffers the library owns. */
#ifndef GSA_SPARSE_H
#define GSA_SPARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "hooks/adapter.h"

/* Enqueues selection for this launch and fills rw with the shadow block table and lengths.
 * False means the launch runs unmodified (reason logged once and traced). */
bool gsa_sparse_select(const struct gsa_launch *l, struct gsa_attention *a, struct gsa_rewrite *rw);

/* For a kernel that follows an attention launch and reads the same sequence lengths: the
 * shadow lengths of the preceding launch on those lengths, if it was rewritten. */
bool gsa_sparse_follow(const struct gsa_launch *l, const struct gsa_attention *a,
		       struct gsa_rewrite *rw);

/* The adapter could not encode a launch whose selection was enqueued: it runs dense, and
 * kernels that follow it must not take its shadow lengths. */
void gsa_sparse_encode_failed(const struct gsa_launch *l);

/* Device memory [ptr, ptr + size) was freed (called from the free wrappers). */
void gsa_sparse_forget_memory(uint64_t ptr, uint64_t size);

/* Bytes to report as used by cuMemGetInfo/cudaMemGetInfo while the engine sizes its KV
 * cache, so that the library's own buffers (allocated later) still fit. */
uint64_t gsa_sparse_reserve(uint64_t total_bytes);

#endif

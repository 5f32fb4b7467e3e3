/* A plain C reference of the selection the GPU kernels perform (gsa_kernels.cu), on host
 * memory: same budget (budget.h), same representations (mean of each block's keys rounded to
 * fp8 e4m3, or their min/max in the KV element type), same scores (policy mean: against the
 * group-mean query scaled by a power of two and rounded to fp16), same tie rule (the lower
 * block index wins). Sums run in another order than on the GPU, so near-ties can differ.
 * Used by the CPU tests, and by the GPU suite through build/libgsa_select_ref.so. */
#ifndef GSA_SELECT_REF_H
#define GSA_SELECT_REF_H

#include "sparse/select_args.h"

/* Reads the host arrays named in a (query, key_cache, block_table, seq_lens, query_start)
 * and writes a->shadow_table and a->shadow_lens (host arrays too); a->repr, fingerprints
 * and scores are not used. Returns 0, or -1 on an argument it cannot handle. */
int gsa_select_ref(const struct gsa_select_args *a);

#endif

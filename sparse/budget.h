/* The per-sequence budget, shared by the selection kernel and the host-side reference
 * (select_ref.c), so both decide identically:
 *   n = ceil(len / block_size) blocks;
 *   dense when len < min_tokens, when the sequence has more than one query token, or when
 *   keep >= n, where keep = clamp(ceil(ratio * n), min_blocks, max_blocks (0 = none)),
 *   raised to sink + local if below;
 *   otherwise the first `sink` and last `local` blocks plus the best keep - sink - local
 *   middle blocks are kept. */
#ifndef GSA_BUDGET_H
#define GSA_BUDGET_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __CUDACC__
#define GSA_HD __host__ __device__
#else
#define GSA_HD
#endif

struct gsa_budget {
	int32_t len, n, keep; /* tokens, blocks, blocks kept (n when dense) */
	bool sparse;
};

static inline GSA_HD struct gsa_budget gsa_plan(int32_t len, int32_t query_len, int32_t block_size,
						double ratio, int32_t sink, int32_t local,
						int32_t min_blocks, int32_t max_blocks,
						int32_t min_tokens, int64_t max_blocks_in_row)
{
	struct gsa_budget p;
	p.len = len < 0 ? 0 : len;
	p.n = (int32_t)(((int64_t)p.len + block_size - 1) / block_size);
	p.keep = p.n;
	p.sparse = false;
	if (query_len != 1 || p.len < min_tokens || p.n > max_blocks_in_row)
		return p;
	int64_t keep = (int64_t)ceil(ratio * (double)p.n);
	if (keep < min_blocks)
		keep = min_blocks;
	if (max_blocks > 0 && keep > max_blocks)
		keep = max_blocks;
	if (keep < (int64_t)sink + local)
		keep = (int64_t)sink + local;
	if (keep >= p.n)
		return p;
	p.keep = (int32_t)keep;
	p.sparse = true;
	return p;
}

/* Tokens the rewritten launch sees: whole kept blocks, the last one partial as it was. */
static inline GSA_HD int32_t gsa_shadow_len(struct gsa_budget p, int32_t block_size)
{
	return p.sparse ? (p.keep - 1) * block_size + (p.len - (p.n - 1) * block_size) : p.len;
}

/* An upper bound of every shadow length in a launch whose sequences are all at most
 * max_len tokens long and each have at most one query token, for kernels that size their
 * work by the host's maximum length (FlashAttention-2 splits the keys of every sequence
 * into num_splits ranges of ceil(max_len / block_n / num_splits) blocks: with the dense
 * maximum, a sparse sequence's kept blocks would fill only the first few ranges).
 * Dense sequences keep their length: those shorter than min_tokens, and those whose
 * budget covers all their blocks, which needs n <= max(min_blocks, sink + local,
 * 1 / (1 - ratio)). Sparse ones keep keep(n) blocks at most, nondecreasing in n. Returns
 * max_len when nothing smaller is safe (ratio >= 1, or max_len itself stays dense). */
static inline int64_t gsa_shadow_len_bound(int64_t max_len, int32_t block_size, double ratio,
					   int32_t sink, int32_t local, int32_t min_blocks,
					   int32_t max_blocks, int32_t min_tokens, int64_t max_blocks_in_row)
{
	if (max_len <= 0 || block_size <= 0 || !(ratio < 1.0) || max_len > INT32_MAX)
		return max_len;
	struct gsa_budget p = gsa_plan((int32_t)max_len, 1, block_size, ratio, sink, local,
				       min_blocks, max_blocks, min_tokens, max_blocks_in_row);
	if (!p.sparse)
		return max_len;
	int64_t bound = (int64_t)p.keep * block_size;
	int64_t dense_blocks = (int64_t)ceil(1.0 / (1.0 - ratio));
	if (dense_blocks < min_blocks)
		dense_blocks = min_blocks;
	if (dense_blocks < (int64_t)sink + local)
		dense_blocks = (int64_t)sink + local;
	if (dense_blocks * block_size > bound)
		bound = dense_blocks * block_size;
	if ((int64_t)min_tokens - 1 > bound)
		bound = (int64_t)min_tokens - 1;
	return bound < max_len ? bound : max_len;
}

#endif

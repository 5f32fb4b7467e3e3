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

#endif

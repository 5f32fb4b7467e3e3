// What both halves of the selection share (see gsa_kernels.cu).
#ifndef GSA_KERNEL_COMMON_CUH
#define GSA_KERNEL_COMMON_CUH

#include <stdint.h>

#include "sparse/budget.h"
#include "sparse/select_args.h"

namespace {

// A sequence's length, query start and query length, loaded apart from their use so that
// a caller can issue other independent loads before it waits for them.
struct seq_shape {
	int32_t len, start, qlen;
};

__device__ __forceinline__ seq_shape load_shape(const gsa_select_args &a, int s)
{
	seq_shape r;
	r.len = a.seq_lens[s];
	r.start = a.query_start ? a.query_start[s] : s;
	r.qlen = a.query_start ? a.query_start[s + 1] - r.start : 1;
	return r;
}

// The scoring grid is (num_seqs, chunks): the hardware hands out CTAs in the order of their
// linear index, x fastest, so every sequence's first chunks start before any sequence's
// later ones. Engines size the block table for the model's maximum length, and the chunks
// past a sequence's blocks leave at once; ordered by sequence first, those of the first
// sequences took multiprocessors while the blocks of the last ones waited for a wave.
__device__ __forceinline__ int grid_seq()
{
	return blockIdx.x;
}

__device__ __forceinline__ int grid_chunk()
{
	return blockIdx.y;
}

// Middle blocks each warp of a scoring CTA takes (the host's gsa_warp_blocks), and so the
// logical blocks of a chunk, one CTA's share of a row.
__device__ __forceinline__ int warp_blocks(const gsa_select_args &a)
{
	return a.warp_blocks >= 1 && a.warp_blocks <= GSA_WARP_BLOCKS ? a.warp_blocks : GSA_WARP_BLOCKS;
}

__device__ __forceinline__ int chunk_blocks(const gsa_select_args &a)
{
	return GSA_SCORE_WARPS * warp_blocks(a);
}

__device__ __forceinline__ gsa_budget plan_shape(const gsa_select_args &a, const seq_shape &sh)
{
	return gsa_plan(sh.len, sh.qlen, a.block_size, a.ratio, a.sink_blocks, a.local_blocks,
			a.min_blocks, a.max_blocks, a.min_tokens, a.bt_stride);
}

__device__ gsa_budget plan_sequence(const gsa_select_args &a, int s)
{
	return plan_shape(a, load_shape(a, s));
}

// The GPU's nanosecond clock (the same for every SM), for the selection's duration.
__device__ __forceinline__ unsigned long long gpu_clock_ns()
{
	unsigned long long t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
	return t;
}

}  // namespace

// Instrumented builds only (-DGSA_STAMPS, tests/bench/select_split.cu --stamps): thread 0
// of each CTA records the GPU clock at numbered points of the fused kernel: 0 entry, 1
// length known, 2 fingerprint arrived, 3 scores computed, 4 group-mean query ready, 5
// arrival counted; in the selecting CTA 6 search started, 7 threshold found, 8 first
// kept entries stored, 9 end; inside the threshold search 10 the keys arrived, 11 their
// extremes and moments reduced, 12-14 after each of the first three counting steps, 15
// the last keys ranked.
#ifdef GSA_STAMPS
#define GSA_STAMP_POINTS 16
__device__ unsigned long long gsa_stamps[64 * 256 * GSA_STAMP_POINTS];
#define GSA_STAMP(i)                                                                           \
	do {                                                                                   \
		if (threadIdx.x == 0 && blockIdx.x < 64 && blockIdx.y < 256)                        \
			gsa_stamps[((size_t)blockIdx.x * 256 + blockIdx.y) * GSA_STAMP_POINTS + (i)] = \
				gpu_clock_ns();                                                \
	} while (0)
/* The same once x (a 64-bit value) has arrived. */
#define GSA_STAMP_AFTER(i, x)                          \
	do {                                           \
		asm volatile("" ::"l"((uint64_t)(x))); \
		GSA_STAMP(i);                          \
	} while (0)
#else
#define GSA_STAMP(i) \
	do {         \
	} while (0)
#define GSA_STAMP_AFTER(i, x) \
	do {                  \
	} while (0)
#endif

#endif

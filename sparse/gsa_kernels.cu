// GSA block selection on the GPU: one kernel launched on the attention launch's own stream
// (so it is captured into CUDA graphs with the attention it serves), grid
// (num_seqs, ceil(bt_stride / chunk)) (kernel_common.cuh's grid_seq and grid_chunk; a chunk
// is GSA_SCORE_WARPS x a.warp_blocks logical blocks), GSA_SCORE_THREADS threads:
//
//   scoring (score_chunk.cuh): each CTA takes a chunk of one sequence's logical blocks. For
//       every full middle block it checks the block's stored representation against a
//       fingerprint of the block's current keys and recomputes it when they differ (a new
//       block, or a freed block reused by another sequence), then scores it against the
//       GQA-group mean query.
//   selection (select_row.cuh): the last of a sequence's CTAs to finish selects its best
//       middle blocks (ties to the lower index) and writes the shadow block-table row (kept
//       blocks in their original order: sinks, selected, local window) and shadow length.
//
// One kernel rather than a scoring kernel and a selection kernel: at decode batch sizes
// the selection is a short chain of CTA-wide steps per sequence, and as a second kernel it
// paid a launch, its own reads of the lengths and plan, and the wait for the slowest
// scoring CTA of any sequence; here each sequence's selection starts as soon as its own
// scores are done, while other sequences are still being scored.
//
// Policy mean stores each block's mean key as fp8 e4m3 (round to nearest even, saturated to
// +-448): scores only rank blocks, and at 16-token blocks the scoring kernel's time is
// mostly reading representations (bf16 means were 1/32 of the KV cache), so half the bytes
// is most of its time; attention-mass recall on the GPU suite's inputs did not change.
// Its scores are tensor-core products (mma m16n8k16, fp16 in, fp32 sums) of those means
// with the group-mean query scaled by a power of two and rounded to fp16 (score_chunk.cuh):
// a quarter of the instructions of an FMA loop, the same ranking up to rounding.
// Quest keeps its bounds in the KV element type (exact: a min or max of keys is a key).
//
// Sequences that stay dense (too short, query length != 1, budget >= blocks) get an exact
// copy of their row and length, so a launch mixing prefill and decode stays exact.
//
// gsa_score and gsa_select run the two halves as separate kernels, for the tests and the
// benchmark that time or check one half alone (tests/gpu/select_topk.cu,
// tests/bench/select_split.cu); they record no statistics, and are built only into the
// fatbin for those (GSA_SPLIT_KERNELS: build/sparse/gsa_kernels_split.fatbin), not into the
// library's.
#include <stdint.h>

#include "preload/config.h"
#include "sparse/budget.h"
#include "sparse/kernel_common.cuh"
#include "sparse/score_chunk.cuh"
#include "sparse/select_args.h"
#include "sparse/select_row.cuh"
#include "sparse/stats_ring.h"

// CTAs of sequence s that take part: for a sparse sequence those whose chunk starts before
// the local window (the first one even when it holds only sinks), else the first alone.
__device__ __forceinline__ int participants(const gsa_select_args &a, const gsa_budget &p)
{
	if (!p.sparse)
		return 1;
	const int chunk = chunk_blocks(a);
	return (p.n - a.local_blocks + chunk - 1) / chunk; /* >= 1 middle block */
}

// atomicAdd(p, 1) with acquire-release semantics at GPU scope; returns the old value.
__device__ __forceinline__ unsigned arrive_acq_rel(unsigned *p)
{
	unsigned old;
	asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(p) : "memory");
	return old;
}

extern "C" __global__ void __launch_bounds__(GSA_SCORE_THREADS)
gsa_score_select(const gsa_select_args a)
{
	extern __shared__ float qbar[];  // [num_kv_heads * head_size]
	__shared__ select_shared sh;
	__shared__ bool last;
	const int s = grid_seq();
	GSA_STAMP(0);
	const seq_shape shape = load_shape(a, s);
	chunk_pre pre;
	load_chunk_pre(a, s, shape, pre); /* in flight with the length; the rest once it scores */
	const gsa_budget p = plan_shape(a, shape);
	GSA_STAMP(1);
	const int parts = participants(a, p);
	if (grid_chunk() >= parts)
		return;
	load_block_words(a, p, pre);
	if (a.stats_dev && grid_chunk() == 0 && threadIdx.x == 0)
		stats_started(a);
	score_chunk(a, s, shape, p, qbar, pre);
	if (parts == 1) {
		__syncthreads(); /* the CTA's own scores, written by all its warps */
	} else {
		// One thread counts the CTA's arrival, after the barrier that orders the other
		// threads' score stores before it: its acquire-release add publishes them all (a
		// release is cumulative over what the barrier ordered before it, as in cooperative
		// groups' grid barrier) and, in the last CTA, makes the other CTAs' scores visible
		// to the loads after the second barrier. A fence in every thread on each side cost
		// two full waits for the memory system.
		__syncthreads();
		if (threadIdx.x == 0) {
			last = arrive_acq_rel(&a.arrivals[s]) == (unsigned)parts - 1;
			if (last)
				a.arrivals[s] = 0; /* for the next launch (same stream: after this one) */
		}
		__syncthreads();
		GSA_STAMP(5);
		if (!last)
			return;
	}
	select_sequence(a, s, p, sh);
	GSA_STAMP(9);
}

#ifdef GSA_SPLIT_KERNELS
extern "C" __global__ void __launch_bounds__(GSA_SCORE_THREADS)
gsa_score(const gsa_select_args a)
{
	extern __shared__ float qbar[];
	const int s = grid_seq();
	const seq_shape shape = load_shape(a, s);
	chunk_pre pre;
	load_chunk_pre(a, s, shape, pre);
	const gsa_budget p = plan_shape(a, shape);
	load_block_words(a, p, pre);
	score_chunk(a, s, shape, p, qbar, pre);
}

extern "C" __global__ void __launch_bounds__(GSA_SELECT_THREADS)
gsa_select(gsa_select_args a)
{
	__shared__ select_shared sh;
	a.stats_dev = NULL, a.stats_host = NULL;
	const int s = blockIdx.x;
	select_sequence(a, s, plan_sequence(a, s), sh);
}
#endif

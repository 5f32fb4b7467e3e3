// The selection half (see gsa_kernels.cu): a sequence's shadow block-table row from its
// blocks' scores - sinks, the best middle blocks (cta_topk.cuh), the local window, in their
// original order - and the statistics the trace reads. Included once, by gsa_kernels.cu.
#ifndef GSA_SELECT_ROW_CUH
#define GSA_SELECT_ROW_CUH

#include <stdint.h>

#include "sparse/budget.h"
#include "sparse/cta_topk.cuh"
#include "sparse/kernel_common.cuh"
#include "sparse/select_args.h"
#include "sparse/stats_ring.h"

// Statistics of one launch, in the ring slot of its number n = stats_dev->next (stable
// for the whole launch: launches on a stream run one after another, and only the end of
// a launch advances it). Each sequence's selecting CTA stores its pair; the last one
// publishes the slot, clears the slot's counters for its next use and advances next.
// start_ns holds the bitwise complement of the earliest start (so that zeroed memory means
// none yet, under atomicMax).
__device__ void record_stats(const gsa_select_args &a, int s, const gsa_budget &p)
{
	const unsigned long long n = *(volatile unsigned long long *)&a.stats_dev->next;
	const unsigned r = (unsigned)(n % GSA_RING_SLOTS);
	gsa_stats_slot *slot = &a.stats_host->slots[r];
	if (s < GSA_RING_SEQS) {
		slot->kept_total[s][0] = (uint32_t)p.keep;
		slot->kept_total[s][1] = (uint32_t)p.n;
	}
	__threadfence_system();
	if (atomicAdd(&a.stats_dev->done[r], 1u) == (unsigned)a.num_seqs - 1) {
		slot->layer = a.layer;
		slot->kernel_id = a.kernel_id;
		slot->num_seqs = (uint32_t)a.num_seqs;
		unsigned long long t0 = ~*(volatile unsigned long long *)&a.stats_dev->start_ns[r];
		slot->gpu_start_ns = t0;
		slot->select_ns = gpu_clock_ns() - t0;
		__threadfence_system();
		*(volatile uint64_t *)&slot->seq = n + 1;
		a.stats_dev->start_ns[r] = 0;
		a.stats_dev->done[r] = 0;
		__threadfence();
		*(volatile unsigned long long *)&a.stats_dev->next = n + 1;
	}
}

// At the start of a launch (one CTA per sequence): the slot is being rewritten, and when.
__device__ void stats_started(const gsa_select_args &a)
{
	const unsigned long long n = *(volatile unsigned long long *)&a.stats_dev->next;
	const unsigned r = (unsigned)(n % GSA_RING_SLOTS);
	*(volatile uint64_t *)&a.stats_host->slots[r].seq = 0;
	atomicMax(&a.stats_dev->start_ns[r], ~gpu_clock_ns());
}

// After the sequence's selection: publish its bitmap (if recorded), then its statistics.
__device__ void finish_records(const gsa_select_args &a, int s, const gsa_budget &p,
			       uint32_t *bitmap, unsigned long long launch)
{
	if (!a.stats_dev)
		return;
	__syncthreads();
	if (threadIdx.x != 0)
		return;
	if (bitmap) {
		gsa_blocks_slot *slot = &a.stats_host->blocks[launch % GSA_BLOCK_SLOTS][s];
		slot->layer = a.layer;
		slot->total = (uint32_t)p.n;
		slot->kept = (uint32_t)p.keep;
		slot->sink = p.sparse ? (uint32_t)a.sink_blocks : 0u;
		slot->local = p.sparse ? (uint32_t)a.local_blocks : 0u;
		slot->bits = p.n < GSA_BLOCK_WORDS * 32 ? (uint32_t)p.n : GSA_BLOCK_WORDS * 32u;
		__threadfence_system();
		*(volatile uint64_t *)&slot->seq = launch + 1;
	}
	record_stats(a, s, p);
}

namespace {

// Scratch of the selection kernel (static shared memory).
struct select_shared {
	gsa_topk::scratch topk;
	uint32_t bits[GSA_BLOCK_WORDS]; /* kept-block bitmap, when recorded */
};

__device__ __forceinline__ void mark_kept(select_shared &sh, uint32_t *bitmap, int b)
{
	if (bitmap && b < GSA_BLOCK_WORDS * 32)
		atomicOr(&sh.bits[b / 32], 1u << (b % 32));
}

// The middle candidates [lo, lo + m) of a sparse row: the best `want` of them written to
// shadow[lo ...] in their original order. K: candidates per thread held in registers
// (0: re-read from the scores on every step, for rows longer than 32 per thread).
// sides(): called once the loads of the search are issued (the caller's stores of the
// sink and window entries, whose loads it issued before, then wait alongside them).
template <int K, typename Sides>
__device__ void select_middle(select_shared &sh, const float *scores, const int32_t *table,
			      int32_t *shadow, uint32_t *bitmap, int lo, int m, int want, Sides sides)
{
	const int per = (m + (int)blockDim.x - 1) / (int)blockDim.x;
	const int first = (int)threadIdx.x * per;
	const int count = max(0, min(per, m - first));
	gsa_topk::run_keys<K> r;
	r.load(scores + lo + first, count);
	const float ref = __ldcg(scores + lo); /* the same for every thread: threshold()'s origin */
	// The run's table entries too, in flight during the search: loaded where a candidate
	// turns out kept, they would be a round trip to memory at the very end. (Up to
	// sixteen; longer runs load those of a group's kept candidates together, once the
	// group is decided, before its stores.)
	constexpr int E = K <= 16 ? K : 0;
	int32_t entry[E > 0 ? E : 1];
#pragma unroll
	for (int j = 0; j < E; j++)
		entry[j] = j < count ? table[lo + first + j] : 0;
	sides();
	if (want <= 0)
		return;
	GSA_STAMP(6);
	constexpr int G = gsa_topk::run_keys<K>::GROUP;
	auto keep = [&](int j0, uint32_t mask, int rank) {
		GSA_STAMP(8);
		// The group's kept entries: all loaded before the first store.
		int32_t e[G];
#pragma unroll
		for (int i = 0; i < G; i++) {
			if constexpr (E > 0)
				e[i] = entry[i];
			else
				e[i] = mask >> i & 1 ? __ldg(table + lo + first + j0 + i) : 0;
		}
#pragma unroll
		for (int i = 0; i < G; i++) {
			if (mask >> i & 1) {
				shadow[lo + rank++] = e[i];
				mark_kept(sh, bitmap, lo + first + j0 + i);
			}
		}
	};
	if constexpr (K == 1) {
		if (m <= gsa_topk::RANK_MAX) {
			gsa_topk::rank_direct(sh.topk, r.k[0], m, want, keep);
			return;
		}
	}
	int parity = 0;
	const uint32_t thr = gsa_topk::threshold(sh.topk, parity, r, want, m, ref);
	GSA_STAMP(7);
	gsa_topk::emit(sh.topk, r, thr, want, keep);
}


// One CTA: sequence s's shadow row and length from its scores (a.scores), and its
// statistics when tracing. Every thread of the CTA calls it.
__device__ void select_sequence(const gsa_select_args &a, int s, const gsa_budget &p, select_shared &sh)
{
	const int32_t *table = a.block_table + (int64_t)s * a.bt_stride;
	int32_t *shadow = a.shadow_table + (int64_t)s * a.bt_stride;
	// Kept-block bitmap for the trace, when this sequence's is recorded.
	uint32_t *bitmap = NULL;
	unsigned long long launch = 0;
	if (a.stats_dev && a.record_blocks && s < GSA_BLOCK_SEQS) {
		launch = *(volatile unsigned long long *)&a.stats_dev->next;
		bitmap = a.stats_host->blocks[launch % GSA_BLOCK_SLOTS][s].words;
	}
	if (!p.sparse) {
		for (int b = threadIdx.x; b < p.n && b < a.bt_stride; b += blockDim.x)
			shadow[b] = table[b];
		for (int w = threadIdx.x; bitmap && w < GSA_BLOCK_WORDS && w * 32 < p.n; w += blockDim.x)
			bitmap[w] = p.n - w * 32 >= 32 ? 0xffffffffu : (1u << (p.n - w * 32)) - 1;
		if (threadIdx.x == 0)
			a.shadow_lens[s] = p.len;
		finish_records(a, s, p, bitmap, launch);
		return;
	}

	const float *scores = a.scores + (int64_t)s * a.bt_stride;
	const int lo = a.sink_blocks, hi = p.n - a.local_blocks;  // middle candidates [lo, hi)
	const int m = hi - lo, want = p.keep - a.sink_blocks - a.local_blocks;
	const int T = blockDim.x, tid = threadIdx.x;
	if (bitmap) {
		for (int w = tid; w < GSA_BLOCK_WORDS; w += T)
			sh.bits[w] = 0;
		__syncthreads();
	}
	// The sinks and the local window ("sides", kept whatever the scores) and the length:
	// this thread's first side entry is loaded now and stored once the search's loads are
	// issued, so that the two round trips overlap instead of adding up (further side
	// entries, when there are more than threads, are copied then too).
	const int sides_n = lo + (p.n - hi);
	const int my_side = tid < lo ? tid : hi + (tid - lo); /* block of side entry tid */
	const int32_t side = tid < sides_n ? __ldg(table + my_side) : 0;
	auto sides = [&]() {
		for (int i = tid; i < sides_n; i += T) {
			const int b = i < lo ? i : hi + (i - lo);
			shadow[b < lo ? b : lo + want + (b - hi)] = i == tid ? side : __ldg(table + b);
			mark_kept(sh, bitmap, b);
		}
		if (tid == 0)
			a.shadow_lens[s] = gsa_shadow_len(p, a.block_size);
	};
	const int per = (m + T - 1) / T;
	if (per <= 1)
		select_middle<1>(sh, scores, table, shadow, bitmap, lo, m, want, sides);
	else if (per <= 2)
		select_middle<2>(sh, scores, table, shadow, bitmap, lo, m, want, sides);
	else if (per <= 4)
		select_middle<4>(sh, scores, table, shadow, bitmap, lo, m, want, sides);
	else if (per <= 8)
		select_middle<8>(sh, scores, table, shadow, bitmap, lo, m, want, sides);
	else if (per <= 16)
		select_middle<16>(sh, scores, table, shadow, bitmap, lo, m, want, sides);
	else if (per <= 32)
		select_middle<32>(sh, scores, table, shadow, bitmap, lo, m, want, sides);
	else
		select_middle<0>(sh, scores, table, shadow, bitmap, lo, m, want, sides);

	if (bitmap) {
		__syncthreads();
		for (int w = tid; w < GSA_BLOCK_WORDS && w * 32 < p.n; w += T)
			bitmap[w] = sh.bits[w];
	}
	finish_records(a, s, p, bitmap, launch);
}
}  // namespace

#endif

// GSA block selection on the GPU, in two kernels launched on the attention launch's own
// stream (so it is captured into CUDA graphs with the attention it serves):
//
//   gsa_score:  grid (ceil(bt_stride / CHUNK), num_seqs). Each CTA takes a chunk of one
//               sequence's logical blocks. For every full middle block it checks the block's
//               stored representation against a fingerprint of the block's current keys and
//               recomputes it when they differ (a new block, or a freed block reused by
//               another sequence), then scores it against the GQA-group mean query.
//   gsa_select: grid (num_seqs). Radix-selects the best middle blocks of a sequence (ties to
//               the lower index), and writes the shadow block-table row (kept blocks in their
//               original order: sinks, selected, local window) and the shadow length.
//
// Policy mean stores each block's mean key as fp8 e4m3 (round to nearest even, saturated to
// +-448): scores only rank blocks, and at 16-token blocks the scoring kernel's time is
// mostly reading representations (bf16 means were 1/32 of the KV cache), so half the bytes
// is most of its time; attention-mass recall on the GPU suite's inputs did not change.
// Quest keeps its bounds in the KV element type (exact: a min or max of keys is a key).
//
// Sequences that stay dense (too short, query length != 1, budget >= blocks) get an exact
// copy of their row and length, so a launch mixing prefill and decode stays exact.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>

#include "preload/config.h"
#include "sparse/budget.h"
#include "sparse/select_args.h"
#include "sparse/stats_ring.h"

namespace {

__device__ gsa_budget plan_sequence(const gsa_select_args &a, int s)
{
	int qlen = a.query_start ? a.query_start[s + 1] - a.query_start[s] : 1;
	return gsa_plan(a.seq_lens[s], qlen, a.block_size, a.ratio, a.sink_blocks, a.local_blocks,
			a.min_blocks, a.max_blocks, a.min_tokens, a.bt_stride);
}

// Offset of channel c (head c / head_size, element c % head_size) within a token's keys.
__device__ __forceinline__ int64_t chan(const gsa_select_args &a, int c)
{
	return (int64_t)(c / a.head_size) * a.k_stride_head + c % a.head_size;
}

__device__ __forceinline__ float to_f32(uint16_t v, int dtype)
{
	if (dtype == GSA_KV_FP16)
		return __half2float(__ushort_as_half(v));
	return __bfloat162float(__ushort_as_bfloat16(v));
}

__device__ __forceinline__ uint16_t from_f32(float f, int dtype)
{
	if (dtype == GSA_KV_FP16)
		return __half_as_ushort(__float2half_rn(f));
	return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

// The GPU's nanosecond clock (the same for every SM), for the selection's duration.
__device__ __forceinline__ unsigned long long gpu_clock_ns()
{
	unsigned long long t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
	return t;
}

__device__ __forceinline__ uint64_t mix64(uint64_t h, uint64_t v)
{
	h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
	h *= 0xBF58476D1CE4E5B9ull;
	return h ^ (h >> 31);
}

// Fingerprint of a full block's keys: the first 16 bytes of its first token and the last 16
// bytes of its last token. A block refilled with other content differs in its last token
// (keys depend on every earlier token); identical content keeps a valid representation.
// Loaded and hashed apart, so that the loads overlap the group-mean query's.
struct fp_words {
	uint4 first, last;
};

__device__ __forceinline__ fp_words load_fingerprint(const gsa_select_args &a, int64_t phys)
{
	const uint16_t *k = (const uint16_t *)a.key_cache + phys * a.k_stride_block;
	int64_t row = (int64_t)a.num_kv_heads * a.head_size;
	fp_words w;
	w.first = *(const uint4 *)k;
	w.last = *(const uint4 *)(k + (int64_t)(a.block_size - 1) * a.k_stride_token + chan(a, row - 8));
	return w;
}

__device__ __forceinline__ uint64_t hash_fingerprint(const fp_words &w)
{
	uint64_t h = 0x243F6A8885A308D3ull;
	h = mix64(h, ((uint64_t)w.first.y << 32) | w.first.x);
	h = mix64(h, ((uint64_t)w.first.w << 32) | w.first.z);
	h = mix64(h, ((uint64_t)w.last.y << 32) | w.last.x);
	h = mix64(h, ((uint64_t)w.last.w << 32) | w.last.z);
	return h ? h : 1;
}

// Bytes of one block's representation: fp8 rows are padded to 16 bytes so that every row
// starts 16-byte aligned for the scoring loads.
__device__ __forceinline__ int64_t repr_stride(const gsa_select_args &a)
{
	int row = a.num_kv_heads * a.head_size;
	return a.policy == GSA_POLICY_QUEST ? (int64_t)row * 4 : (int64_t)((row + 15) & ~15);
}

// One warp recomputes one block's representation: mean (or min and max) over its tokens of
// every (head, channel), eight channels per lane per step.
__device__ void refresh_block(const gsa_select_args &a, int64_t phys, int lane)
{
	const uint16_t *k = (const uint16_t *)a.key_cache + phys * a.k_stride_block;
	int row = a.num_kv_heads * a.head_size;
	uint8_t *base = (uint8_t *)a.repr + phys * repr_stride(a);
	for (int c = lane * 8; c < row; c += 32 * 8) {
		float acc[8], lo[8], hi[8];
		for (int i = 0; i < 8; i++)
			acc[i] = 0.f, lo[i] = 3.0e38f, hi[i] = -3.0e38f;
		for (int t = 0; t < a.block_size; t++) {
			uint4 v = *(const uint4 *)(k + (int64_t)t * a.k_stride_token + chan(a, c));
			const uint16_t *e = (const uint16_t *)&v;
			for (int i = 0; i < 8; i++) {
				float f = to_f32(e[i], a.dtype);
				acc[i] += f;
				lo[i] = fminf(lo[i], f);
				hi[i] = fmaxf(hi[i], f);
			}
		}
		if (a.policy == GSA_POLICY_QUEST) {
			uint16_t r[8], r2[8];
			uint16_t *out = (uint16_t *)base;
			for (int i = 0; i < 8; i++)
				r[i] = from_f32(lo[i], a.dtype), r2[i] = from_f32(hi[i], a.dtype);
			*(uint4 *)(out + c) = *(const uint4 *)r;
			*(uint4 *)(out + row + c) = *(const uint4 *)r2;
		} else {
			float inv = 1.f / (float)a.block_size;
			__nv_fp8x2_storage_t r[4];
			for (int i = 0; i < 4; i++)
				r[i] = __nv_cvt_float2_to_fp8x2(make_float2(acc[2 * i] * inv, acc[2 * i + 1] * inv),
								__NV_SATFINITE, __NV_E4M3);
			*(uint2 *)(base + c) = *(const uint2 *)r;
		}
	}
}

// Sum over lanes; every lane gets every block's total.
__device__ __forceinline__ void warp_totals(const float *acc, float *score)
{
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
		float t = acc[i];
		for (int o = 16; o > 0; o >>= 1)
			t += __shfl_xor_sync(0xffffffffu, t, o);
		score[i] = t;
	}
}

// Scores GSA_WARP_BLOCKS blocks at once (a warp), their loads in flight together; a block
// with phys < 0 scores nothing. Every lane gets every score. Policy mean: fp8 rows, sixteen
// channels per lane per step (a row whose length is 8 mod 16 ends with an 8-byte step).
__device__ void score_blocks_fp8(const gsa_select_args &a, const int64_t *phys, const float *qbar,
				 int lane, float *score)
{
	const int row = a.num_kv_heads * a.head_size;
	const int64_t stride = repr_stride(a);
	const uint8_t *base = (const uint8_t *)a.repr;
	float acc[GSA_WARP_BLOCKS];
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++)
		acc[i] = 0.f;
	for (int c = lane * 16; c < row; c += 32 * 16) {
		const bool full = c + 16 <= row;
		uint4 v[GSA_WARP_BLOCKS];
#pragma unroll
		for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
			const uint8_t *r = base + (phys[i] < 0 ? 0 : phys[i]) * stride + c;
			if (phys[i] < 0) {
				v[i] = make_uint4(0, 0, 0, 0);
			} else if (full) {
				v[i] = *(const uint4 *)r;
			} else {
				uint2 h = *(const uint2 *)r;
				v[i] = make_uint4(h.x, h.y, 0, 0); /* zero bytes are e4m3 zeros */
			}
		}
		float qv[16];
#pragma unroll
		for (int k = 0; k < 16; k++)
			qv[k] = (full || k < 8) ? qbar[c + k] : 0.f;
#pragma unroll
		for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
			const __nv_fp8x2_storage_t *e = (const __nv_fp8x2_storage_t *)&v[i];
#pragma unroll
			for (int k = 0; k < 8; k++) {
				__half2 h = __half2(__nv_cvt_fp8x2_to_halfraw2(e[k], __NV_E4M3));
				float2 f = __half22float2(h);
				acc[i] = fmaf(qv[2 * k], f.x, acc[i]);
				acc[i] = fmaf(qv[2 * k + 1], f.y, acc[i]);
			}
		}
	}
	warp_totals(acc, score);
}

// The same for Quest's bounds in the KV element type, eight channels per lane per step.
__device__ void score_blocks_quest(const gsa_select_args &a, const int64_t *phys, const float *qbar,
				   int lane, float *score)
{
	const int row = a.num_kv_heads * a.head_size;
	const int64_t stride = repr_stride(a) / 2; /* elements */
	const uint16_t *base = (const uint16_t *)a.repr;
	float acc[GSA_WARP_BLOCKS];
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++)
		acc[i] = 0.f;
	for (int c = lane * 8; c < row; c += 32 * 8) {
		uint4 v[GSA_WARP_BLOCKS], w[GSA_WARP_BLOCKS];
#pragma unroll
		for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
			const uint16_t *r = base + (phys[i] < 0 ? 0 : phys[i]) * stride;
			v[i] = phys[i] < 0 ? make_uint4(0, 0, 0, 0) : *(const uint4 *)(r + c);
			w[i] = phys[i] < 0 ? make_uint4(0, 0, 0, 0) : *(const uint4 *)(r + row + c);
		}
		float qv[8];
#pragma unroll
		for (int k = 0; k < 8; k++)
			qv[k] = qbar[c + k];
#pragma unroll
		for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
			const uint16_t *e = (const uint16_t *)&v[i];
			const uint16_t *e2 = (const uint16_t *)&w[i];
#pragma unroll
			for (int k = 0; k < 8; k++)
				acc[i] += fmaxf(qv[k] * to_f32(e[k], a.dtype), qv[k] * to_f32(e2[k], a.dtype));
		}
	}
	warp_totals(acc, score);
}

// Order-preserving map of a float to an unsigned key (larger float, larger key).
__device__ __forceinline__ uint32_t float_key(float f)
{
	uint32_t b = __float_as_uint(f);
	return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

}  // namespace

extern "C" __global__ void __launch_bounds__(GSA_SCORE_THREADS)
gsa_score(const gsa_select_args a)
{
	extern __shared__ float qbar[];  // [num_kv_heads * head_size]
	const int s = blockIdx.y;
	if (a.stats_dev && blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) {
		// Number this launch for the statistics ring (gsa_select reads it next).
		unsigned long long n = atomicAdd(&a.stats_dev->next, 1ull);
		a.stats_dev->current = n;
		a.stats_dev->start_ns[n % GSA_RING_SLOTS] = gpu_clock_ns();
		a.stats_dev->done[n % GSA_RING_SLOTS] = 0;
		a.stats_host->slots[n % GSA_RING_SLOTS].seq = 0;
	}
	const gsa_budget p = plan_sequence(a, s);
	const int first = blockIdx.x * GSA_SCORE_CHUNK;
	const int mid_end = p.n - a.local_blocks;
	if (!p.sparse || first >= mid_end || first + GSA_SCORE_CHUNK <= a.sink_blocks)
		return;

	// First this lane's block (one lane per block of the warp's GSA_WARP_BLOCKS consecutive
	// ones): its table entry, then its fingerprint loads. They are issued before the
	// group-mean query is computed and consumed after it, so that the two chains of
	// dependent loads overlap instead of adding up.
	const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	const int32_t *table = a.block_table + (int64_t)s * a.bt_stride;
	const int b0 = first + warp * GSA_WARP_BLOCKS;
	int64_t my_phys = -1;
	fp_words words = {};
	uint64_t stored = 0;
	if (lane < GSA_WARP_BLOCKS) {
		int b = b0 + lane;
		if (b >= a.sink_blocks && b < mid_end) {
			int64_t ph = table[b];
			if (ph >= 0 && ph < a.num_phys_blocks) {
				my_phys = ph;
				words = load_fingerprint(a, ph);
				stored = a.fingerprints[ph];
			}
		}
	}

	// GQA-group mean query of this sequence's single query token: each thread takes eight
	// channels of one KV head and loads them for every member of the group at once.
	const int row = a.num_kv_heads * a.head_size;
	const int group = a.num_q_heads / a.num_kv_heads;
	const int token = a.query_start ? a.query_start[s] : s;
	const uint16_t *q = (const uint16_t *)a.query + (int64_t)token * a.q_stride_token;
	for (int c = threadIdx.x * 8; c < row; c += blockDim.x * 8) {
		int h = c / a.head_size, d = c % a.head_size;
		float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
		for (int j = 0; j < group; j++) {
			uint4 v = *(const uint4 *)(q + h * a.q_stride_kvhead + j * a.q_stride_member + d);
			const uint16_t *e = (const uint16_t *)&v;
			for (int i = 0; i < 8; i++)
				sum[i] += to_f32(e[i], a.dtype);
		}
		for (int i = 0; i < 8; i++)
			qbar[c + i] = sum[i] / (float)group;
	}
	__syncthreads();

	// Once every representation of the warp's blocks is current, all their rows are loaded
	// together.
	const uint64_t my_fp = my_phys >= 0 ? hash_fingerprint(words) : 0;
	const bool stale = my_phys >= 0 && stored != my_fp;
	int64_t phys[GSA_WARP_BLOCKS];
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++)
		phys[i] = __shfl_sync(0xffffffffu, my_phys, i);
	unsigned stale_mask = __ballot_sync(0xffffffffu, stale);
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
		if (!(stale_mask >> i & 1))
			continue;
		uint64_t fp = __shfl_sync(0xffffffffu, my_fp, i);
		refresh_block(a, phys[i], lane);
		__syncwarp();
		__threadfence();  // representation visible before its fingerprint
		if (lane == 0)
			a.fingerprints[phys[i]] = fp;
		__syncwarp();
	}
	float score[GSA_WARP_BLOCKS];
	if (a.policy == GSA_POLICY_QUEST)
		score_blocks_quest(a, phys, qbar, lane, score);
	else
		score_blocks_fp8(a, phys, qbar, lane, score);
	if (lane < GSA_WARP_BLOCKS) {
		int b = b0 + lane;
		float mine = score[0];
#pragma unroll
		for (int i = 1; i < GSA_WARP_BLOCKS; i++)
			if (lane == i)
				mine = score[i];
		if (b >= a.sink_blocks && b < mid_end)
			a.scores[(int64_t)s * a.bt_stride + b] = my_phys >= 0 ? mine : -3.0e38f;
	}
}

namespace {

// Exclusive prefix sum of one flag per thread over the CTA; returns the CTA total in *total.
__device__ int block_exclusive_scan(bool flag, int *warp_sums, int *total)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	unsigned ballot = __ballot_sync(0xffffffffu, flag);
	int in_warp = __popc(ballot & ((1u << lane) - 1));
	if (lane == 0)
		warp_sums[warp] = __popc(ballot);
	__syncthreads();
	if (warp == 0) {
		int v = lane < warps ? warp_sums[lane] : 0;
		for (int o = 1; o < 32; o <<= 1) {
			int u = __shfl_up_sync(0xffffffffu, v, o);
			if (lane >= o)
				v += u;
		}
		if (lane < warps)
			warp_sums[lane] = v;  // inclusive
	}
	__syncthreads();
	int before = warp ? warp_sums[warp - 1] : 0;
	*total = warp_sums[warps - 1];
	__syncthreads();
	return before + in_warp;
}

}  // namespace

// Each CTA stores its sequence's pair; the last one to finish publishes the slot.
__device__ void record_stats(const gsa_select_args &a, int s, const gsa_budget &p)
{
	unsigned long long n = *(volatile unsigned long long *)&a.stats_dev->current;
	gsa_stats_slot *slot = &a.stats_host->slots[n % GSA_RING_SLOTS];
	if (s < GSA_RING_SEQS) {
		slot->kept_total[s][0] = (uint32_t)p.keep;
		slot->kept_total[s][1] = (uint32_t)p.n;
	}
	__threadfence_system();
	if (atomicAdd(&a.stats_dev->done[n % GSA_RING_SLOTS], 1u) == (unsigned)a.num_seqs - 1) {
		slot->layer = a.layer;
		slot->kernel_id = a.kernel_id;
		slot->num_seqs = (uint32_t)a.num_seqs;
		unsigned long long t0 = a.stats_dev->start_ns[n % GSA_RING_SLOTS];
		slot->gpu_start_ns = t0;
		slot->select_ns = gpu_clock_ns() - t0;
		__threadfence_system();
		*(volatile uint64_t *)&slot->seq = n + 1;
	}
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

static_assert(GSA_SELECT_THREADS / 32 >= GSA_SELECT_SLOTS, "slot_ranks: one warp per slot");

// Scratch of the selection kernel (static shared memory).
struct select_shared {
	int hist[256];
	int warp_sums[32];
	int counts[GSA_SELECT_SLOTS][32]; /* per register slot and warp, then their offsets */
	int slot_base[GSA_SELECT_SLOTS + 1];
	uint32_t bits[GSA_BLOCK_WORDS];   /* kept-block bitmap, when recorded */
	uint32_t prefix;
	int remaining, ties;
};

// Adds the radix digit at `shift` of a candidate key to the histogram when the key matches
// the prefix found so far. Scores of one sequence share their top bits: equal digits are
// aggregated per warp so that one lane adds for all of them (shared atomics on one bin
// serialise). Every lane of the warp must call it.
__device__ __forceinline__ void count_digit(int *hist, uint32_t k, bool valid, uint32_t mask,
					    uint32_t prefix, int shift)
{
	bool counted = valid && (k & mask) == prefix;
	unsigned digit = counted ? (k >> shift) & 0xff : 0x100u + (threadIdx.x & 31);
	unsigned same = __match_any_sync(0xffffffffu, digit);
	if (counted && (threadIdx.x & 31) == __ffs(same) - 1)
		atomicAdd(&hist[digit], __popc(same));
}

// Exclusive ranks, in candidate order (register slot j holds candidates j * blockDim.x +
// thread), of the flagged candidates of all register slots at once: one ballot per slot,
// then one scan of the per-warp counts for all slots together, instead of one block-wide
// scan per slot. Returns the number flagged.
__device__ __forceinline__ int slot_ranks(select_shared &sh, const bool *flag, int *rank)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
#pragma unroll
	for (int j = 0; j < GSA_SELECT_SLOTS; j++) {
		unsigned ballot = __ballot_sync(0xffffffffu, flag[j]);
		rank[j] = __popc(ballot & ((1u << lane) - 1));
		if (lane == 0)
			sh.counts[j][warp] = __popc(ballot);
	}
	__syncthreads();
	if (warp < GSA_SELECT_SLOTS) {
		// Warp j: slot j's per-warp counts into exclusive offsets, and the slot's total.
		int v = lane < warps ? sh.counts[warp][lane] : 0, own = v;
		for (int o = 1; o < 32; o <<= 1) {
			int u = __shfl_up_sync(0xffffffffu, v, o);
			if (lane >= o)
				v += u;
		}
		if (lane < warps)
			sh.counts[warp][lane] = v - own;
		if (lane == 31)
			sh.slot_base[warp] = v;
	}
	__syncthreads();
	if (threadIdx.x == 0) {
		int run = 0;
		for (int j = 0; j < GSA_SELECT_SLOTS; j++) {
			int t = sh.slot_base[j];
			sh.slot_base[j] = run;
			run += t;
		}
		sh.slot_base[GSA_SELECT_SLOTS] = run;
	}
	__syncthreads();
#pragma unroll
	for (int j = 0; j < GSA_SELECT_SLOTS; j++)
		rank[j] += sh.slot_base[j] + sh.counts[j][warp];
	int total = sh.slot_base[GSA_SELECT_SLOTS];
	__syncthreads(); /* the scratch is reused by the next call */
	return total;
}

}  // namespace

extern "C" __global__ void __launch_bounds__(GSA_SELECT_THREADS)
gsa_select(const gsa_select_args a)
{
	__shared__ select_shared sh;

	const int s = blockIdx.x;
	const gsa_budget p = plan_sequence(a, s);
	const int32_t *table = a.block_table + (int64_t)s * a.bt_stride;
	int32_t *shadow = a.shadow_table + (int64_t)s * a.bt_stride;
	// Kept-block bitmap for the trace, when this sequence's is recorded.
	uint32_t *bitmap = NULL;
	unsigned long long launch = 0;
	if (a.stats_dev && a.record_blocks && s < GSA_BLOCK_SEQS) {
		launch = *(volatile unsigned long long *)&a.stats_dev->current;
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
	const int chunks = (m + T - 1) / T;
	if (bitmap)
		for (int w = tid; w < GSA_BLOCK_WORDS; w += T)
			sh.bits[w] = 0;

	// The keys of the first GSA_SELECT_SLOTS * blockDim.x candidates stay in registers for
	// every pass (loaded once, all in flight together); longer rows read the rest from
	// global memory in each pass.
	uint32_t keys[GSA_SELECT_SLOTS];
#pragma unroll
	for (int j = 0; j < GSA_SELECT_SLOTS; j++) {
		int i = j * T + tid;
		keys[j] = i < m ? float_key(scores[lo + i]) : 0u;
	}

	// Radix select: the key of the want-th largest middle score, 8 bits per pass, stopping
	// early once every key with the prefix found so far is taken.
	uint32_t prefix = 0, mask = 0;
	int remaining = want, ties = 0;
	for (int shift = 24; shift >= 0 && want > 0; shift -= 8) {
		for (int i = tid; i < 256; i += T)
			sh.hist[i] = 0;
		__syncthreads();
#pragma unroll
		for (int j = 0; j < GSA_SELECT_SLOTS; j++)
			if (j < chunks)
				count_digit(sh.hist, keys[j], j * T + tid < m, mask, prefix, shift);
		for (int j = GSA_SELECT_SLOTS; j < chunks; j++) {
			int i = j * T + tid;
			uint32_t k = i < m ? float_key(scores[lo + i]) : 0u;
			count_digit(sh.hist, k, i < m, mask, prefix, shift);
		}
		__syncthreads();
		if (tid < 32) {
			// Warp 0 finds the digit holding the remaining-th largest key: each lane sums
			// eight bins, a suffix scan over lanes (lane 31 has the top bins) finds the lane,
			// then that lane walks its eight bins.
			const int l = tid;
			int mine = 0;
			for (int i = 0; i < 8; i++)
				mine += sh.hist[l * 8 + i];
			int above = mine; // inclusive suffix sum: bins of lanes >= l
			for (int o = 1; o < 32; o <<= 1) {
				int v = __shfl_down_sync(0xffffffffu, above, o);
				if (l + o < 32)
					above += v;
			}
			int strictly_above = above - mine;
			bool here = strictly_above < remaining && above >= remaining;
			unsigned who = __ballot_sync(0xffffffffu, here);
			if (who && l == __ffs(who) - 1) {
				int cum = strictly_above, d = l * 8 + 7;
				for (; d > l * 8; d--) {
					if (cum + sh.hist[d] >= remaining)
						break;
					cum += sh.hist[d];
				}
				sh.prefix = prefix | ((uint32_t)d << shift);
				sh.remaining = remaining - cum;
				sh.ties = sh.hist[d]; /* keys with the new prefix */
			}
		}
		__syncthreads();
		// (Warp 0 writes these again only after the next pass's counting barrier.)
		prefix = sh.prefix;
		remaining = sh.remaining;
		ties = sh.ties;
		mask |= 0xffu << shift;
		if (ties == remaining)
			break; /* all of them are taken: no lower digit can change the set */
	}
	// Now: keys whose masked value is above prefix are all taken; of those equal to it, the
	// first `remaining` by index. Usually every one of them is taken: no rank needed then.
	const bool rank_ties = want > 0 && ties > remaining;

	// Candidates in the register slots: ranks of ties (rarely needed), then positions.
	bool flag[GSA_SELECT_SLOTS];
	int rank[GSA_SELECT_SLOTS];
	int ties_before = 0;
	if (rank_ties) {
#pragma unroll
		for (int j = 0; j < GSA_SELECT_SLOTS; j++)
			flag[j] = j * T + tid < m && (keys[j] & mask) == prefix;
		ties_before = slot_ranks(sh, flag, rank);
	}
#pragma unroll
	for (int j = 0; j < GSA_SELECT_SLOTS; j++) {
		uint32_t km = keys[j] & mask;
		flag[j] = want > 0 && j * T + tid < m &&
			  (km > prefix || (km == prefix && (!rank_ties || rank[j] < remaining)));
	}
	int kept_before = slot_ranks(sh, flag, rank);
#pragma unroll
	for (int j = 0; j < GSA_SELECT_SLOTS; j++) {
		if (!flag[j])
			continue;
		int b = lo + j * T + tid;
		shadow[lo + rank[j]] = table[b];
		if (bitmap && b < GSA_BLOCK_WORDS * 32)
			atomicOr(&sh.bits[b / 32], 1u << (b % 32));
	}
	// Candidates beyond the register slots, one block-wide scan per chunk.
	for (int j = GSA_SELECT_SLOTS; j < chunks; j++) {
		int i = j * T + tid, b = lo + i;
		uint32_t km = i < m ? float_key(scores[b]) & mask : 0u;
		bool tie = i < m && want > 0 && km == prefix;
		int tie_total = 0, tie_rank = 0;
		if (rank_ties)
			tie_rank = ties_before + block_exclusive_scan(tie, sh.warp_sums, &tie_total);
		bool keep = i < m && want > 0 && (km > prefix || (tie && (!rank_ties || tie_rank < remaining)));
		int kept_total;
		int pos = kept_before + block_exclusive_scan(keep, sh.warp_sums, &kept_total);
		if (keep) {
			shadow[lo + pos] = table[b];
			if (bitmap && b < GSA_BLOCK_WORDS * 32)
				atomicOr(&sh.bits[b / 32], 1u << (b % 32));
		}
		kept_before += kept_total;
		ties_before += tie_total;
	}
	// The sinks and the local window, around the selected middle blocks.
	for (int b = tid; b < lo; b += T) {
		shadow[b] = table[b];
		if (bitmap && b < GSA_BLOCK_WORDS * 32)
			atomicOr(&sh.bits[b / 32], 1u << (b % 32));
	}
	for (int b = hi + tid; b < p.n; b += T) {
		shadow[lo + want + (b - hi)] = table[b];
		if (bitmap && b < GSA_BLOCK_WORDS * 32)
			atomicOr(&sh.bits[b / 32], 1u << (b % 32));
	}
	if (bitmap) {
		__syncthreads();
		for (int w = tid; w < GSA_BLOCK_WORDS && w * 32 < p.n; w += T)
			bitmap[w] = sh.bits[w];
	}
	if (tid == 0)
		a.shadow_lens[s] = gsa_shadow_len(p, a.block_size);
	finish_records(a, s, p, bitmap, launch);
}

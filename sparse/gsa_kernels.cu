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
// Sequences that stay dense (too short, query length != 1, budget >= blocks) get an exact
// copy of their row and length, so a launch mixing prefill and decode stays exact.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
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
__device__ uint64_t block_fingerprint(const gsa_select_args &a, int64_t phys)
{
	const uint16_t *k = (const uint16_t *)a.key_cache + phys * a.k_stride_block;
	int64_t row = (int64_t)a.num_kv_heads * a.head_size;
	const uint4 first = *(const uint4 *)k;
	const uint4 last = *(const uint4 *)(k + (int64_t)(a.block_size - 1) * a.k_stride_token + chan(a, row - 8));
	uint64_t h = 0x243F6A8885A308D3ull;
	h = mix64(h, ((uint64_t)first.y << 32) | first.x);
	h = mix64(h, ((uint64_t)first.w << 32) | first.z);
	h = mix64(h, ((uint64_t)last.y << 32) | last.x);
	h = mix64(h, ((uint64_t)last.w << 32) | last.z);
	return h ? h : 1;
}

// One warp recomputes one block's representation: mean (or min and max) over its tokens of
// every (head, channel), eight channels per lane per step.
__device__ void refresh_block(const gsa_select_args &a, int64_t phys, int lane)
{
	const uint16_t *k = (const uint16_t *)a.key_cache + phys * a.k_stride_block;
	int row = a.num_kv_heads * a.head_size;
	uint16_t *out = a.repr + phys * (int64_t)row * (a.policy == GSA_POLICY_QUEST ? 2 : 1);
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
		uint16_t r[8], r2[8];
		if (a.policy == GSA_POLICY_QUEST) {
			for (int i = 0; i < 8; i++)
				r[i] = from_f32(lo[i], a.dtype), r2[i] = from_f32(hi[i], a.dtype);
			*(uint4 *)(out + c) = *(const uint4 *)r;
			*(uint4 *)(out + row + c) = *(const uint4 *)r2;
		} else {
			float inv = 1.f / (float)a.block_size;
			for (int i = 0; i < 8; i++)
				r[i] = from_f32(acc[i] * inv, a.dtype);
			*(uint4 *)(out + c) = *(const uint4 *)r;
		}
	}
}

// Scores GSA_WARP_BLOCKS blocks at once (a warp), their loads in flight together; a block
// with phys < 0 scores nothing. Every lane gets every score.
__device__ void score_blocks(const gsa_select_args &a, const int64_t *phys, const float *qbar,
			     int lane, float *score)
{
	const int row = a.num_kv_heads * a.head_size;
	const int per = a.policy == GSA_POLICY_QUEST ? 2 : 1;
	float acc[GSA_WARP_BLOCKS];
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++)
		acc[i] = 0.f;
	for (int c = lane * 8; c < row; c += 32 * 8) {
		uint4 v[GSA_WARP_BLOCKS], w[GSA_WARP_BLOCKS];
#pragma unroll
		for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
			const uint16_t *r = a.repr + (phys[i] < 0 ? 0 : phys[i]) * (int64_t)row * per;
			v[i] = phys[i] < 0 ? make_uint4(0, 0, 0, 0) : *(const uint4 *)(r + c);
			w[i] = (phys[i] < 0 || per == 1) ? make_uint4(0, 0, 0, 0)
							  : *(const uint4 *)(r + row + c);
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
			for (int k = 0; k < 8; k++) {
				if (per == 2)
					acc[i] += fmaxf(qv[k] * to_f32(e[k], a.dtype), qv[k] * to_f32(e2[k], a.dtype));
				else
					acc[i] += qv[k] * to_f32(e[k], a.dtype);
			}
		}
	}
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++) {
		float t = acc[i];
		for (int o = 16; o > 0; o >>= 1)
			t += __shfl_xor_sync(0xffffffffu, t, o);
		score[i] = t;
	}
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

	// Each warp takes GSA_WARP_BLOCKS consecutive blocks of the chunk and overlaps their
	// loads: the table entries and fingerprints (one lane per block), then, once every
	// representation is current, all their representation rows together.
	const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	const int32_t *table = a.block_table + (int64_t)s * a.bt_stride;
	const int b0 = first + warp * GSA_WARP_BLOCKS;
	int64_t my_phys = -1;
	bool stale = false;
	uint64_t my_fp = 0;
	if (lane < GSA_WARP_BLOCKS) {
		int b = b0 + lane;
		if (b >= a.sink_blocks && b < mid_end) {
			int64_t ph = table[b];
			if (ph >= 0 && ph < a.num_phys_blocks) {
				my_phys = ph;
				my_fp = block_fingerprint(a, ph);
				stale = a.fingerprints[ph] != my_fp;
			}
		}
	}
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
	score_blocks(a, phys, qbar, lane, score);
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

extern "C" __global__ void __launch_bounds__(GSA_SELECT_THREADS)
gsa_select(const gsa_select_args a)
{
	__shared__ int hist[256];
	__shared__ int warp_sums[32];
	__shared__ uint32_t sh_prefix;
	__shared__ int sh_remaining, sh_ties;

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
	const int want = p.keep - a.sink_blocks - a.local_blocks;

	// Radix select: the key of the want-th largest middle score, 8 bits per pass.
	uint32_t prefix = 0, mask = 0;
	int remaining = want, ties = 0;
	for (int shift = 24; shift >= 0 && want > 0; shift -= 8) {
		for (int i = threadIdx.x; i < 256; i += blockDim.x)
			hist[i] = 0;
		__syncthreads();
		for (int base = lo; base < hi; base += blockDim.x) {
			const int b = base + threadIdx.x;
			uint32_t k = b < hi ? float_key(scores[b]) : 0;
			bool counted = b < hi && (k & mask) == prefix;
			// Scores of one sequence share their top bits: aggregate equal digits per warp
			// so that one lane adds for all of them (shared atomics on one bin serialise).
			unsigned digit = counted ? (k >> shift) & 0xff : 0x100u + (threadIdx.x & 31);
			unsigned same = __match_any_sync(0xffffffffu, digit);
			if (counted && (threadIdx.x & 31) == __ffs(same) - 1)
				atomicAdd(&hist[digit], __popc(same));
		}
		__syncthreads();
		if (threadIdx.x < 32) {
			// Warp 0 finds the digit holding the remaining-th largest key: each lane sums
			// eight bins, a suffix scan over lanes (lane 31 has the top bins) finds the lane,
			// then that lane walks its eight bins.
			const int l = threadIdx.x;
			int mine = 0;
			for (int i = 0; i < 8; i++)
				mine += hist[l * 8 + i];
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
					if (cum + hist[d] >= remaining)
						break;
					cum += hist[d];
				}
				sh_prefix = prefix | ((uint32_t)d << shift);
				sh_remaining = remaining - cum;
				sh_ties = hist[d]; /* after the last pass: keys equal to the threshold */
			}
		}
		__syncthreads();
		prefix = sh_prefix;
		remaining = sh_remaining;
		ties = sh_ties;
		mask |= 0xffu << shift;
		__syncthreads();
	}
	// Now: keys > prefix are all taken; of the keys == prefix, the first `remaining` by index.
	// Usually every tied key is taken (one key equals the threshold): no rank needed then.
	const bool rank_ties = want > 0 && ties > remaining;

	int kept_before = 0, ties_before = 0;
	for (int base = 0; base < p.n; base += blockDim.x) {
		const int b = base + threadIdx.x;
		bool in = b < p.n;
		bool middle = in && b >= lo && b < hi;
		uint32_t k = middle ? float_key(scores[b]) : 0;
		bool tie = middle && want > 0 && k == prefix;
		int tie_total = 0, tie_rank = 0;
		if (rank_ties)
			tie_rank = ties_before + block_exclusive_scan(tie, warp_sums, &tie_total);
		bool keep = in && (!middle || (want > 0 && (k > prefix || (tie && tie_rank < remaining))));
		int kept_total;
		int pos = kept_before + block_exclusive_scan(keep, warp_sums, &kept_total);
		if (keep)
			shadow[pos] = table[b];
		unsigned bits = __ballot_sync(0xffffffffu, keep);
		if (bitmap && threadIdx.x % 32 == 0 && b / 32 < GSA_BLOCK_WORDS && b < p.n)
			bitmap[b / 32] = bits;
		kept_before += kept_total;
		ties_before += tie_total;
	}
	if (threadIdx.x == 0)
		a.shadow_lens[s] = gsa_shadow_len(p, a.block_size);
	finish_records(a, s, p, bitmap, launch);
}

// The scoring half of the selection (see gsa_kernels.cu): block representations kept
// current against a fingerprint of each block's keys, and scored against the GQA-group mean
// query. Included once, by gsa_kernels.cu.
#ifndef GSA_SCORE_CHUNK_CUH
#define GSA_SCORE_CHUNK_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <stdint.h>

#include "sparse/budget.h"
#include "sparse/kernel_common.cuh"
#include "sparse/select_args.h"

namespace {

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
// with phys < 0 scores nothing. Every lane gets every score. Policy mean on rows that
// score_blocks_mma does not take: fp8 rows against the scaled fp16 query (qh, unscaled by
// inv at the end), sixteen channels per lane per step (a row whose length is 8 mod 16
// ends with an 8-byte step).
__device__ void score_blocks_fp8(const gsa_select_args &a, const int64_t *phys, const __half *qh,
				 float inv, int lane, float *score)
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
			qv[k] = (full || k < 8) ? __half2float(qh[c + k]) : 0.f;
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
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++)
		score[i] *= inv;
}

// mma.sync m16n8k16, fp16 inputs, fp32 accumulators (sm_80 and later).
__device__ __forceinline__ void mma_f16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2,
					uint32_t a3, uint32_t b0, uint32_t b1)
{
	asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
		     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
		     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
		     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t fp8x2_to_f16x2(__nv_fp8x2_storage_t v)
{
	__half2_raw h = __nv_cvt_fp8x2_to_halfraw2(v, __NV_E4M3);
	return (uint32_t)h.x | (uint32_t)h.y << 16; /* first fp8 (lower address) in the low half */
}

// Policy mean with tensor cores, for rows a multiple of 128 channels: the warp's eight
// blocks as the sixteen rows of an m16n8k16 A operand, row g the first half of block g's
// channels and row g + 8 its second half; the B operand's column 0 holds the first half of
// the scaled fp16 query, column 1 its second half (the other columns are ignored), so
// block g's score is C[g][0] + C[g + 8][1]. Lane (g = lane / 4, t = lane % 4) loads sixteen
// channels of block g at [t * 16, t * 16 + 16) of every 64-channel slab of each half; the
// dot product does not depend on which k index a channel takes, so in the slab's four mma
// steps k = 2t, 2t + 1 take the lane's channels 4i, 4i + 1 and k = 2t + 8, 2t + 9 the
// channels 4i + 2, 4i + 3, in A and B alike. Against the FMA loop this is a quarter of
// the instructions (one conversion per two channels, one mma per 256 channel-products):
// at decode batch sizes the scoring CTAs are bound by instruction issue once their loads
// have arrived. Returns block (lane / 4)'s score, unscaled, in lanes with lane % 4 == 0.
__device__ float score_blocks_mma(const gsa_select_args &a, int64_t phys, const __half *qh,
				  float inv, int lane)
{
	static_assert(GSA_WARP_BLOCKS == 8, "one mma row pair per block");
	const int half = a.num_kv_heads * a.head_size / 2; /* a multiple of 64 */
	const int g = lane / 4, t = lane % 4;
	const uint8_t *r = (const uint8_t *)a.repr + (phys < 0 ? 0 : phys) * repr_stride(a) + t * 16;
	const __half *q = qh + (g & 1) * half + t * 16;
	float c[4] = {0.f, 0.f, 0.f, 0.f};
	for (int base = 0; base < half; base += 4 * 64) {
		uint4 v0[4], v1[4]; /* four slabs of both halves in flight together */
#pragma unroll
		for (int u = 0; u < 4; u++) {
			const int o = base + u * 64;
			const bool ok = phys >= 0 && o < half;
			v0[u] = ok ? *(const uint4 *)(r + o) : make_uint4(0, 0, 0, 0);
			v1[u] = ok ? *(const uint4 *)(r + half + o) : make_uint4(0, 0, 0, 0);
		}
#pragma unroll
		for (int u = 0; u < 4; u++) {
			const int o = base + u * 64;
			if (o >= half) /* the same for the whole warp */
				break;
			const uint4 qa = *(const uint4 *)(q + o), qb = *(const uint4 *)(q + o + 8);
			const uint32_t b[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
			const __nv_fp8x2_storage_t *e0 = (const __nv_fp8x2_storage_t *)&v0[u];
			const __nv_fp8x2_storage_t *e1 = (const __nv_fp8x2_storage_t *)&v1[u];
#pragma unroll
			for (int i = 0; i < 4; i++)
				mma_f16(c, fp8x2_to_f16x2(e0[2 * i]), fp8x2_to_f16x2(e1[2 * i]),
					fp8x2_to_f16x2(e0[2 * i + 1]), fp8x2_to_f16x2(e1[2 * i + 1]), b[2 * i],
					b[2 * i + 1]);
		}
	}
	return (c[0] + c[3]) * inv;
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


// The loads a scoring CTA starts before it knows its sequence's length, so that they
// overlap the length's instead of following it: each lane < wb (warp_blocks) of warp w
// loads the table entry of logical block first + w * wb + lane of the chunk,
// and each thread its first eight channels of the query for up to four group members.
// Only these: a CTA past the sequence's blocks (the grid spans the table's width, often a
// model's maximum length) then leaves after one round trip, as it would after the length.
// Once the CTA knows it scores, load_block_words issues the rest (load_chunk_pre's table
// entries of blocks that turn out unused, sinks or window or past the length, are ignored).
struct chunk_pre {
	int64_t phys; /* this lane's middle block: the entry when 0 <= it < num_phys_blocks, else -1 */
	fp_words words;
	uint64_t stored;
	uint4 q[4]; /* query channels [threadIdx.x * 8, + 8) of members 0..3 (group <= 4) */
};

__device__ __forceinline__ bool query_preloaded(const gsa_select_args &a)
{
	return a.num_q_heads / a.num_kv_heads <= 4;
}

__device__ __forceinline__ const uint16_t *query_of(const gsa_select_args &a, int32_t token)
{
	return (const uint16_t *)a.query + (int64_t)token * a.q_stride_token;
}

__device__ __forceinline__ void load_chunk_pre(const gsa_select_args &a, int s, const seq_shape &shape,
					       chunk_pre &c)
{
	const int lane = threadIdx.x % 32, wb = warp_blocks(a);
	const int b = grid_chunk() * chunk_blocks(a) + threadIdx.x / 32 * wb + lane;
	c.phys = -1;
	c.stored = 0;
	c.words = {};
	if (lane < wb && b < a.bt_stride)
		c.phys = __ldg(a.block_table + (int64_t)s * a.bt_stride + b);
	const int row = a.num_kv_heads * a.head_size, c0 = threadIdx.x * 8;
	if (query_preloaded(a) && c0 < row) {
		const int group = a.num_q_heads / a.num_kv_heads;
		const uint16_t *q = query_of(a, shape.start) + (c0 / a.head_size) * a.q_stride_kvhead +
				    c0 % a.head_size;
#pragma unroll
		for (int j = 0; j < 4; j++)
			c.q[j] = j < group ? *(const uint4 *)(q + j * a.q_stride_member) : make_uint4(0, 0, 0, 0);
	}
}

// In a CTA that scores: for this lane's block, if it is a middle block with a valid
// physical block, the fingerprint words and the stored fingerprint, and an L2 prefetch of
// its representation row (read once the fingerprint has matched: otherwise a third round
// trip to memory after the table entry and the fingerprint). Lane L asks for lines L / 8,
// L / 8 + 4, ... of block L % 8's row.
__device__ __forceinline__ void load_block_words(const gsa_select_args &a, const gsa_budget &p, chunk_pre &c)
{
	const int lane = threadIdx.x % 32, wb = warp_blocks(a);
	const int b = grid_chunk() * chunk_blocks(a) + threadIdx.x / 32 * wb + lane;
	const bool middle = p.sparse && lane < wb && b >= a.sink_blocks &&
			    b < p.n - a.local_blocks;
	if (!middle || c.phys < 0 || c.phys >= a.num_phys_blocks)
		c.phys = -1;
	if (c.phys >= 0) {
		c.words = load_fingerprint(a, c.phys);
		c.stored = a.fingerprints[c.phys];
	}
	const int64_t row_ph = __shfl_sync(0xffffffffu, c.phys, lane % GSA_WARP_BLOCKS);
	if (row_ph >= 0) {
		const int64_t stride = repr_stride(a);
		const uint8_t *r = (const uint8_t *)a.repr + row_ph * stride;
		for (int64_t o = lane / GSA_WARP_BLOCKS * 128; o < stride; o += 4 * 128)
			asm volatile("prefetch.global.L2 [%0];" ::"l"(r + o));
	}
}

// One CTA of GSA_SCORE_THREADS: the scores of sequence s's middle blocks in chunk
// grid_chunk() (chunk_blocks logical blocks), written to a.scores. qbar: shared memory
// for the group-mean query, GSA_SCORE_SMEM(num_kv_heads * head_size) bytes (its floats,
// then its scaled fp16 copy); pre: this thread's load_chunk_pre and load_block_words. Every thread of the CTA
// calls it (it synchronises the CTA when the chunk has blocks to score).
__device__ void score_chunk(const gsa_select_args &a, int s, const seq_shape &shape, const gsa_budget &p,
			    float *qbar, const chunk_pre &pre)
{
	const int wb = warp_blocks(a), first = grid_chunk() * chunk_blocks(a);
	const int mid_end = p.n - a.local_blocks;
	if (!p.sparse || first >= mid_end || first + chunk_blocks(a) <= a.sink_blocks)
		return;

	// This lane's block, if it is a middle one (its loads are in flight: load_block_words;
	// lanes >= wb have none).
	const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
	const int b0 = first + warp * wb;
	const int64_t my_phys = pre.phys;
	const fp_words &words = pre.words;
	const uint64_t stored = pre.stored;

	// GQA-group mean query of this sequence's single query token: each thread takes eight
	// channels of one KV head and loads them for every member of the group at once.
	// Policy mean scores with it rounded to fp16 after scaling by a power of two 2^k that
	// brings its largest magnitude into [2^14, 2^15) (no fp16 overflow, full precision for
	// the channels that matter); the scores are unscaled exactly, so they are the dot
	// products of fp16(qbar * 2^k) / 2^k with the fp8 means (select_ref.c computes the same).
	const int row = a.num_kv_heads * a.head_size;
	__half *qh = (__half *)(qbar + row);
	__shared__ uint32_t warp_max[GSA_SCORE_THREADS / 32];
	uint32_t my_max = 0; /* |x| as bits: ordered like the floats, NaN above infinity */
	const int group = a.num_q_heads / a.num_kv_heads;
	const uint16_t *q = query_of(a, shape.start);
	for (int c = threadIdx.x * 8; c < row; c += blockDim.x * 8) {
		int h = c / a.head_size, d = c % a.head_size;
		float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
		if (c == (int)threadIdx.x * 8 && query_preloaded(a)) {
#pragma unroll
			for (int j = 0; j < 4; j++) {
				const uint16_t *e = (const uint16_t *)&pre.q[j];
				for (int i = 0; i < 8; i++)
					sum[i] += j < group ? to_f32(e[i], a.dtype) : 0.f;
			}
		} else {
			// Unrolled so that the group's loads are in flight together.
#pragma unroll 8
			for (int j = 0; j < group; j++) {
				uint4 v = *(const uint4 *)(q + h * a.q_stride_kvhead + j * a.q_stride_member + d);
				const uint16_t *e = (const uint16_t *)&v;
				for (int i = 0; i < 8; i++)
					sum[i] += to_f32(e[i], a.dtype);
			}
		}
		for (int i = 0; i < 8; i++) {
			qbar[c + i] = sum[i] / (float)group;
			my_max = max(my_max, __float_as_uint(qbar[c + i]) & 0x7fffffffu);
		}
	}
	const bool mean = a.policy != GSA_POLICY_QUEST;
	if (mean) {
		my_max = __reduce_max_sync(0xffffffffu, my_max);
		if (lane == 0)
			warp_max[warp] = my_max;
	}
	__syncthreads();
	float inv = 1.f;
	if (mean) {
		uint32_t m = 0;
		for (int w = 0; w < (int)blockDim.x / 32; w++)
			m = max(m, warp_max[w]);
		const int k = min(126, max(-126, 141 - (int)(m >> 23)));
		const float scale = __uint_as_float((uint32_t)(127 + k) << 23);
		inv = __uint_as_float((uint32_t)(127 - k) << 23);
		for (int c = threadIdx.x * 8; c < row; c += blockDim.x * 8) /* this thread's own */
			for (int i = 0; i < 8; i++)
				qh[c + i] = __float2half_rn(qbar[c + i] * scale);
		__syncthreads();
	}
	GSA_STAMP(4);

	// Once every representation of the warp's blocks is current, all their rows are loaded
	// together.
	const uint64_t my_fp = my_phys >= 0 ? hash_fingerprint(words) : 0;
	const bool stale = my_phys >= 0 && stored != my_fp;
	GSA_STAMP_AFTER(2, my_fp ^ stored);
	int64_t phys[GSA_WARP_BLOCKS];
#pragma unroll
	for (int i = 0; i < GSA_WARP_BLOCKS; i++)
		phys[i] = __shfl_sync(0xffffffffu, my_phys, i);
	// Stale blocks, one at a time (a loop rather than eight inlined copies of the refresh:
	// its code sits on the path every launch runs, and cold instruction caches make code
	// size time).
	for (unsigned stale_mask = __ballot_sync(0xffffffffu, stale); stale_mask; stale_mask &= stale_mask - 1) {
		const int i = __ffs(stale_mask) - 1;
		const uint64_t fp = __shfl_sync(0xffffffffu, my_fp, i);
		const int64_t ph = __shfl_sync(0xffffffffu, my_phys, i);
		refresh_block(a, ph, lane);
		__syncwarp();
		__threadfence();  // representation visible before its fingerprint
		if (lane == 0)
			a.fingerprints[ph] = fp;
		__syncwarp();
	}
	float mine;
	if (mean && row % 128 == 0) {
		const int64_t mine_phys = __shfl_sync(0xffffffffu, my_phys, lane / 4);
		const float sc = score_blocks_mma(a, mine_phys, qh, inv, lane);
		GSA_STAMP_AFTER(3, (uint64_t)__float_as_uint(sc));
		mine = __shfl_sync(0xffffffffu, sc, lane % GSA_WARP_BLOCKS * 4);
	} else {
		float score[GSA_WARP_BLOCKS];
		if (mean)
			score_blocks_fp8(a, phys, qh, inv, lane, score);
		else
			score_blocks_quest(a, phys, qbar, lane, score);
		mine = score[0];
#pragma unroll
		for (int i = 1; i < GSA_WARP_BLOCKS; i++)
			if (lane == i)
				mine = score[i];
	}
	if (lane < wb) {
		int b = b0 + lane;
		if (b >= a.sink_blocks && b < mid_end)
			a.scores[(int64_t)s * a.bt_stride + b] = my_phys >= 0 ? mine : -3.0e38f;
	}
}
}  // namespace

#endif

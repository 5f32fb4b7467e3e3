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


// One CTA of GSA_SCORE_THREADS: the scores of sequence s's middle blocks in chunk
// blockIdx.x (GSA_SCORE_CHUNK logical blocks), written to a.scores. qbar: shared memory
// for the group-mean query ([num_kv_heads * head_size] floats). Every thread of the CTA
// calls it (it synchronises the CTA when the chunk has blocks to score).
__device__ void score_chunk(const gsa_select_args &a, int s, const gsa_budget &p, float *qbar)
{
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
		// Unrolled so that the group's loads are in flight together.
#pragma unroll 8
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
}  // namespace

#endif

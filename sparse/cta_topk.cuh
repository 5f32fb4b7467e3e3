// Exact top-k of one row of float scores by one CTA, in index order: which of the row's m
// candidates are the `want` largest (ties to the lower index), and each kept candidate's
// rank among the kept ones, so the caller can compact them keeping their order.
//
// Why this shape: a decode batch gives one row per sequence, so a row's selection runs on
// one multiprocessor as a chain of CTA-wide steps, and its time is that chain's latency.
// A radix select with shared-memory histograms needs about four barriers per 8-bit digit
// and serialises on shared atomics (scores of one row share their leading bits, so they
// hit the same bins). Here instead the threshold - the want-th largest key - is found two
// bits at a time by counting, per thread in registers, the keys at or above three
// candidate thresholds, then summing the counts over the CTA: warp reductions and one
// barrier per two bits; the bits above the highest one where the row's minimum and
// maximum keys differ are skipped. Counting needs no atomics and no histogram. Many
// threads with few candidates each keep every warp's share of a step short (at 256
// threads x 8 candidates the counting alone made the step several times longer).
//
// Each thread owns a contiguous run of candidates (thread t: [t * per, t * per + per)), so
// that a single CTA-wide prefix sum of per-thread counts gives every kept candidate's
// position in index order. Cross-warp sums: each warp's totals go to shared memory, and
// after the barrier every warp reads all of them (one per lane) and reduces them again, so
// no second barrier is needed to hand the result back. At most 32 warps.
#ifndef GSA_CTA_TOPK_CUH
#define GSA_CTA_TOPK_CUH

#include <stdint.h>

namespace gsa_topk {

// Order-preserving map of a float to an unsigned key (larger float, larger key).
__device__ __forceinline__ uint32_t float_key(float f)
{
	uint32_t b = __float_as_uint(f);
	return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Shared scratch: reduction partials, double-buffered so that one barrier per reduction
// suffices (a buffer is written again only two reductions later, after a barrier that
// every reader of the previous contents has passed).
struct scratch {
	uint4 part[2][32];
	uint2 scan[32];
};

// CTA-wide sums of three counts per thread; every thread gets the totals.
__device__ __forceinline__ uint3 cta_sum3(scratch &sh, int &parity, uint32_t a, uint32_t b, uint32_t c)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	a = __reduce_add_sync(0xffffffffu, a);
	b = __reduce_add_sync(0xffffffffu, b);
	c = __reduce_add_sync(0xffffffffu, c);
	if (lane == 0)
		sh.part[parity][warp] = make_uint4(a, b, c, 0);
	__syncthreads();
	uint4 v = lane < warps ? sh.part[parity][lane] : make_uint4(0, 0, 0, 0);
	parity ^= 1;
	return make_uint3(__reduce_add_sync(0xffffffffu, v.x), __reduce_add_sync(0xffffffffu, v.y),
			  __reduce_add_sync(0xffffffffu, v.z));
}

// Candidate j of this thread's run: from registers, or re-read from the row (K == 0: runs
// longer than the register budget, read from L2 on every step). Keys of real scores are at
// least 1 (the one float whose key would be 0, a NaN, is raised to 1), so the register
// slots past the run's end hold 0, which no count and no threshold includes, and the
// unrolled loops need no bounds.
template <int K>
struct run_keys {
	uint32_t k[K > 0 ? K : 1];
	const float *row; /* this thread's first candidate */
	int n;            /* valid candidates in the run */

	__device__ __forceinline__ static uint32_t key(const float *p)
	{
		return max(float_key(__ldcg(p)), 1u);
	}
	__device__ __forceinline__ void load(const float *r, int count)
	{
		row = r, n = count;
		if (K > 0) {
#pragma unroll
			for (int j = 0; j < (K > 0 ? K : 1); j++)
				k[j] = j < n ? key(row + j) : 0u;
		}
	}
	__device__ __forceinline__ uint32_t at(int j) const { return K > 0 ? k[j] : key(row + j); }
	__device__ __forceinline__ int bound() const { return K > 0 ? K : n; }
};

// The want-th largest key of the row (0 < want <= m), every thread getting it (>= 1).
template <int K>
__device__ __forceinline__ uint32_t threshold(scratch &sh, int &parity, const run_keys<K> &r, int want)
{
	uint32_t lo = 0xffffffffu, hi = 0u;
#pragma unroll
	for (int j = 0; j < r.bound(); j++) {
		uint32_t k = r.at(j);
		lo = min(lo, k ? k : 0xffffffffu), hi = max(hi, k);
	}
	lo = __reduce_min_sync(0xffffffffu, lo);
	hi = __reduce_max_sync(0xffffffffu, hi);
	{
		const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
		if (lane == 0)
			sh.part[parity][warp] = make_uint4(lo, hi, 0, 0);
		__syncthreads();
		uint4 v = lane < warps ? sh.part[parity][lane] : make_uint4(0xffffffffu, 0, 0, 0);
		parity ^= 1;
		lo = __reduce_min_sync(0xffffffffu, v.x);
		hi = __reduce_max_sync(0xffffffffu, v.y);
	}
	if (lo == hi)
		return hi;
	// Bits above the highest differing one are common to every key, the threshold's
	// included; search the pairs of bits from the one holding it down to bit 0.
	const int top = 31 - __clz(lo ^ hi);
	int b = top & ~1;
	uint32_t thr = b + 2 >= 32 ? 0u : hi & ~((1u << (b + 2)) - 1u);
	for (; b >= 0; b -= 2) {
		const uint32_t c1 = thr | (1u << b), c2 = thr | (2u << b), c3 = thr | (3u << b);
		uint32_t n1 = 0, n2 = 0, n3 = 0;
#pragma unroll
		for (int j = 0; j < r.bound(); j++) {
			uint32_t k = r.at(j);
			n1 += k >= c1, n2 += k >= c2, n3 += k >= c3;
		}
		uint3 t = cta_sum3(sh, parity, n1, n2, n3);
		thr = t.z >= (uint32_t)want ? c3 : t.y >= (uint32_t)want ? c2 : t.x >= (uint32_t)want ? c1 : thr;
	}
	return thr;
}

// After threshold(): calls keep(j, rank) for every kept candidate j of this thread's run,
// rank being its position among all kept candidates in index order. Of the keys equal to
// the threshold, the first (want - keys above it) by index are kept.
template <int K, typename Keep>
__device__ __forceinline__ void emit(scratch &sh, const run_keys<K> &r, uint32_t thr, int want, Keep keep)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	uint32_t above = 0, equal = 0;
#pragma unroll
	for (int j = 0; j < r.bound(); j++) {
		uint32_t k = r.at(j);
		above += k > thr, equal += k == thr;
	}
	// Exclusive prefix sums of both counts over the CTA, and their totals.
	uint32_t ia = above, ie = equal;
	for (int o = 1; o < 32; o <<= 1) {
		uint32_t ua = __shfl_up_sync(0xffffffffu, ia, o), ue = __shfl_up_sync(0xffffffffu, ie, o);
		if (lane >= o)
			ia += ua, ie += ue;
	}
	if (lane == 31)
		sh.scan[warp] = make_uint2(ia, ie);
	__syncthreads();
	const uint2 v = lane < warps ? sh.scan[lane] : make_uint2(0, 0);
	const uint32_t before_a = ia - above + __reduce_add_sync(0xffffffffu, lane < warp ? v.x : 0u);
	const uint32_t before_e = ie - equal + __reduce_add_sync(0xffffffffu, lane < warp ? v.y : 0u);
	const uint32_t total_a = __reduce_add_sync(0xffffffffu, v.x);
	const uint32_t take = (uint32_t)want - total_a; /* ties kept, >= 1 */
	uint32_t ties = before_e;
	uint32_t rank = before_a + min(before_e, take);
#pragma unroll
	for (int j = 0; j < r.bound(); j++) {
		uint32_t k = r.at(j);
		bool kept = k > thr || (k == thr && ties < take);
		ties += k == thr;
		if (kept)
			keep(j, (int)rank++);
	}
}

}  // namespace gsa_topk

#endif

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
// maximum keys differ are skipped, and once at most 32 keys remain in play one warp ranks
// them. Counting needs no atomics and no histogram. Measured (select_split.txt), a step
// costs the latency of its reductions and barrier (~0.4 us), not its counting: a few
// steps make up most of the selection's time.
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
	uint32_t few[32]; /* the keys still in play, once there are at most 32 */
	uint32_t nfew, thr;
};

// CTA-wide sums of three counts per thread; every thread gets the totals. SMALL: each count
// is at most 16, so a warp's three sums fit one word of ten-bit fields (one reduction
// instead of three), and over at most 32 warps two words of sixteen-bit fields.
template <bool SMALL>
__device__ __forceinline__ uint3 cta_sum3(scratch &sh, int &parity, uint32_t a, uint32_t b, uint32_t c)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	if constexpr (!SMALL) {
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
	} else {
		uint32_t p = __reduce_add_sync(0xffffffffu, a | b << 10 | c << 20);
		if (lane == 0)
			sh.part[parity][warp].x = p;
		__syncthreads();
		p = lane < warps ? sh.part[parity][lane].x : 0u;
		parity ^= 1;
		const uint32_t lo = (p & 0x3ffu) | (p & 0xffc00u) << 6, hi = p >> 20;
		const uint32_t l = __reduce_add_sync(0xffffffffu, lo), h = __reduce_add_sync(0xffffffffu, hi);
		return make_uint3(l & 0xffffu, l >> 16, h);
	}
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
		if constexpr (K > 0) {
#pragma unroll
			for (int j = 0; j < K; j++)
				k[j] = j < n ? key(row + j) : 0u;
		}
	}
	// f(j, key) for every candidate of the run in order (and, from registers, f(j, 0) for
	// the empty slots after them). Re-read runs go sixteen at a time, their loads issued
	// together: one at a time, each step of the search would wait for every load in turn.
	template <typename F>
	__device__ __forceinline__ void each(F f) const
	{
		each_group([&](int j, int, uint32_t k) { f(j, k); }, [](int) {});
	}
	// The same in groups of GROUP candidates (the whole run from registers, sixteen when
	// re-read): f(j, i, key) with i = j's place in its group (a constant once unrolled),
	// then end(first j of the group) after each group.
	static constexpr int GROUP = K > 0 ? K : 16;
	template <typename F, typename End>
	__device__ __forceinline__ void each_group(F f, End end) const
	{
		if constexpr (K > 0) {
#pragma unroll
			for (int j = 0; j < K; j++)
				f(j, j, k[j]);
			end(0);
		} else {
			for (int base = 0; base < n; base += 16) {
				uint32_t c[16];
#pragma unroll
				for (int j = 0; j < 16; j++)
					c[j] = base + j < n ? key(row + base + j) : 0u;
#pragma unroll
				for (int j = 0; j < 16; j++)
					f(base + j, j, c[j]);
				end(base);
			}
		}
	}
};

// The want-th largest key of the row (0 < want <= m), every thread getting it (>= 1).
//
// The search keeps the bucket of keys that share the threshold's bits found so far and
// knows how many keys lie above it and in it. Once at most 32 are in it (after a few steps
// on real rows, whose scores spread over the low bits), those keys are gathered and one
// warp ranks them exactly: two barriers instead of one per remaining pair of bits.
template <int K>
__device__ __forceinline__ uint32_t threshold(scratch &sh, int &parity, const run_keys<K> &r, int want)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	if (threadIdx.x == 0)
		sh.nfew = 0;
	uint32_t lo = 0xffffffffu, hi = 0u;
	r.each([&](int j, uint32_t k) {
		lo = min(lo, k ? k : 0xffffffffu), hi = max(hi, k);
	});
	lo = __reduce_min_sync(0xffffffffu, lo);
	hi = __reduce_max_sync(0xffffffffu, hi);
	uint32_t n = __reduce_add_sync(0xffffffffu, (uint32_t)r.n);
	if (lane == 0)
		sh.part[parity][warp] = make_uint4(lo, hi, n, 0);
	__syncthreads();
	{
		uint4 v = lane < warps ? sh.part[parity][lane] : make_uint4(0xffffffffu, 0, 0, 0);
		parity ^= 1;
		lo = __reduce_min_sync(0xffffffffu, v.x);
		hi = __reduce_max_sync(0xffffffffu, v.y);
		n = __reduce_add_sync(0xffffffffu, v.z);
	}
	if (lo == hi)
		return hi;
	// Bits above the highest differing one are common to every key, the threshold's
	// included; search the pairs of bits from the one holding it down to bit 0.
	const int top = 31 - __clz(lo ^ hi);
	int b = top & ~1;
	uint32_t thr = b + 2 >= 32 ? 0u : hi & ~((1u << (b + 2)) - 1u);
	uint32_t above = 0, in_play = n; /* keys above the bucket [thr, thr + 4 << b), and in it */
	for (; b >= 0; b -= 2) {
		const uint32_t c1 = thr | (1u << b), c2 = thr | (2u << b), c3 = thr | (3u << b);
		uint32_t n1 = 0, n2 = 0, n3 = 0;
		r.each([&](int j, uint32_t k) {
			n1 += k >= c1, n2 += k >= c2, n3 += k >= c3;
		});
		const uint3 t = cta_sum3<(K > 0 && K <= 16)>(sh, parity, n1, n2, n3);
		const uint32_t w = (uint32_t)want;
		if (t.z >= w)
			thr = c3, in_play = t.z - above;
		else if (t.y >= w)
			thr = c2, in_play = t.y - t.z, above = t.z;
		else if (t.x >= w)
			thr = c1, in_play = t.x - t.y, above = t.y;
		else
			in_play = above + in_play - t.x, above = t.x;
		if (b == 0 || in_play > 32)
			continue;
		// At most 32 keys left in [thr, thr + (1 << b)): the threshold is the
		// (want - above)-th largest of them.
		r.each([&](int j, uint32_t k) {
			if (k != 0 && (k >> b) == (thr >> b))
				sh.few[atomicAdd(&sh.nfew, 1u)] = k;
		});
		__syncthreads();
		if (warp == 0) {
			const uint32_t rank = w - above;
			const uint32_t mine = lane < (int)in_play ? sh.few[lane] : 0u;
			uint32_t gt = 0, ge = 0;
			for (int j = 0; j < 32; j++) {
				uint32_t x = __shfl_sync(0xffffffffu, mine, j);
				bool real = j < (int)in_play;
				gt += real && x > mine, ge += real && x >= mine;
			}
			unsigned hit = __ballot_sync(0xffffffffu, lane < (int)in_play && gt < rank && ge >= rank);
			if (lane == __ffs(hit) - 1)
				sh.thr = mine;
			else if (hit == 0 && lane == 0)
				sh.thr = thr; /* unreachable: the counts are exact */
		}
		__syncthreads();
		return sh.thr;
	}
	return thr;
}

// After threshold(): the kept candidates of this thread's run, a group of the run
// (run_keys::GROUP candidates) at a time: keep(first, mask, rank) with bit i of mask set
// when candidate first + i is kept, rank being the position of the group's first kept
// candidate among all kept candidates in index order (the next kept ones follow it). Of
// the keys equal to the threshold, the first (want - keys above it) by index are kept.
// A group at a time so that the caller can issue all the loads a group's outputs need
// before its first store (stores and loads it cannot prove apart would otherwise make
// every kept candidate a dependent round trip to memory).
template <int K, typename Keep>
__device__ __forceinline__ void emit(scratch &sh, const run_keys<K> &r, uint32_t thr, int want, Keep keep)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	uint32_t above = 0, equal = 0;
	r.each([&](int j, uint32_t k) {
		above += k > thr, equal += k == thr;
	});
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
	uint32_t mask = 0;
	r.each_group(
		[&](int j, int i, uint32_t k) {
			const bool kept = k > thr || (k == thr && ties < take);
			ties += k == thr;
			mask |= (uint32_t)kept << i;
		},
		[&](int first) {
			if (mask)
				keep(first, mask, (int)rank);
			rank += __popc(mask);
			mask = 0;
		});
}

}  // namespace gsa_topk

#endif

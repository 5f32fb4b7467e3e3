// Exact top-k of one row of float scores by one CTA, in index order: which of the row's m
// candidates are the `want` largest (ties to the lower index), and each kept candidate's
// rank among the kept ones, so the caller can compact them keeping their order.
//
// Why this shape: a decode batch gives one row per sequence, so a row's selection runs on
// one multiprocessor as a chain of CTA-wide steps, and its time is that chain's latency.
// A radix select with shared-memory histograms needs about four barriers per 8-bit digit
// and serialises on shared atomics (scores of one row share their leading bits, so they
// hit the same bins). Here instead the threshold - the want-th largest key - is found by
// counting, per thread in registers, the keys at or above seven pivots, then summing the
// counts over the CTA: warp reductions and one barrier a step, no atomics, no histogram.
// The pivots are placed from the row's mean and spread, then by interpolation (see
// threshold()), so that two or three steps usually leave at most 32 keys in play, which
// are then ranked directly. (Two bits a step with three pivots took 7-10 steps.)
//
// A decode step runs this once per layer, with its code evicted from the instruction
// caches by the kernels in between, and fetching that code costs more than executing it
// (select_split --cold-code: the selection took 7 us with its code cached and 12.5 us
// without, before this was written for a small footprint). Hence loops rather than
// unrolled copies where a step's code would otherwise grow with the pivots.
//
// Each thread owns a contiguous run of candidates (thread t: [t * per, t * per + per)), so
// that a single CTA-wide prefix sum of per-thread counts gives every kept candidate's
// position in index order. Cross-warp sums: each warp's totals go to shared memory, and
// after the barrier every warp reads all of them (one per lane) and reduces them again, so
// no second barrier is needed to hand the result back. At most 32 warps.
#ifndef GSA_CTA_TOPK_CUH
#define GSA_CTA_TOPK_CUH

#include <stdint.h>

#include "sparse/kernel_common.cuh"

namespace gsa_topk {

// Order-preserving map of a float to an unsigned key (larger float, larger key).
__device__ __forceinline__ uint32_t float_key(float f)
{
	uint32_t b = __float_as_uint(f);
	return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Pivots counted per step of the threshold search.
constexpr int PIVOTS = 7;

// Shared scratch: reduction partials, double-buffered so that one barrier per reduction
// suffices (a buffer is written again only two reductions later, after a barrier that
// every reader of the previous contents has passed).
struct scratch {
	uint4 part[2][32][2];
	float2 moments[32];
	uint2 scan[32];
	uint32_t few[32]; /* the keys still in play, once there are at most 32 */
	uint32_t nfew;
	uint4 keys[1024 / 4]; /* rank_direct: one key a thread */
};

// The float whose float_key is k.
__device__ __forceinline__ float key_float(uint32_t k)
{
	return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

// CTA-wide sums of PIVOTS counts per thread; every thread gets the totals in c. PACK: every
// total fits sixteen bits (runs held in registers: at most 32 candidates a thread, so at
// most 32768 in a CTA of up to 1024 threads), so two counts share a word: four reductions
// per level instead of seven.
template <bool PACK>
__device__ __forceinline__ void cta_counts(scratch &sh, int &parity, uint32_t (&c)[PIVOTS])
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	constexpr int W = PACK ? (PIVOTS + 1) / 2 : PIVOTS;
	uint32_t w[8];
#pragma unroll
	for (int i = 0; i < W; i++)
		w[i] = PACK ? c[2 * i] | (2 * i + 1 < PIVOTS ? c[2 * i + 1] << 16 : 0u) : c[i];
#pragma unroll
	for (int i = W; i < 8; i++)
		w[i] = 0;
#pragma unroll
	for (int i = 0; i < W; i++)
		w[i] = __reduce_add_sync(0xffffffffu, w[i]);
	if (lane == 0) {
		sh.part[parity][warp][0] = make_uint4(w[0], w[1], w[2], w[3]);
		if (W > 4)
			sh.part[parity][warp][1] = make_uint4(w[4], w[5], w[6], w[7]);
	}
	__syncthreads();
	const uint4 v0 = lane < warps ? sh.part[parity][lane][0] : make_uint4(0, 0, 0, 0);
	const uint4 v1 = W > 4 && lane < warps ? sh.part[parity][lane][1] : make_uint4(0, 0, 0, 0);
	parity ^= 1;
	w[0] = v0.x, w[1] = v0.y, w[2] = v0.z, w[3] = v0.w, w[4] = v1.x, w[5] = v1.y, w[6] = v1.z;
#pragma unroll
	for (int i = 0; i < W; i++)
		w[i] = __reduce_add_sync(0xffffffffu, w[i]);
#pragma unroll
	for (int i = 0; i < PIVOTS; i++)
		c[i] = PACK ? w[i / 2] >> (16 * (i % 2)) & 0xffffu : w[i];
}

// The pivots of one counting step: at equal steps of the key range [lo, hi) (keys), or
// around a centre in float space, closer together near it: base + scale * {0, +-0.12,
// +-0.36, +-0.72}. A function of i rather than an array, so that the counting loop need
// not be unrolled over the pivots (see threshold()).
struct step_pivots {
	bool keys;
	uint32_t lo, hi, q; /* keys: lo + q * (i + 1), or lo + i + 1 up to hi when q == 0 */
	float base, scale;
	__device__ __forceinline__ uint32_t at(int i) const
	{
		if (keys)
			return q ? lo + q * (uint32_t)(i + 1) : hi - lo <= (uint32_t)i + 1 ? hi : lo + (uint32_t)i + 1;
		const float x = (float)(i - PIVOTS / 2);
		return float_key(base + scale * x * (0.06f + 0.06f * fabsf(x)));
	}
	__device__ __forceinline__ void by_keys(uint32_t l, uint32_t h)
	{
		keys = true, lo = l, hi = h, q = (h - l) / (PIVOTS + 1);
	}
};

// Candidate j of this thread's run: from registers, or re-read from the row (K == 0: runs
// longer than the register budget, read from L2 on every step). Keys of real scores are at
// least 1 (the one float whose key would be 0, a NaN, is raised to 1) and at most
// 0xfffffffe (the one above, also a NaN, is lowered: the order among NaNs is not part of
// the definition, and a bracket's end above every key then fits 32 bits), so the register
// slots past the run's end hold 0, which no count and no threshold includes, and the
// unrolled loops need no bounds.
template <int K>
struct run_keys {
	uint32_t k[K > 0 ? K : 1];
	const float *row; /* this thread's first candidate */
	int n;            /* valid candidates in the run */

	__device__ __forceinline__ static uint32_t key(const float *p)
	{
		return min(max(float_key(__ldcg(p)), 1u), 0xfffffffeu);
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

// The want-th largest key of the row (0 < want <= m, m the row's candidates), every thread
// getting it (>= 1). ref: a score every thread reads alike (the row's first), against
// which the row's moments are summed.
//
// The search keeps a bracket [L, H) of keys known to hold the threshold, with `above` keys
// at or above H and `in_play` keys in it. Each step counts the keys at or above seven
// pivots inside the bracket (one CTA-wide reduction) and keeps the one of the eight
// sub-brackets that holds the threshold. Where the pivots go decides the number of steps:
//   - first, around the mean of the row's ordinary scores plus z standard deviations, z the
//     normal quantile of the kept fraction, with the standard deviation as scale (score
//     rows are roughly normal around the threshold; when they are not, the bracket still
//     shrinks);
//   - then, while the bracket lies between two pivots, around the interpolated position of
//     the threshold within it, the two nearest pivots at +-1/2 of its width over
//     sqrt(in_play);
//   - otherwise (an open bracket, pivots that would not be increasing inside the bracket,
//     or two placed steps that each kept more than a quarter), at the eighths of the
//     bracket's key range: at least seven eighths less range a step, so the search ends.
// Counts are exact whatever the pivots, so the result is; only the steps vary. On
// simulated rows (normal, heavy-tailed, bimodal, tied, with -3e38 entries) this takes 2-3
// counting steps where two bits a step took 7-10. Once at most 32 keys remain in play,
// every warp ranks them from shared memory; once the bracket holds a single key value, it
// is the threshold.
//
// Written for a small code footprint: a decode step's selection runs once per layer with
// its code evicted from the instruction caches by the attention and the GEMMs in between,
// and fetching code cost more than the search's arithmetic (select_split --cold-code).
// So the counting loop is not unrolled over the pivots, the first step's quantile is a
// closed form rather than normcdfinvf, the moments are float sums about ref rather than
// double ones, and the final rank is a loop over shared memory in every warp rather than
// shuffles in one.
template <int K>
__device__ __forceinline__ uint32_t threshold(scratch &sh, int &parity, const run_keys<K> &r, int want, int m,
					      float ref)
{
	const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
	if (threadIdx.x == 0)
		sh.nfew = 0;
	// Extremes of the keys; count, sum and sum of squares about ref of the ordinary scores
	// (finite, below 1e15 in magnitude: not the scorer's -3e38 for unmapped blocks).
	if (!(fabsf(ref) < 1e15f))
		ref = 0.f;
	uint32_t lo = 0xffffffffu, hi = 0u, cnt = 0;
	float sum = 0.f, sq = 0.f;
	r.each([&](int j, uint32_t k) {
		if (!k)
			return;
		lo = min(lo, k), hi = max(hi, k);
		const float f = key_float(k);
		if (fabsf(f) < 1e15f) {
			const float d = f - ref;
			cnt++, sum += d, sq = fmaf(d, d, sq);
		}
	});
	GSA_STAMP_AFTER(10, (uint64_t)lo + (uint64_t)__float_as_uint(sq));
	lo = __reduce_min_sync(0xffffffffu, lo);
	hi = __reduce_max_sync(0xffffffffu, hi);
	cnt = __reduce_add_sync(0xffffffffu, cnt);
	for (int o = 16; o > 0; o >>= 1)
		sum += __shfl_xor_sync(0xffffffffu, sum, o), sq += __shfl_xor_sync(0xffffffffu, sq, o);
	if (lane == 0) {
		sh.part[parity][warp][0] = make_uint4(lo, hi, cnt, 0);
		sh.moments[warp] = make_float2(sum, sq);
	}
	__syncthreads();
	{
		const uint4 v = lane < warps ? sh.part[parity][lane][0] : make_uint4(0xffffffffu, 0, 0, 0);
		const float2 d = lane < warps ? sh.moments[lane] : make_float2(0.f, 0.f);
		parity ^= 1;
		lo = __reduce_min_sync(0xffffffffu, v.x);
		hi = __reduce_max_sync(0xffffffffu, v.y);
		cnt = __reduce_add_sync(0xffffffffu, v.z);
		sum = d.x, sq = d.y;
		for (int o = 16; o > 0; o >>= 1)
			sum += __shfl_xor_sync(0xffffffffu, sum, o), sq += __shfl_xor_sync(0xffffffffu, sq, o);
	}
	GSA_STAMP(11);
	if (lo == hi)
		return hi;
	const uint32_t w = (uint32_t)want;
	uint32_t L = lo, H = hi + 1; /* keys are at most 0xfffffffe (run_keys::key) */
	uint32_t above = 0, in_play = (uint32_t)m;
	step_pivots pv;
	pv.by_keys(L, H);
	if (cnt > 1 && w < cnt) {
		// Normal quantile of 1 - want / cnt (Tukey's lambda approximation, within 0.01 in
		// the bulk): u^0.14 - (1 - u)^0.14, u the kept fraction, times 4.91.
		const float mean = __fdividef(sum, (float)cnt);
		const float sd = sqrtf(fmaxf(__fdividef(sq, (float)cnt) - mean * mean, 0.f));
		const float u = __fdividef((float)w, (float)cnt);
		const float z = 4.91f * (__powf(1.f - u, 0.14f) - __powf(u, 0.14f));
		pv.keys = false, pv.base = ref + mean + sd * z, pv.scale = sd;
	}
	int misses = 0, steps = 0;
	bool bounded = false;
	for (;;) {
		// Placed pivots must be increasing and inside the bracket; else the key eighths.
		if (!pv.keys) {
			uint32_t prev = L;
			bool ok = true;
#pragma unroll 1
			for (int i = 0; i < PIVOTS; i++) {
				const uint32_t c = pv.at(i);
				ok = ok && c > prev;
				prev = c;
			}
			if (!ok || prev >= H)
				pv.by_keys(L, H);
		}
		uint32_t n[PIVOTS];
		if constexpr (K > 0) {
			// One pass over the run per pivot: the run is in registers, and the pass is
			// the same code for every pivot (the counts rotate through n).
#pragma unroll 1
			for (int i = 0; i < PIVOTS; i++) {
				const uint32_t c = pv.at(i);
				uint32_t cnt_i = 0;
				r.each([&](int j, uint32_t k) { cnt_i += k >= c; });
#pragma unroll
				for (int t = 0; t + 1 < PIVOTS; t++)
					n[t] = n[t + 1];
				n[PIVOTS - 1] = cnt_i;
			}
		} else {
			// Re-read runs: one pass for all pivots (each pass reads the row again).
			uint32_t c[PIVOTS];
#pragma unroll
			for (int i = 0; i < PIVOTS; i++)
				c[i] = pv.at(i), n[i] = 0;
			r.each([&](int j, uint32_t k) {
#pragma unroll
				for (int i = 0; i < PIVOTS; i++)
					n[i] += k >= c[i];
			});
		}
		cta_counts<(K > 0)>(sh, parity, n);
		if (steps < 3)
			GSA_STAMP(12 + steps);
		steps++;
		// The highest pivot with at least `want` keys at or above it is the bracket's new
		// lower end (none: the old one stays).
		int top = -1;
		uint32_t ntop = above + in_play, nab = n[0];
#pragma unroll
		for (int i = 0; i < PIVOTS; i++) {
			if (n[i] >= w) {
				top = i, ntop = n[i];
				nab = i + 1 < PIVOTS ? n[i + 1 < PIVOTS ? i + 1 : i] : above;
			}
		}
		const uint32_t before = in_play;
		const uint32_t nL = top < 0 ? L : pv.at(top);
		const uint32_t nH = top < 0 ? pv.at(0) : top + 1 < PIVOTS ? pv.at(top + 1) : H;
		in_play = ntop - nab, above = nab, L = nL, H = nH;
		if (!pv.keys && in_play > before / 4)
			misses++;
		bounded = top >= 0 && top + 1 < PIVOTS;
		if (H - L == 1)
			return L;
		if (in_play <= 32)
			break;
		pv.by_keys(L, H);
		if (bounded && misses < 2) {
			const float fl = key_float(L), fh = key_float(H - 1);
			if (fh > fl && fh - fl < 3.0e38f) {
				const float span = fh - fl;
				pv.keys = false;
				pv.base = fh - __fdividef(span * ((float)(w - above) - 0.5f), (float)in_play);
				pv.scale = span * 4.1667f * rsqrtf((float)in_play); /* inner pivots at +-0.5 span/sqrt */
			}
		}
	}
	// At most 32 keys left in [L, H): the threshold is the (want - above)-th largest. Every
	// warp ranks them (no second barrier to hand the result over).
	r.each([&](int j, uint32_t k) {
		if (k >= L && k < H)
			sh.few[atomicAdd(&sh.nfew, 1u)] = k;
	});
	__syncthreads();
	const uint32_t rank = w - above;
	const uint32_t mine = lane < (int)in_play ? sh.few[lane] : 0u;
	uint32_t gt = 0, ge = 0;
#pragma unroll 4
	for (int j = 0; j < (int)in_play; j++) {
		const uint32_t x = sh.few[j];
		gt += x > mine, ge += x >= mine;
	}
	const unsigned hit = __ballot_sync(0xffffffffu, lane < (int)in_play && gt < rank && ge >= rank);
	GSA_STAMP(15);
	return hit ? __shfl_sync(0xffffffffu, mine, __ffs(hit) - 1) : L; /* hit: the counts are exact */
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

// Rows of at most RANK_MAX candidates (and one a thread): every candidate's
// rank is counted directly against the whole row in shared memory (keys above it, and
// equal keys of lower index), and it is kept when its rank is below want; then one
// CTA-wide count of the kept ones before it gives its place. Two barriers and one loop,
// where threshold() needs a barrier per counting step and more code to fetch: a row this
// short is a few hundred comparisons a thread. The loop is split at the warp's own keys so
// that each part compares one way for the whole warp (lower warps' keys beat a candidate
// when at or above it, higher warps' only when above it). key: this thread's candidate
// (thread t holds candidate t), 0 past the row; keep(0, 1, place) for a kept candidate.
// On the H200 (select_split.txt) 253 candidates took 5.4 us instead of 7.8 with the code
// evicted, 3.9 instead of 4.5 warm; 509 took 8.5 instead of 7.9 (the loop grows with the
// row in every warp), hence the cut at 256.
constexpr int RANK_MAX = 256;

template <typename Keep>
__device__ __forceinline__ void rank_direct(scratch &sh, uint32_t key, int m, int want, Keep keep)
{
	const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32, warps = blockDim.x / 32;
	const int base = tid - lane;
	((uint32_t *)sh.keys)[tid] = key;
	__syncthreads();
	uint32_t rank = 0;
	if (base < m) {
		const uint4 *k4 = sh.keys;
#pragma unroll 4
		for (int j = 0; j < base / 4; j++) {
			const uint4 v = k4[j];
			rank += (v.x >= key) + (v.y >= key) + (v.z >= key) + (v.w >= key);
		}
		const uint32_t *k1 = (const uint32_t *)sh.keys;
#pragma unroll 4
		for (int j = base; j < base + 32; j++) {
			const uint32_t x = k1[j];
			rank += x > key || (x == key && j < tid);
		}
#pragma unroll 4
		for (int j = (base + 32) / 4; j < (m + 3) / 4; j++) {
			const uint4 v = k4[j];
			rank += (v.x > key) + (v.y > key) + (v.z > key) + (v.w > key);
		}
	}
	const bool kept = tid < m && rank < (uint32_t)want;
	GSA_STAMP(7);
	const unsigned ballot = __ballot_sync(0xffffffffu, kept);
	if (lane == 0)
		sh.scan[warp] = make_uint2(__popc(ballot), 0);
	__syncthreads();
	const uint32_t before = __reduce_add_sync(0xffffffffu, lane < warp && lane < warps ? sh.scan[lane].x : 0u);
	if (kept)
		keep(0, 1u, (int)(before + __popc(ballot & ((1u << lane) - 1))));
}

}  // namespace gsa_topk

#endif

/* The budget arithmetic and the C reference of the selection: budgets on a table of cases;
 * selection against an independent double-precision top-k, planted needles, dense rows,
 * order, sinks and local windows, both policies. */
#include <math.h>
#include <stdlib.h>

#include "preload/config.h"
#include "sparse/budget.h"
#include "sparse/select_ref.h"
#include "tests/cpu/check.h"

static void budgets(void)
{
	struct {
		int32_t len, qlen, bs;
		double ratio;
		int32_t sink, local, minb, maxb, mintok;
		int32_t n, keep, sparse, shadow_len;
	} t[] = {
		/* 8K tokens, block 16: 512 blocks, 30% -> ceil(153.6) = 154 */
		{8192, 1, 16, 0.3, 1, 2, 16, 0, 2048, 512, 154, 1, 154 * 16},
		/* partial last block: 8200 tokens = 513 blocks (8 in the last) */
		{8200, 1, 16, 0.3, 1, 2, 16, 0, 2048, 513, 154, 1, 153 * 16 + 8},
		/* below min_tokens: dense */
		{2047, 1, 16, 0.3, 1, 2, 16, 0, 2048, 128, 128, 0, 2047},
		/* prefill / speculative: dense */
		{8192, 4, 16, 0.3, 1, 2, 16, 0, 2048, 512, 512, 0, 8192},
		/* min_blocks floor */
		{4096, 1, 128, 0.1, 1, 2, 16, 0, 0, 32, 16, 1, 16 * 128},
		/* max_blocks cap */
		{131072, 1, 16, 0.3, 1, 2, 16, 2048, 0, 8192, 2048, 1, 2048 * 16},
		/* budget reaches n: dense */
		{512, 1, 16, 0.9, 1, 2, 32, 0, 0, 32, 32, 0, 512},
		/* ratio 1: dense */
		{8192, 1, 16, 1.0, 1, 2, 16, 0, 0, 512, 512, 0, 8192},
		/* sink + local above the budget */
		{1024, 1, 16, 0.01, 4, 8, 1, 0, 0, 64, 12, 1, 12 * 16},
		/* empty sequence */
		{0, 1, 16, 0.3, 1, 2, 16, 0, 0, 0, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		struct gsa_budget p = gsa_plan(t[i].len, t[i].qlen, t[i].bs, t[i].ratio, t[i].sink,
					       t[i].local, t[i].minb, t[i].maxb, t[i].mintok, 1 << 20);
		CHECK(p.n == t[i].n && p.keep == t[i].keep && p.sparse == (bool)t[i].sparse &&
			      gsa_shadow_len(p, t[i].bs) == t[i].shadow_len,
		      "case %zu: n %d keep %d sparse %d len %d", i, p.n, p.keep, p.sparse,
		      gsa_shadow_len(p, t[i].bs));
	}
}

static uint16_t bf16(float f)
{
	uint32_t b;
	memcpy(&b, &f, 4);
	b += 0x7fff + ((b >> 16) & 1);
	return (uint16_t)(b >> 16);
}
static float f32(uint16_t v)
{
	uint32_t b = (uint32_t)v << 16;
	float f;
	memcpy(&f, &b, 4);
	return f;
}
/* fp8 e4m3 rounding written apart from the reference's: the nearest of all 127 finite
 * non-negative e4m3 values by enumeration (ties to the even code), saturated at 448. */
static float e4m3(float f)
{
	float a = fabsf(f), best = 0.f;
	int best_code = 0;
	for (int code = 1; code < 0x7f; code++) {
		int ex = code >> 3, man = code & 7;
		float v = ex ? ldexpf(1.f + man / 8.f, ex - 7) : ldexpf(man / 8.f, -6);
		float d = fabsf(v - a), bd = fabsf(best - a);
		if (d < bd || (d == bd && !(code & 1) && (best_code & 1)))
			best = v, best_code = code;
	}
	return copysignf(best, f);
}

static float frand(void) { return (float)rand() / (float)RAND_MAX * 2.f - 1.f; }

enum { S = 4, HQ = 8, HKV = 2, D = 16, BS = 4, NB = 256, STRIDE = 48 };

static void selection(int policy)
{
	static uint16_t kv[NB][2][BS][HKV][D]; /* vLLM layout, K and V interleaved per block */
	static uint16_t q[S][HQ][D];
	int32_t table[S][STRIDE], lens[S], qstart[S + 1], shadow[S][STRIDE], shadow_lens[S];
	for (int b = 0; b < NB; b++)
		for (int t = 0; t < BS; t++)
			for (int h = 0; h < HKV; h++)
				for (int d = 0; d < D; d++)
					kv[b][0][t][h][d] = bf16(frand()), kv[b][1][t][h][d] = bf16(frand());
	for (int s = 0; s < S; s++)
		for (int h = 0; h < HQ; h++)
			for (int d = 0; d < D; d++)
				q[s][h][d] = bf16(frand());
	/* Distinct physical blocks, shuffled; sequence lengths 40..47 blocks, some partial. */
	int perm[NB];
	for (int i = 0; i < NB; i++)
		perm[i] = i;
	for (int i = NB - 1; i > 0; i--) {
		int j = rand() % (i + 1), x = perm[i];
		perm[i] = perm[j], perm[j] = x;
	}
	for (int s = 0; s < S; s++) {
		for (int b = 0; b < STRIDE; b++)
			table[s][b] = perm[s * STRIDE + b];
		lens[s] = (40 + s * 2) * BS - s;
		qstart[s] = s;
	}
	qstart[S] = S;
	/* Sequence 1 has two query tokens (a prefill chunk): dense. */
	for (int s = 2; s <= S; s++)
		qstart[s] = s + 1;
	/* Needles in sequence 0: blocks 10 and 30 aligned with its group-mean query. */
	for (int nb = 10; nb <= 30; nb += 20)
		for (int t = 0; t < BS; t++)
			for (int h = 0; h < HKV; h++)
				for (int d = 0; d < D; d++) {
					float m = 0;
					for (int j = 0; j < HQ / HKV; j++)
						m += f32(q[0][h * (HQ / HKV) + j][d]);
					kv[table[0][nb]][0][t][h][d] = bf16(4.f * m);
				}

	struct gsa_select_args a = {
		.query = q, .q_stride_token = HQ * D, .q_stride_kvhead = (HQ / HKV) * D,
		.q_stride_member = D,
		.key_cache = kv, .k_stride_block = 2 * BS * HKV * D, .k_stride_token = HKV * D,
		.k_stride_head = D,
		.block_table = &table[0][0], .bt_stride = STRIDE, .seq_lens = lens,
		.query_start = qstart, .num_seqs = S, .block_size = BS, .num_kv_heads = HKV,
		.num_q_heads = HQ, .head_size = D, .dtype = GSA_KV_BF16, .policy = policy,
		.ratio = 0.25, .sink_blocks = 1, .local_blocks = 2, .min_blocks = 4,
		.max_blocks = 0, .min_tokens = 16,
		.shadow_table = &shadow[0][0], .shadow_lens = shadow_lens,
	};
	CHECK(gsa_select_ref(&a) == 0, "reference runs");

	for (int s = 0; s < S; s++) {
		int qlen = qstart[s + 1] - qstart[s];
		struct gsa_budget p = gsa_plan(lens[s], qlen, BS, 0.25, 1, 2, 4, 0, 16, STRIDE);
		CHECK_EQ_U64(shadow_lens[s], gsa_shadow_len(p, BS));
		if (!p.sparse) {
			CHECK(s == 1 && memcmp(shadow[s], table[s], sizeof(int32_t) * p.n) == 0,
			      "dense row %d copied", s);
			continue;
		}
		/* Independent scores in double, from the same rounded representations. Policy
		 * mean: the group-mean query rounded to fp16 after scaling its largest magnitude
		 * into [2^14, 2^15) by a power of two, and scaled back. */
		int qtok = qstart[s];
		double qm[HKV][D], qmax = 0;
		for (int h = 0; h < HKV; h++)
			for (int d = 0; d < D; d++) {
				double qb = 0;
				for (int j = 0; j < HQ / HKV; j++)
					qb += f32(q[qtok][h * (HQ / HKV) + j][d]);
				qm[h][d] = (float)(qb / (HQ / HKV));
				qmax = fmax(qmax, fabs(qm[h][d]));
			}
		if (policy != GSA_POLICY_QUEST) {
			int e;
			frexp(qmax, &e);
			for (int h = 0; h < HKV; h++)
				for (int d = 0; d < D; d++)
					qm[h][d] = ldexp((double)(_Float16)ldexp(qm[h][d], 15 - e), e - 15);
		}
		double sc[STRIDE];
		for (int b = 1; b < p.n - 2; b++) {
			double tot = 0;
			for (int h = 0; h < HKV; h++)
				for (int d = 0; d < D; d++) {
					double qb = qm[h][d], sum = 0, lo = 1e30, hi = -1e30;
					for (int t = 0; t < BS; t++) {
						double v = f32(kv[table[s][b]][0][t][h][d]);
						sum += v, lo = v < lo ? v : lo, hi = v > hi ? v : hi;
					}
					if (policy == GSA_POLICY_QUEST)
						tot += fmax(qb * lo, qb * hi);
					else
						tot += qb * e4m3((float)(sum / BS));
				}
			sc[b] = tot;
		}
		/* The kept middle blocks are exactly those above the want-th best score. */
		int want = p.keep - 3, kept_mid = 0, ok_order = 1, ok_set = 1;
		int in_shadow[STRIDE] = {0};
		for (int i = 0; i < p.keep; i++) {
			int b = -1;
			for (int x = 0; x < p.n; x++)
				if (table[s][x] == shadow[s][i])
					b = x;
			CHECK(b >= 0, "shadow entry from the row");
			if (b < 0)
				break;
			in_shadow[b] = 1;
			if (i > 0) {
				int prev = -1;
				for (int x = 0; x < p.n; x++)
					if (table[s][x] == shadow[s][i - 1])
						prev = x;
				ok_order &= prev < b;
			}
		}
		for (int b = 1; b < p.n - 2; b++) {
			int better = 0;
			for (int x = 1; x < p.n - 2; x++)
				better += sc[x] > sc[b] + 1e-5 * fabs(sc[b]);
			if (in_shadow[b])
				kept_mid++, ok_set &= better < want;
			else
				ok_set &= better >= want - 1; /* not clearly better than a kept one */
		}
		CHECK(ok_order, "seq %d: original order", s);
		CHECK(in_shadow[0] && in_shadow[p.n - 1] && in_shadow[p.n - 2], "seq %d: sink and local", s);
		CHECK_EQ_U64(kept_mid, want);
		CHECK(ok_set, "seq %d policy %d: kept blocks are the best-scoring ones", s, policy);
		if (s == 0)
			CHECK(in_shadow[10] && in_shadow[30], "policy %d: needles kept", policy);
	}
}

/* gsa_shadow_len_bound against brute force: for every maximum length up to a few thousand
 * blocks, no sequence of that length or shorter gets a longer shadow, and the bound is the
 * maximum itself only when nothing smaller is safe; on the default settings it is close to
 * the budget (within the dense-short lengths and one block). */
static void shadow_len_bounds(void)
{
	struct {
		int32_t bs;
		double ratio;
		int32_t sink, local, minb, maxb, mintok;
	} c[] = {
		{16, 0.3, 1, 2, 16, 0, 2048},  {16, 0.1, 4, 8, 0, 0, 0},   {128, 0.3, 1, 2, 16, 0, 2048},
		{16, 0.9, 1, 2, 0, 0, 0},      {16, 0.5, 0, 1, 64, 100, 0}, {64, 0.3, 1, 2, 1, 0, 100},
		{16, 1.0, 1, 2, 16, 0, 2048},  {16, 0.01, 1, 2, 0, 0, 0},
	};
	int bad = 0, checked = 0, tight = 0, lowered = 0;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		int64_t worst = 0; /* the longest shadow of any length so far */
		for (int32_t len = 1; len <= 3000 * c[i].bs && !bad; len += (len < 4096 ? 1 : 7)) {
			struct gsa_budget p = gsa_plan(len, 1, c[i].bs, c[i].ratio, c[i].sink, c[i].local,
						       c[i].minb, c[i].maxb, c[i].mintok, 1 << 20);
			int64_t sl = gsa_shadow_len(p, c[i].bs);
			if (sl > worst)
				worst = sl;
			int64_t b = gsa_shadow_len_bound(len, c[i].bs, c[i].ratio, c[i].sink, c[i].local,
							 c[i].minb, c[i].maxb, c[i].mintok, 1 << 20);
			checked++;
			if (b < worst || b > len) {
				CHECK(0, "case %zu, max %d: bound %lld, longest shadow %lld", i, len,
				      (long long)b, (long long)worst);
				bad = 1;
			}
			lowered += b < len;
			if (c[i].ratio == 0.3 && c[i].bs == 16 && len > 20000)
				tight += b <= (int64_t)ceil(0.3 * ((len + 15) / 16)) * 16 + 16;
		}
	}
	CHECK(!bad, "shadow length bounds: %d maxima, none below a shadow", checked);
	CHECK(lowered > 1000, "the bound is below the maximum for long enough sequences (%d)", lowered);
	CHECK(tight > 100, "on the defaults the bound is the budget's length (%d)", tight);
	/* ratio 1: nothing to lower */
	CHECK_EQ_U64(gsa_shadow_len_bound(131072, 16, 1.0, 1, 2, 16, 0, 2048, 1 << 20), 131072);
	/* a maximum that stays dense (below min_tokens) is returned as it is */
	CHECK_EQ_U64(gsa_shadow_len_bound(2000, 16, 0.3, 1, 2, 16, 0, 2048, 1 << 20), 2000);
	/* 128K at 0.3, block 16: 2458 blocks of 8192 */
	CHECK_EQ_U64(gsa_shadow_len_bound(131072, 16, 0.3, 1, 2, 16, 0, 2048, 1 << 20), 2458 * 16);
}

int main(void)
{
	srand(12345);
	budgets();
	shadow_len_bounds();
	selection(GSA_POLICY_MEAN);
	selection(GSA_POLICY_QUEST);
	return check_report("test_select_ref");
}

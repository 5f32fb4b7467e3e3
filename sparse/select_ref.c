/* The host reference of the selection (see select_ref.h). */
#include "sparse/select_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "preload/config.h"
#include "sparse/budget.h"

static float to_f32(uint16_t v, int dtype)
{
	if (dtype == GSA_KV_FP16) {
		_Float16 h;
		memcpy(&h, &v, 2);
		return (float)h;
	}
	uint32_t b = (uint32_t)v << 16;
	float f;
	memcpy(&f, &b, 4);
	return f;
}

/* Round to the element type and back, as the kernel stores representations. */
static float round_to(float f, int dtype)
{
	if (dtype == GSA_KV_FP16)
		return (float)(_Float16)f;
	uint32_t b;
	memcpy(&b, &f, 4);
	b += 0x7fff + ((b >> 16) & 1); /* round to nearest even (finite inputs) */
	b &= 0xffff0000u;
	memcpy(&f, &b, 4);
	return f;
}

/* Round to fp8 e4m3 and back, as the kernel stores mean keys: round to nearest even with
 * three mantissa bits (spacing 2^(e-4) in the binade [2^(e-1), 2^e), 2^-9 below the smallest
 * normal 2^-6), saturated to +-448. */
static float round_e4m3(float f)
{
	float a = fabsf(f);
	if (a != a)
		return f;
	if (a >= 448.f)
		return copysignf(448.f, f);
	int e;
	frexpf(a, &e);
	float step = ldexpf(1.f, e - 4 < -9 ? -9 : e - 4);
	return copysignf(rintf(a / step) * step, f); /* a / step is exact: a power of two */
}

/* Policy mean scores with the group-mean query scaled by 2^k, k such that its largest
 * magnitude lies in [2^14, 2^15) (k from that magnitude's biased float exponent e:
 * 141 - e, within [-126, 126]), rounded to fp16, and the sum scaled back by 2^-k.
 * Writes the rounded scaled query to qh and returns 2^-k. */
static float scaled_fp16_query(const float *qbar, int row, float *qh)
{
	uint32_t m = 0;
	for (int c = 0; c < row; c++) {
		uint32_t b;
		memcpy(&b, &qbar[c], 4);
		b &= 0x7fffffffu;
		m = b > m ? b : m;
	}
	int k = 141 - (int)(m >> 23);
	k = k < -126 ? -126 : k > 126 ? 126 : k;
	const float scale = ldexpf(1.f, k);
	for (int c = 0; c < row; c++)
		qh[c] = (float)(_Float16)(qbar[c] * scale);
	return ldexpf(1.f, -k);
}

/* qbar: the group-mean query (quest), or its scaled fp16 rounding (mean; inv = 2^-k). */
static float score_block(const struct gsa_select_args *a, int64_t phys, const float *qbar, float inv)
{
	const int row = a->num_kv_heads * a->head_size;
	const uint16_t *k = (const uint16_t *)a->key_cache + phys * a->k_stride_block;
	float score = 0.f;
	for (int c = 0; c < row; c++) {
		float sum = 0.f, lo = 3.0e38f, hi = -3.0e38f;
		for (int t = 0; t < a->block_size; t++) {
			int64_t off = (int64_t)(c / a->head_size) * a->k_stride_head + c % a->head_size;
			float f = to_f32(k[(int64_t)t * a->k_stride_token + off], a->dtype);
			sum += f;
			lo = f < lo ? f : lo;
			hi = f > hi ? f : hi;
		}
		if (a->policy == GSA_POLICY_QUEST) {
			float x = qbar[c] * round_to(lo, a->dtype), y = qbar[c] * round_to(hi, a->dtype);
			score += x > y ? x : y;
		} else {
			score += qbar[c] * round_e4m3(sum * (1.f / (float)a->block_size));
		}
	}
	return score * inv;
}

struct cand {
	float score;
	int32_t block;
};

static int by_score_then_index(const void *x, const void *y)
{
	const struct cand *p = x, *q = y;
	if (p->score != q->score)
		return p->score > q->score ? -1 : 1;
	return p->block - q->block;
}

int gsa_select_ref(const struct gsa_select_args *a)
{
	const int row = a->num_kv_heads * a->head_size;
	if (a->num_kv_heads <= 0 || a->num_q_heads % a->num_kv_heads || a->block_size <= 0)
		return -1;
	const int group = a->num_q_heads / a->num_kv_heads;
	float *qbar = malloc(sizeof(float) * (size_t)row);
	struct cand *c = malloc(sizeof *c * (size_t)(a->bt_stride ? a->bt_stride : 1));
	uint8_t *keep = malloc((size_t)(a->bt_stride ? a->bt_stride : 1));
	if (!qbar || !c || !keep) {
		free(qbar), free(c), free(keep);
		return -1;
	}
	for (int s = 0; s < a->num_seqs; s++) {
		const int32_t *table = a->block_table + (int64_t)s * a->bt_stride;
		int32_t *shadow = a->shadow_table + (int64_t)s * a->bt_stride;
		int qlen = a->query_start ? a->query_start[s + 1] - a->query_start[s] : 1;
		struct gsa_budget p = gsa_plan(a->seq_lens[s], qlen, a->block_size, a->ratio,
					       a->sink_blocks, a->local_blocks, a->min_blocks,
					       a->max_blocks, a->min_tokens, a->bt_stride);
		a->shadow_lens[s] = gsa_shadow_len(p, a->block_size);
		if (!p.sparse) {
			memcpy(shadow, table, sizeof(int32_t) * (size_t)p.n);
			continue;
		}
		const int token = a->query_start ? a->query_start[s] : s;
		const uint16_t *q = (const uint16_t *)a->query + (int64_t)token * a->q_stride_token;
		for (int i = 0; i < row; i++) {
			int h = i / a->head_size, d = i % a->head_size;
			float sum = 0.f;
			for (int j = 0; j < group; j++)
				sum += to_f32(q[h * a->q_stride_kvhead + j * a->q_stride_member + d], a->dtype);
			qbar[i] = sum / (float)group;
		}
		float inv = 1.f;
		if (a->policy != GSA_POLICY_QUEST)
			inv = scaled_fp16_query(qbar, row, qbar);
		const int lo = a->sink_blocks, hi = p.n - a->local_blocks;
		int m = 0;
		for (int b = lo; b < hi; b++)
			c[m++] = (struct cand){score_block(a, table[b], qbar, inv), b};
		qsort(c, (size_t)m, sizeof *c, by_score_then_index);
		memset(keep, 0, (size_t)p.n);
		for (int b = 0; b < p.n; b++)
			keep[b] = b < lo || b >= hi;
		for (int i = 0; i < p.keep - a->sink_blocks - a->local_blocks; i++)
			keep[c[i].block] = 1;
		int pos = 0;
		for (int b = 0; b < p.n; b++)
			if (keep[b])
				shadow[pos++] = table[b];
	}
	free(qbar), free(c), free(keep);
	return 0;
}

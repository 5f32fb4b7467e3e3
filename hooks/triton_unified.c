/* vLLM's Triton unified attention (TRITON_ATTN backend), two generations:
 *   2025 (vllm/attention/ops/triton_unified_attention.py, e.g. 0.10.1):
 *        kernel_unified_attention_2d, kernel_unified_attention_3d, reduce_segments
 *   2026 (vllm/v1/attention/ops/triton_unified_attention.py, e.g. 0.33.0):
 *        kernel_unified_attention (2D and 3D by a constexpr), reduce_segments
 * Triton launches them with flat arguments. A kernel is accepted only when its name matches
 * and its parameter sizes fit the source's parameter list in a way that leaves no doubt about
 * where the fields below are (signature.h); anything else passes through dense. */
#include <stdlib.h>
#include <string.h>

#include "hooks/adapter.h"
#include "hooks/signature.h"
#include "preload/log.h"

enum field {
	F_QUERY, F_KEY, F_VALUE, F_BLOCK_TABLE, F_SEQ_LENS, F_QUERY_START, F_NUM_SEQS,
	F_BT_STRIDE, F_Q_STRIDE0, F_Q_STRIDE1, F_OUT_STRIDE0, F_OUT_STRIDE1,
	F_K_STRIDE0, F_K_STRIDE1, F_K_STRIDE2,
	/* Present (non-null) only for position-dependent attention that a compacted table
	 * would change: ALiBi, query-query bias, multimodal prefix ranges, per-sequence
	 * causality. Such launches run dense. */
	F_ALIBI, F_QQ_BIAS, F_MM_PREFIX, F_PER_SEQ_CAUSAL, F_COUNT
};

#define P(name, kind, field) {name, GSA_P_##kind, field}

/* Parameters shared by the attention kernels, from block_tables on. */
#define TABLE_AND_LENS P("block_tables_ptr", PTR, F_BLOCK_TABLE), P("seq_lens_ptr", PTR, F_SEQ_LENS)
#define KV_STRIDES                                                                          \
	P("stride_k_cache_0", I64, F_K_STRIDE0), P("stride_k_cache_1", I64, F_K_STRIDE1),    \
	P("stride_k_cache_2", I64, F_K_STRIDE2), P("stride_v_cache_0", I64, -1),             \
	P("stride_v_cache_1", I64, -1), P("stride_v_cache_2", I64, -1)

static const struct gsa_param_tmpl v2025_2d[] = {
	P("output_ptr", PTR, -1), P("query_ptr", PTR, F_QUERY), P("key_cache_ptr", PTR, F_KEY),
	P("value_cache_ptr", PTR, F_VALUE), P("sink_ptr", PTR_OPT, -1), TABLE_AND_LENS,
	P("alibi_slopes_ptr", PTR_OPT, F_ALIBI), P("qq_bias_ptr", PTR_OPT, F_QQ_BIAS), P("scale", F32, -1),
	P("k_scale", ANY_OPT, -1), P("v_scale", ANY_OPT, -1), P("softcap", F32, -1),
	P("block_table_stride", I64, F_BT_STRIDE), P("query_stride_0", I64, F_Q_STRIDE0),
	P("query_stride_1", I64, F_Q_STRIDE1), P("output_stride_0", I64, F_OUT_STRIDE0),
	P("output_stride_1", I64, F_OUT_STRIDE1), P("qq_bias_stride_0", I64, -1), KV_STRIDES,
	P("query_start_len_ptr", PTR, F_QUERY_START), P("num_seqs", I32, F_NUM_SEQS),
};

static const struct gsa_param_tmpl v2025_3d[] = {
	P("segm_output_ptr", PTR, -1), P("segm_max_ptr", PTR, -1), P("segm_expsum_ptr", PTR, -1),
	P("query_ptr", PTR, F_QUERY), P("key_cache_ptr", PTR, F_KEY),
	P("value_cache_ptr", PTR, F_VALUE), P("sink_ptr", PTR_OPT, -1), TABLE_AND_LENS,
	P("alibi_slopes_ptr", PTR_OPT, F_ALIBI), P("qq_bias_ptr", PTR_OPT, F_QQ_BIAS), P("scale", F32, -1),
	P("k_scale", ANY_OPT, -1), P("v_scale", ANY_OPT, -1), P("softcap", F32, -1),
	P("block_table_stride", I64, F_BT_STRIDE), P("query_stride_0", I64, F_Q_STRIDE0),
	P("query_stride_1", I64, F_Q_STRIDE1), P("qq_bias_stride_0", I64, -1), KV_STRIDES,
	P("query_start_len_ptr", PTR, F_QUERY_START), P("num_seqs", I32, F_NUM_SEQS),
};

static const struct gsa_param_tmpl v2025_reduce[] = {
	P("output_ptr", PTR, -1), P("segm_output_ptr", PTR, -1), P("segm_max_ptr", PTR, -1),
	P("segm_expsum_ptr", PTR, -1), P("seq_lens_ptr", PTR, F_SEQ_LENS),
	P("num_seqs", INT, F_NUM_SEQS), P("output_stride_0", I64, F_OUT_STRIDE0),
	P("output_stride_1", I64, F_OUT_STRIDE1), P("block_table_stride", I64, F_BT_STRIDE),
	P("query_start_len_ptr", PTR, F_QUERY_START),
};

static const struct gsa_param_tmpl v2026[] = {
	P("output_ptr", PTR, -1), P("query_ptr", PTR, F_QUERY), P("key_cache_ptr", PTR, F_KEY),
	P("value_cache_ptr", PTR, F_VALUE), P("sink_ptr", PTR_OPT, -1), TABLE_AND_LENS,
	P("alibi_slopes_ptr", PTR_OPT, F_ALIBI), P("qq_bias_ptr", PTR_OPT, F_QQ_BIAS), P("scale", F32, -1),
	P("q_scale", ANY_OPT, -1), P("k_scale", ANY_OPT, -1), P("v_scale", ANY_OPT, -1),
	P("out_scale", F32, -1), P("softcap", F32, -1),
	P("block_table_stride", I64, F_BT_STRIDE), P("query_stride_0", I64, F_Q_STRIDE0),
	P("query_stride_1", I64, F_Q_STRIDE1), P("output_stride_0", I64, F_OUT_STRIDE0),
	P("output_stride_1", I64, F_OUT_STRIDE1), P("qq_bias_stride_0", I64, -1),
	P("per_seq_causal_ptr", PTR_OPT, F_PER_SEQ_CAUSAL),
	P("mm_prefix_range_ptr", PTR_OPT, F_MM_PREFIX),
	P("rswa_prefix_lens_ptr", PTR, -1) /* seq lens when unused */, KV_STRIDES,
	P("query_start_len_ptr", PTR, F_QUERY_START), P("num_seqs", I32, F_NUM_SEQS),
	P("segm_output_ptr", PTR_OPT, -1), P("segm_max_ptr", PTR_OPT, -1),
	P("segm_expsum_ptr", PTR_OPT, -1), P("k_scale_cache_ptr", PTR_OPT, -1),
	P("v_scale_cache_ptr", PTR_OPT, -1), P("stride_ks_blk", INT, -1),
	P("stride_ks_slot", INT, -1), P("stride_ks_head", INT, -1), P("stride_vs_blk", INT, -1),
	P("stride_vs_slot", INT, -1), P("stride_vs_head", INT, -1),
};

static const struct gsa_param_tmpl v2026_reduce[] = {
	P("output_ptr", PTR, -1), P("segm_output_ptr", PTR, -1), P("segm_max_ptr", PTR, -1),
	P("segm_expsum_ptr", PTR, -1), P("seq_lens_ptr", PTR, F_SEQ_LENS),
	P("num_seqs", INT, F_NUM_SEQS), P("out_scale_inv", F32, -1),
	P("output_stride_0", I64, F_OUT_STRIDE0), P("output_stride_1", I64, F_OUT_STRIDE1),
	P("block_table_stride", I64, F_BT_STRIDE), P("query_start_len_ptr", PTR, F_QUERY_START),
};

#define TMPL(kernel, params) {kernel, params, sizeof params / sizeof params[0], 2}
/* Triton 3.x appends up to two hidden pointers (global and profile scratch). */
static const struct gsa_sig_tmpl attention_tmpls[] = {
	TMPL("kernel_unified_attention_2d", v2025_2d),
	TMPL("kernel_unified_attention_3d", v2025_3d),
	TMPL("kernel_unified_attention", v2026),
};
static const struct gsa_sig_tmpl reduce_tmpls[] = {
	TMPL("reduce_segments", v2025_reduce),
	TMPL("reduce_segments", v2026_reduce),
};

/* What match() learned about one compiled kernel. */
struct layout {
	int field_param[F_COUNT];
};

static bool solve_any(struct gsa_kernel *k, const struct gsa_sig_tmpl *tmpls, size_t n)
{
	bool named = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(k->name, tmpls[i].kernel) != 0)
			continue;
		named = true;
		struct layout l;
		if (k->param_count == GSA_PARAMS_UNKNOWN ||
		    !gsa_sig_solve(&tmpls[i], k->param_sizes, k->param_count, F_COUNT, l.field_param))
			continue;
		struct layout *keep = malloc(sizeof *keep);
		if (!keep)
			return false;
		*keep = l;
		k->adapter_state = keep;
		return true;
	}
	if (named)
		gsa_log(GSA_LOG_WARN, GSA_CODE_SIGNATURE,
			"%s: %u parameters in a layout this library does not know; it runs dense",
			k->name, k->param_count);
	return false;
}

static bool match_attention(struct gsa_kernel *k)
{
	return solve_any(k, attention_tmpls, sizeof attention_tmpls / sizeof attention_tmpls[0]);
}

static bool match_reduce(struct gsa_kernel *k)
{
	return solve_any(k, reduce_tmpls, sizeof reduce_tmpls / sizeof reduce_tmpls[0]);
}

/* The value of a field as an unsigned 64-bit number; absent fields are 1 for integers
 * (Triton drops integers equal to 1) and 0 for pointers. */
static bool field(const struct gsa_launch *l, int f, bool is_ptr, uint64_t *out)
{
	const struct layout *lay = l->kernel->adapter_state;
	if (!lay)
		return false;
	int j = lay->field_param[f];
	if (j == GSA_FIELD_ABSENT) {
		*out = is_ptr ? 0 : 1;
		return true;
	}
	if (j < 0)
		return false;
	uint32_t size = l->kernel->param_sizes[j];
	if (size == 8) {
		memcpy(out, l->params[j], 8);
	} else if (size == 4) {
		int32_t v;
		memcpy(&v, l->params[j], 4);
		*out = (uint64_t)(int64_t)v;
	} else {
		return false;
	}
	return true;
}

static bool has_field(const struct gsa_launch *l, int f)
{
	const struct layout *lay = l->kernel->adapter_state;
	return lay && lay->field_param[f] >= 0;
}

static bool decode_common(const struct gsa_launch *l, struct gsa_attention *a)
{
	uint64_t v;
	memset(a, 0, sizeof *a);
	a->dtype = -1; /* Triton launches do not say: GSA_KV_DTYPE */
	if (!l->params)
		return false; /* arguments packed in `extra`: not decodable */
	if (!field(l, F_SEQ_LENS, true, &v) || !v)
		return false;
	a->seq_lens = v;
	if (!field(l, F_NUM_SEQS, false, &v) || (int64_t)v <= 0 || v > (1u << 20))
		return false;
	a->num_seqs = (int32_t)v;
	if (field(l, F_QUERY_START, true, &v))
		a->query_start_loc = v;
	if (has_field(l, F_OUT_STRIDE0) && has_field(l, F_OUT_STRIDE1)) {
		uint64_t s0, s1;
		field(l, F_OUT_STRIDE0, false, &s0);
		field(l, F_OUT_STRIDE1, false, &s1);
		/* A contiguous [tokens, q_heads, head] output tells the number of query heads. */
		if (s1 > 0 && s0 % s1 == 0)
			a->num_q_heads = (int32_t)(s0 / s1);
		a->head_size = (int32_t)s1;
	}
	return true;
}

/* The KV cache layouts vLLM uses for this backend, told apart by strides and by where V
 * starts relative to K (elements of 2 bytes; an fp8 cache fits none and runs dense):
 *   (blocks, 2, block, heads, D) split on dim 1: V = K + block*heads*D, stride0 covers both;
 *   (2, blocks, block, heads, D) split on dim 0: V = K + blocks*stride0 (K's half first);
 *   (blocks, block, heads, 2*D) split on the last dim: V = K + D, head stride 2*D. */
static bool decode_kv_layout(struct gsa_attention *a, uint64_t kc, uint64_t vc, uint64_t ks0,
			     uint64_t ks1, uint64_t ks2, uint64_t head)
{
	const uint64_t elem = 2;
	if (!head || !ks2 || !ks1 || ks1 % ks2 || vc <= kc)
		return false;
	uint64_t dv = vc - kc, block;
	if (ks2 == 2 * head && dv == head * elem && ks0 % ks1 == 0) {
		block = ks0 / ks1; /* K|V halves of each head */
	} else if (ks2 != head) {
		return false;
	} else if (dv == ks0 / 2 * elem && ks0 % (2 * ks1) == 0) {
		block = ks0 / (2 * ks1); /* K and V interleaved per block */
	} else if (dv % (ks0 * elem) == 0 && ks0 % ks1 == 0) {
		block = ks0 / ks1; /* all K blocks, then all V blocks */
		a->num_blocks = (int64_t)(dv / (ks0 * elem));
	} else {
		return false;
	}
	if (!block || block > 4096)
		return false;
	a->key_cache = kc;
	a->value_cache = vc;
	a->kv_block_stride = (int64_t)ks0;
	a->k_stride_token = (int64_t)ks1;
	a->k_stride_head = (int64_t)ks2;
	a->block_size = (int32_t)block;
	a->num_kv_heads = (int32_t)(ks1 / ks2);
	a->head_size = (int32_t)head;
	return true;
}

static bool decode_attention(const struct gsa_launch *l, struct gsa_attention *a)
{
	uint64_t q, kc, vc, bt, bts, qs0, qs1, ks0, ks1, ks2;
	if (!decode_common(l, a))
		return false;
	if (!field(l, F_QUERY, true, &q) || !field(l, F_KEY, true, &kc) ||
	    !field(l, F_VALUE, true, &vc) || !field(l, F_BLOCK_TABLE, true, &bt) ||
	    !field(l, F_BT_STRIDE, false, &bts) || !field(l, F_Q_STRIDE0, false, &qs0) ||
	    !field(l, F_Q_STRIDE1, false, &qs1) || !field(l, F_K_STRIDE0, false, &ks0) ||
	    !field(l, F_K_STRIDE1, false, &ks1) || !field(l, F_K_STRIDE2, false, &ks2))
		return false;
	if (!q || !kc || !vc || !bt || !bts)
		return false;
	if (a->head_size && a->head_size != (int32_t)qs1)
		return false; /* output and query disagree on the head size */
	static const int positional[] = {F_ALIBI, F_QQ_BIAS, F_MM_PREFIX, F_PER_SEQ_CAUSAL};
	for (size_t i = 0; i < sizeof positional / sizeof positional[0]; i++) {
		uint64_t p;
		if (field(l, positional[i], true, &p) && p) {
			GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_FAIL_OPEN,
				     "%s: position-dependent attention (ALiBi, biases or prefix ranges) runs dense",
				     l->kernel->name);
			return false;
		}
	}
	if (!decode_kv_layout(a, kc, vc, ks0, ks1, ks2, qs1))
		return false;
	a->query = q;
	a->block_table = bt;
	a->block_table_stride = (int64_t)bts;
	a->q_stride_token = (int64_t)qs0;
	a->q_stride_head = (int64_t)qs1;
	return true;
}

/* Flat arguments: a copy of the caller's pointer array whose block-table and length entries
 * point at values in storage. The caller's array and values are never written. */
static void **encode_flat(const struct gsa_launch *l, const struct gsa_rewrite *rw, void *storage,
			  unsigned storage_size)
{
	const struct layout *lay = l->kernel->adapter_state;
	uint32_t n = l->kernel->param_count;
	if (!lay)
		return NULL;
	if (storage_size < n * sizeof(void *) + 2 * sizeof(uint64_t))
		return NULL;
	void **p = storage;
	uint64_t *vals = (uint64_t *)(p + n);
	memcpy(p, l->params, n * sizeof(void *));
	int jt = lay->field_param[F_BLOCK_TABLE], jl = lay->field_param[F_SEQ_LENS];
	if (jl < 0 || (rw->block_table && jt < 0))
		return NULL;
	vals[0] = rw->seq_lens;
	p[jl] = &vals[0];
	if (rw->block_table) {
		vals[1] = rw->block_table;
		p[jt] = &vals[1];
	}
	return p;
}

const struct gsa_adapter gsa_adapter_triton_unified = {
	.family = "triton-unified",
	.match = match_attention,
	.decode = decode_attention,
	.encode = encode_flat,
	.follows = false,
};

const struct gsa_adapter gsa_adapter_triton_reduce = {
	.family = "triton-unified-reduce",
	.match = match_reduce,
	.decode = decode_common,
	.encode = encode_flat,
	.follows = true,
};

/* FlashAttention-2 split-KV paged attention from vLLM's fork (FLASH_ATTN backend with
 * flash_attn_version 2): flash::flash_fwd_splitkv_kernel<...>(const Flash_fwd_params), the
 * kernel for every paged launch (split, no-split and "align" instantiations). Its one
 * parameter is a 472-byte struct passed by value; kernelParams[0] points at the caller's
 * host copy, which is never written: the rewrite patches block_table and seqused_k (and,
 * for decode, seqlen_k: see encode) in a copy. The combine kernel reads none of them and
 * is left alone.
 *
 * Layout (x86-64, vLLM's fork 2024-07 .. 2026-08, checked against the 0.33.0 binary; see
 * tests/gpu/fa2/NOTES.md). Only the fields below are read. */
#include <string.h>

#include "hooks/adapter.h"
#include "preload/log.h"
#include "sparse/select_args.h"

#define PARAMS_SIZE 472
#define OFF_Q 0
#define OFF_K 8
#define OFF_V 16
#define OFF_Q_BATCH_STRIDE 24
#define OFF_K_BATCH_STRIDE 32
#define OFF_Q_ROW_STRIDE 48
#define OFF_K_ROW_STRIDE 56
#define OFF_Q_HEAD_STRIDE 72
#define OFF_K_HEAD_STRIDE 80
#define OFF_H 96
#define OFF_H_K 100
#define OFF_B 176
#define OFF_SEQLEN_Q 180
#define OFF_SEQLEN_K 184
#define OFF_D 192
#define OFF_CU_SEQLENS_Q 224
#define OFF_LEFTPAD_K 240
#define OFF_SEQUSED_K 248
#define OFF_KNEW 264
#define OFF_BLOCK_TABLE 352
#define OFF_BT_STRIDE 360
#define OFF_PAGE_BLOCK 368
#define OFF_WINDOW_LEFT 388
#define OFF_WINDOW_RIGHT 392
#define OFF_IS_BF16 440
#define OFF_ALIBI 448
#define OFF_NGROUPS_SWAPPED 465

#define SPLITKV_PREFIX "_ZN5flash24flash_fwd_splitkv_kernelI"

static bool match(struct gsa_kernel *k)
{
	if (strncmp(k->name, SPLITKV_PREFIX, sizeof SPLITKV_PREFIX - 1) != 0)
		return false;
	if (k->param_count == 1 && k->param_sizes[0] == PARAMS_SIZE)
		return true;
	gsa_log(GSA_LOG_WARN, GSA_CODE_SIGNATURE,
		"%.60s...: parameters are not one %d-byte Flash_fwd_params; it runs dense", k->name,
		PARAMS_SIZE);
	return false;
}

static int64_t i64(const unsigned char *p, int off)
{
	int64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static int32_t i32(const unsigned char *p, int off)
{
	int32_t v;
	memcpy(&v, p + off, 4);
	return v;
}

static bool decode(const struct gsa_launch *l, struct gsa_attention *a)
{
	memset(a, 0, sizeof *a);
	if (!l->params || !l->params[0])
		return false;
	const unsigned char *p = l->params[0];
	/* Features that make attention depend on positions or on keys outside the cache. */
	if (i64(p, OFF_ALIBI) || i64(p, OFF_KNEW) || i64(p, OFF_LEFTPAD_K) ||
	    i32(p, OFF_WINDOW_LEFT) >= 0 || i32(p, OFF_WINDOW_RIGHT) >= 0) {
		GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_FAIL_OPEN,
			     "FlashAttention-2 with ALiBi, a sliding window, left padding or appended keys runs dense");
		return false;
	}
	int32_t h = i32(p, OFF_H), h_k = i32(p, OFF_H_K), b = i32(p, OFF_B);
	int32_t seqlen_q = i32(p, OFF_SEQLEN_Q), d = i32(p, OFF_D);
	if (h <= 0 || h_k <= 0 || b <= 0 || d <= 0 || seqlen_q <= 0)
		return false;
	a->query = (CUdeviceptr)i64(p, OFF_Q);
	a->key_cache = (CUdeviceptr)i64(p, OFF_K);
	a->value_cache = (CUdeviceptr)i64(p, OFF_V);
	a->block_table = (CUdeviceptr)i64(p, OFF_BLOCK_TABLE);
	a->seq_lens = (CUdeviceptr)i64(p, OFF_SEQUSED_K);
	a->block_table_stride = i64(p, OFF_BT_STRIDE);
	a->block_size = i32(p, OFF_PAGE_BLOCK);
	a->num_seqs = b;
	a->num_kv_heads = h_k;
	a->head_size = d;
	a->kv_block_stride = i64(p, OFF_K_BATCH_STRIDE);
	a->k_stride_token = i64(p, OFF_K_ROW_STRIDE);
	a->k_stride_head = i64(p, OFF_K_HEAD_STRIDE);
	a->dtype = p[OFF_IS_BF16] ? GSA_KV_BF16 : GSA_KV_FP16;
	int64_t qb = i64(p, OFF_Q_BATCH_STRIDE), qr = i64(p, OFF_Q_ROW_STRIDE);
	int64_t qh = i64(p, OFF_Q_HEAD_STRIDE);
	if (!a->block_table || !a->seq_lens || !a->key_cache || a->block_size <= 0)
		return false; /* not paged: nothing to select */
	/* Pure decode (one query token per sequence, or the group folded into the query
	 * length): the split-KV partition may be sized by the shadow lengths' bound. */
	if (p[OFF_NGROUPS_SWAPPED] || seqlen_q == 1)
		a->decode_max_len = i32(p, OFF_SEQLEN_K);
	if (p[OFF_NGROUPS_SWAPPED]) {
		/* Decode with the GQA group folded into the query length: h is the number of KV
		 * heads and the seqlen_q "rows" of a sequence are the group's query heads. */
		if (h != h_k)
			return false;
		a->num_q_heads = h_k * seqlen_q;
		a->q_stride_token = qb;
		a->q_stride_head = qh;
		a->q_stride_kvhead = qh;
		a->q_stride_member = qr;
	} else {
		if (h % h_k)
			return false;
		a->num_q_heads = h;
		a->q_stride_head = qh;
		a->query_start_loc = (CUdeviceptr)i64(p, OFF_CU_SEQLENS_Q);
		if (a->query_start_loc)
			a->q_stride_token = qr; /* varlen: tokens packed, indexed by cu_seqlens_q */
		else if (seqlen_q == 1)
			a->q_stride_token = qb; /* batch mode, one query per sequence */
		else
			return false; /* batch mode with several queries each: prefill, dense */
	}
	/* vLLM's FA cache is (2, blocks, block, heads, D): V's half follows K's. */
	int64_t block_bytes = a->kv_block_stride * 2;
	if (a->value_cache > a->key_cache && block_bytes > 0 &&
	    (int64_t)(a->value_cache - a->key_cache) % block_bytes == 0)
		a->num_blocks = (int64_t)(a->value_cache - a->key_cache) / block_bytes;
	return true;
}

/* A copy of the caller's struct with the two fields replaced, and seqlen_k (the maximum
 * length, which sizes each split's range of key blocks) lowered to the bound of the shadow
 * lengths when the selection gave one: with the dense maximum the kept blocks would fill
 * only the first splits and leave the rest idle. The bound is rounded up to a multiple of
 * 256 (every kBlockN of FA2), so that a maximum that was a multiple of the kernel's block
 * stays one (the host picked the kernel instantiation by it). kernelParams[0] points at
 * the copy. */
static void **encode(const struct gsa_launch *l, const struct gsa_rewrite *rw, void *storage,
		     unsigned storage_size)
{
	if (storage_size < 16 + PARAMS_SIZE || !rw->block_table)
		return NULL;
	void **p = storage;
	unsigned char *copy = (unsigned char *)storage + 16;
	memcpy(copy, l->params[0], PARAMS_SIZE);
	memcpy(copy + OFF_BLOCK_TABLE, &rw->block_table, 8);
	memcpy(copy + OFF_SEQUSED_K, &rw->seq_lens, 8);
	if (rw->max_len > 0) {
		int64_t bound = (rw->max_len + 255) / 256 * 256;
		int32_t seqlen_k;
		memcpy(&seqlen_k, copy + OFF_SEQLEN_K, 4);
		if (bound < seqlen_k) {
			seqlen_k = (int32_t)bound;
			memcpy(copy + OFF_SEQLEN_K, &seqlen_k, 4);
		}
	}
	p[0] = copy;
	return p;
}

const struct gsa_adapter gsa_adapter_flash_attn2 = {
	.family = "flash-attn2-splitkv",
	.match = match,
	.decode = decode,
	.encode = encode,
	.follows = false,
};

/* The adapter registry, the dispatch, the signature solver and the Triton adapter's matching
 * and decoding, on parameter layouts and buffers built here. The sparse layer is replaced by
 * test doubles that record what the dispatch asked of it. */
#include <stdlib.h>

#include "hooks/registry.h"
#include "hooks/signature.h"
#include "preload/log.h"
#include "sparse/sparse.h"
#include "tests/cpu/check.h"

/* ---- test doubles for the layers the hooks call ---- */
static int selects, follows, encode_failures, logs;
static bool select_ok = true;
static int64_t select_max_len; /* what the stand-in selection bounds shadow lengths by */
static struct gsa_attention last_att;

bool gsa_sparse_select(const struct gsa_launch *l, struct gsa_attention *a, struct gsa_rewrite *rw)
{
	selects++;
	last_att = *a;
	rw->block_table = 0xb10c;
	rw->seq_lens = 0x1e45;
	rw->max_len = select_max_len;
	return select_ok;
}
bool gsa_sparse_follow(const struct gsa_launch *l, const struct gsa_attention *a,
		       struct gsa_rewrite *rw)
{
	follows++;
	rw->block_table = 0;
	rw->seq_lens = 0x1e45;
	rw->max_len = 0;
	return true;
}
void gsa_sparse_encode_failed(const struct gsa_launch *l) { encode_failures++; }
void gsa_log(int level, int code, const char *fmt, ...)
{
	logs++;
}

/* ---- a test adapter ---- */
static int decodes;
static bool decode_ok;
static bool match_two(struct gsa_kernel *k)
{
	return strcmp(k->name, "attn") == 0 && k->param_count == 2 && k->param_sizes[0] == 8 &&
	       k->param_sizes[1] == 4;
}
static bool decode(const struct gsa_launch *l, struct gsa_attention *a)
{
	decodes++;
	memset(a, 0, sizeof *a);
	a->num_seqs = *(int *)l->params[1];
	return decode_ok;
}
static const struct gsa_adapter test_adapter = {"test-family", match_two, decode, NULL, false};

static void registry_and_dispatch(void)
{
	uint32_t sizes_ok[2] = {8, 4}, sizes_bad[2] = {8, 8}, offs[2] = {0, 8};
	struct gsa_kernel k = {.name = (char *)"attn", .param_count = 2, .param_offsets = offs,
			       .param_sizes = sizes_ok};
	CHECK(gsa_hooks_match(&k) == NULL, "no adapter before registration");
	CHECK(gsa_hooks_register(&test_adapter), "register");
	CHECK(gsa_hooks_match(&k) == &test_adapter, "name and signature match");
	k.param_sizes = sizes_bad;
	CHECK(gsa_hooks_match(&k) == NULL, "same name, other signature: no match");
	k.param_sizes = sizes_ok;

	k.adapter = &test_adapter;
	void *ptr = (void *)0x1234;
	int n = 7;
	void *params[2] = {&ptr, &n};
	struct gsa_launch l = {.kernel = &k, .params = params};
	decode_ok = false;
	CHECK(gsa_hooks_dispatch(&l) == params, "failed decode: the caller's parameters");
	CHECK_EQ_U64(selects, 0);
	decode_ok = true;
	CHECK(gsa_hooks_dispatch(&l) == params, "no encoder: the caller's parameters");
	CHECK_EQ_U64(selects, 1);
	CHECK_EQ_U64(decodes, 2);
	CHECK(params[0] == &ptr && params[1] == &n && n == 7, "caller's array untouched");
}

/* ---- the signature solver ---- */
static void solver(void)
{
	enum { A, B, C, NF };
	const struct gsa_param_tmpl t[] = {
		{"out", GSA_P_PTR, -1},    {"opt", GSA_P_PTR_OPT, -1}, {"a", GSA_P_PTR, A},
		{"scale", GSA_P_F32, -1},  {"stride", GSA_P_I64, B},   {"n", GSA_P_INT, C},
	};
	struct gsa_sig_tmpl tm = {"k", t, 6, 2};
	int f[NF];
	uint32_t s1[] = {8, 8, 8, 4, 8, 4};
	CHECK(gsa_sig_solve(&tm, s1, 6, NF, f), "all present");
	CHECK(f[A] == 2 && f[B] == 4 && f[C] == 5, "positions %d %d %d", f[A], f[B], f[C]);
	uint32_t s2[] = {8, 8, 4, 8, 4};
	CHECK(gsa_sig_solve(&tm, s2, 5, NF, f), "optional pointer dropped");
	CHECK(f[A] == 1 && f[B] == 3 && f[C] == 4, "positions %d %d %d", f[A], f[B], f[C]);
	uint32_t s3[] = {8, 8, 4, 8, 4, 8, 8};
	CHECK(gsa_sig_solve(&tm, s3, 7, NF, f), "n present, two hidden pointers");
	CHECK(f[C] == 4, "n at 4: %d", f[C]);
	uint32_t s3b[] = {8, 8, 4, 8};
	CHECK(gsa_sig_solve(&tm, s3b, 4, NF, f), "n dropped");
	CHECK(f[C] == GSA_FIELD_ABSENT, "n absent: %d", f[C]);
	uint32_t s3c[] = {8, 8, 4, 8, 8};
	CHECK(gsa_sig_solve(&tm, s3c, 5, NF, f), "n dropped, one hidden pointer");
	CHECK(f[C] == GSA_FIELD_ABSENT, "n absent: %d", f[C]);
	/* Two optional pointers and one present: which one is ambiguous. */
	const struct gsa_param_tmpl t2[] = {
		{"a", GSA_P_PTR, A}, {"x", GSA_P_PTR_OPT, -1}, {"y", GSA_P_PTR_OPT, B}};
	struct gsa_sig_tmpl tm2 = {"k2", t2, 3, 0};
	uint32_t s2b[] = {8, 8};
	CHECK(!gsa_sig_solve(&tm2, s2b, 2, NF - 1, f), "ambiguous field is refused");
	uint32_t s2c[] = {8, 8, 8};
	CHECK(gsa_sig_solve(&tm2, s2c, 3, NF - 1, f) && f[B] == 2, "both present: unique");
	uint32_t s4[] = {8, 8, 8, 4, 8};
	CHECK(gsa_sig_solve(&tm, s4, 5, NF, f), "optional pointer present, n dropped");
	CHECK(f[A] == 2 && f[C] == GSA_FIELD_ABSENT, "positions %d %d", f[A], f[C]);
	uint32_t s5[] = {8, 4, 4};
	CHECK(!gsa_sig_solve(&tm, s5, 3, NF, f), "impossible layout is refused");
	uint32_t s6[] = {8, 8, 8, 4, 8, 4, 8, 8, 8};
	CHECK(!gsa_sig_solve(&tm, s6, 9, NF, f), "more trailing parameters than allowed");
}

/* ---- the Triton adapter on a 2026 kernel_unified_attention 3D layout ---- */
extern const struct gsa_adapter gsa_adapter_triton_unified, gsa_adapter_triton_reduce;

static void triton_adapter(void)
{
	/* Standard decode: no sinks/alibi/qq bias/per-seq causal/mm prefix, tensor scales,
	 * 3D (segm pointers present), no per-token scales, two hidden Triton pointers. */
	uint32_t sizes[] = {8, 8, 8, 8, /* out q k v */ 8, 8, /* table lens */
			    4, 8, 8, 8, 4, 4, /* scale, q/k/v scale tensors, out_scale, softcap */
			    8, 8, 8, 8, 8, 8, /* bt stride, q strides, out strides, qq stride */
			    8, /* rswa (= seq lens) */ 8, 8, 8, 8, 8, 8, /* kv strides */
			    8, 4, /* query start, num_seqs */ 8, 8, 8, /* segm */ 8, 8 /* hidden */};
	uint32_t n = sizeof sizes / sizeof sizes[0];
	struct gsa_kernel k = {.name = (char *)"kernel_unified_attention", .param_count = n,
			       .param_sizes = sizes};
	CHECK(gsa_adapter_triton_unified.match(&k), "2026 kernel matched");
	k.adapter = &gsa_adapter_triton_unified;

	uint64_t vals[40];
	void *params[40];
	for (uint32_t i = 0; i < n; i++) {
		vals[i] = 0xdead0000 + i;
		params[i] = &vals[i];
	}
	const int64_t B = 16, H = 8, D = 128;
	vals[1] = 0x7000000;             /* query */
	vals[2] = 0x100000000;           /* key cache */
	vals[3] = 0x100000000 + 2 * B * H * D; /* value = key + half a block, in elements */
	vals[4] = 0xb7;                  /* block table */
	vals[5] = 0x5e;                  /* seq lens */
	vals[12] = 512;                  /* block table stride */
	vals[13] = 32 * D + 16 * D;      /* query stride 0 (q is a view of qkv) */
	vals[14] = D;                    /* query stride 1 */
	vals[15] = 32 * D;               /* output stride 0 */
	vals[16] = D;                    /* output stride 1 */
	vals[19] = 2 * B * H * D;        /* k stride 0: K and V interleaved per block */
	vals[20] = H * D;
	vals[21] = D;
	vals[25] = 0x95;                 /* query start */
	int32_t num_seqs = 8;
	params[26] = &num_seqs;
	struct gsa_launch l = {.kernel = &k, .params = params};
	selects = 0;
	void **p = gsa_hooks_dispatch(&l);
	CHECK_EQ_U64(selects, 1);
	CHECK_EQ_U64(last_att.query, 0x7000000);
	CHECK_EQ_U64(last_att.key_cache, 0x100000000);
	CHECK_EQ_U64(last_att.block_table, 0xb7);
	CHECK_EQ_U64(last_att.seq_lens, 0x5e);
	CHECK_EQ_U64(last_att.query_start_loc, 0x95);
	CHECK_EQ_U64(last_att.num_seqs, 8);
	CHECK_EQ_U64(last_att.block_table_stride, 512);
	CHECK_EQ_U64(last_att.block_size, B);
	CHECK_EQ_U64(last_att.num_kv_heads, H);
	CHECK_EQ_U64(last_att.head_size, D);
	CHECK_EQ_U64(last_att.num_q_heads, 32);
	CHECK_EQ_U64(last_att.q_stride_token, 48 * D);
	CHECK(p != params, "rewritten parameter array");
	int changed = 0;
	for (uint32_t i = 0; i < n; i++)
		changed += p[i] != params[i];
	CHECK_EQ_U64(changed, 2);
	CHECK_EQ_U64(*(uint64_t *)p[4], 0xb10c);
	CHECK_EQ_U64(*(uint64_t *)p[5], 0x1e45);
	CHECK(vals[4] == 0xb7 && vals[5] == 0x5e && params[4] == &vals[4], "caller untouched");

	/* vLLM 0.33's default packed layout (blocks, block, heads, 2*D): V = K + D. */
	vals[3] = 0x100000000 + 2 * D;
	vals[19] = B * H * 2 * D, vals[20] = H * 2 * D, vals[21] = 2 * D;
	selects = 0;
	gsa_hooks_dispatch(&l);
	CHECK_EQ_U64(selects, 1);
	CHECK(last_att.block_size == B && last_att.num_kv_heads == H && last_att.head_size == D &&
		      last_att.k_stride_head == 2 * D && last_att.k_stride_token == 2 * H * D,
	      "packed layout: block %d heads %d head %d", last_att.block_size,
	      last_att.num_kv_heads, last_att.head_size);
	/* vLLM 0.10's (2, blocks, block, heads, D): all K blocks, then all V blocks. */
	vals[3] = 0x100000000 + 1000 * B * H * D * 2;
	vals[19] = B * H * D, vals[20] = H * D, vals[21] = D;
	selects = 0;
	gsa_hooks_dispatch(&l);
	CHECK_EQ_U64(selects, 1);
	CHECK(last_att.block_size == B && last_att.num_blocks == 1000, "K-then-V layout: block %d blocks %lld",
	      last_att.block_size, (long long)last_att.num_blocks);
	vals[19] = 2 * B * H * D, vals[20] = H * D, vals[21] = D;

	/* An fp8 cache (1-byte elements) fails the layout test: dense, no selection. */
	vals[3] = 0x100000000 + B * H * D;
	selects = 0;
	CHECK(gsa_hooks_dispatch(&l) == params, "fp8 layout runs dense");
	CHECK_EQ_U64(selects, 0);

	/* The same name with a layout the template cannot produce: not matched, one warning. */
	uint32_t odd[] = {8, 4, 4, 4};
	struct gsa_kernel k2 = {.name = (char *)"kernel_unified_attention", .param_count = 4,
				.param_sizes = odd};
	int before = logs;
	CHECK(!gsa_adapter_triton_unified.match(&k2), "unknown layout not matched");
	CHECK_EQ_U64(logs - before, 1);

	/* reduce_segments (2026) follows: only its lengths are rewritten. */
	uint32_t rs[] = {8, 8, 8, 8, 8, 4, 4, 8, 8, 8, 8, 8, 8};
	struct gsa_kernel kr = {.name = (char *)"reduce_segments", .param_count = 13,
				.param_sizes = rs};
	CHECK(gsa_adapter_triton_reduce.match(&kr), "reduce matched");
	kr.adapter = &gsa_adapter_triton_reduce;
	struct gsa_launch lr = {.kernel = &kr, .params = params};
	vals[4] = 0x5e; /* seq lens at index 4 here */
	params[5] = &num_seqs;
	follows = 0;
	void **pr = gsa_hooks_dispatch(&lr);
	CHECK_EQ_U64(follows, 1);
	CHECK_EQ_U64(*(uint64_t *)pr[4], 0x1e45);
}

/* ---- the FA2 adapter on a Flash_fwd_params built to the fork's layout ---- */
extern const struct gsa_adapter gsa_adapter_flash_attn2;

static void put64(unsigned char *p, int off, int64_t v) { memcpy(p + off, &v, 8); }
static void put32(unsigned char *p, int off, int32_t v) { memcpy(p + off, &v, 4); }

static void fa2_adapter(void)
{
	uint32_t sizes[] = {472};
	char name[] = "_ZN5flash24flash_fwd_splitkv_kernelI23Flash_fwd_kernel_traitsILi128ELi64ELi128ELi4ELb0ELb0EN7cutlass10bfloat16_tE19Flash_kernel_traitsILi128ELi64ELi128ELi4ES3_EELb0ELb0ELb0ELb0ELb1ELb0ELb1ELb0EEEvNS_16Flash_fwd_paramsE";
	struct gsa_kernel k = {.name = name, .param_count = 1, .param_sizes = sizes};
	CHECK(gsa_adapter_flash_attn2.match(&k), "FA2 split-KV kernel matched");
	uint32_t wrong[] = {464};
	struct gsa_kernel k2 = {.name = name, .param_count = 1, .param_sizes = wrong};
	CHECK(!gsa_adapter_flash_attn2.match(&k2), "other struct size refused");
	k.adapter = &gsa_adapter_flash_attn2;

	/* A GQA-swapped decode as vLLM builds it: 8 sequences, 32/8 heads, D 128, block 16,
	 * cache (2, 1000, 16, 8, 128). */
	static unsigned char p[472];
	memset(p, 0, sizeof p);
	const int64_t D = 128, H = 8, B = 16, G = 4;
	put64(p, 0, 0x7000000);                       /* q */
	put64(p, 8, 0x100000000);                     /* k */
	put64(p, 16, 0x100000000 + 1000 * B * H * D * 2); /* v */
	put64(p, 24, H * D * G), put64(p, 48, H * D), put64(p, 72, D); /* q strides */
	put64(p, 32, B * H * D), put64(p, 56, H * D), put64(p, 80, D);  /* k strides */
	put32(p, 96, 8), put32(p, 100, 8), put32(p, 176, 8), put32(p, 180, 4), put32(p, 192, 128);
	put64(p, 248, 0x5e);                          /* seqused_k */
	put64(p, 352, 0xb7);                          /* block table */
	put64(p, 360, 512);
	put32(p, 368, 16);
	put32(p, 388, -1), put32(p, 392, -1);
	p[440] = 1, p[465] = 1;
	unsigned char before[472];
	memcpy(before, p, sizeof p);
	void *params[1] = {p};
	struct gsa_launch l = {.kernel = &k, .params = params};
	selects = 0;
	void **out = gsa_hooks_dispatch(&l);
	CHECK_EQ_U64(selects, 1);
	CHECK(last_att.num_seqs == 8 && last_att.num_q_heads == 32 && last_att.num_kv_heads == 8 &&
		      last_att.head_size == 128 && last_att.block_size == 16 &&
		      last_att.num_blocks == 1000 && last_att.dtype == 0,
	      "decoded: seqs %d q heads %d kv heads %d blocks %lld", last_att.num_seqs,
	      last_att.num_q_heads, last_att.num_kv_heads, (long long)last_att.num_blocks);
	CHECK(last_att.q_stride_token == H * D * G && last_att.q_stride_kvhead == D &&
		      last_att.q_stride_member == H * D,
	      "GQA group folded into the query length");
	CHECK(out != params && out[0] != p, "launch with a copy");
	unsigned char *copy = out[0];
	uint64_t v;
	memcpy(&v, copy + 352, 8);
	CHECK_EQ_U64(v, 0xb10c);
	memcpy(&v, copy + 248, 8);
	CHECK_EQ_U64(v, 0x1e45);
	CHECK(memcmp(copy, before, 248) == 0 && memcmp(copy + 256, before + 256, 96) == 0 &&
		      memcmp(copy + 360, before + 360, 472 - 360) == 0,
	      "every other byte of the copy is the caller's");
	CHECK(memcmp(p, before, sizeof p) == 0, "the caller's struct is untouched");

	CHECK_EQ_U64(last_att.decode_max_len, 0); /* seqlen_k 0 in this struct */

	/* Decode at 32K: the split ranges are sized by the shadow lengths' bound (rounded up to
	 * 256), never raised above the caller's maximum, and left alone without a bound. */
	put32(p, 184, 32768);
	select_max_len = 9840;
	out = gsa_hooks_dispatch(&l);
	CHECK_EQ_U64(last_att.decode_max_len, 32768);
	int32_t sk;
	memcpy(&sk, (unsigned char *)out[0] + 184, 4);
	CHECK_EQ_U64(sk, 9984);
	memcpy(&sk, p + 184, 4);
	CHECK_EQ_U64(sk, 32768); /* the caller's untouched */
	select_max_len = 40000;
	out = gsa_hooks_dispatch(&l);
	memcpy(&sk, (unsigned char *)out[0] + 184, 4);
	CHECK_EQ_U64(sk, 32768);
	select_max_len = 0;
	out = gsa_hooks_dispatch(&l);
	memcpy(&sk, (unsigned char *)out[0] + 184, 4);
	CHECK_EQ_U64(sk, 32768);
	/* Not decode (two query tokens, no GQA swap): no bound is asked for. */
	p[465] = 0, put32(p, 96, 32), put32(p, 180, 2), put64(p, 224, 0xc0);
	gsa_hooks_dispatch(&l);
	CHECK_EQ_U64(last_att.decode_max_len, 0);
	p[465] = 1, put32(p, 96, 8), put32(p, 180, 4), put64(p, 224, 0);
	put32(p, 184, 0);

	/* A sliding window makes attention position-dependent: dense. */
	put32(p, 388, 4096);
	selects = 0;
	CHECK(gsa_hooks_dispatch(&l) == params && selects == 0, "sliding window runs dense");
}

int main(void)
{
	registry_and_dispatch();
	solver();
	triton_adapter();
	fa2_adapter();
	return check_report("test_hooks_registry");
}

/* The per-KV-cache selection state (sparse/buffers.c) against a freed and reused address:
 * a KV cache freed and a larger one allocated at the same address (PyTorch's allocator does
 * this) must get a new state sized for the new allocation, not the old one's block count
 * (which would leave the new blocks unscored). Linked with the allocation registry; the
 * driver, the module, the log and the configuration are stand-ins defined here. */
#include "preload/alloc_registry.h"
#include "preload/config.h"
#include "sparse/buffers.h"
#include "tests/cpu/check.h"
#include "tests/cpu/stand_in_device.h"

struct gsa_config gsa_cfg = {.ratio = 0.3, .policy = GSA_POLICY_MEAN};

static const struct gsa_module fake_module;
const struct gsa_module *gsa_module_current(void) { return &fake_module; }

/* A KV cache at `base` in vLLM 0.10's (2, blocks, 16, 8, 128) bf16 layout: K is the first half. */
static struct gsa_attention cache_at(uint64_t base)
{
	struct gsa_attention a;
	memset(&a, 0, sizeof a);
	a.key_cache = base;
	a.block_size = 16;
	a.num_kv_heads = 8;
	a.head_size = 128;
	a.kv_block_stride = 16 * 8 * 128;
	a.k_stride_token = 8 * 128;
	a.k_stride_head = 128;
	a.dtype = -1;
	return a;
}

int main(void)
{
	const uint64_t block_bytes = 16 * 8 * 128 * 2, base = 0x7f0000000000ull;
	const uint64_t other = 0x7e0000000000ull;
	struct gsa_launch l;
	memset(&l, 0, sizeof l);
	int why = 0;

	/* 100 blocks of K and V (K's half bounds the block ids: 100 blocks of K and V over
	 * 2 x 100 x block_bytes, i.e. 200 blocks counted from K's start) */
	struct gsa_alloc small = {base, 200 * block_bytes, 0, 0, 0};
	struct gsa_alloc unrelated = {other, 64 * block_bytes, 0, 0, 0};
	CHECK(gsa_allocs_add(&small) && gsa_allocs_add(&unrelated), "registry");
	struct gsa_attention a = cache_at(base), b = cache_at(other);
	struct gsa_kv *k1 = gsa_kv_get(&l, &a, false, &why);
	struct gsa_kv *kb = gsa_kv_get(&l, &b, false, &why);
	CHECK(k1 && kb, "states created (why %d)", why);
	if (!k1 || !kb)
		return check_report("test_kv_buffers");
	CHECK_EQ_U64(k1->num_phys_blocks, 200);
	CHECK(gsa_kv_get(&l, &a, false, &why) == k1, "found again");
	CHECK(gsa_kv_get(&l, &a, true, &why) == k1, "found again during capture");
	CHECK_EQ_U64(gsa_kv_count(), 2);
	CHECK_EQ_U64(gsa_kv_live(), 2);
	/* K and V of 200 + 64 blocks (each state counts its allocation from K's start) */
	CHECK_EQ_U64(gsa_kv_live_bytes(), 2 * (200 + 64) * block_bytes);

	/* freed (the free wrappers call gsa_kv_forget_range), then a cache 4x larger at the
	 * same address */
	struct gsa_alloc gone;
	CHECK(gsa_allocs_remove(base, &gone), "removed");
	gsa_kv_forget_range(gone.ptr, gone.size);
	/* what gsa_sparse_reserve() asks: how much live KV cache there is */
	CHECK_EQ_U64(gsa_kv_live(), 1);
	CHECK_EQ_U64(gsa_kv_live_bytes(), 2 * 64 * block_bytes);
	struct gsa_alloc big = {base, 800 * block_bytes, 0, 0, 0};
	CHECK(gsa_allocs_add(&big), "re-added");

	/* during capture nothing may be created: the launch runs dense, and says why */
	why = 0;
	CHECK(gsa_kv_get(&l, &a, true, &why) == NULL, "no stale state during capture");
	CHECK_EQ_U64(why, GSA_DENSE_CAPTURE);

	struct gsa_kv *k2 = gsa_kv_get(&l, &a, false, &why);
	CHECK(k2 && k2 != k1, "a new state for the new cache");
	if (k2) {
		CHECK_EQ_U64(k2->num_phys_blocks, 800);
		CHECK(k2->layer == 2, "layer %d (order of first use)", k2->layer);
	}
	CHECK(gsa_kv_get(&l, &a, false, &why) == k2, "the new one is found from now on");
	CHECK(gsa_kv_get(&l, &b, false, &why) == kb, "a cache outside the freed range is kept");

	/* a free of memory that held no cache retires nothing */
	gsa_kv_forget_range(0x1000, 4096);
	CHECK(gsa_kv_get(&l, &b, false, &why) == kb, "unrelated free");
	CHECK_EQ_U64(gsa_kv_count(), 3);
	CHECK_EQ_U64(gsa_kv_live(), 2);
	return check_report("test_kv_buffers");
}

/* The selection's host path for one attention launch (sparse/select.c with sparse/buffers.c)
 * against the hot-path rules: once a KV cache and its block table are prepared, a launch
 * enqueues exactly the selection kernel on the launch's stream and makes no allocation,
 * memset or any other driver call but the capture query; during capture nothing is created
 * (a new cache runs dense). Also prints the host time per launch. The driver, the module, the
 * log, the trace and the statistics are stand-ins defined here. */
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include <cuda.h>

#include "preload/alloc_registry.h"
#include "preload/config.h"
#include "preload/driver.h"
#include "preload/kernel_table.h"
#include "preload/log.h"
#include "preload/state.h"
#include "sparse/select_args.h"
#include "preload/trace.h"
#include "sparse/buffers.h"
#include "sparse/module.h"
#include "sparse/sparse.h"
#include "sparse/stats.h"
#include "tests/cpu/check.h"
#include "tests/cpu/stand_in_device.h"

struct gsa_config gsa_cfg = {.ratio = 0.3, .policy = GSA_POLICY_MEAN, .sink_blocks = 1,
			     .local_blocks = 2, .min_blocks = 16, .min_tokens = 2048};
bool gsa_active = true, gsa_tracing = false;

static int n_capture_query, n_launch, n_trace;
static unsigned last_gy;
static int last_warp_blocks;
static CUstream launch_stream;
static CUstreamCaptureStatus capture_status = CU_STREAM_CAPTURE_STATUS_NONE;

void gsa_trace_emit(uint16_t type, const void *payload, uint32_t size)
{
	(void)type, (void)payload, (void)size;
	n_trace++;
}
struct gsa_stats *gsa_stats_get(const struct gsa_module *m, bool capturing)
{
	(void)m, (void)capturing;
	return NULL;
}
struct gsa_stats_host *gsa_stats_host_dev(const struct gsa_stats *s) { (void)s; return NULL; }
struct gsa_stats_dev *gsa_stats_dev(const struct gsa_stats *s) { (void)s; return NULL; }

static int fake_score_select;
static struct gsa_module module = {NULL, NULL, (CUfunction)&fake_score_select, 0};
const struct gsa_module *gsa_module_current(void) { return &module; }
bool gsa_module_built(void) { return true; }

static CUresult is_capturing(CUstream s, CUstreamCaptureStatus *st)
{
	(void)s;
	n_capture_query++;
	*st = capture_status;
	return CUDA_SUCCESS;
}
const struct gsa_driver_api *gsa_driver(void)
{
	static const struct gsa_driver_api api = {.stream_is_capturing = is_capturing};
	return &api;
}

/* The launch's own entry point: the selection kernels must come through it, on its stream. */
static CUresult fake_launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
			    unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
			    void **extra)
{
	(void)bx, (void)by, (void)bz, (void)shmem, (void)extra;
	n_launch++;
	if (s != launch_stream || !params || f != module.score_select)
		n_launch += 1000; /* shows up as a wrong count */
	/* The grid is (sequences, chunks of the table's width): kernel_common.cuh's grid_seq and
	 * grid_chunk read it so, with chunks of GSA_SCORE_WARPS x warp_blocks blocks. */
	const struct gsa_select_args *args = params ? (const struct gsa_select_args *)params[0] : NULL;
	int64_t chunk = args ? (int64_t)GSA_SCORE_WARPS * args->warp_blocks : 1;
	if (!args || gx != (unsigned)args->num_seqs || gz != 1 ||
	    gy != (unsigned)((args->bt_stride + chunk - 1) / chunk))
		n_launch += 1000;
	last_gy = gy;
	last_warp_blocks = args ? args->warp_blocks : -1;
	return CUDA_SUCCESS;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* vLLM 0.33.0's packed layout, 8 KV heads x 128, block 16: (blocks, 16, 8, 256) bf16. */
static struct gsa_attention decode_batch(uint64_t kv, uint64_t table, uint64_t lens, uint64_t q)
{
	struct gsa_attention a;
	memset(&a, 0, sizeof a);
	a.query = q;
	a.key_cache = kv;
	a.value_cache = kv + 256;
	a.block_table = table;
	a.seq_lens = lens;
	a.query_start_loc = lens + 4096;
	a.block_table_stride = 8320;
	a.num_seqs = 8;
	a.block_size = 16;
	a.num_kv_heads = 8;
	a.head_size = 128;
	a.num_q_heads = 32;
	a.kv_block_stride = 16 * 8 * 256;
	a.k_stride_token = 8 * 256;
	a.k_stride_head = 256;
	a.q_stride_token = 32 * 128;
	a.q_stride_head = 128;
	a.dtype = -1;
	return a;
}

int main(void)
{
	const uint64_t kv = 0x7f0000000000ull, kv2 = 0x7e0000000000ull;
	const uint64_t table = 0x7d0000000000ull, lens = 0x7c0000000000ull, q = 0x7b0000000000ull;
	struct gsa_alloc allocs[] = {
		{kv, 1000ull * 16 * 8 * 256 * 2, 0, 0, 0},
		{kv2, 1000ull * 16 * 8 * 256 * 2, 0, 0, 0},
		{table, 64ull * 8320 * 4, 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof allocs / sizeof allocs[0]; i++)
		CHECK(gsa_allocs_add(&allocs[i]), "registry");

	struct gsa_kernel kernel = {.id = 7, .name = "kernel_unified_attention"};
	launch_stream = (CUstream)0x1234;
	struct gsa_launch l = {.kernel = &kernel, .stream = launch_stream,
			       .real = (void *)fake_launch, .api = GSA_API_LAUNCH};
	struct gsa_attention a = decode_batch(kv, table, lens, q);
	struct gsa_rewrite rw = {0, 0, 0};

	/* first eager launch: prepares the cache's state and the table's shadow */
	CHECK(gsa_sparse_select(&l, &a, &rw), "first launch rewritten");
	CHECK(stand_in_allocs > 0, "buffers created at the first eager launch");
	CHECK(rw.block_table && rw.block_table != table && rw.seq_lens && rw.seq_lens != lens,
	      "rewritten to the library's shadow buffers");
	CHECK_EQ_U64(n_launch, 1);
	/* No multiprocessor count known: the largest chunk (decode_batch: 8 sequences, a table
	 * 8320 blocks wide). */
	CHECK_EQ_U64(last_warp_blocks, GSA_WARP_BLOCKS);
	CHECK_EQ_U64(last_gy, (8320 + GSA_SCORE_CHUNK - 1) / GSA_SCORE_CHUNK);

	/* The chunk shrinks only while the grid stays within one wave of the multiprocessors. */
	CHECK_EQ_U64(gsa_warp_blocks(8, 259, 0), GSA_WARP_BLOCKS);
	CHECK_EQ_U64(gsa_warp_blocks(8, 2052, 132), GSA_WARP_BLOCKS);  /* 136 CTAs even at 8 */
	CHECK_EQ_U64(gsa_warp_blocks(8, 259, 132), 2);                 /* 8 x 9 = 72; 8 x 17 > 132 */
	CHECK_EQ_U64(gsa_warp_blocks(8, 259, 136), 1);                 /* 8 x 17 = 136 */
	CHECK_EQ_U64(gsa_warp_blocks(8, 8320, 132), GSA_WARP_BLOCKS);
	CHECK_EQ_U64(gsa_warp_blocks(64, 259, 132), GSA_WARP_BLOCKS);
	CHECK_EQ_U64(gsa_warp_blocks(1, 512, 132), 1);
	module.num_sms = 132;
	struct gsa_attention narrow = decode_batch(kv, table, lens, q);
	narrow.block_table_stride = 259;
	n_launch = 0;
	CHECK(gsa_sparse_select(&l, &narrow, &rw), "a narrow table rewritten");
	CHECK_EQ_U64(n_launch, 1);
	CHECK_EQ_U64(last_warp_blocks, 2);
	CHECK_EQ_U64(last_gy, 9);
	n_launch = 0;
	CHECK(gsa_sparse_select(&l, &a, &rw), "the wide table again");
	CHECK_EQ_U64(n_launch, 1);
	CHECK_EQ_U64(last_warp_blocks, GSA_WARP_BLOCKS);
	CHECK_EQ_U64(last_gy, (8320 + GSA_SCORE_CHUNK - 1) / GSA_SCORE_CHUNK);

	/* The memory reserve: on while the live caches are under a quarter of the card, off once
	 * they reach it (this cache: 1000 blocks of 64 KiB of K, as much V, about 125 MiB). */
	const uint64_t cache = 2 * 1000ull * 16 * 8 * 256 * 2;
	CHECK_EQ_U64(gsa_sparse_reserve(48ull << 30), (48ull << 30) / 48);
	CHECK_EQ_U64(gsa_sparse_reserve(4 * cache + 4), (4 * cache + 4) / 48);
	CHECK_EQ_U64(gsa_sparse_reserve(4 * cache), 0);

	/* steady state: the hot path */
	const int N = 200000;
	int alloc0 = stand_in_allocs, memset0 = stand_in_memsets, cap0 = n_capture_query;
	n_launch = 0;
	double t0 = now_ns();
	int rewritten = 0;
	for (int i = 0; i < N; i++) {
		struct gsa_attention b = decode_batch(kv, table, lens, q);
		struct gsa_rewrite r = {0, 0};
		rewritten += gsa_sparse_select(&l, &b, &r) && r.block_table == rw.block_table;
	}
	double per = (now_ns() - t0) / N;
	CHECK_EQ_U64(rewritten, N);
	CHECK_EQ_U64(n_launch, (unsigned long long)N);
	CHECK_EQ_U64(stand_in_allocs - alloc0, 0);
	CHECK_EQ_U64(stand_in_memsets - memset0, 0);
	CHECK_EQ_U64(n_capture_query - cap0, N);
	printf("NOTE selection host path: %.0f ns per attention launch (one kernel enqueued, "
	       "stand-in driver)\n", per);

	/* during capture: prepared state is used, nothing is created */
	capture_status = CU_STREAM_CAPTURE_STATUS_ACTIVE;
	alloc0 = stand_in_allocs;
	n_launch = 0;
	CHECK(gsa_sparse_select(&l, &a, &rw), "prepared cache rewritten during capture");
	CHECK_EQ_U64(n_launch, 1);
	struct gsa_attention c = decode_batch(kv2, table, lens, q);
	CHECK(!gsa_sparse_select(&l, &c, &rw), "a cache first seen during capture runs dense");
	CHECK_EQ_U64(stand_in_allocs - alloc0, 0);
	CHECK_EQ_U64(n_launch, 1);
	return check_report("test_select_hot_path");
}

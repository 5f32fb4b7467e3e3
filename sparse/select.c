/* Selection for one attention launch (see sparse.h): one kernel (sparse/gsa_kernels.cu)
 * enqueued on the launch's stream through the same driver entry point the launch uses,
 * then the launch is rewritten to read the shadow table and lengths. Nothing here
 * synchronises or allocates once the buffers exist, so it is captured into CUDA graphs
 * like the attention itself. */
#include <string.h>
#include <time.h>

#include "preload/config.h"
#include "preload/driver.h"
#include "preload/log.h"
#include "preload/state.h"
#include "preload/trace.h"
#include "preload/trace_format.h"
#include "sparse/budget.h"
#include "sparse/buffers.h"
#include "sparse/select_args.h"
#include "sparse/sparse.h"
#include "sparse/stats.h"

/* The shadow of this thread's last rewritten launch, for gsa_sparse_encode_failed(). */
static __thread struct gsa_shadow *last_shadow;
static __thread bool last_captured;

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
			      unsigned, unsigned, CUstream, void **, void **);
typedef CUresult (*launch_ex_fn)(const CUlaunchConfig *, CUfunction, void **, void **);

/* Capture state; an error counts as capturing (the safe answer: nothing gets created). */
static bool capturing(CUstream s)
{
	const struct gsa_driver_api *d = gsa_driver();
	CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
	if (!d->stream_is_capturing || d->stream_is_capturing(s, &st) != CUDA_SUCCESS)
		return true;
	return st != CU_STREAM_CAPTURE_STATUS_NONE;
}

static CUresult launch_aux(const struct gsa_launch *l, CUfunction f, unsigned gx, unsigned gy,
			   unsigned threads, unsigned shmem, struct gsa_select_args *args)
{
	void *params[] = {args};
	if (l->api == GSA_API_LAUNCH_EX) {
		CUlaunchConfig c;
		memset(&c, 0, sizeof c);
		c.gridDimX = gx, c.gridDimY = gy, c.gridDimZ = 1;
		c.blockDimX = threads, c.blockDimY = 1, c.blockDimZ = 1;
		c.sharedMemBytes = shmem;
		c.hStream = l->stream;
		return ((launch_ex_fn)l->real)(&c, f, params, NULL);
	}
	if (l->api == GSA_API_LAUNCH)
		return ((launch_fn)l->real)(f, gx, gy, 1, threads, 1, 1, shmem, l->stream, params, NULL);
	return CUDA_ERROR_NOT_SUPPORTED; /* cooperative launches are not attention */
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One ATTENTION record per decision when tracing (see trace_format.h). */
static void trace_decision(const struct gsa_launch *l, int layer, int num_seqs, int reason,
			   bool captured)
{
	if (!gsa_tracing)
		return;
	struct {
		uint64_t mono_ns;
		uint32_t kernel_id;
		int32_t layer, num_seqs;
		uint8_t reason, captured, reserved[2];
	} __attribute__((packed)) r = {mono_ns(), l->kernel->id, layer, num_seqs, (uint8_t)reason,
				       (uint8_t)captured, {0, 0}};
	gsa_trace_emit(GSA_REC_ATTENTION, &r, sizeof r);
}

static bool dense(const struct gsa_launch *l, int layer, int num_seqs, int why, bool captured)
{
	static atomic_uint logged; /* one message per reason */
	if (!(atomic_fetch_or(&logged, 1u << why) & (1u << why)))
		gsa_log(GSA_LOG_WARN, GSA_CODE_FAIL_OPEN, "%s: attention runs dense (%s)",
			l->kernel->name, gsa_dense_reason_text[why]);
	trace_decision(l, layer, num_seqs, why, captured);
	return false;
}

static bool geometry_ok(const struct gsa_attention *a)
{
	int row = a->num_kv_heads * a->head_size;
	return a->block_size >= 1 && a->head_size % 8 == 0 && a->head_size <= 512 &&
	       a->num_kv_heads >= 1 && row <= 4096 && a->num_q_heads % a->num_kv_heads == 0 &&
	       a->k_stride_head % 8 == 0 && a->k_stride_token % 8 == 0 && a->kv_block_stride % 8 == 0 &&
	       /* the kernels load keys and queries 16 bytes at a time */
	       a->q_stride_token % 8 == 0 && a->q_stride_kvhead % 8 == 0 &&
	       a->q_stride_member % 8 == 0 && a->query % 16 == 0 && a->key_cache % 16 == 0 &&
	       (a->q_stride_head >= a->head_size || a->q_stride_member) && a->block_table_stride >= 1 &&
	       /* the grid's y dimension counts the table's chunks (gsa_kernels.cu; smaller
	        * chunks than the largest only for grids of one wave) */
	       (a->block_table_stride + GSA_SCORE_CHUNK - 1) / GSA_SCORE_CHUNK <= 65535;
}

bool gsa_sparse_select(const struct gsa_launch *l, struct gsa_attention *a, struct gsa_rewrite *rw)
{
	bool cap = capturing(l->stream);
	int why = GSA_DENSE_NONE;
	struct gsa_shadow *prev = gsa_shadow_by_lens(a->seq_lens);
	if (prev)
		prev->last_rewritten = false; /* until this launch is rewritten */
	struct gsa_kv *kv = gsa_kv_get(l, a, cap, &why);
	if (!kv)
		return dense(l, -1, a->num_seqs, why, cap);
	/* The shadow is prepared even when this launch must run dense (query heads not
	 * known yet), so that a capture that follows finds everything ready. */
	struct gsa_shadow *sh = gsa_shadow_get(l, a, cap, &why);
	if (!sh)
		return dense(l, kv->layer, a->num_seqs, why, cap);
	sh->src_seq_lens = a->seq_lens;
	sh->last_kv = kv;
	sh->last_rewritten = false;
	if (a->num_q_heads)
		atomic_store_explicit(&kv->num_q_heads, a->num_q_heads, memory_order_relaxed);
	else
		a->num_q_heads = atomic_load_explicit(&kv->num_q_heads, memory_order_relaxed);
	if (!a->num_q_heads)
		return dense(l, kv->layer, a->num_seqs, GSA_DENSE_Q_HEADS, cap);
	if (!a->q_stride_kvhead) {
		a->q_stride_kvhead = a->q_stride_head * (a->num_q_heads / a->num_kv_heads);
		a->q_stride_member = a->q_stride_head;
	}
	if (!geometry_ok(a))
		return dense(l, kv->layer, a->num_seqs, GSA_DENSE_GEOMETRY, cap);

	struct gsa_select_args args = {
		.query = (const void *)a->query,
		.q_stride_token = a->q_stride_token,
		.q_stride_kvhead = a->q_stride_kvhead,
		.q_stride_member = a->q_stride_member,
		.key_cache = (const void *)a->key_cache,
		.k_stride_block = kv->k_stride_block,
		.k_stride_token = kv->k_stride_token,
		.k_stride_head = kv->k_stride_head,
		.block_table = (const int32_t *)a->block_table,
		.bt_stride = a->block_table_stride,
		.seq_lens = (const int32_t *)a->seq_lens,
		.query_start = (const int32_t *)a->query_start_loc,
		.num_seqs = a->num_seqs,
		.block_size = a->block_size,
		.num_kv_heads = a->num_kv_heads,
		.num_q_heads = a->num_q_heads,
		.head_size = a->head_size,
		.dtype = a->dtype >= 0 ? a->dtype : gsa_cfg.kv_dtype,
		.policy = kv->policy,
		.ratio = gsa_cfg.ratio,
		.sink_blocks = (int32_t)gsa_cfg.sink_blocks,
		.local_blocks = (int32_t)gsa_cfg.local_blocks,
		.min_blocks = (int32_t)gsa_cfg.min_blocks,
		.max_blocks = (int32_t)gsa_cfg.max_blocks,
		.min_tokens = (int32_t)gsa_cfg.min_tokens,
		.repr = (void *)kv->repr,
		.fingerprints = (uint64_t *)kv->fingerprints,
		.num_phys_blocks = kv->num_phys_blocks,
		.scores = (float *)sh->scores,
		.shadow_table = (int32_t *)sh->table,
		.shadow_lens = (int32_t *)sh->lens,
		.layer = kv->layer,
		.kernel_id = l->kernel->id,
		.record_blocks = gsa_config_traces_blocks(&gsa_cfg, kv->layer),
		.arrivals = (uint32_t *)sh->arrivals,
	};
	if (gsa_tracing) {
		struct gsa_stats *st = gsa_stats_get(kv->mod, cap);
		if (st) {
			args.stats_host = gsa_stats_host_dev(st);
			args.stats_dev = gsa_stats_dev(st);
		}
	}
	args.warp_blocks = gsa_warp_blocks(a->num_seqs, a->block_table_stride, kv->mod->num_sms);
	int64_t chunk = (int64_t)GSA_SCORE_WARPS * args.warp_blocks;
	unsigned chunks = (unsigned)((a->block_table_stride + chunk - 1) / chunk);
	unsigned smem = (unsigned)GSA_SCORE_SMEM(a->num_kv_heads * a->head_size);
	if (launch_aux(l, kv->mod->score_select, (unsigned)a->num_seqs, chunks, GSA_SCORE_THREADS,
		       smem, &args) != CUDA_SUCCESS)
		return dense(l, kv->layer, a->num_seqs, GSA_DENSE_LAUNCH, cap);

	rw->block_table = sh->table;
	rw->seq_lens = sh->lens;
	rw->max_len = a->decode_max_len > 0
			      ? gsa_shadow_len_bound(a->decode_max_len, a->block_size, gsa_cfg.ratio,
						     (int32_t)gsa_cfg.sink_blocks,
						     (int32_t)gsa_cfg.local_blocks,
						     (int32_t)gsa_cfg.min_blocks,
						     (int32_t)gsa_cfg.max_blocks,
						     (int32_t)gsa_cfg.min_tokens, a->block_table_stride)
			      : 0;
	sh->last_rewritten = true;
	last_shadow = sh;
	trace_decision(l, kv->layer, a->num_seqs, GSA_DENSE_NONE, cap);
	last_captured = cap;
	return true;
}

bool gsa_sparse_follow(const struct gsa_launch *l, const struct gsa_attention *a,
		       struct gsa_rewrite *rw)
{
	struct gsa_shadow *sh = gsa_shadow_by_lens(a->seq_lens);
	if (!sh)
		return false;
	/* A follower that reveals the number of query heads (vLLM 0.10's reduce_segments after
	 * the 3D kernel, which does not) teaches it to the layer it follows. */
	if (a->num_q_heads && sh->last_kv)
		atomic_store_explicit(&sh->last_kv->num_q_heads, a->num_q_heads, memory_order_relaxed);
	if (!sh->last_rewritten || a->num_seqs > sh->rows)
		return false;
	memset(rw, 0, sizeof *rw);
	rw->seq_lens = sh->lens; /* the block table stays the caller's: followers do not read it */
	rw->max_len = 0;
	return true;
}

void gsa_sparse_encode_failed(const struct gsa_launch *l)
{
	/* The selection ran but the launch is dense: followers must read the real lengths. */
	if (last_shadow)
		last_shadow->last_rewritten = false;
	trace_decision(l, -1, 0, GSA_DENSE_ENCODE, last_captured);
	GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_FAIL_OPEN, "%s: launch re-encoding failed: runs dense",
		     l->kernel->name);
}

void gsa_sparse_forget_memory(uint64_t ptr, uint64_t size)
{
	gsa_kv_forget_range(ptr, size);
}

uint64_t gsa_sparse_reserve(uint64_t total_bytes)
{
	/* Until the KV caches prepared and still live make up a quarter of the card, the engine
	 * may still be sizing its real one: an engine whose profiling pass ran attention over a
	 * small throw-away cache has prepared state for it, and freeing it need not return its
	 * memory to the driver (PyTorch's caching allocator keeps a segment while anything in it
	 * lives), so "no live cache" would turn the reserve off too early. Reporting less free
	 * memory for longer only makes an engine more careful. */
	if (!gsa_active || gsa_cfg.ratio >= 1.0 || !gsa_module_built() ||
	    gsa_kv_live_bytes() >= total_bytes / 4)
		return 0;
	/* Representations take 1/(4 x block size) of the KV cache for mean (one fp8 byte per
	 * key channel), four times that for Quest (min and max in the KV element type); block
	 * size 16 is the smallest vLLM uses, and the cache is at most the card. Mean reserves
	 * 1/48, not 1/64: fingerprints (8 bytes a block) and row padding come on top. */
	uint64_t reserve = total_bytes / (gsa_cfg.policy == GSA_POLICY_QUEST ? 16 : 48);
	GSA_LOG_ONCE(GSA_LOG_INFO, GSA_CODE_GENERIC,
		     "free memory reported %llu MiB lower until the KV cache is prepared (room for the selection's buffers)",
		     (unsigned long long)(reserve >> 20));
	return reserve;
}

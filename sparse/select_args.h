/* The arguments of the selection kernels, shared by the CUDA side (gsa_kernels.cu) and the
 * host side (select.c). Passed by value as the kernels' single parameter. All strides are
 * in elements; all pointers are device pointers. */
#ifndef GSA_SELECT_ARGS_H
#define GSA_SELECT_ARGS_H

#include <stdint.h>

struct gsa_stats_host;
struct gsa_stats_dev;

enum gsa_kv_dtype { GSA_KV_BF16 = 0, GSA_KV_FP16 = 1 };

struct gsa_select_args {
	/* The launch's tensors (read only). */
	const void *query;          /* [tokens, q_heads, head_size] */
	/* Query of sequence s, KV head h, group member j (query head h * group + j), element d
	 * at token(s) * q_stride_token + h * q_stride_kvhead + j * q_stride_member + d. */
	int64_t q_stride_token, q_stride_kvhead, q_stride_member;
	/* Key (b, t, h, d) at b*k_stride_block + t*k_stride_token + h*k_stride_head + d: each
	 * head's head_size elements are contiguous, whatever the cache layout around them. */
	const void *key_cache;
	int64_t k_stride_block, k_stride_token, k_stride_head;
	const int32_t *block_table; /* [num_seqs, bt_stride] */
	int64_t bt_stride;
	const int32_t *seq_lens;    /* [num_seqs] */
	const int32_t *query_start; /* [num_seqs + 1], or NULL: one query token per sequence */
	int32_t num_seqs;
	int32_t block_size, num_kv_heads, num_q_heads, head_size;
	int32_t dtype;              /* enum gsa_kv_dtype */
	int32_t policy;             /* enum gsa_policy (preload/config.h) */

	/* Budget (preload/config.h). */
	double ratio;
	int32_t sink_blocks, local_blocks, min_blocks, max_blocks, min_tokens;

	/* Library-owned buffers. */
	void *repr;                 /* per physical block: policy mean: [kv_heads*head_size]
	                               fp8 e4m3, padded to a multiple of 16 bytes; quest: min
	                               then max in the KV element type */
	uint64_t *fingerprints;     /* per physical block: content fingerprint of repr, 0 = none */
	int64_t num_phys_blocks;
	float *scores;              /* [num_seqs, bt_stride] scratch */
	int32_t *shadow_table;      /* [num_seqs, bt_stride] */
	int32_t *shadow_lens;       /* [num_seqs] */
	/* Statistics for the trace (stats_ring.h), or NULL when not tracing. */
	struct gsa_stats_host *stats_host; /* device view of host-mapped memory */
	struct gsa_stats_dev *stats_dev;
	int32_t layer;
	uint32_t kernel_id;
	int32_t record_blocks;      /* this layer's bitmaps go to the trace (GSA_TRACE_BLOCKS) */
	/* Per sequence row: scoring CTAs of the running launch that have finished (the last one
	 * selects, and sets it back to 0). Zeroed when allocated. */
	uint32_t *arrivals;
	/* Middle blocks each warp of a scoring CTA takes, 1 to GSA_WARP_BLOCKS (gsa_warp_blocks;
	 * 0 reads as GSA_WARP_BLOCKS). */
	int32_t warp_blocks;
};

/* Logical blocks scored by one CTA of the scoring kernel, GSA_WARP_BLOCKS per warp whose
 * loads overlap (each block is a chain of dependent loads: table entry, fingerprint, then
 * representation), while the group-mean query each CTA recomputes stays cheap.
 *
 * 512 threads a CTA (one CTA a multiprocessor at 128 registers a thread), for the
 * selection that runs in one of them: a decode step's selection is a chain of CTA-wide
 * steps, and with twice the threads each thread's share of a row halves (the counting
 * loops, and the code unrolled over the share, which a decode step fetches cold). Against
 * 256 threads (two CTAs a multiprocessor) the fused kernel went from 23.6 to 20.9 us in
 * FA2 graph replays at batch 8 / 32K and 64.7 to 61.9 us at 128K; scoring alone is up to
 * 5% slower at batch 32-64 / 128K (tests/bench/results/select_split.txt). Overridable for
 * select_split and select_topk builds that compare the two. */
#define GSA_WARP_BLOCKS 8
#ifndef GSA_SCORE_THREADS
#define GSA_SCORE_THREADS 512
#endif
#define GSA_SCORE_WARPS (GSA_SCORE_THREADS / 32)
/* The largest chunk (GSA_WARP_BLOCKS blocks a warp). */
#define GSA_SCORE_CHUNK (GSA_SCORE_WARPS * GSA_WARP_BLOCKS)

/* Blocks a warp scores for a launch of num_seqs rows of a table bt_stride blocks wide on a
 * GPU of num_sms multiprocessors (0: unknown): the fewest (1, 2, 4) whose grid of
 * num_seqs x ceil(bt_stride / (GSA_SCORE_WARPS x that)) CTAs still fits in one wave (one
 * CTA a multiprocessor), else GSA_WARP_BLOCKS. A launch with few blocks (large blocks,
 * short tables) then spreads its representation reads over more multiprocessors: at
 * 128-token blocks, batch 8 and 32K, 72 CTAs of 32 blocks instead of 24 of up to 128
 * (H200: scoring alone 9.8 -> 9.1 us, the Triton decode bench's GSA - oracle 15.4 -> 12.1
 * us; select_split.txt). Decided from the table's width, which the host knows, not from
 * the lengths, which only the GPU does: a table as wide as an engine's maximum length
 * keeps the full chunk, as before. */
static inline int gsa_warp_blocks(int64_t num_seqs, int64_t bt_stride, int64_t num_sms)
{
	for (int w = 1; w < GSA_WARP_BLOCKS; w *= 2) {
		int64_t chunk = (int64_t)GSA_SCORE_WARPS * w;
		if (num_seqs * ((bt_stride + chunk - 1) / chunk) <= num_sms)
			return w;
	}
	return GSA_WARP_BLOCKS;
}
/* Dynamic shared memory of a scoring CTA for rows of `row` channels: the group-mean query
 * in float, then scaled to fp16 (score_chunk.cuh). */
#define GSA_SCORE_SMEM(row) ((row) * 6)
/* The selection runs in the last scoring CTA of each sequence to finish, so with as many
 * threads; up to 32 candidates per thread stay in registers (16K blocks, 256K tokens at
 * 16-token blocks and 512 threads), longer rows re-read their scores from L2
 * (cta_topk.cuh). */
#define GSA_SELECT_THREADS GSA_SCORE_THREADS

#endif

/* The adapter interface: how one kernel family is recognised and how its launches are
 * decoded into (and re-encoded from) one common description of a paged-attention call.
 *
 * A launch reaches an adapter as the driver sees it: the handle, the launch geometry and
 * the kernelParams array (one pointer per parameter, each pointing at the caller's value).
 * Families differ in how arguments are packed (flat Triton arguments, one by-value
 * Flash_fwd_params struct, ...): the adapter owns that difference, so the dispatch below
 * treats every family alike. */
#ifndef GSA_HOOKS_ADAPTER_H
#define GSA_HOOKS_ADAPTER_H

#include <cuda.h>
#include <stdbool.h>
#include <stdint.h>

#include "preload/kernel_table.h"

/* One launch, whichever entry point it came through. */
struct gsa_launch {
	struct gsa_kernel *kernel;
	unsigned grid[3], block[3];
	unsigned shared_mem;
	CUstream stream;
	void **params;                 /* the caller's kernelParams; never written */
	void **extra;
	const CUlaunchConfig *config;  /* cuLaunchKernelEx only, else NULL */
	/* The real entry point this launch goes through (exactly the variant the caller
	 * resolved), so that work the library adds runs with the same stream semantics. */
	void *real;
	uint8_t api;                   /* enum gsa_launch_api */
};

enum gsa_launch_api { GSA_API_LAUNCH = 0, GSA_API_LAUNCH_EX = 1, GSA_API_LAUNCH_COOP = 2 };

/* The common description of a paged-attention launch (filled by decode()). */
struct gsa_attention {
	CUdeviceptr query, key_cache, value_cache;
	CUdeviceptr block_table;       /* int32 [num_seqs, block_table_stride] */
	CUdeviceptr seq_lens;          /* int32 [num_seqs] */
	CUdeviceptr query_start_loc;   /* int32 [num_seqs + 1], 0 when the family has none */
	int64_t block_table_stride;    /* elements */
	int32_t num_seqs;
	int32_t block_size;            /* tokens per KV block */
	int32_t num_kv_heads, head_size;
	int32_t num_q_heads;           /* 0 when this launch does not reveal it */
	int64_t kv_block_stride;       /* elements between consecutive blocks of K */
	int64_t k_stride_token, k_stride_head; /* elements; each head's keys are contiguous */
	int64_t num_blocks;            /* physical blocks when the layout tells, else 0 */
	int64_t q_stride_token, q_stride_head; /* elements */
	/* When the family lays the GQA group out otherwise than as consecutive query heads
	 * (FA2 folds it into the query length): the strides between KV heads' groups and
	 * between members of a group; 0 means group * q_stride_head and q_stride_head. */
	int64_t q_stride_kvhead, q_stride_member;
	int32_t dtype;                 /* enum gsa_kv_dtype when the launch says, else -1 */
	/* The host's maximum sequence length when the kernel sizes its work by it and the
	 * launch has at most one query token per sequence (pure decode), else 0. */
	int64_t decode_max_len;
};

/* Where a rewritten launch takes its block table and lengths from instead. */
struct gsa_rewrite {
	CUdeviceptr block_table;
	CUdeviceptr seq_lens; /* the block table's stride is the caller's: shadows mirror it */
	int64_t max_len;      /* a bound of the shadow lengths for decode_max_len, else 0 */
};

struct gsa_adapter {
	const char *family;   /* e.g. "triton-unified" */
	/* Whether this kernel (name and parameter layout, as read from the driver) is one
	 * this adapter can decode; may keep what it learned in k->adapter_state. Called once
	 * per kernel handle, off the launch path. */
	bool (*match)(struct gsa_kernel *k);
	/* Fills *a from the launch; false when this launch cannot be handled (it then runs
	 * unmodified). Must not write the caller's parameters. */
	bool (*decode)(const struct gsa_launch *l, struct gsa_attention *a);
	/* Builds the rewritten parameter array in storage (the adapter's own memory for this
	 * thread) and returns it; NULL on failure (the launch then runs unmodified). */
	void **(*encode)(const struct gsa_launch *l, const struct gsa_rewrite *rw, void *storage,
			 unsigned storage_size);
	/* A kernel that only follows an attention launch (e.g. a reduction reading the same
	 * sequence lengths): it takes the preceding launch's rewrite, if that one was
	 * rewritten, instead of selecting. */
	bool follows;
};

#endif

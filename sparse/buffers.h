/* The library's GPU buffers for selection, created at the first eager launch that needs them
 * (never during stream capture):
 *   per KV cache (one per layer): block representations and their fingerprints;
 *   per block table: the shadow block table, shadow lengths and a score scratch.
 * Look-ups are lock-free; creation takes a lock (once per KV cache or block table). */
#ifndef GSA_SPARSE_BUFFERS_H
#define GSA_SPARSE_BUFFERS_H

#include <cuda.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "hooks/adapter.h"
#include "sparse/module.h"

struct gsa_kv {
	uint64_t key_cache;
	int32_t layer;               /* order of first use */
	const struct gsa_module *mod;
	CUdeviceptr repr, fingerprints;
	int64_t num_phys_blocks;
	int32_t block_size, num_kv_heads, head_size, policy;
	int64_t k_stride_block, k_stride_token, k_stride_head;
	atomic_int num_q_heads;      /* learned from launches that reveal it; 0 until then */
	atomic_bool retired;         /* its memory was freed: never found again */
};

struct gsa_shadow {
	uint64_t block_table;
	CUdeviceptr table, lens, scores;
	CUdeviceptr arrivals;        /* per row, zeroed: the selection kernel's counters */
	int64_t rows, stride;
	/* The last attention launch that used this table (host order = stream order). */
	uint64_t src_seq_lens;
	struct gsa_kv *last_kv;
	bool last_rewritten;
};

enum gsa_dense_reason {
	GSA_DENSE_NONE = 0,
	GSA_DENSE_NO_KERNELS,     /* selection kernels not built or not loadable here */
	GSA_DENSE_CAPTURE,        /* first seen during stream capture, nothing prepared */
	GSA_DENSE_UNTRACKED_KV,   /* KV cache not in the allocation registry */
	GSA_DENSE_ALLOC,          /* the library's buffers could not be allocated */
	GSA_DENSE_GEOMETRY,       /* head size, heads or layout the kernels do not handle */
	GSA_DENSE_Q_HEADS,        /* number of query heads not known yet */
	GSA_DENSE_LAUNCH,         /* enqueueing the selection failed */
	GSA_DENSE_ENCODE,         /* the adapter could not re-encode the launch */
	GSA_DENSE_REASONS
};
extern const char *const gsa_dense_reason_text[GSA_DENSE_REASONS];

/* The state for this KV cache, created if allowed (not capturing); NULL and *why otherwise. */
struct gsa_kv *gsa_kv_get(const struct gsa_launch *l, const struct gsa_attention *a,
			  bool capturing, int *why);
/* The shadow for this block table with room for the launch, created or grown if allowed. */
struct gsa_shadow *gsa_shadow_get(const struct gsa_launch *l, const struct gsa_attention *a,
				  bool capturing, int *why);
/* The shadow whose last launch read these sequence lengths, or NULL. */
struct gsa_shadow *gsa_shadow_by_lens(uint64_t seq_lens);
/* Number of KV caches prepared so far, and of those whose memory was not freed since. */
int gsa_kv_count(void);
int gsa_kv_live(void);
/* Bytes of K and V (2-byte elements) of the KV caches not retired, as far as their
 * allocations tell (a cache inside a larger allocation counts up to its end). */
uint64_t gsa_kv_live_bytes(void);
/* Device memory [ptr, ptr + size) was freed: KV states whose cache lay there are retired, so
 * a cache allocated later at the same address (maybe larger) gets a state sized for it. */
void gsa_kv_forget_range(uint64_t ptr, uint64_t size);

#endif

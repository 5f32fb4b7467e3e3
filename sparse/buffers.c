/* Creating and finding the selection buffers (see buffers.h). */
#include "sparse/buffers.h"

#include <pthread.h>
#include <stdlib.h>

#include "preload/alloc_registry.h"
#include "preload/driver.h"
#include "preload/log.h"
#include "preload/state.h"

const char *const gsa_dense_reason_text[GSA_DENSE_REASONS] = {
	[GSA_DENSE_NONE] = "rewritten",
	[GSA_DENSE_NO_KERNELS] = "selection kernels unavailable",
	[GSA_DENSE_CAPTURE] = "first seen during stream capture",
	[GSA_DENSE_UNTRACKED_KV] = "KV cache not a tracked allocation",
	[GSA_DENSE_ALLOC] = "buffer allocation failed",
	[GSA_DENSE_GEOMETRY] = "unsupported geometry",
	[GSA_DENSE_Q_HEADS] = "query heads not known yet",
	[GSA_DENSE_LAUNCH] = "selection launch failed",
	[GSA_DENSE_ENCODE] = "launch re-encoding failed",
};

#define MAX_KV 4096
#define MAX_SHADOWS 64
/* Rows of a shadow table beyond what the first launch needs, bounded by what the block
 * table's allocation can hold: batches grow after the first launch (CUDA-graph capture
 * walks batch sizes down from the largest). */
#define MAX_SHADOW_ROWS 1024

static _Atomic(struct gsa_kv *) kvs[MAX_KV];
static atomic_int n_kv;
static _Atomic(struct gsa_shadow *) shadows[MAX_SHADOWS];
static atomic_int n_shadows;
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

int gsa_kv_count(void) { return atomic_load_explicit(&n_kv, memory_order_relaxed); }

uint64_t gsa_kv_live_bytes(void)
{
	int n = atomic_load_explicit(&n_kv, memory_order_acquire);
	uint64_t bytes = 0;
	for (int i = 0; i < n; i++) {
		const struct gsa_kv *k = atomic_load_explicit(&kvs[i], memory_order_relaxed);
		if (!atomic_load_explicit(&k->retired, memory_order_acquire))
			bytes += (uint64_t)k->num_phys_blocks * (uint64_t)k->k_stride_block * 2 * 2;
	}
	return bytes;
}

int gsa_kv_live(void)
{
	int n = atomic_load_explicit(&n_kv, memory_order_acquire), live = 0;
	for (int i = 0; i < n; i++)
		live += !atomic_load_explicit(&atomic_load_explicit(&kvs[i], memory_order_relaxed)->retired,
					      memory_order_acquire);
	return live;
}

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*memset_fn)(CUdeviceptr, unsigned char, size_t, CUstream);

static CUdeviceptr device_alloc(size_t bytes)
{
	static _Atomic(alloc_fn) real;
	alloc_fn f = atomic_load(&real);
	if (!f) {
		f = (alloc_fn)gsa_driver_sym("cuMemAlloc_v2");
		atomic_store(&real, f);
	}
	CUdeviceptr p = 0;
	if (!f || f(&p, bytes ? bytes : 1) != CUDA_SUCCESS)
		return 0;
	return p;
}

static bool device_zero(CUdeviceptr p, size_t bytes, CUstream s)
{
	memset_fn f = (memset_fn)gsa_driver_sym("cuMemsetD8Async");
	return f && f(p, 0, bytes, s) == CUDA_SUCCESS;
}

static bool same_geometry(const struct gsa_kv *k, const struct gsa_attention *a)
{
	return k->block_size == a->block_size && k->num_kv_heads == a->num_kv_heads &&
	       k->head_size == a->head_size && k->k_stride_block == a->kv_block_stride &&
	       k->k_stride_token == a->k_stride_token && k->k_stride_head == a->k_stride_head &&
	       k->policy == gsa_cfg.policy;
}

/* Lock-free look-up: entries are published once and never move; newest first. */
static struct gsa_kv *kv_find(uint64_t key_cache)
{
	int n = atomic_load_explicit(&n_kv, memory_order_acquire);
	for (int i = n - 1; i >= 0; i--) {
		struct gsa_kv *k = atomic_load_explicit(&kvs[i], memory_order_relaxed);
		if (k->key_cache == key_cache &&
		    !atomic_load_explicit(&k->retired, memory_order_acquire))
			return k;
	}
	return NULL;
}

void gsa_kv_forget_range(uint64_t ptr, uint64_t size)
{
	/* Off the launch path (a free). The retired state's device buffers are not freed: a
	 * thread that found it just before may still enqueue work that uses them. */
	int n = atomic_load_explicit(&n_kv, memory_order_acquire);
	for (int i = 0; i < n; i++) {
		struct gsa_kv *k = atomic_load_explicit(&kvs[i], memory_order_relaxed);
		if (k->key_cache - ptr < size &&
		    !atomic_exchange_explicit(&k->retired, true, memory_order_acq_rel))
			gsa_log(GSA_LOG_INFO, GSA_CODE_GENERIC,
				"KV cache at %#llx freed: its selection state is retired (%d live)",
				(unsigned long long)k->key_cache, gsa_kv_live());
	}
}

struct gsa_kv *gsa_kv_get(const struct gsa_launch *l, const struct gsa_attention *a,
			  bool capturing, int *why)
{
	struct gsa_kv *k = kv_find(a->key_cache);
	if (k && same_geometry(k, a))
		return k;
	/* Unknown, or the address now holds another cache (the old one was freed and its
	 * memory reused, as PyTorch's caching allocator does): a new state, found first from
	 * now on. The old one's buffers are not freed: queued work may still use them. */
	if (capturing) {
		*why = GSA_DENSE_CAPTURE;
		return NULL;
	}
	const struct gsa_module *mod = gsa_module_current();
	if (!mod) {
		*why = GSA_DENSE_NO_KERNELS;
		return NULL;
	}
	struct gsa_alloc alloc;
	if (!gsa_allocs_find(a->key_cache, &alloc)) {
		*why = GSA_DENSE_UNTRACKED_KV;
		return NULL;
	}
	pthread_mutex_lock(&create_lock);
	k = kv_find(a->key_cache);
	if (k && same_geometry(k, a))
		goto out;
	int n = atomic_load(&n_kv);
	if (n >= MAX_KV) {
		*why = GSA_DENSE_ALLOC;
		goto out;
	}
	/* Blocks from the K view's start to the end of its allocation: an upper bound on the
	 * physical block ids the block table can name. */
	int64_t block_bytes = a->kv_block_stride * 2;
	int64_t blocks = (int64_t)(alloc.ptr + alloc.size - a->key_cache) / block_bytes;
	if (a->num_blocks > 0 && a->num_blocks < blocks)
		blocks = a->num_blocks; /* K and V in separate halves: K's half is the bound */
	/* Bytes per block, as the kernels lay them out (gsa_kernels.cu, repr_stride): mean is
	 * one fp8 byte per key channel, padded to 16; Quest is min and max, 2 bytes each. */
	int row = a->num_kv_heads * a->head_size;
	int per = gsa_cfg.policy == GSA_POLICY_QUEST ? row * 4 : (row + 15) & ~15;
	k = calloc(1, sizeof *k);
	if (!k || blocks <= 0) {
		free(k);
		k = NULL;
		*why = GSA_DENSE_ALLOC;
		goto out;
	}
	k->key_cache = a->key_cache;
	k->mod = mod;
	k->num_phys_blocks = blocks;
	k->block_size = a->block_size;
	k->num_kv_heads = a->num_kv_heads;
	k->head_size = a->head_size;
	k->policy = gsa_cfg.policy;
	k->k_stride_block = a->kv_block_stride;
	k->k_stride_token = a->k_stride_token;
	k->k_stride_head = a->k_stride_head;
	k->repr = device_alloc((size_t)blocks * per);
	k->fingerprints = device_alloc((size_t)blocks * 8);
	if (!k->repr || !k->fingerprints ||
	    !device_zero(k->fingerprints, (size_t)blocks * 8, l->stream)) {
		gsa_log(GSA_LOG_WARN, GSA_CODE_FAIL_OPEN,
			"could not allocate %.1f MiB for the block representations of a KV cache: it runs dense",
			(double)blocks * (per + 8) / 1048576.0);
		free(k); /* device memory, if any, stays with the process: no free during use */
		k = NULL;
		*why = GSA_DENSE_ALLOC;
		goto out;
	}
	k->layer = n;
	atomic_store_explicit(&kvs[n], k, memory_order_relaxed);
	atomic_store_explicit(&n_kv, n + 1, memory_order_release);
	gsa_log(GSA_LOG_INFO, GSA_CODE_GENERIC,
		"layer %d: KV cache 0x%llx, %lld blocks of %d tokens, %d KV heads x %d: %.1f MiB of representations",
		n, (unsigned long long)a->key_cache, (long long)blocks, a->block_size,
		a->num_kv_heads, a->head_size, (double)blocks * (per + 8) / 1048576.0);
out:
	pthread_mutex_unlock(&create_lock);
	return k;
}

static struct gsa_shadow *shadow_find(uint64_t block_table)
{
	int n = atomic_load_explicit(&n_shadows, memory_order_acquire);
	for (int i = n - 1; i >= 0; i--) {
		struct gsa_shadow *s = atomic_load_explicit(&shadows[i], memory_order_relaxed);
		if (s->block_table == block_table)
			return s;
	}
	return NULL;
}

struct gsa_shadow *gsa_shadow_by_lens(uint64_t seq_lens)
{
	int n = atomic_load_explicit(&n_shadows, memory_order_acquire);
	for (int i = n - 1; i >= 0; i--) {
		struct gsa_shadow *s = atomic_load_explicit(&shadows[i], memory_order_relaxed);
		if (s->src_seq_lens == seq_lens)
			return s;
	}
	return NULL;
}

struct gsa_shadow *gsa_shadow_get(const struct gsa_launch *l, const struct gsa_attention *a,
				  bool capturing, int *why)
{
	struct gsa_shadow *s = shadow_find(a->block_table);
	if (s && s->rows >= a->num_seqs && s->stride == a->block_table_stride)
		return s;
	if (capturing) {
		*why = GSA_DENSE_CAPTURE;
		return NULL;
	}
	pthread_mutex_lock(&create_lock);
	struct gsa_shadow *old = shadow_find(a->block_table);
	if (old && old->rows >= a->num_seqs && old->stride == a->block_table_stride) {
		s = old;
		goto out;
	}
	int n = atomic_load(&n_shadows);
	if (!old && n >= MAX_SHADOWS) {
		s = NULL;
		*why = GSA_DENSE_ALLOC;
		goto out;
	}
	/* As many rows as the block table's allocation could hold, within bounds. */
	int64_t rows = a->num_seqs;
	struct gsa_alloc alloc;
	if (gsa_allocs_find(a->block_table, &alloc)) {
		int64_t fit = (int64_t)(alloc.ptr + alloc.size - a->block_table) /
			      (a->block_table_stride * 4);
		if (fit > rows)
			rows = fit < MAX_SHADOW_ROWS ? fit : (rows > MAX_SHADOW_ROWS ? rows : MAX_SHADOW_ROWS);
	}
	size_t cells = (size_t)rows * (size_t)a->block_table_stride;
	s = calloc(1, sizeof *s);
	if (s) {
		s->block_table = a->block_table;
		s->rows = rows;
		s->stride = a->block_table_stride;
		s->table = device_alloc(cells * 4);
		s->scores = device_alloc(cells * 4);
		s->lens = device_alloc((size_t)rows * 4);
		s->arrivals = device_alloc((size_t)rows * 4);
	}
	if (!s || !s->table || !s->scores || !s->lens || !s->arrivals ||
	    !device_zero(s->arrivals, (size_t)rows * 4, l->stream)) {
		free(s);
		s = NULL;
		*why = GSA_DENSE_ALLOC;
		goto out;
	}
	if (old) {
		/* Grown: the old one may still be in use by queued work, so it is not freed; it
		 * stops being found because the new one is searched first. */
		gsa_log(GSA_LOG_INFO, GSA_CODE_GENERIC, "shadow table grown to %lld rows",
			(long long)rows);
		n = atomic_load(&n_shadows);
		if (n >= MAX_SHADOWS) {
			free(s);
			s = NULL;
			*why = GSA_DENSE_ALLOC;
			goto out;
		}
	}
	atomic_store_explicit(&shadows[n], s, memory_order_relaxed);
	atomic_store_explicit(&n_shadows, n + 1, memory_order_release);
out:
	pthread_mutex_unlock(&create_lock);
	return s;
}

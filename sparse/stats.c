/* Statistics rings (see stats.h). */
#include "sparse/stats.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "preload/driver.h"
#include "preload/log.h"
#include "preload/trace.h"
#include "preload/trace_encode.h"
#include "preload/trace_format.h"

#define MAX_RINGS 32

struct gsa_stats {
	CUcontext ctx;
	struct gsa_stats_host *host;   /* host address */
	CUdeviceptr host_dev;          /* the same memory as the device sees it */
	CUdeviceptr dev;
	uint64_t expected;             /* next sequence number to read (flusher only) */
};

static struct gsa_stats rings[MAX_RINGS];
static atomic_int n_rings;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

struct gsa_stats_host *gsa_stats_host_dev(const struct gsa_stats *s)
{
	return (struct gsa_stats_host *)(uintptr_t)s->host_dev;
}
struct gsa_stats_dev *gsa_stats_dev(const struct gsa_stats *s)
{
	return (struct gsa_stats_dev *)(uintptr_t)s->dev;
}

struct gsa_stats *gsa_stats_get(const struct gsa_module *m, bool capturing)
{
	int n = atomic_load_explicit(&n_rings, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (rings[i].ctx == m->ctx)
			return rings[i].host ? &rings[i] : NULL;
	if (capturing)
		return NULL;
	typedef CUresult (*host_reg_fn)(void *, size_t, unsigned);
	typedef CUresult (*host_dev_fn)(CUdeviceptr *, void *, unsigned);
	typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
	typedef CUresult (*memset_fn)(CUdeviceptr, unsigned char, size_t);
	host_reg_fn hr = (host_reg_fn)gsa_driver_sym("cuMemHostRegister_v2");
	host_dev_fn hd = (host_dev_fn)gsa_driver_sym("cuMemHostGetDevicePointer_v2");
	alloc_fn da = (alloc_fn)gsa_driver_sym("cuMemAlloc_v2");
	memset_fn ms = (memset_fn)gsa_driver_sym("cuMemsetD8_v2");
	struct gsa_stats *found = NULL;
	pthread_mutex_lock(&lock);
	n = atomic_load(&n_rings);
	for (int i = 0; i < n; i++)
		if (rings[i].ctx == m->ctx)
			found = &rings[i];
	if (!found && n < MAX_RINGS) {
		struct gsa_stats *s = &rings[n];
		/* Our own memory, registered with the driver (not allocated by it), so that the
		 * flusher may still read it at exit, after the driver has torn its state down. */
		size_t bytes = (sizeof(struct gsa_stats_host) + 4095) & ~(size_t)4095;
		void *h = aligned_alloc(4096, bytes);
		s->ctx = m->ctx;
		s->expected = 1;
		if (h)
			memset(h, 0, bytes);
		if (h && hr && hd && da && ms &&
		    hr(h, bytes, CU_MEMHOSTREGISTER_DEVICEMAP) == CUDA_SUCCESS &&
		    hd(&s->host_dev, h, 0) == CUDA_SUCCESS &&
		    da(&s->dev, sizeof(struct gsa_stats_dev)) == CUDA_SUCCESS &&
		    ms(s->dev, 0, sizeof(struct gsa_stats_dev)) == CUDA_SUCCESS) {
			s->host = h;
		} else {
			/* h is not freed: it may already be registered with the driver. */
			gsa_log(GSA_LOG_WARN, GSA_CODE_TRACE_IO,
				"no pinned memory for selection statistics: the trace will not have them");
		}
		atomic_store_explicit(&n_rings, n + 1, memory_order_release);
		found = s;
	}
	pthread_mutex_unlock(&lock);
	return found && found->host ? found : NULL;
}

static uint64_t load_seq(const struct gsa_stats_slot *slot)
{
	return __atomic_load_n(&slot->seq, __ATOMIC_ACQUIRE);
}

/* The bitmaps of launch seq - 1, written before its statistics slot was published. */
static void emit_blocks(struct gsa_stats *s, uint64_t seq)
{
	static uint8_t buf[64 + GSA_BLOCK_WORDS * 4];
	for (int q = 0; q < GSA_BLOCK_SEQS; q++) {
		const struct gsa_blocks_slot *b = &s->host->blocks[(seq - 1) % GSA_BLOCK_SLOTS][q];
		if (__atomic_load_n(&b->seq, __ATOMIC_ACQUIRE) != seq)
			continue;
		struct gsa_enc e = {buf, 0, sizeof buf, false};
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint32_t bits = b->bits < GSA_BLOCK_WORDS * 32 ? b->bits : GSA_BLOCK_WORDS * 32;
		gsa_put_u64(&e, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
		gsa_put_u64(&e, seq - 1);
		gsa_put_u32(&e, (uint32_t)b->layer);
		gsa_put_u32(&e, (uint32_t)q);
		gsa_put_u32(&e, b->total);
		gsa_put_u32(&e, b->kept);
		gsa_put_u32(&e, b->sink);
		gsa_put_u32(&e, b->local);
		gsa_put_u32(&e, bits);
		gsa_put(&e, b->words, (bits + 7) / 8);
		if (__atomic_load_n(&b->seq, __ATOMIC_ACQUIRE) == seq && !e.failed)
			gsa_trace_emit(GSA_REC_BLOCKS, buf, e.n);
	}
}

static void poll_ring(struct gsa_stats *s)
{
	static uint8_t buf[64 + GSA_RING_SEQS * 8];
	for (;;) {
		const struct gsa_stats_slot *slot =
			&s->host->slots[(s->expected - 1) % GSA_RING_SLOTS];
		uint64_t seq = load_seq(slot);
		if (seq < s->expected)
			return; /* not written yet */
		if (seq > s->expected)
			gsa_log(GSA_LOG_INFO, GSA_CODE_TRACE_IO,
				"%llu selection statistics records overwritten before they were read",
				(unsigned long long)(seq - s->expected));
		struct gsa_enc e = {buf, 0, sizeof buf, false};
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint32_t num = slot->num_seqs, pairs = num < GSA_RING_SEQS ? num : GSA_RING_SEQS;
		gsa_put_u64(&e, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
		gsa_put_u64(&e, seq - 1);
		gsa_put_u32(&e, slot->kernel_id);
		gsa_put_u32(&e, (uint32_t)slot->layer);
		gsa_put_u32(&e, num);
		gsa_put_u32(&e, pairs);
		gsa_put(&e, slot->kept_total, pairs * 8);
		gsa_put_u64(&e, slot->gpu_start_ns);
		gsa_put_u64(&e, slot->select_ns);
		/* Still the same launch after the copy? Otherwise it was overwritten meanwhile. */
		if (load_seq(slot) == seq && !e.failed) {
			gsa_trace_emit(GSA_REC_SELECT, buf, e.n);
			emit_blocks(s, seq);
		}
		s->expected = seq + 1;
	}
}

void gsa_stats_poll(void)
{
	int n = atomic_load_explicit(&n_rings, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (rings[i].host)
			poll_ring(&rings[i]);
}

/* Per-thread launch counters. A launch increments a counter that only its own thread
 * writes (no shared cache line, no atomic read-modify-write); the trace's flusher sums all
 * threads' counters, plus those of threads that have exited, into exact totals. */
#ifndef GSA_COUNTERS_H
#define GSA_COUNTERS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define GSA_COUNTER_PAGE 1024u
#define GSA_COUNTER_PAGES 64u
#define GSA_MAX_KERNELS (GSA_COUNTER_PAGE * GSA_COUNTER_PAGES)

struct gsa_thread {
	_Atomic(_Atomic uint64_t *) pages[GSA_COUNTER_PAGES];
	/* Sequence numbers the runtime wrappers read to learn whether the driver layer saw
	 * the launch or allocation they forwarded (so each is recorded exactly once). */
	uint64_t launch_seq, alloc_seq;
	struct gsa_thread *next;
};

extern __thread struct gsa_thread *gsa_tls;

struct gsa_thread *gsa_thread_slow(void);
_Atomic uint64_t *gsa_counter_page_slow(struct gsa_thread *t, uint32_t page);

static inline struct gsa_thread *gsa_thread(void)
{
	struct gsa_thread *t = gsa_tls;
	return __builtin_expect(t != NULL, 1) ? t : gsa_thread_slow();
}

static inline void gsa_count_launch(struct gsa_thread *t, uint32_t kernel_id)
{
	uint32_t p = kernel_id / GSA_COUNTER_PAGE;
	_Atomic uint64_t *page = atomic_load_explicit(&t->pages[p], memory_order_relaxed);
	if (__builtin_expect(!page, 0))
		page = gsa_counter_page_slow(t, p);
	_Atomic uint64_t *c = &page[kernel_id % GSA_COUNTER_PAGE];
	/* Single writer: a relaxed load and store, no lock prefix. */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

void gsa_counters_init(void);
/* Sums every thread's counters for kernel ids [0, n) into out. */
void gsa_counters_snapshot(uint64_t *out, uint32_t n);
void gsa_counters_fork_prepare(void);
void gsa_counters_fork_parent(void);
void gsa_counters_fork_child(void);

#endif

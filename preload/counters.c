/* Per-thread counters and the registry of threads (see counters.h). The registry mutex is
 * taken when a thread first counts, when it exits and when the flusher sums: never on the
 * launch path once a thread is warm. */
#include "preload/counters.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "preload/log.h"

__thread struct gsa_thread *gsa_tls;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gsa_thread *threads;
static uint64_t *exited[GSA_COUNTER_PAGES]; /* totals of exited threads, under the lock */
static pthread_key_t exit_key;
/* Used when calloc fails: counts still go somewhere harmless (they are lost, logged). */
static __thread struct gsa_thread fallback_thread;
static _Atomic uint64_t fallback_page[GSA_COUNTER_PAGE];

static void thread_exit(void *arg)
{
	struct gsa_thread *t = arg;
	pthread_mutex_lock(&registry_lock);
	for (struct gsa_thread **pp = &threads; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	}
	for (uint32_t p = 0; p < GSA_COUNTER_PAGES; p++) {
		_Atomic uint64_t *page = atomic_load_explicit(&t->pages[p], memory_order_relaxed);
		if (!page || page == fallback_page)
			continue;
		if (!exited[p])
			exited[p] = calloc(GSA_COUNTER_PAGE, sizeof(uint64_t));
		if (exited[p])
			for (uint32_t i = 0; i < GSA_COUNTER_PAGE; i++)
				exited[p][i] += atomic_load_explicit(&page[i], memory_order_relaxed);
		free((void *)page);
	}
	pthread_mutex_unlock(&registry_lock);
	gsa_tls = NULL;
	free(t);
}

void gsa_counters_init(void)
{
	pthread_key_create(&exit_key, thread_exit);
}

struct gsa_thread *gsa_thread_slow(void)
{
	struct gsa_thread *t = calloc(1, sizeof *t);
	if (!t) {
		GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_GENERIC, "out of memory: launches go uncounted");
		return &fallback_thread;
	}
	pthread_mutex_lock(&registry_lock);
	t->next = threads;
	threads = t;
	pthread_mutex_unlock(&registry_lock);
	gsa_tls = t;
	pthread_setspecific(exit_key, t);
	return t;
}

_Atomic uint64_t *gsa_counter_page_slow(struct gsa_thread *t, uint32_t page)
{
	if (page >= GSA_COUNTER_PAGES || t == &fallback_thread)
		return fallback_page;
	_Atomic uint64_t *p = calloc(GSA_COUNTER_PAGE, sizeof *p);
	if (!p) {
		GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_GENERIC, "out of memory: launches go uncounted");
		return fallback_page;
	}
	atomic_store_explicit(&t->pages[page], p, memory_order_release);
	return p;
}

void gsa_counters_snapshot(uint64_t *out, uint32_t n)
{
	memset(out, 0, n * sizeof *out);
	pthread_mutex_lock(&registry_lock);
	for (uint32_t p = 0; p * GSA_COUNTER_PAGE < n && p < GSA_COUNTER_PAGES; p++) {
		uint32_t base = p * GSA_COUNTER_PAGE;
		uint32_t m = n - base < GSA_COUNTER_PAGE ? n - base : GSA_COUNTER_PAGE;
		if (exited[p])
			for (uint32_t i = 0; i < m; i++)
				out[base + i] += exited[p][i];
		for (struct gsa_thread *t = threads; t; t = t->next) {
			_Atomic uint64_t *page = atomic_load_explicit(&t->pages[p], memory_order_acquire);
			if (page)
				for (uint32_t i = 0; i < m; i++)
					out[base + i] += atomic_load_explicit(&page[i], memory_order_relaxed);
		}
	}
	pthread_mutex_unlock(&registry_lock);
}

void gsa_counters_fork_prepare(void) { pthread_mutex_lock(&registry_lock); }
void gsa_counters_fork_parent(void) { pthread_mutex_unlock(&registry_lock); }

/* The child has one thread and counts only its own launches from here on. */
void gsa_counters_fork_child(void)
{
	pthread_mutex_init(&registry_lock, NULL);
	threads = NULL;
	for (uint32_t p = 0; p < GSA_COUNTER_PAGES; p++)
		if (exited[p])
			memset(exited[p], 0, GSA_COUNTER_PAGE * sizeof(uint64_t));
	struct gsa_thread *t = gsa_tls;
	if (t && t != &fallback_thread) {
		for (uint32_t p = 0; p < GSA_COUNTER_PAGES; p++) {
			_Atomic uint64_t *page = atomic_load_explicit(&t->pages[p], memory_order_relaxed);
			if (page && page != fallback_page)
				for (uint32_t i = 0; i < GSA_COUNTER_PAGE; i++)
					atomic_store_explicit(&page[i], 0, memory_order_relaxed);
		}
		t->next = NULL;
		threads = t;
	}
}

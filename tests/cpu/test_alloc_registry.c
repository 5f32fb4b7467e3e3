/* The allocation registry: containment look-ups, removal, reuse, concurrency. */
#include <pthread.h>
#include <stdlib.h>

#include "preload/alloc_registry.h"
#include "tests/cpu/check.h"

#define N 4000

static void *worker(void *arg)
{
	uint64_t base = (uint64_t)(uintptr_t)arg;
	for (int round = 0; round < 50; round++) {
		for (uint64_t i = 0; i < 100; i++) {
			struct gsa_alloc a = {base + i * 4096, 4096, i, 0, 1};
			gsa_allocs_add(&a);
		}
		for (uint64_t i = 0; i < 100; i++)
			gsa_allocs_remove(base + i * 4096, NULL);
	}
	return NULL;
}

int main(void)
{
	/* Insert in a scrambled order; sizes differ so containment is exercised. */
	for (uint64_t k = 0; k < N; k++) {
		uint64_t i = (k * 2654435761u) % N;
		struct gsa_alloc a = {0x100000000ull + i * 0x10000, 0x1000 + i, i, (int)(i % 4), 1};
		CHECK(gsa_allocs_add(&a), "add %" PRIu64, i);
	}
	CHECK_EQ_U64(gsa_allocs_count(), N);
	struct gsa_alloc out;
	int ok = 1;
	for (uint64_t i = 0; i < N; i++) {
		uint64_t p = 0x100000000ull + i * 0x10000;
		ok &= gsa_allocs_find(p, &out) && out.ptr == p && out.callsite == i;
		ok &= gsa_allocs_find(p + 0x1000 + i - 1, &out) && out.ptr == p;
		ok &= !gsa_allocs_find(p + 0x1000 + i, &out); /* one past the end */
	}
	CHECK(ok, "containment look-ups");
	CHECK(!gsa_allocs_find(0x100000000ull - 1, &out), "below every allocation");
	CHECK(gsa_allocs_remove(0x100000000ull + 7 * 0x10000, &out), "remove");
	CHECK_EQ_U64(out.callsite, 7);
	CHECK(!gsa_allocs_find(0x100000000ull + 7 * 0x10000 + 5, &out), "removed is gone");
	CHECK(!gsa_allocs_remove(0x100000000ull + 7 * 0x10000, NULL), "second remove fails");
	CHECK(!gsa_allocs_remove(0x100000000ull + 8 * 0x10000 + 1, NULL), "interior is not a start");
	/* Re-adding an address replaces the stale entry rather than duplicating it. */
	struct gsa_alloc again = {0x100000000ull + 9 * 0x10000, 0x20, 99, 0, 1};
	CHECK(gsa_allocs_add(&again), "re-add");
	CHECK_EQ_U64(gsa_allocs_count(), N - 1);
	CHECK(gsa_allocs_find(0x100000000ull + 9 * 0x10000 + 0x1f, &out) && out.callsite == 99,
	      "replaced entry");

	pthread_t th[8];
	for (int t = 0; t < 8; t++)
		pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)(0x900000000000ull + t * 0x1000000ull));
	for (int t = 0; t < 8; t++)
		pthread_join(th[t], NULL);
	CHECK_EQ_U64(gsa_allocs_count(), N - 1);
	return check_report("test_alloc_registry");
}

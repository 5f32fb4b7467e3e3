/* A sorted array under a reader-writer lock: allocations are few (thousands) and rarely
 * change compared with how often they are looked up, so insertion by memmove is fine. */
#include "preload/alloc_registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct gsa_alloc *items;
static size_t count, capacity;

/* Index of the first item with ptr > addr. */
static size_t upper_bound(uint64_t addr)
{
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (items[mid].ptr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool gsa_allocs_add(const struct gsa_alloc *a)
{
	bool ok = true;
	pthread_rwlock_wrlock(&lock);
	size_t i = upper_bound(a->ptr);
	if (i > 0 && items[i - 1].ptr == a->ptr) {
		items[i - 1] = *a; /* the driver reused an address we missed the free of */
		goto out;
	}
	if (count == capacity) {
		size_t cap = capacity ? capacity * 2 : 256;
		struct gsa_alloc *n = realloc(items, cap * sizeof *n);
		if (!n) {
			ok = false;
			goto out;
		}
		items = n;
		capacity = cap;
	}
	memmove(items + i + 1, items + i, (count - i) * sizeof *items);
	items[i] = *a;
	count++;
out:
	pthread_rwlock_unlock(&lock);
	return ok;
}

bool gsa_allocs_remove(uint64_t ptr, struct gsa_alloc *removed)
{
	bool found = false;
	pthread_rwlock_wrlock(&lock);
	size_t i = upper_bound(ptr);
	if (i > 0 && items[i - 1].ptr == ptr) {
		if (removed)
			*removed = items[i - 1];
		memmove(items + i - 1, items + i, (count - i) * sizeof *items);
		count--;
		found = true;
	}
	pthread_rwlock_unlock(&lock);
	return found;
}

bool gsa_allocs_find(uint64_t addr, struct gsa_alloc *out)
{
	bool found = false;
	pthread_rwlock_rdlock(&lock);
	size_t i = upper_bound(addr);
	if (i > 0 && addr - items[i - 1].ptr < items[i - 1].size) {
		*out = items[i - 1];
		found = true;
	}
	pthread_rwlock_unlock(&lock);
	return found;
}

size_t gsa_allocs_count(void)
{
	pthread_rwlock_rdlock(&lock);
	size_t n = count;
	pthread_rwlock_unlock(&lock);
	return n;
}

/* Call-site hashing (see callsite.h). libunwind is opened with dlopen when the first
 * allocation is seen, so the library has no link-time dependency on it (machines without it
 * still run the library); glibc's backtrace() is the fallback. */
#include "preload/callsite.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <stdatomic.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "preload/driver.h"

#define SKIP 2 /* this function and the allocation wrapper */
#define DEPTH 16

typedef int (*backtrace_fn)(void **, int);
static _Atomic(backtrace_fn) unwinder;

static backtrace_fn get_unwinder(void)
{
	backtrace_fn f = atomic_load_explicit(&unwinder, memory_order_acquire);
	if (f)
		return f;
	void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	if (h)
		f = (backtrace_fn)gsa_real_dlsym(h, "unw_backtrace");
	if (!f)
		f = backtrace;
	atomic_store_explicit(&unwinder, f, memory_order_release);
	return f;
}

uint64_t gsa_callsite_hash(void)
{
	void *frames[DEPTH + SKIP];
	int n = get_unwinder()(frames, DEPTH + SKIP);
	if (n <= SKIP)
		return 0;
	return XXH64(frames + SKIP, (size_t)(n - SKIP) * sizeof(void *), 0);
}

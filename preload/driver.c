/* Finding the real functions (see driver.h). No locks: every look-up is idempotent, so
 * racing threads may repeat one and publish the same result. */
#include "preload/driver.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>

#include "preload/log.h"

typedef void *(*dlsym_fn)(void *, const char *);
/* Read by the assembly entry of dlsym (dlsym.c) for the tail-call path, so not static. */
__attribute__((visibility("hidden"))) _Atomic(dlsym_fn) gsa_real_dlsym_ptr;

/* dlvsym is not interposed, so this cannot recurse. glibc >= 2.34 has dlsym in libc at
 * GLIBC_2.34; older ones in libdl at GLIBC_2.2.5. */
dlsym_fn gsa_resolve_real_dlsym(void)
{
	dlsym_fn f = atomic_load_explicit(&gsa_real_dlsym_ptr, memory_order_acquire);
	if (f)
		return f;
	f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
	if (!f)
		f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
	atomic_store_explicit(&gsa_real_dlsym_ptr, f, memory_order_release);
	return f;
}

void *gsa_real_dlsym(void *handle, const char *name)
{
	dlsym_fn f = gsa_resolve_real_dlsym();
	return f ? f(handle, name) : NULL;
}

static _Atomic(void *) driver_handle;

void *gsa_driver_handle(void)
{
	void *h = atomic_load_explicit(&driver_handle, memory_order_acquire);
	if (h)
		return h;
	/* Usually the process has loaded it already (that is how it reached us). */
	h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	if (!h)
		h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_DRIVER,
			     "libcuda.so.1 could not be opened: calls pass through unobserved");
		return NULL;
	}
	void *expected = NULL;
	if (!atomic_compare_exchange_strong(&driver_handle, &expected, h))
		dlclose(h); /* another thread published the same library first */
	return atomic_load_explicit(&driver_handle, memory_order_acquire);
}

void *gsa_driver_sym(const char *name)
{
	void *h = gsa_driver_handle();
	return h ? gsa_real_dlsym(h, name) : NULL;
}

void *gsa_next_sym(const char *name)
{
	void *p = gsa_real_dlsym(RTLD_NEXT, name);
	if (!p && name[0] == 'c' && name[1] == 'u' && name[2] != 'd')
		p = gsa_driver_sym(name);
	return p;
}

static struct gsa_driver_api api;
static atomic_int api_ready;

const struct gsa_driver_api *gsa_driver(void)
{
	if (atomic_load_explicit(&api_ready, memory_order_acquire))
		return &api;
	struct gsa_driver_api a = {
		.func_get_name = gsa_driver_sym("cuFuncGetName"),
		.kernel_get_name = gsa_driver_sym("cuKernelGetName"),
		.func_get_param_info = gsa_driver_sym("cuFuncGetParamInfo"),
		.kernel_get_param_info = gsa_driver_sym("cuKernelGetParamInfo"),
		.pointer_get_attribute = gsa_driver_sym("cuPointerGetAttribute"),
		.device_get = gsa_driver_sym("cuDeviceGet"),
		.ctx_get_device = gsa_driver_sym("cuCtxGetDevice"),
		.device_get_name = gsa_driver_sym("cuDeviceGetName"),
		.device_get_attribute = gsa_driver_sym("cuDeviceGetAttribute"),
		.device_total_mem = gsa_driver_sym("cuDeviceTotalMem_v2"),
		.stream_is_capturing = gsa_driver_sym("cuStreamIsCapturing"),
		.func_get_module = gsa_driver_sym("cuFuncGetModule"),
		.kernel_get_library = gsa_driver_sym("cuKernelGetLibrary"),
	};
	/* Identical values from any racing thread: a plain copy then a release flag is enough. */
	if (!atomic_load_explicit(&api_ready, memory_order_acquire)) {
		static atomic_flag writing = ATOMIC_FLAG_INIT;
		if (!atomic_flag_test_and_set(&writing)) {
			api = a;
			atomic_store_explicit(&api_ready, 1, memory_order_release);
		} else {
			static _Thread_local struct gsa_driver_api mine;
			mine = a;
			return &mine;
		}
	}
	return &api;
}

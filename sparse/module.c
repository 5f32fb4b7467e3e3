/* Loading the selection kernels (see module.h). */
#include "sparse/module.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "preload/driver.h"
#include "preload/log.h"

extern const unsigned char gsa_fatbin_start[], gsa_fatbin_end[];

#define MAX_CONTEXTS 32

static struct gsa_module modules[MAX_CONTEXTS];
static atomic_int n_modules;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

bool gsa_module_built(void)
{
	return (uintptr_t)gsa_fatbin_end > (uintptr_t)gsa_fatbin_start;
}

/* Multiprocessors of the current context's device (sizes the selection's grid), 0 when the
 * driver does not say. */
static int device_sms(void)
{
	const struct gsa_driver_api *d = gsa_driver();
	CUdevice dev;
	int sms = 0;
	if (!d->ctx_get_device || !d->device_get_attribute || d->ctx_get_device(&dev) != CUDA_SUCCESS ||
	    d->device_get_attribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev) != CUDA_SUCCESS ||
	    sms < 0)
		return 0;
	return sms;
}

const struct gsa_module *gsa_module_current(void)
{
	typedef CUresult (*ctx_fn)(CUcontext *);
	typedef CUresult (*load_fn)(CUmodule *, const void *);
	typedef CUresult (*get_fn)(CUfunction *, CUmodule, const char *);
	static _Atomic(ctx_fn) get_ctx;
	ctx_fn gc = atomic_load(&get_ctx);
	if (!gc) {
		gc = (ctx_fn)gsa_driver_sym("cuCtxGetCurrent");
		atomic_store(&get_ctx, gc);
	}
	CUcontext ctx = NULL;
	if (!gsa_module_built() || !gc || gc(&ctx) != CUDA_SUCCESS || !ctx)
		return NULL;
	int n = atomic_load_explicit(&n_modules, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (modules[i].ctx == ctx)
			return modules[i].module ? &modules[i] : NULL;

	pthread_mutex_lock(&load_lock);
	const struct gsa_module *found = NULL;
	n = atomic_load(&n_modules);
	for (int i = 0; i < n; i++)
		if (modules[i].ctx == ctx)
			found = &modules[i];
	if (!found && n < MAX_CONTEXTS) {
		struct gsa_module *m = &modules[n];
		load_fn load = (load_fn)gsa_driver_sym("cuModuleLoadData");
		get_fn get = (get_fn)gsa_driver_sym("cuModuleGetFunction");
		m->ctx = ctx;
		CUresult r = load && get ? load(&m->module, gsa_fatbin_start) : CUDA_ERROR_NOT_FOUND;
		if (r == CUDA_SUCCESS &&
		    get(&m->score_select, m->module, "gsa_score_select") != CUDA_SUCCESS)
			r = CUDA_ERROR_NOT_FOUND;
		if (r == CUDA_SUCCESS)
			m->num_sms = device_sms();
		if (r != CUDA_SUCCESS) {
			m->module = NULL; /* remembered: this context runs dense */
			gsa_log(GSA_LOG_WARN, GSA_CODE_FAIL_OPEN,
				"selection kernels could not be loaded (CUDA error %d): attention runs dense",
				(int)r);
		}
		atomic_store_explicit(&n_modules, n + 1, memory_order_release);
		found = m;
	}
	pthread_mutex_unlock(&load_lock);
	return found && found->module ? found : NULL;
}

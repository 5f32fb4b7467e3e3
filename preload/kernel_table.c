/* The kernel table (see kernel_table.h): open addressing over a fixed array; deletion only
 * by turning a slot's key into GSA_KERNEL_GONE (a tombstone, never reused), when a module or
 * library is unloaded. A slot is claimed by compare-and-swap on its key; the claiming thread
 * names the kernel and publishes the entry; a thread that finds the key but no entry yet
 * waits for it (this happens only when two threads launch a new kernel at the same moment). */
#include "preload/kernel_table.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/registry.h"
#include "preload/driver.h"
#include "preload/log.h"
#include "preload/trace_format.h"

struct gsa_kernel_slot gsa_kernel_slots[GSA_KERNEL_TABLE_SIZE];
static _Atomic(struct gsa_kernel *) by_id[GSA_MAX_KERNELS];
static atomic_uint next_id;

uint32_t gsa_kernel_count(void)
{
	uint32_t n = atomic_load_explicit(&next_id, memory_order_acquire);
	return n < GSA_MAX_KERNELS ? n : GSA_MAX_KERNELS;
}

struct gsa_kernel *gsa_kernel_by_id(uint32_t id)
{
	return id < GSA_MAX_KERNELS ? atomic_load_explicit(&by_id[id], memory_order_acquire) : NULL;
}

typedef CUresult (*param_info_fn)(void *, size_t, size_t *, size_t *);

/* Reads the parameter layout; leaves param_count unknown if the driver cannot tell. */
static void read_params(struct gsa_kernel *k, param_info_fn info, void *handle)
{
	k->param_count = GSA_PARAMS_UNKNOWN;
	if (!info)
		return;
	size_t off, size;
	uint32_t n = 0;
	while (n < 4096 && info(handle, n, &off, &size) == CUDA_SUCCESS)
		n++;
	if (n == 0 && info(handle, 0, &off, &size) != CUDA_ERROR_INVALID_VALUE)
		return; /* the call itself failed: unknown, not "no parameters" */
	k->param_offsets = calloc(n ? n : 1, sizeof *k->param_offsets);
	k->param_sizes = calloc(n ? n : 1, sizeof *k->param_sizes);
	if (!k->param_offsets || !k->param_sizes)
		return;
	for (uint32_t i = 0; i < n; i++) {
		info(handle, i, &off, &size);
		k->param_offsets[i] = (uint32_t)off;
		k->param_sizes[i] = (uint32_t)size;
	}
	k->param_count = n;
}

static void describe(struct gsa_kernel *k, uintptr_t handle, int kind)
{
	const struct gsa_driver_api *d = gsa_driver();
	const char *name = NULL;
	k->handle = handle;
	if (kind == GSA_HANDLE_HOST_FUNC) {
		typedef int (*rt_name_fn)(const char **, const void *);
		rt_name_fn f = (rt_name_fn)gsa_next_sym("cudaFuncGetName");
		k->handle_kind = GSA_HANDLE_HOST_FUNC;
		if (f && f(&name, (const void *)handle) != 0)
			name = NULL;
		k->param_count = GSA_PARAMS_UNKNOWN;
	} else if (d->func_get_name && d->func_get_name(&name, (CUfunction)handle) == CUDA_SUCCESS) {
		k->handle_kind = GSA_HANDLE_FUNCTION;
		read_params(k, (param_info_fn)d->func_get_param_info, (void *)handle);
		CUmodule m;
		if (d->func_get_module && d->func_get_module(&m, (CUfunction)handle) == CUDA_SUCCESS)
			k->owner = (uintptr_t)m;
	} else if (d->kernel_get_name &&
		   d->kernel_get_name(&name, (CUkernel)handle) == CUDA_SUCCESS) {
		k->handle_kind = GSA_HANDLE_KERNEL;
		read_params(k, (param_info_fn)d->kernel_get_param_info, (void *)handle);
		CUlibrary l;
		if (d->kernel_get_library && d->kernel_get_library(&l, (CUkernel)handle) == CUDA_SUCCESS)
			k->owner = (uintptr_t)l;
	} else {
		name = NULL;
		k->handle_kind = GSA_HANDLE_UNKNOWN;
		k->param_count = GSA_PARAMS_UNKNOWN;
	}
	k->named = name != NULL;
	k->name = strdup(name ? name : "");
	if (!k->name)
		k->name = (char *)"";
	k->adapter = gsa_hooks_match(k);
}

static struct gsa_kernel *wait_for(struct gsa_kernel_slot *s)
{
	struct gsa_kernel *v;
	while (!(v = atomic_load_explicit(&s->val, memory_order_acquire)))
		sched_yield();
	return v;
}

struct gsa_kernel *gsa_kernel_discover(uintptr_t handle, int kind)
{
	uint32_t i = gsa_kernel_hash(handle);
	for (uint32_t n = 0; n < 64; n++, i = (i + 1) & (GSA_KERNEL_TABLE_SIZE - 1)) {
		struct gsa_kernel_slot *s = &gsa_kernel_slots[i];
		uintptr_t k = atomic_load_explicit(&s->key, memory_order_acquire);
		if (k == handle)
			return wait_for(s);
		if (k) /* another kernel's, or GSA_KERNEL_GONE */
			continue;
		uintptr_t expected = 0;
		if (!atomic_compare_exchange_strong(&s->key, &expected, handle)) {
			if (expected == handle)
				return wait_for(s);
			continue;
		}
		uint32_t id = atomic_fetch_add(&next_id, 1);
		struct gsa_kernel *e = calloc(1, sizeof *e);
		if (!e || id >= GSA_MAX_KERNELS - 1) {
			/* Leave a permanent "unknown" entry so this handle is not retried. */
			static struct gsa_kernel overflow = {.id = GSA_MAX_KERNELS - 1,
							     .name = (char *)"",
							     .param_count = GSA_PARAMS_UNKNOWN};
			free(e);
			GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_TABLE_FULL,
				     "more than %u distinct kernels: further ones are counted together",
				     GSA_MAX_KERNELS - 1);
			atomic_store_explicit(&s->val, &overflow, memory_order_release);
			return &overflow;
		}
		e->id = id;
		describe(e, handle, kind);
		atomic_store_explicit(&by_id[id], e, memory_order_release);
		atomic_store_explicit(&s->val, e, memory_order_release);
		return e;
	}
	GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_TABLE_FULL,
		     "kernel table crowded: some launches pass through uncounted");
	return NULL;
}

void gsa_kernel_forget(uintptr_t owner, int kind)
{
	for (uint32_t i = 0; i < GSA_KERNEL_TABLE_SIZE; i++) {
		struct gsa_kernel_slot *s = &gsa_kernel_slots[i];
		uintptr_t key = atomic_load_explicit(&s->key, memory_order_acquire);
		if (!key || key == GSA_KERNEL_GONE)
			continue;
		/* An entry still being described is left alone: its kernel is being launched. */
		struct gsa_kernel *e = atomic_load_explicit(&s->val, memory_order_acquire);
		if (!e || !(e->adapter || (owner && e->owner == owner && e->handle_kind == kind)))
			continue;
		atomic_compare_exchange_strong(&s->key, &key, GSA_KERNEL_GONE);
	}
}

/* Device allocations through the driver: cuMemAlloc_v2, cuMemFree_v2, cuMemAllocAsync,
 * cuMemFreeAsync (each variant a resolver hands out, and the exported names), recorded in
 * the allocation registry and the trace; cuMemGetInfo_v2 passes through. */
#include <cuda.h>

#include "preload/alloc_registry.h"
#include "preload/callsite.h"
#include "preload/counters.h"
#include "preload/driver.h"
#include "preload/interpose.h"
#include "preload/log.h"
#include "preload/memory.h"
#include "preload/state.h"
#include "preload/trace.h"
#include "preload/trace_format.h"
#include "sparse/sparse.h"

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*free_fn)(CUdeviceptr);
typedef CUresult (*alloc_async_fn)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*free_async_fn)(CUdeviceptr, CUstream);
typedef CUresult (*get_info_fn)(size_t *, size_t *);

void gsa_memory_record_alloc(uint64_t ptr, uint64_t size, int api, uint64_t stream)
{
	struct gsa_thread *t = gsa_thread();
	t->alloc_seq++;
	int device = -1;
	const struct gsa_driver_api *d = gsa_driver();
	if (d->pointer_get_attribute &&
	    d->pointer_get_attribute(&device, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, ptr) != CUDA_SUCCESS)
		device = -1; /* e.g. a stream-ordered allocation not yet backed */
	struct gsa_alloc a = {ptr, size, gsa_callsite_hash(), device, api};
	if (!gsa_allocs_add(&a))
		GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_ALLOC_REG,
			     "allocation registry could not grow: some allocations are untracked");
	gsa_trace_note_device(device);
	gsa_trace_alloc(ptr, size, a.callsite, device, api, stream);
}

bool gsa_memory_forget(uint64_t ptr, struct gsa_alloc *removed)
{
	gsa_thread()->alloc_seq++;
	struct gsa_alloc old;
	if (!gsa_allocs_remove(ptr, &old))
		return false;
	/* A KV cache that lived here must not keep its selection state: a cache allocated
	 * later at the same address may be larger (its state is sized from the allocation). */
	gsa_sparse_forget_memory(old.ptr, old.size);
	if (removed)
		*removed = old;
	return true;
}

/* The entry is removed before the real free, so that an address the driver reuses at once
 * on another thread cannot be removed by mistake; a failed free puts it back. */
#define FREE_BODY(CALL, API)                                                              \
	gsa_first_use();                                                                  \
	if (!gsa_active || !ptr)                                                          \
		return CALL;                                                              \
	struct gsa_alloc old;                                                             \
	bool known = gsa_memory_forget(ptr, &old);                                        \
	CUresult r = CALL;                                                                \
	if (r == CUDA_SUCCESS)                                                            \
		gsa_trace_free(ptr, API, known);                                          \
	else if (known)                                                                   \
		gsa_allocs_add(&old);                                                     \
	return r;

static CUresult hook_alloc(alloc_fn real, CUdeviceptr *dptr, size_t size)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	gsa_first_use();
	CUresult r = real(dptr, size);
	if (r == CUDA_SUCCESS && gsa_active && dptr)
		gsa_memory_record_alloc(*dptr, size, GSA_API_CU_MEM_ALLOC, 0);
	return r;
}

static CUresult hook_free(free_fn real, CUdeviceptr ptr)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	FREE_BODY(real(ptr), GSA_API_CU_MEM_ALLOC)
}

static CUresult hook_alloc_async(alloc_async_fn real, CUdeviceptr *dptr, size_t size, CUstream s)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	gsa_first_use();
	CUresult r = real(dptr, size, s);
	if (r == CUDA_SUCCESS && gsa_active && dptr)
		gsa_memory_record_alloc(*dptr, size, GSA_API_CU_MEM_ALLOC_ASYNC, (uint64_t)(uintptr_t)s);
	return r;
}

static CUresult hook_free_async(free_async_fn real, CUdeviceptr ptr, CUstream s)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	FREE_BODY(real(ptr, s), GSA_API_CU_MEM_ALLOC_ASYNC)
}

__thread bool gsa_info_adjusted;

void gsa_memory_adjust_info(size_t *free_bytes, size_t *total_bytes)
{
	gsa_info_adjusted = true;
	if (!gsa_active || !free_bytes || !total_bytes)
		return;
	uint64_t reserve = gsa_sparse_reserve(*total_bytes);
	*free_bytes -= reserve < *free_bytes ? reserve : *free_bytes;
}

static CUresult hook_get_info(get_info_fn real, size_t *free_bytes, size_t *total_bytes)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	gsa_first_use();
	CUresult r = real(free_bytes, total_bytes);
	if (r == CUDA_SUCCESS)
		gsa_memory_adjust_info(free_bytes, total_bytes);
	return r;
}

#define EXPORT_AS(...) GSA_EXPORT_AS(CUresult, __VA_ARGS__)
#define ALLOC_P (CUdeviceptr * dptr, size_t size)
#define ALLOC_A (dptr, size)
#define FREE_P (CUdeviceptr ptr)
#define FREE_A (ptr)
#define ALLOC_ASYNC_P (CUdeviceptr * dptr, size_t size, CUstream s)
#define ALLOC_ASYNC_A (dptr, size, s)
#define FREE_ASYNC_P (CUdeviceptr ptr, CUstream s)
#define FREE_ASYNC_A (ptr, s)
#define GET_INFO_P (size_t * free_bytes, size_t * total_bytes)
#define GET_INFO_A (free_bytes, total_bytes)

EXPORT_AS(alloc_fn, hook_alloc, gsa_x_alloc, "cuMemAlloc_v2", ALLOC_P, ALLOC_A)
EXPORT_AS(free_fn, hook_free, gsa_x_free, "cuMemFree_v2", FREE_P, FREE_A)
EXPORT_AS(alloc_async_fn, hook_alloc_async, gsa_x_alloc_async, "cuMemAllocAsync", ALLOC_ASYNC_P,
	  ALLOC_ASYNC_A)
EXPORT_AS(alloc_async_fn, hook_alloc_async, gsa_x_alloc_async_ptsz, "cuMemAllocAsync_ptsz",
	  ALLOC_ASYNC_P, ALLOC_ASYNC_A)
EXPORT_AS(free_async_fn, hook_free_async, gsa_x_free_async, "cuMemFreeAsync", FREE_ASYNC_P,
	  FREE_ASYNC_A)
EXPORT_AS(free_async_fn, hook_free_async, gsa_x_free_async_ptsz, "cuMemFreeAsync_ptsz",
	  FREE_ASYNC_P, FREE_ASYNC_A)
EXPORT_AS(get_info_fn, hook_get_info, gsa_x_get_info, "cuMemGetInfo_v2", GET_INFO_P, GET_INFO_A)

GSA_DEFINE_FAMILY(gsa_family_mem_alloc, alloc_fn, hook_alloc, CUresult, ALLOC_P, ALLOC_A,
		  (void *)gsa_x_alloc)
GSA_DEFINE_FAMILY(gsa_family_mem_free, free_fn, hook_free, CUresult, FREE_P, FREE_A,
		  (void *)gsa_x_free)
GSA_DEFINE_FAMILY(gsa_family_mem_alloc_async, alloc_async_fn, hook_alloc_async, CUresult,
		  ALLOC_ASYNC_P, ALLOC_ASYNC_A, (void *)gsa_x_alloc_async,
		  (void *)gsa_x_alloc_async_ptsz)
GSA_DEFINE_FAMILY(gsa_family_mem_free_async, free_async_fn, hook_free_async, CUresult,
		  FREE_ASYNC_P, FREE_ASYNC_A, (void *)gsa_x_free_async,
		  (void *)gsa_x_free_async_ptsz)
GSA_DEFINE_FAMILY(gsa_family_mem_get_info, get_info_fn, hook_get_info, CUresult, GET_INFO_P,
		  GET_INFO_A, (void *)gsa_x_get_info)

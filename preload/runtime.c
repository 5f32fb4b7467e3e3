/* The CUDA runtime's exported entry points (libcudart.so, for programs that link it
 * dynamically). Launches and allocations made through them normally reach the driver
 * wrappers, which record them; the sequence numbers tell a runtime wrapper whether that
 * happened, and it records the call itself only when it did not (each exactly once).
 * cudaGetDriverEntryPoint* results are wrapped like cuGetProcAddress results. */
#include <cuda_runtime_api.h>

#include "preload/counters.h"
#include "preload/driver.h"
#include "preload/interpose.h"
#include "preload/kernel_table.h"
#include "preload/memory.h"
#include "preload/resolve.h"
#include "preload/state.h"
#include "preload/trace.h"
#include "preload/trace_format.h"

typedef cudaError_t (*rt_launch_fn)(const void *, dim3, dim3, void **, size_t, cudaStream_t);
typedef cudaError_t (*rt_launch_ex_fn)(const cudaLaunchConfig_t *, const void *, void **);
typedef cudaError_t (*rt_malloc_fn)(void **, size_t);
typedef cudaError_t (*rt_free_fn)(void *);
typedef cudaError_t (*rt_malloc_async_fn)(void **, size_t, cudaStream_t);
typedef cudaError_t (*rt_free_async_fn)(void *, cudaStream_t);
typedef cudaError_t (*rt_get_info_fn)(size_t *, size_t *);
typedef cudaError_t (*rt_entry_fn)(const char *, void **, unsigned long long,
				   enum cudaDriverEntryPointQueryResult *);
typedef cudaError_t (*rt_entry_ver_fn)(const char *, void **, unsigned int, unsigned long long,
				       enum cudaDriverEntryPointQueryResult *);

static void count_unseen_launch(struct gsa_thread *t, uint64_t seq, cudaError_t r,
				const void *func)
{
	if (r != cudaSuccess || t->launch_seq != seq)
		return;
	struct gsa_kernel *k = gsa_kernel_get((uintptr_t)func, GSA_HANDLE_HOST_FUNC);
	if (k)
		gsa_count_launch(t, k->id);
}

static cudaError_t rt_launch(rt_launch_fn real, const void *func, dim3 grid, dim3 block,
			     void **args, size_t shmem, cudaStream_t s)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	if (!gsa_active)
		return real(func, grid, block, args, shmem, s);
	struct gsa_thread *t = gsa_thread();
	uint64_t seq = t->launch_seq;
	cudaError_t r = real(func, grid, block, args, shmem, s);
	count_unseen_launch(t, seq, r, func);
	return r;
}

static cudaError_t rt_launch_ex(rt_launch_ex_fn real, const cudaLaunchConfig_t *c,
				const void *func, void **args)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	if (!gsa_active)
		return real(c, func, args);
	struct gsa_thread *t = gsa_thread();
	uint64_t seq = t->launch_seq;
	cudaError_t r = real(c, func, args);
	count_unseen_launch(t, seq, r, func);
	return r;
}

static cudaError_t rt_malloc(rt_malloc_fn real, void **p, size_t size)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	if (!gsa_active)
		return real(p, size);
	struct gsa_thread *t = gsa_thread();
	uint64_t seq = t->alloc_seq;
	cudaError_t r = real(p, size);
	if (r == cudaSuccess && p && t->alloc_seq == seq)
		gsa_memory_record_alloc((uint64_t)(uintptr_t)*p, size, GSA_API_CUDA_MALLOC, 0);
	return r;
}

static cudaError_t rt_malloc_async(rt_malloc_async_fn real, void **p, size_t size,
				   cudaStream_t s)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	if (!gsa_active)
		return real(p, size, s);
	struct gsa_thread *t = gsa_thread();
	uint64_t seq = t->alloc_seq;
	cudaError_t r = real(p, size, s);
	if (r == cudaSuccess && p && t->alloc_seq == seq)
		gsa_memory_record_alloc((uint64_t)(uintptr_t)*p, size, GSA_API_CUDA_MALLOC_ASYNC,
					(uint64_t)(uintptr_t)s);
	return r;
}

/* If the driver layer did not see the free, the registry still holds the pointer: forget
 * it here, after the fact (the runtime gives no earlier point that is safe). */
static void forget_unseen_free(struct gsa_thread *t, uint64_t seq, cudaError_t r, void *p,
			       int api)
{
	if (r != cudaSuccess || !p || t->alloc_seq != seq)
		return;
	bool known = gsa_memory_forget((uint64_t)(uintptr_t)p, NULL);
	gsa_trace_free((uint64_t)(uintptr_t)p, api, known);
}

static cudaError_t rt_free(rt_free_fn real, void *p)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	if (!gsa_active)
		return real(p);
	struct gsa_thread *t = gsa_thread();
	uint64_t seq = t->alloc_seq;
	cudaError_t r = real(p);
	forget_unseen_free(t, seq, r, p, GSA_API_CUDA_MALLOC);
	return r;
}

static cudaError_t rt_free_async(rt_free_async_fn real, void *p, cudaStream_t s)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	if (!gsa_active)
		return real(p, s);
	struct gsa_thread *t = gsa_thread();
	uint64_t seq = t->alloc_seq;
	cudaError_t r = real(p, s);
	forget_unseen_free(t, seq, r, p, GSA_API_CUDA_MALLOC_ASYNC);
	return r;
}

static cudaError_t rt_get_info(rt_get_info_fn real, size_t *free_bytes, size_t *total_bytes)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	gsa_info_adjusted = false;
	cudaError_t r = real(free_bytes, total_bytes);
	if (r == cudaSuccess && !gsa_info_adjusted)
		gsa_memory_adjust_info(free_bytes, total_bytes);
	return r;
}

/* cudaGetDriverEntryPoint resolves with the runtime's own CUDA version. */
static int runtime_version(void)
{
	static atomic_int cached;
	int v = atomic_load_explicit(&cached, memory_order_relaxed);
	if (v)
		return v;
	typedef cudaError_t (*ver_fn)(int *);
	ver_fn f = (ver_fn)gsa_next_sym("cudaRuntimeGetVersion");
	if (!f || f(&v) != cudaSuccess || v <= 0)
		v = 11030; /* the first runtime with cudaGetDriverEntryPoint */
	atomic_store_explicit(&cached, v, memory_order_relaxed);
	return v;
}

static cudaError_t rt_entry(rt_entry_fn real, const char *symbol, void **fn,
			    unsigned long long flags, enum cudaDriverEntryPointQueryResult *st)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	cudaError_t r = real(symbol, fn, flags, st);
	if (r == cudaSuccess && fn)
		*fn = gsa_wrap_proc(symbol, runtime_version(), *fn);
	return r;
}

static cudaError_t rt_entry_ver(rt_entry_ver_fn real, const char *symbol, void **fn,
				unsigned int version, unsigned long long flags,
				enum cudaDriverEntryPointQueryResult *st)
{
	if (!real)
		return cudaErrorInitializationError;
	gsa_first_use();
	cudaError_t r = real(symbol, fn, version, flags, st);
	if (r == cudaSuccess && fn)
		*fn = gsa_wrap_proc(symbol, (int)version, *fn);
	return r;
}

#define EXPORT_AS(...) GSA_EXPORT_AS(cudaError_t, __VA_ARGS__)
#define L_P (const void *func, dim3 grid, dim3 block, void **args, size_t shmem, cudaStream_t s)
#define L_A (func, grid, block, args, shmem, s)
#define LX_P (const cudaLaunchConfig_t *c, const void *func, void **args)
#define LX_A (c, func, args)
#define M_P (void **p, size_t size)
#define M_A (p, size)
#define F_P (void *p)
#define F_A (p)
#define MA_P (void **p, size_t size, cudaStream_t s)
#define MA_A (p, size, s)
#define FA_P (void *p, cudaStream_t s)
#define FA_A (p, s)
#define GI_P (size_t * free_bytes, size_t * total_bytes)
#define GI_A (free_bytes, total_bytes)
#define E_P (const char *symbol, void **fn, unsigned long long flags, \
	     enum cudaDriverEntryPointQueryResult *st)
#define E_A (symbol, fn, flags, st)
#define EV_P (const char *symbol, void **fn, unsigned int version, unsigned long long flags, \
	      enum cudaDriverEntryPointQueryResult *st)
#define EV_A (symbol, fn, version, flags, st)

EXPORT_AS(rt_launch_fn, rt_launch, gsa_x_rt_launch, "cudaLaunchKernel", L_P, L_A)
EXPORT_AS(rt_launch_fn, rt_launch, gsa_x_rt_launch_ptsz, "cudaLaunchKernel_ptsz", L_P, L_A)
EXPORT_AS(rt_launch_ex_fn, rt_launch_ex, gsa_x_rt_launch_ex, "cudaLaunchKernelExC", LX_P, LX_A)
EXPORT_AS(rt_launch_ex_fn, rt_launch_ex, gsa_x_rt_launch_ex_ptsz, "cudaLaunchKernelExC_ptsz",
	  LX_P, LX_A)
EXPORT_AS(rt_malloc_fn, rt_malloc, gsa_x_rt_malloc, "cudaMalloc", M_P, M_A)
EXPORT_AS(rt_free_fn, rt_free, gsa_x_rt_free, "cudaFree", F_P, F_A)
EXPORT_AS(rt_malloc_async_fn, rt_malloc_async, gsa_x_rt_malloc_async, "cudaMallocAsync", MA_P,
	  MA_A)
EXPORT_AS(rt_malloc_async_fn, rt_malloc_async, gsa_x_rt_malloc_async_ptsz,
	  "cudaMallocAsync_ptsz", MA_P, MA_A)
EXPORT_AS(rt_free_async_fn, rt_free_async, gsa_x_rt_free_async, "cudaFreeAsync", FA_P, FA_A)
EXPORT_AS(rt_free_async_fn, rt_free_async, gsa_x_rt_free_async_ptsz, "cudaFreeAsync_ptsz", FA_P,
	  FA_A)
EXPORT_AS(rt_get_info_fn, rt_get_info, gsa_x_rt_get_info, "cudaMemGetInfo", GI_P, GI_A)
EXPORT_AS(rt_entry_fn, rt_entry, gsa_x_rt_entry, "cudaGetDriverEntryPoint", E_P, E_A)
EXPORT_AS(rt_entry_fn, rt_entry, gsa_x_rt_entry_ptsz, "cudaGetDriverEntryPoint_ptsz", E_P, E_A)
EXPORT_AS(rt_entry_ver_fn, rt_entry_ver, gsa_x_rt_entry_ver, "cudaGetDriverEntryPointByVersion",
	  EV_P, EV_A)
EXPORT_AS(rt_entry_ver_fn, rt_entry_ver, gsa_x_rt_entry_ver_ptsz,
	  "cudaGetDriverEntryPointByVersion_ptsz", EV_P, EV_A)

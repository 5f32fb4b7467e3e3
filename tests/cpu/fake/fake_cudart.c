/* The fake CUDA runtime, built as libcudart.so.13 with the version node libcudart.so.13
 * (fake_cudart.map), like the real one. Like the real runtime it reaches the driver only
 * through cuGetProcAddress_v2, which it finds with dlopen("libcuda.so.1") and dlsym (so,
 * under the preload, through the preload's dlsym). A launch goes to the driver's
 * cuLaunchKernel(Ex) with the CUkernel registered for the host function
 * (fake_rt_register). */
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "tests/cpu/fake/fake_cuda.h"

#define API __attribute__((visibility("default")))

/* ---- call records ---- */

#define RT_VARIANTS(X)                                                                      \
	X(cudaGetDriverEntryPoint) X(cudaGetDriverEntryPoint_ptsz)                           \
	X(cudaGetDriverEntryPointByVersion) X(cudaGetDriverEntryPointByVersion_ptsz)         \
	X(cudaLaunchKernel) X(cudaLaunchKernel_ptsz) X(cudaLaunchKernelExC)                  \
	X(cudaLaunchKernelExC_ptsz) X(cudaMalloc) X(cudaFree) X(cudaMallocAsync)             \
	X(cudaMallocAsync_ptsz) X(cudaFreeAsync) X(cudaFreeAsync_ptsz) X(cudaMemGetInfo)     \
	X(cudaFuncGetName) X(cudaRuntimeGetVersion) X(cudaDriverGetVersion)

#define AS_ENUM(n) R_##n,
enum { RT_VARIANTS(AS_ENUM) NR };
#define AS_NAME(n) #n,
static const char *const rt_names[NR] = {RT_VARIANTS(AS_NAME)};
static atomic_ulong rt_counts[NR];
static __thread const char *rt_last;

static void rt_rec(int v)
{
	atomic_fetch_add_explicit(&rt_counts[v], 1, memory_order_relaxed);
	rt_last = rt_names[v];
}

API unsigned long fake_rt_calls(const char *name)
{
	for (int i = 0; i < NR; i++)
		if (name && strcmp(rt_names[i], name) == 0)
			return atomic_load_explicit(&rt_counts[i], memory_order_relaxed);
	return 0;
}

API const char *fake_rt_last(void) { return rt_last; }

/* ---- registered kernels ---- */

#define MAX_REG 1024
static struct {
	const void *host;
	CUkernel kernel;
} reg[MAX_REG];
static atomic_int n_reg;
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;

API void fake_rt_register(const void *hostfn, CUkernel k)
{
	pthread_mutex_lock(&reg_lock);
	int n = atomic_load_explicit(&n_reg, memory_order_relaxed);
	int i;
	for (i = 0; i < n && reg[i].host != hostfn; i++)
		;
	if (i < MAX_REG) {
		reg[i].host = hostfn;
		reg[i].kernel = k;
		if (i == n)
			atomic_store_explicit(&n_reg, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&reg_lock);
}

static CUkernel kernel_of(const void *hostfn)
{
	int n = atomic_load_explicit(&n_reg, memory_order_acquire);
	for (int i = 0; i < n; i++)
		if (reg[i].host == hostfn)
			return reg[i].kernel;
	return NULL;
}

/* ---- the driver, through cuGetProcAddress_v2 only ---- */

typedef CUresult (*get_proc_fn)(const char *, void **, int, cuuint64_t,
				CUdriverProcAddressQueryResult *);

static get_proc_fn get_proc;
static pthread_once_t driver_once = PTHREAD_ONCE_INIT;

static void open_driver(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (h)
		get_proc = (get_proc_fn)dlsym(h, "cuGetProcAddress_v2");
}

static get_proc_fn driver_get_proc(void)
{
	pthread_once(&driver_once, open_driver);
	return get_proc;
}

#define LEGACY CU_GET_PROC_ADDRESS_LEGACY_STREAM
#define PTSZ CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM

enum {
	D_LAUNCH, D_LAUNCH_PTSZ, D_LAUNCH_EX, D_LAUNCH_EX_PTSZ, D_ALLOC, D_FREE, D_ALLOC_ASYNC,
	D_ALLOC_ASYNC_PTSZ, D_FREE_ASYNC, D_FREE_ASYNC_PTSZ, D_GET_INFO, D_KERNEL_NAME, D_COUNT
};
static const struct {
	const char *name;
	cuuint64_t flags;
} dsyms[D_COUNT] = {
	[D_LAUNCH] = {"cuLaunchKernel", LEGACY},
	[D_LAUNCH_PTSZ] = {"cuLaunchKernel", PTSZ},
	[D_LAUNCH_EX] = {"cuLaunchKernelEx", LEGACY},
	[D_LAUNCH_EX_PTSZ] = {"cuLaunchKernelEx", PTSZ},
	[D_ALLOC] = {"cuMemAlloc", LEGACY},
	[D_FREE] = {"cuMemFree", LEGACY},
	[D_ALLOC_ASYNC] = {"cuMemAllocAsync", LEGACY},
	[D_ALLOC_ASYNC_PTSZ] = {"cuMemAllocAsync", PTSZ},
	[D_FREE_ASYNC] = {"cuMemFreeAsync", LEGACY},
	[D_FREE_ASYNC_PTSZ] = {"cuMemFreeAsync", PTSZ},
	[D_GET_INFO] = {"cuMemGetInfo", LEGACY},
	[D_KERNEL_NAME] = {"cuKernelGetName", LEGACY},
};
static _Atomic(void *) dcache[D_COUNT];

static void *drv(int d)
{
	void *p = atomic_load_explicit(&dcache[d], memory_order_acquire);
	if (p)
		return p;
	get_proc_fn gp = driver_get_proc();
	CUdriverProcAddressQueryResult st;
	if (!gp || gp(dsyms[d].name, &p, FAKE_RUNTIME_VERSION, dsyms[d].flags, &st) != CUDA_SUCCESS)
		return NULL;
	atomic_store_explicit(&dcache[d], p, memory_order_release);
	return p;
}

static cudaError_t rt_err(CUresult r)
{
	switch (r) {
	case CUDA_SUCCESS: return cudaSuccess;
	case CUDA_ERROR_INVALID_VALUE: return cudaErrorInvalidValue;
	case CUDA_ERROR_OUT_OF_MEMORY: return cudaErrorMemoryAllocation;
	case CUDA_ERROR_INVALID_HANDLE: return cudaErrorInvalidResourceHandle;
	case CUDA_ERROR_NOT_FOUND: return cudaErrorSymbolNotFound;
	default: return (cudaError_t)r; /* most codes coincide */
	}
}

/* ---- entry points (C name rt_NAME, exported as NAME) ---- */

#define RT(NAME, PARAMS)                                                  \
	API cudaError_t rt_##NAME PARAMS __asm__(#NAME);                  \
	cudaError_t rt_##NAME PARAMS

static cudaError_t entry_point(const char *symbol, void **fn, unsigned version,
			       unsigned long long flags, enum cudaDriverEntryPointQueryResult *st)
{
	if (!symbol || !fn)
		return cudaErrorInvalidValue;
	get_proc_fn gp = driver_get_proc();
	if (!gp)
		return cudaErrorInsufficientDriver;
	CUdriverProcAddressQueryResult dst = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
	CUresult r = gp(symbol, fn, (int)version, (cuuint64_t)flags, &dst);
	if (st)
		*st = (enum cudaDriverEntryPointQueryResult)dst;
	return rt_err(r);
}

/* The _ptsz entries default to the per-thread stream, like code built with
 * --default-stream per-thread. */
static unsigned long long ptsz_flags(unsigned long long flags)
{
	return (flags & (cudaEnableLegacyStream | cudaEnablePerThreadDefaultStream)) ? flags
		: flags | cudaEnablePerThreadDefaultStream;
}

RT(cudaGetDriverEntryPoint, (const char *symbol, void **fn, unsigned long long flags,
			     enum cudaDriverEntryPointQueryResult *st))
{
	rt_rec(R_cudaGetDriverEntryPoint);
	return entry_point(symbol, fn, FAKE_RUNTIME_VERSION, flags, st);
}

RT(cudaGetDriverEntryPoint_ptsz, (const char *symbol, void **fn, unsigned long long flags,
				  enum cudaDriverEntryPointQueryResult *st))
{
	rt_rec(R_cudaGetDriverEntryPoint_ptsz);
	return entry_point(symbol, fn, FAKE_RUNTIME_VERSION, ptsz_flags(flags), st);
}

RT(cudaGetDriverEntryPointByVersion,
   (const char *symbol, void **fn, unsigned int version, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *st))
{
	rt_rec(R_cudaGetDriverEntryPointByVersion);
	return entry_point(symbol, fn, version, flags, st);
}

RT(cudaGetDriverEntryPointByVersion_ptsz,
   (const char *symbol, void **fn, unsigned int version, unsigned long long flags,
    enum cudaDriverEntryPointQueryResult *st))
{
	rt_rec(R_cudaGetDriverEntryPointByVersion_ptsz);
	return entry_point(symbol, fn, version, ptsz_flags(flags), st);
}

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
			      unsigned, unsigned, CUstream, void **, void **);
typedef CUresult (*launch_ex_fn)(const CUlaunchConfig *, CUfunction, void **, void **);

static cudaError_t launch(int d, const void *func, dim3 grid, dim3 block, void **args,
			  size_t shmem, cudaStream_t s)
{
	CUkernel k = kernel_of(func);
	if (!k)
		return cudaErrorInvalidDeviceFunction;
	launch_fn f = (launch_fn)drv(d);
	if (!f)
		return cudaErrorInsufficientDriver;
	return rt_err(f((CUfunction)k, grid.x, grid.y, grid.z, block.x, block.y, block.z,
			(unsigned)shmem, (CUstream)s, args, NULL));
}

RT(cudaLaunchKernel, (const void *func, dim3 grid, dim3 block, void **args, size_t shmem,
		      cudaStream_t s))
{
	rt_rec(R_cudaLaunchKernel);
	return launch(D_LAUNCH, func, grid, block, args, shmem, s);
}

RT(cudaLaunchKernel_ptsz, (const void *func, dim3 grid, dim3 block, void **args, size_t shmem,
			   cudaStream_t s))
{
	rt_rec(R_cudaLaunchKernel_ptsz);
	return launch(D_LAUNCH_PTSZ, func, grid, block, args, shmem, s);
}

static cudaError_t launch_ex(int d, const cudaLaunchConfig_t *c, const void *func, void **args)
{
	if (!c)
		return cudaErrorInvalidValue;
	CUkernel k = kernel_of(func);
	if (!k)
		return cudaErrorInvalidDeviceFunction;
	launch_ex_fn f = (launch_ex_fn)drv(d);
	if (!f)
		return cudaErrorInsufficientDriver;
	CUlaunchConfig cc = {
		.gridDimX = c->gridDim.x, .gridDimY = c->gridDim.y, .gridDimZ = c->gridDim.z,
		.blockDimX = c->blockDim.x, .blockDimY = c->blockDim.y, .blockDimZ = c->blockDim.z,
		.sharedMemBytes = (unsigned)c->dynamicSmemBytes,
		.hStream = (CUstream)c->stream,
		.attrs = (CUlaunchAttribute *)c->attrs,
		.numAttrs = c->numAttrs,
	};
	return rt_err(f(&cc, (CUfunction)k, args, NULL));
}

RT(cudaLaunchKernelExC, (const cudaLaunchConfig_t *c, const void *func, void **args))
{
	rt_rec(R_cudaLaunchKernelExC);
	return launch_ex(D_LAUNCH_EX, c, func, args);
}

RT(cudaLaunchKernelExC_ptsz, (const cudaLaunchConfig_t *c, const void *func, void **args))
{
	rt_rec(R_cudaLaunchKernelExC_ptsz);
	return launch_ex(D_LAUNCH_EX_PTSZ, c, func, args);
}

typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*free_fn)(CUdeviceptr);
typedef CUresult (*alloc_async_fn)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*free_async_fn)(CUdeviceptr, CUstream);
typedef CUresult (*get_info_fn)(size_t *, size_t *);
typedef CUresult (*kernel_name_fn)(const char **, CUkernel);

RT(cudaMalloc, (void **p, size_t size))
{
	rt_rec(R_cudaMalloc);
	if (!p)
		return cudaErrorInvalidValue;
	if (size == 0) {
		*p = NULL;
		return cudaSuccess;
	}
	alloc_fn f = (alloc_fn)drv(D_ALLOC);
	if (!f)
		return cudaErrorInsufficientDriver;
	CUdeviceptr d = 0;
	CUresult r = f(&d, size);
	if (r == CUDA_SUCCESS)
		*p = (void *)(uintptr_t)d;
	return rt_err(r);
}

RT(cudaFree, (void *p))
{
	rt_rec(R_cudaFree);
	if (!p)
		return cudaSuccess;
	free_fn f = (free_fn)drv(D_FREE);
	if (!f)
		return cudaErrorInsufficientDriver;
	return rt_err(f((CUdeviceptr)(uintptr_t)p));
}

static cudaError_t malloc_async(int d, void **p, size_t size, cudaStream_t s)
{
	if (!p)
		return cudaErrorInvalidValue;
	alloc_async_fn f = (alloc_async_fn)drv(d);
	if (!f)
		return cudaErrorInsufficientDriver;
	CUdeviceptr dp = 0;
	CUresult r = f(&dp, size, (CUstream)s);
	if (r == CUDA_SUCCESS)
		*p = (void *)(uintptr_t)dp;
	return rt_err(r);
}

RT(cudaMallocAsync, (void **p, size_t size, cudaStream_t s))
{
	rt_rec(R_cudaMallocAsync);
	return malloc_async(D_ALLOC_ASYNC, p, size, s);
}

RT(cudaMallocAsync_ptsz, (void **p, size_t size, cudaStream_t s))
{
	rt_rec(R_cudaMallocAsync_ptsz);
	return malloc_async(D_ALLOC_ASYNC_PTSZ, p, size, s);
}

static cudaError_t free_async(int d, void *p, cudaStream_t s)
{
	free_async_fn f = (free_async_fn)drv(d);
	if (!f)
		return cudaErrorInsufficientDriver;
	return rt_err(f((CUdeviceptr)(uintptr_t)p, (CUstream)s));
}

RT(cudaFreeAsync, (void *p, cudaStream_t s))
{
	rt_rec(R_cudaFreeAsync);
	return free_async(D_FREE_ASYNC, p, s);
}

RT(cudaFreeAsync_ptsz, (void *p, cudaStream_t s))
{
	rt_rec(R_cudaFreeAsync_ptsz);
	return free_async(D_FREE_ASYNC_PTSZ, p, s);
}

RT(cudaMemGetInfo, (size_t *free_bytes, size_t *total_bytes))
{
	rt_rec(R_cudaMemGetInfo);
	get_info_fn f = (get_info_fn)drv(D_GET_INFO);
	if (!f)
		return cudaErrorInsufficientDriver;
	return rt_err(f(free_bytes, total_bytes));
}

RT(cudaFuncGetName, (const char **name, const void *func))
{
	rt_rec(R_cudaFuncGetName);
	if (!name)
		return cudaErrorInvalidValue;
	CUkernel k = kernel_of(func);
	if (!k)
		return cudaErrorInvalidDeviceFunction;
	kernel_name_fn f = (kernel_name_fn)drv(D_KERNEL_NAME);
	if (!f)
		return cudaErrorInsufficientDriver;
	return rt_err(f(name, k));
}

RT(cudaRuntimeGetVersion, (int *v))
{
	rt_rec(R_cudaRuntimeGetVersion);
	if (!v)
		return cudaErrorInvalidValue;
	*v = FAKE_RUNTIME_VERSION;
	return cudaSuccess;
}

RT(cudaDriverGetVersion, (int *v))
{
	rt_rec(R_cudaDriverGetVersion);
	if (!v)
		return cudaErrorInvalidValue;
	*v = FAKE_DRIVER_VERSION;
	return cudaSuccess;
}

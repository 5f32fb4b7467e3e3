/* The fake CUDA driver, built as libcuda.so.1 (see fake_cuda.h). Linked with -Bsymbolic:
 * its own references bind to itself, never to an interposer.
 *
 * Every entry point is defined under a C name fk_<name> with an asm label giving the exact
 * exported name, so that cuda.h's macros (cuMemAlloc -> cuMemAlloc_v2, ...) and prototypes
 * cannot rename or clash with them. */
#include <cuda.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tests/cpu/fake/fake_cuda.h"

#undef cuMemAlloc
#undef cuMemFree
#undef cuMemGetInfo
#undef cuGetProcAddress
#undef cuDeviceTotalMem
#undef cuStreamGetCaptureInfo
/* Renamed to _ptsz when CUDA_API_PER_THREAD_DEFAULT_STREAM is defined. */
#undef cuLaunchKernel
#undef cuLaunchKernelEx
#undef cuLaunchCooperativeKernel
#undef cuMemAllocAsync
#undef cuMemFreeAsync
#undef cuStreamIsCapturing

#define API __attribute__((visibility("default")))

/* Every exported entry point, by exact name. */
#define FAKE_VARIANTS(X)                                                                    \
	X(cuInit) X(cuDriverGetVersion) X(cuGetProcAddress) X(cuGetProcAddress_v2)           \
	X(cuLaunchKernel) X(cuLaunchKernel_ptsz) X(cuLaunchKernelEx) X(cuLaunchKernelEx_ptsz) \
	X(cuLaunchCooperativeKernel) X(cuLaunchCooperativeKernel_ptsz)                        \
	X(cuMemAlloc) X(cuMemAlloc_v2) X(cuMemFree) X(cuMemFree_v2)                           \
	X(cuMemAllocAsync) X(cuMemAllocAsync_ptsz) X(cuMemFreeAsync) X(cuMemFreeAsync_ptsz)   \
	X(cuMemGetInfo) X(cuMemGetInfo_v2)                                                    \
	X(cuFuncGetName) X(cuKernelGetName) X(cuFuncGetParamInfo) X(cuKernelGetParamInfo)     \
	X(cuPointerGetAttribute) X(cuCtxGetDevice) X(cuDeviceGet) X(cuDeviceGetCount)         \
	X(cuDeviceGetName) X(cuDeviceGetAttribute) X(cuDeviceTotalMem_v2)                     \
	X(cuStreamIsCapturing) X(cuStreamIsCapturing_ptsz) X(cuStreamGetCaptureInfo_v3)        \
	X(cuModuleUnload) X(cuLibraryUnload) X(cuFuncGetModule) X(cuKernelGetLibrary)

#define AS_ENUM(n) V_##n,
enum { FAKE_VARIANTS(AS_ENUM) NV };
#define AS_NAME(n) #n,
static const char *const variant_names[NV] = {FAKE_VARIANTS(AS_NAME)};

/* ---- recording ---- */

struct counter {
	_Alignas(64) atomic_ulong n;
};
static struct counter counters[NV];

static __thread struct fake_call *tls_calls; /* NV entries, allocated on first call */
static __thread struct fake_call *tls_last;
static __thread uint64_t tls_seq;
static __thread int tls_fail_variant = -1;
static __thread CUresult tls_fail_result;
static struct fake_call fallback_call; /* only if calloc fails; racy but harmless */

static int variant_index(const char *name)
{
	if (!name)
		return -1;
	for (int i = 0; i < NV; i++)
		if (strcmp(variant_names[i], name) == 0)
			return i;
	return -1;
}

/* Starts recording a call of variant v: counts it and clears its record. */
static struct fake_call *rec(int v)
{
	atomic_fetch_add_explicit(&counters[v].n, 1, memory_order_relaxed);
	if (__builtin_expect(!tls_calls, 0)) {
		tls_calls = calloc(NV, sizeof *tls_calls);
		if (!tls_calls)
			return tls_last = &fallback_call;
	}
	struct fake_call *c = &tls_calls[v];
	c->variant = variant_names[v];
	c->seq = ++tls_seq;
	c->nargs = 0;
	c->n_params = 0;
	c->handle = NULL;
	c->out = 0;
	c->pfn_out = NULL;
	c->status_out = -1;
	c->symbol[0] = 0;
	tls_last = c;
	return c;
}

#define U(x) ((uint64_t)(uintptr_t)(x))
#define SET_ARGS(c, ...)                                                                  \
	do {                                                                              \
		const uint64_t a_[] = {__VA_ARGS__};                                      \
		(c)->nargs = sizeof a_ / sizeof a_[0];                                    \
		memcpy((c)->arg, a_, sizeof a_);                                          \
	} while (0)

/* True (and *r set) when the test asked this thread's next call of v to fail. */
static inline int forced(int v, CUresult *r)
{
	if (__builtin_expect(tls_fail_variant != v, 1))
		return 0;
	tls_fail_variant = -1;
	*r = tls_fail_result;
	return 1;
}

static inline CUresult done(struct fake_call *c, CUresult r)
{
	c->result = r;
	return r;
}

API const struct fake_call *fake_last_call(void) { return tls_last; }

API const struct fake_call *fake_last_call_of(const char *variant)
{
	int v = variant_index(variant);
	if (v < 0 || !tls_calls || !tls_calls[v].variant)
		return NULL;
	return &tls_calls[v];
}

API unsigned long fake_calls(const char *variant)
{
	int v = variant_index(variant);
	return v < 0 ? 0 : atomic_load_explicit(&counters[v].n, memory_order_relaxed);
}

API void fake_fail_next(const char *variant, CUresult r)
{
	tls_fail_variant = variant_index(variant);
	tls_fail_result = r;
}

/* ---- kernel handles ---- */

#define MAX_HANDLES 4096
#define HANDLE_MAGIC 0x46414b454b524e4cull

enum { KIND_FUNCTION = 1, KIND_KERNEL = 2 };

struct fake_handle {
	uint64_t magic;
	int kind;
	int noinfo;
	unsigned n;
	size_t offsets[FAKE_MAX_PARAMS];
	size_t sizes[FAKE_MAX_PARAMS];
	char name[256];
	_Atomic uintptr_t owner; /* module (function) or library (kernel); 0: the default */
};

static struct fake_handle handles[MAX_HANDLES];
static atomic_uint n_handles;

static void *make_handle(const char *name, unsigned n, const size_t *sizes, int kind, int noinfo)
{
	if (n > FAKE_MAX_PARAMS || !name)
		return NULL;
	unsigned i = atomic_fetch_add(&n_handles, 1);
	if (i >= MAX_HANDLES)
		return NULL;
	struct fake_handle *h = &handles[i];
	h->kind = kind;
	h->noinfo = noinfo;
	h->n = n;
	size_t off = 0;
	for (unsigned p = 0; p < n; p++) {
		size_t align = 1;
		while (align < 16 && sizes[p] % (align * 2) == 0)
			align *= 2;
		off = (off + align - 1) / align * align;
		h->offsets[p] = off;
		h->sizes[p] = sizes[p];
		off += sizes[p];
	}
	strncpy(h->name, name, sizeof h->name - 1);
	h->magic = HANDLE_MAGIC;
	return h;
}

/* The handle behind p if p is one the fake made (any kind), else NULL. Never dereferences
 * a pointer that is not inside the handle array. */
static const struct fake_handle *lookup_handle(const void *p)
{
	uintptr_t a = (uintptr_t)p, base = (uintptr_t)handles;
	unsigned n = atomic_load_explicit(&n_handles, memory_order_acquire);
	if (n > MAX_HANDLES)
		n = MAX_HANDLES;
	if (a < base || a >= base + (uintptr_t)n * sizeof handles[0] ||
	    (a - base) % sizeof handles[0] != 0)
		return NULL;
	const struct fake_handle *h = p;
	return h->magic == HANDLE_MAGIC ? h : NULL;
}

API void fake_set_owner(const void *handle, uintptr_t owner)
{
	struct fake_handle *h = (struct fake_handle *)lookup_handle(handle);
	if (h)
		atomic_store(&h->owner, owner);
}

API void fake_rename(const void *handle, const char *name)
{
	struct fake_handle *h = (struct fake_handle *)lookup_handle(handle);
	if (h && name) {
		memset(h->name, 0, sizeof h->name);
		strncpy(h->name, name, sizeof h->name - 1);
	}
}

API CUfunction fake_make_function(const char *name, unsigned n, const size_t *sizes)
{
	return make_handle(name, n, sizes, KIND_FUNCTION, 0);
}
API CUkernel fake_make_kernel(const char *name, unsigned n, const size_t *sizes)
{
	return make_handle(name, n, sizes, KIND_KERNEL, 0);
}
API CUfunction fake_make_function_noinfo(const char *name, unsigned n, const size_t *sizes)
{
	return make_handle(name, n, sizes, KIND_FUNCTION, 1);
}

/* ---- fake device memory ---- */

static atomic_ullong next_dptr = FAKE_DPTR_BASE;
static atomic_uint next_dptr_v1 = FAKE_DPTR_V1_BASE;
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t *live;
static size_t n_live, cap_live;

static uint64_t round_up(uint64_t size) { return (size + 4095) / 4096 * 4096; }

static int live_add(uint64_t p)
{
	pthread_mutex_lock(&mem_lock);
	if (n_live == cap_live) {
		size_t cap = cap_live ? cap_live * 2 : 256;
		uint64_t *n = realloc(live, cap * sizeof *n);
		if (!n) {
			pthread_mutex_unlock(&mem_lock);
			return 0;
		}
		live = n;
		cap_live = cap;
	}
	live[n_live++] = p;
	pthread_mutex_unlock(&mem_lock);
	return 1;
}

static int live_remove(uint64_t p)
{
	int found = 0;
	pthread_mutex_lock(&mem_lock);
	for (size_t i = 0; i < n_live; i++) {
		if (live[i] == p) {
			live[i] = live[--n_live];
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&mem_lock);
	return found;
}

API unsigned long fake_live_allocs(void)
{
	pthread_mutex_lock(&mem_lock);
	unsigned long n = n_live;
	pthread_mutex_unlock(&mem_lock);
	return n;
}

static CUresult alloc64(struct fake_call *c, CUdeviceptr *dptr, size_t size)
{
	if (!dptr || size == 0)
		return CUDA_ERROR_INVALID_VALUE;
	uint64_t p = atomic_fetch_add(&next_dptr, round_up(size) + 4096);
	if (!live_add(p))
		return CUDA_ERROR_OUT_OF_MEMORY;
	*dptr = (CUdeviceptr)p;
	c->out = p;
	return CUDA_SUCCESS;
}

/* ---- stream capture flags ---- */

#define MAX_STREAMS 64
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;
static CUstream capturing[MAX_STREAMS];
static int n_capturing;

API void fake_set_capturing(CUstream stream, int on)
{
	pthread_mutex_lock(&stream_lock);
	int i;
	for (i = 0; i < n_capturing && capturing[i] != stream; i++)
		;
	if (on && i == n_capturing && n_capturing < MAX_STREAMS)
		capturing[n_capturing++] = stream;
	else if (!on && i < n_capturing)
		capturing[i] = capturing[--n_capturing];
	pthread_mutex_unlock(&stream_lock);
}

static CUstreamCaptureStatus capture_status(CUstream stream)
{
	CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
	pthread_mutex_lock(&stream_lock);
	for (int i = 0; i < n_capturing; i++)
		if (capturing[i] == stream)
			st = CU_STREAM_CAPTURE_STATUS_ACTIVE;
	pthread_mutex_unlock(&stream_lock);
	return st;
}

/* ---- entry points ---- */

/* Declares fk_NAME with the exported name NAME, then starts its definition. */
#define FK(RET, NAME, PARAMS)                                   \
	API RET fk_##NAME PARAMS __asm__(#NAME);                \
	RET fk_##NAME PARAMS

FK(CUresult, cuInit, (unsigned int flags))
{
	struct fake_call *c = rec(V_cuInit);
	SET_ARGS(c, flags);
	CUresult r;
	if (forced(V_cuInit, &r))
		return done(c, r);
	return done(c, flags ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS);
}

FK(CUresult, cuDriverGetVersion, (int *v))
{
	struct fake_call *c = rec(V_cuDriverGetVersion);
	SET_ARGS(c, U(v));
	CUresult r;
	if (forced(V_cuDriverGetVersion, &r))
		return done(c, r);
	if (!v)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	*v = FAKE_DRIVER_VERSION;
	return done(c, CUDA_SUCCESS);
}

/* -- launches -- */

static inline CUresult launch_common(int v, const void *f, unsigned gx, unsigned gy,
				     unsigned gz, unsigned bx, unsigned by, unsigned bz,
				     unsigned shmem, CUstream s, void **params, void **extra,
				     const CUlaunchConfig *config)
{
	struct fake_call *c = rec(v);
	c->handle = f;
	c->grid[0] = gx, c->grid[1] = gy, c->grid[2] = gz;
	c->block[0] = bx, c->block[1] = by, c->block[2] = bz;
	c->shmem = shmem;
	c->stream = s;
	c->kernel_params = params;
	c->extra = extra;
	c->config = config;
	if (config)
		c->config_copy = *config;
	CUresult r;
	if (forced(v, &r))
		return done(c, r);
	const struct fake_handle *h = lookup_handle(f);
	if (!h)
		return done(c, CUDA_ERROR_INVALID_HANDLE);
	if (params) {
		for (unsigned i = 0; i < h->n; i++) {
			size_t n = h->sizes[i] < FAKE_MAX_PARAM_BYTES ? h->sizes[i]
								      : FAKE_MAX_PARAM_BYTES;
			c->param_size[i] = h->sizes[i];
			memcpy(c->param[i], params[i], n);
		}
		c->n_params = h->n;
	} else if (!extra && h->n) {
		return done(c, CUDA_ERROR_INVALID_VALUE);
	}
	return done(c, CUDA_SUCCESS);
}

#define LAUNCH(NAME)                                                                        \
	FK(CUresult, NAME,                                                                  \
	   (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,   \
	    unsigned bz, unsigned shmem, CUstream s, void **params, void **extra))           \
	{                                                                                   \
		CUresult r = launch_common(V_##NAME, f, gx, gy, gz, bx, by, bz, shmem, s,   \
					   params, extra, NULL);                            \
		SET_ARGS(tls_last, U(f), gx, gy, gz, bx, by, bz, shmem, U(s), U(params),    \
			 U(extra));                                                         \
		return r;                                                                   \
	}
LAUNCH(cuLaunchKernel)
LAUNCH(cuLaunchKernel_ptsz)

#define LAUNCH_COOP(NAME)                                                                   \
	FK(CUresult, NAME,                                                                  \
	   (CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,   \
	    unsigned bz, unsigned shmem, CUstream s, void **params))                         \
	{                                                                                   \
		CUresult r = launch_common(V_##NAME, f, gx, gy, gz, bx, by, bz, shmem, s,   \
					   params, NULL, NULL);                             \
		SET_ARGS(tls_last, U(f), gx, gy, gz, bx, by, bz, shmem, U(s), U(params));   \
		return r;                                                                   \
	}
LAUNCH_COOP(cuLaunchCooperativeKernel)
LAUNCH_COOP(cuLaunchCooperativeKernel_ptsz)

#define LAUNCH_EX(NAME)                                                                     \
	FK(CUresult, NAME,                                                                  \
	   (const CUlaunchConfig *cfg, CUfunction f, void **params, void **extra))           \
	{                                                                                   \
		CUresult r;                                                                 \
		if (!cfg) {                                                                 \
			struct fake_call *c = rec(V_##NAME);                                \
			c->handle = f;                                                      \
			c->kernel_params = params;                                          \
			c->extra = extra;                                                   \
			c->config = NULL;                                                   \
			r = done(c, forced(V_##NAME, &r) ? r : CUDA_ERROR_INVALID_VALUE);   \
		} else {                                                                    \
			r = launch_common(V_##NAME, f, cfg->gridDimX, cfg->gridDimY,        \
					  cfg->gridDimZ, cfg->blockDimX, cfg->blockDimY,    \
					  cfg->blockDimZ, cfg->sharedMemBytes, cfg->hStream, \
					  params, extra, cfg);                              \
		}                                                                           \
		SET_ARGS(tls_last, U(cfg), U(f), U(params), U(extra));                      \
		return r;                                                                   \
	}
LAUNCH_EX(cuLaunchKernelEx)
LAUNCH_EX(cuLaunchKernelEx_ptsz)

/* -- memory -- */

FK(CUresult, cuMemAlloc, (unsigned int *dptr, unsigned int size))
{
	struct fake_call *c = rec(V_cuMemAlloc);
	SET_ARGS(c, U(dptr), size);
	CUresult r;
	if (forced(V_cuMemAlloc, &r))
		return done(c, r);
	if (!dptr || size == 0)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	unsigned p = atomic_fetch_add(&next_dptr_v1, (unsigned)round_up(size) + 4096u);
	if (!live_add(p))
		return done(c, CUDA_ERROR_OUT_OF_MEMORY);
	*dptr = p;
	c->out = p;
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuMemAlloc_v2, (CUdeviceptr *dptr, size_t size))
{
	struct fake_call *c = rec(V_cuMemAlloc_v2);
	SET_ARGS(c, U(dptr), size);
	CUresult r;
	if (forced(V_cuMemAlloc_v2, &r))
		return done(c, r);
	return done(c, alloc64(c, dptr, size));
}

FK(CUresult, cuMemFree, (unsigned int dptr))
{
	struct fake_call *c = rec(V_cuMemFree);
	SET_ARGS(c, dptr);
	CUresult r;
	if (forced(V_cuMemFree, &r))
		return done(c, r);
	return done(c, dptr && live_remove(dptr) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE);
}

FK(CUresult, cuMemFree_v2, (CUdeviceptr dptr))
{
	struct fake_call *c = rec(V_cuMemFree_v2);
	SET_ARGS(c, dptr);
	CUresult r;
	if (forced(V_cuMemFree_v2, &r))
		return done(c, r);
	return done(c, dptr && live_remove(dptr) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE);
}

#define ALLOC_ASYNC(NAME)                                                                   \
	FK(CUresult, NAME, (CUdeviceptr * dptr, size_t size, CUstream s))                   \
	{                                                                                   \
		struct fake_call *c = rec(V_##NAME);                                        \
		SET_ARGS(c, U(dptr), size, U(s));                                           \
		c->stream = s;                                                              \
		CUresult r;                                                                 \
		if (forced(V_##NAME, &r))                                                   \
			return done(c, r);                                                  \
		return done(c, alloc64(c, dptr, size));                                     \
	}
ALLOC_ASYNC(cuMemAllocAsync)
ALLOC_ASYNC(cuMemAllocAsync_ptsz)

#define FREE_ASYNC(NAME)                                                                    \
	FK(CUresult, NAME, (CUdeviceptr dptr, CUstream s))                                  \
	{                                                                                   \
		struct fake_call *c = rec(V_##NAME);                                        \
		SET_ARGS(c, dptr, U(s));                                                    \
		c->stream = s;                                                              \
		CUresult r;                                                                 \
		if (forced(V_##NAME, &r))                                                   \
			return done(c, r);                                                  \
		return done(c, dptr && live_remove(dptr) ? CUDA_SUCCESS                     \
							 : CUDA_ERROR_INVALID_VALUE);        \
	}
FREE_ASYNC(cuMemFreeAsync)
FREE_ASYNC(cuMemFreeAsync_ptsz)

FK(CUresult, cuMemGetInfo, (unsigned int *free_bytes, unsigned int *total_bytes))
{
	struct fake_call *c = rec(V_cuMemGetInfo);
	SET_ARGS(c, U(free_bytes), U(total_bytes));
	CUresult r;
	if (forced(V_cuMemGetInfo, &r))
		return done(c, r);
	if (!free_bytes || !total_bytes)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	*free_bytes = FAKE_MEM_FREE_V1;
	*total_bytes = FAKE_MEM_TOTAL_V1;
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuMemGetInfo_v2, (size_t *free_bytes, size_t *total_bytes))
{
	struct fake_call *c = rec(V_cuMemGetInfo_v2);
	SET_ARGS(c, U(free_bytes), U(total_bytes));
	CUresult r;
	if (forced(V_cuMemGetInfo_v2, &r))
		return done(c, r);
	if (!free_bytes || !total_bytes)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	*free_bytes = FAKE_MEM_FREE;
	*total_bytes = FAKE_MEM_TOTAL;
	return done(c, CUDA_SUCCESS);
}

/* -- kernel introspection -- */

/* What the introspection calls share: the call recorded (output pointer, handle), then the
 * result a forced failure, an unknown handle, one of another kind or a NULL output gives;
 * *hp is the handle when the call succeeds, else NULL. */
static struct fake_call *introspect(int v, const void *out, const void *hnd, int kind,
				    const struct fake_handle **hp, CUresult *r)
{
	struct fake_call *c = rec(v);
	SET_ARGS(c, U(out), U(hnd));
	c->handle = hnd;
	*hp = NULL;
	if (forced(v, r))
		return c;
	const struct fake_handle *h = lookup_handle(hnd);
	*r = !h || h->kind != kind ? CUDA_ERROR_INVALID_HANDLE : !out ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
	if (*r == CUDA_SUCCESS)
		*hp = h;
	return c;
}

static CUresult get_name(int v, const char **name, const void *hnd, int kind)
{
	const struct fake_handle *h;
	CUresult r;
	struct fake_call *c = introspect(v, name, hnd, kind, &h, &r);
	if (h)
		*name = h->name;
	return done(c, r);
}

FK(CUresult, cuFuncGetName, (const char **name, CUfunction f))
{
	return get_name(V_cuFuncGetName, name, f, KIND_FUNCTION);
}

FK(CUresult, cuKernelGetName, (const char **name, CUkernel k))
{
	return get_name(V_cuKernelGetName, name, k, KIND_KERNEL);
}

static CUresult get_owner(int v, void **out, const void *hnd, int kind, uintptr_t dflt)
{
	const struct fake_handle *h;
	CUresult r;
	struct fake_call *c = introspect(v, out, hnd, kind, &h, &r);
	if (h) {
		uintptr_t o = atomic_load(&h->owner);
		*out = (void *)(o ? o : dflt);
	}
	return done(c, r);
}

FK(CUresult, cuFuncGetModule, (CUmodule *m, CUfunction f))
{
	return get_owner(V_cuFuncGetModule, (void **)m, f, KIND_FUNCTION, FAKE_DEFAULT_MODULE);
}

FK(CUresult, cuKernelGetLibrary, (CUlibrary *l, CUkernel k))
{
	return get_owner(V_cuKernelGetLibrary, (void **)l, k, KIND_KERNEL, FAKE_DEFAULT_LIBRARY);
}

static CUresult unload(int v, const void *hnd)
{
	struct fake_call *c = rec(v);
	SET_ARGS(c, U(hnd));
	c->handle = hnd;
	CUresult r;
	if (forced(v, &r))
		return done(c, r);
	return done(c, hnd ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE);
}

FK(CUresult, cuModuleUnload, (CUmodule m))
{
	return unload(V_cuModuleUnload, m);
}

FK(CUresult, cuLibraryUnload, (CUlibrary l))
{
	return unload(V_cuLibraryUnload, l);
}

static CUresult param_info(int v, const void *hnd, size_t i, size_t *off, size_t *size, int kind)
{
	struct fake_call *c = rec(v);
	SET_ARGS(c, U(hnd), i, U(off), U(size));
	c->handle = hnd;
	CUresult r;
	if (forced(v, &r))
		return done(c, r);
	const struct fake_handle *h = lookup_handle(hnd);
	if (!h || h->kind != kind)
		return done(c, CUDA_ERROR_INVALID_HANDLE);
	if (h->noinfo)
		return done(c, CUDA_ERROR_NOT_SUPPORTED);
	if (i >= h->n || (!off && !size))
		return done(c, CUDA_ERROR_INVALID_VALUE);
	if (off)
		*off = h->offsets[i];
	if (size)
		*size = h->sizes[i];
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuFuncGetParamInfo, (CUfunction f, size_t i, size_t *off, size_t *size))
{
	return param_info(V_cuFuncGetParamInfo, f, i, off, size, KIND_FUNCTION);
}

FK(CUresult, cuKernelGetParamInfo, (CUkernel k, size_t i, size_t *off, size_t *size))
{
	return param_info(V_cuKernelGetParamInfo, k, i, off, size, KIND_KERNEL);
}

/* -- device and context -- */

FK(CUresult, cuPointerGetAttribute, (void *data, CUpointer_attribute attr, CUdeviceptr ptr))
{
	struct fake_call *c = rec(V_cuPointerGetAttribute);
	SET_ARGS(c, U(data), (uint64_t)attr, ptr);
	CUresult r;
	if (forced(V_cuPointerGetAttribute, &r))
		return done(c, r);
	if (!data || !ptr || attr != CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	*(int *)data = 0;
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuCtxGetDevice, (CUdevice *dev))
{
	struct fake_call *c = rec(V_cuCtxGetDevice);
	SET_ARGS(c, U(dev));
	CUresult r;
	if (forced(V_cuCtxGetDevice, &r))
		return done(c, r);
	if (!dev)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	*dev = 0;
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuDeviceGet, (CUdevice *dev, int ordinal))
{
	struct fake_call *c = rec(V_cuDeviceGet);
	SET_ARGS(c, U(dev), (uint64_t)ordinal);
	CUresult r;
	if (forced(V_cuDeviceGet, &r))
		return done(c, r);
	if (!dev)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	if (ordinal != 0)
		return done(c, CUDA_ERROR_INVALID_DEVICE);
	*dev = 0;
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuDeviceGetCount, (int *count))
{
	struct fake_call *c = rec(V_cuDeviceGetCount);
	SET_ARGS(c, U(count));
	CUresult r;
	if (forced(V_cuDeviceGetCount, &r))
		return done(c, r);
	if (!count)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	*count = 1;
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuDeviceGetName, (char *name, int len, CUdevice dev))
{
	struct fake_call *c = rec(V_cuDeviceGetName);
	SET_ARGS(c, U(name), (uint64_t)len, (uint64_t)dev);
	CUresult r;
	if (forced(V_cuDeviceGetName, &r))
		return done(c, r);
	if (!name || len <= 0)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	if (dev != 0)
		return done(c, CUDA_ERROR_INVALID_DEVICE);
	strncpy(name, FAKE_DEVICE_NAME, (size_t)len - 1);
	name[len - 1] = 0;
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuDeviceGetAttribute, (int *pi, CUdevice_attribute attr, CUdevice dev))
{
	struct fake_call *c = rec(V_cuDeviceGetAttribute);
	SET_ARGS(c, U(pi), (uint64_t)attr, (uint64_t)dev);
	CUresult r;
	if (forced(V_cuDeviceGetAttribute, &r))
		return done(c, r);
	if (!pi)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	if (dev != 0)
		return done(c, CUDA_ERROR_INVALID_DEVICE);
	switch (attr) {
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *pi = FAKE_CC_MAJOR; break;
	case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *pi = FAKE_CC_MINOR; break;
	case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *pi = FAKE_SM_COUNT; break;
	case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *pi = 32; break;
	case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *pi = 1024; break;
	default: *pi = 0; break;
	}
	return done(c, CUDA_SUCCESS);
}

FK(CUresult, cuDeviceTotalMem_v2, (size_t *bytes, CUdevice dev))
{
	struct fake_call *c = rec(V_cuDeviceTotalMem_v2);
	SET_ARGS(c, U(bytes), (uint64_t)dev);
	CUresult r;
	if (forced(V_cuDeviceTotalMem_v2, &r))
		return done(c, r);
	if (!bytes)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	if (dev != 0)
		return done(c, CUDA_ERROR_INVALID_DEVICE);
	*bytes = FAKE_MEM_TOTAL;
	return done(c, CUDA_SUCCESS);
}

/* -- stream capture -- */

#define IS_CAPTURING(NAME)                                                                  \
	FK(CUresult, NAME, (CUstream s, CUstreamCaptureStatus * st))                        \
	{                                                                                   \
		struct fake_call *c = rec(V_##NAME);                                        \
		SET_ARGS(c, U(s), U(st));                                                   \
		c->stream = s;                                                              \
		CUresult r;                                                                 \
		if (forced(V_##NAME, &r))                                                   \
			return done(c, r);                                                  \
		if (!st)                                                                    \
			return done(c, CUDA_ERROR_INVALID_VALUE);                           \
		*st = capture_status(s);                                                    \
		return done(c, CUDA_SUCCESS);                                               \
	}
IS_CAPTURING(cuStreamIsCapturing)
IS_CAPTURING(cuStreamIsCapturing_ptsz)

FK(CUresult, cuStreamGetCaptureInfo_v3,
   (CUstream s, CUstreamCaptureStatus *st, cuuint64_t *id, CUgraph *graph,
    const CUgraphNode **deps, const CUgraphEdgeData **edges, size_t *n_deps))
{
	struct fake_call *c = rec(V_cuStreamGetCaptureInfo_v3);
	SET_ARGS(c, U(s), U(st), U(id), U(graph), U(deps), U(edges), U(n_deps));
	c->stream = s;
	CUresult r;
	if (forced(V_cuStreamGetCaptureInfo_v3, &r))
		return done(c, r);
	if (!st)
		return done(c, CUDA_ERROR_INVALID_VALUE);
	*st = capture_status(s);
	if (id)
		*id = 0;
	if (graph)
		*graph = NULL;
	if (deps)
		*deps = NULL;
	if (edges)
		*edges = NULL;
	if (n_deps)
		*n_deps = 0;
	return done(c, CUDA_SUCCESS);
}

/* ---- cuGetProcAddress ---- */

API CUresult fk_cuGetProcAddress_v2(const char *, void **, int, cuuint64_t,
				    CUdriverProcAddressQueryResult *) __asm__("cuGetProcAddress_v2");
API CUresult fk_cuGetProcAddress(const char *, void **, int, cuuint64_t) __asm__("cuGetProcAddress");

#define AS_ADDR(n) (void *)fk_##n,
static void *const variant_addrs[NV] = {FAKE_VARIANTS(AS_ADDR)};

API void *fake_addr(const char *variant)
{
	int v = variant_index(variant);
	return v < 0 ? NULL : variant_addrs[v];
}

/* A base name as cuGetProcAddress knows it. Below min_version the symbol is "found but the
 * version is not sufficient"; below split_version the old ABI (v_old) is returned; with the
 * per-thread flag the _ptsz variant, where there is one. */
struct proc_entry {
	const char *name;
	int min_version;
	int split_version;
	int v_old, v_new, v_ptsz;
};

static const struct proc_entry proc_table[] = {
	{"cuInit", 2000, 0, -1, V_cuInit, -1},
	{"cuDriverGetVersion", 2020, 0, -1, V_cuDriverGetVersion, -1},
	{"cuGetProcAddress", 11030, 12000, V_cuGetProcAddress, V_cuGetProcAddress_v2, -1},
	{"cuLaunchKernel", 4000, 0, -1, V_cuLaunchKernel, V_cuLaunchKernel_ptsz},
	{"cuLaunchKernelEx", 11060, 0, -1, V_cuLaunchKernelEx, V_cuLaunchKernelEx_ptsz},
	{"cuLaunchCooperativeKernel", 9000, 0, -1, V_cuLaunchCooperativeKernel,
	 V_cuLaunchCooperativeKernel_ptsz},
	{"cuMemAlloc", 2000, 3020, V_cuMemAlloc, V_cuMemAlloc_v2, -1},
	{"cuMemFree", 2000, 3020, V_cuMemFree, V_cuMemFree_v2, -1},
	{"cuMemGetInfo", 2000, 3020, V_cuMemGetInfo, V_cuMemGetInfo_v2, -1},
	{"cuMemAllocAsync", 11020, 0, -1, V_cuMemAllocAsync, V_cuMemAllocAsync_ptsz},
	{"cuMemFreeAsync", 11020, 0, -1, V_cuMemFreeAsync, V_cuMemFreeAsync_ptsz},
	{"cuFuncGetName", 12030, 0, -1, V_cuFuncGetName, -1},
	{"cuKernelGetName", 12030, 0, -1, V_cuKernelGetName, -1},
	{"cuFuncGetParamInfo", 12040, 0, -1, V_cuFuncGetParamInfo, -1},
	{"cuKernelGetParamInfo", 12040, 0, -1, V_cuKernelGetParamInfo, -1},
	{"cuPointerGetAttribute", 4000, 0, -1, V_cuPointerGetAttribute, -1},
	{"cuCtxGetDevice", 2000, 0, -1, V_cuCtxGetDevice, -1},
	{"cuDeviceGet", 2000, 0, -1, V_cuDeviceGet, -1},
	{"cuDeviceGetCount", 2000, 0, -1, V_cuDeviceGetCount, -1},
	{"cuDeviceGetName", 2000, 0, -1, V_cuDeviceGetName, -1},
	{"cuDeviceGetAttribute", 2000, 0, -1, V_cuDeviceGetAttribute, -1},
	{"cuDeviceTotalMem", 3020, 0, -1, V_cuDeviceTotalMem_v2, -1},
	{"cuStreamIsCapturing", 10000, 0, -1, V_cuStreamIsCapturing, V_cuStreamIsCapturing_ptsz},
	{"cuStreamGetCaptureInfo", 12030, 0, -1, V_cuStreamGetCaptureInfo_v3, -1},
	{"cuModuleUnload", 2000, 0, -1, V_cuModuleUnload, -1},
	{"cuLibraryUnload", 12000, 0, -1, V_cuLibraryUnload, -1},
	{"cuFuncGetModule", 11000, 0, -1, V_cuFuncGetModule, -1},
	{"cuKernelGetLibrary", 12050, 0, -1, V_cuKernelGetLibrary, -1},
};

static CUresult resolve(struct fake_call *c, const char *symbol, void **pfn, int version,
			cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
	if (symbol) {
		strncpy(c->symbol, symbol, sizeof c->symbol - 1);
		c->symbol[sizeof c->symbol - 1] = 0;
	}
	if (!symbol || !pfn ||
	    (flags & ~(cuuint64_t)(CU_GET_PROC_ADDRESS_LEGACY_STREAM |
				   CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM)))
		return CUDA_ERROR_INVALID_VALUE;
	const struct proc_entry *e = NULL;
	for (size_t i = 0; i < sizeof proc_table / sizeof proc_table[0]; i++)
		if (strcmp(proc_table[i].name, symbol) == 0)
			e = &proc_table[i];
	CUdriverProcAddressQueryResult st;
	CUresult r;
	*pfn = NULL;
	if (!e) {
		st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
		r = CUDA_ERROR_NOT_FOUND;
	} else if (version < e->min_version) {
		st = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
		r = CUDA_ERROR_NOT_FOUND;
	} else {
		int v = e->v_new;
		if (e->split_version && version < e->split_version)
			v = e->v_old;
		else if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) && e->v_ptsz >= 0)
			v = e->v_ptsz;
		*pfn = variant_addrs[v];
		st = CU_GET_PROC_ADDRESS_SUCCESS;
		r = CUDA_SUCCESS;
	}
	if (status)
		*status = st;
	c->pfn_out = *pfn;
	c->status_out = status ? (int)st : -1;
	return r;
}

FK(CUresult, cuGetProcAddress_v2,
   (const char *symbol, void **pfn, int version, cuuint64_t flags,
    CUdriverProcAddressQueryResult *status))
{
	struct fake_call *c = rec(V_cuGetProcAddress_v2);
	SET_ARGS(c, U(symbol), U(pfn), (uint64_t)version, flags, U(status));
	CUresult r;
	if (forced(V_cuGetProcAddress_v2, &r))
		return done(c, r);
	return done(c, resolve(c, symbol, pfn, version, flags, status));
}

FK(CUresult, cuGetProcAddress, (const char *symbol, void **pfn, int version, cuuint64_t flags))
{
	struct fake_call *c = rec(V_cuGetProcAddress);
	SET_ARGS(c, U(symbol), U(pfn), (uint64_t)version, flags);
	CUresult r;
	if (forced(V_cuGetProcAddress, &r))
		return done(c, r);
	return done(c, resolve(c, symbol, pfn, version, flags, NULL));
}

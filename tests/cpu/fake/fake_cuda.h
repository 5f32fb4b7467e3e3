/* A fake CUDA driver (libcuda.so.1, tests/cpu/fake/fake_cuda.c) and runtime
 * (libcudart.so.13, tests/cpu/fake/fake_cudart.c) for the CPU tests of the interposition.
 *
 * The fake driver exports the driver entry points the library interposes, under their exact
 * exported names (cuLaunchKernel, cuLaunchKernel_ptsz, cuMemAlloc (v1), cuMemAlloc_v2, ...),
 * plus the ones it calls for its own purposes (cuFuncGetName, cuKernelGetParamInfo, ...).
 * Nothing runs on a device: a launch only records what it was given; allocations hand out
 * increasing fake addresses.
 *
 * Every entry point records the call: fake_last_call() is the last call made on the calling
 * thread, fake_last_call_of(v) the last call of variant v on the calling thread (the library
 * makes driver calls of its own around the ones it forwards, e.g. cuPointerGetAttribute after
 * an allocation, so a test usually asks for the variant it expects). fake_calls(v) counts
 * the calls of variant v in the whole process (relaxed atomics; exact once threads joined).
 *
 * Kernel handles are made by the test: a CUfunction (fake_make_function) is named by
 * cuFuncGetName only, a CUkernel (fake_make_kernel) by cuKernelGetName only. Parameter
 * offsets are packed with natural alignment: each parameter is aligned to the largest power
 * of two dividing its size, at most 16. Launches accept both kinds (as the real driver does
 * for a CUkernel cast to CUfunction) and copy each parameter's bytes through kernelParams
 * using the handle's layout.
 */
#ifndef GSA_TEST_FAKE_CUDA_H
#define GSA_TEST_FAKE_CUDA_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

#define FAKE_MAX_PARAMS 16
#define FAKE_MAX_PARAM_BYTES 64
#define FAKE_MAX_ARGS 12

/* Versions the fake reports. */
#define FAKE_DRIVER_VERSION 13000
#define FAKE_RUNTIME_VERSION 13000

/* Fixed values of the device queries. */
#define FAKE_MEM_FREE (70ull << 30)
#define FAKE_MEM_TOTAL (80ull << 30)
#define FAKE_MEM_FREE_V1 0x70000000u
#define FAKE_MEM_TOTAL_V1 0x80000000u
#define FAKE_DEVICE_NAME "Fake GPU"
#define FAKE_CC_MAJOR 9
#define FAKE_CC_MINOR 0
#define FAKE_SM_COUNT 132
#define FAKE_DEFAULT_MODULE ((uintptr_t)0x6d0d0000)
#define FAKE_DEFAULT_LIBRARY ((uintptr_t)0x1b0b0000)

/* Fake device addresses: v2/async allocations start here and only grow (never reused). */
#define FAKE_DPTR_BASE 0x7f0000000000ull
/* v1 (32-bit) allocations start here. */
#define FAKE_DPTR_V1_BASE 0x10000000u

struct fake_call {
	const char *variant;           /* exact exported name called, e.g. "cuLaunchKernel_ptsz" */
	CUresult result;               /* what the fake returned */
	unsigned nargs;
	uint64_t arg[FAKE_MAX_ARGS];   /* every argument, in order, as raw bits (pointers too) */
	uint64_t seq;                  /* process-wide order of calls (1, 2, ...) */

	/* Launches (cuLaunchKernel*, cuLaunchCooperativeKernel*, cuLaunchKernelEx*): */
	const void *handle;            /* the CUfunction/CUkernel passed */
	unsigned grid[3], block[3], shmem;
	CUstream stream;
	void **kernel_params;          /* the pointer passed */
	void **extra;                  /* the pointer passed (NULL for cooperative launches) */
	const CUlaunchConfig *config;  /* Ex: the pointer passed */
	CUlaunchConfig config_copy;    /* Ex: *config at the time of the call */
	unsigned n_params;             /* parameters copied (0 when kernel_params is NULL) */
	size_t param_size[FAKE_MAX_PARAMS];
	unsigned char param[FAKE_MAX_PARAMS][FAKE_MAX_PARAM_BYTES];

	/* Allocations: the address handed out (0 when none). */
	uint64_t out;

	/* cuGetProcAddress(_v2): the symbol asked for (copied), and what was stored in *pfn. */
	char symbol[128];
	void *pfn_out;
	int status_out;                /* -1 when no status pointer was given */
};

/* Handles. The name is copied. sizes: n parameter sizes (n <= FAKE_MAX_PARAMS). */
CUfunction fake_make_function(const char *name, unsigned n, const size_t *sizes);
CUkernel fake_make_kernel(const char *name, unsigned n, const size_t *sizes);
/* A function whose cuFuncGetParamInfo fails with CUDA_ERROR_NOT_SUPPORTED (its launches
 * still copy parameters with the layout given here). */
CUfunction fake_make_function_noinfo(const char *name, unsigned n, const size_t *sizes);
/* cuFuncGetModule / cuKernelGetLibrary answer owner for handle (FAKE_DEFAULT_MODULE or
 * FAKE_DEFAULT_LIBRARY until set). */
void fake_set_owner(const void *handle, uintptr_t owner);
/* The handle names another kernel from now on (as when the driver reuses an unloaded
 * kernel's handle for a kernel loaded later). */
void fake_rename(const void *handle, const char *name);

/* Calls on this thread; NULL when none. The pointers stay valid for the thread's life; the
 * struct they point to is overwritten by the next call of the same variant on the thread. */
const struct fake_call *fake_last_call(void);
const struct fake_call *fake_last_call_of(const char *variant);
/* Calls of variant in the process (0 for a name the fake does not know). */
unsigned long fake_calls(const char *variant);
/* The fake's own function for an exported name (NULL if it has none): lets a test compare
 * pointers without going through dlsym. */
void *fake_addr(const char *variant);
/* The next call of variant on this thread returns r without doing anything else (it is
 * still recorded and counted). */
void fake_fail_next(const char *variant, CUresult r);
/* cuStreamIsCapturing / cuStreamGetCaptureInfo_v3 report ACTIVE for this stream while on. */
void fake_set_capturing(CUstream stream, int on);
/* Live allocations the fake knows (v1, v2 and async together). */
unsigned long fake_live_allocs(void);

/* ---- the fake runtime (libcudart.so.13) ---- */

/* Makes hostfn (any address standing for a kernel's host stub) launch kernel k. */
void fake_rt_register(const void *hostfn, CUkernel k);
/* Calls of a runtime entry point (exact exported name, e.g. "cudaMalloc") in the process. */
unsigned long fake_rt_calls(const char *name);
/* The last runtime entry point called on this thread, or NULL. */
const char *fake_rt_last(void);

#endif

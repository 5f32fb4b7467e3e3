/* Scenarios run under the preload by test_interpose, test_config_env and test_threads_fork
 * (argv[1] picks one). Linked with -lcuda -lcudart against the fakes in build/test/fake, so
 * its calls of driver and runtime entry points go through the PLT to whatever defines them
 * first: the preload's exports when it is loaded.
 *
 * A scenario checks, in its own process, what only it can see (which exact fake variant a
 * call reached, with which arguments and parameter bytes, what came back), reporting with
 * check.h: its FAIL lines go to the file named by SCENARIO_REPORT, its result line to
 * stdout, and the test adds both to its own. It announces what its trace must hold with
 * "E ..." lines (scenario.h). */
#include <cuda.h>
#include <cuda_runtime_api.h>

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/cpu/check.h"
#include "tests/cpu/fake/fake_cuda.h"
#include "tests/cpu/scenario.h"

/* ---- the exact exported names, under C names of our own ---- */

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
			      unsigned, unsigned, CUstream, void **, void **);
typedef CUresult (*launch_ex_fn)(const CUlaunchConfig *, CUfunction, void **, void **);
typedef CUresult (*coop_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
			    unsigned, unsigned, CUstream, void **);
typedef CUresult (*alloc_fn)(CUdeviceptr *, size_t);
typedef CUresult (*alloc_v1_fn)(unsigned *, unsigned);
typedef CUresult (*free_fn)(CUdeviceptr);
typedef CUresult (*free_v1_fn)(unsigned);
typedef CUresult (*alloc_async_fn)(CUdeviceptr *, size_t, CUstream);
typedef CUresult (*free_async_fn)(CUdeviceptr, CUstream);
typedef CUresult (*info_fn)(size_t *, size_t *);
typedef CUresult (*info_v1_fn)(unsigned *, unsigned *);
typedef CUresult (*get_proc_fn)(const char *, void **, int, cuuint64_t,
				CUdriverProcAddressQueryResult *);
typedef CUresult (*get_proc_legacy_fn)(const char *, void **, int, cuuint64_t);

#define LAUNCH_P (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, \
		  unsigned, CUstream, void **, void **)
#define COOP_P (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, \
		unsigned, CUstream, void **)
CUresult x_launch LAUNCH_P __asm__("cuLaunchKernel");
CUresult x_launch_ptsz LAUNCH_P __asm__("cuLaunchKernel_ptsz");
CUresult x_launch_ex(const CUlaunchConfig *, CUfunction, void **, void **) __asm__("cuLaunchKernelEx");
CUresult x_launch_ex_ptsz(const CUlaunchConfig *, CUfunction, void **, void **)
	__asm__("cuLaunchKernelEx_ptsz");
CUresult x_coop COOP_P __asm__("cuLaunchCooperativeKernel");
CUresult x_coop_ptsz COOP_P __asm__("cuLaunchCooperativeKernel_ptsz");
CUresult x_alloc_v1(unsigned *, unsigned) __asm__("cuMemAlloc");
CUresult x_alloc(CUdeviceptr *, size_t) __asm__("cuMemAlloc_v2");
CUresult x_free_v1(unsigned) __asm__("cuMemFree");
CUresult x_free(CUdeviceptr) __asm__("cuMemFree_v2");
CUresult x_alloc_async(CUdeviceptr *, size_t, CUstream) __asm__("cuMemAllocAsync");
CUresult x_alloc_async_ptsz(CUdeviceptr *, size_t, CUstream) __asm__("cuMemAllocAsync_ptsz");
CUresult x_free_async(CUdeviceptr, CUstream) __asm__("cuMemFreeAsync");
CUresult x_free_async_ptsz(CUdeviceptr, CUstream) __asm__("cuMemFreeAsync_ptsz");
CUresult x_info_v1(unsigned *, unsigned *) __asm__("cuMemGetInfo");
CUresult x_info(size_t *, size_t *) __asm__("cuMemGetInfo_v2");
CUresult x_get_proc(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *)
	__asm__("cuGetProcAddress_v2");
CUresult x_get_proc_legacy(const char *, void **, int, cuuint64_t) __asm__("cuGetProcAddress");
CUresult x_module_unload(CUmodule) __asm__("cuModuleUnload");
CUresult x_library_unload(CUlibrary) __asm__("cuLibraryUnload");
typedef CUresult (*unload_fn)(void *);

typedef cudaError_t (*rt_entry_fn)(const char *, void **, unsigned long long,
				   enum cudaDriverEntryPointQueryResult *);
typedef cudaError_t (*rt_entry_ver_fn)(const char *, void **, unsigned, unsigned long long,
				       enum cudaDriverEntryPointQueryResult *);
cudaError_t x_rt_launch(const void *, dim3, dim3, void **, size_t, cudaStream_t)
	__asm__("cudaLaunchKernel");
cudaError_t x_rt_launch_ptsz(const void *, dim3, dim3, void **, size_t, cudaStream_t)
	__asm__("cudaLaunchKernel_ptsz");
cudaError_t x_rt_launch_ex(const cudaLaunchConfig_t *, const void *, void **)
	__asm__("cudaLaunchKernelExC");
cudaError_t x_rt_launch_ex_ptsz(const cudaLaunchConfig_t *, const void *, void **)
	__asm__("cudaLaunchKernelExC_ptsz");
cudaError_t x_rt_malloc(void **, size_t) __asm__("cudaMalloc");
cudaError_t x_rt_free(void *) __asm__("cudaFree");
cudaError_t x_rt_malloc_async(void **, size_t, cudaStream_t) __asm__("cudaMallocAsync");
cudaError_t x_rt_malloc_async_ptsz(void **, size_t, cudaStream_t) __asm__("cudaMallocAsync_ptsz");
cudaError_t x_rt_free_async(void *, cudaStream_t) __asm__("cudaFreeAsync");
cudaError_t x_rt_free_async_ptsz(void *, cudaStream_t) __asm__("cudaFreeAsync_ptsz");
cudaError_t x_rt_info(size_t *, size_t *) __asm__("cudaMemGetInfo");
cudaError_t x_rt_func_name(const char **, const void *) __asm__("cudaFuncGetName");
cudaError_t x_rt_entry(const char *, void **, unsigned long long,
		       enum cudaDriverEntryPointQueryResult *) __asm__("cudaGetDriverEntryPoint");
cudaError_t x_rt_entry_ptsz(const char *, void **, unsigned long long,
			    enum cudaDriverEntryPointQueryResult *)
	__asm__("cudaGetDriverEntryPoint_ptsz");
cudaError_t x_rt_entry_ver(const char *, void **, unsigned, unsigned long long,
			   enum cudaDriverEntryPointQueryResult *)
	__asm__("cudaGetDriverEntryPointByVersion");
cudaError_t x_rt_entry_ver_ptsz(const char *, void **, unsigned, unsigned long long,
				enum cudaDriverEntryPointQueryResult *)
	__asm__("cudaGetDriverEntryPointByVersion_ptsz");

#define PTDS CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
#define LEGACY CU_GET_PROC_ADDRESS_LEGACY_STREAM
#define U(x) ((uint64_t)(uintptr_t)(x))

/* ---- expectations ---- */

static int passthrough; /* the library is expected not to observe (bad config, disabled) */
static void *handles[K_COUNT];
static unsigned long expect_launches[K_COUNT];

struct ealloc { uint64_t ptr, size, stream; unsigned mask; };
struct efree { uint64_t ptr; int known; };
static struct ealloc eallocs[256];
static struct efree efrees[256];
static unsigned n_eallocs, n_efrees;

#define API_BIT(a) (1u << (a))
static void expect_alloc(uint64_t ptr, uint64_t size, unsigned mask, uint64_t stream)
{
	if (n_eallocs < 256)
		eallocs[n_eallocs++] = (struct ealloc){ptr, size, stream, mask};
}
static void expect_free(uint64_t ptr, int known)
{
	if (n_efrees < 256)
		efrees[n_efrees++] = (struct efree){ptr, known};
}

static void print_expectations(void)
{
	int pid = (int)getpid();
	for (int k = 0; k < K_COUNT; k++) {
		if (!handles[k])
			continue;
		printf("E %d handle %s %#llx\n", pid, kspecs[k].name,
		       (unsigned long long)(uintptr_t)handles[k]);
		if (k == K_FAIL)
			printf("E %d ignore %s\n", pid, kspecs[k].name);
		else
			printf("E %d launch %s %lu\n", pid, kspecs[k].name, expect_launches[k]);
	}
	printf("E %d ignore_unnamed\n", pid);
	for (unsigned i = 0; i < n_eallocs; i++)
		printf("E %d alloc %#llx %llu %u %#llx\n", pid, (unsigned long long)eallocs[i].ptr,
		       (unsigned long long)eallocs[i].size, eallocs[i].mask,
		       (unsigned long long)eallocs[i].stream);
	for (unsigned i = 0; i < n_efrees; i++)
		printf("E %d free %#llx %d\n", pid, (unsigned long long)efrees[i].ptr,
		       efrees[i].known);
}

/* FAIL lines to the report file; the watchdog. */
static void scenario_begin(unsigned alarm_s)
{
	const char *rep = getenv(SCENARIO_REPORT_ENV);
	if (rep && *rep) {
		FILE *f = fopen(rep, "a");
		if (f) {
			setvbuf(f, NULL, _IONBF, 0);
			stderr = f;
		}
	}
	const char *mode = getenv(SCENARIO_MODE_ENV);
	passthrough = mode && strcmp(mode, "passthrough") == 0;
	alarm(alarm_s);
}

static void make_handles(void)
{
	for (int k = 0; k < K_COUNT; k++) {
		const struct kspec *s = &kspecs[k];
		if (s->kind == GSA_HANDLE_KERNEL)
			handles[k] = fake_make_kernel(s->name, s->n, s->sizes);
		else if (s->noinfo)
			handles[k] = fake_make_function_noinfo(s->name, s->n, s->sizes);
		else
			handles[k] = fake_make_function(s->name, s->n, s->sizes);
		CHECK(handles[k] != NULL, "fake handle %s", s->name);
	}
}

/* ---- launching and checking what the fake received ---- */

struct pbuf {
	unsigned char bytes[4][16];
	void *ptrs[4];
};

static void fill_params(struct pbuf *b, int k, unsigned seed)
{
	for (unsigned i = 0; i < 4; i++) {
		for (unsigned j = 0; j < 16; j++)
			b->bytes[i][j] = (unsigned char)(seed * 31 + i * 17 + j * 5 + 1);
		b->ptrs[i] = b->bytes[i];
	}
	(void)k;
}

struct lcfg {
	unsigned g[3], b[3], shmem;
	CUstream s;
};

static struct lcfg make_cfg(unsigned seed)
{
	struct lcfg c = {{seed + 1, seed + 2, seed + 3}, {seed + 4, seed + 5, seed + 6},
			 seed * 16, (CUstream)(uintptr_t)(0x5000 + seed * 8)};
	return c;
}

/* The last call of variant must be this launch, with exactly these arguments. */
static void check_launch(const char *what, const char *variant, unsigned long before, int k,
			 const void *h, const struct lcfg *c, void **params, void **extra,
			 const struct pbuf *pb)
{
	CHECK(fake_calls(variant) == before + 1, "%s: %s called %lu times, expected once", what,
	      variant, fake_calls(variant) - before);
	const struct fake_call *f = fake_last_call_of(variant);
	CHECK(f != NULL, "%s: no call of %s recorded", what, variant);
	if (!f)
		return;
	CHECK(f->handle == h, "%s: handle %p, expected %p", what, f->handle, h);
	for (int i = 0; i < 3; i++) {
		CHECK(f->grid[i] == c->g[i], "%s: grid[%d] = %u, expected %u", what, i, f->grid[i], c->g[i]);
		CHECK(f->block[i] == c->b[i], "%s: block[%d] = %u, expected %u", what, i, f->block[i],
		      c->b[i]);
	}
	CHECK(f->shmem == c->shmem, "%s: shmem %u, expected %u", what, f->shmem, c->shmem);
	CHECK(f->stream == c->s, "%s: stream %p, expected %p", what, (void *)f->stream, (void *)c->s);
	CHECK(f->kernel_params == params, "%s: kernelParams %p, expected %p", what,
	      (void *)f->kernel_params, (void *)params);
	CHECK(f->extra == extra, "%s: extra %p, expected %p", what, (void *)f->extra, (void *)extra);
	if (params && pb) {
		CHECK(f->n_params == kspecs[k].n, "%s: %u parameters copied, expected %u", what,
		      f->n_params, kspecs[k].n);
		for (unsigned i = 0; i < kspecs[k].n && i < f->n_params; i++)
			CHECK(memcmp(f->param[i], pb->bytes[i], kspecs[k].sizes[i]) == 0,
			      "%s: parameter %u bytes differ", what, i);
	}
}

static void launch_via(launch_fn fn, const char *variant, int k, unsigned seed, const char *what)
{
	struct pbuf pb;
	fill_params(&pb, k, seed);
	struct lcfg c = make_cfg(seed);
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(handles[k], c.g[0], c.g[1], c.g[2], c.b[0], c.b[1], c.b[2], c.shmem,
			     c.s, pb.ptrs, NULL)
			: CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	check_launch(what, variant, before, k, handles[k], &c, pb.ptrs, NULL, &pb);
	if (r == CUDA_SUCCESS)
		expect_launches[k]++;
}

static void coop_via(coop_fn fn, const char *variant, int k, unsigned seed, const char *what)
{
	struct pbuf pb;
	fill_params(&pb, k, seed);
	struct lcfg c = make_cfg(seed);
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(handles[k], c.g[0], c.g[1], c.g[2], c.b[0], c.b[1], c.b[2], c.shmem,
			     c.s, pb.ptrs)
			: CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	check_launch(what, variant, before, k, handles[k], &c, pb.ptrs, NULL, &pb);
	if (r == CUDA_SUCCESS)
		expect_launches[k]++;
}

static void ex_via(launch_ex_fn fn, const char *variant, int k, unsigned seed, const char *what)
{
	struct pbuf pb;
	fill_params(&pb, k, seed);
	struct lcfg c = make_cfg(seed);
	CUlaunchAttribute attr[1];
	memset(attr, 0, sizeof attr);
	attr[0].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
	attr[0].value.priority = (int)seed;
	CUlaunchConfig cfg = {c.g[0], c.g[1], c.g[2], c.b[0], c.b[1], c.b[2], c.shmem, c.s, attr, 1};
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(&cfg, handles[k], pb.ptrs, NULL) : CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	check_launch(what, variant, before, k, handles[k], &c, pb.ptrs, NULL, &pb);
	const struct fake_call *f = fake_last_call_of(variant);
	if (f) {
		CHECK(f->config == &cfg, "%s: config pointer %p, expected %p", what, (void *)f->config,
		      (void *)&cfg);
		CHECK(memcmp(&f->config_copy, &cfg, sizeof cfg) == 0, "%s: config contents differ", what);
	}
	if (r == CUDA_SUCCESS)
		expect_launches[k]++;
}

/* Allocation through fn: the fake's variant must be reached with these exact arguments. */
static CUdeviceptr alloc_via(alloc_fn fn, const char *variant, size_t size, const char *what)
{
	CUdeviceptr d = 0;
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(&d, size) : CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	CHECK(fake_calls(variant) == before + 1, "%s: %s not called exactly once", what, variant);
	const struct fake_call *f = fake_last_call_of(variant);
	CHECK(f && f->arg[0] == U(&d) && f->arg[1] == size && f->out == d,
	      "%s: %s got other arguments", what, variant);
	if (r == CUDA_SUCCESS)
		expect_alloc(d, size, API_BIT(GSA_API_CU_MEM_ALLOC), 0);
	return d;
}

static void free_via(free_fn fn, const char *variant, CUdeviceptr d, int known, const char *what)
{
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(d) : CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	CHECK(fake_calls(variant) == before + 1, "%s: %s not called exactly once", what, variant);
	const struct fake_call *f = fake_last_call_of(variant);
	CHECK(f && f->arg[0] == d, "%s: %s got another pointer", what, variant);
	if (r == CUDA_SUCCESS)
		expect_free(d, known);
}

static CUdeviceptr alloc_async_via(alloc_async_fn fn, const char *variant, size_t size,
				   CUstream s, const char *what)
{
	CUdeviceptr d = 0;
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(&d, size, s) : CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	CHECK(fake_calls(variant) == before + 1, "%s: %s not called exactly once", what, variant);
	const struct fake_call *f = fake_last_call_of(variant);
	CHECK(f && f->arg[0] == U(&d) && f->arg[1] == size && f->arg[2] == U(s) && f->out == d,
	      "%s: %s got other arguments", what, variant);
	if (r == CUDA_SUCCESS)
		expect_alloc(d, size, API_BIT(GSA_API_CU_MEM_ALLOC_ASYNC), U(s));
	return d;
}

static void free_async_via(free_async_fn fn, const char *variant, CUdeviceptr d, CUstream s,
			   const char *what)
{
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(d, s) : CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	CHECK(fake_calls(variant) == before + 1, "%s: %s not called exactly once", what, variant);
	const struct fake_call *f = fake_last_call_of(variant);
	CHECK(f && f->arg[0] == d && f->arg[1] == U(s), "%s: %s got other arguments", what, variant);
	if (r == CUDA_SUCCESS)
		expect_free(d, 1);
}

static void info_via(info_fn fn, const char *variant, const char *what)
{
	size_t fr = 1, tot = 2;
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn(&fr, &tot) : CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_SUCCESS, "%s: result %d", what, (int)r);
	CHECK(fake_calls(variant) == before + 1, "%s: %s not called exactly once", what, variant);
	const struct fake_call *f = fake_last_call_of(variant);
	CHECK(f && f->arg[0] == U(&fr) && f->arg[1] == U(&tot), "%s: %s got other pointers", what,
	      variant);
	CHECK(tot == FAKE_MEM_TOTAL, "%s: total %zu", what, tot);
	if (passthrough)
		CHECK(fr == FAKE_MEM_FREE, "%s: free %zu, expected %llu unmodified", what, fr,
		      FAKE_MEM_FREE);
	else
		CHECK(fr <= FAKE_MEM_FREE, "%s: free %zu above the driver's", what, fr);
}

/* A pointer handed out for a wrapped name: a wrapper (not the fake's own function) when the
 * library is active; either way calling it must reach exactly variant. */
static void check_wrapped(const char *what, void *p, const char *variant)
{
	CHECK(p != NULL, "%s: NULL", what);
	if (!passthrough)
		CHECK(p != fake_addr(variant), "%s: the fake's %s itself, not a wrapper", what, variant);
}

/* ---- interpose: points 1-4 ---- */

static void part_exports(void)
{
	/* Launches through every exported wrapper. */
	launch_via(x_launch, "cuLaunchKernel", K_ALPHA, 1, "export cuLaunchKernel #1");
	launch_via(x_launch, "cuLaunchKernel", K_ALPHA, 2, "export cuLaunchKernel #2");
	launch_via(x_launch_ptsz, "cuLaunchKernel_ptsz", K_BETA, 3, "export cuLaunchKernel_ptsz #1");
	launch_via(x_launch_ptsz, "cuLaunchKernel_ptsz", K_BETA, 4, "export cuLaunchKernel_ptsz #2");
	launch_via(x_launch, "cuLaunchKernel", K_GAMMA, 5, "export cuLaunchKernel (CUkernel)");
	launch_via(x_launch_ptsz, "cuLaunchKernel_ptsz", K_GAMMA, 6,
		   "export cuLaunchKernel_ptsz (CUkernel)");
	for (unsigned i = 0; i < 4; i++)
		launch_via(x_launch, "cuLaunchKernel", K_NOINFO, 7 + i, "export cuLaunchKernel noinfo");
	coop_via(x_coop, "cuLaunchCooperativeKernel", K_COOP, 11, "export cuLaunchCooperativeKernel");
	coop_via(x_coop_ptsz, "cuLaunchCooperativeKernel_ptsz", K_COOP, 12,
		 "export cuLaunchCooperativeKernel_ptsz");
	ex_via(x_launch_ex, "cuLaunchKernelEx", K_EX, 13, "export cuLaunchKernelEx");
	ex_via(x_launch_ex_ptsz, "cuLaunchKernelEx_ptsz", K_EX, 14, "export cuLaunchKernelEx_ptsz");
	ex_via(x_launch_ex, "cuLaunchKernelEx", K_EX, 15, "export cuLaunchKernelEx #2");

	/* No parameters at all. */
	{
		struct lcfg c = make_cfg(16);
		unsigned long before = fake_calls("cuLaunchKernel");
		CUresult r = x_launch(handles[K_EMPTY], c.g[0], c.g[1], c.g[2], c.b[0], c.b[1],
				      c.b[2], c.shmem, c.s, NULL, NULL);
		CHECK(r == CUDA_SUCCESS, "k_empty launch: %d", (int)r);
		check_launch("k_empty launch", "cuLaunchKernel", before, K_EMPTY, handles[K_EMPTY], &c,
			     NULL, NULL, NULL);
		if (r == CUDA_SUCCESS)
			expect_launches[K_EMPTY]++;
	}
	/* Parameters packed in extra. */
	{
		unsigned char buf[16] = {1, 2, 3};
		size_t sz = sizeof buf;
		void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, buf, CU_LAUNCH_PARAM_BUFFER_SIZE, &sz,
				 CU_LAUNCH_PARAM_END};
		struct lcfg c = make_cfg(17);
		unsigned long before = fake_calls("cuLaunchKernel");
		CUresult r = x_launch(handles[K_ALPHA], c.g[0], c.g[1], c.g[2], c.b[0], c.b[1],
				      c.b[2], c.shmem, c.s, NULL, extra);
		CHECK(r == CUDA_SUCCESS, "extra launch: %d", (int)r);
		check_launch("extra launch", "cuLaunchKernel", before, K_ALPHA, handles[K_ALPHA], &c,
			     NULL, extra, NULL);
		if (r == CUDA_SUCCESS)
			expect_launches[K_ALPHA]++;
	}
	/* Results come back unchanged. */
	{
		struct pbuf pb;
		fill_params(&pb, K_FAIL, 18);
		fake_fail_next("cuLaunchKernel", CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES);
		CUresult r = x_launch(handles[K_FAIL], 1, 1, 1, 1, 1, 1, 0, NULL, pb.ptrs, NULL);
		CHECK(r == CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES, "forced launch failure: %d", (int)r);
		fake_fail_next("cuLaunchKernel_ptsz", CUDA_ERROR_ILLEGAL_ADDRESS);
		r = x_launch_ptsz(handles[K_FAIL], 1, 1, 1, 1, 1, 1, 0, NULL, pb.ptrs, NULL);
		CHECK(r == CUDA_ERROR_ILLEGAL_ADDRESS, "forced _ptsz launch failure: %d", (int)r);
		fake_fail_next("cuLaunchCooperativeKernel", CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
		r = x_coop(handles[K_FAIL], 1, 1, 1, 1, 1, 1, 0, NULL, pb.ptrs);
		CHECK(r == CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE, "forced coop failure: %d", (int)r);
		CUlaunchConfig cfg = {1, 1, 1, 1, 1, 1, 0, NULL, NULL, 0};
		fake_fail_next("cuLaunchKernelEx_ptsz", CUDA_ERROR_INVALID_CLUSTER_SIZE);
		r = x_launch_ex_ptsz(&cfg, handles[K_FAIL], pb.ptrs, NULL);
		CHECK(r == CUDA_ERROR_INVALID_CLUSTER_SIZE, "forced Ex failure: %d", (int)r);
		/* A NULL config is the driver's to reject. */
		unsigned long before = fake_calls("cuLaunchKernelEx");
		r = x_launch_ex(NULL, handles[K_FAIL], pb.ptrs, NULL);
		CHECK(r == CUDA_ERROR_INVALID_VALUE, "Ex with NULL config: %d", (int)r);
		CHECK(fake_calls("cuLaunchKernelEx") == before + 1, "Ex with NULL config not forwarded");
		/* A handle the driver does not know. */
		void *bogus = (void *)(uintptr_t)0x1234;
		before = fake_calls("cuLaunchKernel");
		r = x_launch((CUfunction)bogus, 1, 1, 1, 1, 1, 1, 0, NULL, pb.ptrs, NULL);
		CHECK(r == CUDA_ERROR_INVALID_HANDLE, "bogus handle: %d", (int)r);
		const struct fake_call *f = fake_last_call_of("cuLaunchKernel");
		CHECK(fake_calls("cuLaunchKernel") == before + 1 && f && f->handle == bogus,
		      "bogus handle not forwarded as is");
	}

	/* Allocations. */
	CUdeviceptr d1 = alloc_via(x_alloc, "cuMemAlloc_v2", 1000, "export cuMemAlloc_v2");
	{
		CUdeviceptr d = 0xabc;
		fake_fail_next("cuMemAlloc_v2", CUDA_ERROR_OUT_OF_MEMORY);
		CUresult r = x_alloc(&d, 1 << 20);
		CHECK(r == CUDA_ERROR_OUT_OF_MEMORY, "forced alloc failure: %d", (int)r);
		CHECK(d == 0xabc, "failed alloc changed *dptr to %#llx", (unsigned long long)d);
		r = x_alloc(NULL, 64);
		CHECK(r == CUDA_ERROR_INVALID_VALUE, "alloc into NULL: %d", (int)r);
		r = x_alloc(&d, 0);
		CHECK(r == CUDA_ERROR_INVALID_VALUE, "alloc of 0 bytes: %d", (int)r);
	}
	CUstream s1 = (CUstream)(uintptr_t)0x7100, s2 = (CUstream)(uintptr_t)0x7200;
	CUdeviceptr d2 = alloc_async_via(x_alloc_async, "cuMemAllocAsync", 2048, s1,
					 "export cuMemAllocAsync");
	CUdeviceptr d3 = alloc_async_via(x_alloc_async_ptsz, "cuMemAllocAsync_ptsz", 4096, s2,
					 "export cuMemAllocAsync_ptsz");
	free_via(x_free, "cuMemFree_v2", d1, 1, "export cuMemFree_v2");
	free_async_via(x_free_async, "cuMemFreeAsync", d2, s1, "export cuMemFreeAsync");
	free_async_via(x_free_async_ptsz, "cuMemFreeAsync_ptsz", d3, s2, "export cuMemFreeAsync_ptsz");
	{
		CUresult r = x_free((CUdeviceptr)0xdead0000ull);
		CHECK(r == CUDA_ERROR_INVALID_VALUE, "free of a bogus pointer: %d", (int)r);
		r = x_free_async((CUdeviceptr)0xdead0000ull, s1);
		CHECK(r == CUDA_ERROR_INVALID_VALUE, "async free of a bogus pointer: %d", (int)r);
		/* A failed free keeps the allocation known. */
		CUdeviceptr d4 = alloc_via(x_alloc, "cuMemAlloc_v2", 333, "alloc before failed free");
		fake_fail_next("cuMemFree_v2", CUDA_ERROR_INVALID_CONTEXT);
		r = x_free(d4);
		CHECK(r == CUDA_ERROR_INVALID_CONTEXT, "forced free failure: %d", (int)r);
		free_via(x_free, "cuMemFree_v2", d4, 1, "free after failed free");
	}
	/* The 32-bit v1 ABI is not the library's: a v1 allocation is unknown to it. */
	{
		unsigned p1 = 0, p2 = 0;
		unsigned long before = fake_calls("cuMemAlloc");
		CUresult r = x_alloc_v1(&p1, 256);
		CHECK(r == CUDA_SUCCESS && p1 >= FAKE_DPTR_V1_BASE, "v1 alloc: %d %#x", (int)r, p1);
		CHECK(fake_calls("cuMemAlloc") == before + 1, "v1 cuMemAlloc not reached");
		free_via(x_free, "cuMemFree_v2", p1, 0, "v2 free of a v1 allocation");
		r = x_alloc_v1(&p2, 512);
		CHECK(r == CUDA_SUCCESS, "v1 alloc #2: %d", (int)r);
		before = fake_calls("cuMemFree");
		r = x_free_v1(p2);
		CHECK(r == CUDA_SUCCESS && fake_calls("cuMemFree") == before + 1, "v1 free: %d", (int)r);
		unsigned f1 = 0, t1 = 0;
		r = x_info_v1(&f1, &t1);
		CHECK(r == CUDA_SUCCESS && f1 == FAKE_MEM_FREE_V1 && t1 == FAKE_MEM_TOTAL_V1,
		      "v1 cuMemGetInfo: %d %#x %#x", (int)r, f1, t1);
	}
	info_via(x_info, "cuMemGetInfo_v2", "export cuMemGetInfo_v2");
	{
		size_t fr = 12345, tot = 12345;
		fake_fail_next("cuMemGetInfo_v2", CUDA_ERROR_NOT_INITIALIZED);
		CUresult r = x_info(&fr, &tot);
		CHECK(r == CUDA_ERROR_NOT_INITIALIZED, "forced cuMemGetInfo_v2 failure: %d", (int)r);
		CHECK(fr == 12345 && tot == 12345, "failed cuMemGetInfo_v2 changed outputs: %zu %zu",
		      fr, tot);
	}
}

static const char *const wrapped_exports[] = {
	"cuLaunchKernel", "cuLaunchKernel_ptsz", "cuLaunchKernelEx", "cuLaunchKernelEx_ptsz",
	"cuLaunchCooperativeKernel", "cuLaunchCooperativeKernel_ptsz", "cuMemAlloc_v2",
	"cuMemFree_v2", "cuMemAllocAsync", "cuMemAllocAsync_ptsz", "cuMemFreeAsync",
	"cuMemFreeAsync_ptsz", "cuMemGetInfo_v2", "cuGetProcAddress", "cuGetProcAddress_v2",
	"cuModuleUnload", "cuLibraryUnload",
};

static void part_dlsym(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	CHECK(h != NULL, "libcuda.so.1 not loaded: %s", dlerror());
	if (!h)
		return;
	for (size_t i = 0; i < sizeof wrapped_exports / sizeof wrapped_exports[0]; i++) {
		const char *n = wrapped_exports[i];
		void *p = dlsym(h, n);
		char what[96];
		snprintf(what, sizeof what, "dlsym(libcuda, %s)", n);
		check_wrapped(what, p, n);
		CHECK(dlsym(h, n) == p, "%s: a second look-up gave another pointer", what);
	}
	launch_via((launch_fn)dlsym(h, "cuLaunchKernel"), "cuLaunchKernel", K_ALPHA, 21,
		   "dlsym cuLaunchKernel");
	launch_via((launch_fn)dlsym(h, "cuLaunchKernel_ptsz"), "cuLaunchKernel_ptsz", K_BETA, 22,
		   "dlsym cuLaunchKernel_ptsz");
	ex_via((launch_ex_fn)dlsym(h, "cuLaunchKernelEx"), "cuLaunchKernelEx", K_EX, 23,
	       "dlsym cuLaunchKernelEx");
	ex_via((launch_ex_fn)dlsym(h, "cuLaunchKernelEx_ptsz"), "cuLaunchKernelEx_ptsz", K_EX, 24,
	       "dlsym cuLaunchKernelEx_ptsz");
	coop_via((coop_fn)dlsym(h, "cuLaunchCooperativeKernel"), "cuLaunchCooperativeKernel", K_COOP,
		 25, "dlsym cuLaunchCooperativeKernel");
	coop_via((coop_fn)dlsym(h, "cuLaunchCooperativeKernel_ptsz"),
		 "cuLaunchCooperativeKernel_ptsz", K_COOP, 26, "dlsym cuLaunchCooperativeKernel_ptsz");
	CUdeviceptr d = alloc_via((alloc_fn)dlsym(h, "cuMemAlloc_v2"), "cuMemAlloc_v2", 777,
				  "dlsym cuMemAlloc_v2");
	free_via((free_fn)dlsym(h, "cuMemFree_v2"), "cuMemFree_v2", d, 1, "dlsym cuMemFree_v2");
	CUstream s = (CUstream)(uintptr_t)0x7300;
	d = alloc_async_via((alloc_async_fn)dlsym(h, "cuMemAllocAsync"), "cuMemAllocAsync", 100, s,
			    "dlsym cuMemAllocAsync");
	free_async_via((free_async_fn)dlsym(h, "cuMemFreeAsync"), "cuMemFreeAsync", d, s,
		       "dlsym cuMemFreeAsync");
	d = alloc_async_via((alloc_async_fn)dlsym(h, "cuMemAllocAsync_ptsz"), "cuMemAllocAsync_ptsz",
			    200, s, "dlsym cuMemAllocAsync_ptsz");
	free_async_via((free_async_fn)dlsym(h, "cuMemFreeAsync_ptsz"), "cuMemFreeAsync_ptsz", d, s,
		       "dlsym cuMemFreeAsync_ptsz");
	info_via((info_fn)dlsym(h, "cuMemGetInfo_v2"), "cuMemGetInfo_v2", "dlsym cuMemGetInfo_v2");

	/* The resolvers from dlsym: their results are wrapped too. */
	get_proc_fn gp = (get_proc_fn)dlsym(h, "cuGetProcAddress_v2");
	if (gp) {
		void *fn = NULL;
		CUdriverProcAddressQueryResult st = 99;
		unsigned long before = fake_calls("cuGetProcAddress_v2");
		CUresult r = gp("cuLaunchKernel", &fn, 13000, PTDS, &st);
		const struct fake_call *f = fake_last_call_of("cuGetProcAddress_v2");
		CHECK(r == CUDA_SUCCESS && st == CU_GET_PROC_ADDRESS_SUCCESS,
		      "dlsym'd cuGetProcAddress_v2: %d %d", (int)r, (int)st);
		CHECK(fake_calls("cuGetProcAddress_v2") == before + 1 && f &&
			      strcmp(f->symbol, "cuLaunchKernel") == 0 && f->arg[2] == 13000 &&
			      f->arg[3] == PTDS && f->arg[1] == U(&fn) && f->arg[4] == U(&st),
		      "dlsym'd cuGetProcAddress_v2 did not forward exactly");
		check_wrapped("dlsym'd cuGetProcAddress_v2 -> cuLaunchKernel_ptsz", fn,
			      "cuLaunchKernel_ptsz");
		launch_via((launch_fn)fn, "cuLaunchKernel_ptsz", K_PROC, 27,
			   "dlsym'd cuGetProcAddress_v2 -> cuLaunchKernel_ptsz");
	}
	get_proc_legacy_fn gpl = (get_proc_legacy_fn)dlsym(h, "cuGetProcAddress");
	if (gpl) {
		void *fn = NULL;
		unsigned long before = fake_calls("cuGetProcAddress");
		CUresult r = gpl("cuMemAlloc", &fn, 12000, 0);
		const struct fake_call *f = fake_last_call_of("cuGetProcAddress");
		CHECK(r == CUDA_SUCCESS, "dlsym'd cuGetProcAddress: %d", (int)r);
		CHECK(fake_calls("cuGetProcAddress") == before + 1 && f &&
			      strcmp(f->symbol, "cuMemAlloc") == 0 && f->arg[2] == 12000 &&
			      f->arg[3] == 0 && f->arg[1] == U(&fn) && f->pfn_out == fake_addr("cuMemAlloc_v2"),
		      "dlsym'd cuGetProcAddress did not forward exactly");
		check_wrapped("dlsym'd cuGetProcAddress -> cuMemAlloc_v2", fn, "cuMemAlloc_v2");
		d = alloc_via((alloc_fn)fn, "cuMemAlloc_v2", 4242, "dlsym'd cuGetProcAddress -> cuMemAlloc_v2");
		free_via(x_free, "cuMemFree_v2", d, 1, "free of a legacy-resolved allocation");
	}

	/* Names the library does not wrap come back as they are. */
	static const char *const plain[] = {"cuCtxGetDevice", "cuMemAlloc", "cuMemFree",
					    "cuMemGetInfo", "cuFuncGetName", "cuDeviceGetName",
					    "cuStreamIsCapturing"};
	for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
		void *p = dlsym(h, plain[i]);
		CHECK(p != NULL && p == fake_addr(plain[i]), "dlsym(libcuda, %s) = %p, expected %p",
		      plain[i], p, fake_addr(plain[i]));
	}
	dlerror();
	void *missing = dlsym(h, "cuNoSuchFunction_gsa_test");
	const char *err = dlerror();
	CHECK(missing == NULL && err != NULL, "missing name: %p, dlerror %s", missing,
	      err ? err : "(null)");
	/* RTLD_DEFAULT and RTLD_NEXT keep the caller's view: from here both find the first
	 * definition after this program, the same one its own PLT calls reach. */
	void *pd = dlsym(RTLD_DEFAULT, "cuLaunchKernel");
	void *pn = dlsym(RTLD_NEXT, "cuLaunchKernel");
	CHECK(pd == (void *)x_launch, "dlsym(RTLD_DEFAULT, cuLaunchKernel) = %p, the PLT reaches %p",
	      pd, (void *)x_launch);
	CHECK(pn == (void *)x_launch, "dlsym(RTLD_NEXT, cuLaunchKernel) = %p, the PLT reaches %p", pn,
	      (void *)x_launch);
	launch_via((launch_fn)pd, "cuLaunchKernel", K_ALPHA, 28, "dlsym(RTLD_DEFAULT) cuLaunchKernel");
	void *pc = dlsym(RTLD_DEFAULT, "cuCtxGetDevice");
	CHECK(pc == fake_addr("cuCtxGetDevice"), "dlsym(RTLD_DEFAULT, cuCtxGetDevice) = %p", pc);
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	CHECK(libc && dlsym(libc, "malloc") == dlsym(RTLD_DEFAULT, "malloc"),
	      "dlsym(libc, malloc) differs from RTLD_DEFAULT's");
}

/* What cuGetProcAddress(_v2) must hand out for (symbol, version, flags). */
enum use { USE_NONE, USE_LAUNCH, USE_EX, USE_COOP, USE_ALLOC, USE_FREE, USE_ALLOC_ASYNC,
	   USE_FREE_ASYNC, USE_INFO, USE_ALLOC_V1 };
struct proc_case {
	const char *symbol;
	int version;
	cuuint64_t flags;
	const char *variant; /* what the fake resolves it to */
	int wrapped;
	enum use use;
};

static const struct proc_case proc_cases[] = {
	{"cuLaunchKernel", 13000, 0, "cuLaunchKernel", 1, USE_LAUNCH},
	{"cuLaunchKernel", 13000, LEGACY, "cuLaunchKernel", 1, USE_LAUNCH},
	{"cuLaunchKernel", 13000, PTDS, "cuLaunchKernel_ptsz", 1, USE_LAUNCH},
	{"cuLaunchKernel", 12000, PTDS, "cuLaunchKernel_ptsz", 1, USE_LAUNCH},
	{"cuLaunchKernelEx", 11060, 0, "cuLaunchKernelEx", 1, USE_EX},
	{"cuLaunchKernelEx", 12000, PTDS, "cuLaunchKernelEx_ptsz", 1, USE_EX},
	{"cuLaunchCooperativeKernel", 13000, 0, "cuLaunchCooperativeKernel", 1, USE_COOP},
	{"cuLaunchCooperativeKernel", 13000, PTDS, "cuLaunchCooperativeKernel_ptsz", 1, USE_COOP},
	{"cuMemAlloc", 13000, 0, "cuMemAlloc_v2", 1, USE_ALLOC},
	{"cuMemAlloc", 3020, 0, "cuMemAlloc_v2", 1, USE_ALLOC},
	{"cuMemAlloc", 3000, 0, "cuMemAlloc", 0, USE_ALLOC_V1},
	{"cuMemFree", 13000, PTDS, "cuMemFree_v2", 1, USE_FREE},
	{"cuMemFree", 3000, 0, "cuMemFree", 0, USE_NONE},
	{"cuMemGetInfo", 13000, 0, "cuMemGetInfo_v2", 1, USE_INFO},
	{"cuMemGetInfo", 3000, 0, "cuMemGetInfo", 0, USE_NONE},
	{"cuMemAllocAsync", 13000, 0, "cuMemAllocAsync", 1, USE_ALLOC_ASYNC},
	{"cuMemAllocAsync", 13000, PTDS, "cuMemAllocAsync_ptsz", 1, USE_ALLOC_ASYNC},
	{"cuMemFreeAsync", 13000, 0, "cuMemFreeAsync", 1, USE_FREE_ASYNC},
	{"cuMemFreeAsync", 13000, PTDS, "cuMemFreeAsync_ptsz", 1, USE_FREE_ASYNC},
	{"cuCtxGetDevice", 13000, 0, "cuCtxGetDevice", 0, USE_NONE},
	{"cuFuncGetName", 13000, 0, "cuFuncGetName", 0, USE_NONE},
	{"cuStreamIsCapturing", 13000, PTDS, "cuStreamIsCapturing_ptsz", 0, USE_NONE},
};

static void use_pointer(void *fn, const struct proc_case *c, unsigned seed, const char *what)
{
	static CUdeviceptr pending, pending_async;
	CUstream s = (CUstream)(uintptr_t)0x7400;
	switch (c->use) {
	case USE_NONE:
		break;
	case USE_LAUNCH:
		launch_via((launch_fn)fn, c->variant, K_PROC, seed, what);
		break;
	case USE_EX:
		ex_via((launch_ex_fn)fn, c->variant, K_PROC, seed, what);
		break;
	case USE_COOP:
		coop_via((coop_fn)fn, c->variant, K_PROC, seed, what);
		break;
	case USE_ALLOC:
		if (pending)
			free_via(x_free, "cuMemFree_v2", pending, 1, what);
		pending = alloc_via((alloc_fn)fn, c->variant, 1000 + seed, what);
		break;
	case USE_FREE:
		if (!pending)
			pending = alloc_via(x_alloc, "cuMemAlloc_v2", 64, what);
		free_via((free_fn)fn, c->variant, pending, 1, what);
		pending = 0;
		break;
	case USE_ALLOC_ASYNC:
		if (pending_async)
			free_async_via(x_free_async, "cuMemFreeAsync", pending_async, s, what);
		pending_async = alloc_async_via((alloc_async_fn)fn, c->variant, 2000 + seed, s, what);
		break;
	case USE_FREE_ASYNC:
		if (!pending_async)
			pending_async = alloc_async_via(x_alloc_async, "cuMemAllocAsync", 64, s, what);
		free_async_via((free_async_fn)fn, c->variant, pending_async, s, what);
		pending_async = 0;
		break;
	case USE_INFO:
		info_via((info_fn)fn, c->variant, what);
		break;
	case USE_ALLOC_V1: {
		unsigned p = 0;
		unsigned long before = fake_calls("cuMemAlloc");
		CUresult r = ((alloc_v1_fn)fn)(&p, 128);
		CHECK(r == CUDA_SUCCESS && fake_calls("cuMemAlloc") == before + 1, "%s: %d", what, (int)r);
		before = fake_calls("cuMemFree");
		r = x_free_v1(p);
		CHECK(r == CUDA_SUCCESS && fake_calls("cuMemFree") == before + 1, "%s: v1 free %d", what,
		      (int)r);
		break;
	}
	}
}

/* Resolves through resolver (the exported cuGetProcAddress_v2, or a wrapper of it). */
static void *resolve_case(get_proc_fn resolver, const char *via, const struct proc_case *c,
			  unsigned seed)
{
	char what[160];
	snprintf(what, sizeof what, "%s(%s, %d, %llu)", via, c->symbol, c->version,
		 (unsigned long long)c->flags);
	void *fn = (void *)(uintptr_t)1;
	CUdriverProcAddressQueryResult st = 99;
	unsigned long before = fake_calls("cuGetProcAddress_v2");
	CUresult r = resolver(c->symbol, &fn, c->version, c->flags, &st);
	CHECK(r == CUDA_SUCCESS && st == CU_GET_PROC_ADDRESS_SUCCESS, "%s: result %d status %d", what,
	      (int)r, (int)st);
	const struct fake_call *f = fake_last_call_of("cuGetProcAddress_v2");
	CHECK(fake_calls("cuGetProcAddress_v2") == before + 1, "%s: resolver called %lu times", what,
	      fake_calls("cuGetProcAddress_v2") - before);
	CHECK(f && strcmp(f->symbol, c->symbol) == 0 && f->arg[1] == U(&fn) &&
		      f->arg[2] == (uint64_t)c->version && f->arg[3] == c->flags && f->arg[4] == U(&st),
	      "%s: the real resolver got other arguments", what);
	CHECK(f && f->pfn_out == fake_addr(c->variant), "%s: the fake resolved another variant", what);
	if (c->wrapped)
		check_wrapped(what, fn, c->variant);
	else
		CHECK(fn == fake_addr(c->variant), "%s: %p, expected the driver's own %p", what, fn,
		      fake_addr(c->variant));
	/* The same look-up again gives the same pointer. */
	void *again = NULL;
	r = resolver(c->symbol, &again, c->version, c->flags, &st);
	CHECK(r == CUDA_SUCCESS && again == fn, "%s: second look-up gave %p, first %p", what, again, fn);
	use_pointer(fn, c, seed, what);
	return fn;
}

static void check_failed_lookups(get_proc_fn resolver, const char *via)
{
	void *fn = (void *)(uintptr_t)1;
	CUdriverProcAddressQueryResult st = 99;
	CUresult r = resolver("cuLaunchKernelEx", &fn, 11050, 0, &st);
	CHECK(r == CUDA_ERROR_NOT_FOUND && st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT &&
		      fn == NULL,
	      "%s(cuLaunchKernelEx, 11050): %d, status %d, pfn %p", via, (int)r, (int)st, fn);
	fn = (void *)(uintptr_t)1;
	st = 99;
	r = resolver("cuNoSuchFunction_gsa_test", &fn, 13000, 0, &st);
	CHECK(r == CUDA_ERROR_NOT_FOUND && st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND && fn == NULL,
	      "%s(unknown): %d, status %d, pfn %p", via, (int)r, (int)st, fn);
	fn = (void *)(uintptr_t)0x77;
	st = 42;
	fake_fail_next("cuGetProcAddress_v2", CUDA_ERROR_NOT_INITIALIZED);
	r = resolver("cuLaunchKernel", &fn, 13000, 0, &st);
	CHECK(r == CUDA_ERROR_NOT_INITIALIZED && fn == (void *)(uintptr_t)0x77 && st == 42,
	      "%s forced failure: %d, pfn %p, status %d (left as the driver left them?)", via, (int)r,
	      fn, (int)st);
	fn = (void *)(uintptr_t)0x78;
	r = resolver("cuLaunchKernel", &fn, 13000, 4, &st);
	CHECK(r == CUDA_ERROR_INVALID_VALUE && fn == (void *)(uintptr_t)0x78,
	      "%s with invalid flags: %d, pfn %p", via, (int)r, fn);
}

static void part_getproc(void)
{
	unsigned seed = 40;
	for (size_t i = 0; i < sizeof proc_cases / sizeof proc_cases[0]; i++)
		resolve_case(x_get_proc, "cuGetProcAddress_v2", &proc_cases[i], seed++);
	check_failed_lookups(x_get_proc, "cuGetProcAddress_v2");

	/* cuGetProcAddress resolved through itself: a wrapper whose results are wrapped. */
	static const struct proc_case self = {"cuGetProcAddress", 13000, 0, "cuGetProcAddress_v2", 1,
					      USE_NONE};
	get_proc_fn gp = (get_proc_fn)resolve_case(x_get_proc, "cuGetProcAddress_v2", &self, seed++);
	if (gp && gp != (get_proc_fn)(uintptr_t)1) {
		void *direct = NULL, *via = NULL;
		CUdriverProcAddressQueryResult st;
		x_get_proc("cuLaunchKernel", &direct, 13000, PTDS, &st);
		for (size_t i = 0; i < sizeof proc_cases / sizeof proc_cases[0]; i++)
			resolve_case(gp, "resolved cuGetProcAddress_v2", &proc_cases[i], seed++);
		check_failed_lookups(gp, "resolved cuGetProcAddress_v2");
		gp("cuLaunchKernel", &via, 13000, PTDS, &st);
		CHECK(via == direct, "the same look-up through the resolved resolver gave %p, directly %p",
		      via, direct);
		get_proc_fn gp2 = (get_proc_fn)resolve_case(gp, "resolved cuGetProcAddress_v2", &self,
							     seed++);
		CHECK(gp2 == gp, "cuGetProcAddress resolved through itself: %p, first %p", (void *)gp2,
		      (void *)gp);
	}

	/* The legacy 4-argument resolver: exported, and as resolved before CUDA 12. */
	{
		void *fn = (void *)(uintptr_t)1;
		unsigned long before = fake_calls("cuGetProcAddress");
		CUresult r = x_get_proc_legacy("cuLaunchKernelEx", &fn, 12000, PTDS);
		const struct fake_call *f = fake_last_call_of("cuGetProcAddress");
		CHECK(r == CUDA_SUCCESS, "exported cuGetProcAddress: %d", (int)r);
		CHECK(fake_calls("cuGetProcAddress") == before + 1 && f &&
			      strcmp(f->symbol, "cuLaunchKernelEx") == 0 && f->arg[1] == U(&fn) &&
			      f->arg[2] == 12000 && f->arg[3] == PTDS &&
			      f->pfn_out == fake_addr("cuLaunchKernelEx_ptsz"),
		      "exported cuGetProcAddress did not forward exactly");
		check_wrapped("exported cuGetProcAddress(cuLaunchKernelEx, PTDS)", fn,
			      "cuLaunchKernelEx_ptsz");
		ex_via((launch_ex_fn)fn, "cuLaunchKernelEx_ptsz", K_PROC, seed++,
		       "exported cuGetProcAddress -> cuLaunchKernelEx_ptsz");
		fn = (void *)(uintptr_t)1;
		r = x_get_proc_legacy("cuLaunchKernelEx", &fn, 11000, 0);
		CHECK(r == CUDA_ERROR_NOT_FOUND && fn == NULL,
		      "exported cuGetProcAddress(cuLaunchKernelEx, 11000): %d %p", (int)r, fn);
		fn = NULL;
		r = x_get_proc_legacy("cuMemAlloc", &fn, 3000, 0);
		CHECK(r == CUDA_SUCCESS && fn == fake_addr("cuMemAlloc"),
		      "exported cuGetProcAddress(cuMemAlloc, 3000): %d %p", (int)r, fn);

		get_proc_legacy_fn gl = NULL;
		CUdriverProcAddressQueryResult st = 99;
		r = x_get_proc("cuGetProcAddress", (void **)&gl, 11030, 0, &st);
		CHECK(r == CUDA_SUCCESS && fake_last_call_of("cuGetProcAddress_v2") &&
			      fake_last_call_of("cuGetProcAddress_v2")->pfn_out ==
				      fake_addr("cuGetProcAddress"),
		      "cuGetProcAddress at 11030: %d", (int)r);
		check_wrapped("cuGetProcAddress(cuGetProcAddress, 11030)", (void *)gl,
			      "cuGetProcAddress");
		if (gl) {
			fn = NULL;
			before = fake_calls("cuGetProcAddress");
			r = gl("cuLaunchKernel", &fn, 11030, 0);
			CHECK(r == CUDA_SUCCESS && fake_calls("cuGetProcAddress") == before + 1,
			      "legacy resolver resolved at 11030: %d", (int)r);
			check_wrapped("legacy resolver -> cuLaunchKernel", fn, "cuLaunchKernel");
			launch_via((launch_fn)fn, "cuLaunchKernel", K_PROC, seed++,
				   "legacy resolver -> cuLaunchKernel");
			fn = NULL;
			r = gl("cuMemFree", &fn, 3000, 0);
			CHECK(r == CUDA_SUCCESS && fn == fake_addr("cuMemFree"),
			      "legacy resolver cuMemFree at 3000: %p", fn);
		}
	}
}

/* Host stubs standing for kernels: only their addresses matter. */
static const char host_rt[1], host_rt_ex[1], host_unregistered[1];

static void rt_launch_via(cudaError_t (*fn)(const void *, dim3, dim3, void **, size_t,
					     cudaStream_t),
			  const char *rt_name, const char *variant, unsigned seed, const char *what)
{
	struct pbuf pb;
	fill_params(&pb, K_RT, seed);
	struct lcfg c = make_cfg(seed);
	dim3 g = {c.g[0], c.g[1], c.g[2]}, b = {c.b[0], c.b[1], c.b[2]};
	unsigned long rt_before = fake_rt_calls(rt_name), before = fake_calls(variant);
	cudaError_t r = fn(host_rt, g, b, pb.ptrs, c.shmem, (cudaStream_t)c.s);
	CHECK(r == cudaSuccess, "%s: %d", what, (int)r);
	CHECK(fake_rt_calls(rt_name) == rt_before + 1, "%s: runtime %s called %lu times", what,
	      rt_name, fake_rt_calls(rt_name) - rt_before);
	check_launch(what, variant, before, K_RT, handles[K_RT], &c, pb.ptrs, NULL, &pb);
	if (r == cudaSuccess)
		expect_launches[K_RT]++;
}

static void rt_launch_ex_via(cudaError_t (*fn)(const cudaLaunchConfig_t *, const void *, void **),
			     const char *rt_name, const char *variant, unsigned seed,
			     const char *what)
{
	struct pbuf pb;
	fill_params(&pb, K_RT_EX, seed);
	struct lcfg c = make_cfg(seed);
	cudaLaunchConfig_t cfg = {{c.g[0], c.g[1], c.g[2]}, {c.b[0], c.b[1], c.b[2]}, c.shmem,
				  (cudaStream_t)c.s, NULL, 0};
	unsigned long rt_before = fake_rt_calls(rt_name), before = fake_calls(variant);
	cudaError_t r = fn(&cfg, host_rt_ex, pb.ptrs);
	CHECK(r == cudaSuccess, "%s: %d", what, (int)r);
	CHECK(fake_rt_calls(rt_name) == rt_before + 1, "%s: runtime %s called %lu times", what,
	      rt_name, fake_rt_calls(rt_name) - rt_before);
	check_launch(what, variant, before, K_RT_EX, handles[K_RT_EX], &c, pb.ptrs, NULL, &pb);
	if (r == cudaSuccess)
		expect_launches[K_RT_EX]++;
}

static void *rt_resolve(const char *rt_name, const char *symbol, int by_version, int ptsz,
			unsigned version, unsigned long long flags, const char *variant, int wrapped)
{
	char what[160];
	snprintf(what, sizeof what, "%s(%s, %u, %llu)", rt_name, symbol, version, flags);
	void *fn = (void *)(uintptr_t)1;
	enum cudaDriverEntryPointQueryResult st = 99;
	unsigned long rt_before = fake_rt_calls(rt_name), before = fake_calls("cuGetProcAddress_v2");
	cudaError_t r;
	if (by_version)
		r = (ptsz ? x_rt_entry_ver_ptsz : x_rt_entry_ver)(symbol, &fn, version, flags, &st);
	else
		r = (ptsz ? x_rt_entry_ptsz : x_rt_entry)(symbol, &fn, flags, &st);
	CHECK(r == cudaSuccess && st == cudaDriverEntryPointSuccess, "%s: %d status %d", what, (int)r,
	      (int)st);
	CHECK(fake_rt_calls(rt_name) == rt_before + 1, "%s: runtime entry not called once", what);
	CHECK(fake_calls("cuGetProcAddress_v2") == before + 1, "%s: driver resolver not called once",
	      what);
	const struct fake_call *f = fake_last_call_of("cuGetProcAddress_v2");
	CHECK(f && strcmp(f->symbol, symbol) == 0 && f->pfn_out == fake_addr(variant),
	      "%s: the driver resolved another variant", what);
	if (wrapped)
		check_wrapped(what, fn, variant);
	else
		CHECK(fn == fake_addr(variant), "%s: %p, expected the driver's own %p", what, fn,
		      fake_addr(variant));
	return fn;
}

static void part_runtime(void)
{
	fake_rt_register(host_rt, (CUkernel)handles[K_RT]);
	fake_rt_register(host_rt_ex, (CUkernel)handles[K_RT_EX]);
	for (unsigned i = 0; i < 3; i++)
		rt_launch_via(x_rt_launch, "cudaLaunchKernel", "cuLaunchKernel", 60 + i,
			      "cudaLaunchKernel");
	for (unsigned i = 0; i < 2; i++)
		rt_launch_via(x_rt_launch_ptsz, "cudaLaunchKernel_ptsz", "cuLaunchKernel_ptsz", 63 + i,
			      "cudaLaunchKernel_ptsz");
	for (unsigned i = 0; i < 2; i++)
		rt_launch_ex_via(x_rt_launch_ex, "cudaLaunchKernelExC", "cuLaunchKernelEx", 65 + i,
				 "cudaLaunchKernelExC");
	rt_launch_ex_via(x_rt_launch_ex_ptsz, "cudaLaunchKernelExC_ptsz", "cuLaunchKernelEx_ptsz", 67,
			 "cudaLaunchKernelExC_ptsz");
	{
		dim3 one = {1, 1, 1};
		unsigned long before = fake_calls("cuLaunchKernel");
		cudaError_t r = x_rt_launch(host_unregistered, one, one, NULL, 0, NULL);
		CHECK(r == cudaErrorInvalidDeviceFunction && fake_calls("cuLaunchKernel") == before,
		      "cudaLaunchKernel of an unregistered function: %d", (int)r);
		const char *name = NULL;
		r = x_rt_func_name(&name, host_rt);
		CHECK(r == cudaSuccess && name && strcmp(name, "k_rt") == 0, "cudaFuncGetName: %d %s",
		      (int)r, name ? name : "(null)");
	}

	/* Allocations through the runtime. */
	{
		void *p = NULL;
		unsigned long rt_before = fake_rt_calls("cudaMalloc"), before = fake_calls("cuMemAlloc_v2");
		cudaError_t r = x_rt_malloc(&p, 4096);
		CHECK(r == cudaSuccess && p, "cudaMalloc: %d", (int)r);
		CHECK(fake_rt_calls("cudaMalloc") == rt_before + 1 &&
			      fake_calls("cuMemAlloc_v2") == before + 1,
		      "cudaMalloc did not reach the runtime and then cuMemAlloc_v2 once");
		const struct fake_call *f = fake_last_call_of("cuMemAlloc_v2");
		CHECK(f && f->out == U(p) && f->arg[1] == 4096, "cudaMalloc: driver saw another call");
		if (r == cudaSuccess)
			expect_alloc(U(p), 4096, API_BIT(GSA_API_CU_MEM_ALLOC) | API_BIT(GSA_API_CUDA_MALLOC),
				     0);
		rt_before = fake_rt_calls("cudaFree");
		before = fake_calls("cuMemFree_v2");
		r = x_rt_free(p);
		CHECK(r == cudaSuccess && fake_rt_calls("cudaFree") == rt_before + 1 &&
			      fake_calls("cuMemFree_v2") == before + 1,
		      "cudaFree: %d", (int)r);
		if (r == cudaSuccess)
			expect_free(U(p), 1);
		r = x_rt_malloc(NULL, 16);
		CHECK(r == cudaErrorInvalidValue, "cudaMalloc(NULL): %d", (int)r);
		r = x_rt_free((void *)(uintptr_t)0xdead0000ull);
		CHECK(r == cudaErrorInvalidValue, "cudaFree of a bogus pointer: %d", (int)r);

		cudaStream_t s = (cudaStream_t)(uintptr_t)0x7500;
		static const struct {
			cudaError_t (*m)(void **, size_t, cudaStream_t);
			cudaError_t (*f)(void *, cudaStream_t);
			const char *rt_m, *rt_f, *drv_m, *drv_f;
		} asyncs[] = {
			{x_rt_malloc_async, x_rt_free_async, "cudaMallocAsync", "cudaFreeAsync",
			 "cuMemAllocAsync", "cuMemFreeAsync"},
			{x_rt_malloc_async_ptsz, x_rt_free_async_ptsz, "cudaMallocAsync_ptsz",
			 "cudaFreeAsync_ptsz", "cuMemAllocAsync_ptsz", "cuMemFreeAsync_ptsz"},
		};
		for (size_t i = 0; i < 2; i++) {
			p = NULL;
			rt_before = fake_rt_calls(asyncs[i].rt_m);
			before = fake_calls(asyncs[i].drv_m);
			r = asyncs[i].m(&p, 512 + i, s);
			f = fake_last_call_of(asyncs[i].drv_m);
			CHECK(r == cudaSuccess && fake_rt_calls(asyncs[i].rt_m) == rt_before + 1 &&
				      fake_calls(asyncs[i].drv_m) == before + 1 && f && f->out == U(p) &&
				      f->arg[1] == 512 + i && f->arg[2] == U(s),
			      "%s: %d", asyncs[i].rt_m, (int)r);
			if (r == cudaSuccess)
				expect_alloc(U(p), 512 + i,
					     API_BIT(GSA_API_CU_MEM_ALLOC_ASYNC) |
						     API_BIT(GSA_API_CUDA_MALLOC_ASYNC),
					     U(s));
			rt_before = fake_rt_calls(asyncs[i].rt_f);
			before = fake_calls(asyncs[i].drv_f);
			r = asyncs[i].f(p, s);
			CHECK(r == cudaSuccess && fake_rt_calls(asyncs[i].rt_f) == rt_before + 1 &&
				      fake_calls(asyncs[i].drv_f) == before + 1,
			      "%s: %d", asyncs[i].rt_f, (int)r);
			if (r == cudaSuccess)
				expect_free(U(p), 1);
		}
		size_t fr = 1, tot = 2, dfr = 3, dtot = 4;
		rt_before = fake_rt_calls("cudaMemGetInfo");
		before = fake_calls("cuMemGetInfo_v2");
		r = x_rt_info(&fr, &tot);
		CHECK(r == cudaSuccess && fake_rt_calls("cudaMemGetInfo") == rt_before + 1 &&
			      fake_calls("cuMemGetInfo_v2") == before + 1 && tot == FAKE_MEM_TOTAL,
		      "cudaMemGetInfo: %d total %zu", (int)r, tot);
		x_info(&dfr, &dtot);
		CHECK(fr == dfr && tot == dtot,
		      "cudaMemGetInfo says %zu free, cuMemGetInfo_v2 %zu (adjusted twice?)", fr, dfr);
		if (passthrough)
			CHECK(fr == FAKE_MEM_FREE, "cudaMemGetInfo free %zu, expected unmodified", fr);
	}

	/* cudaGetDriverEntryPoint*: wrapped like cuGetProcAddress. */
	{
		void *fn = rt_resolve("cudaGetDriverEntryPoint", "cuLaunchKernel", 0, 0, 13000,
				      cudaEnablePerThreadDefaultStream, "cuLaunchKernel_ptsz", 1);
		launch_via((launch_fn)fn, "cuLaunchKernel_ptsz", K_PROC, 70,
			   "cudaGetDriverEntryPoint -> cuLaunchKernel_ptsz");
		fn = rt_resolve("cudaGetDriverEntryPoint", "cuLaunchKernel", 0, 0, 13000,
				cudaEnableDefault, "cuLaunchKernel", 1);
		launch_via((launch_fn)fn, "cuLaunchKernel", K_PROC, 71,
			   "cudaGetDriverEntryPoint -> cuLaunchKernel");
		fn = rt_resolve("cudaGetDriverEntryPoint_ptsz", "cuLaunchKernel", 0, 1, 13000,
				cudaEnableDefault, "cuLaunchKernel_ptsz", 1);
		launch_via((launch_fn)fn, "cuLaunchKernel_ptsz", K_PROC, 72,
			   "cudaGetDriverEntryPoint_ptsz -> cuLaunchKernel_ptsz");
		fn = rt_resolve("cudaGetDriverEntryPoint", "cuMemAlloc", 0, 0, 13000, cudaEnableDefault,
				"cuMemAlloc_v2", 1);
		CUdeviceptr d = alloc_via((alloc_fn)fn, "cuMemAlloc_v2", 8192,
					  "cudaGetDriverEntryPoint -> cuMemAlloc_v2");
		fn = rt_resolve("cudaGetDriverEntryPointByVersion", "cuMemFree", 1, 0, 12000,
				cudaEnableDefault, "cuMemFree_v2", 1);
		free_via((free_fn)fn, "cuMemFree_v2", d, 1, "cudaGetDriverEntryPointByVersion -> cuMemFree_v2");
		fn = rt_resolve("cudaGetDriverEntryPointByVersion", "cuMemAlloc", 1, 0, 3000,
				cudaEnableDefault, "cuMemAlloc", 0);
		fn = rt_resolve("cudaGetDriverEntryPointByVersion_ptsz", "cuMemAllocAsync", 1, 1, 12000,
				cudaEnableDefault, "cuMemAllocAsync_ptsz", 1);
		CUstream s = (CUstream)(uintptr_t)0x7600;
		d = alloc_async_via((alloc_async_fn)fn, "cuMemAllocAsync_ptsz", 96, s,
				    "cudaGetDriverEntryPointByVersion_ptsz -> cuMemAllocAsync_ptsz");
		free_async_via(x_free_async, "cuMemFreeAsync", d, s, "free after ByVersion_ptsz");
		fn = rt_resolve("cudaGetDriverEntryPointByVersion", "cuLaunchCooperativeKernel", 1, 0,
				12000, cudaEnablePerThreadDefaultStream, "cuLaunchCooperativeKernel_ptsz",
				1);
		coop_via((coop_fn)fn, "cuLaunchCooperativeKernel_ptsz", K_PROC, 73,
			 "cudaGetDriverEntryPointByVersion -> cuLaunchCooperativeKernel_ptsz");
		fn = rt_resolve("cudaGetDriverEntryPoint", "cuCtxGetDevice", 0, 0, 13000,
				cudaEnableDefault, "cuCtxGetDevice", 0);
		get_proc_fn gp = (get_proc_fn)rt_resolve("cudaGetDriverEntryPointByVersion",
							 "cuGetProcAddress", 1, 0, 12000,
							 cudaEnableDefault, "cuGetProcAddress_v2", 1);
		if (gp) {
			static const struct proc_case c = {"cuLaunchKernelEx", 12000, 0,
							   "cuLaunchKernelEx", 1, USE_EX};
			resolve_case(gp, "cudaGetDriverEntryPointByVersion -> cuGetProcAddress_v2", &c,
				     74);
		}

		fn = (void *)(uintptr_t)1;
		enum cudaDriverEntryPointQueryResult st = 99;
		cudaError_t r = x_rt_entry_ver("cuLaunchKernelEx", &fn, 11050, 0, &st);
		CHECK(r == cudaErrorSymbolNotFound && st == cudaDriverEntryPointVersionNotSufficent &&
			      fn == NULL,
		      "cudaGetDriverEntryPointByVersion(cuLaunchKernelEx, 11050): %d status %d %p",
		      (int)r, (int)st, fn);
		fn = (void *)(uintptr_t)1;
		st = 99;
		r = x_rt_entry("cuNoSuchFunction_gsa_test", &fn, 0, &st);
		CHECK(r == cudaErrorSymbolNotFound && st == cudaDriverEntryPointSymbolNotFound &&
			      fn == NULL,
		      "cudaGetDriverEntryPoint(unknown): %d status %d %p", (int)r, (int)st, fn);
	}
}

/* An unload through fn reaches the driver's variant exactly, its result too. */
static void unload_via(unload_fn fn, const char *variant, uintptr_t h, const char *what)
{
	unsigned long before = fake_calls(variant);
	CUresult r = fn ? fn((void *)h) : CUDA_ERROR_UNKNOWN;
	const struct fake_call *f = fake_last_call_of(variant);
	CHECK(r == CUDA_SUCCESS && fake_calls(variant) == before + 1 && f && f->nargs == 1 &&
		      f->arg[0] == h,
	      "%s: result %d, %lu calls, argument %#llx", what, (int)r, fake_calls(variant) - before,
	      f ? (unsigned long long)f->arg[0] : 0ull);
	fake_fail_next(variant, CUDA_ERROR_INVALID_HANDLE);
	r = fn ? fn((void *)h) : CUDA_ERROR_UNKNOWN;
	CHECK(r == CUDA_ERROR_INVALID_HANDLE, "%s: forced failure came back as %d", what, (int)r);
}

/* Module and library unloads: every way of reaching cuModuleUnload and cuLibraryUnload
 * forwards exactly, and an unload makes the library forget the kernels of that module or
 * library (a later launch names its handle again; the driver may have reused it). */
static void part_unload(void)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	const uintptr_t other = 0x4242000;
	unload_via((unload_fn)x_module_unload, "cuModuleUnload", other, "export cuModuleUnload");
	unload_via((unload_fn)x_library_unload, "cuLibraryUnload", other, "export cuLibraryUnload");
	if (h) {
		unload_via((unload_fn)dlsym(h, "cuModuleUnload"), "cuModuleUnload", other,
			   "dlsym cuModuleUnload");
		unload_via((unload_fn)dlsym(h, "cuLibraryUnload"), "cuLibraryUnload", other,
			   "dlsym cuLibraryUnload");
	}
	static const char *const names[] = {"cuModuleUnload", "cuLibraryUnload"};
	for (int i = 0; i < 2; i++) {
		void *fn = NULL;
		CUdriverProcAddressQueryResult st = 99;
		CUresult r = x_get_proc(names[i], &fn, 13000, 0, &st);
		char what[96];
		snprintf(what, sizeof what, "cuGetProcAddress_v2(%s)", names[i]);
		CHECK(r == CUDA_SUCCESS && st == CU_GET_PROC_ADDRESS_SUCCESS, "%s: %d", what, (int)r);
		check_wrapped(what, fn, names[i]);
		unload_via((unload_fn)fn, names[i], other, what);
	}

	/* The effect, seen in the driver calls the library makes to name a kernel: none for a
	 * known handle, even after another module's unload; one again after its own. */
	unsigned long names0 = fake_calls("cuFuncGetName");
	launch_via(x_launch, "cuLaunchKernel", K_ALPHA, 90, "k_alpha, known");
	CHECK(fake_calls("cuFuncGetName") == names0, "a known kernel was named again");
	CHECK(x_module_unload((CUmodule)FAKE_DEFAULT_MODULE) == CUDA_SUCCESS, "cuModuleUnload");
	launch_via(x_launch, "cuLaunchKernel", K_ALPHA, 91, "k_alpha after its module's unload");
	CHECK(fake_calls("cuFuncGetName") == names0 + (passthrough ? 0 : 1),
	      "after its module's unload k_alpha was named %lu times", fake_calls("cuFuncGetName") - names0);
	unsigned long knames0 = fake_calls("cuKernelGetName");
	CHECK(x_library_unload((CUlibrary)FAKE_DEFAULT_LIBRARY) == CUDA_SUCCESS, "cuLibraryUnload");
	launch_via(x_launch, "cuLaunchKernel", K_GAMMA, 92, "k_gamma after its library's unload");
	CHECK(fake_calls("cuKernelGetName") == knames0 + (passthrough ? 0 : 1),
	      "after its library's unload k_gamma was named %lu times",
	      fake_calls("cuKernelGetName") - knames0);
}

static int scenario_interpose(void)
{
	scenario_begin(120);
	make_handles();
	CUresult r = cuInit(0);
	CHECK(r == CUDA_SUCCESS, "cuInit: %d", (int)r);
	part_exports();
	part_dlsym();
	part_getproc();
	part_runtime();
	part_unload();
	print_expectations();
	return check_report("scenario-interpose");
}

/* ---- the fake itself: what the other scenarios rely on ---- */

typedef CUresult (*name_fn)(const char **, void *);
typedef CUresult (*pinfo_fn)(void *, size_t, size_t *, size_t *);

static int scenario_fake(void)
{
	scenario_begin(60);
	make_handles();
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
	CHECK(h != NULL, "libcuda.so.1 not loaded");
	if (!h)
		return check_report("scenario-fake");
	name_fn fn_name = (name_fn)dlsym(h, "cuFuncGetName");
	name_fn k_name = (name_fn)dlsym(h, "cuKernelGetName");
	pinfo_fn fn_info = (pinfo_fn)dlsym(h, "cuFuncGetParamInfo");
	pinfo_fn k_info = (pinfo_fn)dlsym(h, "cuKernelGetParamInfo");
	CHECK(fn_name && k_name && fn_info && k_info, "introspection functions missing");
	if (!fn_name || !k_name || !fn_info || !k_info)
		return check_report("scenario-fake");

	/* Naming: functions by cuFuncGetName only, kernels by cuKernelGetName only. */
	for (int k = 0; k < K_COUNT; k++) {
		const char *n = NULL;
		bool is_fn = kspecs[k].kind == GSA_HANDLE_FUNCTION;
		CUresult r1 = fn_name(&n, handles[k]);
		CHECK(is_fn ? r1 == CUDA_SUCCESS && n && !strcmp(n, kspecs[k].name)
			    : r1 == CUDA_ERROR_INVALID_HANDLE,
		      "cuFuncGetName(%s): %d", kspecs[k].name, (int)r1);
		n = NULL;
		CUresult r2 = k_name(&n, handles[k]);
		CHECK(!is_fn ? r2 == CUDA_SUCCESS && n && !strcmp(n, kspecs[k].name)
			     : r2 == CUDA_ERROR_INVALID_HANDLE,
		      "cuKernelGetName(%s): %d", kspecs[k].name, (int)r2);
		pinfo_fn info = is_fn ? fn_info : k_info, other = is_fn ? k_info : fn_info;
		size_t off = 99, size = 99;
		for (unsigned p = 0; p < kspecs[k].n; p++) {
			CUresult r = info(handles[k], p, &off, &size);
			if (kspecs[k].noinfo)
				CHECK(r == CUDA_ERROR_NOT_SUPPORTED, "noinfo %s: %d", kspecs[k].name, (int)r);
			else
				CHECK(r == CUDA_SUCCESS && off == kspecs[k].offsets[p] &&
					      size == kspecs[k].sizes[p],
				      "%s parameter %u: %d off %zu size %zu", kspecs[k].name, p, (int)r, off,
				      size);
		}
		CUresult r = info(handles[k], kspecs[k].n, &off, &size);
		CHECK(r == (kspecs[k].noinfo ? CUDA_ERROR_NOT_SUPPORTED : CUDA_ERROR_INVALID_VALUE),
		      "%s parameter past the last: %d", kspecs[k].name, (int)r);
		r = other(handles[k], 0, &off, &size);
		CHECK(r == CUDA_ERROR_INVALID_HANDLE, "%s through the other kind's GetParamInfo: %d",
		      kspecs[k].name, (int)r);
	}
	const char *n = NULL;
	int stack_object = 0;
	CHECK(fn_name(&n, (void *)(uintptr_t)0x1234) == CUDA_ERROR_INVALID_HANDLE &&
		      fn_name(&n, &stack_object) == CUDA_ERROR_INVALID_HANDLE &&
		      k_name(&n, (void *)((char *)handles[K_GAMMA] + 8)) == CUDA_ERROR_INVALID_HANDLE,
	      "garbage handles named");

	/* Device queries. */
	typedef CUresult (*dev_get_fn)(CUdevice *, int);
	typedef CUresult (*dev_name_fn)(char *, int, CUdevice);
	typedef CUresult (*dev_attr_fn)(int *, CUdevice_attribute, CUdevice);
	typedef CUresult (*dev_mem_fn)(size_t *, CUdevice);
	typedef CUresult (*ptr_attr_fn)(void *, CUpointer_attribute, CUdeviceptr);
	typedef CUresult (*ctx_dev_fn)(CUdevice *);
	typedef CUresult (*count_fn)(int *);
	typedef CUresult (*ver_fn)(int *);
	CUdevice dev = 7;
	char name[64] = "";
	int major = 0, minor = 1, sms = 0, count = 0, ver = 0, ordinal = 5;
	size_t total = 0;
	CHECK(((dev_get_fn)dlsym(h, "cuDeviceGet"))(&dev, 0) == CUDA_SUCCESS && dev == 0, "cuDeviceGet");
	CHECK(((dev_get_fn)dlsym(h, "cuDeviceGet"))(&dev, 1) == CUDA_ERROR_INVALID_DEVICE,
	      "cuDeviceGet(1)");
	CHECK(((count_fn)dlsym(h, "cuDeviceGetCount"))(&count) == CUDA_SUCCESS && count == 1,
	      "cuDeviceGetCount");
	CHECK(((dev_name_fn)dlsym(h, "cuDeviceGetName"))(name, sizeof name, 0) == CUDA_SUCCESS &&
		      !strcmp(name, FAKE_DEVICE_NAME),
	      "cuDeviceGetName: %s", name);
	dev_attr_fn attr = (dev_attr_fn)dlsym(h, "cuDeviceGetAttribute");
	CHECK(attr(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0) == CUDA_SUCCESS &&
		      attr(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0) == CUDA_SUCCESS &&
		      attr(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0) == CUDA_SUCCESS &&
		      major == 9 && minor == 0 && sms == 132,
	      "cuDeviceGetAttribute: cc %d.%d sms %d", major, minor, sms);
	CHECK(((dev_mem_fn)dlsym(h, "cuDeviceTotalMem_v2"))(&total, 0) == CUDA_SUCCESS &&
		      total == (80ull << 30),
	      "cuDeviceTotalMem_v2: %zu", total);
	CHECK(((ptr_attr_fn)dlsym(h, "cuPointerGetAttribute"))(
		      &ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, 0x7f0000001000ull) == CUDA_SUCCESS &&
		      ordinal == 0,
	      "cuPointerGetAttribute(DEVICE_ORDINAL): %d", ordinal);
	dev = 3;
	CHECK(((ctx_dev_fn)dlsym(h, "cuCtxGetDevice"))(&dev) == CUDA_SUCCESS && dev == 0,
	      "cuCtxGetDevice");
	CHECK(((ver_fn)dlsym(h, "cuDriverGetVersion"))(&ver) == CUDA_SUCCESS && ver == 13000,
	      "cuDriverGetVersion: %d", ver);

	/* Stream capture flags, per stream. */
	typedef CUresult (*capturing_fn)(CUstream, CUstreamCaptureStatus *);
	typedef CUresult (*capture_info_fn)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, CUgraph *,
					    const CUgraphNode **, const CUgraphEdgeData **, size_t *);
	capturing_fn cap = (capturing_fn)dlsym(h, "cuStreamIsCapturing");
	capturing_fn cap_ptsz = (capturing_fn)dlsym(h, "cuStreamIsCapturing_ptsz");
	capture_info_fn info3 = (capture_info_fn)dlsym(h, "cuStreamGetCaptureInfo_v3");
	CUstream sa = (CUstream)(uintptr_t)0x9100, sb = (CUstream)(uintptr_t)0x9200;
	CUstreamCaptureStatus st = 99, st2 = 99, st3 = 99;
	fake_set_capturing(sa, 1);
	CHECK(cap(sa, &st) == CUDA_SUCCESS && st == CU_STREAM_CAPTURE_STATUS_ACTIVE &&
		      cap_ptsz(sb, &st2) == CUDA_SUCCESS && st2 == CU_STREAM_CAPTURE_STATUS_NONE &&
		      info3(sa, &st3, NULL, NULL, NULL, NULL, NULL) == CUDA_SUCCESS &&
		      st3 == CU_STREAM_CAPTURE_STATUS_ACTIVE,
	      "capture flags: %d %d %d", (int)st, (int)st2, (int)st3);
	CHECK(fake_last_call_of("cuStreamIsCapturing_ptsz") &&
		      fake_last_call_of("cuStreamIsCapturing_ptsz")->stream == sb,
	      "cuStreamIsCapturing_ptsz not recorded");
	fake_set_capturing(sa, 0);
	CHECK(cap(sa, &st) == CUDA_SUCCESS && st == CU_STREAM_CAPTURE_STATUS_NONE, "capture off: %d",
	      (int)st);

	/* cuGetProcAddress's rules. */
	static const struct {
		const char *sym;
		int version;
		cuuint64_t flags;
		const char *variant; /* NULL: not found */
		int status;
	} rules[] = {
		{"cuGetProcAddress", 11030, 0, "cuGetProcAddress", 0},
		{"cuGetProcAddress", 11080, PTDS, "cuGetProcAddress", 0},
		{"cuGetProcAddress", 12000, 0, "cuGetProcAddress_v2", 0},
		{"cuGetProcAddress", 11020, 0, NULL, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT},
		{"cuMemAlloc", 3010, 0, "cuMemAlloc", 0},
		{"cuMemAlloc", 3020, PTDS, "cuMemAlloc_v2", 0},
		{"cuMemGetInfo", 2000, 0, "cuMemGetInfo", 0},
		{"cuMemFree", 13000, 0, "cuMemFree_v2", 0},
		{"cuLaunchKernelEx", 11050, 0, NULL, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT},
		{"cuLaunchKernelEx", 11060, PTDS, "cuLaunchKernelEx_ptsz", 0},
		{"cuLaunchKernel", 13000, LEGACY, "cuLaunchKernel", 0},
		{"cuLaunchKernel", 13000, LEGACY | PTDS, "cuLaunchKernel_ptsz", 0},
		{"cuMemAllocAsync", 13000, PTDS, "cuMemAllocAsync_ptsz", 0},
		{"cuMemFreeAsync", 13000, 0, "cuMemFreeAsync", 0},
		{"cuCtxGetDevice", 13000, PTDS, "cuCtxGetDevice", 0},
		{"cuDeviceTotalMem", 13000, 0, "cuDeviceTotalMem_v2", 0},
		{"cuStreamGetCaptureInfo", 13000, 0, "cuStreamGetCaptureInfo_v3", 0},
		{"cuLaunchKernel_ptsz", 13000, 0, NULL, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND},
		{"cuMemAlloc_v2", 13000, 0, NULL, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND},
		{"", 13000, 0, NULL, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND},
	};
	get_proc_fn gp = (get_proc_fn)fake_addr("cuGetProcAddress_v2");
	get_proc_legacy_fn gpl = (get_proc_legacy_fn)fake_addr("cuGetProcAddress");
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		void *p = (void *)(uintptr_t)1, *q = (void *)(uintptr_t)1;
		CUdriverProcAddressQueryResult s = 99;
		CUresult r = gp(rules[i].sym, &p, rules[i].version, rules[i].flags, &s);
		CUresult rl = gpl(rules[i].sym, &q, rules[i].version, rules[i].flags);
		if (rules[i].variant)
			CHECK(r == CUDA_SUCCESS && rl == CUDA_SUCCESS && s == CU_GET_PROC_ADDRESS_SUCCESS &&
				      p == fake_addr(rules[i].variant) && p && q == p,
			      "fake cuGetProcAddress(%s, %d, %llu): %d %d %p", rules[i].sym,
			      rules[i].version, (unsigned long long)rules[i].flags, (int)r, (int)s, p);
		else
			CHECK(r == CUDA_ERROR_NOT_FOUND && rl == CUDA_ERROR_NOT_FOUND &&
				      (int)s == rules[i].status && p == NULL && q == NULL,
			      "fake cuGetProcAddress(%s, %d): %d %d %p", rules[i].sym, rules[i].version,
			      (int)r, (int)s, p);
	}
	CHECK(gp("cuLaunchKernel", NULL, 13000, 0, NULL) == CUDA_ERROR_INVALID_VALUE &&
		      gp(NULL, (void **)&n, 13000, 0, NULL) == CUDA_ERROR_INVALID_VALUE,
	      "fake cuGetProcAddress with NULL arguments");

	/* Memory: increasing addresses, frees only of live ones. */
	CUdeviceptr a = 0, b = 0;
	unsigned long live0 = fake_live_allocs();
	CHECK(x_alloc(&a, 10) == CUDA_SUCCESS && x_alloc(&b, 10) == CUDA_SUCCESS && b > a &&
		      a >= FAKE_DPTR_BASE && fake_live_allocs() == live0 + 2,
	      "fake allocations: %#llx %#llx", (unsigned long long)a, (unsigned long long)b);
	CHECK(x_free(a) == CUDA_SUCCESS && x_free(a) == CUDA_ERROR_INVALID_VALUE &&
		      x_free(b) == CUDA_SUCCESS && fake_live_allocs() == live0,
	      "fake frees");

	/* Per-thread records, per-variant counts. */
	unsigned long c0 = fake_calls("cuInit");
	CHECK(cuInit(0) == CUDA_SUCCESS && fake_calls("cuInit") == c0 + 1 &&
		      fake_last_call() && !strcmp(fake_last_call()->variant, "cuInit") &&
		      fake_calls("no such variant") == 0 && fake_addr("no such variant") == NULL,
	      "fake call records");
	return check_report("scenario-fake");
}

/* ---- a process that never uses CUDA ---- */

static int scenario_nocuda(void)
{
	void *p = dlsym(RTLD_DEFAULT, "malloc");
	void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	void *q = libc ? dlsym(libc, "malloc") : NULL;
	void *n = dlsym(RTLD_NEXT, "free");
	void *m = libc ? dlsym(libc, "no_such_symbol_gsa_test") : (void *)1;
	if (!p || p != q || !n || m)
		return 3;
	printf("nocuda ok\n");
	return 0;
}

/* ---- threads ---- */

static pthread_barrier_t stress_barrier;
static launch_fn stress_wrapped[2]; /* legacy, ptsz: from cuGetProcAddress_v2 */
static atomic_ulong stress_failures;

static void *stress_thread(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	launch_fn via_proc = stress_wrapped[t & 1];
	uint64_t a = t;
	uint32_t b = 0;
	void *params[2] = {&a, &b};
	unsigned long fails = 0;
	pthread_barrier_wait(&stress_barrier);
	for (unsigned i = 0; i < STRESS_PER_THREAD; i++) {
		unsigned m = i % 10;
		int k = m < 4 ? 0 : m < 7 ? 1 : m < 9 ? 2 : 3;
		b = i;
		CUfunction f = (CUfunction)handles[k];
		CUresult r = (i & 1) ? via_proc(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL)
				     : x_launch(f, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL);
		fails += r != CUDA_SUCCESS;
	}
	atomic_fetch_add(&stress_failures, fails);
	return NULL;
}

static int scenario_stress(void)
{
	scenario_begin(300);
	static const size_t sizes[2] = {8, 4};
	for (int k = 0; k < 4; k++)
		handles[k] = fake_make_function(stress_names[k], 2, sizes);
	CUdriverProcAddressQueryResult st;
	CUresult r1 = x_get_proc("cuLaunchKernel", (void **)&stress_wrapped[0], 13000, 0, &st);
	CUresult r2 = x_get_proc("cuLaunchKernel", (void **)&stress_wrapped[1], 13000, PTDS, &st);
	CHECK(r1 == CUDA_SUCCESS && r2 == CUDA_SUCCESS && stress_wrapped[0] && stress_wrapped[1],
	      "resolving cuLaunchKernel: %d %d", (int)r1, (int)r2);
	if (!stress_wrapped[0] || !stress_wrapped[1])
		return check_report("scenario-stress");
	check_wrapped("stress legacy wrapper", (void *)stress_wrapped[0], "cuLaunchKernel");
	check_wrapped("stress ptsz wrapper", (void *)stress_wrapped[1], "cuLaunchKernel_ptsz");
	unsigned long legacy0 = fake_calls("cuLaunchKernel"), ptsz0 = fake_calls("cuLaunchKernel_ptsz");
	pthread_t th[STRESS_THREADS];
	pthread_barrier_init(&stress_barrier, NULL, STRESS_THREADS);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uintptr_t t = 0; t < STRESS_THREADS; t++)
		pthread_create(&th[t], NULL, stress_thread, (void *)t);
	for (int t = 0; t < STRESS_THREADS; t++)
		pthread_join(th[t], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	CHECK(atomic_load(&stress_failures) == 0, "%lu launches failed",
	      (unsigned long)atomic_load(&stress_failures));
	unsigned long total = (unsigned long)STRESS_THREADS * STRESS_PER_THREAD;
	unsigned long via_export = total / 2, via_ptsz = (STRESS_THREADS / 2) * (STRESS_PER_THREAD / 2);
	CHECK(fake_calls("cuLaunchKernel") - legacy0 == total - via_ptsz,
	      "cuLaunchKernel reached %lu times, expected %lu", fake_calls("cuLaunchKernel") - legacy0,
	      total - via_ptsz);
	CHECK(fake_calls("cuLaunchKernel_ptsz") - ptsz0 == via_ptsz,
	      "cuLaunchKernel_ptsz reached %lu times, expected %lu",
	      fake_calls("cuLaunchKernel_ptsz") - ptsz0, via_ptsz);
	(void)via_export;
	int pid = (int)getpid();
	static const unsigned per10[4] = {4, 3, 2, 1};
	for (int k = 0; k < 4; k++)
		printf("E %d launch %s %lu\n", pid, stress_names[k],
		       (unsigned long)STRESS_THREADS * (STRESS_PER_THREAD / 10) * per10[k]);
	printf("stress-seconds %.3f\n", secs);
	return check_report("scenario-stress");
}

/* ---- fork ---- */

enum { F_PRE, F_BG, F_PARENT, F_CHILD, F_COMMON, F_COUNT };
static const char *const fork_names[F_COUNT] = {"fork_pre", "fork_bg", "fork_parent",
						"fork_child", "fork_common"};
static CUfunction fork_fns[F_COUNT];

static void make_fork_functions(void)
{
	static const size_t sizes[1] = {8};
	for (int i = 0; i < F_COUNT; i++)
		fork_fns[i] = fake_make_function(fork_names[i], 1, sizes);
}

static int launch_n(int k, unsigned long n)
{
	uint64_t v = 0;
	void *params[1] = {&v};
	for (unsigned long i = 0; i < n; i++) {
		v = i;
		if (x_launch(fork_fns[k], 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL) != CUDA_SUCCESS)
			return -1;
	}
	return 0;
}

/* What a forked child does: its own launches and one allocation, then exit(0). */
static void fork_child_work(unsigned idx)
{
	alarm(30);
	int pid = (int)getpid();
	if (!fork_fns[0])
		make_fork_functions();
	unsigned long n = 100 + idx * 10;
	if (launch_n(F_CHILD, n) || launch_n(F_COMMON, FORK_COMMON_CHILD))
		exit(3);
	CUdeviceptr d = 0;
	if (x_alloc(&d, 4096 + idx) != CUDA_SUCCESS || x_free(d) != CUDA_SUCCESS)
		exit(4);
	printf("E %d launch %s %lu\n", pid, fork_names[F_CHILD], n);
	printf("E %d launch %s %d\n", pid, fork_names[F_COMMON], FORK_COMMON_CHILD);
	printf("E %d alloc %#llx %u %u 0\n", pid, (unsigned long long)d, 4096 + idx,
	       API_BIT(GSA_API_CU_MEM_ALLOC));
	printf("E %d free %#llx 1\n", pid, (unsigned long long)d);
	printf("child %d %u\n", pid, idx);
	exit(0);
}

static void wait_children(const pid_t *pids, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int status = 0;
		pid_t w = waitpid(pids[i], &status, 0);
		CHECK(w == pids[i] && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "child %d: %s %d", (int)pids[i], WIFSIGNALED(status) ? "killed by signal" : "exit",
		      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	}
}

static int scenario_fork_before(void)
{
	scenario_begin(120);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		fork_child_work(0);
	CHECK(pid > 0, "fork failed");
	make_fork_functions();
	int ok = launch_n(F_PARENT, FORK_PARENT_LAUNCHES) == 0 &&
		 launch_n(F_COMMON, FORK_COMMON_PARENT) == 0;
	CHECK(ok, "parent launches failed");
	if (pid > 0)
		wait_children(&pid, 1);
	int me = (int)getpid();
	printf("E %d launch %s %d\n", me, fork_names[F_PARENT], FORK_PARENT_LAUNCHES);
	printf("E %d launch %s %d\n", me, fork_names[F_COMMON], FORK_COMMON_PARENT);
	return check_report("scenario-fork-before");
}

static atomic_int bg_stop;
static unsigned long bg_launches;

static void *bg_thread(void *arg)
{
	uint64_t v = 0;
	void *params[1] = {&v};
	while (!atomic_load_explicit(&bg_stop, memory_order_relaxed)) {
		if (x_launch(fork_fns[F_BG], 1, 1, 1, 1, 1, 1, 0, NULL, params, NULL) == CUDA_SUCCESS)
			bg_launches++;
		v++;
	}
	return arg;
}

static int scenario_fork_after(void)
{
	scenario_begin(120);
	make_fork_functions();
	CHECK(launch_n(F_PRE, 300) == 0, "launches before fork failed");
	CUdeviceptr d = 0;
	CHECK(x_alloc(&d, 65536) == CUDA_SUCCESS, "allocation before fork failed");
	/* Let the trace's flusher run at least one cycle before forking. */
	usleep(150 * 1000);
	pthread_t bg;
	pthread_create(&bg, NULL, bg_thread, NULL);
	usleep(20 * 1000);
	pid_t pids[FORK_CHILDREN];
	unsigned n = 0;
	for (unsigned i = 0; i < FORK_CHILDREN; i++) {
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0)
			fork_child_work(i);
		CHECK(pid > 0, "fork %u failed", i);
		if (pid > 0)
			pids[n++] = pid;
		usleep(30 * 1000);
	}
	int ok = launch_n(F_PARENT, FORK_PARENT_LAUNCHES) == 0 &&
		 launch_n(F_COMMON, FORK_COMMON_PARENT) == 0;
	CHECK(ok, "parent launches failed");
	atomic_store(&bg_stop, 1);
	pthread_join(bg, NULL);
	wait_children(pids, n);
	int me = (int)getpid();
	printf("E %d launch %s 300\n", me, fork_names[F_PRE]);
	printf("E %d launch %s %lu\n", me, fork_names[F_BG], bg_launches);
	printf("E %d launch %s %d\n", me, fork_names[F_PARENT], FORK_PARENT_LAUNCHES);
	printf("E %d launch %s %d\n", me, fork_names[F_COMMON], FORK_COMMON_PARENT);
	printf("E %d alloc %#llx 65536 %u 0\n", me, (unsigned long long)d,
	       API_BIT(GSA_API_CU_MEM_ALLOC));
	return check_report("scenario-fork-after");
}

int main(int argc, char **argv)
{
	const char *s = argc > 1 ? argv[1] : "";
	if (strcmp(s, "interpose") == 0)
		return scenario_interpose();
	if (strcmp(s, "nocuda") == 0)
		return scenario_nocuda();
	if (strcmp(s, "fake") == 0)
		return scenario_fake();
	if (strcmp(s, "stress") == 0)
		return scenario_stress();
	if (strcmp(s, "fork-before") == 0)
		return scenario_fork_before();
	if (strcmp(s, "fork-after") == 0)
		return scenario_fork_after();
	fprintf(stderr, "usage: %s interpose|fake|nocuda|stress|fork-before|fork-after\n", argv[0]);
	return 2;
}

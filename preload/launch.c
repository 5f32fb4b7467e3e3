/* Kernel launches through the driver: cuLaunchKernel, cuLaunchKernelEx and
 * cuLaunchCooperativeKernel, each in every variant a resolver hands out (wrapper slots) and
 * as exported symbols. The hot path for a kernel no adapter recognised: one table look-up,
 * one thread-local counter, the real call. */
#include <cuda.h>

#include "hooks/registry.h"
#include "preload/counters.h"
#include "preload/driver.h"
#include "preload/interpose.h"
#include "preload/kernel_table.h"
#include "preload/state.h"
#include "preload/trace_format.h"

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
			      unsigned, unsigned, CUstream, void **, void **);
typedef CUresult (*launch_ex_fn)(const CUlaunchConfig *, CUfunction, void **, void **);
typedef CUresult (*launch_coop_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned,
				   unsigned, unsigned, unsigned, CUstream, void **);

/* Counts the launch and gives an adapter the chance to rewrite its parameters. Returns the
 * parameter array to launch with. */
static inline void **observe(CUfunction f, void **params, void **extra, const unsigned *grid,
			     const unsigned *block, unsigned shmem, CUstream stream,
			     const CUlaunchConfig *config, void *real, uint8_t api)
{
	gsa_first_use();
	if (__builtin_expect(!gsa_active, 0))
		return params;
	struct gsa_thread *t = gsa_thread();
	t->launch_seq++;
	struct gsa_kernel *k = gsa_kernel_get((uintptr_t)f, GSA_HANDLE_FUNCTION);
	if (__builtin_expect(!k, 0))
		return params;
	gsa_count_launch(t, k->id);
	if (__builtin_expect(k->adapter == NULL, 1))
		return params;
	struct gsa_launch l = {
		.kernel = k,
		.grid = {grid[0], grid[1], grid[2]},
		.block = {block[0], block[1], block[2]},
		.shared_mem = shmem,
		.stream = stream,
		.params = params,
		.extra = extra,
		.config = config,
		.real = real,
		.api = api,
	};
	return gsa_hooks_dispatch(&l);
}

static CUresult hook_launch(launch_fn real, CUfunction f, unsigned gx, unsigned gy, unsigned gz,
			    unsigned bx, unsigned by, unsigned bz, unsigned shmem, CUstream s,
			    void **params, void **extra)
{
	if (__builtin_expect(!real, 0))
		return CUDA_ERROR_NOT_INITIALIZED;
	const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
	params = observe(f, params, extra, grid, block, shmem, s, NULL, (void *)real, GSA_API_LAUNCH);
	return real(f, gx, gy, gz, bx, by, bz, shmem, s, params, extra);
}

static CUresult hook_launch_ex(launch_ex_fn real, const CUlaunchConfig *c, CUfunction f,
			       void **params, void **extra)
{
	if (__builtin_expect(!real, 0))
		return CUDA_ERROR_NOT_INITIALIZED;
	if (__builtin_expect(c != NULL, 1)) {
		const unsigned grid[3] = {c->gridDimX, c->gridDimY, c->gridDimZ};
		const unsigned block[3] = {c->blockDimX, c->blockDimY, c->blockDimZ};
		params = observe(f, params, extra, grid, block, c->sharedMemBytes, c->hStream, c,
				 (void *)real, GSA_API_LAUNCH_EX);
	}
	return real(c, f, params, extra);
}

static CUresult hook_launch_coop(launch_coop_fn real, CUfunction f, unsigned gx, unsigned gy,
				 unsigned gz, unsigned bx, unsigned by, unsigned bz,
				 unsigned shmem, CUstream s, void **params)
{
	if (__builtin_expect(!real, 0))
		return CUDA_ERROR_NOT_INITIALIZED;
	const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
	params = observe(f, params, NULL, grid, block, shmem, s, NULL, (void *)real,
			 GSA_API_LAUNCH_COOP);
	return real(f, gx, gy, gz, bx, by, bz, shmem, s, params);
}

/* Exported symbols: the names a program linked with -lcuda calls. The asm labels give the
 * exact exported names without clashing with cuda.h's macros and prototypes. */
#define LAUNCH_PARAMS                                                                       \
	(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,      \
	 unsigned bz, unsigned shmem, CUstream s, void **params, void **extra)
#define LAUNCH_ARGS (f, gx, gy, gz, bx, by, bz, shmem, s, params, extra)
#define LAUNCH_EX_PARAMS (const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
#define LAUNCH_EX_ARGS (c, f, params, extra)
#define LAUNCH_COOP_PARAMS                                                                  \
	(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,      \
	 unsigned bz, unsigned shmem, CUstream s, void **params)
#define LAUNCH_COOP_ARGS (f, gx, gy, gz, bx, by, bz, shmem, s, params)

#define EXPORT_AS(...) GSA_EXPORT_AS(CUresult, __VA_ARGS__)

EXPORT_AS(launch_fn, hook_launch, gsa_x_launch, "cuLaunchKernel", LAUNCH_PARAMS, LAUNCH_ARGS)
EXPORT_AS(launch_fn, hook_launch, gsa_x_launch_ptsz, "cuLaunchKernel_ptsz", LAUNCH_PARAMS,
	  LAUNCH_ARGS)
EXPORT_AS(launch_ex_fn, hook_launch_ex, gsa_x_launch_ex, "cuLaunchKernelEx", LAUNCH_EX_PARAMS,
	  LAUNCH_EX_ARGS)
EXPORT_AS(launch_ex_fn, hook_launch_ex, gsa_x_launch_ex_ptsz, "cuLaunchKernelEx_ptsz",
	  LAUNCH_EX_PARAMS, LAUNCH_EX_ARGS)
EXPORT_AS(launch_coop_fn, hook_launch_coop, gsa_x_launch_coop, "cuLaunchCooperativeKernel",
	  LAUNCH_COOP_PARAMS, LAUNCH_COOP_ARGS)
EXPORT_AS(launch_coop_fn, hook_launch_coop, gsa_x_launch_coop_ptsz,
	  "cuLaunchCooperativeKernel_ptsz", LAUNCH_COOP_PARAMS, LAUNCH_COOP_ARGS)

GSA_DEFINE_FAMILY(gsa_family_launch, launch_fn, hook_launch, CUresult, LAUNCH_PARAMS,
		  LAUNCH_ARGS, (void *)gsa_x_launch, (void *)gsa_x_launch_ptsz)
GSA_DEFINE_FAMILY(gsa_family_launch_ex, launch_ex_fn, hook_launch_ex, CUresult,
		  LAUNCH_EX_PARAMS, LAUNCH_EX_ARGS, (void *)gsa_x_launch_ex,
		  (void *)gsa_x_launch_ex_ptsz)
GSA_DEFINE_FAMILY(gsa_family_launch_coop, launch_coop_fn, hook_launch_coop, CUresult,
		  LAUNCH_COOP_PARAMS, LAUNCH_COOP_ARGS, (void *)gsa_x_launch_coop,
		  (void *)gsa_x_launch_coop_ptsz)

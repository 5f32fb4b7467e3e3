/* The resolvers: cuGetProcAddress (both ABIs), the dlsym handler (dlsym.c holds its entry)
 * and the runtime's cudaGetDriverEntryPoint*. Each calls the real resolver first, with the
 * same arguments, and wraps only a successful result of a symbol the library observes. */
#include "preload/resolve.h"

#include <cuda.h>
#include <string.h>

#include "preload/driver.h"
#include "preload/interpose.h"
#include "preload/state.h"

struct proc_name {
	const char *name;
	enum gsa_family fam;
	int min_version; /* the first cudaVersion whose ABI for this name is the family's */
};

/* cuGetProcAddress names are base names; the version picks the ABI (cuMemAlloc before 3.2
 * is the 32-bit v1, which is not ours to wrap). */
static const struct proc_name proc_names[] = {
	{"cuLaunchKernel", GSA_FAM_LAUNCH, 4000},
	{"cuLaunchKernelEx", GSA_FAM_LAUNCH_EX, 11060},
	{"cuLaunchCooperativeKernel", GSA_FAM_LAUNCH_COOP, 9000},
	{"cuMemAlloc", GSA_FAM_MEM_ALLOC, 3020},
	{"cuMemFree", GSA_FAM_MEM_FREE, 3020},
	{"cuMemAllocAsync", GSA_FAM_MEM_ALLOC_ASYNC, 11020},
	{"cuMemFreeAsync", GSA_FAM_MEM_FREE_ASYNC, 11020},
	{"cuMemGetInfo", GSA_FAM_MEM_GET_INFO, 3020},
	{"cuGetProcAddress", GSA_FAM_GET_PROC, 12000},
	{"cuGetProcAddress", GSA_FAM_GET_PROC_LEGACY, 11030},
	{"cuModuleUnload", GSA_FAM_MODULE_UNLOAD, 2000},
	{"cuLibraryUnload", GSA_FAM_LIBRARY_UNLOAD, 12000},
};

/* dlsym names are exact exported names, each with one fixed ABI. */
static const struct {
	const char *name;
	enum gsa_family fam;
} export_names[] = {
	{"cuLaunchKernel", GSA_FAM_LAUNCH},
	{"cuLaunchKernel_ptsz", GSA_FAM_LAUNCH},
	{"cuLaunchKernelEx", GSA_FAM_LAUNCH_EX},
	{"cuLaunchKernelEx_ptsz", GSA_FAM_LAUNCH_EX},
	{"cuLaunchCooperativeKernel", GSA_FAM_LAUNCH_COOP},
	{"cuLaunchCooperativeKernel_ptsz", GSA_FAM_LAUNCH_COOP},
	{"cuMemAlloc_v2", GSA_FAM_MEM_ALLOC},
	{"cuMemFree_v2", GSA_FAM_MEM_FREE},
	{"cuMemAllocAsync", GSA_FAM_MEM_ALLOC_ASYNC},
	{"cuMemAllocAsync_ptsz", GSA_FAM_MEM_ALLOC_ASYNC},
	{"cuMemFreeAsync", GSA_FAM_MEM_FREE_ASYNC},
	{"cuMemFreeAsync_ptsz", GSA_FAM_MEM_FREE_ASYNC},
	{"cuMemGetInfo_v2", GSA_FAM_MEM_GET_INFO},
	{"cuGetProcAddress_v2", GSA_FAM_GET_PROC},
	{"cuGetProcAddress", GSA_FAM_GET_PROC_LEGACY},
	{"cuModuleUnload", GSA_FAM_MODULE_UNLOAD},
	{"cuLibraryUnload", GSA_FAM_LIBRARY_UNLOAD},
};

void *gsa_wrap_proc(const char *symbol, int cuda_version, void *fn)
{
	if (!fn || !symbol || symbol[0] != 'c' || symbol[1] != 'u')
		return fn;
	for (size_t i = 0; i < sizeof proc_names / sizeof proc_names[0]; i++) {
		if (cuda_version >= proc_names[i].min_version &&
		    strcmp(symbol, proc_names[i].name) == 0) {
			gsa_first_use();
			return gsa_wrap(proc_names[i].fam, fn);
		}
	}
	return fn;
}

void *gsa_wrap_export(const char *name, void *fn)
{
	if (!fn || !name || name[0] != 'c' || name[1] != 'u')
		return fn;
	for (size_t i = 0; i < sizeof export_names / sizeof export_names[0]; i++) {
		if (strcmp(name, export_names[i].name) == 0) {
			gsa_first_use();
			return gsa_wrap(export_names[i].fam, fn);
		}
	}
	return fn;
}

/* ---- cuGetProcAddress ---- */

typedef CUresult (*get_proc_fn)(const char *, void **, int, cuuint64_t,
				CUdriverProcAddressQueryResult *);
typedef CUresult (*get_proc_legacy_fn)(const char *, void **, int, cuuint64_t);

static CUresult hook_get_proc(get_proc_fn real, const char *symbol, void **pfn, int version,
			      cuuint64_t flags, CUdriverProcAddressQueryResult *status)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	gsa_first_use();
	CUresult r = real(symbol, pfn, version, flags, status);
	if (r == CUDA_SUCCESS && pfn)
		*pfn = gsa_wrap_proc(symbol, version, *pfn);
	return r;
}

static CUresult hook_get_proc_legacy(get_proc_legacy_fn real, const char *symbol, void **pfn,
				     int version, cuuint64_t flags)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	gsa_first_use();
	CUresult r = real(symbol, pfn, version, flags);
	if (r == CUDA_SUCCESS && pfn)
		*pfn = gsa_wrap_proc(symbol, version, *pfn);
	return r;
}

#define GP_P (const char *symbol, void **pfn, int version, cuuint64_t flags, \
	      CUdriverProcAddressQueryResult *status)
#define GP_A (symbol, pfn, version, flags, status)
#define GPL_P (const char *symbol, void **pfn, int version, cuuint64_t flags)
#define GPL_A (symbol, pfn, version, flags)

GSA_EXPORT_AS(CUresult, get_proc_fn, hook_get_proc, gsa_x_get_proc, "cuGetProcAddress_v2", GP_P,
	      GP_A)
GSA_EXPORT_AS(CUresult, get_proc_legacy_fn, hook_get_proc_legacy, gsa_x_get_proc_legacy,
	      "cuGetProcAddress", GPL_P, GPL_A)

GSA_DEFINE_FAMILY(gsa_family_get_proc, get_proc_fn, hook_get_proc, CUresult, GP_P, GP_A,
		  (void *)gsa_x_get_proc)
GSA_DEFINE_FAMILY(gsa_family_get_proc_legacy, get_proc_legacy_fn, hook_get_proc_legacy,
		  CUresult, GPL_P, GPL_A, (void *)gsa_x_get_proc_legacy)

/* ---- dlsym with an explicit handle (dlsym.c sends RTLD_DEFAULT/RTLD_NEXT straight on) ---- */

void *gsa_dlsym_handle(void *handle, const char *name)
{
	void *p = gsa_real_dlsym(handle, name);
	return gsa_wrap_export(name, p);
}

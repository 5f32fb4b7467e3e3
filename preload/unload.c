/* Module and library unloads: cuModuleUnload and cuLibraryUnload (each variant a resolver
 * hands out, and the exported names). The driver may give an unloaded kernel's handle to a
 * kernel loaded later, so the kernel table forgets the unloaded one's kernels first (and
 * every kernel an adapter claimed): a reused handle is then named and matched anew, never
 * taken for the attention kernel it once was. Before the real unload, so that no other
 * thread can load a kernel under a freed handle in between; a failed unload only costs a
 * rediscovery. */
#include <cuda.h>

#include "preload/driver.h"
#include "preload/interpose.h"
#include "preload/kernel_table.h"
#include "preload/state.h"
#include "preload/trace_format.h"

typedef CUresult (*module_unload_fn)(CUmodule);
typedef CUresult (*library_unload_fn)(CUlibrary);

/* What both hooks do before forwarding: owner's kernels (handles of kind) forgotten. */
static void forget(const void *owner, int kind)
{
	gsa_first_use();
	if (gsa_active && owner)
		gsa_kernel_forget((uintptr_t)owner, kind);
}

static CUresult hook_module_unload(module_unload_fn real, CUmodule m)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	forget(m, GSA_HANDLE_FUNCTION);
	return real(m);
}

static CUresult hook_library_unload(library_unload_fn real, CUlibrary l)
{
	if (!real)
		return CUDA_ERROR_NOT_INITIALIZED;
	forget(l, GSA_HANDLE_KERNEL);
	return real(l);
}

#define MOD_P (CUmodule m)
#define MOD_A (m)
#define LIB_P (CUlibrary l)
#define LIB_A (l)

GSA_EXPORT_AS(CUresult, module_unload_fn, hook_module_unload, gsa_x_module_unload, "cuModuleUnload",
	      MOD_P, MOD_A)
GSA_EXPORT_AS(CUresult, library_unload_fn, hook_library_unload, gsa_x_library_unload,
	      "cuLibraryUnload", LIB_P, LIB_A)

GSA_DEFINE_FAMILY(gsa_family_module_unload, module_unload_fn, hook_module_unload, CUresult, MOD_P,
		  MOD_A, (void *)gsa_x_module_unload)
GSA_DEFINE_FAMILY(gsa_family_library_unload, library_unload_fn, hook_library_unload, CUresult,
		  LIB_P, LIB_A, (void *)gsa_x_library_unload)

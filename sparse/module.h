/* The selection kernels: a fatbin embedded in the library (built from gsa_kernels.cu),
 * loaded through the driver once per CUDA context, outside stream capture. */
#ifndef GSA_SPARSE_MODULE_H
#define GSA_SPARSE_MODULE_H

#include <cuda.h>
#include <stdbool.h>

struct gsa_module {
	CUcontext ctx;
	CUmodule module;
	CUfunction score_select; /* gsa_kernels.cu */
	int num_sms;             /* the context's device's multiprocessors, 0 if unknown */
};

/* The module for the calling thread's current context, loading it if needed; NULL when it
 * cannot be loaded (no fatbin in this build, a GPU the fatbin has no code for, ...). */
const struct gsa_module *gsa_module_current(void);

/* Whether this build carries the selection kernels at all. */
bool gsa_module_built(void);

#endif

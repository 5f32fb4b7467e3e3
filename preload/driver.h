/* The real functions behind the interposed ones: the real dlsym, libcuda.so.1 (opened only
 * when the process itself uses CUDA, never at load), the next definition of a runtime
 * symbol, and the driver functions the library calls for its own purposes. */
#ifndef GSA_DRIVER_H
#define GSA_DRIVER_H

#include <cuda.h>

/* The C library's dlsym (never the interposed one). */
void *gsa_real_dlsym(void *handle, const char *name);
/* Looks the real dlsym up once (the dlsym entry in dlsym.c calls it on its first use). */
void *(*gsa_resolve_real_dlsym(void))(void *, const char *);

/* libcuda.so.1's handle, opened on first need; NULL if there is no driver. */
void *gsa_driver_handle(void);

/* name from libcuda.so.1 (exact exported name), or NULL. */
void *gsa_driver_sym(const char *name);

/* The definition of name that follows this library in the search order (e.g. libcudart's
 * cudaMalloc), falling back to libcuda.so.1 for driver names; NULL if none. */
void *gsa_next_sym(const char *name);

/* Driver functions the library calls itself; a member is NULL when this driver lacks it. */
struct gsa_driver_api {
	CUresult (*func_get_name)(const char **, CUfunction);
	CUresult (*kernel_get_name)(const char **, CUkernel);
	CUresult (*func_get_param_info)(CUfunction, size_t, size_t *, size_t *);
	CUresult (*kernel_get_param_info)(CUkernel, size_t, size_t *, size_t *);
	CUresult (*pointer_get_attribute)(void *, CUpointer_attribute, CUdeviceptr);
	CUresult (*device_get)(CUdevice *, int);
	CUresult (*ctx_get_device)(CUdevice *);
	CUresult (*device_get_name)(char *, int, CUdevice);
	CUresult (*device_get_attribute)(int *, CUdevice_attribute, CUdevice);
	CUresult (*device_total_mem)(size_t *, CUdevice);
	CUresult (*stream_is_capturing)(CUstream, CUstreamCaptureStatus *);
	CUresult (*func_get_module)(CUmodule *, CUfunction);
	CUresult (*kernel_get_library)(CUlibrary *, CUkernel);
};

/* Resolved once, on first call; never NULL (members may be). */
const struct gsa_driver_api *gsa_driver(void);

#endif

/* Stand-ins for the driver calls sparse/buffers.c makes for its own buffers, for CPU tests
 * that link it without a driver: cuMemAlloc_v2 hands out host memory as device addresses and
 * cuMemsetD8Async writes it; both count their calls (stand_in_allocs, stand_in_memsets). Also
 * a silent gsa_log. Include in exactly one file of a test binary. */
#ifndef GSA_TEST_STAND_IN_DEVICE_H
#define GSA_TEST_STAND_IN_DEVICE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#include "preload/driver.h"
#include "preload/log.h"

static int stand_in_allocs, stand_in_memsets;

static CUresult stand_in_alloc(CUdeviceptr *p, size_t bytes)
{
	stand_in_allocs++;
	*p = (CUdeviceptr)(uintptr_t)calloc(1, bytes);
	return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

static CUresult stand_in_memset(CUdeviceptr p, unsigned char v, size_t n, CUstream s)
{
	(void)s;
	stand_in_memsets++;
	memset((void *)(uintptr_t)p, v, n);
	return CUDA_SUCCESS;
}

void *gsa_driver_sym(const char *name)
{
	if (!strcmp(name, "cuMemAlloc_v2"))
		return (void *)stand_in_alloc;
	if (!strcmp(name, "cuMemsetD8Async"))
		return (void *)stand_in_memset;
	return NULL;
}

void gsa_log(int level, int code, const char *fmt, ...)
{
	(void)level, (void)code, (void)fmt;
}

#endif

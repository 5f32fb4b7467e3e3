/* The kernel table (preload/kernel_table.c) across module and library unloads: a handle the
 * driver hands to another kernel after an unload must be named and matched anew, never kept
 * as the attention kernel it was. The driver, the adapter matching and the log are
 * stand-ins defined here: handles are indices into a small table of names and owners that
 * the test rewrites as the driver would. */
#include <stdlib.h>

#include <cuda.h>

#include "hooks/registry.h"
#include "preload/driver.h"
#include "preload/kernel_table.h"
#include "preload/log.h"
#include "preload/trace_format.h"
#include "tests/cpu/check.h"

/* ---- the stand-in driver: handle h (1..N) is a CUfunction when h < 100, else a CUkernel ---- */
#define N 256
static const char *names[N];
static uintptr_t owners[N];
static int name_calls;

static CUresult func_name(const char **out, CUfunction f)
{
	uintptr_t h = (uintptr_t)f;
	name_calls++;
	if (h >= 100 || h >= N || !names[h])
		return CUDA_ERROR_INVALID_HANDLE;
	*out = names[h];
	return CUDA_SUCCESS;
}
static CUresult kernel_name(const char **out, CUkernel k)
{
	uintptr_t h = (uintptr_t)k;
	name_calls++;
	if (h < 100 || h >= N || !names[h])
		return CUDA_ERROR_INVALID_HANDLE;
	*out = names[h];
	return CUDA_SUCCESS;
}
static CUresult func_module(CUmodule *m, CUfunction f)
{
	*m = (CUmodule)owners[(uintptr_t)f];
	return CUDA_SUCCESS;
}
static CUresult kernel_library(CUlibrary *l, CUkernel k)
{
	*l = (CUlibrary)owners[(uintptr_t)k];
	return CUDA_SUCCESS;
}
const struct gsa_driver_api *gsa_driver(void)
{
	static const struct gsa_driver_api api = {.func_get_name = func_name,
						  .kernel_get_name = kernel_name,
						  .func_get_module = func_module,
						  .kernel_get_library = kernel_library};
	return &api;
}
void *gsa_next_sym(const char *name)
{
	(void)name;
	return NULL;
}
void gsa_log(int level, int code, const char *fmt, ...)
{
	(void)level, (void)code, (void)fmt;
}

/* ---- the stand-in adapter matching: kernels named "attn" are attention ---- */
static const struct gsa_adapter attn_adapter = {"test-attention", NULL, NULL, NULL, false};
const struct gsa_adapter *gsa_hooks_match(struct gsa_kernel *k)
{
	return strcmp(k->name, "attn") == 0 ? &attn_adapter : NULL;
}

static struct gsa_kernel *launch(uintptr_t h)
{
	return gsa_kernel_get(h, GSA_HANDLE_FUNCTION);
}

int main(void)
{
	const uintptr_t M1 = 0x1000, M2 = 0x2000, L1 = 0x3000;
	names[1] = "attn", owners[1] = M1;  /* attention, module 1 */
	names[2] = "gemm", owners[2] = M1;  /* plain, module 1 */
	names[3] = "norm", owners[3] = M2;  /* plain, module 2 */
	names[101] = "attn", owners[101] = L1; /* attention as a library kernel */
	names[102] = "rope", owners[102] = L1;

	struct gsa_kernel *a = launch(1), *g = launch(2), *n = launch(3);
	struct gsa_kernel *ka = launch(101), *kr = launch(102);
	CHECK(a && a->adapter == &attn_adapter && a->owner == M1, "attention found, owner recorded");
	CHECK(g && !g->adapter && g->owner == M1, "plain kernel, owner recorded");
	CHECK(ka && ka->handle_kind == GSA_HANDLE_KERNEL && ka->owner == L1, "library kernel's owner");
	CHECK(launch(1) == a && launch(3) == n, "found again without the driver");
	int calls = name_calls;
	for (int i = 0; i < 1000; i++)
		launch(2);
	CHECK_EQ_U64(name_calls - calls, 0);

	/* Module 2 unloaded: its kernel and every attention kernel are forgotten; module 1's
	 * plain kernel and the library's plain kernel stay. */
	gsa_kernel_forget(M2, GSA_HANDLE_FUNCTION);
	CHECK(gsa_kernel_lookup(3) == NULL, "the unloaded module's kernel forgotten");
	CHECK(gsa_kernel_lookup(1) == NULL, "an attention kernel forgotten on any unload");
	CHECK(gsa_kernel_lookup(101) == NULL, "an attention library kernel too");
	CHECK(gsa_kernel_lookup(2) == g && gsa_kernel_lookup(102) == kr, "other kernels kept");
	CHECK(gsa_kernel_by_id(a->id) == a && gsa_kernel_by_id(n->id) == n,
	      "forgotten entries still readable by id (the trace)");

	/* The driver gives module 2's handle 3 and the attention handle 1 to other kernels. */
	names[3] = "attn", owners[3] = M1 + 0x10;
	names[1] = "softmax", owners[1] = M1 + 0x10;
	struct gsa_kernel *n2 = launch(3), *a2 = launch(1);
	CHECK(n2 && n2 != n && n2->adapter == &attn_adapter && n2->id != n->id,
	      "a reused handle named and matched anew (now attention)");
	CHECK(a2 && a2 != a && !a2->adapter && strcmp(a2->name, "softmax") == 0,
	      "a reused attention handle is no longer taken for attention");
	struct gsa_kernel *ka2 = launch(101);
	CHECK(ka2 && ka2 != ka && ka2->adapter == &attn_adapter, "a still loaded attention kernel found again");

	/* Library 1 unloaded: its kernels forgotten, functions untouched but attention. */
	gsa_kernel_forget(L1, GSA_HANDLE_KERNEL);
	CHECK(gsa_kernel_lookup(102) == NULL && gsa_kernel_lookup(101) == NULL, "library kernels forgotten");
	CHECK(gsa_kernel_lookup(2) == g && gsa_kernel_lookup(1) == a2, "functions kept");
	CHECK(gsa_kernel_lookup(3) == NULL, "the attention function forgotten with it");
	/* A module handle equal to the library's does not touch functions of another kind. */
	names[50] = "copy", owners[50] = L1;
	struct gsa_kernel *c = launch(50);
	gsa_kernel_forget(L1, GSA_HANDLE_KERNEL);
	CHECK(gsa_kernel_lookup(50) == c, "owner values compared within one handle kind");

	/* Tombstones keep probe chains intact: many handles, half forgotten, the rest found. */
	for (uintptr_t h = 60; h < 100; h++)
		names[h] = "k", owners[h] = h % 2 ? M2 : M1;
	struct gsa_kernel *e[100];
	for (uintptr_t h = 60; h < 100; h++)
		e[h] = launch(h);
	gsa_kernel_forget(M2, GSA_HANDLE_FUNCTION);
	int kept = 0, gone = 0;
	for (uintptr_t h = 60; h < 100; h++) {
		struct gsa_kernel *x = gsa_kernel_lookup(h);
		kept += h % 2 == 0 && x == e[h];
		gone += h % 2 == 1 && x == NULL;
	}
	CHECK_EQ_U64(kept, 20);
	CHECK_EQ_U64(gone, 20);
	return check_report("test_kernel_table");
}

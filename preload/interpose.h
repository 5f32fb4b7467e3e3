/* Wrapper slots: how a function pointer handed out by a resolver (dlsym, cuGetProcAddress,
 * cudaGetDriverEntryPoint) is replaced by a wrapper that forwards to exactly that pointer.
 *
 * A family is one C signature (e.g. cuLaunchKernel's). Different variants of it (legacy,
 * _ptsz, another ABI version of the same signature) are different real pointers; each gets
 * its own slot, whose wrapper calls that slot's real pointer and nothing else. So the
 * wrapper never guesses a suffix: it keeps exactly what the real resolver returned. */
#ifndef GSA_INTERPOSE_H
#define GSA_INTERPOSE_H

#include <stdatomic.h>
#include <stdbool.h>

enum gsa_family {
	GSA_FAM_LAUNCH,          /* cuLaunchKernel(_ptsz) */
	GSA_FAM_LAUNCH_EX,       /* cuLaunchKernelEx(_ptsz) */
	GSA_FAM_LAUNCH_COOP,     /* cuLaunchCooperativeKernel(_ptsz) */
	GSA_FAM_MEM_ALLOC,       /* cuMemAlloc_v2 */
	GSA_FAM_MEM_FREE,        /* cuMemFree_v2 */
	GSA_FAM_MEM_ALLOC_ASYNC, /* cuMemAllocAsync(_ptsz) */
	GSA_FAM_MEM_FREE_ASYNC,  /* cuMemFreeAsync(_ptsz) */
	GSA_FAM_MEM_GET_INFO,    /* cuMemGetInfo_v2 */
	GSA_FAM_GET_PROC,        /* cuGetProcAddress_v2 (5 arguments) */
	GSA_FAM_GET_PROC_LEGACY, /* cuGetProcAddress (4 arguments, before CUDA 12) */
	GSA_FAM_MODULE_UNLOAD,   /* cuModuleUnload */
	GSA_FAM_LIBRARY_UNLOAD,  /* cuLibraryUnload */
	GSA_FAM_COUNT
};

#define GSA_SLOTS 6

struct gsa_family_desc {
	const char *name;
	_Atomic(void *) *real;             /* GSA_SLOTS entries, NULL = free */
	void *const *wrappers;             /* GSA_SLOTS entries */
	void *const *exports;              /* this library's exported functions of the family */
	unsigned n_exports;
};

extern const struct gsa_family_desc *const gsa_families[GSA_FAM_COUNT];

/* The wrapper for real (claiming a slot on first sight), real itself when it is already
 * one of ours, or real unchanged when the slots are exhausted (logged once). */
void *gsa_wrap(enum gsa_family fam, void *real);

/* Defines the slot array and GSA_SLOTS wrappers of a family. HOOK is the family's hook,
 * called as HOOK(real_function_pointer, arguments...). */
/* PARAMS is a parenthesised parameter list, ARGS the parenthesised argument list. */
#define GSA_UNPAREN(...) __VA_ARGS__
#define GSA_SLOT_WRAPPER(FN_T, HOOK, RET, PARAMS, ARGS, I)                                     \
	static RET HOOK##_slot##I PARAMS                                                       \
	{                                                                                      \
		return HOOK((FN_T)atomic_load_explicit(&HOOK##_real[I], memory_order_acquire), \
			    GSA_UNPAREN ARGS);                                                 \
	}

#define GSA_DEFINE_FAMILY(FAMNAME, FN_T, HOOK, RET, PARAMS, ARGS, ...)                  \
	static _Atomic(void *) HOOK##_real[GSA_SLOTS];                                  \
	GSA_SLOT_WRAPPER(FN_T, HOOK, RET, PARAMS, ARGS, 0)                              \
	GSA_SLOT_WRAPPER(FN_T, HOOK, RET, PARAMS, ARGS, 1)                              \
	GSA_SLOT_WRAPPER(FN_T, HOOK, RET, PARAMS, ARGS, 2)                              \
	GSA_SLOT_WRAPPER(FN_T, HOOK, RET, PARAMS, ARGS, 3)                              \
	GSA_SLOT_WRAPPER(FN_T, HOOK, RET, PARAMS, ARGS, 4)                              \
	GSA_SLOT_WRAPPER(FN_T, HOOK, RET, PARAMS, ARGS, 5)                              \
	static void *const HOOK##_wrappers[GSA_SLOTS] = {                               \
		(void *)HOOK##_slot0, (void *)HOOK##_slot1, (void *)HOOK##_slot2,       \
		(void *)HOOK##_slot3, (void *)HOOK##_slot4, (void *)HOOK##_slot5};      \
	static void *const HOOK##_exports[] = {__VA_ARGS__};                            \
	const struct gsa_family_desc FAMNAME = {                                        \
		#HOOK, HOOK##_real, HOOK##_wrappers, HOOK##_exports,                    \
		sizeof HOOK##_exports / sizeof HOOK##_exports[0]};

/* The real function behind one of this library's exported names, looked up on first use
 * (the next definition in the search order, else libcuda.so.1). */
#define GSA_EXPORT_REAL(FN_T, NAME)                                                     \
	({                                                                              \
		static _Atomic(FN_T) real_;                                             \
		FN_T r_ = atomic_load_explicit(&real_, memory_order_acquire);           \
		if (__builtin_expect(!r_, 0)) {                                         \
			r_ = (FN_T)gsa_next_sym(NAME);                                  \
			atomic_store_explicit(&real_, r_, memory_order_release);        \
		}                                                                       \
		r_;                                                                     \
	})

#define GSA_EXPORT __attribute__((visibility("default")))

/* An exported function named SYM (C name CNAME, so cuda.h's macros and prototypes do not
 * clash) that runs HOOK on the real SYM. */
#define GSA_EXPORT_AS(RET, FN_T, HOOK, CNAME, SYM, PARAMS, ARGS)                            \
	GSA_EXPORT RET CNAME PARAMS __asm__(SYM);                                            \
	RET CNAME PARAMS { return HOOK(GSA_EXPORT_REAL(FN_T, SYM), GSA_UNPAREN ARGS); }

#endif

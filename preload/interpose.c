/* Slot claiming (see interpose.h). */
#include "preload/interpose.h"

#include <stddef.h>

#include "preload/log.h"

extern const struct gsa_family_desc gsa_family_launch, gsa_family_launch_ex,
	gsa_family_launch_coop, gsa_family_mem_alloc, gsa_family_mem_free,
	gsa_family_mem_alloc_async, gsa_family_mem_free_async, gsa_family_mem_get_info,
	gsa_family_get_proc, gsa_family_get_proc_legacy, gsa_family_module_unload,
	gsa_family_library_unload;

const struct gsa_family_desc *const gsa_families[GSA_FAM_COUNT] = {
	[GSA_FAM_LAUNCH] = &gsa_family_launch,
	[GSA_FAM_LAUNCH_EX] = &gsa_family_launch_ex,
	[GSA_FAM_LAUNCH_COOP] = &gsa_family_launch_coop,
	[GSA_FAM_MEM_ALLOC] = &gsa_family_mem_alloc,
	[GSA_FAM_MEM_FREE] = &gsa_family_mem_free,
	[GSA_FAM_MEM_ALLOC_ASYNC] = &gsa_family_mem_alloc_async,
	[GSA_FAM_MEM_FREE_ASYNC] = &gsa_family_mem_free_async,
	[GSA_FAM_MEM_GET_INFO] = &gsa_family_mem_get_info,
	[GSA_FAM_GET_PROC] = &gsa_family_get_proc,
	[GSA_FAM_GET_PROC_LEGACY] = &gsa_family_get_proc_legacy,
	[GSA_FAM_MODULE_UNLOAD] = &gsa_family_module_unload,
	[GSA_FAM_LIBRARY_UNLOAD] = &gsa_family_library_unload,
};

static bool is_ours(const struct gsa_family_desc *d, void *p)
{
	for (unsigned i = 0; i < GSA_SLOTS; i++)
		if (d->wrappers[i] == p)
			return true;
	for (unsigned i = 0; i < d->n_exports; i++)
		if (d->exports[i] == p)
			return true;
	return false;
}

void *gsa_wrap(enum gsa_family fam, void *real)
{
	const struct gsa_family_desc *d = gsa_families[fam];
	if (!real || is_ours(d, real))
		return real;
	for (unsigned i = 0; i < GSA_SLOTS; i++) {
		void *cur = atomic_load_explicit(&d->real[i], memory_order_acquire);
		if (cur == real)
			return d->wrappers[i];
		if (!cur) {
			void *expected = NULL;
			if (atomic_compare_exchange_strong(&d->real[i], &expected, real) ||
			    expected == real)
				return d->wrappers[i];
		}
	}
	GSA_LOG_ONCE(GSA_LOG_WARN, GSA_CODE_SLOTS,
		     "more than %d variants of %s resolved: further ones are not observed",
		     GSA_SLOTS, d->name);
	return real;
}

/* What the library knows about each kernel handle it has seen launched: name, parameter
 * layout, id (its counter index) and the adapter that recognised it, if any. Looked up on
 * every launch without locks; filled in once per handle, off the hot path. */
#ifndef GSA_KERNEL_TABLE_H
#define GSA_KERNEL_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "preload/counters.h"

struct gsa_adapter;

struct gsa_kernel {
	uint32_t id;
	uint8_t handle_kind;    /* enum gsa_handle_kind (trace_format.h) */
	uint8_t named;
	uintptr_t handle;
	uint32_t param_count;   /* GSA_PARAMS_UNKNOWN when the driver could not tell */
	uint32_t *param_offsets;
	uint32_t *param_sizes;
	char *name;             /* "" when unnamed, never NULL */
	const struct gsa_adapter *adapter; /* NULL: plain pass-through */
	void *adapter_state;
	uintptr_t owner;        /* the CUmodule of a CUfunction, the CUlibrary of a CUkernel;
	                           0 when the driver does not say (or a runtime host stub) */
};

#define GSA_PARAMS_UNKNOWN 0xffffffffu
/* A slot whose kernel was forgotten (gsa_kernel_forget): probes go on past it, and it is
 * never claimed again. No handle has this value. */
#define GSA_KERNEL_GONE UINTPTR_MAX
#define GSA_KERNEL_TABLE_SIZE (1u << 17) /* slots; twice GSA_MAX_KERNELS keeps probes short */

struct gsa_kernel_slot {
	_Atomic uintptr_t key;
	_Atomic(struct gsa_kernel *) val;
};
extern struct gsa_kernel_slot gsa_kernel_slots[GSA_KERNEL_TABLE_SIZE];

static inline uint32_t gsa_kernel_hash(uintptr_t h)
{
	uint64_t x = (uint64_t)h * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(x >> 40) & (GSA_KERNEL_TABLE_SIZE - 1);
}

/* The entry for handle, or NULL if it has not been seen (or is still being filled in). */
static inline struct gsa_kernel *gsa_kernel_lookup(uintptr_t handle)
{
	for (uint32_t i = gsa_kernel_hash(handle), n = 0; n < 64; i = (i + 1) & (GSA_KERNEL_TABLE_SIZE - 1), n++) {
		uintptr_t k = atomic_load_explicit(&gsa_kernel_slots[i].key, memory_order_acquire);
		if (k == handle)
			return atomic_load_explicit(&gsa_kernel_slots[i].val, memory_order_acquire);
		if (!k)
			return NULL;
	}
	return NULL;
}

/* Slow path: names the handle through the driver (kind: GSA_HANDLE_FUNCTION tries
 * CUfunction then CUkernel; GSA_HANDLE_HOST_FUNC names a runtime host stub), matches the
 * adapters, inserts it. Returns NULL only when the table is full (logged once). */
struct gsa_kernel *gsa_kernel_discover(uintptr_t handle, int kind);

static inline struct gsa_kernel *gsa_kernel_get(uintptr_t handle, int kind)
{
	struct gsa_kernel *k = gsa_kernel_lookup(handle);
	return __builtin_expect(k != NULL, 1) ? k : gsa_kernel_discover(handle, kind);
}

/* Before a module (kind GSA_HANDLE_FUNCTION) or a library (GSA_HANDLE_KERNEL) is unloaded:
 * its kernels' handles may be given to other kernels afterwards, so their entries are
 * dropped from the lookup (a later launch of that handle is discovered anew, with a new
 * id), and so is every entry an adapter claimed, whatever its owner (an attention kernel
 * must never be assumed for a reused handle; entries whose owner the driver did not tell
 * are otherwise kept). Entries stay readable by id for the trace. Off the hot path: scans
 * the table. */
void gsa_kernel_forget(uintptr_t owner, int kind);

/* Entries by id, for the trace: ids [0, gsa_kernel_count()) are all published. */
uint32_t gsa_kernel_count(void);
struct gsa_kernel *gsa_kernel_by_id(uint32_t id);

#endif

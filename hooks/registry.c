/* Adapter registry and dispatch (see registry.h). The built-in adapters are listed here, one
 * file per kernel family in this folder. */
#include "hooks/registry.h"

#include <stdatomic.h>
#include <stddef.h>

#include "sparse/sparse.h"

#define MAX_ADAPTERS 16

extern const struct gsa_adapter gsa_adapter_triton_unified, gsa_adapter_triton_reduce,
	gsa_adapter_flash_attn2;

static const struct gsa_adapter *const builtin[] = {
	&gsa_adapter_triton_unified,
	&gsa_adapter_triton_reduce,
	&gsa_adapter_flash_attn2,
	NULL,
};
static _Atomic(const struct gsa_adapter *) extra[MAX_ADAPTERS];

bool gsa_hooks_register(const struct gsa_adapter *a)
{
	for (size_t i = 0; i < MAX_ADAPTERS; i++) {
		const struct gsa_adapter *expected = NULL;
		if (atomic_compare_exchange_strong(&extra[i], &expected, a))
			return true;
	}
	return false;
}

const struct gsa_adapter *gsa_hooks_match(struct gsa_kernel *k)
{
	for (size_t i = 0; builtin[i]; i++)
		if (builtin[i]->match(k))
			return builtin[i];
	for (size_t i = 0; i < MAX_ADAPTERS; i++) {
		const struct gsa_adapter *a = atomic_load(&extra[i]);
		if (a && a->match(k))
			return a;
	}
	return NULL;
}

/* Room for a rewritten parameter array; the driver copies parameter values at launch, so it
 * only has to live until the real launch returns on this thread. */
static __thread _Alignas(16) unsigned char encode_storage[8192];

void **gsa_hooks_dispatch(const struct gsa_launch *l)
{
	const struct gsa_adapter *a = l->kernel->adapter;
	struct gsa_attention att;
	struct gsa_rewrite rw;
	if (!a->decode(l, &att))
		return l->params;
	bool rewrite = a->follows ? gsa_sparse_follow(l, &att, &rw) : gsa_sparse_select(l, &att, &rw);
	if (!rewrite || !a->encode)
		return l->params;
	void **p = a->encode(l, &rw, encode_storage, sizeof encode_storage);
	if (!p) {
		gsa_sparse_encode_failed(l);
		return l->params;
	}
	return p;
}

/* Adapter registry and dispatch (see registry.h). The built-in adapters are listed here, one
 * file per kernel family in this folder; the GSA attention adapters arrive with the sparse
 * layer. */
#include "hooks/registry.h"

#include <stdatomic.h>
#include <stddef.h>

#define MAX_ADAPTERS 16

static const struct gsa_adapter *builtin[] = {NULL};
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

const struct gsa_adapter *gsa_hooks_match(const struct gsa_kernel *k)
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

void **gsa_hooks_dispatch(const struct gsa_launch *l)
{
	const struct gsa_adapter *a = l->kernel->adapter;
	struct gsa_attention att;
	if (!a->decode(l, &att))
		return l->params;
	/* Selection (sparse/) plugs in here: until it does, a recognised launch runs dense. */
	return l->params;
}

/* The registry of kernel-family adapters and the launch dispatch into them. */
#ifndef GSA_HOOKS_REGISTRY_H
#define GSA_HOOKS_REGISTRY_H

#include "hooks/adapter.h"

/* The first adapter whose match() accepts k, or NULL. Off the launch path. */
const struct gsa_adapter *gsa_hooks_match(struct gsa_kernel *k);

/* A launch of a kernel that an adapter matched. Returns the parameter array to launch with:
 * l->params itself (run unmodified) or a rewritten array. Never fails: any failure inside
 * means the unmodified launch. */
void **gsa_hooks_dispatch(const struct gsa_launch *l);

/* Tests register extra adapters before any launch; the library's own list is in
 * hooks/registry.c. Returns false when the registry is full. */
bool gsa_hooks_register(const struct gsa_adapter *a);

#endif

/* Process-wide state of the library: configuration (parsed at load) and whether the process
 * has started using CUDA (the first interposed CUDA call reports configuration errors and
 * starts the trace, so that processes that never use CUDA see nothing of the library). */
#ifndef GSA_STATE_H
#define GSA_STATE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "preload/config.h"

extern struct gsa_config gsa_cfg;

/* 1 once gsa_first_use() ran in this process (reset in a forked child). */
extern atomic_int gsa_used;
/* Observe and count: configuration valid and GSA_DISABLE unset. Set at load, then only read. */
extern bool gsa_active;

void gsa_first_use_slow(void);

/* Every interposed CUDA entry point calls this first: one relaxed load when warm. */
static inline void gsa_first_use(void)
{
	if (__builtin_expect(!atomic_load_explicit(&gsa_used, memory_order_relaxed), 0))
		gsa_first_use_slow();
}

#define GSA_VERSION "0.1.0"

#endif

/* A hash of the call stack that made an allocation, so that allocations made by the same
 * code (one KV-cache tensor per layer, say) share one call-site identity. */
#ifndef GSA_CALLSITE_H
#define GSA_CALLSITE_H

#include <stdint.h>

/* XXH64 over the return addresses of up to 16 frames above the library's own; 0 if no
 * unwinder is available. Stable within a process (addresses are not made relative). */
uint64_t gsa_callsite_hash(void);

#endif

/* Per-launch selection statistics (blocks kept and total per sequence), written by the
 * selection kernel into host-mapped pinned memory so that they reach the trace without any
 * copy or synchronisation, also from CUDA-graph replays (where the host enqueues nothing).
 * Counters live in device memory (device atomics on mapped host memory are not portable);
 * only plain stores cross the bus. A slot is published by writing its sequence number last. */
#ifndef GSA_STATS_RING_H
#define GSA_STATS_RING_H

#include <stdint.h>

#define GSA_RING_SLOTS 1024
#define GSA_RING_SEQS 256 /* sequences recorded per launch (the count is always exact) */

struct gsa_stats_slot {
	uint64_t seq;        /* launch number + 1 once complete; 0 while being written */
	int32_t layer;
	uint32_t kernel_id;
	uint32_t num_seqs;
	uint32_t reserved;
	uint32_t kept_total[GSA_RING_SEQS][2];
};

struct gsa_stats_host {      /* host-mapped */
	struct gsa_stats_slot slots[GSA_RING_SLOTS];
};

struct gsa_stats_dev {       /* device memory */
	unsigned long long next;    /* launches so far */
	unsigned long long current; /* the launch the selection kernel is finishing */
	unsigned int done[GSA_RING_SLOTS];
};

#endif

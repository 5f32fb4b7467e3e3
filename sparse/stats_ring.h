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
	uint64_t gpu_start_ns, select_ns; /* GPU clock at the start, duration of the selection */
	uint32_t kept_total[GSA_RING_SEQS][2];
};

/* Kept-block bitmaps of the first GSA_BLOCK_SEQS sequences of launches of the layers
 * GSA_TRACE_BLOCKS names; slot = launch number % GSA_BLOCK_SLOTS. Written before the
 * launch's statistics slot is published, so a published statistics slot means its bitmaps
 * are complete. */
#define GSA_BLOCK_SLOTS 64
#define GSA_BLOCK_SEQS 8
#define GSA_BLOCK_WORDS 512 /* bits for up to 16384 blocks per sequence */

struct gsa_blocks_slot {
	uint64_t seq;        /* launch number + 1 once complete */
	int32_t layer;
	uint32_t total, kept, sink, local, bits;
	uint32_t words[GSA_BLOCK_WORDS];
};

struct gsa_stats_host {      /* host-mapped */
	struct gsa_stats_slot slots[GSA_RING_SLOTS];
	struct gsa_blocks_slot blocks[GSA_BLOCK_SLOTS][GSA_BLOCK_SEQS];
};

struct gsa_stats_dev {       /* device memory, zeroed at allocation */
	unsigned long long next;    /* launches completed: the number of the one running */
	unsigned long long start_ns[GSA_RING_SLOTS]; /* ~(earliest start) of the launch, 0: none */
	unsigned int done[GSA_RING_SLOTS];           /* sequences finished */
};

#endif

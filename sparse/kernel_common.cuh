// What both halves of the selection share (see gsa_kernels.cu).
#ifndef GSA_KERNEL_COMMON_CUH
#define GSA_KERNEL_COMMON_CUH

#include <stdint.h>

#include "sparse/budget.h"
#include "sparse/select_args.h"

namespace {

__device__ gsa_budget plan_sequence(const gsa_select_args &a, int s)
{
	int qlen = a.query_start ? a.query_start[s + 1] - a.query_start[s] : 1;
	return gsa_plan(a.seq_lens[s], qlen, a.block_size, a.ratio, a.sink_blocks, a.local_blocks,
			a.min_blocks, a.max_blocks, a.min_tokens, a.bt_stride);
}

// The GPU's nanosecond clock (the same for every SM), for the selection's duration.
__device__ __forceinline__ unsigned long long gpu_clock_ns()
{
	unsigned long long t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
	return t;
}

}  // namespace

#endif

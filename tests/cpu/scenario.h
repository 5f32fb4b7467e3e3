/* Shared between the scenario binary (tests/cpu/scenario.c, run under the preload) and the
 * tests that run it and check its trace.
 *
 * A scenario tells its test what the trace must hold with lines on stdout:
 *   E <pid> launch <name> <count>          exactly count launches of the kernel name
 *   E <pid> ignore <name>                  launches of name are not asserted (failed launches)
 *   E <pid> ignore_unnamed                 launches of unnamed kernels are not asserted
 *   E <pid> handle <name> <hex>            the kernel record of name has this handle
 *   E <pid> alloc <hexptr> <size> <apimask> <hexstream>
 *                                          one ALLOC record: ptr, size, api in apimask
 *                                          (bit 1 << api), stream
 *   E <pid> free <hexptr> <known>          one FREE record with this known flag
 *   E <pid> traced <0|1>                   whether pid writes a trace at all
 * Any kernel name not announced must have no launches; the ALLOC and FREE records must be
 * exactly those announced (as multisets), for each pid that announced anything.
 */
#ifndef GSA_TEST_SCENARIO_H
#define GSA_TEST_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#include "preload/trace_format.h"

struct kspec {
	const char *name;
	int kind;       /* GSA_HANDLE_FUNCTION or GSA_HANDLE_KERNEL */
	int noinfo;     /* cuFuncGetParamInfo fails */
	unsigned n;
	size_t sizes[4];
	uint32_t offsets[4]; /* what the fake reports (natural alignment) */
};

enum {
	K_ALPHA, K_BETA, K_GAMMA, K_NOINFO, K_EMPTY, K_COOP, K_EX, K_PROC, K_RT, K_RT_EX,
	K_FAIL, K_COUNT
};

static const struct kspec kspecs[K_COUNT] __attribute__((unused)) = {
	[K_ALPHA] = {"k_alpha", GSA_HANDLE_FUNCTION, 0, 3, {8, 4, 2}, {0, 8, 12}},
	[K_BETA] = {"k_beta", GSA_HANDLE_FUNCTION, 0, 4, {4, 8, 16, 1}, {0, 8, 16, 32}},
	[K_GAMMA] = {"k_gamma", GSA_HANDLE_KERNEL, 0, 2, {8, 12}, {0, 8}},
	[K_NOINFO] = {"k_noinfo", GSA_HANDLE_FUNCTION, 1, 1, {4}, {0}},
	[K_EMPTY] = {"k_empty", GSA_HANDLE_FUNCTION, 0, 0, {0}, {0}},
	[K_COOP] = {"k_coop", GSA_HANDLE_FUNCTION, 0, 1, {8}, {0}},
	[K_EX] = {"k_ex", GSA_HANDLE_FUNCTION, 0, 2, {2, 4}, {0, 4}},
	[K_PROC] = {"k_proc", GSA_HANDLE_FUNCTION, 0, 2, {8, 8}, {0, 8}},
	[K_RT] = {"k_rt", GSA_HANDLE_KERNEL, 0, 2, {8, 4}, {0, 8}},
	[K_RT_EX] = {"k_rt_ex", GSA_HANDLE_KERNEL, 0, 1, {4}, {0}},
	[K_FAIL] = {"k_fail", GSA_HANDLE_FUNCTION, 0, 1, {4}, {0}},
};

/* Stress: 8 threads x 1,000,000 launches over 4 kernels; in each run of 10 launches a
 * thread launches kernel 0 four times, 1 three times, 2 twice and 3 once. */
#define STRESS_THREADS 8
#define STRESS_PER_THREAD 1000000
static const char *const stress_names[4] __attribute__((unused)) = {
	"stress_k0", "stress_k1", "stress_k2", "stress_k3"};

/* Fork scenarios. */
#define FORK_CHILDREN 6
#define FORK_PARENT_LAUNCHES 2000
#define FORK_COMMON_PARENT 5
#define FORK_COMMON_CHILD 7

/* Environment variables between a test and its scenario. */
#define SCENARIO_REPORT_ENV "SCENARIO_REPORT"   /* file that receives the child's FAIL lines */
#define SCENARIO_MODE_ENV "SCENARIO_MODE"       /* "active" (default) or "passthrough" */

#endif

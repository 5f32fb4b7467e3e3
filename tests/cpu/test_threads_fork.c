/* Threads and fork (point 6 of the contract):
 *   stress: 8 threads x 1,000,000 launches of 4 kernels, half through the exported
 *     cuLaunchKernel, half through cuGetProcAddress wrappers (legacy and _ptsz): the trace
 *     holds exactly 8,000,000 launches with exact per-kernel counts;
 *   fork before any CUDA use, and fork after initialisation (with a thread launching while
 *     the process forks, several times): every process writes its own trace (trace-%p)
 *     with exactly its own counts and allocations, and nothing deadlocks (the children
 *     have an alarm() watchdog, the test a timeout). */
#include "tests/cpu/check.h"
#include "tests/cpu/preload_harness.h"

static const char *const trace_env[] = {"GSA_TRACE=@DIR@/trace-%p.bin", NULL};

static void check_all_processes(const struct run *r, size_t expect_procs)
{
	struct expectations *ex = calloc(16, sizeof *ex);
	size_t n = parse_expectations(r->out, ex, 16);
	CHECK(n == expect_procs, "[%s] %zu processes announced expectations, expected %zu", r->label,
	      n, expect_procs);
	CHECK(count_traces(r) == (int)n, "[%s] %d trace files for %zu processes", r->label,
	      count_traces(r), n);
	bool parent_seen = false;
	for (size_t i = 0; i < n; i++) {
		parent_seen |= ex[i].pid == r->pid;
		struct gsa_tr_summary s;
		check_trace(r, &ex[i], &s);
		if (s.kernels) {
			uint64_t want = 0;
			for (size_t k = 0; k < ex[i].n_launch; k++)
				want += ex[i].launch[k].count;
			CHECK(gsa_tr_total_launches(&s) == want,
			      "[%s] pid %d: %llu launches in all, expected %llu", r->label, ex[i].pid,
			      (unsigned long long)gsa_tr_total_launches(&s), (unsigned long long)want);
			CHECK(s.dropped_bytes == 0, "[%s] pid %d: %llu bytes of records dropped", r->label,
			      ex[i].pid, (unsigned long long)s.dropped_bytes);
			if (ex[i].pid != r->pid)
				CHECK(s.ppid == (uint32_t)r->pid, "[%s] child %d: ppid %u, expected %d",
				      r->label, ex[i].pid, s.ppid, (int)r->pid);
		}
		gsa_tr_free(&s);
	}
	CHECK(parent_seen, "[%s] the parent announced nothing", r->label);
	free(ex);
}

int main(void)
{
	struct harness h;
	if (!harness_init(&h))
		return check_report("test_threads_fork");

	{
		struct run r;
		const char *argv[] = {NULL, "stress", NULL};
		harness_run(&h, &r, "stress", argv, trace_env, true, 300);
		harness_merge(&r);
		CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", r.label, r.err);
		struct expectations ex[2];
		size_t n = parse_expectations(r.out, ex, 2);
		CHECK(n == 1 && ex[0].n_launch == 4, "[%s] expectations: %zu processes", r.label, n);
		if (n == 1) {
			uint64_t total = 0;
			for (size_t i = 0; i < ex[0].n_launch; i++)
				total += ex[0].launch[i].count;
			CHECK(total == (uint64_t)STRESS_THREADS * STRESS_PER_THREAD,
			      "[%s] announced %llu launches", r.label, (unsigned long long)total);
		}
		check_all_processes(&r, 1);
		const char *t = strstr(r.out, "stress-seconds ");
		if (t)
			printf("NOTE stress: %d x %d launches under the preload took %.3f s of launching "
			       "(%.3f s in all)\n",
			       STRESS_THREADS, STRESS_PER_THREAD, atof(t + 15), r.seconds);
		run_free(&r);
	}
	{
		struct run r;
		const char *argv[] = {NULL, "fork-before", NULL};
		harness_run(&h, &r, "fork before CUDA use", argv, trace_env, true, 120);
		harness_merge(&r);
		CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", r.label, r.err);
		check_all_processes(&r, 2);
		run_free(&r);
	}
	{
		struct run r;
		const char *argv[] = {NULL, "fork-after", NULL};
		harness_run(&h, &r, "fork after initialisation", argv, trace_env, true, 120);
		harness_merge(&r);
		CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", r.label, r.err);
		check_all_processes(&r, 1 + FORK_CHILDREN);
		run_free(&r);
	}
	harness_finish(&h);
	return check_report("test_threads_fork");
}

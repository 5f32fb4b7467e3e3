/* The interposition mechanics (points 1-4 of the contract), through the fake driver and
 * runtime: runs the "interpose" scenario under the preload (it checks, in its own process,
 * that every exported wrapper, dlsym result and resolver result reaches exactly the variant
 * it stands for, with bit-identical arguments, and that results come back unchanged), then
 * checks its trace: launches per kernel name, kernel records (kind, handle, parameter
 * layout), ALLOC and FREE records. Also runs the scenario without the preload, so that a
 * broken fake cannot pass for a working library. */
#include "tests/cpu/check.h"
#include "tests/cpu/preload_harness.h"

static void check_kernel_records(const struct run *r, const struct gsa_tr_summary *s)
{
	for (int i = 0; i < K_COUNT; i++) {
		const struct kspec *k = &kspecs[i];
		const struct gsa_tr_kernel *t = gsa_tr_find_kernel(s, k->name);
		CHECK(t != NULL, "[%s] no kernel record named %s", r->label, k->name);
		if (!t)
			continue;
		CHECK(t->named == 1, "[%s] %s: named=%u", r->label, k->name, t->named);
		CHECK(t->handle_kind == k->kind, "[%s] %s: handle_kind %u, expected %d", r->label,
		      k->name, t->handle_kind, k->kind);
		if (k->noinfo) {
			CHECK(t->param_count == 0xffffffffu, "[%s] %s: param_count %u, expected unknown",
			      r->label, k->name, t->param_count);
			continue;
		}
		CHECK(t->param_count == k->n, "[%s] %s: param_count %u, expected %u", r->label, k->name,
		      t->param_count, k->n);
		for (unsigned p = 0; p < k->n && p < t->param_count; p++) {
			CHECK(t->param_sizes && t->param_sizes[p] == k->sizes[p],
			      "[%s] %s: parameter %u size %u, expected %zu", r->label, k->name, p,
			      t->param_sizes ? t->param_sizes[p] : 0, k->sizes[p]);
			CHECK(t->param_offsets && t->param_offsets[p] == k->offsets[p],
			      "[%s] %s: parameter %u offset %u, expected %u", r->label, k->name, p,
			      t->param_offsets ? t->param_offsets[p] : 0, k->offsets[p]);
		}
	}
	/* A runtime launch is seen at the driver level only: no host-stub records. */
	for (size_t j = 0; j < s->n_kernels; j++)
		CHECK(s->kernels[j].handle_kind != GSA_HANDLE_HOST_FUNC || s->kernels[j].launches == 0,
		      "[%s] kernel \"%s\" recorded as a runtime host stub with %llu launches "
		      "(counted twice?)",
		      r->label, s->kernels[j].name, (unsigned long long)s->kernels[j].launches);
	/* The device the allocations were on. */
	CHECK(s->n_devices == 1, "[%s] %zu DEVICE records, expected 1", r->label, s->n_devices);
	if (s->n_devices >= 1) {
		const struct gsa_tr_device *d = &s->devices[0];
		CHECK(d->ordinal == 0 && d->cc_major == 9 && d->cc_minor == 0 && d->sm_count == 132 &&
			      d->total_mem == (80ull << 30) && d->name && !strcmp(d->name, "Fake GPU"),
		      "[%s] device record: %d cc %d.%d sms %d mem %llu name %s", r->label, d->ordinal,
		      d->cc_major, d->cc_minor, d->sm_count, (unsigned long long)d->total_mem,
		      d->name ? d->name : "(null)");
	}
}

int main(void)
{
	struct harness h;
	if (!harness_init(&h))
		return check_report("test_interpose");

	/* The scenario against the fakes alone: its own checks must hold without the library
	 * (the library only ever forwards). */
	{
		struct run r;
		const char *argv[] = {NULL, "interpose", NULL};
		const char *env[] = {"SCENARIO_MODE=passthrough", NULL};
		harness_run(&h, &r, "interpose without preload", argv, env, false, 120);
		harness_merge(&r);
		CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", r.label, r.err);
		CHECK(count_traces(&r) == 0, "[%s] a trace without the preload?", r.label);
		run_free(&r);
	}

	/* The fake's own behaviour, alone and under the preload (which must not disturb the
	 * calls it does not interpose). */
	for (int pre = 0; pre < 2; pre++) {
		struct run r;
		const char *argv[] = {NULL, "fake", NULL};
		const char *env[] = {"GSA_TRACE=@DIR@/trace-%p.bin", NULL};
		harness_run(&h, &r, pre ? "fake under preload" : "fake", argv, env, pre, 60);
		harness_merge(&r);
		CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", r.label, r.err);
		run_free(&r);
	}

	/* Under the preload, tracing. */
	struct run r;
	const char *argv[] = {NULL, "interpose", NULL};
	const char *env[] = {"GSA_TRACE=@DIR@/trace-%p.bin", NULL};
	harness_run(&h, &r, "interpose", argv, env, true, 120);
	harness_merge(&r);
	CHECK(r.err[0] == 0, "[%s] stderr not empty (valid config, GSA_LOG unset):\n%s", r.label,
	      r.err);
	struct expectations ex[2];
	size_t n = parse_expectations(r.out, ex, 2);
	CHECK(n == 1 && ex[0].pid == r.pid, "[%s] expectations for %zu processes (pid %d)", r.label, n,
	      n ? ex[0].pid : -1);
	CHECK(count_traces(&r) == 1, "[%s] %d trace files, expected 1", r.label, count_traces(&r));
	if (n == 1) {
		/* Sanity of the announcement itself: every path was taken. */
		uint64_t total = 0;
		for (size_t i = 0; i < ex[0].n_launch; i++)
			total += ex[0].launch[i].count;
		CHECK(ex[0].n_launch == K_COUNT - 1 && total >= 50 && ex[0].n_alloc >= 15 &&
			      ex[0].n_free >= 15,
		      "[%s] the scenario announced %zu kernels, %llu launches, %zu allocs, %zu frees",
		      r.label, ex[0].n_launch, (unsigned long long)total, ex[0].n_alloc, ex[0].n_free);
		struct gsa_tr_summary s;
		check_trace(&r, &ex[0], &s);
		if (s.kernels) {
			check_kernel_records(&r, &s);
			uint64_t named = 0;
			for (size_t j = 0; j < s.n_kernels; j++)
				if (strcmp(s.kernels[j].name, "k_fail") && s.kernels[j].name[0])
					named += s.kernels[j].launches;
			CHECK(named == total, "[%s] %llu launches of announced kernels, expected %llu",
			      r.label, (unsigned long long)named, (unsigned long long)total);
			CHECK(s.log_errors == 0 && s.log_warnings == 0,
			      "[%s] the trace holds %llu errors and %llu warnings", r.label,
			      (unsigned long long)s.log_errors, (unsigned long long)s.log_warnings);
		}
		gsa_tr_free(&s);
	}
	run_free(&r);
	harness_finish(&h);
	return check_report("test_interpose");
}

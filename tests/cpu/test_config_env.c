/* Configuration from the environment (point 5 of the contract), end to end: the "interpose"
 * scenario run under the preload with valid and invalid GSA_* values, and processes that
 * never use CUDA.
 *   valid config, GSA_LOG unset: nothing on stderr, a trace with exact counts;
 *   a bad value: exactly one line on stderr ("gsa-preload: ..." naming the variable and the
 *     value), every call still forwarded exactly (the scenario checks that in passthrough
 *     mode), no trace file;
 *   GSA_DISABLE on: calls forwarded, nothing on stderr, no trace file;
 *   a process that never uses CUDA prints nothing and exits normally, whatever the config. */
#include "tests/cpu/check.h"
#include "tests/cpu/preload_harness.h"

static const char *const interpose_argv[] = {NULL, "interpose", NULL};

/* Runs the scenario traced with one extra variable (or none); checks what a valid
 * configuration must give. */
static void run_valid(struct harness *h, const char *var, bool quiet)
{
	char label[160];
	snprintf(label, sizeof label, "valid %s", var ? var : "(defaults)");
	const char *env[] = {"GSA_TRACE=@DIR@/trace-%p.bin", var, NULL};
	struct run r;
	harness_run(h, &r, label, interpose_argv, env, true, 120);
	harness_merge(&r);
	if (quiet)
		CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", label, r.err);
	else
		for (const char *l = r.err; *l;) {
			CHECK(strncmp(l, "gsa-preload:", 12) == 0, "[%s] stderr line not from the library: %s",
			      label, l);
			const char *e = strchr(l, '\n');
			l = e ? e + 1 : l + strlen(l);
		}
	struct expectations ex[2];
	size_t n = parse_expectations(r.out, ex, 2);
	CHECK(n == 1 && count_traces(&r) == 1, "[%s] %zu processes announced, %d trace files", label, n,
	      count_traces(&r));
	if (n == 1) {
		struct gsa_tr_summary s;
		check_trace(&r, &ex[0], &s);
		const char *status = NULL;
		for (size_t i = 0; i < s.n_config; i++)
			if (!strcmp(s.config[i].key, "status"))
				status = s.config[i].value;
		CHECK(status && !strcmp(status, "active"), "[%s] config status %s, expected active", label,
		      status ? status : "(none)");
		gsa_tr_free(&s);
	}
	run_free(&r);
}

/* Runs the scenario with a bad value: one line naming it, forwarding intact, no trace. */
static void run_invalid(struct harness *h, const char *name, const char *value)
{
	char var[128], label[160];
	snprintf(var, sizeof var, "%s=%s", name, value);
	snprintf(label, sizeof label, "invalid %s=\"%s\"", name, value);
	const char *trace = strcmp(name, "GSA_TRACE") ? "GSA_TRACE=@DIR@/trace-%p.bin" : var;
	const char *env[] = {"SCENARIO_MODE=passthrough", trace, var, NULL};
	struct run r;
	harness_run(h, &r, label, interpose_argv, env, true, 120);
	harness_merge(&r);
	CHECK(count_lines(r.err) == 1, "[%s] %d lines on stderr, expected exactly 1:\n%s", label,
	      count_lines(r.err), r.err);
	CHECK(strncmp(r.err, "gsa-preload:", 12) == 0, "[%s] stderr does not start with gsa-preload: %s",
	      label, r.err);
	CHECK_CONTAINS(r.err, name);
	if (value[0])
		CHECK_CONTAINS(r.err, value);
	CHECK(count_traces(&r) == 0, "[%s] %d trace files written, expected none", label,
	      count_traces(&r));
	run_free(&r);
}

/* GSA_DISABLE on: forwarded, silent, untraced. */
static void run_disabled(struct harness *h, const char *value)
{
	char var[64], label[96];
	snprintf(var, sizeof var, "GSA_DISABLE=%s", value);
	snprintf(label, sizeof label, "disabled %s", var);
	const char *env[] = {"SCENARIO_MODE=passthrough", "GSA_TRACE=@DIR@/trace-%p.bin", var, NULL};
	struct run r;
	harness_run(h, &r, label, interpose_argv, env, true, 120);
	harness_merge(&r);
	CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", label, r.err);
	CHECK(count_traces(&r) == 0, "[%s] %d trace files written, expected none", label,
	      count_traces(&r));
	run_free(&r);
}

/* A process that never uses CUDA: no output from the library, normal exit. */
static void run_no_cuda(struct harness *h, const char *const *argv, const char *var,
			const char *expect_out)
{
	char label[192];
	snprintf(label, sizeof label, "no CUDA: %s %s with %s", argv[0] ? argv[0] : "scenario",
		 argv[1] ? argv[1] : "", var);
	const char *env[] = {"GSA_TRACE=@DIR@/trace-%p.bin", var, NULL};
	struct run r;
	harness_run(h, &r, label, argv, env, true, 30);
	CHECK(run_exited_ok(&r), "[%s] %s", label, h_status_text(&r));
	CHECK(r.err[0] == 0, "[%s] stderr not empty:\n%s", label, r.err);
	CHECK(strcmp(r.out, expect_out) == 0, "[%s] stdout \"%s\", expected \"%s\"", label, r.out,
	      expect_out);
	run_free(&r);
}

int main(void)
{
	struct harness h;
	if (!harness_init(&h))
		return check_report("test_config_env");

	static const char *const valid[] = {
		NULL, "GSA_RATIO=1", "GSA_RATIO=0.5", "GSA_RATIO=0.001", "GSA_RATIO=0.3",
		"GSA_DISABLE=0", "GSA_DISABLE=false", "GSA_DISABLE=no", "GSA_DISABLE=off",
		"GSA_LOG=error", "GSA_LOG=warn", "GSA_POLICY=mean", "GSA_POLICY=quest",
		"GSA_SINK_BLOCKS=0", "GSA_LOCAL_BLOCKS=4", "GSA_MIN_BLOCKS=8", "GSA_MAX_BLOCKS=none",
		"GSA_MAX_BLOCKS=64", "GSA_MIN_TOKENS=0", "GSA_MIN_TOKENS=4096",
	};
	for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
		run_valid(&h, valid[i], true);
	run_valid(&h, "GSA_LOG=info", false);
	run_valid(&h, "GSA_LOG=debug", false);

	/* GSA_TRACE without %p is the exact path. */
	{
		const char *env[] = {"GSA_TRACE=@DIR@/plain.bin", NULL};
		struct run r;
		harness_run(&h, &r, "GSA_TRACE without %p", interpose_argv, env, true, 120);
		harness_merge(&r);
		char path[PATH_MAX + 32], err[256] = "";
		snprintf(path, sizeof path, "%s/plain.bin", r.dir);
		struct gsa_tr_summary s;
		int rc = gsa_tr_read(path, &s, err, sizeof err);
		CHECK(rc == 0 && s.pid == (uint32_t)r.pid, "[%s] %s: %s (pid %u, expected %d)", r.label,
		      path, err, rc == 0 ? s.pid : 0, (int)r.pid);
		if (rc == 0)
			gsa_tr_free(&s);
		run_free(&r);
	}

	static const struct {
		const char *name, *value;
	} invalid[] = {
		{"GSA_RATIO", "abc"}, {"GSA_RATIO", "0"}, {"GSA_RATIO", "1.5"}, {"GSA_RATIO", "-1"},
		{"GSA_RATIO", ""}, {"GSA_RATIO", "0.3x"}, {"GSA_RATIO", "nan"}, {"GSA_RATIO", "inf"},
		{"GSA_DISABLE", "2"}, {"GSA_DISABLE", "maybe"}, {"GSA_DISABLE", ""},
		{"GSA_TRACE", ""},
		{"GSA_LOG", "verbose"}, {"GSA_LOG", ""},
		{"GSA_POLICY", "max"}, {"GSA_POLICY", ""},
		{"GSA_SINK_BLOCKS", "abc"}, {"GSA_SINK_BLOCKS", "1.5"}, {"GSA_SINK_BLOCKS", ""},
		{"GSA_LOCAL_BLOCKS", "abc"}, {"GSA_LOCAL_BLOCKS", "2x"},
		{"GSA_MIN_BLOCKS", "abc"}, {"GSA_MIN_BLOCKS", ""},
		{"GSA_MAX_BLOCKS", "nonee"}, {"GSA_MAX_BLOCKS", "1.5"}, {"GSA_MAX_BLOCKS", ""},
		{"GSA_MIN_TOKENS", "abc"}, {"GSA_MIN_TOKENS", "1e3"},
	};
	for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
		run_invalid(&h, invalid[i].name, invalid[i].value);

	static const char *const on[] = {"1", "true", "yes", "on"};
	for (size_t i = 0; i < 4; i++)
		run_disabled(&h, on[i]);

	static const char *const true_argv[] = {"/bin/true", NULL};
	static const char *const echo_argv[] = {"/bin/echo", "hi", NULL};
	static const char *const nocuda_argv[] = {NULL, "nocuda", NULL};
	run_no_cuda(&h, true_argv, "GSA_RATIO=abc", "");
	run_no_cuda(&h, true_argv, "GSA_DISABLE=maybe", "");
	run_no_cuda(&h, true_argv, "GSA_RATIO=0.5", "");
	run_no_cuda(&h, echo_argv, "GSA_LOG=verbose", "hi\n");
	run_no_cuda(&h, nocuda_argv, "GSA_RATIO=abc", "nocuda ok\n");
	run_no_cuda(&h, nocuda_argv, "GSA_POLICY=", "nocuda ok\n");
	run_no_cuda(&h, nocuda_argv, "GSA_RATIO=0.5", "nocuda ok\n");

	harness_finish(&h);
	return check_report("test_config_env");
}

/* gsa-trace on a 1 GiB synthetic trace, generated here and piped into the tool (no file on
 * disk): summary, layers, heatmap and export each stream it in bounded memory. The peak
 * resident set of the tool (getrusage of the child) must stay under 200 MB; the numbers it
 * prints must match what the generator wrote. A progress line is forced on
 * (GSA_TRACE_PROGRESS=1) for one run and checked on stderr.
 * GSA_TRACE_STREAM_MIB sets the size (default 1024). */
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "tests/cpu/check.h"
#include "tests/cpu/test_gsa_trace_util.h"
#include "tests/data/trace_writer.h"

#define LAYERS 32
#define SEQS 8
#define BLOCK_LAYERS 2     /* layers with BLOCKS records */
#define BLOCKS 8192        /* blocks per sequence in the bitmaps */
#define PATTERNS 61
#define RSS_LIMIT_KB (200 * 1024)

static uint8_t patterns[PATTERNS][BLOCKS / 8];
static uint32_t pattern_kept[PATTERNS];

/* What the generator wrote. */
static struct gen_totals {
	uint64_t bytes, steps, select, blocks, attention, allocs, frees, logs, fail_logs;
	uint64_t kept, total;          /* over SELECT pairs */
	uint64_t layer0_kept, layer0_total;
} G;

static void make_patterns(void)
{
	uint64_t x = 0x853c49e6748fea9bull;
	for (int p = 0; p < PATTERNS; p++) {
		uint32_t kept = 0;
		for (int i = 0; i < BLOCKS / 8; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* about a quarter kept, in runs */
			uint8_t v = (uint8_t)(x & (x >> 8));
			if ((i / 16 + p) % 5 == 0)
				v = 0xff;
			patterns[p][i] = v;
			kept += (uint32_t)__builtin_popcount(v);
		}
		pattern_kept[p] = kept;
	}
}

/* Writes the trace to f until it has at least target bytes; fills G. */
static int generate(FILE *f, uint64_t target)
{
	static const uint64_t counts[] = {0, 1000, 1, 5000};
	struct tw w = {0};
	memset(&G, 0, sizeof(G));
	tw_header(&w, 4242, 1);
	tw_process(&w, 4242, 1, 1000000, "/usr/bin/python3", "0.1.0", "streamhost");
	tw_kernel(&w, 0, GSA_HANDLE_FUNCTION, 0x10, 0, NULL, "kernel_unified_attention_2d",
		  "triton_unified");
	tw_kernel(&w, 1, GSA_HANDLE_KERNEL, 0x20, 0xffffffffu, NULL, "gemm", "");
	tw_counts(&w, 1000001, 2, counts);
	uint64_t t = 2000000, launch = 0;
	uint32_t kt[2 * SEQS];
	while (G.bytes + w.n < target) {
		uint64_t step = G.steps++;
		for (int l = 0; l < LAYERS; l++) {
			t += 1000;
			if (step < 100) {
				tw_attention(&w, t, 0, l, SEQS, step == 0 ? 6 : 0, step == 1);
				G.attention++;
			}
			if (l < BLOCK_LAYERS) {
				for (uint32_t q = 0; q < SEQS; q++) {
					int p = (int)((step + q * 7 + (uint64_t)l) % PATTERNS);
					tw_blocks(&w, t + 10, launch, l, q, BLOCKS, pattern_kept[p], 1, 2,
						  BLOCKS, patterns[p]);
					G.blocks++;
				}
			}
			for (int q = 0; q < SEQS; q++) {
				kt[2 * q] = 16 + (uint32_t)((step + (uint64_t)q + (uint64_t)l) % 97);
				kt[2 * q + 1] = 400 + (uint32_t)q;
				G.kept += kt[2 * q];
				G.total += kt[2 * q + 1];
				if (l == 0) {
					G.layer0_kept += kt[2 * q];
					G.layer0_total += kt[2 * q + 1];
				}
			}
			tw_select(&w, t + 20, launch++, 0, l, SEQS, SEQS, kt);
			G.select++;
		}
		/* allocator churn: a workspace freed and allocated again (live set stays small) */
		tw_alloc(&w, t, 0x7f0000000000ull + (step % 1024) * 4096, 1 << 20, 0xabc, 0,
			 GSA_API_CUDA_MALLOC_ASYNC, 1);
		G.allocs++;
		if (step >= 16) {
			tw_free_rec(&w, t + 1, 0x7f0000000000ull + ((step - 16) % 1024) * 4096,
				    GSA_API_CUDA_MALLOC_ASYNC, 1);
			G.frees++;
		}
		if (step % 100 == 0) {
			int fail = step % 1000 == 0;
			tw_log(&w, t + 2, fail ? 1 : 2, fail ? 7 : 0,
			       fail ? "kernel_unified_attention_2d: attention runs dense (x)"
				    : "a message every hundred steps");
			G.logs++;
			G.fail_logs += fail;
		}
		if (w.n >= (1u << 20)) {
			G.bytes += w.n;
			if (tw_flush(&w, f))
				break;
		}
	}
	tw_end_rec(&w, t + 5000);
	G.bytes += w.n;
	int rc = tw_flush(&w, f);
	tw_free(&w);
	return rc;
}

struct stream_run {
	int status, sig;
	long maxrss_kb;
	double seconds;
	char *out, *err;
};

/* Runs the tool with args, its stdin a pipe the generator writes; stdout to out_path (NULL:
 * /dev/null). */
static void run_streamed(struct stream_run *r, uint64_t target, const char *const *env,
			 const char *out_path, const char *const *args)
{
	const char *argv[32];
	int n = 0;
	argv[n++] = tu_tool();
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	const char *err_path = tu_path("stream.err");
	const char *cap_path = tu_path("stream.out");
	int fds[2];
	memset(r, 0, sizeof(*r));
	if (pipe(fds) != 0) {
		r->status = -1;
		return;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[1]);
		dup2(fds[0], 0);
		int o = open(out_path ? cap_path : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (o < 0 || e < 0)
			_exit(127);
		dup2(o, 1);
		dup2(e, 2);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fds[0]);
	FILE *f = fdopen(fds[1], "w");
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	generate(f, target);
	fclose(f);
	struct rusage ru;
	int st = 0;
	if (wait4(pid, &st, 0, &ru) != pid) {
		r->status = -1;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	r->maxrss_kb = ru.ru_maxrss;
	r->err = tu_read_file(err_path, NULL);
	r->out = out_path ? tu_read_file(cap_path, NULL) : calloc(1, 1);
	if (!r->err)
		r->err = calloc(1, 1);
	if (!r->out)
		r->out = calloc(1, 1);
	if (out_path)
		rename(cap_path, out_path);
}

static void report(const char *what, const struct stream_run *r)
{
	printf("NOTE %s: %.1f MiB streamed in %.2f s, tool peak RSS %.1f MB\n", what,
	       (double)G.bytes / (1 << 20), r->seconds, r->maxrss_kb / 1024.0);
	CHECK(r->sig == 0 && r->status == 0, "%s: exit %d signal %d: %s", what, r->status, r->sig,
	      r->err);
	CHECK(r->maxrss_kb > 0 && r->maxrss_kb < RSS_LIMIT_KB, "%s: peak RSS %ld kB over %d kB", what,
	      r->maxrss_kb, RSS_LIMIT_KB);
}

static void free_run(struct stream_run *r)
{
	free(r->out);
	free(r->err);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	tu_init_tmpdir("gsa-trace-stream");
	const char *mib = getenv("GSA_TRACE_STREAM_MIB");
	uint64_t target = (mib && *mib ? strtoull(mib, NULL, 10) : 1024) << 20;
	make_patterns();
	if (access(tu_tool(), X_OK) != 0) {
		CHECK(0, "the tool %s is not there (set GSA_TRACE_TOOL)", tu_tool());
		tu_remove_tmpdir();
		return check_report("test_gsa_trace_stream");
	}

	/* summary, with the progress line forced on */
	struct stream_run r;
	static const char *const progress_env[] = {"GSA_TRACE_PROGRESS=1", NULL};
	static const char *const summary[] = {"summary", "-", NULL};
	run_streamed(&r, target, progress_env, tu_path("summary.txt"), summary);
	report("summary", &r);
	CHECK(G.bytes >= target, "generated %" PRIu64 " bytes", G.bytes);
	char want[600];
	snprintf(want, sizeof(want), "\nselection: %" PRIu64 " launches with statistics (graph "
		 "replays included), %" PRIu64 " sequences, %" PRIu64 " of %" PRIu64 " blocks kept "
		 "(%.1f%%)\n", G.select, G.select * SEQS, G.kept, G.total,
		 100.0 * (double)G.kept / (double)G.total);
	CHECK_CONTAINS(r.out, want);
	char ratio[32];
	snprintf(ratio, sizeof(ratio), "%.1f%%", 100.0 * (double)G.layer0_kept / (double)G.layer0_total);
	snprintf(want, sizeof(want), "\n%10d%10" PRIu64 "%14" PRIu64 "%14" PRIu64 "%8s\n", 0,
		 G.select / LAYERS, G.layer0_kept, G.layer0_total, ratio);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want), "\nbitmaps: %" PRIu64 " BLOCKS records, layers 0, 1 ", G.blocks);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want), "\nattention: 1 recognised kernels, %" PRIu64 " decisions: %"
		 PRIu64 " rewritten, %d dense, %d captured into graphs\n", G.attention,
		 G.attention - LAYERS, LAYERS, LAYERS);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want), "\nallocations: %" PRIu64 " allocations, %" PRIu64 " frees (0 "
		 "unknown)", G.allocs, G.frees);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want), ", %" PRIu64 " fail-open log messages\n", G.fail_logs);
	CHECK_CONTAINS(r.out, want);
	snprintf(want, sizeof(want), "\nlog: %" PRIu64 " messages", G.logs);
	CHECK_CONTAINS(r.out, want);
	CHECK_CONTAINS(r.err, "gsa-trace: reading (stdin): ");
	CHECK(r.err[0] == '\r' && r.err[strlen(r.err) - 1] == '\n' && tu_lines(r.err) == 1,
	      "progress: one rewritten line ended by a newline when not a terminal: %.200s", r.err);
	free_run(&r);

	/* layers: the churn of the bitmap layers, the others without */
	static const char *const layers[] = {"layers", "-", NULL};
	run_streamed(&r, target, NULL, tu_path("layers.txt"), layers);
	report("layers", &r);
	char *row = tu_line_copy(tu_line_starting(r.out, "     0 "));
	size_t rlen = strlen(row);
	CHECK(rlen > 16 && row[rlen - 1] == '%' && strchr(row + rlen - 16, '-') == NULL,
	      "layer 0 has a churn: %s", row);
	free(row);
	char *l31 = tu_line_copy(tu_line_starting(r.out, "    31 "));
	size_t len = strlen(l31);
	CHECK(len > 16 && !strcmp(l31 + len - 16, "      -        -"), "layer 31 has no churn: %s",
	      l31);
	free(l31);
	CHECK_EQ_U64(tu_lines(r.out), 1 + 1 + LAYERS + 1 + 4); /* trace, header, rows, all, notes */
	free_run(&r);

	/* heatmap: 1000 columns at most, 8192 blocks binned by 16 */
	const char *svg = tu_path("stream.svg");
	static const char *heatmap[] = {"heatmap", "-", "--layer", "1", "--seq", "3", "-o", NULL, NULL};
	heatmap[7] = svg;
	run_streamed(&r, target, NULL, NULL, heatmap);
	report("heatmap", &r);
	uint64_t bx = 1;
	while ((G.steps + bx - 1) / bx > 1000)
		bx *= 2;
	size_t n = 0;
	char *doc = tu_read_file(svg, &n);
	char err[200];
	CHECK(doc && tu_xml_check(doc, n, NULL, err, sizeof(err)) == 0, "SVG not well-formed: %s",
	      doc ? err : "missing");
	snprintf(want, sizeof(want), "data-columns=\"%" PRIu64 "\" data-rows=\"512\" "
		 "data-steps-per-column=\"%" PRIu64 "\" data-blocks-per-row=\"16\" data-steps=\"%"
		 PRIu64 "\"", (G.steps + bx - 1) / bx, bx, G.steps);
	CHECK_CONTAINS(doc, want);
	printf("NOTE heatmap of %" PRIu64 " steps x %d blocks: %.1f MB of SVG\n", G.steps, BLOCKS,
	       n / 1e6);
	free(doc);
	free_run(&r);

	/* export to standard output (thrown away): streaming too */
	static const char *const exp[] = {"export", "-", "--chrome", "-", NULL};
	run_streamed(&r, target, NULL, NULL, exp);
	report("export", &r);
	free_run(&r);

	tu_remove_tmpdir();
	return check_report("test_gsa_trace_stream");
}

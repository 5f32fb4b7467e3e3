/* gsa-trace: reads the trace files gsa-preload writes (format: preload/trace_format.h) and
 * shows what GSA did, as numbers (summary, layers, kernels), a picture (heatmap) and a
 * timeline (export --chrome). The reports are in tools/report.c, the picture in
 * tools/heatmap.c, the timeline in tools/chrome_export.c; this file is the command line.
 *
 * Every command streams its input once (export looks at the first records twice to find the
 * time origin) in memory that does not grow with the size of the trace. FILE may be "-" for
 * standard input. While reading, a progress line goes to stderr when stderr is a terminal
 * (GSA_TRACE_PROGRESS=1 forces it, =0 turns it off).
 *
 * Exit status: 0 ok, 1 a trace could not be read or an output not written, 2 usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "preload/trace_format.h"
#include "tools/chrome_export.h"
#include "tools/heatmap.h"
#include "tools/human_bytes.h"
#include "tools/report.h"
#include "tools/trace_reader.h"

static const char usage_text[] =
	"usage: gsa-trace COMMAND [ARGS]\n"
	"\n"
	"Reads the trace files that gsa-preload writes (GSA_TRACE) and shows what GSA did.\n"
	"\n"
	"commands:\n"
	"  summary [--help] FILE...   per file: process, devices, config, kernels by launches,\n"
	"                             what GSA decided per attention kernel (rewritten, dense and\n"
	"                             why, pass-through), kept-block ratio overall and per layer,\n"
	"                             what failed open, allocations, log messages; with several\n"
	"                             files (tensor-parallel workers) also side by side and merged\n"
	"  layers [--help] FILE       per layer: decisions, selection launches, mean kept ratio,\n"
	"                             blocks kept vs total, churn of the selection between steps\n"
	"  heatmap [--help] FILE --layer L --seq S -o OUT.svg\n"
	"                             picture of the kept blocks of one layer and sequence index\n"
	"                             over the decode steps (needs GSA_TRACE_BLOCKS)\n"
	"  export [--help] FILE --chrome OUT.json\n"
	"                             timeline in the Trace Event Format, for Perfetto\n"
	"                             (ui.perfetto.dev) or chrome://tracing\n"
	"  kernels [--help] FILE      the kernel table as tab-separated values for scripts\n"
	"  --help                     this text\n"
	"\n"
	"FILE may be - for standard input. A progress line goes to stderr when it is a terminal\n"
	"(GSA_TRACE_PROGRESS=1 forces it, GSA_TRACE_PROGRESS=0 turns it off).\n"
	"\n"
	"exit status: 0 ok, 1 a trace could not be read or an output not written, 2 usage error\n";

static const char summary_help[] =
	"usage: gsa-trace summary [--help] FILE...\n"
	"\n"
	"Prints what each trace holds: how the process ended, the process, devices and\n"
	"configuration, every kernel sorted by launches, then what GSA did:\n"
	"  attention:  the recognised attention kernels (an adapter matched them, or GSA decided\n"
	"              about their launches) with their decisions: rewritten to the sparse\n"
	"              selection, or dense and why (reason texts and codes);\n"
	"  launches:   rewritten / recognised but dense / pass-through (kernels GSA left alone);\n"
	"  selection:  kept blocks of total, overall and per layer, from the GPU's statistics\n"
	"              (CUDA-graph replays included); bitmaps: which layers have BLOCKS records;\n"
	"  selection time share: \"not recorded\" (the trace has no GPU time of the selection);\n"
	"  failed open: dense decisions and fail-open log messages;\n"
	"then allocations with the top call sites by bytes, and log messages.\n"
	"With several files (tensor-parallel workers): a side-by-side table of the GSA numbers,\n"
	"one column per file and one for all files, a per-layer table summed over the files and\n"
	"a kernel table that sums launches by kernel name. A trace without an END record comes\n"
	"from a process that ended abruptly: its launch counts are those of the last snapshot.\n";

static const char kernels_help[] =
	"usage: gsa-trace kernels [--help] FILE\n"
	"\n"
	"Prints the kernels of one trace as tab-separated values, sorted by launches:\n"
	"  launches<TAB>params<TAB>handle_kind<TAB>adapter<TAB>name\n"
	"params is -1 when unknown; handle_kind is function, kernel, host or unknown; adapter\n"
	"is - when none matched; name is empty for unnamed kernels. The last line is\n"
	"  #total<TAB><launches><TAB>unnamed<TAB><launches of unnamed kernels>\n";

static const char layers_help[] =
	"usage: gsa-trace layers [--help] FILE\n"
	"\n"
	"Prints one row per layer that GSA's records name, then a row \"all\":\n"
	"  layer        the layer (-1: attention launches whose layer was not known)\n"
	"  decisions    ATTENTION records (host decisions), rewritten: those with reason 0\n"
	"  launches     SELECT records: launches with selection statistics, graph replays too\n"
	"  sequences    sequences with a kept/total pair in those records\n"
	"  mean_kept    mean over those sequences of kept/total\n"
	"  kept_blocks, total_blocks, kept_ratio = kept_blocks / total_blocks\n"
	"  bitmaps      BLOCKS records (GSA_TRACE_BLOCKS names the layers that have them)\n"
	"  churn        of the kept blocks of a step, the share that were not kept in the\n"
	"               previous step of the same sequence index (blocks new to a grown\n"
	"               sequence count as not kept before)\n"
	"  changed      the share of steps whose kept set differs from the previous step's\n"
	"Ratios print as - when there is nothing to divide by; churn and changed print as -\n"
	"for layers without BLOCKS records. A sequence index is a position in the batch: when\n"
	"the batch changes, the next step compares two different requests.\n";

static const char heatmap_help[] =
	"usage: gsa-trace heatmap [--help] FILE --layer L --seq S -o OUT.svg\n"
	"                         [--columns N] [--rows N]\n"
	"\n"
	"Draws the kept blocks of layer L, sequence index S (0 = first in the batch) from the\n"
	"BLOCKS records (written for the layers GSA_TRACE_BLOCKS names, first 8 sequences):\n"
	"decode steps (those records, in file order) along x, logical block index along y\n"
	"(0 at the bottom). Colours: sink blocks (the first `sink` of the record), the local\n"
	"window (the last `local`), other kept blocks, blocks not kept, blocks past the recorded\n"
	"bitmap, and white beyond the sequence's length. Dense steps show every block kept.\n"
	"When there are more than --columns steps (default 1000) or --rows blocks (default\n"
	"800), each cell covers several (a power of two) and shows the most important class\n"
	"among them (max-pooling): sink > local > kept > not recorded > not kept. OUT may be -\n"
	"for standard output. Exits 1 when the trace has no records for that layer and\n"
	"sequence (the message lists the layers that have some).\n";

static const char export_help[] =
	"usage: gsa-trace export [--help] FILE --chrome OUT.json\n"
	"\n"
	"Writes the trace as a timeline in the Trace Event Format (a JSON object with\n"
	"\"traceEvents\"), for ui.perfetto.dev or chrome://tracing: one process (the traced\n"
	"one), one track per kind of record:\n"
	"  attention launches  one instant event per recognised launch: rewritten, or\n"
	"                      \"dense: <reason>\"; args layer, num_seqs, reason, kernel_id\n"
	"  selection           one instant event per SELECT record (args layer, launch, kept,\n"
	"                      total, kept_ratio) and the counter \"kept ratio\"\n"
	"  allocations         alloc and free events and the counter \"live bytes\"\n"
	"  log                 log messages, dropped records, the end of the trace\n"
	"  launch counts       the counter \"kernel launches\" (cumulative, all kernels)\n"
	"Timestamps are microseconds since the process started (its PROCESS record).\n"
	"otherData.kernels names the recognised kernels by id. OUT may be - for standard\n"
	"output.\n";

/* ---- errors and options ---- */

static int usage_error(const char *fmt, const char *arg)
{
	fputs("gsa-trace: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n(gsa-trace --help for usage)\n", stderr);
	return 2;
}

/* Command line of a command: FILE arguments (moved to the front of argv) and options with a
 * value ("--name V" or "--name=V"). Returns the number of files, -1 after printing help, -2
 * after a usage error. "--" ends the options. */
struct opt {
	const char *name, *alias;
	const char **value;
};

static int parse_args(int argc, char **argv, const char *help, struct opt *opts, int n_opts)
{
	int n = 0, options = 1;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (options && strcmp(a, "--") == 0) {
			options = 0;
			continue;
		}
		if (options && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			fputs(help, stdout);
			return -1;
		}
		if (!options || a[0] != '-' || !a[1]) {
			argv[n++] = argv[i];
			continue;
		}
		int matched = 0;
		for (int k = 0; k < n_opts && !matched; k++) {
			const char *names[2] = {opts[k].name, opts[k].alias};
			for (int j = 0; j < 2 && !matched; j++) {
				size_t len = names[j] ? strlen(names[j]) : 0;
				if (!len || strncmp(a, names[j], len) != 0)
					continue;
				if (a[len] == '=') {
					*opts[k].value = a + len + 1;
					matched = 1;
				} else if (a[len] == '\0') {
					if (i + 1 >= argc) {
						usage_error("option '%s' needs a value", a);
						return -2;
					}
					*opts[k].value = argv[++i];
					matched = 1;
				}
			}
		}
		if (!matched) {
			usage_error("unknown option '%s'", a);
			return -2;
		}
	}
	return n;
}

/* A whole decimal integer in [lo, hi]. */
static int parse_int(const char *s, long long lo, long long hi, long long *out)
{
	if (!s || !*s)
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/* ---- input and progress ---- */

struct progress {
	const char *name;
	uint64_t size; /* 0 when unknown (a pipe) */
	int on, tty, shown;
	double last;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void progress_cb(void *ctx, uint64_t bytes)
{
	struct progress *p = ctx;
	double t = now_s();
	if (!p->on || t - p->last < 0.2)
		return;
	p->last = t;
	char done[24], size[24];
	gsa_human_bytes(bytes, done, sizeof(done));
	fprintf(stderr, "\rgsa-trace: reading %s: %s", p->name, done);
	if (p->size)
		fprintf(stderr, " of %s (%.0f%%)", gsa_human_bytes(p->size, size, sizeof(size)),
			100.0 * (double)bytes / (double)p->size);
	fputs(p->tty ? "\033[K" : "", stderr);
	p->shown = 1;
}

static void progress_end(struct progress *p)
{
	if (p->shown)
		fputs(p->tty ? "\r\033[K" : "\n", stderr);
	p->shown = 0;
}

struct input {
	FILE *f;
	const char *name;
	uint64_t size;
	int regular;
};

static int open_input(const char *path, struct input *in)
{
	memset(in, 0, sizeof(*in));
	in->name = path;
	if (strcmp(path, "-") == 0) {
		in->f = stdin;
		in->name = "(stdin)";
	} else if (!(in->f = fopen(path, "rb"))) {
		fprintf(stderr, "gsa-trace: %s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fileno(in->f), &st) == 0 && S_ISREG(st.st_mode)) {
		in->regular = 1;
		in->size = (uint64_t)st.st_size;
	}
	/* records are small and many: a larger stdio buffer saves read calls */
	setvbuf(in->f, NULL, _IOFBF, 1 << 18);
	return 0;
}

static void close_input(struct input *in)
{
	if (in->f && in->f != stdin)
		fclose(in->f);
	in->f = NULL;
}

typedef int (*record_fn)(void *, const struct gsa_tr_summary *, const struct gsa_tr_event *);

/* What the reader's visitor gets: the command's record callback and the progress line. */
struct reading {
	struct progress p;
	record_fn record;
	void *ctx;
};

static int record_tramp(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev)
{
	struct reading *r = ctx;
	return r->record ? r->record(r->ctx, s, ev) : 0;
}

static void progress_tramp(void *ctx, uint64_t bytes)
{
	progress_cb(&((struct reading *)ctx)->p, bytes);
}

/* Reads one trace through record (may be NULL) with ctx. 0, or 1 after printing why. */
static int read_trace(struct input *in, record_fn record, void *ctx, struct gsa_tr_summary *s)
{
	struct reading r = {.p = {.name = in->name, .size = in->size, .tty = isatty(2)},
			    .record = record, .ctx = ctx};
	const char *force = getenv("GSA_TRACE_PROGRESS");
	r.p.on = force && *force ? strcmp(force, "0") != 0 : r.p.tty;
	struct gsa_tr_visitor v = {.ctx = &r, .record = record_tramp,
				   .progress = r.p.on ? progress_tramp : NULL};
	char err[600];
	int rc = gsa_tr_read_visit(in->f, in->name, &v, s, err, sizeof(err));
	progress_end(&r.p);
	if (rc) {
		fflush(stdout); /* keep stdout and stderr in file order on a terminal */
		fprintf(stderr, "gsa-trace: %s\n", err);
		return 1;
	}
	return 0;
}

/* Opens, reads and closes one trace. */
static int read_path(const char *path, record_fn record, void *ctx, struct gsa_tr_summary *s)
{
	struct input in;
	if (open_input(path, &in))
		return 1;
	int rc = read_trace(&in, record, ctx, s);
	close_input(&in);
	return rc;
}

/* ---- output files: written under a temporary name, renamed when complete ---- */

struct output {
	const char *path;
	char tmp[PATH_MAX];
	FILE *f;
};

static int open_output(const char *path, struct output *out)
{
	memset(out, 0, sizeof(*out));
	out->path = path;
	if (strcmp(path, "-") == 0) {
		out->f = stdout;
		return 0;
	}
	if (snprintf(out->tmp, sizeof(out->tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(out->tmp)) {
		fprintf(stderr, "gsa-trace: %s: name too long\n", path);
		return -1;
	}
	int fd = mkstemp(out->tmp);
	if (fd < 0 || !(out->f = fdopen(fd, "w"))) {
		fprintf(stderr, "gsa-trace: %s: cannot create: %s\n", path, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(out->tmp);
		}
		return -1;
	}
	/* mkstemp makes it 0600: give it the mode a new file would get */
	mode_t mask = umask(0);
	umask(mask);
	fchmod(fd, 0666 & ~mask);
	return 0;
}

/* Finishes the output: renamed into place when ok, removed otherwise. 0 or 1. */
static int close_output(struct output *out, int ok)
{
	if (out->f == stdout) {
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "gsa-trace: error writing output\n");
			return 1;
		}
		return ok ? 0 : 1;
	}
	int failed = ferror(out->f) != 0;
	failed |= fclose(out->f) != 0;
	out->f = NULL;
	if (ok && failed)
		fprintf(stderr, "gsa-trace: %s: write error: %s\n", out->path, strerror(errno));
	if (ok && !failed && rename(out->tmp, out->path) != 0) {
		fprintf(stderr, "gsa-trace: %s: cannot rename %s into place: %s\n", out->path,
			out->tmp, strerror(errno));
		failed = 1;
	}
	if (!ok || failed)
		unlink(out->tmp);
	return ok && !failed ? 0 : 1;
}

/* ---- commands ---- */

static int cmd_summary(int argc, char **argv)
{
	int n = parse_args(argc, argv, summary_help, NULL, 0);
	if (n < 0)
		return n == -1 ? 0 : 2;
	if (n == 0)
		return usage_error("%s: no trace files given", "summary");
	int status = 0, printed = 0;
	struct gsa_report_merge *merged = n > 1 ? gsa_report_merge_new() : NULL;
	size_t merged_files = 0;
	if (n > 1 && !merged) {
		fprintf(stderr, "gsa-trace: out of memory\n");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		struct gsa_tr_summary s;
		if (read_path(argv[i], NULL, NULL, &s) != 0) {
			status = 1;
			continue;
		}
		if (printed++)
			putchar('\n');
		gsa_report_summary(stdout, argv[i], &s);
		if (merged) {
			if (gsa_report_merge_add(merged, argv[i], &s) != 0) {
				fprintf(stderr, "gsa-trace: out of memory\n");
				status = 1;
			} else {
				merged_files++;
			}
		}
		gsa_tr_free(&s);
	}
	if (merged && merged_files > 0) {
		putchar('\n');
		gsa_report_merge_print(stdout, merged);
	}
	gsa_report_merge_free(merged);
	return status;
}

/* The one FILE of a command, or a usage error. */
static int one_file(int n, const char *cmd)
{
	if (n == 1)
		return 0;
	return usage_error("%s: expects exactly one trace file", cmd);
}

static int cmd_kernels(int argc, char **argv)
{
	int n = parse_args(argc, argv, kernels_help, NULL, 0);
	if (n < 0)
		return n == -1 ? 0 : 2;
	if (one_file(n, "kernels"))
		return 2;
	struct gsa_tr_summary s;
	if (read_path(argv[0], NULL, NULL, &s) != 0)
		return 1;
	int rc = gsa_report_kernels_tsv(stdout, &s);
	gsa_tr_free(&s);
	if (rc) {
		fprintf(stderr, "gsa-trace: out of memory\n");
		return 1;
	}
	return 0;
}

static int cmd_layers(int argc, char **argv)
{
	int n = parse_args(argc, argv, layers_help, NULL, 0);
	if (n < 0)
		return n == -1 ? 0 : 2;
	if (one_file(n, "layers"))
		return 2;
	struct gsa_tr_summary s;
	if (read_path(argv[0], NULL, NULL, &s) != 0)
		return 1;
	gsa_report_layers(stdout, argv[0], &s);
	gsa_tr_free(&s);
	return 0;
}

static int heatmap_record(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev)
{
	(void)s;
	gsa_heatmap_add(ctx, ev);
	return 0;
}

/* "0, 1, 5" for the layers that have BLOCKS records (at most a dozen listed). */
static void list_bitmap_layers(const struct gsa_tr_summary *s, char *buf, size_t len)
{
	size_t at = 0, listed = 0, with = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < s->n_layers; i++) {
		if (!s->layers[i].blocks_records)
			continue;
		with++;
		if (listed < 12 && at < len) {
			int k = snprintf(buf + at, len - at, "%s%" PRId32, listed ? ", " : "",
					 s->layers[i].layer);
			at += k > 0 ? (size_t)k : 0;
			listed++;
		}
	}
	if (with > listed && at < len)
		snprintf(buf + at, len - at, " and %zu more", with - listed);
}

static int cmd_heatmap(int argc, char **argv)
{
	const char *layer_s = NULL, *seq_s = NULL, *out_s = NULL, *cols_s = NULL, *rows_s = NULL;
	struct opt opts[] = {{"--layer", NULL, &layer_s}, {"--seq", NULL, &seq_s},
			     {"--output", "-o", &out_s}, {"--columns", NULL, &cols_s},
			     {"--rows", NULL, &rows_s}};
	int n = parse_args(argc, argv, heatmap_help, opts, 5);
	if (n < 0)
		return n == -1 ? 0 : 2;
	if (one_file(n, "heatmap"))
		return 2;
	long long layer, seq, cols = GSA_HM_DEFAULT_COLS, rows = GSA_HM_DEFAULT_ROWS;
	if (!layer_s || !seq_s || !out_s)
		return usage_error("%s: needs --layer L, --seq S and -o OUT.svg", "heatmap");
	if (parse_int(layer_s, INT32_MIN, INT32_MAX, &layer))
		return usage_error("heatmap: --layer '%s' is not a layer number", layer_s);
	if (parse_int(seq_s, 0, UINT32_MAX, &seq))
		return usage_error("heatmap: --seq '%s' is not a sequence index (0, 1, ...)", seq_s);
	if (cols_s && parse_int(cols_s, 2, GSA_HM_MAX_CELLS_PER_AXIS, &cols))
		return usage_error("heatmap: --columns '%s' is not an integer in [2, 4096]", cols_s);
	if (rows_s && parse_int(rows_s, 2, GSA_HM_MAX_CELLS_PER_AXIS, &rows))
		return usage_error("heatmap: --rows '%s' is not an integer in [2, 4096]", rows_s);
	struct gsa_heatmap *h = gsa_heatmap_new((int32_t)layer, (uint32_t)seq, (uint32_t)cols,
						(uint32_t)rows);
	if (!h) {
		fprintf(stderr, "gsa-trace: out of memory\n");
		return 1;
	}
	struct gsa_tr_summary s;
	if (read_path(argv[0], heatmap_record, h, &s) != 0) {
		gsa_heatmap_free(h);
		return 1;
	}
	int status = 0;
	if (gsa_heatmap_steps(h) == 0) {
		char layers[200];
		list_bitmap_layers(&s, layers, sizeof(layers));
		fprintf(stderr, "gsa-trace: %s: no BLOCKS records for layer %lld, sequence %lld ",
			argv[0], layer, seq);
		if (layers[0])
			fprintf(stderr, "(layers with BLOCKS records: %s)\n", layers);
		else
			fprintf(stderr, "(the trace has none: run with GSA_TRACE_BLOCKS=all or a list "
				"of layers)\n");
		status = 1;
	} else {
		struct output out;
		if (open_output(out_s, &out) != 0) {
			status = 1;
		} else {
			int ok = gsa_heatmap_write_svg(h, out.f, argv[0]) == 0;
			status = close_output(&out, ok);
			if (!ok && status)
				fprintf(stderr, "gsa-trace: %s: write error\n", out_s);
		}
	}
	gsa_tr_free(&s);
	gsa_heatmap_free(h);
	return status;
}

/* The first look for the time origin: stops at the PROCESS record, or gives up after a few
 * records (the writer puts PROCESS first). */
struct origin {
	uint64_t ns;
	int found;
	unsigned seen;
};

static int origin_record(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev)
{
	(void)s;
	struct origin *o = ctx;
	if (ev->type == GSA_REC_PROCESS) {
		o->ns = ev->u.process.start_mono_ns;
		o->found = 1;
		return 1;
	}
	return ++o->seen >= 4096 ? 1 : 0;
}

static int cmd_export(int argc, char **argv)
{
	const char *chrome_s = NULL;
	struct opt opts[] = {{"--chrome", NULL, &chrome_s}};
	int n = parse_args(argc, argv, export_help, opts, 1);
	if (n < 0)
		return n == -1 ? 0 : 2;
	if (one_file(n, "export"))
		return 2;
	if (!chrome_s)
		return usage_error("%s: needs --chrome OUT.json", "export");
	struct input in;
	if (open_input(argv[0], &in))
		return 1;
	struct origin origin = {0};
	if (in.regular) {
		struct gsa_tr_summary s;
		char err[600];
		/* errors here are reported by the real pass below */
		if (gsa_tr_read_visit(in.f, in.name, &(struct gsa_tr_visitor){&origin, origin_record,
									       NULL},
				      &s, err, sizeof(err)) == 0)
			gsa_tr_free(&s);
		if (fseek(in.f, 0, SEEK_SET) != 0) {
			fprintf(stderr, "gsa-trace: %s: cannot seek: %s\n", in.name, strerror(errno));
			close_input(&in);
			return 1;
		}
		clearerr(in.f);
	}
	struct output out;
	if (open_output(chrome_s, &out) != 0) {
		close_input(&in);
		return 1;
	}
	struct gsa_chrome *c = gsa_chrome_new(out.f, argv[0], origin.ns, origin.found);
	if (!c) {
		fprintf(stderr, "gsa-trace: out of memory\n");
		close_output(&out, 0);
		close_input(&in);
		return 1;
	}
	struct gsa_tr_summary s;
	int ok = read_trace(&in, gsa_chrome_record, c, &s) == 0;
	if (ok) {
		ok = gsa_chrome_finish(c, &s) == 0;
		gsa_tr_free(&s);
	} else if (ferror(out.f)) {
		fprintf(stderr, "gsa-trace: %s: write error\n", chrome_s);
	}
	gsa_chrome_free(c);
	close_input(&in);
	return close_output(&out, ok);
}

int main(int argc, char **argv)
{
	int status;
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		status = 0;
	} else if (strcmp(cmd, "summary") == 0) {
		status = cmd_summary(argc - 2, argv + 2);
	} else if (strcmp(cmd, "kernels") == 0) {
		status = cmd_kernels(argc - 2, argv + 2);
	} else if (strcmp(cmd, "layers") == 0) {
		status = cmd_layers(argc - 2, argv + 2);
	} else if (strcmp(cmd, "heatmap") == 0) {
		status = cmd_heatmap(argc - 2, argv + 2);
	} else if (strcmp(cmd, "export") == 0) {
		status = cmd_export(argc - 2, argv + 2);
	} else {
		return usage_error("unknown command '%s'", cmd);
	}
	/* A full disk or closed pipe must not look like success to a script. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "gsa-trace: error writing output\n");
		return 1;
	}
	return status;
}

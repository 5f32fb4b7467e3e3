/* gsa-trace: reads the trace files gsa-preload writes (format: preload/trace_format.h).
 *
 *   gsa-trace summary FILE...   a human summary per file, then (with several files) a
 *                               kernel table merged over all of them by kernel name
 *   gsa-trace kernels FILE      the kernel table as tab-separated values for scripts
 *
 * Exit status: 0 ok, 1 a trace could not be read, 2 usage error.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"
#include "tools/human_bytes.h"
#include "tools/trace_reader.h"

#define PARAMS_UNKNOWN 0xffffffffu
#define MAX_SITES_SHOWN 10
#define MAX_LOGS_SHOWN 20

static const char usage_text[] =
	"usage: gsa-trace COMMAND [ARGS]\n"
	"\n"
	"Reads the trace files that gsa-preload writes.\n"
	"\n"
	"commands:\n"
	"  summary [--help] FILE...   per file: process, devices, config, kernels by launches,\n"
	"                             allocations by call site, log messages; with several\n"
	"                             files also a kernel table merged over all of them\n"
	"  kernels [--help] FILE      the kernel table as tab-separated values for scripts\n"
	"  --help                     this text\n"
	"\n"
	"exit status: 0 ok, 1 a trace could not be read, 2 usage error\n";

static const char summary_help[] =
	"usage: gsa-trace summary [--help] FILE...\n"
	"\n"
	"Prints what each trace holds: how the process ended, the process, devices and\n"
	"configuration, every kernel sorted by launches, allocations with the top call sites\n"
	"by bytes, and log messages. With several files, a final \"all files\" table sums\n"
	"launches by kernel name. A trace without an END record comes from a process that\n"
	"ended abruptly: its launch counts are those of the last snapshot written.\n";

static const char kernels_help[] =
	"usage: gsa-trace kernels [--help] FILE\n"
	"\n"
	"Prints the kernels of one trace as tab-separated values, sorted by launches:\n"
	"  launches<TAB>params<TAB>handle_kind<TAB>adapter<TAB>name\n"
	"params is -1 when unknown; handle_kind is function, kernel, host or unknown; adapter\n"
	"is - when none matched; name is empty for unnamed kernels. The last line is\n"
	"  #total<TAB><launches><TAB>unnamed<TAB><launches of unnamed kernels>\n";

/* Control bytes (tabs, newlines) in names would break the line and column structure. */
static void put_clean(const char *s, FILE *f)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static const char *or_unknown(const char *s)
{
	return s && s[0] ? s : "?";
}

static const char *handle_kind_name(uint8_t kind)
{
	switch (kind) {
	case GSA_HANDLE_FUNCTION: return "function";
	case GSA_HANDLE_KERNEL: return "kernel";
	case GSA_HANDLE_HOST_FUNC: return "host";
	default: return "unknown";
	}
}

static const char *level_name(uint8_t level)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	return level < 4 ? names[level] : "level?";
}

/* Launches descending, then name, then id: a stable order for people and diffs. */
static int by_launches(const void *a, const void *b)
{
	const struct gsa_tr_kernel *x = *(const struct gsa_tr_kernel *const *)a;
	const struct gsa_tr_kernel *y = *(const struct gsa_tr_kernel *const *)b;
	if (x->launches != y->launches)
		return x->launches < y->launches ? 1 : -1;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* The kernels in display order, or NULL when out of memory (or there are none). */
static const struct gsa_tr_kernel **sorted_kernels(const struct gsa_tr_summary *s)
{
	const struct gsa_tr_kernel **v = malloc((s->n_kernels ? s->n_kernels : 1) * sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0; i < s->n_kernels; i++)
		v[i] = &s->kernels[i];
	qsort(v, s->n_kernels, sizeof(*v), by_launches);
	return v;
}

static void print_table_header(void)
{
	printf("%12s%8s  %-11s %s\n", "launches", "params", "adapter", "name");
}

static void print_table_row(uint64_t launches, uint32_t params, const char *adapter)
{
	char p[16];
	if (params == PARAMS_UNKNOWN)
		snprintf(p, sizeof(p), "?");
	else
		snprintf(p, sizeof(p), "%" PRIu32, params);
	printf("%12" PRIu64 "%8s  ", launches, p);
	const char *a = adapter[0] ? adapter : "-";
	put_clean(a, stdout);
	/* pad to the header's column; a longer adapter still gets one space before the name */
	int pad = 11 - (int)strlen(a);
	printf("%*s ", pad > 0 ? pad : 0, "");
}

static void print_kernels(const struct gsa_tr_summary *s)
{
	printf("kernels: %zu distinct, %" PRIu64 " launches, %" PRIu64 " unnamed launches\n",
	       s->n_kernels, gsa_tr_total_launches(s), gsa_tr_unnamed_launches(s));
	if (!s->n_kernels)
		return;
	const struct gsa_tr_kernel **v = sorted_kernels(s);
	if (!v)
		return;
	print_table_header();
	for (size_t i = 0; i < s->n_kernels; i++) {
		print_table_row(v[i]->launches, v[i]->param_count, v[i]->adapter);
		if (v[i]->name[0])
			put_clean(v[i]->name, stdout);
		else
			printf("(unnamed, handle 0x%" PRIx64 ")", v[i]->handle);
		putchar('\n');
	}
	free(v);
}

static void print_allocations(const struct gsa_tr_summary *s)
{
	char total[24], live[24], peak[24];
	printf("allocations: %" PRIu64 " allocations, %" PRIu64 " frees (%" PRIu64 " unknown), "
	       "%s allocated, %s live, peak %s, %zu call sites\n", s->allocs, s->frees,
	       s->frees_unknown, gsa_human_bytes(s->bytes_allocated, total, sizeof(total)),
	       gsa_human_bytes(s->bytes_live, live, sizeof(live)),
	       gsa_human_bytes(s->peak_bytes_live, peak, sizeof(peak)), s->n_sites);
	if (!s->n_sites)
		return;
	printf("    top call sites by bytes:\n");
	/* the reader sorts sites by bytes_total, largest first */
	for (size_t i = 0; i < s->n_sites && i < MAX_SITES_SHOWN; i++)
		printf("      0x%016" PRIx64 "  %" PRIu64 " allocs  %s\n", s->sites[i].callsite_hash,
		       s->sites[i].allocs, gsa_human_bytes(s->sites[i].bytes_total, total,
							 sizeof(total)));
}

static void print_log(const struct gsa_tr_summary *s)
{
	printf("log: %" PRIu64 " messages (%" PRIu64 " errors, %" PRIu64 " warnings)\n",
	       s->logs_total, s->log_errors, s->log_warnings);
	size_t shown = s->n_logs < MAX_LOGS_SHOWN ? s->n_logs : MAX_LOGS_SHOWN;
	for (size_t i = 0; i < shown; i++) {
		printf("    [%s] ", level_name(s->logs[i].level));
		put_clean(s->logs[i].message, stdout);
		putchar('\n');
	}
	if (s->logs_total > shown)
		printf("    ... %" PRIu64 " more\n", s->logs_total - shown);
}

static void print_summary(const char *path, const struct gsa_tr_summary *s)
{
	printf("trace: ");
	put_clean(path, stdout);
	printf(" (format %u.%u, %s)\n", s->major, s->minor,
	       s->ended_cleanly ? "ended cleanly"
				: "ENDED ABRUPTLY: counts are from the last snapshot");
	if (s->have_process) {
		printf("process: pid %" PRIu32 " (parent %" PRIu32 "), ", s->pid, s->ppid);
		put_clean(or_unknown(s->exe), stdout);
		printf(", gsa-preload ");
		put_clean(or_unknown(s->library_version), stdout);
		printf(", host ");
		put_clean(or_unknown(s->hostname), stdout);
		putchar('\n');
	} else {
		printf("process: pid %" PRIu32 " (no process record)\n", s->pid);
	}
	char mem[24];
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct gsa_tr_device *d = &s->devices[i];
		printf("device %" PRId32 ": ", d->ordinal);
		put_clean(or_unknown(d->name), stdout);
		/* the writer records -1 for attributes the driver would not give */
		if (d->cc_major >= 0 && d->cc_minor >= 0)
			printf(", sm_%" PRId32 "%" PRId32, d->cc_major, d->cc_minor);
		else
			printf(", sm_?");
		if (d->sm_count >= 0)
			printf(", %" PRId32 " SMs", d->sm_count);
		else
			printf(", ? SMs");
		printf(", %s\n", gsa_human_bytes(d->total_mem, mem, sizeof(mem)));
	}
	if (!s->n_devices)
		printf("device: none recorded\n");
	printf("config:");
	for (size_t i = 0; i < s->n_config; i++) {
		putchar(' ');
		put_clean(s->config[i].key, stdout);
		putchar('=');
		put_clean(s->config[i].value, stdout);
	}
	printf("%s\n", s->n_config ? "" : " none recorded");
	print_kernels(s);
	print_allocations(s);
	print_log(s);
	if (s->dropped_bytes)
		printf("dropped: %" PRIu64 " bytes of records\n", s->dropped_bytes);
	if (s->unknown_records)
		printf("skipped: %" PRIu64 " records of types this reader does not know\n",
		       s->unknown_records);
}

/* ---- the "all files" table: launches summed by kernel name ---- */

struct merged {
	char *name, *adapter;
	uint32_t params;
	int adapter_mixed;
	uint64_t launches;
};

struct merge_set {
	struct merged *v;
	size_t n, cap, files;
};

static int merge_add(struct merge_set *m, const struct gsa_tr_summary *s)
{
	for (size_t i = 0; i < s->n_kernels; i++) {
		if (m->n == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 64;
			struct merged *p = realloc(m->v, cap * sizeof(*p));
			if (!p)
				return -1;
			m->v = p;
			m->cap = cap;
		}
		const struct gsa_tr_kernel *k = &s->kernels[i];
		struct merged e = {strdup(k->name), strdup(k->adapter), k->param_count, 0,
				   k->launches};
		if (!e.name || !e.adapter) {
			free(e.name);
			free(e.adapter);
			return -1;
		}
		m->v[m->n++] = e;
	}
	m->files++;
	return 0;
}

static int merged_by_name(const void *a, const void *b)
{
	return strcmp(((const struct merged *)a)->name, ((const struct merged *)b)->name);
}

static int merged_by_launches(const void *a, const void *b)
{
	const struct merged *x = a, *y = b;
	if (x->launches != y->launches)
		return x->launches < y->launches ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* Folds entries of the same name into one: params and adapter survive only when all the
 * entries agree (printed as params "?" and adapter "(mixed)" otherwise). */
static void merge_fold(struct merge_set *m)
{
	if (!m->n)
		return;
	qsort(m->v, m->n, sizeof(*m->v), merged_by_name);
	size_t out = 0;
	for (size_t i = 1; i < m->n; i++) {
		struct merged *a = &m->v[out], *b = &m->v[i];
		if (strcmp(a->name, b->name) != 0) {
			m->v[++out] = *b;
			continue;
		}
		a->launches += b->launches;
		if (a->params != b->params)
			a->params = PARAMS_UNKNOWN;
		if (strcmp(a->adapter, b->adapter) != 0)
			a->adapter_mixed = 1;
		free(b->name);
		free(b->adapter);
	}
	m->n = out + 1;
	qsort(m->v, m->n, sizeof(*m->v), merged_by_launches);
}

static void print_merged(struct merge_set *m)
{
	merge_fold(m);
	uint64_t total = 0, unnamed = 0;
	for (size_t i = 0; i < m->n; i++) {
		total += m->v[i].launches;
		if (!m->v[i].name[0])
			unnamed += m->v[i].launches;
	}
	printf("all files: %zu traces, %zu distinct kernel names, %" PRIu64 " launches, %" PRIu64
	       " unnamed launches\n", m->files, m->n, total, unnamed);
	if (!m->n)
		return;
	print_table_header();
	for (size_t i = 0; i < m->n; i++) {
		print_table_row(m->v[i].launches, m->v[i].params,
				m->v[i].adapter_mixed ? "(mixed)" : m->v[i].adapter);
		put_clean(m->v[i].name[0] ? m->v[i].name : "(unnamed)", stdout);
		putchar('\n');
	}
}

static void merge_free(struct merge_set *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].adapter);
	}
	free(m->v);
}

/* ---- commands ---- */

static int usage_error(const char *fmt, const char *arg)
{
	fputs("gsa-trace: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs("\n(gsa-trace --help for usage)\n", stderr);
	return 2;
}

/* Moves the FILE arguments to the front of argv and counts them. Returns -1 after printing
 * help, -2 after a usage error. "--" ends the options. */
static int collect_files(int argc, char **argv, const char *help)
{
	int n = 0, options = 1;
	for (int i = 0; i < argc; i++) {
		if (options && strcmp(argv[i], "--") == 0) {
			options = 0;
		} else if (options && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
			fputs(help, stdout);
			return -1;
		} else if (options && argv[i][0] == '-' && argv[i][1]) {
			usage_error("unknown option '%s'", argv[i]);
			return -2;
		} else {
			argv[n++] = argv[i];
		}
	}
	return n;
}

static int cmd_summary(int argc, char **argv)
{
	int n = collect_files(argc, argv, summary_help);
	if (n < 0)
		return n == -1 ? 0 : 2;
	if (n == 0)
		return usage_error("%s: no trace files given", "summary");
	int status = 0, printed = 0;
	struct merge_set merged = {0};
	for (int i = 0; i < n; i++) {
		struct gsa_tr_summary s;
		char err[512];
		if (gsa_tr_read(argv[i], &s, err, sizeof(err)) != 0) {
			fflush(stdout); /* keep stdout and stderr in file order on a terminal */
			fprintf(stderr, "gsa-trace: %s\n", err);
			status = 1;
			continue;
		}
		if (printed++)
			putchar('\n');
		print_summary(argv[i], &s);
		if (n > 1 && merge_add(&merged, &s) != 0) {
			fprintf(stderr, "gsa-trace: out of memory\n");
			status = 1;
		}
		gsa_tr_free(&s);
	}
	if (n > 1 && merged.files > 0) {
		putchar('\n');
		print_merged(&merged);
	}
	merge_free(&merged);
	return status;
}

static int cmd_kernels(int argc, char **argv)
{
	int n = collect_files(argc, argv, kernels_help);
	if (n < 0)
		return n == -1 ? 0 : 2;
	if (n != 1)
		return usage_error("%s: expects exactly one trace file", "kernels");
	struct gsa_tr_summary s;
	char err[512];
	if (gsa_tr_read(argv[0], &s, err, sizeof(err)) != 0) {
		fprintf(stderr, "gsa-trace: %s\n", err);
		return 1;
	}
	const struct gsa_tr_kernel **v = sorted_kernels(&s);
	if (!v) {
		gsa_tr_free(&s);
		fprintf(stderr, "gsa-trace: out of memory\n");
		return 1;
	}
	printf("launches\tparams\thandle_kind\tadapter\tname\n");
	for (size_t i = 0; i < s.n_kernels; i++) {
		const struct gsa_tr_kernel *k = v[i];
		printf("%" PRIu64 "\t%" PRId64 "\t%s\t", k->launches,
		       k->param_count == PARAMS_UNKNOWN ? (int64_t)-1 : (int64_t)k->param_count,
		       handle_kind_name(k->handle_kind));
		put_clean(k->adapter[0] ? k->adapter : "-", stdout);
		putchar('\t');
		put_clean(k->name, stdout);
		putchar('\n');
	}
	printf("#total\t%" PRIu64 "\tunnamed\t%" PRIu64 "\n", gsa_tr_total_launches(&s),
	       gsa_tr_unnamed_launches(&s));
	free(v);
	gsa_tr_free(&s);
	return 0;
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

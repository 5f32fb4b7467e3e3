/* The text reports of gsa-trace (see tools/report.h). */
#include "tools/report.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"
#include "tools/human_bytes.h"

#define PARAMS_UNKNOWN 0xffffffffu
#define MAX_SITES_SHOWN 10
#define MAX_LOGS_SHOWN 20
#define MAX_LAYERS_LISTED 12

void gsa_put_clean(const char *s, FILE *f)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}
#define put_clean gsa_put_clean

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

/* "43.3%", or "-" when there is nothing to divide by. */
static const char *percent(uint64_t num, uint64_t den, char *buf, size_t len)
{
	if (!den)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * (double)num / (double)den);
	return buf;
}

static const char *percent_f(double num, uint64_t den, char *buf, size_t len)
{
	if (!den)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * num / (double)den);
	return buf;
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

/* The kernels in display order, or NULL when out of memory. */
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

static void print_table_header(FILE *o)
{
	fprintf(o, "%12s%8s  %-11s %s\n", "launches", "params", "adapter", "name");
}

static void print_table_row(FILE *o, uint64_t launches, uint32_t params, const char *adapter)
{
	char p[16];
	if (params == PARAMS_UNKNOWN)
		snprintf(p, sizeof(p), "?");
	else
		snprintf(p, sizeof(p), "%" PRIu32, params);
	fprintf(o, "%12" PRIu64 "%8s  ", launches, p);
	const char *a = adapter[0] ? adapter : "-";
	put_clean(a, o);
	/* pad to the header's column; a longer adapter still gets one space before the name */
	int pad = 11 - (int)strlen(a);
	fprintf(o, "%*s ", pad > 0 ? pad : 0, "");
}

static void print_kernel_name(FILE *o, const struct gsa_tr_kernel *k)
{
	if (k->name[0])
		put_clean(k->name, o);
	else
		fprintf(o, "(unnamed, handle 0x%" PRIx64 ")", k->handle);
}

static void print_kernels(FILE *o, const struct gsa_tr_summary *s,
			  const struct gsa_tr_kernel **v)
{
	fprintf(o, "kernels: %zu distinct, %" PRIu64 " launches, %" PRIu64 " unnamed launches\n",
		s->n_kernels, gsa_tr_total_launches(s), gsa_tr_unnamed_launches(s));
	if (!s->n_kernels || !v)
		return;
	print_table_header(o);
	for (size_t i = 0; i < s->n_kernels; i++) {
		print_table_row(o, v[i]->launches, v[i]->param_count, v[i]->adapter);
		print_kernel_name(o, v[i]);
		fputc('\n', o);
	}
}

/* ---- what GSA did ---- */

/* How the launches of one trace split; the same numbers feed the side-by-side table. */
struct split {
	size_t rec_kernels, pass_kernels;
	uint64_t rec_launches, pass_launches, undecided;
	uint64_t rewritten, dense;
};

static uint64_t dense_of(const uint64_t *by_reason)
{
	uint64_t n = 0;
	for (int i = 1; i < GSA_TR_REASON_SLOTS; i++)
		n += by_reason[i];
	return n;
}

static struct split split_of(const struct gsa_tr_summary *s)
{
	struct split x = {0};
	for (size_t i = 0; i < s->n_kernels; i++) {
		const struct gsa_tr_kernel *k = &s->kernels[i];
		if (gsa_tr_kernel_recognised(k)) {
			uint64_t d = gsa_tr_kernel_decisions(k);
			x.rec_kernels++;
			x.rec_launches += k->launches;
			x.undecided += k->launches > d ? k->launches - d : 0;
		} else {
			x.pass_kernels++;
			x.pass_launches += k->launches;
		}
	}
	x.rewritten = s->attention_by_reason[0];
	x.dense = dense_of(s->attention_by_reason);
	return x;
}

/* "10 unsupported geometry (5), 2 query heads not known yet (6)" */
static void print_reasons(FILE *o, const uint64_t *by_reason)
{
	int first = 1;
	for (int i = 1; i < GSA_TR_REASON_SLOTS; i++) {
		if (!by_reason[i])
			continue;
		fprintf(o, "%s%" PRIu64 " %s", first ? "" : ", ", by_reason[i],
			i < GSA_TR_REASONS ? gsa_tr_reason_text((unsigned)i) : "of unknown reasons");
		if (i < GSA_TR_REASONS)
			fprintf(o, " (%d)", i);
		first = 0;
	}
}

static void print_attention(FILE *o, const struct gsa_tr_summary *s,
			    const struct gsa_tr_kernel **v)
{
	struct split x = split_of(s);
	fprintf(o, "attention: %zu recognised kernels, %" PRIu64 " decisions: %" PRIu64
		" rewritten, %" PRIu64 " dense, %" PRIu64 " captured into graphs\n", x.rec_kernels,
		s->attention_records, x.rewritten, x.dense, s->attention_captured);
	if (x.rec_kernels && v) {
		fprintf(o, "%12s%11s%11s%10s  %s\n", "launches", "rewritten", "dense", "captured",
			"name");
		for (size_t i = 0; i < s->n_kernels; i++) {
			const struct gsa_tr_kernel *k = v[i];
			if (!gsa_tr_kernel_recognised(k))
				continue;
			fprintf(o, "%12" PRIu64 "%11" PRIu64 "%11" PRIu64 "%10" PRIu64 "  ",
				k->launches, k->decisions[0], dense_of(k->decisions),
				k->decisions_captured);
			print_kernel_name(o, k);
			if (k->adapter[0]) {
				fputs(" [", o);
				put_clean(k->adapter, o);
				fputc(']', o);
			}
			fputc('\n', o);
			if (dense_of(k->decisions)) {
				fprintf(o, "%46s%s", "", "dense: ");
				print_reasons(o, k->decisions);
				fputc('\n', o);
			}
		}
	}
	fprintf(o, "launches: %" PRIu64 " rewritten, %" PRIu64 " recognised but dense, %" PRIu64
		" pass-through (%zu kernels)", x.rewritten, x.dense, x.pass_launches,
		x.pass_kernels);
	if (x.undecided)
		fprintf(o, "; %" PRIu64 " launches of recognised kernels have no decision record",
			x.undecided);
	fputc('\n', o);
	if (s->attention_unattributed)
		fprintf(o, "    (%" PRIu64 " decisions name more distinct kernels than this reader "
			"keeps apart: counted in the totals only)\n", s->attention_unattributed);
}

static void print_selection(FILE *o, const struct gsa_tr_summary *s)
{
	char pc[32];
	if (!s->select_records) {
		fprintf(o, "selection: no statistics (no SELECT records)\n");
	} else {
		fprintf(o, "selection: %" PRIu64 " launches with statistics (graph replays "
			"included), %" PRIu64 " sequences, %" PRIu64 " of %" PRIu64 " blocks kept "
			"(%s)\n", s->select_records, s->select_seqs, s->select_kept, s->select_total,
			percent(s->select_kept, s->select_total, pc, sizeof(pc)));
		fprintf(o, "%10s%10s%14s%14s%8s\n", "layer", "launches", "kept", "total", "ratio");
		for (size_t i = 0; i < s->n_layers; i++) {
			const struct gsa_tr_layer *l = &s->layers[i];
			if (!l->launches)
				continue;
			fprintf(o, "%10" PRId32 "%10" PRIu64 "%14" PRIu64 "%14" PRIu64 "%8s\n",
				l->layer, l->launches, l->kept, l->total,
				percent(l->kept, l->total, pc, sizeof(pc)));
		}
		if (s->select_seqs_unlisted)
			fprintf(o, "    (%" PRIu64 " more sequences in those launches have no "
				"kept/total pair: the writer records the first ones only)\n",
				s->select_seqs_unlisted);
	}
	if (s->blocks_records) {
		fprintf(o, "bitmaps: %" PRIu64 " BLOCKS records, layers", s->blocks_records);
		size_t listed = 0, with = 0;
		for (size_t i = 0; i < s->n_layers; i++) {
			if (!s->layers[i].blocks_records)
				continue;
			with++;
			if (listed < MAX_LAYERS_LISTED)
				fprintf(o, "%s %" PRId32, listed++ ? "," : "", s->layers[i].layer);
		}
		if (with > listed)
			fprintf(o, " and %zu more", with - listed);
		fprintf(o, " (gsa-trace layers, gsa-trace heatmap)\n");
	}
	if (s->layer_records_unattributed)
		fprintf(o, "    (%" PRIu64 " records name more distinct layers than this reader keeps "
			"apart: counted in the totals only)\n", s->layer_records_unattributed);
	if (!s->select_timed) {
		fprintf(o, "selection time share: not recorded (the trace has no GPU time of the "
			"selection kernels: format before 1.1, or no selection ran)\n");
		return;
	}
	/* Selection GPU time over the GPU time elapsed from the first selection's start to the
	 * last one's end: the share of the decode steps spent selecting. */
	uint64_t span = s->select_gpu_last - s->select_gpu_first;
	fprintf(o, "selection time share: %.1f%% of the GPU time from the first selection to the "
		"last (%.1f us of selection kernels in %" PRIu64 " launches, %.1f us mean, over %.3f ms)\n",
		span ? 100.0 * (double)s->select_gpu_ns / (double)span : 100.0,
		(double)s->select_gpu_ns / 1e3, s->select_timed,
		(double)s->select_gpu_ns / 1e3 / (double)s->select_timed, (double)span / 1e6);
}

static void print_failed_open(FILE *o, const struct gsa_tr_summary *s)
{
	uint64_t dense = dense_of(s->attention_by_reason);
	if (!dense && !s->fail_open_logs) {
		fprintf(o, "failed open: nothing\n");
		return;
	}
	fprintf(o, "failed open: %" PRIu64 " attention launches ran dense", dense);
	if (dense) {
		fputs(" (", o);
		print_reasons(o, s->attention_by_reason);
		fputc(')', o);
	}
	fprintf(o, ", %" PRIu64 " fail-open log messages\n", s->fail_open_logs);
}

static void print_allocations(FILE *o, const struct gsa_tr_summary *s)
{
	char total[24], live[24], peak[24];
	fprintf(o, "allocations: %" PRIu64 " allocations, %" PRIu64 " frees (%" PRIu64 " unknown), "
		"%s allocated, %s live, peak %s, %zu call sites\n", s->allocs, s->frees,
		s->frees_unknown, gsa_human_bytes(s->bytes_allocated, total, sizeof(total)),
		gsa_human_bytes(s->bytes_live, live, sizeof(live)),
		gsa_human_bytes(s->peak_bytes_live, peak, sizeof(peak)), s->n_sites);
	if (!s->n_sites)
		return;
	fprintf(o, "    top call sites by bytes:\n");
	/* the reader sorts sites by bytes_total, largest first */
	for (size_t i = 0; i < s->n_sites && i < MAX_SITES_SHOWN; i++)
		fprintf(o, "      0x%016" PRIx64 "  %" PRIu64 " allocs  %s\n",
			s->sites[i].callsite_hash, s->sites[i].allocs,
			gsa_human_bytes(s->sites[i].bytes_total, total, sizeof(total)));
}

static void print_log(FILE *o, const struct gsa_tr_summary *s)
{
	fprintf(o, "log: %" PRIu64 " messages (%" PRIu64 " errors, %" PRIu64 " warnings)\n",
		s->logs_total, s->log_errors, s->log_warnings);
	size_t shown = s->n_logs < MAX_LOGS_SHOWN ? s->n_logs : MAX_LOGS_SHOWN;
	for (size_t i = 0; i < shown; i++) {
		fprintf(o, "    [%s] ", level_name(s->logs[i].level));
		put_clean(s->logs[i].message, o);
		fputc('\n', o);
	}
	if (s->logs_total > shown)
		fprintf(o, "    ... %" PRIu64 " more\n", s->logs_total - shown);
}

void gsa_report_summary(FILE *o, const char *path, const struct gsa_tr_summary *s)
{
	fprintf(o, "trace: ");
	put_clean(path, o);
	fprintf(o, " (format %u.%u, %s)\n", s->major, s->minor,
		s->ended_cleanly ? "ended cleanly"
				 : "ENDED ABRUPTLY: counts are from the last snapshot");
	if (s->have_process) {
		fprintf(o, "process: pid %" PRIu32 " (parent %" PRIu32 "), ", s->pid, s->ppid);
		put_clean(or_unknown(s->exe), o);
		fprintf(o, ", gsa-preload ");
		put_clean(or_unknown(s->library_version), o);
		fprintf(o, ", host ");
		put_clean(or_unknown(s->hostname), o);
		fputc('\n', o);
	} else {
		fprintf(o, "process: pid %" PRIu32 " (no process record)\n", s->pid);
	}
	char mem[24];
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct gsa_tr_device *d = &s->devices[i];
		fprintf(o, "device %" PRId32 ": ", d->ordinal);
		put_clean(or_unknown(d->name), o);
		/* the writer records -1 for attributes the driver would not give */
		if (d->cc_major >= 0 && d->cc_minor >= 0)
			fprintf(o, ", sm_%" PRId32 "%" PRId32, d->cc_major, d->cc_minor);
		else
			fprintf(o, ", sm_?");
		if (d->sm_count >= 0)
			fprintf(o, ", %" PRId32 " SMs", d->sm_count);
		else
			fprintf(o, ", ? SMs");
		fprintf(o, ", %s\n", gsa_human_bytes(d->total_mem, mem, sizeof(mem)));
	}
	if (!s->n_devices)
		fprintf(o, "device: none recorded\n");
	fprintf(o, "config:");
	for (size_t i = 0; i < s->n_config; i++) {
		fputc(' ', o);
		put_clean(s->config[i].key, o);
		fputc('=', o);
		put_clean(s->config[i].value, o);
	}
	fprintf(o, "%s\n", s->n_config ? "" : " none recorded");
	const struct gsa_tr_kernel **v = sorted_kernels(s);
	print_kernels(o, s, v);
	print_attention(o, s, v);
	free(v);
	print_selection(o, s);
	print_failed_open(o, s);
	print_allocations(o, s);
	print_log(o, s);
	if (s->dropped_bytes)
		fprintf(o, "dropped: %" PRIu64 " bytes of records\n", s->dropped_bytes);
	if (s->unknown_records)
		fprintf(o, "skipped: %" PRIu64 " records of types this reader does not know\n",
			s->unknown_records);
}

int gsa_report_kernels_tsv(FILE *o, const struct gsa_tr_summary *s)
{
	const struct gsa_tr_kernel **v = sorted_kernels(s);
	if (!v)
		return -1;
	fprintf(o, "launches\tparams\thandle_kind\tadapter\tname\n");
	for (size_t i = 0; i < s->n_kernels; i++) {
		const struct gsa_tr_kernel *k = v[i];
		fprintf(o, "%" PRIu64 "\t%" PRId64 "\t%s\t", k->launches,
			k->param_count == PARAMS_UNKNOWN ? (int64_t)-1 : (int64_t)k->param_count,
			handle_kind_name(k->handle_kind));
		put_clean(k->adapter[0] ? k->adapter : "-", o);
		fputc('\t', o);
		put_clean(k->name, o);
		fputc('\n', o);
	}
	fprintf(o, "#total\t%" PRIu64 "\tunnamed\t%" PRIu64 "\n", gsa_tr_total_launches(s),
		gsa_tr_unnamed_launches(s));
	free(v);
	return 0;
}

/* ---- layers ---- */

static void print_layer_row(FILE *o, const char *name, const struct gsa_tr_layer *l)
{
	char mean[16], ratio[16], churn[16], changed[16];
	percent_f(l->ratio_sum, l->ratio_n, mean, sizeof(mean));
	percent(l->kept, l->total, ratio, sizeof(ratio));
	if (l->churn_steps) {
		percent(l->churn_new, l->churn_kept, churn, sizeof(churn));
		percent(l->churn_changed, l->churn_steps, changed, sizeof(changed));
	} else {
		snprintf(churn, sizeof(churn), "-");
		snprintf(changed, sizeof(changed), "-");
	}
	fprintf(o, "%6s %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %10" PRIu64 " %10s %12" PRIu64
		" %13" PRIu64 " %11s %8" PRIu64 " %7s %8s\n", name, l->decisions, l->rewritten,
		l->launches, l->seqs, mean, l->kept, l->total, ratio, l->blocks_records, churn,
		changed);
}

static void add_layer(struct gsa_tr_layer *a, const struct gsa_tr_layer *b)
{
	a->decisions += b->decisions;
	a->rewritten += b->rewritten;
	a->launches += b->launches;
	a->seqs += b->seqs;
	a->kept += b->kept;
	a->total += b->total;
	a->ratio_sum += b->ratio_sum;
	a->ratio_n += b->ratio_n;
	a->blocks_records += b->blocks_records;
	a->churn_steps += b->churn_steps;
	a->churn_changed += b->churn_changed;
	a->churn_new += b->churn_new;
	a->churn_kept += b->churn_kept;
}

static void print_layer_table(FILE *o, const struct gsa_tr_layer *layers, size_t n)
{
	fprintf(o, "%6s %10s %10s %9s %10s %10s %12s %13s %11s %8s %7s %8s\n", "layer",
		"decisions", "rewritten", "launches", "sequences", "mean_kept", "kept_blocks",
		"total_blocks", "kept_ratio", "bitmaps", "churn", "changed");
	struct gsa_tr_layer all = {0};
	for (size_t i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%" PRId32, layers[i].layer);
		print_layer_row(o, name, &layers[i]);
		add_layer(&all, &layers[i]);
	}
	print_layer_row(o, "all", &all);
}

void gsa_report_layers(FILE *o, const char *path, const struct gsa_tr_summary *s)
{
	fprintf(o, "trace: ");
	put_clean(path, o);
	fprintf(o, " (%zu layers with GSA records)\n", s->n_layers);
	print_layer_table(o, s->layers, s->n_layers);
	fprintf(o, "decisions: ATTENTION records (rewritten: reason 0); launches: SELECT records "
		"(graph replays included);\n"
		"mean_kept: mean over sequences of kept/total; kept_ratio: kept_blocks/total_blocks;\n"
		"churn: kept blocks not kept in the previous step of the same sequence index, "
		"changed: steps whose\n"
		"kept set changed (both from BLOCKS records; - without them); layer -1: decisions "
		"whose layer was not known.\n");
	if (s->layer_records_unattributed)
		fprintf(o, "%" PRIu64 " records name more distinct layers than this reader keeps "
			"apart: not in the table\n", s->layer_records_unattributed);
	if (s->churn_untracked)
		fprintf(o, "%" PRIu64 " BLOCKS records could not be compared with their previous "
			"step (too many sequences or bitmap bytes to keep)\n", s->churn_untracked);
}

/* ---- several files ---- */

struct merged_kernel {
	char *name, *adapter;
	uint32_t params;
	int adapter_mixed;
	uint64_t launches;
};

struct file_col {
	char label[32];
	struct split x;
	uint64_t decisions, captured;
	uint64_t select_records, seqs, kept, total, ratio_n, blocks, dense, fail_logs;
	double ratio_sum;
	int ended;
};

struct gsa_report_merge {
	struct merged_kernel *v;
	size_t n, cap;
	struct file_col *files;
	size_t n_files, files_cap;
	struct gsa_tr_layer *layers;
	size_t n_layers, layers_cap;
};

struct gsa_report_merge *gsa_report_merge_new(void)
{
	return calloc(1, sizeof(struct gsa_report_merge));
}

static int merge_layers(struct gsa_report_merge *m, const struct gsa_tr_summary *s)
{
	for (size_t i = 0; i < s->n_layers; i++) {
		const struct gsa_tr_layer *l = &s->layers[i];
		size_t j = 0;
		while (j < m->n_layers && m->layers[j].layer != l->layer)
			j++;
		if (j == m->n_layers) {
			if (m->n_layers == m->layers_cap) {
				size_t cap = m->layers_cap ? m->layers_cap * 2 : 64;
				struct gsa_tr_layer *p = realloc(m->layers, cap * sizeof(*p));
				if (!p)
					return -1;
				m->layers = p;
				m->layers_cap = cap;
			}
			memset(&m->layers[j], 0, sizeof(m->layers[j]));
			m->layers[j].layer = l->layer;
			m->n_layers++;
		}
		add_layer(&m->layers[j], l);
	}
	return 0;
}

int gsa_report_merge_add(struct gsa_report_merge *m, const char *path,
			 const struct gsa_tr_summary *s)
{
	for (size_t i = 0; i < s->n_kernels; i++) {
		if (m->n == m->cap) {
			size_t cap = m->cap ? m->cap * 2 : 64;
			struct merged_kernel *p = realloc(m->v, cap * sizeof(*p));
			if (!p)
				return -1;
			m->v = p;
			m->cap = cap;
		}
		const struct gsa_tr_kernel *k = &s->kernels[i];
		struct merged_kernel e = {strdup(k->name), strdup(k->adapter), k->param_count, 0,
					  k->launches};
		if (!e.name || !e.adapter) {
			free(e.name);
			free(e.adapter);
			return -1;
		}
		m->v[m->n++] = e;
	}
	if (m->n_files == m->files_cap) {
		size_t cap = m->files_cap ? m->files_cap * 2 : 8;
		struct file_col *p = realloc(m->files, cap * sizeof(*p));
		if (!p)
			return -1;
		m->files = p;
		m->files_cap = cap;
	}
	if (merge_layers(m, s))
		return -1;
	struct file_col *c = &m->files[m->n_files++];
	memset(c, 0, sizeof(*c));
	/* the end of the file name: rank numbers are usually there */
	const char *base = strrchr(path, '/');
	base = base && base[1] ? base + 1 : path;
	size_t len = strlen(base), max = sizeof(c->label) - 1;
	if (len > max)
		snprintf(c->label, sizeof(c->label), "...%s", base + len - (max - 3));
	else
		snprintf(c->label, sizeof(c->label), "%s", base);
	for (char *p = c->label; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	c->x = split_of(s);
	c->decisions = s->attention_records;
	c->captured = s->attention_captured;
	c->select_records = s->select_records;
	c->seqs = s->select_seqs;
	c->kept = s->select_kept;
	c->total = s->select_total;
	for (size_t i = 0; i < s->n_layers; i++) {
		c->ratio_sum += s->layers[i].ratio_sum;
		c->ratio_n += s->layers[i].ratio_n;
	}
	c->blocks = s->blocks_records;
	c->dense = c->x.dense;
	c->fail_logs = s->fail_open_logs;
	c->ended = s->ended_cleanly;
	return 0;
}

static int merged_by_name(const void *a, const void *b)
{
	return strcmp(((const struct merged_kernel *)a)->name,
		      ((const struct merged_kernel *)b)->name);
}

static int merged_by_launches(const void *a, const void *b)
{
	const struct merged_kernel *x = a, *y = b;
	if (x->launches != y->launches)
		return x->launches < y->launches ? 1 : -1;
	return strcmp(x->name, y->name);
}

static int by_layer(const void *a, const void *b)
{
	const struct gsa_tr_layer *x = a, *y = b;
	return (x->layer > y->layer) - (x->layer < y->layer);
}

/* Folds entries of the same name into one: params and adapter survive only when all the
 * entries agree (printed as params "?" and adapter "(mixed)" otherwise). */
static void merge_fold(struct gsa_report_merge *m)
{
	if (!m->n)
		return;
	qsort(m->v, m->n, sizeof(*m->v), merged_by_name);
	size_t out = 0;
	for (size_t i = 1; i < m->n; i++) {
		struct merged_kernel *a = &m->v[out], *b = &m->v[i];
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

/* One row of the side-by-side table: a value per file, then for all files together. */
enum col_kind { COL_COUNT, COL_RATIO, COL_MEAN, COL_YESNO };

static void side_row(FILE *o, const struct gsa_report_merge *m, const char *what, int width,
		     enum col_kind kind, size_t field, size_t den_field)
{
	fprintf(o, "%-28s", what);
	uint64_t sum = 0, den = 0;
	double fsum = 0;
	for (size_t i = 0; i <= m->n_files; i++) {
		char cell[40];
		uint64_t v = 0, d = 0;
		double f = 0;
		if (i < m->n_files) {
			const char *base = (const char *)&m->files[i];
			if (kind == COL_MEAN)
				memcpy(&f, base + field, sizeof(f));
			else if (kind == COL_YESNO)
				v = (uint64_t)m->files[i].ended;
			else
				memcpy(&v, base + field, sizeof(v));
			if (kind == COL_RATIO || kind == COL_MEAN)
				memcpy(&d, base + den_field, sizeof(d));
			sum += v;
			den += d;
			fsum += f;
		} else {
			v = sum;
			d = den;
			f = fsum;
		}
		switch (kind) {
		case COL_COUNT: snprintf(cell, sizeof(cell), "%" PRIu64, v); break;
		case COL_RATIO: percent(v, d, cell, sizeof(cell)); break;
		case COL_MEAN: percent_f(f, d, cell, sizeof(cell)); break;
		case COL_YESNO:
			if (i < m->n_files)
				snprintf(cell, sizeof(cell), "%s", v ? "yes" : "NO");
			else
				snprintf(cell, sizeof(cell), "%" PRIu64 " of %zu", v, m->n_files);
			break;
		}
		fprintf(o, "  %*s", width, cell);
	}
	fputc('\n', o);
}

#define F(name) offsetof(struct file_col, name)

static void print_side_by_side(FILE *o, const struct gsa_report_merge *m)
{
	int width = 10;
	for (size_t i = 0; i < m->n_files; i++)
		if ((int)strlen(m->files[i].label) > width)
			width = (int)strlen(m->files[i].label);
	fprintf(o, "side by side: %zu traces\n%-28s", m->n_files, "");
	for (size_t i = 0; i < m->n_files; i++)
		fprintf(o, "  %*s", width, m->files[i].label);
	fprintf(o, "  %*s\n", width, "all files");
	side_row(o, m, "ended cleanly", width, COL_YESNO, 0, 0);
	side_row(o, m, "attention decisions", width, COL_COUNT, F(decisions), 0);
	side_row(o, m, "  rewritten", width, COL_COUNT, F(x.rewritten), 0);
	side_row(o, m, "  dense", width, COL_COUNT, F(x.dense), 0);
	side_row(o, m, "  captured into graphs", width, COL_COUNT, F(captured), 0);
	side_row(o, m, "launches of recognised", width, COL_COUNT, F(x.rec_launches), 0);
	side_row(o, m, "launches passed through", width, COL_COUNT, F(x.pass_launches), 0);
	side_row(o, m, "selection launches", width, COL_COUNT, F(select_records), 0);
	side_row(o, m, "sequences", width, COL_COUNT, F(seqs), 0);
	side_row(o, m, "blocks kept", width, COL_COUNT, F(kept), 0);
	side_row(o, m, "blocks total", width, COL_COUNT, F(total), 0);
	side_row(o, m, "kept ratio", width, COL_RATIO, F(kept), F(total));
	side_row(o, m, "mean kept per sequence", width, COL_MEAN, F(ratio_sum), F(ratio_n));
	side_row(o, m, "bitmaps (BLOCKS records)", width, COL_COUNT, F(blocks), 0);
	side_row(o, m, "failed open: dense", width, COL_COUNT, F(dense), 0);
	side_row(o, m, "failed open: log messages", width, COL_COUNT, F(fail_logs), 0);
}

void gsa_report_merge_print(FILE *o, struct gsa_report_merge *m)
{
	print_side_by_side(o, m);
	fputc('\n', o);
	if (m->n_layers) {
		qsort(m->layers, m->n_layers, sizeof(*m->layers), by_layer);
		fprintf(o, "all files: per layer (sums over the traces)\n");
		print_layer_table(o, m->layers, m->n_layers);
		fputc('\n', o);
	}
	merge_fold(m);
	uint64_t total = 0, unnamed = 0;
	for (size_t i = 0; i < m->n; i++) {
		total += m->v[i].launches;
		if (!m->v[i].name[0])
			unnamed += m->v[i].launches;
	}
	fprintf(o, "all files: %zu traces, %zu distinct kernel names, %" PRIu64 " launches, %" PRIu64
		" unnamed launches\n", m->n_files, m->n, total, unnamed);
	if (!m->n)
		return;
	print_table_header(o);
	for (size_t i = 0; i < m->n; i++) {
		print_table_row(o, m->v[i].launches, m->v[i].params,
				m->v[i].adapter_mixed ? "(mixed)" : m->v[i].adapter);
		put_clean(m->v[i].name[0] ? m->v[i].name : "(unnamed)", o);
		fputc('\n', o);
	}
}

void gsa_report_merge_free(struct gsa_report_merge *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->v[i].name);
		free(m->v[i].adapter);
	}
	free(m->v);
	free(m->files);
	free(m->layers);
	free(m);
}

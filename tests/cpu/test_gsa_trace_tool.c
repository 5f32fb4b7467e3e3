/* gsa-trace's commands on the committed sample trace (tests/data/sample.gsatrace, or
 * $GSA_TRACE_SAMPLE): summary, layers, heatmap, export, kernels, help and usage, and bad input
 * for every command. The expected numbers are computed here from the trace itself, through
 * the reader's visitor (and, for churn and the heatmap, by this file's own simple code), so
 * that any trace with GSA records (a real GPU run's) can replace the sample.
 * The tool is $GSA_TRACE_TOOL (default build/gsa-trace, run from the repository root). */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "tests/cpu/check.h"
#include "tests/cpu/test_gsa_trace_util.h"
#include "tests/data/trace_writer.h"
#include "tools/trace_reader.h"

static const char *sample;

/* ---- what the trace holds, as this test sees it ---- */

struct blk {
	int32_t layer;
	uint32_t seq, total, kept, sink, local, bits;
	uint8_t *bitmap;
};

struct exp_layer {
	int32_t layer;
	uint64_t decisions, rewritten, launches, seqs, kept, total, ratio_n, bitmaps;
	double ratio_sum;
	uint64_t churn_steps, churn_changed, churn_new, churn_kept;
};

struct exp_kernel {
	uint32_t id;
	uint64_t by_reason[GSA_TR_REASON_SLOTS], captured;
};

struct attn_ev {
	uint64_t mono;
	int32_t layer, num_seqs;
	uint8_t reason;
};

static struct expect {
	struct gsa_tr_summary s; /* the reader's summary: names, launches, pid */
	struct blk *blk;
	size_t n_blk, cap_blk;
	struct exp_layer layers[256];
	size_t n_layers;
	struct exp_kernel kernels[64];
	size_t n_kernels;
	struct attn_ev *attn;
	size_t n_attn, cap_attn;
	uint64_t n_select, n_select_nonzero, n_alloc, n_free, n_log, n_fail_logs, n_dropped, n_end;
	uint64_t n_counts, sel_kept, sel_total, sel_seqs;
	double last_ratio;
} E;

static struct exp_layer *exp_layer(int32_t layer)
{
	for (size_t i = 0; i < E.n_layers; i++)
		if (E.layers[i].layer == layer)
			return &E.layers[i];
	if (E.n_layers == 256)
		abort();
	struct exp_layer *l = &E.layers[E.n_layers++];
	memset(l, 0, sizeof(*l));
	l->layer = layer;
	return l;
}

static int expect_visit(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev)
{
	(void)ctx;
	(void)s;
	switch (ev->type) {
	case GSA_REC_ATTENTION: {
		unsigned r = ev->u.attention.reason;
		struct exp_layer *l = exp_layer(ev->u.attention.layer);
		l->decisions++;
		l->rewritten += r == 0;
		size_t k = 0;
		while (k < E.n_kernels && E.kernels[k].id != ev->u.attention.kernel_id)
			k++;
		if (k == E.n_kernels) {
			if (k == 64)
				abort();
			memset(&E.kernels[k], 0, sizeof(E.kernels[k]));
			E.kernels[k].id = ev->u.attention.kernel_id;
			E.n_kernels++;
		}
		E.kernels[k].by_reason[r < GSA_TR_REASONS ? r : GSA_TR_REASON_OTHER]++;
		E.kernels[k].captured += ev->u.attention.captured != 0;
		if (E.n_attn == E.cap_attn)
			E.attn = realloc(E.attn, (E.cap_attn = E.cap_attn * 2 + 64) * sizeof(*E.attn));
		E.attn[E.n_attn++] = (struct attn_ev){ev->mono_ns, ev->u.attention.layer,
						      ev->u.attention.num_seqs, (uint8_t)r};
		break;
	}
	case GSA_REC_SELECT: {
		struct exp_layer *l = exp_layer(ev->u.select.layer);
		l->launches++;
		uint64_t kept = 0, total = 0;
		for (uint32_t i = 0; i < ev->u.select.n; i++) {
			uint32_t k, t;
			gsa_tr_select_pair(ev, i, &k, &t);
			l->seqs++;
			l->kept += k;
			l->total += t;
			kept += k;
			total += t;
			if (t) {
				l->ratio_sum += (double)k / t;
				l->ratio_n++;
			}
		}
		E.n_select++;
		E.sel_seqs += ev->u.select.n;
		E.sel_kept += kept;
		E.sel_total += total;
		E.n_select_nonzero += total != 0;
		break;
	}
	case GSA_REC_BLOCKS: {
		exp_layer(ev->u.blocks.layer)->bitmaps++;
		if (E.n_blk == E.cap_blk)
			E.blk = realloc(E.blk, (E.cap_blk = E.cap_blk * 2 + 64) * sizeof(*E.blk));
		struct blk *b = &E.blk[E.n_blk++];
		b->layer = ev->u.blocks.layer;
		b->seq = ev->u.blocks.seq;
		b->total = ev->u.blocks.total;
		b->kept = ev->u.blocks.kept;
		b->sink = ev->u.blocks.sink;
		b->local = ev->u.blocks.local;
		b->bits = ev->u.blocks.bits;
		size_t bytes = ((size_t)b->bits + 7) / 8;
		b->bitmap = malloc(bytes ? bytes : 1);
		memcpy(b->bitmap, ev->u.blocks.bitmap, bytes);
		break;
	}
	case GSA_REC_ALLOC: E.n_alloc++; break;
	case GSA_REC_FREE: E.n_free++; break;
	case GSA_REC_LOG:
		E.n_log++;
		E.n_fail_logs += ev->u.log.code == GSA_TR_CODE_FAIL_OPEN;
		break;
	case GSA_REC_DROPPED: E.n_dropped++; break;
	case GSA_REC_END: E.n_end++; break;
	case GSA_REC_COUNTS: E.n_counts++; break;
	}
	return 0;
}

static int bit(const struct blk *b, uint32_t i)
{
	return b->bitmap[i / 8] >> (i % 8) & 1;
}

/* The churn, block by block, as README.md (gsa-trace layers) defines it. */
static void expect_churn(void)
{
	for (size_t i = 0; i < E.n_blk; i++) {
		const struct blk *cur = &E.blk[i], *prev = NULL;
		for (size_t j = i; j-- > 0;)
			if (E.blk[j].layer == cur->layer && E.blk[j].seq == cur->seq) {
				prev = &E.blk[j];
				break;
			}
		if (!prev || (!prev->bits && !prev->total))
			continue;
		uint64_t added = 0, kept = 0, removed = 0;
		for (uint32_t b = 0; b < cur->bits; b++) {
			int now = bit(cur, b);
			if (b < prev->bits) {
				kept += now;
				added += now && !bit(prev, b);
				removed += !now && bit(prev, b);
			} else if (b >= prev->total) {
				kept += now;
				added += now;
			}
		}
		for (uint32_t b = cur->bits; b < prev->bits; b++)
			removed += b >= cur->total && bit(prev, b);
		struct exp_layer *l = exp_layer(cur->layer);
		l->churn_steps++;
		l->churn_new += added;
		l->churn_kept += kept;
		l->churn_changed += added || removed;
	}
}

static int load_expectations(void)
{
	FILE *f = fopen(sample, "rb");
	if (!f) {
		CHECK(0, "cannot open the sample %s: %s", sample, strerror(errno));
		return -1;
	}
	char err[600];
	struct gsa_tr_visitor v = {NULL, expect_visit, NULL};
	int rc = gsa_tr_read_visit(f, sample, &v, &E.s, err, sizeof(err));
	fclose(f);
	CHECK(rc == 0, "the sample does not read: %s", err);
	if (rc)
		return -1;
	expect_churn();
	/* a sample that shows nothing would make every check below vacuous */
	CHECK(E.n_attn > 0 && E.n_select > 0 && E.n_blk > 0, "the sample needs ATTENTION, "
	      "SELECT and BLOCKS records (%zu, %" PRIu64 ", %zu)", E.n_attn, E.n_select, E.n_blk);
	return 0;
}

static uint64_t dense_of(const uint64_t *by_reason)
{
	uint64_t n = 0;
	for (int i = 1; i < GSA_TR_REASON_SLOTS; i++)
		n += by_reason[i];
	return n;
}

static const struct exp_kernel *exp_kernel(uint32_t id)
{
	for (size_t i = 0; i < E.n_kernels; i++)
		if (E.kernels[i].id == id)
			return &E.kernels[i];
	return NULL;
}

static void pct(char *buf, size_t len, double num, double den)
{
	if (den == 0)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * num / den);
}

/* Splits a line into whitespace-separated tokens (in place); returns how many. */
static int tokens(char *line, char **tok, int max)
{
	int n = 0;
	for (char *p = strtok(line, " \t"); p && n < max; p = strtok(NULL, " \t"))
		tok[n++] = p;
	return n;
}

/* ---- summary ---- */

static void check_summary_gsa(const char *out)
{
	const struct gsa_tr_summary *s = &E.s;
	char want[1200];
	uint64_t rewritten = 0, dense = 0, captured = 0, pass = 0;
	size_t recognised = 0, pass_kernels = 0;
	for (size_t i = 0; i < E.n_kernels; i++) {
		rewritten += E.kernels[i].by_reason[0];
		dense += dense_of(E.kernels[i].by_reason);
		captured += E.kernels[i].captured;
	}
	for (size_t i = 0; i < s->n_kernels; i++) {
		const struct gsa_tr_kernel *k = &s->kernels[i];
		const struct exp_kernel *ek = exp_kernel(k->id);
		if (k->adapter[0] || ek) {
			recognised++;
			/* the kernel's row: launches, rewritten, dense, captured, name */
			char name[300];
			snprintf(name, sizeof(name), "%s", k->name[0] ? k->name : "(unnamed");
			snprintf(want, sizeof(want), "\n%12" PRIu64 "%11" PRIu64 "%11" PRIu64 "%10" PRIu64
				 "  %s", k->launches, ek ? ek->by_reason[0] : 0,
				 ek ? dense_of(ek->by_reason) : 0, ek ? ek->captured : 0, name);
			CHECK_CONTAINS(out, want);
			for (int r = 1; ek && r < GSA_TR_REASONS; r++) {
				if (!ek->by_reason[r])
					continue;
				snprintf(want, sizeof(want), "%" PRIu64 " %s (%d)", ek->by_reason[r],
					 gsa_tr_reason_text((unsigned)r), r);
				CHECK_CONTAINS(out, want);
			}
		} else {
			pass_kernels++;
			pass += k->launches;
		}
	}
	snprintf(want, sizeof(want), "\nattention: %zu recognised kernels, %zu decisions: %" PRIu64
		 " rewritten, %" PRIu64 " dense, %" PRIu64 " captured into graphs\n", recognised,
		 E.n_attn, rewritten, dense, captured);
	CHECK_CONTAINS(out, want);
	snprintf(want, sizeof(want), "\nlaunches: %" PRIu64 " rewritten, %" PRIu64 " recognised but "
		 "dense, %" PRIu64 " pass-through (%zu kernels)", rewritten, dense, pass,
		 pass_kernels);
	CHECK_CONTAINS(out, want);

	char ratio[32];
	pct(ratio, sizeof(ratio), (double)E.sel_kept, (double)E.sel_total);
	snprintf(want, sizeof(want), "\nselection: %" PRIu64 " launches with statistics (graph "
		 "replays included), %" PRIu64 " sequences, %" PRIu64 " of %" PRIu64 " blocks kept "
		 "(%s)\n", E.n_select, E.sel_seqs, E.sel_kept, E.sel_total, ratio);
	CHECK_CONTAINS(out, want);
	/* one row per layer with statistics: layer, launches, kept, total, ratio */
	for (size_t i = 0; i < E.n_layers; i++) {
		const struct exp_layer *l = &E.layers[i];
		if (!l->launches)
			continue;
		pct(ratio, sizeof(ratio), (double)l->kept, (double)l->total);
		snprintf(want, sizeof(want), "\n%10" PRId32 "%10" PRIu64 "%14" PRIu64 "%14" PRIu64
			 "%8s\n", l->layer, l->launches, l->kept, l->total, ratio);
		CHECK_CONTAINS(out, want);
	}
	if (!s->select_timed) {
		CHECK_CONTAINS(out, "\nselection time share: not recorded");
	} else {
		/* format 1.1: the reader's sums, as the summary must print them */
		uint64_t span = s->select_gpu_last - s->select_gpu_first;
		snprintf(want, sizeof(want), "\nselection time share: %.1f%% of the GPU time from the "
			 "first selection to the last (%.1f us of selection kernels in %" PRIu64
			 " launches", span ? 100.0 * (double)s->select_gpu_ns / (double)span : 100.0,
			 (double)s->select_gpu_ns / 1e3, s->select_timed);
		CHECK_CONTAINS(out, want);
		CHECK(s->select_timed <= s->select_records, "timed %" PRIu64 " of %" PRIu64,
		      s->select_timed, s->select_records);
	}
	if (dense || E.n_fail_logs) {
		snprintf(want, sizeof(want), "\nfailed open: %" PRIu64 " attention launches ran dense",
			 dense);
		CHECK_CONTAINS(out, want);
		snprintf(want, sizeof(want), ", %" PRIu64 " fail-open log messages\n", E.n_fail_logs);
		CHECK_CONTAINS(out, want);
	} else {
		CHECK_CONTAINS(out, "\nfailed open: nothing\n");
	}
}

static void test_summary(void)
{
	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "summary", sample, NULL);
	CHECK(rc == 0, "summary exited %d: %s", rc, r.err);
	CHECK_STR(r.err, "");
	char want[1400];
	snprintf(want, sizeof(want), "trace: %s (format %u.%u, ", sample, E.s.major, E.s.minor);
	CHECK(strncmp(r.out, want, strlen(want)) == 0, "first line of:\n%s", r.out);
	check_summary_gsa(r.out);
	/* from standard input: the same report */
	struct tu_run in;
	rc = tu_run(&in, sample, NULL, "summary", "-", NULL);
	CHECK(rc == 0, "summary - exited %d: %s", rc, in.err);
	const char *a = strchr(r.out, '\n'), *b = strchr(in.out, '\n');
	CHECK(a && b && strcmp(a, b) == 0, "summary of stdin differs");
	CHECK(strncmp(in.out, "trace: - (format", 16) == 0, "stdin named -: %.40s", in.out);
	tu_run_free(&in);
	tu_run_free(&r);
}

/* Two files (tensor-parallel workers): side by side, then merged. */
static void test_summary_two_files(void)
{
	size_t n;
	char *bytes = tu_read_file(sample, &n);
	const char *r0 = tu_write_file("worker-rank0.gsatrace", bytes, n);
	const char *r1 = tu_write_file("worker-rank1.gsatrace", bytes, n);
	free(bytes);
	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "summary", r0, r1, NULL);
	CHECK(rc == 0, "summary of two exited %d: %s", rc, r.err);
	CHECK_CONTAINS(r.out, "\nside by side: 2 traces\n");
	/* the header names the files; each row has both and their sum */
	const char *h = tu_line_starting(strstr(r.out, "side by side:") + 1, " ");
	char *line = tu_line_copy(h), *tok[16];
	int nt = tokens(line, tok, 16);
	CHECK(nt == 4 && !strcmp(tok[0], "worker-rank0.gsatrace") &&
	      !strcmp(tok[1], "worker-rank1.gsatrace") && !strcmp(tok[2], "all") &&
	      !strcmp(tok[3], "files"), "side-by-side header: %s", h ? h : "(none)");
	free(line);
	uint64_t dense = 0;
	for (size_t i = 0; i < E.n_kernels; i++)
		dense += dense_of(E.kernels[i].by_reason);
	struct {
		const char *row;
		uint64_t v;
	} rows[] = {{"attention decisions ", E.n_attn},  {"  dense ", dense},
		    {"selection launches ", E.n_select}, {"blocks kept ", E.sel_kept},
		    {"blocks total ", E.sel_total},      {"bitmaps (BLOCKS records) ", E.n_blk},
		    {"failed open: log messages ", E.n_fail_logs}};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *l = tu_line_copy(tu_line_starting(r.out, rows[i].row));
		char *t[16];
		int k = tokens(l + strlen(rows[i].row), t, 16);
		char a[32], b[32];
		snprintf(a, sizeof(a), "%" PRIu64, rows[i].v);
		snprintf(b, sizeof(b), "%" PRIu64, 2 * rows[i].v);
		CHECK(k == 3 && !strcmp(t[0], a) && !strcmp(t[1], a) && !strcmp(t[2], b),
		      "row '%s': expected %s %s %s", rows[i].row, a, a, b);
		free(l);
	}
	char ratio[32], want[600];
	pct(ratio, sizeof(ratio), (double)E.sel_kept, (double)E.sel_total);
	char *kr = tu_line_copy(tu_line_starting(r.out, "kept ratio ")), *kt[8];
	int nkt = tokens(kr + strlen("kept ratio "), kt, 8);
	CHECK(nkt == 3 && !strcmp(kt[0], ratio) && !strcmp(kt[1], ratio) && !strcmp(kt[2], ratio),
	      "kept ratio row, expected %s three times", ratio);
	free(kr);
	/* merged per layer: twice each layer's numbers */
	const char *merged = strstr(r.out, "\nall files: per layer");
	CHECK(merged != NULL, "no merged layer table");
	for (size_t i = 0; merged && i < E.n_layers; i++) {
		const struct exp_layer *l = &E.layers[i];
		char name[16];
		snprintf(name, sizeof(name), "%6" PRId32 " ", l->layer);
		char *row = tu_line_copy(tu_line_starting(merged + 1, name)), *t[16];
		int k = tokens(row, t, 16);
		CHECK(k == 12 && strtoull(t[1], NULL, 10) == 2 * l->decisions &&
		      strtoull(t[3], NULL, 10) == 2 * l->launches &&
		      strtoull(t[6], NULL, 10) == 2 * l->kept && strtoull(t[7], NULL, 10) == 2 * l->total,
		      "merged layer %" PRId32 " row", l->layer);
		free(row);
	}
	size_t names = 0; /* kernels of the same name (other handles) are merged */
	for (size_t i = 0; i < E.s.n_kernels; i++) {
		size_t j = 0;
		while (j < i && strcmp(E.s.kernels[j].name, E.s.kernels[i].name) != 0)
			j++;
		names += j == i;
	}
	snprintf(want, sizeof(want), "\n\nall files: 2 traces, %zu distinct kernel names, %" PRIu64
		 " launches", names, 2 * gsa_tr_total_launches(&E.s));
	CHECK_CONTAINS(r.out, want);
	tu_run_free(&r);
}

/* ---- layers ---- */

static void test_layers(void)
{
	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "layers", sample, NULL);
	CHECK(rc == 0, "layers exited %d: %s", rc, r.err);
	const char *hdr = tu_line_starting(r.out, " layer ");
	CHECK(hdr != NULL, "no header in:\n%s", r.out);
	struct exp_layer all = {0};
	for (size_t i = 0; i <= E.n_layers; i++) {
		struct exp_layer *l = i < E.n_layers ? &E.layers[i] : &all;
		char name[16], want[12][32];
		if (i < E.n_layers) {
			snprintf(name, sizeof(name), "%" PRId32, l->layer);
			all.decisions += l->decisions;
			all.rewritten += l->rewritten;
			all.launches += l->launches;
			all.seqs += l->seqs;
			all.kept += l->kept;
			all.total += l->total;
			all.ratio_sum += l->ratio_sum;
			all.ratio_n += l->ratio_n;
			all.bitmaps += l->bitmaps;
			all.churn_steps += l->churn_steps;
			all.churn_changed += l->churn_changed;
			all.churn_new += l->churn_new;
			all.churn_kept += l->churn_kept;
		} else {
			snprintf(name, sizeof(name), "all");
		}
		snprintf(want[0], 32, "%s", name);
		snprintf(want[1], 32, "%" PRIu64, l->decisions);
		snprintf(want[2], 32, "%" PRIu64, l->rewritten);
		snprintf(want[3], 32, "%" PRIu64, l->launches);
		snprintf(want[4], 32, "%" PRIu64, l->seqs);
		pct(want[5], 32, l->ratio_sum, (double)l->ratio_n);
		snprintf(want[6], 32, "%" PRIu64, l->kept);
		snprintf(want[7], 32, "%" PRIu64, l->total);
		pct(want[8], 32, (double)l->kept, (double)l->total);
		snprintf(want[9], 32, "%" PRIu64, l->bitmaps);
		if (l->churn_steps) {
			pct(want[10], 32, (double)l->churn_new, (double)l->churn_kept);
			pct(want[11], 32, (double)l->churn_changed, (double)l->churn_steps);
		} else {
			snprintf(want[10], 32, "-");
			snprintf(want[11], 32, "-");
		}
		/* the row whose first token is the layer */
		const char *p = hdr;
		char *row = NULL, *t[16];
		int k = 0;
		while ((p = strchr(p, '\n')) && *++p) {
			free(row);
			row = tu_line_copy(p);
			k = tokens(row, t, 16);
			if (k && !strcmp(t[0], name))
				break;
			k = 0;
		}
		CHECK(k == 12, "layer %s: no row of 12 columns", name);
		for (int c = 0; k == 12 && c < 12; c++)
			CHECK(!strcmp(t[c], want[c]), "layer %s column %d: %s, expected %s", name, c,
			      t[c], want[c]);
		free(row);
	}
	/* layers with BLOCKS records have a churn; the sample has them */
	int with_churn = 0;
	for (size_t i = 0; i < E.n_layers; i++)
		with_churn += E.layers[i].churn_steps > 0;
	CHECK(with_churn > 0, "no layer with churn in the sample");
	tu_run_free(&r);
}

/* ---- heatmap ---- */

struct svg_scan {
	int in_cells, depth_cells;
	char cls[64];
	uint64_t cells[8], rects[8]; /* by class index */
	uint64_t bad_rects;
	uint64_t ncols, nrows, bx, by, steps;
	int texts;
	int has_title;
};

static const char *const class_names[] = {"notkept", "unrecorded", "kept", "local", "sink"};

static void svg_start(void *ctx, const char *name, const struct tu_xml_attr *a, int n, int depth)
{
	struct svg_scan *s = ctx;
	const char *id = tu_xml_attr(a, n, "id");
	if (!strcmp(name, "title"))
		s->has_title = 1;
	if (!strcmp(name, "text"))
		s->texts++;
	if (!strcmp(name, "g") && id && !strcmp(id, "cells")) {
		s->in_cells = 1;
		s->depth_cells = depth;
		const char *v;
		s->ncols = (v = tu_xml_attr(a, n, "data-columns")) ? strtoull(v, NULL, 10) : 0;
		s->nrows = (v = tu_xml_attr(a, n, "data-rows")) ? strtoull(v, NULL, 10) : 0;
		s->bx = (v = tu_xml_attr(a, n, "data-steps-per-column")) ? strtoull(v, NULL, 10) : 0;
		s->by = (v = tu_xml_attr(a, n, "data-blocks-per-row")) ? strtoull(v, NULL, 10) : 0;
		s->steps = (v = tu_xml_attr(a, n, "data-steps")) ? strtoull(v, NULL, 10) : 0;
		return;
	}
	if (s->in_cells && !strcmp(name, "g")) {
		const char *c = tu_xml_attr(a, n, "class");
		snprintf(s->cls, sizeof(s->cls), "%.63s", c ? c : "");
		return;
	}
	if (s->in_cells && !strcmp(name, "rect")) {
		int k = -1;
		for (int i = 0; i < 5; i++)
			if (!strcmp(s->cls, class_names[i]))
				k = i;
		const char *xs = tu_xml_attr(a, n, "x"), *ys = tu_xml_attr(a, n, "y"),
			   *ws = tu_xml_attr(a, n, "width"), *hs = tu_xml_attr(a, n, "height");
		char *e1, *e2, *e3, *e4;
		if (k < 0 || !xs || !ys || !ws || !hs) {
			s->bad_rects++;
			return;
		}
		uint64_t x = strtoull(xs, &e1, 10), y = strtoull(ys, &e2, 10),
			 w = strtoull(ws, &e3, 10), h = strtoull(hs, &e4, 10);
		if (*e1 || *e2 || *e3 || *e4 || w != 1 || !h || x >= s->ncols || y + h > s->nrows)
			s->bad_rects++;
		s->cells[k] += w * h;
		s->rects[k]++;
	}
}

static void svg_end(void *ctx, const char *name, int depth)
{
	struct svg_scan *s = ctx;
	if (s->in_cells && !strcmp(name, "g") && depth == s->depth_cells)
		s->in_cells = 0;
}

/* The class of a block by the documented rule (tools/heatmap.h), written out again. */
static int expected_class(const struct blk *b, uint32_t i)
{
	if (i >= b->total)
		return 0;
	if (i >= b->bits)
		return 2;
	if (!bit(b, i))
		return 1;
	if (i < b->sink)
		return 5;
	if (b->local >= b->total || i >= b->total - b->local)
		return 4;
	return 3;
}

struct grid_counts {
	uint64_t steps, max_total, bx, by, ncols, nrows;
	uint64_t cells[8]; /* by the SVG's class index: notkept (extent), unrecorded, kept, local, sink */
	uint64_t popcount;
};

static void expected_grid(int32_t layer, uint32_t seq, uint64_t cap_c, uint64_t cap_r,
			  struct grid_counts *g)
{
	memset(g, 0, sizeof(*g));
	for (size_t i = 0; i < E.n_blk; i++)
		if (E.blk[i].layer == layer && E.blk[i].seq == seq) {
			g->steps++;
			if (E.blk[i].total > g->max_total)
				g->max_total = E.blk[i].total;
		}
	g->bx = g->by = 1;
	while ((g->steps + g->bx - 1) / g->bx > cap_c)
		g->bx *= 2;
	while ((g->max_total + g->by - 1) / g->by > cap_r)
		g->by *= 2;
	g->ncols = (g->steps + g->bx - 1) / g->bx;
	g->nrows = (g->max_total + g->by - 1) / g->by;
	uint8_t *grid = calloc(g->ncols * g->nrows + 1, 1);
	uint64_t step = 0;
	for (size_t i = 0; i < E.n_blk; i++) {
		const struct blk *b = &E.blk[i];
		if (b->layer != layer || b->seq != seq)
			continue;
		uint8_t *col = grid + (step++ / g->bx) * g->nrows;
		for (uint32_t k = 0; k < b->total; k++) {
			int c = expected_class(b, k);
			if (col[k / g->by] < c)
				col[k / g->by] = (uint8_t)c;
			if (k < b->bits)
				g->popcount += (uint64_t)bit(b, k);
		}
	}
	for (uint64_t c = 0; c < g->ncols; c++) {
		uint64_t top = 0;
		for (uint64_t r = 0; r < g->nrows; r++) {
			uint8_t v = grid[c * g->nrows + r];
			if (v)
				top = r + 1;
			if (v >= 2)
				g->cells[v - 1]++; /* 2 -> unrecorded (1), 3 -> kept (2), ... */
		}
		g->cells[0] += top;
	}
	free(grid);
}

static void check_svg(const char *path, int32_t layer, uint32_t seq, uint64_t cap_c, uint64_t cap_r)
{
	size_t n;
	char *svg = tu_read_file(path, &n);
	CHECK(svg != NULL, "no SVG at %s", path);
	if (!svg)
		return;
	struct svg_scan sc = {0};
	struct tu_xml_cb cb = {&sc, svg_start, svg_end};
	char err[200];
	CHECK(tu_xml_check(svg, n, &cb, err, sizeof(err)) == 0, "%s is not well-formed: %s", path,
	      err);
	if (tu_have("xmllint")) {
		char cmd[1600];
		snprintf(cmd, sizeof(cmd), "xmllint --noout '%s'", path);
		CHECK(system(cmd) == 0, "xmllint rejects %s", path);
	}
	CHECK(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""),
	      "not an SVG document");
	struct grid_counts g;
	expected_grid(layer, seq, cap_c, cap_r, &g);
	CHECK_EQ_U64(sc.steps, g.steps);
	CHECK_EQ_U64(sc.bx, g.bx);
	CHECK_EQ_U64(sc.by, g.by);
	CHECK_EQ_U64(sc.ncols, g.ncols);
	CHECK_EQ_U64(sc.nrows, g.nrows);
	CHECK_EQ_U64(sc.bad_rects, 0);
	for (int k = 0; k < 5; k++)
		CHECK(sc.cells[k] == g.cells[k], "%s (cap %" PRIu64 "x%" PRIu64 "): %s cells %" PRIu64
		      ", expected %" PRIu64, path, cap_c, cap_r, class_names[k], sc.cells[k],
		      g.cells[k]);
	/* unbinned, every kept block is one coloured cell: the bitmaps' popcount */
	if (g.bx == 1 && g.by == 1)
		CHECK(sc.cells[2] + sc.cells[3] + sc.cells[4] == g.popcount, "kept cells %" PRIu64
		      " != popcount %" PRIu64, sc.cells[2] + sc.cells[3] + sc.cells[4], g.popcount);
	CHECK(sc.has_title && sc.texts > 10, "title and text (%d texts)", sc.texts);
	char want[200];
	snprintf(want, sizeof(want), "Kept KV blocks: layer %" PRId32 ", sequence %" PRIu32 "</text>",
		 layer, seq);
	CHECK_CONTAINS(svg, want);
	CHECK_CONTAINS(svg, ">decode step (");
	CHECK_CONTAINS(svg, ">block index (");
	CHECK_CONTAINS(svg, ">sink (always kept)</text>");
	CHECK_CONTAINS(svg, ">local window (always kept)</text>");
	CHECK_CONTAINS(svg, ">kept (selected)</text>");
	CHECK_CONTAINS(svg, ">not kept</text>");
	CHECK_CONTAINS(svg, ">beyond the sequence</text>");
	CHECK_CONTAINS(svg, "text-anchor=\"middle\">0</text>"); /* the first x tick */
	free(svg);
}

static void test_heatmap(void)
{
	/* every (layer, seq) that has BLOCKS records (at most 8 of them) */
	struct {
		int32_t layer;
		uint32_t seq;
	} keys[8];
	int nk = 0;
	for (size_t i = 0; i < E.n_blk && nk < 8; i++) {
		int seen = 0;
		for (int k = 0; k < nk; k++)
			seen |= keys[k].layer == E.blk[i].layer && keys[k].seq == E.blk[i].seq;
		if (!seen) {
			keys[nk].layer = E.blk[i].layer;
			keys[nk++].seq = E.blk[i].seq;
		}
	}
	for (int k = 0; k < nk; k++) {
		char L[16], S[16], name[64];
		snprintf(L, sizeof(L), "%" PRId32, keys[k].layer);
		snprintf(S, sizeof(S), "%" PRIu32, keys[k].seq);
		snprintf(name, sizeof(name), "heat-%d.svg", k);
		const char *out = tu_path(name);
		struct tu_run r;
		int rc = tu_run(&r, NULL, NULL, "heatmap", sample, "--layer", L, "--seq", S, "-o",
				out, NULL);
		CHECK(rc == 0, "heatmap %s %s exited %d: %s", L, S, rc, r.err);
		tu_run_free(&r);
		check_svg(out, keys[k].layer, keys[k].seq, 1000, 800);
		/* small caps: binned in both directions */
		snprintf(name, sizeof(name), "heat-%d-binned.svg", k);
		out = tu_path(name);
		char lo[32], so[32];
		snprintf(lo, sizeof(lo), "--layer=%s", L);
		snprintf(so, sizeof(so), "--seq=%s", S);
		rc = tu_run(&r, NULL, NULL, "heatmap", sample, lo, so, "--columns", "16", "--rows", "6",
			    "--output", out, NULL);
		CHECK(rc == 0, "binned heatmap exited %d: %s", rc, r.err);
		tu_run_free(&r);
		check_svg(out, keys[k].layer, keys[k].seq, 16, 6);
	}
	CHECK(nk > 0, "no BLOCKS records in the sample");

	/* to standard output: the same picture */
	if (nk) {
		char L[16], S[16];
		snprintf(L, sizeof(L), "%" PRId32, keys[0].layer);
		snprintf(S, sizeof(S), "%" PRIu32, keys[0].seq);
		struct tu_run r;
		int rc = tu_run(&r, NULL, NULL, "heatmap", sample, "--layer", L, "--seq", S, "-o",
				"-", NULL);
		char *file = tu_read_file(tu_path("heat-0.svg"), NULL);
		CHECK(rc == 0 && file && strcmp(file, r.out) == 0, "heatmap to stdout differs");
		free(file);
		tu_run_free(&r);
	}

	/* a layer without records: exit 1, one line saying which layers have some, no file */
	const char *none = tu_path("none.svg");
	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "heatmap", sample, "--layer", "4093", "--seq", "0", "-o",
			none, NULL);
	CHECK(rc == 1, "heatmap of a missing layer exited %d", rc);
	char want[300];
	snprintf(want, sizeof(want), "gsa-trace: %s: no BLOCKS records for layer 4093, sequence 0 "
		 "(layers with BLOCKS records: %" PRId32, sample, nk ? keys[0].layer : 0);
	CHECK(strncmp(r.err, want, strlen(want)) == 0, "message: %s", r.err);
	CHECK(tu_lines(r.err) == 1, "one line: %s", r.err);
	CHECK(!tu_exists(none), "an SVG was written for nothing");
	CHECK(tu_count_files(".tmp.") == 0, "temporary file left behind");
	tu_run_free(&r);
}

/* ---- export ---- */

static const struct tu_json *arg(const struct tu_json *ev, const char *key)
{
	return tu_json_get(tu_json_get(ev, "args"), key);
}

static void check_chrome(const char *json, size_t n)
{
	struct tu_json doc;
	char err[200];
	CHECK(tu_json_parse(json, n, &doc, err, sizeof(err)) == 0, "JSON does not parse: %s", err);
	const struct tu_json *evs = tu_json_get(&doc, "traceEvents");
	CHECK(doc.t == TJ_OBJ && evs && evs->t == TJ_ARR, "no traceEvents array");
	if (!evs || evs->t != TJ_ARR) {
		tu_json_free(&doc);
		return;
	}
	uint64_t inst[8] = {0}, kept_ratio = 0, live = 0, launches = 0, meta = 0, bad = 0;
	size_t attn = 0;
	double last_live = -1;
	const char *threads[8] = {0};
	const char *process = NULL;
	double origin = (double)E.s.start_mono_ns;
	for (size_t i = 0; i < evs->n; i++) {
		const struct tu_json *e = &evs->items[i];
		const char *ph = tu_json_str(e, "ph");
		int tid = (int)tu_json_num(e, "tid", -1);
		if (!ph || tu_json_num(e, "pid", -1) != (double)E.s.pid || tid < 0 || tid > 7) {
			bad++;
			continue;
		}
		if (!strcmp(ph, "M")) {
			meta++;
			const char *nm = tu_json_str(e, "name");
			const struct tu_json *a = arg(e, "name");
			if (nm && !strcmp(nm, "thread_name") && a && a->t == TJ_STR)
				threads[tid] = a->str;
			if (nm && !strcmp(nm, "process_name") && a && a->t == TJ_STR)
				process = a->str;
			continue;
		}
		if (!tu_json_get(e, "ts") || !tu_json_str(e, "name")) {
			bad++;
			continue;
		}
		double ts = tu_json_num(e, "ts", 0);
		if (!strcmp(ph, "i")) {
			inst[tid]++;
			if (tid == 1 && attn < E.n_attn) {
				/* in record order, with the record's fields */
				const struct attn_ev *a = &E.attn[attn++];
				const struct tu_json *layer = arg(e, "layer"), *reason = arg(e, "reason"),
						     *ns = arg(e, "num_seqs");
				if (!layer || layer->num != a->layer || !reason ||
				    reason->num != a->reason || !ns || ns->num != a->num_seqs ||
				    fabs(ts - ((double)a->mono - origin) / 1000.0) > 0.0011)
					bad++;
				const char *name = tu_json_str(e, "name");
				if (a->reason == 0 ? strcmp(name, "rewritten") != 0
						   : strncmp(name, "dense: ", 7) != 0)
					bad++;
			}
		} else if (!strcmp(ph, "C")) {
			const char *name = tu_json_str(e, "name");
			if (!strcmp(name, "kept ratio")) {
				kept_ratio++;
				const struct tu_json *v = arg(e, "ratio");
				if (!v || v->num < 0)
					bad++;
			} else if (!strcmp(name, "live bytes")) {
				live++;
				const struct tu_json *v = arg(e, "bytes");
				last_live = v ? v->num : -1;
			} else if (!strcmp(name, "kernel launches")) {
				launches++;
			}
		} else {
			bad++;
		}
	}
	CHECK_EQ_U64(bad, 0);
	CHECK_EQ_U64(inst[1], E.n_attn);
	CHECK_EQ_U64(inst[2], E.n_select);
	CHECK_EQ_U64(kept_ratio, E.n_select_nonzero);
	CHECK_EQ_U64(inst[3], E.n_alloc + E.n_free);
	CHECK_EQ_U64(live, E.n_alloc + E.n_free);
	if (E.n_alloc + E.n_free)
		CHECK(last_live == (double)E.s.bytes_live, "last live bytes %.0f, expected %" PRIu64,
		      last_live, E.s.bytes_live);
	CHECK_EQ_U64(inst[4], E.n_log + E.n_dropped + E.n_end);
	CHECK_EQ_U64(launches, E.n_counts);
	CHECK_EQ_U64(meta, 11);
	static const char *const want_threads[] = {"", "attention launches", "selection",
						   "allocations", "log", "launch counts"};
	for (int t = 1; t <= 5; t++)
		CHECK(threads[t] && !strcmp(threads[t], want_threads[t]), "track %d named %s", t,
		      threads[t] ? threads[t] : "(none)");
	char want[64];
	snprintf(want, sizeof(want), "gsa-preload pid %" PRIu32 ": ", E.s.pid);
	CHECK(process && !strncmp(process, want, strlen(want)), "process name %s",
	      process ? process : "(none)");
	const struct tu_json *other = tu_json_get(&doc, "otherData");
	const struct tu_json *kernels = tu_json_get(other, "kernels");
	CHECK(kernels && kernels->t == TJ_OBJ, "otherData.kernels");
	for (size_t i = 0; kernels && i < E.n_kernels; i++) {
		char id[16];
		snprintf(id, sizeof(id), "%" PRIu32, E.kernels[i].id);
		CHECK(tu_json_get(kernels, id) != NULL, "kernel %s not named", id);
	}
	CHECK(tu_json_num(other, "time_origin_mono_ns", -1) == origin, "time origin");
	tu_json_free(&doc);
}

static void test_export(void)
{
	const char *out = tu_path("trace.json");
	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "export", sample, "--chrome", out, NULL);
	CHECK(rc == 0, "export exited %d: %s", rc, r.err);
	CHECK_STR(r.out, "");
	tu_run_free(&r);
	size_t n;
	char *json = tu_read_file(out, &n);
	CHECK(json != NULL, "no JSON written");
	if (json)
		check_chrome(json, n);
	if (json && tu_have("python3")) {
		char cmd[1600];
		snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
			 "assert isinstance(d[\"traceEvents\"], list)' '%s'", out);
		CHECK(system(cmd) == 0, "python3's json rejects %s", out);
	}
	/* from a pipe (no first look for the origin: the PROCESS record comes first anyway)
	 * and to standard output: the same events */
	rc = tu_run(&r, sample, NULL, "export", "-", "--chrome", "-", NULL);
	CHECK(rc == 0, "export - exited %d: %s", rc, r.err);
	const char *a = json ? strstr(json, "\"traceEvents\"") : NULL, *b = strstr(r.out, "\"traceEvents\"");
	const char *ae = a ? strstr(a, "\"otherData\"") : NULL, *be = b ? strstr(b, "\"otherData\"") : NULL;
	CHECK(a && b && ae && be && ae - a == be - b && !strncmp(a, b, (size_t)(ae - a)),
	      "export from a pipe differs");
	check_chrome(r.out, r.out_n);
	tu_run_free(&r);
	free(json);
}

/* ---- kernels (existing command, on the sample) ---- */

static void test_kernels(void)
{
	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "kernels", sample, NULL);
	CHECK(rc == 0, "kernels exited %d", rc);
	CHECK(tu_lines(r.out) == (int)E.s.n_kernels + 2, "%d lines for %zu kernels", tu_lines(r.out),
	      E.s.n_kernels);
	char want[100];
	snprintf(want, sizeof(want), "\n#total\t%" PRIu64 "\tunnamed\t%" PRIu64 "\n",
		 gsa_tr_total_launches(&E.s), gsa_tr_unnamed_launches(&E.s));
	CHECK_CONTAINS(r.out, want);
	tu_run_free(&r);
}

/* ---- help and usage ---- */

static void test_help_and_usage(void)
{
	static const char *const cmds[] = {"summary", "layers", "heatmap", "export", "kernels"};
	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "--help", NULL);
	CHECK(rc == 0, "--help exited %d", rc);
	for (size_t i = 0; i < 5; i++) {
		char want[64];
		snprintf(want, sizeof(want), "\n  %s [--help] FILE", cmds[i]);
		CHECK_CONTAINS(r.out, want);
	}
	tu_run_free(&r);
	for (size_t i = 0; i < 5; i++) {
		char want[64];
		rc = tu_run(&r, NULL, NULL, cmds[i], "--help", NULL);
		snprintf(want, sizeof(want), "usage: gsa-trace %s [--help] FILE", cmds[i]);
		CHECK(rc == 0 && !strncmp(r.out, want, strlen(want)), "%s --help: %d %.60s", cmds[i],
		      rc, r.out);
		tu_run_free(&r);
	}
	static const struct {
		const char *args[11];
		const char *want;
	} bad[] = {
		{{"heatmap", "x.trace", NULL}, "heatmap: needs --layer L, --seq S and -o OUT.svg"},
		{{"heatmap", "x.trace", "--layer", "0", "--seq", "0", NULL}, "needs --layer"},
		{{"heatmap", "x.trace", "--layer", "zero", "--seq", "0", "-o", NULL},
		 "option '-o' needs a value"},
		{{"heatmap", "x.trace", "--layer", "zero", "--seq", "0", "-o", "y"},
		 "--layer 'zero' is not a layer number"},
		{{"heatmap", "x.trace", "--layer", "1", "--seq", "-1", "-o", "y"},
		 "--seq '-1' is not a sequence index"},
		{{"heatmap", "x.trace", "--layer", "1", "--seq", "0", "-o", "y", "--rows", "1"},
		 "--rows '1' is not an integer in [2, 4096]"},
		{{"export", "x.trace", NULL}, "export: needs --chrome OUT.json"},
		{{"export", "x.trace", "--perfetto", "y", NULL}, "unknown option '--perfetto'"},
		{{"layers", NULL}, "layers: expects exactly one trace file"},
		{{"layers", "a", "b", NULL}, "layers: expects exactly one trace file"},
		{{"layers", "--bogus", "a", NULL}, "unknown option '--bogus'"},
		{{"summary", NULL}, "summary: no trace files given"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[12];
		int n = 0;
		for (; n < 11 && bad[i].args[n]; n++)
			args[n] = bad[i].args[n];
		args[n] = NULL;
		rc = tu_run_argv(&r, NULL, NULL, args);
		CHECK(rc == 2, "usage case %zu (%s) exited %d", i, args[0], rc);
		CHECK(!strncmp(r.err, "gsa-trace: ", 11), "usage case %zu: %s", i, r.err);
		if (bad[i].want)
			CHECK_CONTAINS(r.err, bad[i].want);
		tu_run_free(&r);
	}
}

/* ---- bad input, for every command ---- */

static void check_bad(const char *what, const char *path, const char *in)
{
	const char *svg = tu_path("bad.svg"), *json = tu_path("bad.json");
	const char *const cmds[][9] = {
		{"summary", path, NULL},
		{"layers", path, NULL},
		{"kernels", path, NULL},
		{"heatmap", path, "--layer", "0", "--seq", "0", "-o", svg, NULL},
		{"export", path, "--chrome", json, NULL},
	};
	for (size_t c = 0; c < 5; c++) {
		struct tu_run r;
		int rc = tu_run_argv(&r, in, NULL, cmds[c]);
		CHECK(r.sig == 0, "%s %s: killed by signal %d", cmds[c][0], what, r.sig);
		CHECK(rc == 1 || rc == 2, "%s %s: exit %d", cmds[c][0], what, rc);
		CHECK(!strncmp(r.err, "gsa-trace: ", 11) && tu_lines(r.err) == 1,
		      "%s %s: not one line: %s", cmds[c][0], what, r.err);
		tu_run_free(&r);
	}
	CHECK(!tu_exists(svg) && !tu_exists(json), "%s: output written for a bad trace", what);
	CHECK(tu_count_files(".tmp.") == 0, "%s: temporary file left behind", what);
}

static void test_bad_inputs(void)
{
	size_t n;
	uint8_t *good = (uint8_t *)tu_read_file(sample, &n);
	if (!good || n < 64) {
		CHECK(0, "sample too small");
		free(good);
		return;
	}
	check_bad("empty", tu_write_file("empty.gsatrace", "", 0), NULL);
	check_bad("header only, cut", tu_write_file("short.gsatrace", good, 20), NULL);
	/* cut inside the last record, whatever it is: records are at least 16 bytes */
	check_bad("truncated", tu_write_file("cut.gsatrace", good, n - 5), NULL);
	check_bad("truncated, piped", "-", tu_path("cut.gsatrace"));
	uint8_t *copy = malloc(n);
	memcpy(copy, good, n);
	copy[0] = 'X';
	check_bad("wrong magic", tu_write_file("magic.gsatrace", copy, n), NULL);
	memcpy(copy, good, n);
	copy[8] = GSA_TRACE_MAJOR + 1;
	check_bad("newer version", tu_write_file("newer.gsatrace", copy, n), NULL);
	uint64_t x = 0x123456789abcdefull;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		copy[i] = (uint8_t)x;
	}
	check_bad("random bytes", tu_write_file("random.gsatrace", copy, n > 4096 ? 4096 : n), NULL);
	/* random records after a valid header */
	memcpy(copy, good, 32);
	check_bad("random records", tu_write_file("random2.gsatrace", copy, n > 4096 ? 4096 : n), NULL);
	free(copy);

	struct tw w = {0};
	tw_header(&w, 1, 1);
	tw_begin(&w, GSA_REC_COUNTS);
	tw_u64(&w, 1);
	tw_u32(&w, 0xffffffffu);
	tw_end(&w);
	check_bad("huge counts", tu_write_file("counts.gsatrace", w.b, w.n), NULL);
	tw_free(&w);
	tw_header(&w, 1, 1);
	tw_begin(&w, GSA_REC_SELECT);
	tw_u64(&w, 1);
	tw_u64(&w, 1);
	tw_u32(&w, 1);
	tw_u32(&w, 0);
	tw_u32(&w, 0xffffffffu);
	tw_u32(&w, 0xffffffffu);
	tw_end(&w);
	check_bad("huge select", tu_write_file("select.gsatrace", w.b, w.n), NULL);
	tw_free(&w);
	tw_header(&w, 1, 1);
	uint8_t bm[4] = {0};
	tw_blocks(&w, 1, 1, 0, 0, 0xffffffffu, 1, 1, 1, 32, bm);
	w.b[w.n - 8] = 0xff;
	w.b[w.n - 7] = 0xff;
	w.b[w.n - 6] = 0xff;
	w.b[w.n - 5] = 0xff; /* bitmap_bits 0xffffffff */
	check_bad("huge blocks", tu_write_file("blocks.gsatrace", w.b, w.n), NULL);
	tw_free(&w);
	tw_header(&w, 1, 1);
	tw_begin(&w, GSA_REC_LOG);
	tw_end(&w);
	w.b[w.n - 4] = 0xff; /* payload length 0xff000000 */
	check_bad("huge payload", tu_write_file("payload.gsatrace", w.b, w.n), NULL);
	tw_free(&w);
	free(good);

	struct tu_run r;
	int rc = tu_run(&r, NULL, NULL, "layers", tu_path("no-such-file"), NULL);
	CHECK(rc == 1 && strstr(r.err, "no-such-file: cannot open: No such file or directory"),
	      "missing file: %d %s", rc, r.err);
	tu_run_free(&r);
	/* an output that cannot be written: exit 1, one line */
	rc = tu_run(&r, NULL, NULL, "export", sample, "--chrome", "/nonexistent-dir/x.json", NULL);
	CHECK(rc == 1 && strstr(r.err, "/nonexistent-dir/x.json: cannot create"), "unwritable: %d %s",
	      rc, r.err);
	tu_run_free(&r);
}

static void free_expectations(void)
{
	for (size_t i = 0; i < E.n_blk; i++)
		free(E.blk[i].bitmap);
	free(E.blk);
	free(E.attn);
	gsa_tr_free(&E.s);
	memset(&E, 0, sizeof(E));
}

static void run_all(void)
{
	if (load_expectations() == 0) {
		test_summary();
		test_summary_two_files();
		test_layers();
		test_heatmap();
		test_export();
		test_kernels();
		test_help_and_usage();
		test_bad_inputs();
	}
	free_expectations();
}

/* Whether a trace has all three kinds of GSA records (the other checks need them). */
static int has_gsa_records(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct gsa_tr_summary s;
	char err[600];
	int ok = f && gsa_tr_read_stream(f, path, &s, err, sizeof(err)) == 0;
	if (f)
		fclose(f);
	if (!ok)
		return 0;
	ok = s.attention_records && s.select_records && s.blocks_records;
	gsa_tr_free(&s);
	return ok;
}

int main(void)
{
	const char *chosen = getenv("GSA_TRACE_SAMPLE");
	sample = chosen && *chosen ? chosen : "tests/data/sample.gsatrace";
	tu_init_tmpdir("gsa-trace-tool");
	if (access(tu_tool(), X_OK) != 0) {
		CHECK(0, "the tool %s is not there (set GSA_TRACE_TOOL)", tu_tool());
	} else {
		run_all();
		/* and every other committed trace with GSA records (real GPU runs) */
		DIR *d = chosen && *chosen ? NULL : opendir("tests/data");
		struct dirent *e;
		static char path[1200];
		while (d && (e = readdir(d))) {
			size_t n = strlen(e->d_name);
			if (n < 10 || strcmp(e->d_name + n - 9, ".gsatrace") != 0 ||
			    strcmp(e->d_name, "sample.gsatrace") == 0)
				continue;
			snprintf(path, sizeof(path), "tests/data/%s", e->d_name);
			if (!has_gsa_records(path)) {
				printf("NOTE %s has no ATTENTION, SELECT and BLOCKS records: not checked "
				       "here\n", path);
				continue;
			}
			sample = path;
			run_all();
		}
		if (d)
			closedir(d);
	}
	tu_remove_tmpdir();
	return check_report("test_gsa_trace_tool");
}

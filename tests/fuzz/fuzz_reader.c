/* Fuzz target for the trace reader and everything that consumes what it decodes: the
 * summary, layer and kernel reports, the heatmap (grid and SVG) and the Trace Event export,
 * all written to /dev/null. The input is one trace file. Built with libFuzzer (clang
 * -fsanitize=fuzzer) or with tests/fuzz/standalone.c (any C compiler); see README.md.
 *
 * Besides not crashing (the sanitizers watch memory), it checks the reader's contract: a
 * failed read leaves a one-line message that starts with the stream's name, and a read that
 * succeeds has no more records than bytes allow. A broken contract aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"
#include "tools/chrome_export.h"
#include "tools/heatmap.h"
#include "tools/report.h"
#include "tools/trace_reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_ctx {
	struct gsa_chrome *chrome;
	struct gsa_heatmap *heatmap;
	int have_key;
	uint64_t events;
};

static int fuzz_record(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev)
{
	struct fuzz_ctx *c = ctx;
	c->events++;
	/* the heatmap follows the first (layer, seq) that has BLOCKS records */
	if (ev->type == GSA_REC_BLOCKS && !c->have_key) {
		c->heatmap = gsa_heatmap_new(ev->u.blocks.layer, ev->u.blocks.seq, 96, 80);
		c->have_key = 1;
	}
	if (c->heatmap)
		gsa_heatmap_add(c->heatmap, ev);
	/* the bitmaps' bytes are all readable (the sanitizer checks the last one) */
	if (ev->type == GSA_REC_BLOCKS && ev->u.blocks.bits) {
		volatile uint8_t last = ev->u.blocks.bitmap[(ev->u.blocks.bits - 1) / 8];
		(void)last;
	}
	return gsa_chrome_record(c->chrome, s, ev) < 0 ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *null_out;
	if (!null_out && !(null_out = fopen("/dev/null", "w")))
		abort();
	FILE *f = fmemopen((void *)(size ? data : (const uint8_t *)""), size ? size : 1, "rb");
	if (!f)
		return 0;
	if (!size)
		fgetc(f); /* fmemopen needs a size of 1 at least: read it away */
	struct fuzz_ctx c = {0};
	c.chrome = gsa_chrome_new(null_out, "fuzz", 0, 0);
	struct gsa_tr_visitor v = {&c, fuzz_record, NULL};
	struct gsa_tr_summary s;
	char err[600];
	memset(err, 'x', sizeof(err));
	int rc = gsa_tr_read_visit(f, "fuzz", &v, &s, err, sizeof(err));
	fclose(f);
	if (rc == 0) {
		/* at least 8 bytes per record after the 32-byte header */
		if (s.records > (size >= 32 ? (size - 32) / 8 : 0))
			abort();
		gsa_report_summary(null_out, "fuzz", &s);
		gsa_report_layers(null_out, "fuzz", &s);
		if (gsa_report_kernels_tsv(null_out, &s) != 0)
			abort();
		struct gsa_report_merge *m = gsa_report_merge_new();
		if (m && gsa_report_merge_add(m, "a/fuzz", &s) == 0 &&
		    gsa_report_merge_add(m, "b/fuzz", &s) == 0)
			gsa_report_merge_print(null_out, m);
		gsa_report_merge_free(m);
		if (c.heatmap && gsa_heatmap_steps(c.heatmap))
			gsa_heatmap_write_svg(c.heatmap, null_out, "fuzz");
		gsa_chrome_finish(c.chrome, &s);
		gsa_tr_free(&s);
	} else {
		if (strncmp(err, "fuzz: ", 6) != 0 || strchr(err, '\n') || !memchr(err, 0, sizeof(err)))
			abort();
		if (s.kernels || s.layers || s.n_logs)
			abort(); /* a failed read releases everything */
	}
	gsa_heatmap_free(c.heatmap);
	gsa_chrome_free(c.chrome);
	return 0;
}

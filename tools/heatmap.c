/* The kept-block heatmap (see tools/heatmap.h): streaming max-pooled grid and its SVG. */
#include "tools/heatmap.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"

struct gsa_heatmap {
	int32_t layer;
	uint32_t seq;
	uint32_t max_cols, max_rows;
	uint8_t *cells;           /* column-major: cells[col * max_rows + row] */
	uint64_t bx, by;          /* steps per column, blocks per row (powers of two) */
	uint64_t steps;           /* records added */
	uint64_t max_total;       /* the longest sequence seen, in blocks */
	uint64_t kept_sum, total_sum;
	uint32_t sink, local;     /* of the last record */
	uint64_t first_launch, last_launch;
	int any_unrecorded;
};

struct gsa_heatmap *gsa_heatmap_new(int32_t layer, uint32_t seq, uint32_t max_cols,
				    uint32_t max_rows)
{
	if (max_cols < 2 || max_rows < 2 || max_cols > GSA_HM_MAX_CELLS_PER_AXIS ||
	    max_rows > GSA_HM_MAX_CELLS_PER_AXIS)
		return NULL;
	struct gsa_heatmap *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->cells = calloc((size_t)max_cols * max_rows, 1);
	if (!h->cells) {
		free(h);
		return NULL;
	}
	h->layer = layer;
	h->seq = seq;
	h->max_cols = max_cols;
	h->max_rows = max_rows;
	h->bx = h->by = 1;
	return h;
}

void gsa_heatmap_free(struct gsa_heatmap *h)
{
	if (!h)
		return;
	free(h->cells);
	free(h);
}

uint64_t gsa_heatmap_steps(const struct gsa_heatmap *h)
{
	return h->steps;
}

static inline enum gsa_hm_class classify(uint32_t b, uint32_t total, uint32_t sink,
					 uint32_t local, uint32_t bits, const uint8_t *bitmap)
{
	if (b >= total)
		return GSA_HM_NONE;
	if (b >= bits)
		return GSA_HM_UNREC;
	if (!gsa_tr_bit(bitmap, b))
		return GSA_HM_DROPPED;
	if (b < sink)
		return GSA_HM_SINK;
	if (local >= total || b >= total - local)
		return GSA_HM_LOCAL;
	return GSA_HM_KEPT;
}

enum gsa_hm_class gsa_heatmap_classify(uint32_t b, uint32_t total, uint32_t sink,
				       uint32_t local, uint32_t bits, const uint8_t *bitmap)
{
	return classify(b, total, sink, local, bits, bitmap);
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

/* Whether any bit in [a, b) of the bitmap is set. */
static int any_set(const uint8_t *bm, uint64_t a, uint64_t b)
{
	while (a < b && (a & 7)) {
		if (gsa_tr_bit(bm, (uint32_t)a))
			return 1;
		a++;
	}
	for (; a + 8 <= b; a += 8)
		if (bm[a >> 3])
			return 1;
	for (; a < b; a++)
		if (gsa_tr_bit(bm, (uint32_t)a))
			return 1;
	return 0;
}

static inline void raise_cell(uint8_t *c, uint8_t v)
{
	if (*c < v)
		*c = v;
}

/* Halves the columns: column c becomes the max of columns 2c and 2c+1. */
static void merge_columns(struct gsa_heatmap *h)
{
	uint32_t R = h->max_rows, half = (h->max_cols + 1) / 2;
	for (uint32_t c = 0; c < half; c++) {
		uint8_t *dst = h->cells + (size_t)c * R, *a = h->cells + (size_t)(2 * c) * R;
		uint8_t *b = 2 * c + 1 < h->max_cols ? a + R : NULL;
		for (uint32_t r = 0; r < R; r++)
			dst[r] = b && b[r] > a[r] ? b[r] : a[r];
	}
	memset(h->cells + (size_t)half * R, 0, (size_t)(h->max_cols - half) * R);
	h->bx *= 2;
}

/* Halves the rows of every column likewise. */
static void merge_rows(struct gsa_heatmap *h)
{
	uint32_t R = h->max_rows, half = (R + 1) / 2;
	for (uint32_t c = 0; c < h->max_cols; c++) {
		uint8_t *col = h->cells + (size_t)c * R;
		for (uint32_t r = 0; r < half; r++) {
			uint8_t a = col[2 * r], b = 2 * r + 1 < R ? col[2 * r + 1] : 0;
			col[r] = a > b ? a : b;
		}
		memset(col + half, 0, R - half);
	}
	h->by *= 2;
}

void gsa_heatmap_add(struct gsa_heatmap *h, const struct gsa_tr_event *ev)
{
	if (ev->type != GSA_REC_BLOCKS || ev->u.blocks.layer != h->layer ||
	    ev->u.blocks.seq != h->seq)
		return;
	uint32_t total = ev->u.blocks.total, bits = ev->u.blocks.bits;
	uint32_t sink = ev->u.blocks.sink, local = ev->u.blocks.local;
	const uint8_t *bm = ev->u.blocks.bitmap;
	uint64_t step = h->steps++;
	while (step / h->bx >= h->max_cols)
		merge_columns(h);
	if (total > h->max_total)
		h->max_total = total;
	while (ceil_div(h->max_total, h->by) > h->max_rows)
		merge_rows(h);
	if (step == 0)
		h->first_launch = ev->u.blocks.launch;
	h->last_launch = ev->u.blocks.launch;
	h->kept_sum += ev->u.blocks.kept;
	h->total_sum += total;
	h->sink = sink;
	h->local = local;

	uint8_t *col = h->cells + (size_t)(step / h->bx) * h->max_rows;
	uint64_t by = h->by;
	/* the recorded blocks (at most 8 million: the payload bounds them), a row at a time:
	 * the largest class of its blocks from three range tests */
	uint64_t local_start = local >= total ? 0 : total - local;
	for (uint64_t lo = 0; lo < bits; lo += by - lo % by) {
		uint64_t hi = lo + by - lo % by;
		if (hi > bits)
			hi = bits;
		enum gsa_hm_class c = GSA_HM_DROPPED;
		if (any_set(bm, lo, hi)) {
			if (lo < sink && any_set(bm, lo, hi < sink ? hi : sink))
				c = GSA_HM_SINK;
			else if (hi > local_start &&
				 any_set(bm, lo > local_start ? lo : local_start, hi))
				c = GSA_HM_LOCAL;
			else
				c = GSA_HM_KEPT;
		}
		raise_cell(&col[lo / by], (uint8_t)c);
	}
	/* the rest of the sequence, not recorded: whole rows at once */
	if (bits < total) {
		h->any_unrecorded = 1;
		for (uint64_t r = bits / by; r <= (uint64_t)(total - 1) / by; r++)
			raise_cell(&col[r], GSA_HM_UNREC);
	}
}

/* ---- SVG ---- */

#define ML 90   /* margins around the plot */
#define MR 260
#define MT 76
#define MB 64
#define PLOT_W 1000
#define PLOT_H 800

static const struct {
	enum gsa_hm_class cls;
	const char *name, *colour;
} classes[] = {
	{GSA_HM_DROPPED, "notkept", "#e8e8e8"},
	{GSA_HM_UNREC, "unrecorded", "#bdbdbd"},
	{GSA_HM_KEPT, "kept", "#2b6cb0"},
	{GSA_HM_LOCAL, "local", "#e67e22"},
	{GSA_HM_SINK, "sink", "#8e2c9a"},
};

/* Text for XML: markup characters escaped, control bytes and non-ASCII replaced by '?' (a
 * file name need not be valid UTF-8). */
static void xml_text(FILE *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		switch (c) {
		case '&': fputs("&amp;", o); break;
		case '<': fputs("&lt;", o); break;
		case '>': fputs("&gt;", o); break;
		case '"': fputs("&quot;", o); break;
		case '\'': fputs("&apos;", o); break;
		default: fputc(c < 0x20 || c >= 0x7f ? '?' : c, o);
		}
	}
}

/* A "nice" tick spacing (1, 2 or 5 times a power of ten) giving at most about n ticks. */
static uint64_t nice_step(uint64_t range, int n)
{
	if (range == 0)
		return 1;
	double raw = (double)range / n;
	double p = pow(10, floor(log10(raw)));
	double f = raw / p;
	double nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
	uint64_t step = (uint64_t)(nice * p);
	return step ? step : 1;
}

static void legend_item(FILE *o, int y, const char *colour, const char *label, const char *note)
{
	int x = ML + PLOT_W + 24;
	fprintf(o, "<rect x=\"%d\" y=\"%d\" width=\"16\" height=\"16\" fill=\"%s\" "
		"stroke=\"#555\" stroke-width=\"0.5\"/>\n", x, y - 12, colour);
	fprintf(o, "<text x=\"%d\" y=\"%d\">%s</text>\n", x + 24, y, label);
	if (note)
		fprintf(o, "<text x=\"%d\" y=\"%d\" class=\"note\">%s</text>\n", x + 24, y + 15, note);
}

int gsa_heatmap_write_svg(const struct gsa_heatmap *h, FILE *o, const char *source)
{
	uint64_t ncols = ceil_div(h->steps, h->bx), nrows = ceil_div(h->max_total, h->by);
	if (ncols == 0)
		ncols = 1;
	if (nrows == 0)
		nrows = 1;
	/* one pixel per cell at least; cells scale to the plot otherwise */
	int pw = ncols > PLOT_W ? (int)ncols : PLOT_W, ph = nrows > PLOT_H ? (int)nrows : PLOT_H;
	double sx = (double)pw / (double)ncols, sy = (double)ph / (double)nrows;
	int W = ML + pw + MR, H = MT + ph + MB;

	fprintf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
		"viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" "
		"font-size=\"13\">\n", W, H, W, H);
	fprintf(o, "<title>Kept KV blocks, layer %" PRId32 ", sequence %" PRIu32 ": ", h->layer,
		h->seq);
	xml_text(o, source);
	fprintf(o, "</title>\n");
	fprintf(o, "<desc>gsa-trace heatmap: one column per decode step (BLOCKS record), one row "
		"per logical KV block; a cell covers %" PRIu64 " step(s) x %" PRIu64 " block(s) and "
		"shows the largest class among them (sink &gt; local &gt; kept &gt; not recorded "
		"&gt; not kept).</desc>\n", h->bx, h->by);
	fprintf(o, "<style>text{fill:#222}.title{font-size:18px;font-weight:bold}"
		".note{font-size:11px;fill:#555}.axis{stroke:#333;stroke-width:1}</style>\n");
	fprintf(o, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H);

	/* title and subtitle */
	fprintf(o, "<text x=\"%d\" y=\"28\" class=\"title\">Kept KV blocks: layer %" PRId32
		", sequence %" PRIu32 "</text>\n", ML, h->layer, h->seq);
	fprintf(o, "<text x=\"%d\" y=\"50\">", ML);
	xml_text(o, source);
	fprintf(o, ": %" PRIu64 " decode steps (launches %" PRIu64 " to %" PRIu64 "), up to %"
		PRIu64 " blocks; %" PRIu64 " of %" PRIu64 " blocks kept (%.1f%%)</text>\n", h->steps,
		h->first_launch, h->last_launch, h->max_total, h->kept_sum, h->total_sum,
		h->total_sum ? 100.0 * (double)h->kept_sum / (double)h->total_sum : 0.0);
	if (h->bx > 1 || h->by > 1)
		fprintf(o, "<text x=\"%d\" y=\"66\" class=\"note\">each cell: %" PRIu64 " step(s) x %"
			PRIu64 " block(s), max-pooled (the most important class in it is shown)</text>\n",
			ML, h->bx, h->by);

	/* the cells, in cell units: x = column, y = row with block 0 at the bottom */
	fprintf(o, "<g id=\"cells\" transform=\"translate(%d %d) scale(%.6f %.6f)\" "
		"shape-rendering=\"crispEdges\" data-columns=\"%" PRIu64 "\" data-rows=\"%" PRIu64
		"\" data-steps-per-column=\"%" PRIu64 "\" data-blocks-per-row=\"%" PRIu64 "\" "
		"data-steps=\"%" PRIu64 "\">\n", ML, MT + ph, sx, -sy, ncols, nrows, h->bx, h->by,
		h->steps);
	for (size_t k = 0; k < sizeof(classes) / sizeof(classes[0]); k++) {
		fprintf(o, "<g class=\"%s\" fill=\"%s\">\n", classes[k].name, classes[k].colour);
		for (uint64_t c = 0; c < ncols; c++) {
			const uint8_t *col = h->cells + (size_t)c * h->max_rows;
			if (classes[k].cls == GSA_HM_DROPPED) {
				/* the sequence's extent in this column, under everything else */
				uint64_t top = nrows;
				while (top > 0 && col[top - 1] == GSA_HM_NONE)
					top--;
				if (top)
					fprintf(o, "<rect x=\"%" PRIu64 "\" y=\"0\" width=\"1\" "
						"height=\"%" PRIu64 "\"/>\n", c, top);
				continue;
			}
			for (uint64_t r = 0; r < nrows;) {
				if (col[r] != classes[k].cls) {
					r++;
					continue;
				}
				uint64_t start = r;
				while (r < nrows && col[r] == classes[k].cls)
					r++;
				fprintf(o, "<rect x=\"%" PRIu64 "\" y=\"%" PRIu64 "\" width=\"1\" "
					"height=\"%" PRIu64 "\"/>\n", c, start, r - start);
			}
		}
		fprintf(o, "</g>\n");
	}
	fprintf(o, "</g>\n");

	/* frame and axes */
	int x0 = ML, y0 = MT + ph;
	fprintf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
		"class=\"axis\"/>\n", ML, MT, pw, ph);
	uint64_t xs = nice_step(h->steps, 10);
	for (uint64_t s = 0; s <= h->steps; s += xs) {
		double x = x0 + (double)s / (double)h->bx * sx;
		fprintf(o, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" class=\"axis\"/>\n", x,
			y0, x, y0 + 6);
		fprintf(o, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%" PRIu64 "</text>\n", x,
			y0 + 21, s);
		if (s > UINT64_MAX - xs)
			break;
	}
	fprintf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">decode step (BLOCKS records "
		"of this layer and sequence, in file order)</text>\n", x0 + pw / 2, y0 + 46);
	uint64_t ys = nice_step(h->max_total, 10);
	for (uint64_t b = 0; b <= h->max_total; b += ys) {
		double y = y0 - (double)b / (double)h->by * sy;
		fprintf(o, "<line x1=\"%d\" y1=\"%.2f\" x2=\"%d\" y2=\"%.2f\" class=\"axis\"/>\n",
			x0 - 6, y, x0, y);
		fprintf(o, "<text x=\"%d\" y=\"%.2f\" text-anchor=\"end\">%" PRIu64 "</text>\n",
			x0 - 9, y + 4, b);
		if (b > UINT64_MAX - ys)
			break;
	}
	fprintf(o, "<text transform=\"translate(%d %d) rotate(-90)\" text-anchor=\"middle\">"
		"block index (logical, 0 = first block of the sequence)</text>\n", ML - 58,
		MT + ph / 2);

	/* legend */
	int ly = MT + 14;
	char note[96];
	fprintf(o, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">blocks</text>\n",
		ML + pw + 24, ly);
	ly += 28;
	snprintf(note, sizeof(note), "the first %" PRIu32 " block(s) (at the last step)", h->sink);
	legend_item(o, ly, classes[4].colour, "sink (always kept)", note);
	ly += 40;
	snprintf(note, sizeof(note), "the last %" PRIu32 " block(s) (at the last step)", h->local);
	legend_item(o, ly, classes[3].colour, "local window (always kept)", note);
	ly += 40;
	legend_item(o, ly, classes[2].colour, "kept (selected)", "dense steps keep every block");
	ly += 40;
	legend_item(o, ly, classes[0].colour, "not kept", NULL);
	ly += 28;
	if (h->any_unrecorded) {
		legend_item(o, ly, classes[1].colour, "not recorded", "row longer than the bitmap");
		ly += 40;
	}
	legend_item(o, ly, "#ffffff", "beyond the sequence", NULL);
	fprintf(o, "</svg>\n");
	return ferror(o) ? -1 : 0;
}

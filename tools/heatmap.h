/* The kept-block heatmap of one (layer, sequence index): decode steps (BLOCKS records of
 * that layer and sequence, in file order) on the x axis, logical block index on the y axis.
 *
 * Bounded memory, one pass: the picture is a grid of at most max_cols x max_rows cells
 * filled as the records stream by. When the steps or the blocks outgrow the grid, cells
 * are merged pairwise (max-pooling): a cell then covers bx steps x by blocks, both powers of
 * two, the smallest that fit. Max-pooling pairwise as the data grows gives exactly what
 * pooling the whole data with the final factors would, because the bins are aligned.
 *
 * A cell's class is the largest over the blocks it covers, in this order (enum below):
 * beyond the sequence < not kept < not recorded < kept < local window < sink. A kept block
 * is "sink" when it is one of the record's first `sink` blocks, "local" when it is one of
 * its last `local` of `total`, "kept" otherwise; blocks at or past bitmap_bits (and below
 * total) are "not recorded".
 */
#ifndef GSA_HEATMAP_H
#define GSA_HEATMAP_H

#include <stdint.h>
#include <stdio.h>

#include "tools/trace_reader.h"

enum gsa_hm_class {
	GSA_HM_NONE = 0,    /* beyond the sequence's length */
	GSA_HM_DROPPED = 1, /* in the sequence, not kept */
	GSA_HM_UNREC = 2,   /* in the sequence, past the recorded bitmap */
	GSA_HM_KEPT = 3,    /* kept, selected among the middle blocks */
	GSA_HM_LOCAL = 4,   /* kept, in the local window */
	GSA_HM_SINK = 5,    /* kept, a sink block */
};

#define GSA_HM_DEFAULT_COLS 1000
#define GSA_HM_DEFAULT_ROWS 800
#define GSA_HM_MAX_CELLS_PER_AXIS 4096

struct gsa_heatmap;

/* NULL when out of memory; max_cols and max_rows in [2, GSA_HM_MAX_CELLS_PER_AXIS]. */
struct gsa_heatmap *gsa_heatmap_new(int32_t layer, uint32_t seq, uint32_t max_cols,
				    uint32_t max_rows);
void gsa_heatmap_free(struct gsa_heatmap *h);

/* Adds a BLOCKS event if it is for this heatmap's (layer, seq); ignores anything else. */
void gsa_heatmap_add(struct gsa_heatmap *h, const struct gsa_tr_event *ev);

/* BLOCKS records added so far. */
uint64_t gsa_heatmap_steps(const struct gsa_heatmap *h);

/* The class of a block of one record (the rule above), for tests and the writer alike. */
enum gsa_hm_class gsa_heatmap_classify(uint32_t b, uint32_t total, uint32_t sink,
				       uint32_t local, uint32_t bits, const uint8_t *bitmap);

/* Writes the SVG; source names the trace in the title. Returns 0, or -1 on a write error.
 * Call only with at least one step. */
int gsa_heatmap_write_svg(const struct gsa_heatmap *h, FILE *out, const char *source);

#endif

/* The text reports of gsa-trace: the per-file summary, the kernel table as TSV, the
 * comparison and merge over several files, and the per-layer table. Everything here only
 * formats a summary the reader produced (tools/trace_reader.h). */
#ifndef GSA_REPORT_H
#define GSA_REPORT_H

#include <stdio.h>

#include "tools/trace_reader.h"

/* Writes s with control bytes (tabs, newlines) replaced by '?'. */
void gsa_put_clean(const char *s, FILE *f);

/* The human summary of one trace (gsa-trace summary). */
void gsa_report_summary(FILE *out, const char *path, const struct gsa_tr_summary *s);

/* The kernel table as tab-separated values (gsa-trace kernels). -1 when out of memory. */
int gsa_report_kernels_tsv(FILE *out, const struct gsa_tr_summary *s);

/* The per-layer table (gsa-trace layers). */
void gsa_report_layers(FILE *out, const char *path, const struct gsa_tr_summary *s);

/* Several traces (tensor-parallel workers): what each adds is kept small (scalars, per-layer
 * sums, one entry per kernel); print shows them side by side, then merged. */
struct gsa_report_merge;
struct gsa_report_merge *gsa_report_merge_new(void);
int gsa_report_merge_add(struct gsa_report_merge *m, const char *path,
			 const struct gsa_tr_summary *s); /* -1 when out of memory */
void gsa_report_merge_print(FILE *out, struct gsa_report_merge *m);
void gsa_report_merge_free(struct gsa_report_merge *m);

#endif

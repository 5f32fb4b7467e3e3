/* The statistics ring of each CUDA context (stats_ring.h): allocated when tracing, polled by
 * the trace's flusher thread, which turns complete slots into GSA_REC_SELECT records. */
#ifndef GSA_SPARSE_STATS_H
#define GSA_SPARSE_STATS_H

#include <stdbool.h>

#include "sparse/module.h"
#include "sparse/stats_ring.h"

struct gsa_stats;

/* The ring of the module's context, created if allowed; NULL if not (then no statistics). */
struct gsa_stats *gsa_stats_get(const struct gsa_module *m, bool capturing);
struct gsa_stats_host *gsa_stats_host_dev(const struct gsa_stats *s); /* device address */
struct gsa_stats_dev *gsa_stats_dev(const struct gsa_stats *s);

/* Emits trace records for every slot completed since the last call. Flusher thread only. */
void gsa_stats_poll(void);

#endif

/* A trace as the Trace Event Format (JSON object with "traceEvents") that Perfetto and
 * chrome://tracing load: written as the records stream by, so any size of trace is exported
 * in bounded memory.
 *
 * One process (the traced pid, named after its executable), one track (tid) per kind:
 *   1 "attention launches"  ATTENTION records as instant events (args: layer, num_seqs,
 *                           reason, reason_text, kernel_id, captured)
 *   2 "selection"           SELECT records as instant events (args: layer, launch, kept,
 *                           total, kept_ratio, ...) and the counter "kept ratio"
 *   3 "allocations"         ALLOC and FREE records as instant events, the counter "live bytes"
 *   4 "log"                 LOG records (name: the message), DROPPED and END records
 *   5 "launch counts"       the counter "kernel launches" from COUNTS records
 * Timestamps: microseconds from the PROCESS record's start_mono_ns (see gsa_chrome_new).
 */
#ifndef GSA_CHROME_EXPORT_H
#define GSA_CHROME_EXPORT_H

#include <stdint.h>
#include <stdio.h>

#include "tools/trace_reader.h"

struct gsa_chrome_counts {
	uint64_t attention, select, alloc, free, log, dropped, end, counts, counters;
	uint64_t events; /* all "traceEvents" entries, metadata included */
};

struct gsa_chrome;

/* Writes to out. base_ns: the time origin when the caller knows it (the PROCESS record's
 * start_mono_ns, found by a first look at the file; have_base 1); otherwise the PROCESS
 * record is used if it comes before any timed record, else the first timestamp. */
struct gsa_chrome *gsa_chrome_new(FILE *out, const char *source, uint64_t base_ns,
				  int have_base);

/* The visitor's record callback (struct gsa_tr_visitor, ctx = the gsa_chrome). Returns -1
 * when writing failed. */
int gsa_chrome_record(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev);

/* Metadata and the end of the JSON. 0, or -1 when writing failed. */
int gsa_chrome_finish(struct gsa_chrome *c, const struct gsa_tr_summary *s);

const struct gsa_chrome_counts *gsa_chrome_counts(const struct gsa_chrome *c);
void gsa_chrome_free(struct gsa_chrome *c);

/* Writes the len bytes at s as a JSON string (quotes included): escapes what JSON requires
 * and replaces bytes that are not valid UTF-8 by '?'. */
void gsa_json_string(FILE *out, const char *s, size_t len);

#endif

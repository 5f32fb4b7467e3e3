/* Reading a trace file (format: preload/trace_format.h) into memory-bounded summaries.
 *
 * The reader streams the file record by record: it never holds the whole file, so a
 * multi-gigabyte trace is read in memory proportional to the number of distinct kernels,
 * live allocations and log messages it describes, plus what GSA's own records need: per
 * layer aggregates, and for the churn one previous kept-block bitmap per (layer, sequence
 * index) (each capped, see below and tools/trace_reader.c).
 * Every malformed input yields a non-zero return and a one-line message; never a crash.
 *
 * A visitor (gsa_tr_read_visit) sees every record as it is decoded, for the commands that
 * need more than the summary (a heatmap, a timeline) without holding the trace.
 */
#ifndef GSA_TRACE_READER_H
#define GSA_TRACE_READER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ATTENTION reasons: 0 rewritten, 1..8 why the launch ran dense (sparse/buffers.h); codes
 * this reader does not know are counted in slot GSA_TR_REASON_OTHER. */
#define GSA_TR_REASONS 9
#define GSA_TR_REASON_OTHER GSA_TR_REASONS
#define GSA_TR_REASON_SLOTS (GSA_TR_REASONS + 1)

/* The LOG code of a fail-open (preload/log.h GSA_CODE_FAIL_OPEN). */
#define GSA_TR_CODE_FAIL_OPEN 7

struct gsa_tr_kernel {
	uint32_t id;
	uint8_t handle_kind;     /* enum gsa_handle_kind */
	uint8_t named;
	uint64_t handle;
	uint32_t param_count;    /* 0xffffffff: unknown */
	uint32_t *param_offsets; /* param_count entries, or NULL */
	uint32_t *param_sizes;
	char *name;              /* "" when unnamed */
	char *adapter;           /* "" when no adapter matched */
	uint64_t launches;       /* from the last COUNTS record */
	/* ATTENTION records naming this kernel, by reason (GSA_TR_REASON_SLOTS), and how many
	 * of them were captured into a CUDA graph */
	uint64_t decisions[GSA_TR_REASON_SLOTS];
	uint64_t decisions_captured;
};

/* GSA's records of one layer (ATTENTION, SELECT and BLOCKS records that name it). */
struct gsa_tr_layer {
	int32_t layer;                /* -1: ATTENTION records that did not know the layer */
	uint64_t decisions, rewritten; /* ATTENTION records; rewritten = reason 0 */
	uint64_t launches;            /* SELECT records */
	uint64_t seqs;                /* sequences with kept/total pairs in those records */
	uint64_t kept, total;         /* blocks, summed over those sequences */
	double ratio_sum;             /* sum of kept / total over sequences with total > 0 */
	uint64_t ratio_n;             /* how many sequences that sum has */
	uint64_t blocks_records;      /* BLOCKS records */
	/* Churn, over consecutive BLOCKS records of the same (layer, sequence index):
	 * churn_steps pairs compared, churn_changed of them with a different kept set,
	 * churn_new kept blocks that were not kept in the previous step, out of churn_kept kept
	 * blocks compared (blocks the previous record did not cover are not compared, except
	 * those beyond its total: new blocks of a grown sequence count as newly kept). */
	uint64_t churn_steps, churn_changed, churn_new, churn_kept;
};

struct gsa_tr_alloc_site {
	uint64_t callsite_hash;
	uint64_t allocs, frees, bytes_total, bytes_live, peak_bytes_live;
};

struct gsa_tr_device {
	int32_t ordinal, cc_major, cc_minor, sm_count;
	uint64_t total_mem;
	char *name;
};

struct gsa_tr_log {
	uint64_t mono_ns;
	uint8_t level;
	uint32_t code;
	char *message;
};

struct gsa_tr_kv { char *key, *value; };

struct gsa_tr_summary {
	uint16_t major, minor;
	uint32_t pid, ppid;
	uint64_t start_unix_ns;
	char *exe, *library_version, *hostname;
	struct gsa_tr_kv *config; size_t n_config;
	struct gsa_tr_device *devices; size_t n_devices;
	struct gsa_tr_kernel *kernels; size_t n_kernels;       /* sorted by id */
	struct gsa_tr_alloc_site *sites; size_t n_sites;
	uint64_t allocs, frees, frees_unknown, bytes_allocated, bytes_live, peak_bytes_live;
	struct gsa_tr_log *logs; size_t n_logs;                /* first 1000 kept */
	uint64_t logs_total;
	uint64_t dropped_bytes;
	uint64_t records, unknown_records;
	int ended_cleanly;                                     /* an END record was seen */
	/* Added by the reader's implementation (tools/trace_reader.c documents the rules): */
	int have_process;             /* a PROCESS record was seen; else exe etc. are "" */
	uint64_t start_mono_ns;       /* the PROCESS record's start_mono_ns */
	uint64_t log_errors, log_warnings; /* over all log messages, kept or not */
	uint64_t fail_open_logs;      /* log messages with code GSA_TR_CODE_FAIL_OPEN */
	/* GSA's records (ATTENTION, SELECT, BLOCKS) */
	uint64_t attention_records;
	uint64_t attention_by_reason[GSA_TR_REASON_SLOTS];
	uint64_t attention_captured;
	uint64_t attention_unattributed; /* beyond the cap on distinct kernel ids: totals only */
	uint64_t select_records, select_seqs, select_kept, select_total;
	uint64_t select_seqs_unlisted; /* sequences counted in num_seqs without a kept/total pair */
	/* The selection's GPU time (SELECT records of format 1.1 on): records that carry it, their
	 * summed select_ns, and the GPU clock span from the first start to the last end. */
	uint64_t select_timed, select_gpu_ns, select_gpu_first, select_gpu_last;
	uint64_t blocks_records;
	struct gsa_tr_layer *layers; size_t n_layers;          /* sorted by layer */
	uint64_t layer_records_unattributed; /* records of layers beyond the cap: totals only */
	uint64_t churn_untracked;     /* BLOCKS records not compared: (layer, seq) or bytes cap */
	/* The range of record timestamps (mono_ns); first > last when there were none. */
	uint64_t first_mono_ns, last_mono_ns;
};

/* One record as the reader decoded it, for a visitor. Pointers point into the reader's
 * buffer and are valid only during the call. Timed records have mono_ns; others 0. */
struct gsa_tr_event {
	unsigned type;                /* enum gsa_trace_record_type, or an unknown type */
	uint64_t offset;              /* byte offset of the record in the file */
	uint64_t mono_ns;
	union {
		struct { uint32_t pid; uint64_t start_mono_ns; } process;
		struct { uint32_t kernel_id; int32_t layer, num_seqs; uint8_t reason, captured; }
			attention;
		/* pairs: n times {u32 kept, u32 total}, little-endian (gsa_tr_select_pair) */
		struct { uint64_t launch; uint32_t kernel_id; int32_t layer; uint32_t num_seqs, n;
			 const uint8_t *pairs; uint64_t kept, total;
			 uint64_t gpu_start_ns, select_ns; /* 0, 0 before format 1.1 */ } select;
		/* bitmap: ceil(bits / 8) bytes, bit b (LSB first) set when block b was kept;
		 * the reader guarantees bits <= total */
		struct { uint64_t launch; int32_t layer; uint32_t seq, total, kept, sink, local, bits;
			 const uint8_t *bitmap; } blocks;
		struct { uint64_t ptr, size, callsite, stream; int32_t device; uint8_t api; } alloc;
		struct { uint64_t ptr; uint8_t api, known; } free;
		struct { uint8_t level; uint32_t code; const char *message; size_t len; } log;
		struct { uint32_t n; uint64_t launches; } counts; /* launches: sum over the n */
		struct { uint64_t bytes; } dropped;
	} u;
};

struct gsa_tr_visitor {
	void *ctx;
	/* Called after each record has been folded into s. Returns 0 to go on, 1 to stop
	 * reading early (the read then succeeds with what was read so far), -1 to fail: the
	 * read then fails with "<name>: stopped at byte N" (the visitor says why itself). */
	int (*record)(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev);
	/* Called with the number of bytes read so far, about every megabyte; may be NULL. */
	void (*progress)(void *ctx, uint64_t bytes);
};

/* Reads the whole file into *out. Returns 0 on success; otherwise 1 and a one-line reason
 * in err ("truncated record at byte 1234", "not a gsa trace (bad magic)", "trace version 2
 * is newer than this reader (1)", ...). On failure *out is released and zeroed. */
int gsa_tr_read(const char *path, struct gsa_tr_summary *out, char *err, size_t errlen);

/* Same, from an open stream; name is used in messages only. */
int gsa_tr_read_stream(FILE *f, const char *name, struct gsa_tr_summary *out, char *err, size_t errlen);

/* Same, calling v (may be NULL) for every record. */
int gsa_tr_read_visit(FILE *f, const char *name, const struct gsa_tr_visitor *v,
		      struct gsa_tr_summary *out, char *err, size_t errlen);

void gsa_tr_free(struct gsa_tr_summary *s);

/* Total launches over all kernels, and launches of kernels with an empty name. */
uint64_t gsa_tr_total_launches(const struct gsa_tr_summary *s);
uint64_t gsa_tr_unnamed_launches(const struct gsa_tr_summary *s);

/* The kernel with this exact name, or NULL (first match by id). */
const struct gsa_tr_kernel *gsa_tr_find_kernel(const struct gsa_tr_summary *s, const char *name);

/* The text of an ATTENTION reason ("rewritten", "unsupported geometry", ...; "unknown
 * reason" beyond those this reader knows). */
const char *gsa_tr_reason_text(unsigned reason);

/* ATTENTION records of a kernel, all reasons; recognised: an adapter matched it or GSA
 * decided about its launches. */
uint64_t gsa_tr_kernel_decisions(const struct gsa_tr_kernel *k);
int gsa_tr_kernel_recognised(const struct gsa_tr_kernel *k);

/* The layer's aggregates, or NULL. */
const struct gsa_tr_layer *gsa_tr_find_layer(const struct gsa_tr_summary *s, int32_t layer);

/* Pair i of a SELECT event. */
void gsa_tr_select_pair(const struct gsa_tr_event *ev, uint32_t i, uint32_t *kept,
			uint32_t *total);

/* Bit b of a BLOCKS bitmap (b < bits). */
static inline int gsa_tr_bit(const uint8_t *bitmap, uint32_t b)
{
	return bitmap[b >> 3] >> (b & 7) & 1;
}

#endif

/* Reading a trace file (format: preload/trace_format.h) into memory-bounded summaries.
 *
 * The reader streams the file record by record: it never holds the whole file, so a
 * multi-gigabyte trace is read in memory proportional to the number of distinct kernels,
 * live allocations and log messages it describes (each capped, see below).
 * Every malformed input yields a non-zero return and a one-line message; never a crash.
 */
#ifndef GSA_TRACE_READER_H
#define GSA_TRACE_READER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
};

/* Reads the whole file into *out. Returns 0 on success; otherwise 1 and a one-line reason
 * in err ("truncated record at byte 1234", "not a gsa trace (bad magic)", "trace version 2
 * is newer than this reader (1)", ...). On failure *out is released and zeroed. */
int gsa_tr_read(const char *path, struct gsa_tr_summary *out, char *err, size_t errlen);

/* Same, from an open stream; name is used in messages only. */
int gsa_tr_read_stream(FILE *f, const char *name, struct gsa_tr_summary *out, char *err, size_t errlen);

void gsa_tr_free(struct gsa_tr_summary *s);

/* Total launches over all kernels, and launches of kernels with an empty name. */
uint64_t gsa_tr_total_launches(const struct gsa_tr_summary *s);
uint64_t gsa_tr_unnamed_launches(const struct gsa_tr_summary *s);

/* The kernel with this exact name, or NULL (first match by id). */
const struct gsa_tr_kernel *gsa_tr_find_kernel(const struct gsa_tr_summary *s, const char *name);

#endif

/* Internal to the trace reader: what tools/trace_reader.c (file framing, end-of-file
 * resolution) and tools/trace_records.c (decoding one record's payload) share. */
#ifndef GSA_TRACE_READER_IMPL_H
#define GSA_TRACE_READER_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/trace_reader.h"
#include "tools/u64_map.h"

#define GSA_TR_MAX_LOGS 1000
#define GSA_TR_PARAMS_UNKNOWN 0xffffffffu
/* Caps that keep a hostile or odd trace from growing the reader without bound: distinct
 * layers (real models have at most a few hundred), distinct kernel ids that only ATTENTION
 * records name, (layer, sequence) keys kept for the churn and the bytes of their bitmaps. */
#define GSA_TR_MAX_LAYERS 8192
#define GSA_TR_MAX_ATTN_KERNELS 65536
#define GSA_TR_MAX_CHURN_KEYS 65536
#define GSA_TR_MAX_CHURN_BYTES (64u << 20)

/* ATTENTION decisions of one kernel id, attached to its kernel at the end. */
struct gsa_tr_attn {
	uint32_t id;
	uint64_t decisions[GSA_TR_REASON_SLOTS];
	uint64_t captured;
};

/* The previous kept-block bitmap of one (layer, sequence index). */
struct gsa_tr_prev {
	uint8_t *bits;
	size_t cap;
	uint32_t nbits, total;
};

struct gsa_tr_snap_entry {
	uint32_t id;
	uint64_t launches;
};

struct gsa_tr_reader {
	FILE *f;
	const char *name;
	char *err;
	size_t errlen;
	struct gsa_tr_summary *s;
	uint64_t rec_off;  /* file offset of the record being read */
	unsigned rec_type;
	uint8_t *buf;
	size_t buf_cap, kernels_cap, devices_cap, sites_cap, logs_cap, snap_cap;
	struct u64_map kernel_ids;      /* kernel id -> index in s->kernels */
	struct u64_map site_ids;        /* callsite hash -> index in s->sites */
	struct u64_map live;            /* ptr -> (size, site index) */
	struct gsa_tr_snap_entry *snap; /* the last COUNTS record */
	size_t n_snap;
	struct gsa_tr_event ev;         /* the record being read, for the visitor */
	const struct gsa_tr_visitor *v;
	/* GSA's records (tools/trace_gsa.c) */
	struct u64_map layer_ids;       /* layer (as u32) -> index in s->layers */
	size_t layers_cap;
	struct u64_map attn_ids;        /* kernel id -> index in attn */
	struct gsa_tr_attn *attn;
	size_t n_attn, attn_cap;
	struct u64_map churn_ids;       /* (layer << 32 | seq) -> index in prev */
	struct gsa_tr_prev *prev;
	size_t n_prev, prev_cap;
	uint64_t prev_bytes;
};

/* Sets err to "<name>: <reason>" (one line) and returns -1. */
int gsa_tr_fail(struct gsa_tr_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static inline int gsa_tr_oom(struct gsa_tr_reader *r)
{
	return gsa_tr_fail(r, "out of memory");
}

/* n bytes at p as a little-endian unsigned integer */
static inline uint64_t gsa_tr_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Folds the payload of the record at r->rec_off (type r->rec_type) into r->s. 0 or -1. */
int gsa_tr_decode(struct gsa_tr_reader *r, const uint8_t *payload, size_t len);

/* Stores k (taking ownership) under its id, replacing an earlier kernel with that id. */
int gsa_tr_store_kernel(struct gsa_tr_reader *r, struct gsa_tr_kernel *k);

/* The ATTENTION, SELECT and BLOCKS records (tools/trace_gsa.c); payloads are length-checked
 * there. 0 or -1. */
int gsa_tr_rec_attention(struct gsa_tr_reader *r, const uint8_t *p, size_t len);
int gsa_tr_rec_select(struct gsa_tr_reader *r, const uint8_t *p, size_t len);
int gsa_tr_rec_blocks(struct gsa_tr_reader *r, const uint8_t *p, size_t len);
/* At the end: decisions to their kernels (placeholders for ids without KERNEL records),
 * layers sorted. Then the GSA state is released (also on failure). */
int gsa_tr_gsa_finish(struct gsa_tr_reader *r);
void gsa_tr_gsa_release(struct gsa_tr_reader *r);
/* The "bad <type> record at byte N: ..." failure. */
int gsa_tr_bad_record(struct gsa_tr_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Notes a record timestamp in the summary's range and the event. */
void gsa_tr_note_time(struct gsa_tr_reader *r, uint64_t mono_ns);

#endif

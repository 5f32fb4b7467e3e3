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

#endif

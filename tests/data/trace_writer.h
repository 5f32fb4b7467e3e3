/* A small trace writer for tests and the sample generator (format: preload/trace_format.h):
 * records are built in a growing memory buffer; tw_flush() hands the bytes to a FILE when
 * the caller streams (the 1 GB test), or the caller keeps them (w.b, w.n).
 * Header-only (static functions) so that each test links it without a library. */
#ifndef GSA_TEST_TRACE_WRITER_H
#define GSA_TEST_TRACE_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"

struct tw {
	uint8_t *b;
	size_t n, cap, rec;
};

static inline void tw_put(struct tw *w, const void *p, size_t n)
{
	if (w->n + n > w->cap) {
		size_t cap = (w->n + n) * 2 + 256;
		uint8_t *b = realloc(w->b, cap);
		if (!b) {
			fputs("trace_writer: out of memory\n", stderr);
			abort();
		}
		w->b = b;
		w->cap = cap;
	}
	if (n)
		memcpy(w->b + w->n, p, n);
	w->n += n;
}

static inline void tw_le(struct tw *w, uint64_t v, int n)
{
	uint8_t b[8];
	for (int i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	tw_put(w, b, (size_t)n);
}
static inline void tw_u8(struct tw *w, uint64_t v) { tw_le(w, v, 1); }
static inline void tw_u16(struct tw *w, uint64_t v) { tw_le(w, v, 2); }
static inline void tw_u32(struct tw *w, uint64_t v) { tw_le(w, v, 4); }
static inline void tw_u64(struct tw *w, uint64_t v) { tw_le(w, v, 8); }

static inline void tw_str(struct tw *w, const char *s)
{
	size_t n = strlen(s);
	tw_u16(w, n);
	tw_put(w, s, n);
}

static inline void tw_header(struct tw *w, uint32_t pid, uint64_t start_unix_ns)
{
	tw_put(w, GSA_TRACE_MAGIC, 8);
	tw_u16(w, GSA_TRACE_MAJOR);
	tw_u16(w, GSA_TRACE_MINOR);
	tw_u32(w, GSA_TRACE_HEADER_SIZE);
	tw_u64(w, start_unix_ns);
	tw_u32(w, pid);
	tw_u32(w, 0);
}

static inline void tw_begin(struct tw *w, unsigned type)
{
	w->rec = w->n;
	tw_u16(w, type);
	tw_u16(w, 0);
	tw_u32(w, 0); /* patched by tw_end() */
}

static inline void tw_end(struct tw *w)
{
	uint32_t len = (uint32_t)(w->n - w->rec - GSA_TRACE_RECORD_HEADER_SIZE);
	for (int i = 0; i < 4; i++)
		w->b[w->rec + 4 + i] = (uint8_t)(len >> (8 * i));
}

/* Writes the buffered bytes to f and empties the buffer; 0 or -1. */
static inline int tw_flush(struct tw *w, FILE *f)
{
	if (w->n && fwrite(w->b, 1, w->n, f) != w->n)
		return -1;
	w->n = 0;
	return 0;
}

static inline void tw_free(struct tw *w)
{
	free(w->b);
	memset(w, 0, sizeof(*w));
}

/* ---- records ---- */

static inline void tw_process(struct tw *w, uint32_t pid, uint32_t ppid, uint64_t start_mono,
			      const char *exe, const char *version, const char *host)
{
	tw_begin(w, GSA_REC_PROCESS);
	tw_u32(w, pid);
	tw_u32(w, ppid);
	tw_u64(w, start_mono);
	tw_str(w, exe);
	tw_str(w, version);
	tw_str(w, host);
	tw_end(w);
}

/* kv: n pairs of strings */
static inline void tw_config(struct tw *w, int n, const char *const *kv)
{
	tw_begin(w, GSA_REC_CONFIG);
	tw_u16(w, (uint64_t)n);
	for (int i = 0; i < 2 * n; i++)
		tw_str(w, kv[i]);
	tw_end(w);
}

static inline void tw_device(struct tw *w, int ord, int ccM, int ccm, int sms, uint64_t mem,
			     const char *name)
{
	tw_begin(w, GSA_REC_DEVICE);
	tw_u32(w, (uint32_t)ord);
	tw_u32(w, (uint32_t)ccM);
	tw_u32(w, (uint32_t)ccm);
	tw_u32(w, (uint32_t)sms);
	tw_u64(w, mem);
	tw_str(w, name);
	tw_end(w);
}

/* params: pc pairs {offset, size}; pc 0xffffffff: unknown */
static inline void tw_kernel(struct tw *w, uint32_t id, int kind, uint64_t handle, uint32_t pc,
			     const uint32_t *params, const char *name, const char *adapter)
{
	tw_begin(w, GSA_REC_KERNEL);
	tw_u32(w, id);
	tw_u8(w, (uint64_t)kind);
	tw_u8(w, name[0] != 0);
	tw_u16(w, 0);
	tw_u64(w, handle);
	tw_u32(w, pc);
	for (uint32_t i = 0; pc != 0xffffffffu && i < pc; i++) {
		tw_u32(w, params[2 * i]);
		tw_u32(w, params[2 * i + 1]);
	}
	tw_str(w, name);
	tw_str(w, adapter);
	tw_end(w);
}

/* pairs: n times {id, launches} */
static inline void tw_counts(struct tw *w, uint64_t mono, uint32_t n, const uint64_t *pairs)
{
	tw_begin(w, GSA_REC_COUNTS);
	tw_u64(w, mono);
	tw_u32(w, n);
	for (uint32_t i = 0; i < n; i++) {
		tw_u32(w, pairs[2 * i]);
		tw_u64(w, pairs[2 * i + 1]);
	}
	tw_end(w);
}

static inline void tw_alloc(struct tw *w, uint64_t mono, uint64_t ptr, uint64_t size,
			    uint64_t site, int device, int api, uint64_t stream)
{
	tw_begin(w, GSA_REC_ALLOC);
	tw_u64(w, mono);
	tw_u64(w, ptr);
	tw_u64(w, size);
	tw_u64(w, site);
	tw_u32(w, (uint32_t)device);
	tw_u8(w, (uint64_t)api);
	tw_u8(w, 0);
	tw_u16(w, 0);
	tw_u64(w, stream);
	tw_end(w);
}

static inline void tw_free_rec(struct tw *w, uint64_t mono, uint64_t ptr, int api, int known)
{
	tw_begin(w, GSA_REC_FREE);
	tw_u64(w, mono);
	tw_u64(w, ptr);
	tw_u8(w, (uint64_t)api);
	tw_u8(w, (uint64_t)known);
	for (int i = 0; i < 6; i++)
		tw_u8(w, 0);
	tw_end(w);
}

static inline void tw_log(struct tw *w, uint64_t mono, int level, uint32_t code, const char *msg)
{
	tw_begin(w, GSA_REC_LOG);
	tw_u64(w, mono);
	tw_u8(w, (uint64_t)level);
	tw_u8(w, 0);
	tw_u16(w, 0);
	tw_u32(w, code);
	tw_str(w, msg);
	tw_end(w);
}

static inline void tw_dropped(struct tw *w, uint64_t mono, uint64_t bytes)
{
	tw_begin(w, GSA_REC_DROPPED);
	tw_u64(w, mono);
	tw_u64(w, bytes);
	tw_end(w);
}

static inline void tw_end_rec(struct tw *w, uint64_t mono)
{
	tw_begin(w, GSA_REC_END);
	tw_u64(w, mono);
	tw_end(w);
}

static inline void tw_attention(struct tw *w, uint64_t mono, uint32_t kernel_id, int32_t layer,
				int32_t num_seqs, int reason, int captured)
{
	tw_begin(w, GSA_REC_ATTENTION);
	tw_u64(w, mono);
	tw_u32(w, kernel_id);
	tw_u32(w, (uint32_t)layer);
	tw_u32(w, (uint32_t)num_seqs);
	tw_u8(w, (uint64_t)reason);
	tw_u8(w, (uint64_t)captured);
	tw_u16(w, 0);
	tw_end(w);
}

/* The common part of a SELECT record; kept_total: n pairs {kept, total}. */
static inline void tw_select_body(struct tw *w, uint64_t mono, uint64_t launch,
				  uint32_t kernel_id, int32_t layer, uint32_t num_seqs, uint32_t n,
				  const uint32_t *kept_total)
{
	tw_begin(w, GSA_REC_SELECT);
	tw_u64(w, mono);
	tw_u64(w, launch);
	tw_u32(w, kernel_id);
	tw_u32(w, (uint32_t)layer);
	tw_u32(w, num_seqs);
	tw_u32(w, n);
	for (uint32_t i = 0; i < 2 * n; i++)
		tw_u32(w, kept_total[i]);
}

/* Format 1.0. */
static inline void tw_select(struct tw *w, uint64_t mono, uint64_t launch, uint32_t kernel_id,
			     int32_t layer, uint32_t num_seqs, uint32_t n,
			     const uint32_t *kept_total)
{
	tw_select_body(w, mono, launch, kernel_id, layer, num_seqs, n, kept_total);
	tw_end(w);
}

/* Format 1.1: then the selection's GPU clock start and duration. */
static inline void tw_select_timed(struct tw *w, uint64_t mono, uint64_t launch,
				   uint32_t kernel_id, int32_t layer, uint32_t num_seqs, uint32_t n,
				   const uint32_t *kept_total, uint64_t gpu_start, uint64_t dur)
{
	tw_select_body(w, mono, launch, kernel_id, layer, num_seqs, n, kept_total);
	tw_u64(w, gpu_start);
	tw_u64(w, dur);
	tw_end(w);
}

/* bitmap: ceil(bits / 8) bytes */
static inline void tw_blocks(struct tw *w, uint64_t mono, uint64_t launch, int32_t layer,
			     uint32_t seq, uint32_t total, uint32_t kept, uint32_t sink,
			     uint32_t local, uint32_t bits, const uint8_t *bitmap)
{
	tw_begin(w, GSA_REC_BLOCKS);
	tw_u64(w, mono);
	tw_u64(w, launch);
	tw_u32(w, (uint32_t)layer);
	tw_u32(w, seq);
	tw_u32(w, total);
	tw_u32(w, kept);
	tw_u32(w, sink);
	tw_u32(w, local);
	tw_u32(w, bits);
	tw_put(w, bitmap, ((size_t)bits + 7) / 8);
	tw_end(w);
}

#endif

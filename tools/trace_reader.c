/* Streaming reader for gsa traces (API: tools/trace_reader.h; format: preload/trace_format.h):
 * the file header, record framing and what is resolved at the end; decoding each record
 * type is in tools/trace_records.c.
 *
 * One record is in memory at a time (at most GSA_TRACE_MAX_PAYLOAD bytes); everything else
 * is folded into the summary as it goes. Rules for inputs the format leaves open:
 *  - KERNEL records with the same id: the last one wins (a later record can only know more).
 *  - COUNTS: only the last record counts. An id it names without any KERNEL record gets a
 *    placeholder kernel (unnamed, kind unknown, params unknown) so that no launch is lost;
 *    such launches show up as unnamed.
 *  - PROCESS and CONFIG: the last record wins. DEVICE: the last record per ordinal wins.
 *  - ALLOC of a pointer that is still live (its FREE record was dropped): the old allocation
 *    leaves the live set without counting as a free.
 *  - FREE of a pointer with no live allocation counts in frees and in frees_unknown.
 *  - sites come out sorted by bytes_total, largest first (ties by hash).
 *  - Strings keep their bytes as they are; an embedded NUL ends the C string early.
 *  - Payload bytes beyond the known fields are ignored (minor versions append fields); a
 *    payload shorter than its known fields is a corrupt record.
 *  - ATTENTION records count per kernel id (attached to the kernel at the end, a placeholder
 *    kernel as for COUNTS when it has no KERNEL record) and per layer; SELECT records per
 *    layer; BLOCKS records per layer and, for the churn, against the previous BLOCKS record
 *    of the same (layer, sequence index) in file order. A BLOCKS record whose bitmap_bits is
 *    larger than its total is corrupt. The caps on what these keep are in trace_gsa.c.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"
#include "tools/trace_reader_impl.h"

/* ---- errors: "<name>: <reason>" on one line; always returns -1 ---- */

int gsa_tr_fail(struct gsa_tr_reader *r, const char *fmt, ...)
{
	if (!r->err || !r->errlen)
		return -1;
	int k = snprintf(r->err, r->errlen, "%s: ", r->name);
	size_t n = k < 0 ? 0 : (size_t)k;
	if (n >= r->errlen)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- framing ---- */

static int read_error(struct gsa_tr_reader *r, uint64_t off)
{
	return gsa_tr_fail(r, "read error at byte %" PRIu64 ": %s", off,
			   strerror(errno ? errno : EIO));
}

static int ensure_buf(struct gsa_tr_reader *r, size_t n)
{
	if (n <= r->buf_cap)
		return 0;
	uint8_t *p = realloc(r->buf, n);
	if (!p)
		return gsa_tr_oom(r);
	r->buf = p;
	r->buf_cap = n;
	return 0;
}

/* Sets *first to the offset of the first record. */
static int read_header(struct gsa_tr_reader *r, uint64_t *first)
{
	uint8_t h[GSA_TRACE_HEADER_SIZE];
	errno = 0;
	size_t got = fread(h, 1, sizeof(h), r->f);
	if (got < sizeof(h) && ferror(r->f))
		return read_error(r, 0);
	if (got == 0)
		return gsa_tr_fail(r, "empty file, not a gsa trace");
	if (got < sizeof(h))
		return gsa_tr_fail(r, "too short for a trace header (%zu of %d bytes)", got,
				   GSA_TRACE_HEADER_SIZE);
	if (memcmp(h, GSA_TRACE_MAGIC, 8) != 0)
		return gsa_tr_fail(r, "not a gsa trace (bad magic)");
	unsigned major = (unsigned)gsa_tr_le(h + 8, 2);
	uint32_t header_size = (uint32_t)gsa_tr_le(h + 12, 4);
	if (major > GSA_TRACE_MAJOR)
		return gsa_tr_fail(r, "trace version %u is newer than this reader (%d)", major,
				   GSA_TRACE_MAJOR);
	if (major < GSA_TRACE_MAJOR)
		return gsa_tr_fail(r, "trace version %u is older than this reader supports (%d)",
				   major, GSA_TRACE_MAJOR);
	if (header_size < GSA_TRACE_HEADER_SIZE || header_size > GSA_TRACE_MAX_PAYLOAD)
		return gsa_tr_fail(r, "bad header size %" PRIu32, header_size);
	/* A longer header (a later minor version) is skipped like an unknown record. */
	size_t extra = header_size - GSA_TRACE_HEADER_SIZE;
	if (extra) {
		if (ensure_buf(r, extra))
			return -1;
		if (fread(r->buf, 1, extra, r->f) < extra)
			return gsa_tr_fail(r, "truncated header (%" PRIu32 " bytes declared)",
					   header_size);
	}
	struct gsa_tr_summary *s = r->s;
	s->major = (uint16_t)major;
	s->minor = (uint16_t)gsa_tr_le(h + 10, 2);
	s->start_unix_ns = gsa_tr_le(h + 16, 8);
	s->pid = (uint32_t)gsa_tr_le(h + 24, 4);
	*first = header_size;
	return 0;
}

#define PROGRESS_EVERY (1u << 20)

static int read_records(struct gsa_tr_reader *r, uint64_t off)
{
	const struct gsa_tr_visitor *v = r->v;
	uint64_t next_progress = PROGRESS_EVERY;
	for (;;) {
		if (v && v->progress && off >= next_progress) {
			v->progress(v->ctx, off);
			next_progress = off + PROGRESS_EVERY;
		}
		uint8_t h[GSA_TRACE_RECORD_HEADER_SIZE];
		errno = 0;
		size_t got = fread(h, 1, sizeof(h), r->f);
		if (got < sizeof(h) && ferror(r->f))
			return read_error(r, off + got);
		if (got == 0)
			return 0; /* clean end: the last record was complete */
		if (got < sizeof(h))
			return gsa_tr_fail(r, "truncated record at byte %" PRIu64 " (record header: "
					   "%zu of %d bytes)", off, got,
					   GSA_TRACE_RECORD_HEADER_SIZE);
		r->rec_off = off;
		r->rec_type = (unsigned)gsa_tr_le(h, 2);
		uint32_t len = (uint32_t)gsa_tr_le(h + 4, 4);
		if (len > GSA_TRACE_MAX_PAYLOAD)
			return gsa_tr_fail(r, "record at byte %" PRIu64 " (type %u) claims a payload "
					   "of %" PRIu32 " bytes, over the limit of %u: corrupt file",
					   off, r->rec_type, len, GSA_TRACE_MAX_PAYLOAD);
		if (ensure_buf(r, len ? len : 1))
			return -1;
		got = fread(r->buf, 1, len, r->f);
		if (got < len && ferror(r->f))
			return read_error(r, off + sizeof(h) + got);
		if (got < len)
			return gsa_tr_fail(r, "truncated record at byte %" PRIu64 " (type %u, needs "
					   "%" PRIu32 " bytes, %zu left)", off, r->rec_type, len,
					   got);
		memset(&r->ev, 0, sizeof(r->ev));
		r->ev.type = r->rec_type;
		r->ev.offset = off;
		off += sizeof(h) + len;
		r->s->records++;
		if (gsa_tr_decode(r, r->buf, len))
			return -1;
		if (v && v->record) {
			int rc = v->record(v->ctx, r->s, &r->ev);
			if (rc < 0)
				return gsa_tr_fail(r, "stopped at byte %" PRIu64, r->rec_off);
			if (rc > 0)
				return 0;
		}
	}
}

static int by_id(const void *a, const void *b)
{
	const struct gsa_tr_kernel *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int by_bytes_desc(const void *a, const void *b)
{
	const struct gsa_tr_alloc_site *x = a, *y = b;
	if (x->bytes_total != y->bytes_total)
		return x->bytes_total < y->bytes_total ? 1 : -1;
	return (x->callsite_hash > y->callsite_hash) - (x->callsite_hash < y->callsite_hash);
}

static int set_empty(struct gsa_tr_reader *r, char **p)
{
	if (!*p && !(*p = calloc(1, 1)))
		return gsa_tr_oom(r);
	return 0;
}

/* Resolves what could only be resolved at the end: launches by kernel id, sort orders. */
static int finish(struct gsa_tr_reader *r)
{
	struct gsa_tr_summary *s = r->s;
	for (size_t i = 0; i < s->n_kernels; i++)
		s->kernels[i].launches = 0;
	for (size_t i = 0; i < r->n_snap; i++) {
		struct u64_map_entry *e = u64_map_get(&r->kernel_ids, r->snap[i].id);
		if (!e) {
			struct gsa_tr_kernel k = {.id = r->snap[i].id,
						  .handle_kind = GSA_HANDLE_UNKNOWN,
						  .param_count = GSA_TR_PARAMS_UNKNOWN};
			if (set_empty(r, &k.name) || set_empty(r, &k.adapter)) {
				free(k.name);
				return -1;
			}
			if (gsa_tr_store_kernel(r, &k))
				return -1;
			e = u64_map_get(&r->kernel_ids, r->snap[i].id);
		}
		s->kernels[e->a].launches = r->snap[i].launches;
	}
	if (gsa_tr_gsa_finish(r))
		return -1;
	if (s->n_kernels)
		qsort(s->kernels, s->n_kernels, sizeof(*s->kernels), by_id);
	if (s->n_sites)
		qsort(s->sites, s->n_sites, sizeof(*s->sites), by_bytes_desc);
	if (set_empty(r, &s->exe) || set_empty(r, &s->library_version) ||
	    set_empty(r, &s->hostname))
		return -1;
	return 0;
}

int gsa_tr_read_visit(FILE *f, const char *name, const struct gsa_tr_visitor *v,
		      struct gsa_tr_summary *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->first_mono_ns = UINT64_MAX;
	if (err && errlen)
		err[0] = '\0';
	struct gsa_tr_reader r = {.f = f, .name = name ? name : "(trace)", .err = err,
				  .errlen = errlen, .s = out, .v = v};
	uint64_t off = 0;
	int ok = read_header(&r, &off) == 0 && read_records(&r, off) == 0 && finish(&r) == 0;
	int rc = ok ? 0 : 1;
	gsa_tr_gsa_release(&r);
	u64_map_free(&r.kernel_ids);
	u64_map_free(&r.site_ids);
	u64_map_free(&r.live);
	free(r.snap);
	free(r.buf);
	if (rc)
		gsa_tr_free(out);
	return rc;
}

int gsa_tr_read_stream(FILE *f, const char *name, struct gsa_tr_summary *out, char *err,
		       size_t errlen)
{
	return gsa_tr_read_visit(f, name, NULL, out, err, errlen);
}

int gsa_tr_read(const char *path, struct gsa_tr_summary *out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		memset(out, 0, sizeof(*out));
		if (err && errlen)
			snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return 1;
	}
	/* Records are small and many: a larger stdio buffer saves read calls. */
	setvbuf(f, NULL, _IOFBF, 1 << 16);
	int rc = gsa_tr_read_stream(f, path, out, err, errlen);
	fclose(f);
	return rc;
}

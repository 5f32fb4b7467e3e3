/* Decoding one record's payload into the summary (the rules for duplicates, snapshots and
 * allocations are listed in tools/trace_reader.c), and into the event a visitor sees. Every
 * variable-length part is checked against the payload before anything is allocated for it.
 * GSA's own records (ATTENTION, SELECT, BLOCKS) are in tools/trace_gsa.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"
#include "tools/trace_reader_impl.h"

static const char *type_name(unsigned t)
{
	static const char *const names[] = {"", "process", "config", "device", "kernel",
					    "counts", "alloc", "free", "log", "dropped", "end",
					    "attention", "select", "blocks"};
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

int gsa_tr_bad_record(struct gsa_tr_reader *r, const char *fmt, ...)
{
	char detail[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return gsa_tr_fail(r, "bad %s record at byte %" PRIu64 ": %s", type_name(r->rec_type),
			   r->rec_off, detail);
}
#define bad_record gsa_tr_bad_record

void gsa_tr_note_time(struct gsa_tr_reader *r, uint64_t mono_ns)
{
	struct gsa_tr_summary *s = r->s;
	r->ev.mono_ns = mono_ns;
	if (mono_ns < s->first_mono_ns)
		s->first_mono_ns = mono_ns;
	if (mono_ns > s->last_mono_ns)
		s->last_mono_ns = mono_ns;
}

/* ---- little-endian payload cursor; fixed fields are length-checked by need() first ---- */

struct cursor {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct cursor *c, int n)
{
	uint64_t v = gsa_tr_le(c->p, n);
	c->p += n;
	c->left -= n;
	return v;
}
#define take8(c) ((uint8_t)take(c, 1))
#define take16(c) ((uint16_t)take(c, 2))
#define take32(c) ((uint32_t)take(c, 4))
#define take64(c) take(c, 8)

static int need(struct gsa_tr_reader *r, const struct cursor *c, size_t n)
{
	if (c->left >= n)
		return 0;
	return bad_record(r, "payload of %zu bytes is shorter than the %zu its fields need",
			  c->left, n);
}

/* A u16-length string. With out == NULL it is only checked and skipped. */
static int take_str(struct gsa_tr_reader *r, struct cursor *c, const char *what, char **out)
{
	if (c->left < 2)
		return bad_record(r, "payload ends before the length of %s", what);
	uint16_t len = take16(c);
	if (len > c->left)
		return bad_record(r, "%s is %u bytes long but only %zu payload bytes are left",
				  what, len, c->left);
	if (out) {
		if (!(*out = malloc((size_t)len + 1)))
			return gsa_tr_oom(r);
		memcpy(*out, c->p, len);
		(*out)[len] = '\0';
	}
	c->p += len;
	c->left -= len;
	return 0;
}

/* Room for one more element: returns the (maybe moved) array, or NULL with arr untouched. */
static void *grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / elem)
		return NULL;
	void *p = realloc(arr, ncap * elem);
	if (p)
		*cap = ncap;
	return p;
}

static void free_kernel(struct gsa_tr_kernel *k)
{
	free(k->param_offsets);
	free(k->param_sizes);
	free(k->name);
	free(k->adapter);
}

static void free_kvs(struct gsa_tr_kv *kv, size_t n)
{
	for (size_t i = 0; kv && i < n; i++) {
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
}

/* ---- one function per record type ---- */

static int rec_process(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 16))
		return -1;
	uint32_t pid = take32(c), ppid = take32(c);
	uint64_t start = take64(c);
	char *exe = NULL, *ver = NULL, *host = NULL;
	if (take_str(r, c, "exe", &exe) || take_str(r, c, "library_version", &ver) ||
	    take_str(r, c, "hostname", &host)) {
		free(exe);
		free(ver);
		return -1;
	}
	struct gsa_tr_summary *s = r->s;
	free(s->exe);
	free(s->library_version);
	free(s->hostname);
	s->exe = exe;
	s->library_version = ver;
	s->hostname = host;
	s->pid = pid;
	s->ppid = ppid;
	s->start_mono_ns = start;
	s->have_process = 1;
	r->ev.u.process.pid = pid;
	r->ev.u.process.start_mono_ns = start;
	return 0;
}

static int rec_config(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 2))
		return -1;
	uint16_t count = take16(c);
	/* Each pair needs at least its two length fields: refuse before allocating. */
	if ((size_t)count * 4 > c->left)
		return bad_record(r, "%u config entries cannot fit in the %zu payload bytes left",
				  count, c->left);
	struct gsa_tr_kv *kv = calloc(count ? count : 1, sizeof(*kv));
	if (!kv)
		return gsa_tr_oom(r);
	for (size_t i = 0; i < count; i++) {
		if (take_str(r, c, "config key", &kv[i].key) ||
		    take_str(r, c, "config value", &kv[i].value)) {
			free_kvs(kv, count);
			return -1;
		}
	}
	free_kvs(r->s->config, r->s->n_config);
	r->s->config = kv;
	r->s->n_config = count;
	return 0;
}

static int rec_device(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 24))
		return -1;
	struct gsa_tr_device d;
	d.ordinal = (int32_t)take32(c);
	d.cc_major = (int32_t)take32(c);
	d.cc_minor = (int32_t)take32(c);
	d.sm_count = (int32_t)take32(c);
	d.total_mem = take64(c);
	if (take_str(r, c, "device name", &d.name))
		return -1;
	struct gsa_tr_summary *s = r->s;
	for (size_t i = 0; i < s->n_devices; i++) {
		if (s->devices[i].ordinal == d.ordinal) {
			free(s->devices[i].name);
			s->devices[i] = d;
			return 0;
		}
	}
	void *p = grow(s->devices, &r->devices_cap, s->n_devices, sizeof(*s->devices));
	if (!p) {
		free(d.name);
		return gsa_tr_oom(r);
	}
	s->devices = p;
	s->devices[s->n_devices++] = d;
	return 0;
}

int gsa_tr_store_kernel(struct gsa_tr_reader *r, struct gsa_tr_kernel *k)
{
	struct gsa_tr_summary *s = r->s;
	struct u64_map_entry *e = u64_map_get(&r->kernel_ids, k->id);
	if (e) {
		free_kernel(&s->kernels[e->a]);
		s->kernels[e->a] = *k;
		return 0;
	}
	void *p = grow(s->kernels, &r->kernels_cap, s->n_kernels, sizeof(*s->kernels));
	if (!p || u64_map_put(&r->kernel_ids, k->id, s->n_kernels, 0)) {
		if (p)
			s->kernels = p;
		free_kernel(k);
		return gsa_tr_oom(r);
	}
	s->kernels = p;
	s->kernels[s->n_kernels++] = *k;
	return 0;
}

static int rec_kernel(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 20))
		return -1;
	struct gsa_tr_kernel k = {0};
	k.id = take32(c);
	k.handle_kind = take8(c);
	k.named = take8(c);
	take(c, 2); /* reserved */
	k.handle = take64(c);
	k.param_count = take32(c);
	if (k.param_count != GSA_TR_PARAMS_UNKNOWN && k.param_count > 0) {
		/* Checked against the payload before allocating, so a huge count cannot make
		 * us allocate more than the record could describe. */
		if ((uint64_t)k.param_count * 8 > c->left)
			return bad_record(r, "param_count %u needs %" PRIu64 " bytes but only %zu "
					  "payload bytes are left", k.param_count,
					  (uint64_t)k.param_count * 8, c->left);
		k.param_offsets = malloc(k.param_count * sizeof(uint32_t));
		k.param_sizes = malloc(k.param_count * sizeof(uint32_t));
		if (!k.param_offsets || !k.param_sizes) {
			free_kernel(&k);
			return gsa_tr_oom(r);
		}
		for (uint32_t i = 0; i < k.param_count; i++) {
			k.param_offsets[i] = take32(c);
			k.param_sizes[i] = take32(c);
		}
	}
	if (take_str(r, c, "kernel name", &k.name) || take_str(r, c, "adapter", &k.adapter)) {
		free_kernel(&k);
		return -1;
	}
	return gsa_tr_store_kernel(r, &k);
}

static int rec_counts(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 12))
		return -1;
	gsa_tr_note_time(r, take64(c));
	uint32_t n = take32(c);
	if ((uint64_t)n * 12 > c->left)
		return bad_record(r, "%u counts need %" PRIu64 " bytes but only %zu payload bytes "
				  "are left", n, (uint64_t)n * 12, c->left);
	if (n > r->snap_cap) {
		struct gsa_tr_snap_entry *p = realloc(r->snap, (size_t)n * sizeof(*p));
		if (!p)
			return gsa_tr_oom(r);
		r->snap = p;
		r->snap_cap = n;
	}
	uint64_t sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		r->snap[i].id = take32(c);
		r->snap[i].launches = take64(c);
		sum += r->snap[i].launches;
	}
	r->n_snap = n;
	r->ev.u.counts.n = n;
	r->ev.u.counts.launches = sum;
	return 0;
}

/* The index of the site for this hash, created on first use; -1 when out of memory. */
static long site_index(struct gsa_tr_reader *r, uint64_t hash)
{
	struct gsa_tr_summary *s = r->s;
	struct u64_map_entry *e = u64_map_get(&r->site_ids, hash);
	if (e)
		return (long)e->a;
	void *p = grow(s->sites, &r->sites_cap, s->n_sites, sizeof(*s->sites));
	if (!p)
		return -1;
	s->sites = p;
	if (u64_map_put(&r->site_ids, hash, s->n_sites, 0))
		return -1;
	memset(&s->sites[s->n_sites], 0, sizeof(*s->sites));
	s->sites[s->n_sites].callsite_hash = hash;
	return (long)s->n_sites++;
}

static void release_live(struct gsa_tr_summary *s, uint64_t size, uint64_t site)
{
	s->bytes_live -= size;
	s->sites[site].bytes_live -= size;
}

static int rec_alloc(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 48))
		return -1;
	gsa_tr_note_time(r, take64(c));
	uint64_t ptr = take64(c), size = take64(c), hash = take64(c);
	/* device, api, reserved and stream are not summarised, only passed to a visitor */
	r->ev.u.alloc.ptr = ptr;
	r->ev.u.alloc.size = size;
	r->ev.u.alloc.callsite = hash;
	r->ev.u.alloc.device = (int32_t)take32(c);
	r->ev.u.alloc.api = take8(c);
	take(c, 3);
	r->ev.u.alloc.stream = take64(c);
	struct gsa_tr_summary *s = r->s;
	long site = site_index(r, hash);
	if (site < 0)
		return gsa_tr_oom(r);
	struct u64_map_entry *old = u64_map_get(&r->live, ptr);
	if (old)
		release_live(s, old->a, old->b);
	if (u64_map_put(&r->live, ptr, size, (uint64_t)site)) {
		if (old)
			u64_map_del(&r->live, ptr);
		return gsa_tr_oom(r);
	}
	struct gsa_tr_alloc_site *st = &s->sites[site];
	s->allocs++;
	s->bytes_allocated += size;
	s->bytes_live += size;
	if (s->bytes_live > s->peak_bytes_live)
		s->peak_bytes_live = s->bytes_live;
	st->allocs++;
	st->bytes_total += size;
	st->bytes_live += size;
	if (st->bytes_live > st->peak_bytes_live)
		st->peak_bytes_live = st->bytes_live;
	return 0;
}

static int rec_free(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 24))
		return -1;
	gsa_tr_note_time(r, take64(c));
	uint64_t ptr = take64(c);
	/* api and known are not needed: the live set says whether ptr was allocated. */
	r->ev.u.free.ptr = ptr;
	r->ev.u.free.api = take8(c);
	r->ev.u.free.known = take8(c);
	struct gsa_tr_summary *s = r->s;
	s->frees++;
	struct u64_map_entry *e = u64_map_get(&r->live, ptr);
	if (!e) {
		s->frees_unknown++;
		return 0;
	}
	s->sites[e->b].frees++;
	release_live(s, e->a, e->b);
	u64_map_del(&r->live, ptr);
	return 0;
}

static int rec_log(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 16))
		return -1;
	struct gsa_tr_log l = {0};
	l.mono_ns = take64(c);
	gsa_tr_note_time(r, l.mono_ns);
	l.level = take8(c);
	take(c, 3); /* reserved */
	l.code = take32(c);
	struct gsa_tr_summary *s = r->s;
	int keep = s->n_logs < GSA_TR_MAX_LOGS;
	const uint8_t *before = c->p;
	if (take_str(r, c, "log message", keep ? &l.message : NULL))
		return -1;
	r->ev.u.log.level = l.level;
	r->ev.u.log.code = l.code;
	r->ev.u.log.message = (const char *)before + 2;
	r->ev.u.log.len = (size_t)(c->p - before) - 2;
	if (keep) {
		void *p = grow(s->logs, &r->logs_cap, s->n_logs, sizeof(*s->logs));
		if (!p) {
			free(l.message);
			return gsa_tr_oom(r);
		}
		s->logs = p;
		s->logs[s->n_logs++] = l;
	}
	s->logs_total++;
	s->log_errors += l.level == 0;
	s->log_warnings += l.level == 1;
	s->fail_open_logs += l.code == GSA_TR_CODE_FAIL_OPEN;
	return 0;
}

static int rec_dropped(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 16))
		return -1;
	gsa_tr_note_time(r, take64(c));
	r->ev.u.dropped.bytes = take64(c);
	r->s->dropped_bytes += r->ev.u.dropped.bytes;
	return 0;
}

static int rec_end(struct gsa_tr_reader *r, struct cursor *c)
{
	if (need(r, c, 8))
		return -1;
	gsa_tr_note_time(r, take64(c));
	r->s->ended_cleanly = 1;
	return 0;
}

int gsa_tr_decode(struct gsa_tr_reader *r, const uint8_t *payload, size_t len)
{
	struct cursor cur = {payload, len}, *c = &cur;
	switch (r->rec_type) {
	case GSA_REC_PROCESS: return rec_process(r, c);
	case GSA_REC_CONFIG: return rec_config(r, c);
	case GSA_REC_DEVICE: return rec_device(r, c);
	case GSA_REC_KERNEL: return rec_kernel(r, c);
	case GSA_REC_COUNTS: return rec_counts(r, c);
	case GSA_REC_ALLOC: return rec_alloc(r, c);
	case GSA_REC_FREE: return rec_free(r, c);
	case GSA_REC_LOG: return rec_log(r, c);
	case GSA_REC_DROPPED: return rec_dropped(r, c);
	case GSA_REC_END: return rec_end(r, c);
	case GSA_REC_ATTENTION: return gsa_tr_rec_attention(r, payload, len);
	case GSA_REC_SELECT: return gsa_tr_rec_select(r, payload, len);
	case GSA_REC_BLOCKS: return gsa_tr_rec_blocks(r, payload, len);
	default:
		r->s->unknown_records++; /* newer minor version: its length lets us skip it */
		return 0;
	}
}

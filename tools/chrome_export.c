/* The Trace Event Format export (see tools/chrome_export.h). */
#include "tools/chrome_export.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "preload/trace_format.h"
#include "tools/human_bytes.h"

enum { TID_ATTENTION = 1, TID_SELECTION, TID_ALLOC, TID_LOG, TID_COUNTS };

#define MAX_NAME 120 /* bytes of a log message used as an event name */

struct gsa_chrome {
	FILE *o;
	char *source;
	uint64_t base;
	int have_base;
	uint32_t pid;
	struct gsa_chrome_counts n;
};

struct gsa_chrome *gsa_chrome_new(FILE *out, const char *source, uint64_t base_ns,
				  int have_base)
{
	struct gsa_chrome *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->source = strdup(source ? source : "");
	if (!c->source) {
		free(c);
		return NULL;
	}
	c->o = out;
	c->base = base_ns;
	c->have_base = have_base;
	fputs("{\"traceEvents\":[\n", out);
	return c;
}

void gsa_chrome_free(struct gsa_chrome *c)
{
	if (!c)
		return;
	free(c->source);
	free(c);
}

const struct gsa_chrome_counts *gsa_chrome_counts(const struct gsa_chrome *c)
{
	return &c->n;
}

/* Length of the valid UTF-8 sequence at s (at most left bytes), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates and values past Unicode are not valid */
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

void gsa_json_string(FILE *o, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	fputc('"', o);
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			fputc('\\', o);
			fputc(c, o);
			i++;
		} else if (c == '\n') {
			fputs("\\n", o);
			i++;
		} else if (c == '\t') {
			fputs("\\t", o);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(o, "\\u%04x", c);
			i++;
		} else {
			size_t n = utf8_len(s + i, len - i);
			if (n == 0) {
				fputc('?', o);
				i++;
			} else {
				fwrite(s + i, 1, n, o);
				i += n;
			}
		}
	}
	fputc('"', o);
}

static void json_cstr(FILE *o, const char *s)
{
	gsa_json_string(o, s, strlen(s));
}

/* The time origin, fixed at the first timed record if not known before. */
static double ts_us(struct gsa_chrome *c, uint64_t mono_ns)
{
	if (!c->have_base) {
		c->base = mono_ns;
		c->have_base = 1;
	}
	return ((double)mono_ns - (double)c->base) / 1000.0;
}

/* The common start of an event: {"name":NAME,"ph":PH,"ts":..,"pid":..,"tid":.. */
static void begin(struct gsa_chrome *c, const char *ph, int tid, uint64_t mono_ns)
{
	fprintf(c->o, "{\"ph\":\"%s\",\"ts\":%.3f,\"pid\":%" PRIu32 ",\"tid\":%d,", ph,
		ts_us(c, mono_ns), c->pid, tid);
	c->n.events++;
}

static void instant(struct gsa_chrome *c, int tid, uint64_t mono_ns, const char *cat)
{
	begin(c, "i", tid, mono_ns);
	fprintf(c->o, "\"s\":\"t\",\"cat\":\"%s\",\"name\":", cat);
}

static void counter(struct gsa_chrome *c, int tid, uint64_t mono_ns, const char *name,
		    const char *series, double value)
{
	begin(c, "C", tid, mono_ns);
	fprintf(c->o, "\"name\":\"%s\",\"args\":{\"%s\":%.17g}},\n", name, series, value);
	c->n.counters++;
}

static const char *api_name(uint8_t api)
{
	switch (api) {
	case GSA_API_CU_MEM_ALLOC: return "cuMemAlloc";
	case GSA_API_CU_MEM_ALLOC_ASYNC: return "cuMemAllocAsync";
	case GSA_API_CUDA_MALLOC: return "cudaMalloc";
	case GSA_API_CUDA_MALLOC_ASYNC: return "cudaMallocAsync";
	default: return "unknown";
	}
}

static const char *level_name(uint8_t level)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	return level < 4 ? names[level] : "unknown";
}

int gsa_chrome_record(void *ctx, const struct gsa_tr_summary *s, const struct gsa_tr_event *ev)
{
	struct gsa_chrome *c = ctx;
	FILE *o = c->o;
	char buf[64];
	c->pid = s->pid;
	switch (ev->type) {
	case GSA_REC_PROCESS:
		if (!c->have_base) {
			c->base = ev->u.process.start_mono_ns;
			c->have_base = 1;
		}
		return 0;
	case GSA_REC_ATTENTION: {
		unsigned reason = ev->u.attention.reason;
		instant(c, TID_ATTENTION, ev->mono_ns, "attention");
		if (reason == 0)
			json_cstr(o, "rewritten");
		else {
			fputs("\"dense: ", o);
			fputs(gsa_tr_reason_text(reason), o); /* our own texts: nothing to escape */
			fputc('"', o);
		}
		fprintf(o, ",\"args\":{\"layer\":%" PRId32 ",\"num_seqs\":%" PRId32 ",\"reason\":%u,"
			"\"reason_text\":\"%s\",\"kernel_id\":%" PRIu32 ",\"captured\":%u}},\n",
			ev->u.attention.layer, ev->u.attention.num_seqs, reason,
			gsa_tr_reason_text(reason), ev->u.attention.kernel_id,
			(unsigned)ev->u.attention.captured);
		c->n.attention++;
		break;
	}
	case GSA_REC_SELECT: {
		uint64_t kept = ev->u.select.kept, total = ev->u.select.total;
		double ratio = total ? (double)kept / (double)total : 0;
		instant(c, TID_SELECTION, ev->mono_ns, "selection");
		fprintf(o, "\"select layer %" PRId32 "\",\"args\":{\"layer\":%" PRId32 ",\"launch\":%"
			PRIu64 ",\"kernel_id\":%" PRIu32 ",\"num_seqs\":%" PRIu32 ",\"kept\":%" PRIu64
			",\"total\":%" PRIu64 ",\"kept_ratio\":%.6f}},\n", ev->u.select.layer,
			ev->u.select.layer, ev->u.select.launch, ev->u.select.kernel_id,
			ev->u.select.num_seqs, kept, total, ratio);
		c->n.select++;
		if (total)
			counter(c, TID_SELECTION, ev->mono_ns, "kept ratio", "ratio", ratio);
		break;
	}
	case GSA_REC_ALLOC:
		instant(c, TID_ALLOC, ev->mono_ns, "memory");
		fprintf(o, "\"alloc %s\",\"args\":{\"ptr\":\"0x%" PRIx64 "\",\"size\":%" PRIu64 ","
			"\"callsite\":\"0x%016" PRIx64 "\",\"device\":%" PRId32 ",\"api\":\"%s\","
			"\"stream\":\"0x%" PRIx64 "\"}},\n",
			gsa_human_bytes(ev->u.alloc.size, buf, sizeof(buf)), ev->u.alloc.ptr,
			ev->u.alloc.size, ev->u.alloc.callsite, ev->u.alloc.device,
			api_name(ev->u.alloc.api), ev->u.alloc.stream);
		c->n.alloc++;
		counter(c, TID_ALLOC, ev->mono_ns, "live bytes", "bytes", (double)s->bytes_live);
		break;
	case GSA_REC_FREE:
		instant(c, TID_ALLOC, ev->mono_ns, "memory");
		fprintf(o, "\"free\",\"args\":{\"ptr\":\"0x%" PRIx64 "\",\"api\":\"%s\",\"known\":%u}},"
			"\n", ev->u.free.ptr, api_name(ev->u.free.api), (unsigned)ev->u.free.known);
		c->n.free++;
		counter(c, TID_ALLOC, ev->mono_ns, "live bytes", "bytes", (double)s->bytes_live);
		break;
	case GSA_REC_LOG: {
		size_t len = ev->u.log.len;
		instant(c, TID_LOG, ev->mono_ns, "log");
		/* the name is the message's start, cut at a character boundary */
		size_t cut = len < MAX_NAME ? len : MAX_NAME;
		while (cut < len && cut > 0 && ((unsigned char)ev->u.log.message[cut] & 0xc0) == 0x80)
			cut--;
		gsa_json_string(o, ev->u.log.message, cut);
		fprintf(o, ",\"args\":{\"level\":\"%s\",\"code\":%" PRIu32 ",\"message\":",
			level_name(ev->u.log.level), ev->u.log.code);
		gsa_json_string(o, ev->u.log.message, len);
		fputs("}},\n", o);
		c->n.log++;
		break;
	}
	case GSA_REC_DROPPED:
		instant(c, TID_LOG, ev->mono_ns, "trace");
		fprintf(o, "\"dropped %" PRIu64 " bytes of records\",\"args\":{\"bytes\":%" PRIu64
			"}},\n", ev->u.dropped.bytes, ev->u.dropped.bytes);
		c->n.dropped++;
		break;
	case GSA_REC_END:
		instant(c, TID_LOG, ev->mono_ns, "trace");
		fputs("\"end of trace (clean shutdown)\"},\n", o);
		c->n.end++;
		break;
	case GSA_REC_COUNTS:
		counter(c, TID_COUNTS, ev->mono_ns, "kernel launches", "launches",
			(double)ev->u.counts.launches);
		c->n.counts++;
		break;
	default:
		return 0;
	}
	return ferror(o) ? -1 : 0;
}

static void meta(struct gsa_chrome *c, const char *what, int tid, const char *key)
{
	fprintf(c->o, "{\"ph\":\"M\",\"pid\":%" PRIu32 ",\"tid\":%d,\"name\":\"%s\",\"args\":{",
		c->pid, tid, what);
	c->n.events++;
	if (key)
		fprintf(c->o, "\"%s\":", key);
}

int gsa_chrome_finish(struct gsa_chrome *c, const struct gsa_tr_summary *s)
{
	static const char *const tracks[] = {"", "attention launches", "selection", "allocations",
					     "log", "launch counts"};
	FILE *o = c->o;
	c->pid = s->pid;
	/* the process name: "gsa-preload pid N: exe" */
	meta(c, "process_name", 0, "name");
	char name[600];
	snprintf(name, sizeof(name), "gsa-preload pid %" PRIu32 ": %s", s->pid,
		 s->exe && s->exe[0] ? s->exe : "?");
	json_cstr(o, name);
	fputs("}},\n", o);
	for (int t = TID_ATTENTION; t <= TID_COUNTS; t++) {
		meta(c, "thread_name", t, "name");
		json_cstr(o, tracks[t]);
		fputs("}},\n", o);
		meta(c, "thread_sort_index", t, "sort_index");
		fprintf(o, "%d}}%s\n", t, t == TID_COUNTS ? "" : ",");
	}
	/* what the events refer to: kernel names by id, the time origin */
	fputs("],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":{\"source\":", o);
	json_cstr(o, c->source);
	fprintf(o, ",\"format\":\"%u.%u\",\"time_origin_mono_ns\":%" PRIu64 ",\"time_origin\":\"%s\","
		"\"kernels\":{", s->major, s->minor, c->base,
		s->have_process && c->base == s->start_mono_ns ? "process start"
							       : "first record");
	int first = 1;
	for (size_t i = 0; i < s->n_kernels; i++) {
		const struct gsa_tr_kernel *k = &s->kernels[i];
		if (!gsa_tr_kernel_recognised(k))
			continue;
		fprintf(o, "%s\"%" PRIu32 "\":", first ? "" : ",", k->id);
		json_cstr(o, k->name);
		first = 0;
	}
	fputs("}}}\n", o);
	return ferror(o) ? -1 : 0;
}

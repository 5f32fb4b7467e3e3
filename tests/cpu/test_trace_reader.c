/* The trace reader (tools/trace_reader.h) and the gsa-trace tool, on traces built byte by
 * byte here: round trips of every record type, the rules for duplicates and snapshots, every
 * kind of bad input, truncation at every byte, random corruption, and the tool's output.
 * The tool is found through $GSA_TRACE_TOOL (default build/gsa-trace, run from the repo root).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "preload/trace_format.h"
#include "tests/cpu/check.h"
#include "tools/human_bytes.h"
#include "tools/trace_reader.h"

static char tmpdir[1024];

/* ---- a tiny trace writer ---- */

#define MAX_BOUNDS 4096

struct tw {
	uint8_t *b;
	size_t n, cap, rec;
	size_t bounds[MAX_BOUNDS]; /* offsets where a record (or the header) ends */
	size_t n_bounds;
};

static void put(struct tw *w, const void *p, size_t n)
{
	if (w->n + n > w->cap) {
		w->cap = (w->n + n) * 2 + 64;
		w->b = realloc(w->b, w->cap);
		if (!w->b)
			abort();
	}
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void put_le(struct tw *w, uint64_t v, int n)
{
	for (int i = 0; i < n; i++) {
		uint8_t byte = (uint8_t)(v >> (8 * i));
		put(w, &byte, 1);
	}
}
#define u8(w, v) put_le(w, v, 1)
#define u16(w, v) put_le(w, v, 2)
#define u32(w, v) put_le(w, v, 4)
#define u64(w, v) put_le(w, v, 8)

static void str(struct tw *w, const char *s)
{
	u16(w, strlen(s));
	put(w, s, strlen(s));
}

static void mark(struct tw *w)
{
	if (w->n_bounds < MAX_BOUNDS)
		w->bounds[w->n_bounds++] = w->n;
}

static void header_v(struct tw *w, unsigned major, unsigned minor, unsigned size)
{
	put(w, GSA_TRACE_MAGIC, 8);
	u16(w, major);
	u16(w, minor);
	u32(w, size);
	u64(w, 1700000000123456789ull); /* start_unix_ns */
	u32(w, 4242);                   /* pid */
	u32(w, 0);
	for (unsigned i = 32; i < size; i++)
		u8(w, 0xee);
	mark(w);
}

static void header(struct tw *w)
{
	header_v(w, GSA_TRACE_MAJOR, GSA_TRACE_MINOR, GSA_TRACE_HEADER_SIZE);
}

static void begin(struct tw *w, unsigned type)
{
	w->rec = w->n;
	u16(w, type);
	u16(w, 0);
	u32(w, 0); /* patched by end() */
}

static void end(struct tw *w)
{
	uint32_t len = (uint32_t)(w->n - w->rec - 8);
	for (int i = 0; i < 4; i++)
		w->b[w->rec + 4 + i] = (uint8_t)(len >> (8 * i));
	mark(w);
}

static void rec_process(struct tw *w, const char *exe, const char *ver, const char *host)
{
	begin(w, GSA_REC_PROCESS);
	u32(w, 4242);
	u32(w, 4200);
	u64(w, 5555);
	str(w, exe);
	str(w, ver);
	str(w, host);
	end(w);
}

static void rec_config(struct tw *w, int n, const char *const *kv)
{
	begin(w, GSA_REC_CONFIG);
	u16(w, n);
	for (int i = 0; i < 2 * n; i++)
		str(w, kv[i]);
	end(w);
}

static void rec_device(struct tw *w, int ord, int ccM, int ccm, int sms, uint64_t mem,
		       const char *name)
{
	begin(w, GSA_REC_DEVICE);
	u32(w, (uint32_t)ord);
	u32(w, (uint32_t)ccM);
	u32(w, (uint32_t)ccm);
	u32(w, (uint32_t)sms);
	u64(w, mem);
	str(w, name);
	end(w);
}

/* params: pc pairs {offset, size}; pc may be 0xffffffff (unknown, then params is unused) */
static void rec_kernel(struct tw *w, uint32_t id, int kind, uint64_t handle, uint32_t pc,
		       const uint32_t *params, const char *name, const char *adapter)
{
	begin(w, GSA_REC_KERNEL);
	u32(w, id);
	u8(w, kind);
	u8(w, name[0] != 0);
	u16(w, 0);
	u64(w, handle);
	u32(w, pc);
	for (uint32_t i = 0; pc != 0xffffffffu && i < pc; i++) {
		u32(w, params[2 * i]);
		u32(w, params[2 * i + 1]);
	}
	str(w, name);
	str(w, adapter);
	end(w);
}

/* pairs: n times {id, launches} */
static void rec_counts(struct tw *w, uint32_t n, const uint64_t *pairs)
{
	begin(w, GSA_REC_COUNTS);
	u64(w, 777);
	u32(w, n);
	for (uint32_t i = 0; i < n; i++) {
		u32(w, pairs[2 * i]);
		u64(w, pairs[2 * i + 1]);
	}
	end(w);
}

static void rec_alloc(struct tw *w, uint64_t ptr, uint64_t size, uint64_t site)
{
	begin(w, GSA_REC_ALLOC);
	u64(w, 1000);
	u64(w, ptr);
	u64(w, size);
	u64(w, site);
	u32(w, 0);
	u8(w, GSA_API_CU_MEM_ALLOC);
	u8(w, 0);
	u16(w, 0);
	u64(w, 0);
	end(w);
}

static void rec_free(struct tw *w, uint64_t ptr)
{
	begin(w, GSA_REC_FREE);
	u64(w, 2000);
	u64(w, ptr);
	u8(w, GSA_API_CU_MEM_ALLOC);
	u8(w, 1);
	for (int i = 0; i < 6; i++)
		u8(w, 0);
	end(w);
}

static void rec_log(struct tw *w, int level, uint32_t code, const char *msg)
{
	begin(w, GSA_REC_LOG);
	u64(w, 3000);
	u8(w, level);
	u8(w, 0);
	u16(w, 0);
	u32(w, code);
	str(w, msg);
	end(w);
}

static void rec_dropped(struct tw *w, uint64_t bytes)
{
	begin(w, GSA_REC_DROPPED);
	u64(w, 4000);
	u64(w, bytes);
	end(w);
}

static void rec_end(struct tw *w)
{
	begin(w, GSA_REC_END);
	u64(w, 9000);
	end(w);
}

static void tw_free(struct tw *w)
{
	free(w->b);
	memset(w, 0, sizeof(*w));
}

/* ---- files and the tool ---- */

static const char *tmp_path(const char *name)
{
	static char path[8][1400];
	static int next;
	char *p = path[next++ % 8];
	snprintf(p, sizeof(path[0]), "%s/%s", tmpdir, name);
	return p;
}

static const char *write_file(const char *name, const void *data, size_t n)
{
	const char *path = tmp_path(name);
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return path;
}

static void remove_tmpdir(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlink(tmp_path(e->d_name));
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

/* Runs the tool with args (a shell fragment; paths come from tmp_path, which has no quotes
 * in the test's own names) and returns its exit status; *out gets what it printed. */
static int run_tool(const char *args, int want_stderr, char **out)
{
	const char *tool = getenv("GSA_TRACE_TOOL");
	char cmd[9000];
	snprintf(cmd, sizeof(cmd), "'%s' %s %s", tool && *tool ? tool : "build/gsa-trace", args,
		 want_stderr ? "2>&1" : "2>/dev/null");
	FILE *p = popen(cmd, "r");
	size_t n = 0, cap = 4096;
	*out = calloc(1, cap);
	if (!p)
		return -1;
	size_t got;
	while ((got = fread(*out + n, 1, cap - n - 1, p)) > 0) {
		n += got;
		if (cap - n < 2) {
			*out = realloc(*out, cap *= 2);
		}
	}
	(*out)[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- the reference trace: every record type, values checked in test_round_trip ---- */

#define GIB (1ull << 30)
#define MIB (1ull << 20)
#define H100_MEM 85032697856ull

static const uint32_t k1_params[] = {0, 8, 8, 8, 16, 4};

static void build_reference(struct tw *w, int with_end)
{
	static const char *const config[] = {"status", "active", "GSA_RATIO", "0.3",
					     "GSA_LOG", "warn"};
	static const uint64_t snap1[] = {1, 10, 2, 5};
	static const uint64_t snap2[] = {1, 12345, 2, 77, 3, 9};
	header(w);
	rec_process(w, "/usr/bin/python3", "0.1.0", "myhost");
	rec_config(w, 3, config);
	rec_device(w, 0, 9, 0, 132, H100_MEM, "NVIDIA H100 80GB HBM3");
	rec_device(w, 1, 8, 6, 84, 24 * GIB, "NVIDIA A10");
	rec_device(w, 2, -1, -1, -1, 0, ""); /* the driver would not say */
	/* a snapshot before the kernels it names: threads interleave, ids resolve at the end */
	rec_counts(w, 2, snap1);
	rec_kernel(w, 1, GSA_HANDLE_FUNCTION, 0x7f0000001000ull, 3, k1_params,
		   "kernel_unified_attention_2d", "");
	rec_kernel(w, 2, GSA_HANDLE_KERNEL, 0x7f0000002000ull, 0, NULL, "flash_fwd", "flash");
	rec_kernel(w, 3, GSA_HANDLE_UNKNOWN, 0x7f0000003000ull, 0xffffffffu, NULL, "", "");
	rec_alloc(w, 0x1000, GIB, 0xaaaa);
	rec_alloc(w, 0x2000, 512 * MIB, 0xbbbb);
	rec_alloc(w, 0x3000, MIB, 0xaaaa);
	rec_free(w, 0x2000);
	rec_free(w, 0xdead); /* never allocated */
	rec_log(w, 1, 7, "fail-open: x");
	rec_log(w, 0, 9, "boom");
	rec_dropped(w, 100);
	begin(w, 77); /* a record type from the future */
	put(w, "12345", 5);
	end(w);
	rec_dropped(w, 28);
	rec_counts(w, 3, snap2);
	if (with_end)
		rec_end(w);
}

static int read_bytes(const char *name, const struct tw *w, struct gsa_tr_summary *s, char *err,
		      size_t errlen)
{
	return gsa_tr_read(write_file(name, w->b, w->n), s, err, errlen);
}

static void test_round_trip(void)
{
	struct tw w = {0};
	build_reference(&w, 1);
	struct gsa_tr_summary s;
	char err[512];
	int rc = read_bytes("ref.trace", &w, &s, err, sizeof(err));
	CHECK(rc == 0, "read failed: %s", err);
	CHECK_EQ_U64(s.major, 1);
	CHECK_EQ_U64(s.minor, GSA_TRACE_MINOR);
	CHECK_EQ_U64(s.start_unix_ns, 1700000000123456789ull);
	CHECK_EQ_U64(s.pid, 4242);
	CHECK_EQ_U64(s.ppid, 4200);
	CHECK_EQ_U64(s.start_mono_ns, 5555);
	CHECK_EQ_U64(s.have_process, 1);
	CHECK_STR(s.exe, "/usr/bin/python3");
	CHECK_STR(s.library_version, "0.1.0");
	CHECK_STR(s.hostname, "myhost");
	CHECK_EQ_U64(s.n_config, 3);
	if (s.n_config == 3) {
		CHECK_STR(s.config[0].key, "status");
		CHECK_STR(s.config[0].value, "active");
		CHECK_STR(s.config[1].key, "GSA_RATIO");
		CHECK_STR(s.config[1].value, "0.3");
		CHECK_STR(s.config[2].key, "GSA_LOG");
		CHECK_STR(s.config[2].value, "warn");
	}
	CHECK_EQ_U64(s.n_devices, 3);
	if (s.n_devices == 3) {
		CHECK_EQ_U64(s.devices[0].ordinal, 0);
		CHECK_EQ_U64(s.devices[0].cc_major, 9);
		CHECK_EQ_U64(s.devices[0].cc_minor, 0);
		CHECK_EQ_U64(s.devices[0].sm_count, 132);
		CHECK_EQ_U64(s.devices[0].total_mem, H100_MEM);
		CHECK_STR(s.devices[0].name, "NVIDIA H100 80GB HBM3");
		CHECK_EQ_U64(s.devices[1].ordinal, 1);
		CHECK_EQ_U64(s.devices[1].cc_minor, 6);
		CHECK_STR(s.devices[1].name, "NVIDIA A10");
		CHECK(s.devices[2].cc_major == -1 && s.devices[2].sm_count == -1, "negative ints");
		CHECK_STR(s.devices[2].name, "");
	}
	CHECK_EQ_U64(s.n_kernels, 3);
	if (s.n_kernels == 3) {
		const struct gsa_tr_kernel *k = &s.kernels[0];
		CHECK_EQ_U64(k->id, 1);
		CHECK_EQ_U64(k->handle_kind, GSA_HANDLE_FUNCTION);
		CHECK_EQ_U64(k->named, 1);
		CHECK_EQ_U64(k->handle, 0x7f0000001000ull);
		CHECK_EQ_U64(k->param_count, 3);
		CHECK(k->param_offsets && k->param_sizes, "params missing");
		for (int i = 0; k->param_offsets && k->param_sizes && i < 3; i++) {
			CHECK_EQ_U64(k->param_offsets[i], k1_params[2 * i]);
			CHECK_EQ_U64(k->param_sizes[i], k1_params[2 * i + 1]);
		}
		CHECK_STR(k->name, "kernel_unified_attention_2d");
		CHECK_STR(k->adapter, "");
		CHECK_EQ_U64(k->launches, 12345);
		k = &s.kernels[1];
		CHECK_EQ_U64(k->id, 2);
		CHECK_EQ_U64(k->handle_kind, GSA_HANDLE_KERNEL);
		CHECK_EQ_U64(k->param_count, 0);
		CHECK_STR(k->name, "flash_fwd");
		CHECK_STR(k->adapter, "flash");
		CHECK_EQ_U64(k->launches, 77);
		k = &s.kernels[2];
		CHECK_EQ_U64(k->id, 3);
		CHECK_EQ_U64(k->named, 0);
		CHECK_EQ_U64(k->param_count, 0xffffffffu);
		CHECK(k->param_offsets == NULL, "unknown params must have no array");
		CHECK_STR(k->name, "");
		CHECK_EQ_U64(k->launches, 9);
	}
	CHECK_EQ_U64(gsa_tr_total_launches(&s), 12345 + 77 + 9);
	CHECK_EQ_U64(gsa_tr_unnamed_launches(&s), 9);
	const struct gsa_tr_kernel *fk = gsa_tr_find_kernel(&s, "flash_fwd");
	CHECK(fk && fk->id == 2, "find_kernel(flash_fwd)");
	CHECK(gsa_tr_find_kernel(&s, "nope") == NULL, "find_kernel(nope)");

	CHECK_EQ_U64(s.allocs, 3);
	CHECK_EQ_U64(s.frees, 2);
	CHECK_EQ_U64(s.frees_unknown, 1);
	CHECK_EQ_U64(s.bytes_allocated, GIB + 512 * MIB + MIB);
	CHECK_EQ_U64(s.bytes_live, GIB + MIB);
	CHECK_EQ_U64(s.peak_bytes_live, GIB + 512 * MIB + MIB);
	CHECK_EQ_U64(s.n_sites, 2);
	if (s.n_sites == 2) { /* largest first */
		CHECK_EQ_U64(s.sites[0].callsite_hash, 0xaaaa);
		CHECK_EQ_U64(s.sites[0].allocs, 2);
		CHECK_EQ_U64(s.sites[0].frees, 0);
		CHECK_EQ_U64(s.sites[0].bytes_total, GIB + MIB);
		CHECK_EQ_U64(s.sites[0].bytes_live, GIB + MIB);
		CHECK_EQ_U64(s.sites[0].peak_bytes_live, GIB + MIB);
		CHECK_EQ_U64(s.sites[1].callsite_hash, 0xbbbb);
		CHECK_EQ_U64(s.sites[1].allocs, 1);
		CHECK_EQ_U64(s.sites[1].frees, 1);
		CHECK_EQ_U64(s.sites[1].bytes_live, 0);
		CHECK_EQ_U64(s.sites[1].peak_bytes_live, 512 * MIB);
	}
	CHECK_EQ_U64(s.n_logs, 2);
	CHECK_EQ_U64(s.logs_total, 2);
	CHECK_EQ_U64(s.log_errors, 1);
	CHECK_EQ_U64(s.log_warnings, 1);
	if (s.n_logs == 2) {
		CHECK_EQ_U64(s.logs[0].mono_ns, 3000);
		CHECK_EQ_U64(s.logs[0].level, 1);
		CHECK_EQ_U64(s.logs[0].code, 7);
		CHECK_STR(s.logs[0].message, "fail-open: x");
		CHECK_EQ_U64(s.logs[1].level, 0);
		CHECK_STR(s.logs[1].message, "boom");
	}
	CHECK_EQ_U64(s.dropped_bytes, 128);
	CHECK_EQ_U64(s.records, 21);
	CHECK_EQ_U64(s.unknown_records, 1);
	CHECK_EQ_U64(s.ended_cleanly, 1);
	gsa_tr_free(&s);
	CHECK(s.kernels == NULL && s.n_kernels == 0, "gsa_tr_free zeroes");

	/* the same bytes through the stream entry point */
	FILE *f = fmemopen(w.b, w.n, "rb");
	rc = gsa_tr_read_stream(f, "mem", &s, err, sizeof(err));
	CHECK(rc == 0, "stream read failed: %s", err);
	CHECK_EQ_U64(gsa_tr_total_launches(&s), 12431);
	gsa_tr_free(&s);
	fclose(f);
	tw_free(&w);
}

/* Launch counts come from the last COUNTS record only, and reset every kernel to it. */
static void test_snapshots(void)
{
	static const uint64_t first[] = {1, 10, 2, 5};
	static const uint64_t last[] = {1, 20, 9, 4}; /* 2 absent: back to 0; 9 has no KERNEL */
	struct tw w = {0};
	header(&w);
	rec_kernel(&w, 1, GSA_HANDLE_FUNCTION, 1, 0, NULL, "a", "");
	rec_kernel(&w, 2, GSA_HANDLE_FUNCTION, 2, 0, NULL, "b", "");
	rec_counts(&w, 2, first);
	rec_counts(&w, 2, last);
	struct gsa_tr_summary s;
	char err[512];
	CHECK(read_bytes("snap.trace", &w, &s, err, sizeof(err)) == 0, "%s", err);
	CHECK_EQ_U64(s.n_kernels, 3);
	CHECK_EQ_U64(gsa_tr_find_kernel(&s, "a")->launches, 20);
	CHECK_EQ_U64(gsa_tr_find_kernel(&s, "b")->launches, 0);
	if (s.n_kernels == 3) { /* the placeholder for id 9 keeps its launches, as unnamed */
		CHECK_EQ_U64(s.kernels[2].id, 9);
		CHECK_EQ_U64(s.kernels[2].launches, 4);
		CHECK_EQ_U64(s.kernels[2].handle_kind, GSA_HANDLE_UNKNOWN);
		CHECK_EQ_U64(s.kernels[2].param_count, 0xffffffffu);
		CHECK_STR(s.kernels[2].name, "");
		CHECK_STR(s.kernels[2].adapter, "");
	}
	CHECK_EQ_U64(gsa_tr_unnamed_launches(&s), 4);
	CHECK_EQ_U64(s.ended_cleanly, 0);
	CHECK_EQ_U64(s.have_process, 0);
	CHECK_STR(s.exe, ""); /* never NULL */
	gsa_tr_free(&s);
	tw_free(&w);
}

/* Duplicate kernel ids: the last record wins. Also: later minor versions (longer header,
 * fields appended to payloads) are read. */
static void test_duplicates_and_minor_versions(void)
{
	static const uint32_t p2[] = {0, 4, 4, 4};
	static const uint64_t counts[] = {5, 3};
	struct tw w = {0};
	header_v(&w, GSA_TRACE_MAJOR, GSA_TRACE_MINOR + 3, 40);
	rec_kernel(&w, 5, GSA_HANDLE_FUNCTION, 1, 0, NULL, "old_name", "");
	rec_kernel(&w, 5, GSA_HANDLE_KERNEL, 2, 2, p2, "new_name", "ad");
	begin(&w, GSA_REC_END); /* an END with fields appended by a future minor version */
	u64(&w, 1);
	u64(&w, 2);
	end(&w);
	rec_counts(&w, 1, counts);
	rec_device(&w, 0, 8, 0, 10, GIB, "first");
	rec_device(&w, 0, 9, 0, 20, GIB, "second"); /* same ordinal: replaces */
	struct gsa_tr_summary s;
	char err[512];
	CHECK(read_bytes("dup.trace", &w, &s, err, sizeof(err)) == 0, "%s", err);
	CHECK_EQ_U64(s.minor, GSA_TRACE_MINOR + 3);
	CHECK_EQ_U64(s.n_kernels, 1);
	if (s.n_kernels == 1) {
		CHECK_STR(s.kernels[0].name, "new_name");
		CHECK_STR(s.kernels[0].adapter, "ad");
		CHECK_EQ_U64(s.kernels[0].handle, 2);
		CHECK_EQ_U64(s.kernels[0].param_count, 2);
		CHECK_EQ_U64(s.kernels[0].param_sizes[1], 4);
		CHECK_EQ_U64(s.kernels[0].launches, 3);
	}
	CHECK_EQ_U64(s.ended_cleanly, 1);
	CHECK_EQ_U64(s.n_devices, 1);
	if (s.n_devices == 1)
		CHECK_STR(s.devices[0].name, "second");
	gsa_tr_free(&s);
	tw_free(&w);
}

/* Many allocations freed in a scrambled order: the live map must find every one of them
 * (exercises deletion in the hash map), and only the first 1000 logs are kept. */
static void test_many_allocs_and_logs(void)
{
	enum { N = 5000 };
	struct tw w = {0};
	header(&w);
	for (uint64_t i = 0; i < N; i++)
		rec_alloc(&w, 0x10000 + i * 256, 100 + i % 7, i % 13);
	rec_alloc(&w, 0x10000, 1, 99); /* ptr still live: replaces the first allocation */
	for (uint64_t i = 0; i < N; i++)
		rec_free(&w, 0x10000 + ((i * 2654435761u) % N) * 256);
	for (int i = 0; i < 1005; i++) {
		char msg[32];
		snprintf(msg, sizeof(msg), "msg %d", i);
		rec_log(&w, 2, (uint32_t)i, msg);
	}
	struct gsa_tr_summary s;
	char err[512];
	CHECK(read_bytes("many.trace", &w, &s, err, sizeof(err)) == 0, "%s", err);
	CHECK_EQ_U64(s.allocs, N + 1);
	CHECK_EQ_U64(s.frees, N);
	CHECK_EQ_U64(s.frees_unknown, 0);
	CHECK_EQ_U64(s.bytes_live, 0);
	CHECK_EQ_U64(s.n_sites, 14);
	uint64_t site_live = 0, site_frees = 0;
	for (size_t i = 0; i < s.n_sites; i++) {
		site_live += s.sites[i].bytes_live;
		site_frees += s.sites[i].frees;
	}
	CHECK_EQ_U64(site_live, 0);
	CHECK_EQ_U64(site_frees, N);
	CHECK_EQ_U64(s.n_logs, 1000);
	CHECK_EQ_U64(s.logs_total, 1005);
	if (s.n_logs == 1000)
		CHECK_STR(s.logs[999].message, "msg 999");
	gsa_tr_free(&s);
	tw_free(&w);
}

/* ---- bad input: return 1, one line starting with the file name, summary zeroed ---- */

static void expect_fail(const char *name, const struct tw *w, const char *want)
{
	const char *path = write_file(name, w->b, w->n);
	struct gsa_tr_summary s;
	char err[512], prefix[4300];
	memset(&s, 0x5a, sizeof(s));
	int rc = gsa_tr_read(path, &s, err, sizeof(err));
	CHECK(rc == 1, "%s: rc %d", name, rc);
	snprintf(prefix, sizeof(prefix), "%s: ", path);
	CHECK(strncmp(err, prefix, strlen(prefix)) == 0, "%s: message does not start with the "
	      "file name: %s", name, err);
	CHECK_CONTAINS(err, want);
	CHECK(strchr(err, '\n') == NULL, "%s: message has a newline", name);
	CHECK(s.kernels == NULL && s.exe == NULL && s.n_logs == 0, "%s: summary not zeroed", name);
}

static void test_bad_inputs(void)
{
	struct tw w = {0};
	char want[200];
	expect_fail("empty", &w, "empty file, not a gsa trace");

	put(&w, "GSATRACE\1\0", 10);
	expect_fail("short", &w, "too short for a trace header (10 of 32 bytes)");
	tw_free(&w);

	header(&w);
	memcpy(w.b, "GSATRACX", 8);
	expect_fail("magic", &w, "not a gsa trace (bad magic)");
	tw_free(&w);

	header_v(&w, 2, 0, 32);
	expect_fail("newer", &w, "trace version 2 is newer than this reader (1)");
	tw_free(&w);

	header_v(&w, 0, 9, 32);
	expect_fail("older", &w, "trace version 0 is older than this reader supports (1)");
	tw_free(&w);

	header_v(&w, 1, 0, 32);
	w.b[12] = 16; /* header_size 16 */
	expect_fail("hdrsize", &w, "bad header size 16");
	tw_free(&w);

	header(&w);
	begin(&w, 42);
	end(&w);
	w.b[w.rec + 4] = 1; /* payload_len 0x00100001: one over the limit */
	w.b[w.rec + 6] = 0x10;
	expect_fail("huge_payload", &w, "record at byte 32 (type 42) claims a payload of "
		    "1048577 bytes, over the limit of 1048576: corrupt file");
	tw_free(&w);

	header(&w);
	rec_alloc(&w, 1, 2, 3);
	w.n -= 28;
	const char *path = write_file("cut_alloc", w.b, w.n);
	struct gsa_tr_summary s;
	char err[512];
	CHECK(gsa_tr_read(path, &s, err, sizeof(err)) == 1, "cut alloc must fail");
	snprintf(want, sizeof(want), "%s: truncated record at byte 32 (type 6, needs 48 bytes, "
		 "20 left)", path);
	CHECK_STR(err, want);
	tw_free(&w);

	header(&w);
	put(&w, "\6\0\0", 3);
	expect_fail("cut_header", &w, "truncated record at byte 32 (record header: 3 of 8 bytes)");
	tw_free(&w);

	header(&w);
	begin(&w, GSA_REC_PROCESS);
	u32(&w, 1);
	u32(&w, 2);
	u64(&w, 3);
	u16(&w, 500); /* exe length far beyond the payload */
	put(&w, "abc", 3);
	end(&w);
	expect_fail("long_string", &w, "bad process record at byte 32: exe is 500 bytes long "
		    "but only 3 payload bytes are left");
	tw_free(&w);

	header(&w);
	begin(&w, GSA_REC_KERNEL);
	u32(&w, 1);
	u8(&w, 1);
	u8(&w, 1);
	u16(&w, 0);
	u64(&w, 0);
	u32(&w, 1000000); /* param_count */
	u64(&w, 0);
	end(&w);
	expect_fail("param_count", &w, "bad kernel record at byte 32: param_count 1000000 needs "
		    "8000000 bytes but only 8 payload bytes are left");
	tw_free(&w);

	header(&w);
	begin(&w, GSA_REC_COUNTS);
	u64(&w, 0);
	u32(&w, 0xffffffffu);
	u64(&w, 0);
	end(&w);
	expect_fail("huge_counts", &w, "bad counts record at byte 32: 4294967295 counts need "
		    "51539607540 bytes but only 8 payload bytes are left");
	tw_free(&w);

	header(&w);
	begin(&w, GSA_REC_CONFIG);
	u16(&w, 65535);
	str(&w, "k");
	end(&w);
	expect_fail("huge_config", &w, "bad config record at byte 32: 65535 config entries "
		    "cannot fit in the 3 payload bytes left");
	tw_free(&w);

	header(&w);
	rec_end(&w);
	begin(&w, GSA_REC_ALLOC);
	u64(&w, 0);
	u16(&w, 0);
	end(&w);
	expect_fail("short_alloc", &w, "bad alloc record at byte 48: payload of 10 bytes is "
		    "shorter than the 48 its fields need");
	tw_free(&w);

	header(&w);
	begin(&w, GSA_REC_LOG);
	u64(&w, 0);
	u32(&w, 0);
	u32(&w, 0);
	u8(&w, 1); /* half a string length */
	end(&w);
	expect_fail("log_no_len", &w, "bad log record at byte 32: payload ends before the "
		    "length of log message");
	tw_free(&w);

	CHECK(gsa_tr_read(tmp_path("does-not-exist"), &s, err, sizeof(err)) == 1, "missing");
	CHECK_CONTAINS(err, "does-not-exist: cannot open: No such file or directory");
}

/* A valid trace cut at every byte offset: success exactly at record boundaries, otherwise
 * the right error naming the record that was cut. */
static void test_truncation_everywhere(void)
{
	struct tw w = {0};
	build_reference(&w, 1);
	int bad = 0;
	for (size_t cut = 0; cut <= w.n; cut++) {
		const char *path = write_file("cut.trace", w.b, cut);
		struct gsa_tr_summary s;
		char err[512], want[128];
		int rc = gsa_tr_read(path, &s, err, sizeof(err));
		size_t start = 0;
		int boundary = 0;
		for (size_t i = 0; i < w.n_bounds; i++) {
			if (w.bounds[i] == cut)
				boundary = 1;
			if (w.bounds[i] < cut)
				start = w.bounds[i];
		}
		if (cut == 0)
			snprintf(want, sizeof(want), "empty file");
		else if (cut < GSA_TRACE_HEADER_SIZE)
			snprintf(want, sizeof(want), "too short for a trace header (%zu of 32", cut);
		else
			snprintf(want, sizeof(want), "truncated record at byte %zu (", start);
		if (boundary) {
			if (rc != 0 || s.ended_cleanly != (cut == w.n)) {
				bad++;
				CHECK(0, "cut at boundary %zu: rc %d: %s", cut, rc, err);
			}
		} else if (rc != 1 || !strstr(err, want)) {
			bad++;
			CHECK(0, "cut at %zu: rc %d, message \"%s\", expected \"%s\"", cut, rc, err,
			      want);
		}
		gsa_tr_free(&s);
		if (bad > 5)
			break;
	}
	CHECK(bad == 0, "%d cuts misbehaved", bad);
	tw_free(&w);
}

/* Random byte corruption must never crash or leak; it either reads or reports one line. */
static void test_random_corruption(void)
{
	struct tw w = {0};
	build_reference(&w, 1);
	uint8_t *copy = malloc(w.n);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	int ok = 0, failed = 0, malformed = 0;
	for (int iter = 0; iter < 3000; iter++) {
		memcpy(copy, w.b, w.n);
		int flips = 1 + iter % 4;
		for (int i = 0; i < flips; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			/* leave the file header alone most of the time: corrupt records */
			size_t at = 32 + (size_t)(seed >> 33) % (w.n - 32);
			if (iter % 10 == 0)
				at = (size_t)(seed >> 33) % w.n;
			copy[at] = (uint8_t)(seed >> 17);
		}
		FILE *f = fmemopen(copy, w.n, "rb");
		struct gsa_tr_summary s;
		char err[512];
		int rc = gsa_tr_read_stream(f, "fuzz", &s, err, sizeof(err));
		fclose(f);
		if (rc == 0) {
			ok++;
			gsa_tr_free(&s);
		} else {
			failed++;
			if (rc != 1 || strncmp(err, "fuzz: ", 6) != 0 || strchr(err, '\n'))
				malformed++;
		}
	}
	CHECK(malformed == 0, "%d corrupted inputs gave a malformed error", malformed);
	CHECK(ok > 0 && failed > 0, "corruption should give both outcomes (%d ok, %d failed)",
	      ok, failed);
	free(copy);
	tw_free(&w);
}

static void test_human_bytes(void)
{
	char b[24];
	CHECK_STR(gsa_human_bytes(0, b, sizeof(b)), "0 B");
	CHECK_STR(gsa_human_bytes(1023, b, sizeof(b)), "1023 B");
	CHECK_STR(gsa_human_bytes(1024, b, sizeof(b)), "1.0 KiB");
	CHECK_STR(gsa_human_bytes(1536, b, sizeof(b)), "1.5 KiB");
	CHECK_STR(gsa_human_bytes(1048575, b, sizeof(b)), "1.0 MiB");
	CHECK_STR(gsa_human_bytes(3 * GIB / 2, b, sizeof(b)), "1.5 GiB");
	CHECK_STR(gsa_human_bytes(H100_MEM, b, sizeof(b)), "79.2 GiB");
	CHECK_STR(gsa_human_bytes(2048 * GIB, b, sizeof(b)), "2048.0 GiB");
}

/* ---- the tool ---- */

static void test_tool_summary(void)
{
	struct tw w = {0};
	build_reference(&w, 0); /* no END record */
	const char *path = write_file("abrupt.trace", w.b, w.n);
	char args[4400], want[4400], *out;
	snprintf(args, sizeof(args), "summary '%s'", path);
	int rc = run_tool(args, 0, &out);
	CHECK(rc == 0, "summary exited %d:\n%s", rc, out);
	snprintf(want, sizeof(want), "trace: %s (format 1.%d, ENDED ABRUPTLY: counts are from the "
		 "last snapshot)\n", path, GSA_TRACE_MINOR);
	CHECK(strncmp(out, want, strlen(want)) == 0, "first line of:\n%s", out);
	CHECK_CONTAINS(out, "\nprocess: pid 4242 (parent 4200), /usr/bin/python3, gsa-preload "
		       "0.1.0, host myhost\n");
	CHECK_CONTAINS(out, "\ndevice 0: NVIDIA H100 80GB HBM3, sm_90, 132 SMs, 79.2 GiB\n");
	CHECK_CONTAINS(out, "\ndevice 1: NVIDIA A10, sm_86, 84 SMs, 24.0 GiB\n");
	CHECK_CONTAINS(out, "\ndevice 2: ?, sm_?, ? SMs, 0 B\n");
	CHECK_CONTAINS(out, "\nconfig: status=active GSA_RATIO=0.3 GSA_LOG=warn\n");
	CHECK_CONTAINS(out, "\nkernels: 3 distinct, 12431 launches, 9 unnamed launches\n"
		       "    launches  params  adapter     name\n"
		       "       12345       3  -           kernel_unified_attention_2d\n"
		       "          77       0  flash       flash_fwd\n"
		       "           9       ?  -           (unnamed, handle 0x7f0000003000)\n");
	CHECK_CONTAINS(out, "\nallocations: 3 allocations, 2 frees (1 unknown), 1.5 GiB "
		       "allocated, 1.0 GiB live, peak 1.5 GiB, 2 call sites\n"
		       "    top call sites by bytes:\n"
		       "      0x000000000000aaaa  2 allocs  1.0 GiB\n"
		       "      0x000000000000bbbb  1 allocs  512.0 MiB\n");
	CHECK_CONTAINS(out, "\nlog: 2 messages (1 errors, 1 warnings)\n    [warn] fail-open: x\n"
		       "    [error] boom\n");
	CHECK_CONTAINS(out, "\ndropped: 128 bytes of records\n");
	CHECK_CONTAINS(out, "\nskipped: 1 records of types this reader does not know\n");
	free(out);

	/* two files: a clean one too, separated by a blank line, then the merged table */
	tw_free(&w);
	build_reference(&w, 1);
	const char *clean = write_file("clean.trace", w.b, w.n);
	snprintf(args, sizeof(args), "summary '%s' '%s'", path, clean);
	rc = run_tool(args, 0, &out);
	CHECK(rc == 0, "summary of two exited %d", rc);
	snprintf(want, sizeof(want), "\n\ntrace: %s (format 1.%d, ended cleanly)\n", clean,
		 GSA_TRACE_MINOR);
	CHECK_CONTAINS(out, want);
	CHECK_CONTAINS(out, "\n\nall files: 2 traces, 3 distinct kernel names, 24862 launches, "
		       "18 unnamed launches\n"
		       "    launches  params  adapter     name\n"
		       "       24690       3  -           kernel_unified_attention_2d\n"
		       "         154       0  flash       flash_fwd\n"
		       "          18       ?  -           (unnamed)\n");
	free(out);

	/* one bad file among good ones: the good one is still summarised, exit 1 */
	const char *junk = write_file("junk.trace", "hello, this is not a trace at all!", 34);
	snprintf(args, sizeof(args), "summary '%s' '%s'", junk, clean);
	rc = run_tool(args, 1, &out);
	CHECK(rc == 1, "summary with a bad file exited %d", rc);
	snprintf(want, sizeof(want), "gsa-trace: %s: not a gsa trace (bad magic)\n", junk);
	CHECK_CONTAINS(out, want);
	CHECK_CONTAINS(out, "kernels: 3 distinct, 12431 launches");
	free(out);
	tw_free(&w);
}

static void test_tool_kernels(void)
{
	struct tw w = {0};
	build_reference(&w, 1);
	const char *path = write_file("k.trace", w.b, w.n);
	char args[4400], *out;
	snprintf(args, sizeof(args), "kernels '%s'", path);
	int rc = run_tool(args, 0, &out);
	CHECK(rc == 0, "kernels exited %d", rc);
	CHECK_STR(out, "launches\tparams\thandle_kind\tadapter\tname\n"
		       "12345\t3\tfunction\t-\tkernel_unified_attention_2d\n"
		       "77\t0\tkernel\tflash\tflash_fwd\n"
		       "9\t-1\tunknown\t-\t\n"
		       "#total\t12431\tunnamed\t9\n");
	free(out);

	/* a truncated trace is a bad file: exit 1, the reason on stderr */
	const char *cut = write_file("kcut.trace", w.b, 40);
	snprintf(args, sizeof(args), "kernels '%s'", cut);
	rc = run_tool(args, 1, &out);
	CHECK(rc == 1, "kernels of a cut file exited %d", rc);
	CHECK_CONTAINS(out, "gsa-trace: ");
	CHECK_CONTAINS(out, "kcut.trace: truncated record at byte 32 (type 1, needs");
	free(out);
	snprintf(args, sizeof(args), "kernels '%s'", tmp_path("missing.trace"));
	rc = run_tool(args, 1, &out);
	CHECK(rc == 1, "kernels of a missing file exited %d", rc);
	CHECK_CONTAINS(out, "missing.trace: cannot open");
	free(out);
	tw_free(&w);
}

static void test_tool_usage(void)
{
	static const struct {
		const char *args;
		int rc;
		const char *want;
	} cases[] = {
		{"--help", 0, "usage: gsa-trace COMMAND"},
		{"--help", 0, "summary [--help] FILE..."},
		{"summary --help", 0, "usage: gsa-trace summary [--help] FILE..."},
		{"kernels --help", 0, "launches<TAB>params<TAB>handle_kind<TAB>adapter<TAB>name"},
		{"", 2, "usage: gsa-trace COMMAND"},
		{"frobnicate", 2, "gsa-trace: unknown command 'frobnicate'"},
		{"summary", 2, "gsa-trace: summary: no trace files given"},
		{"summary --bogus x", 2, "gsa-trace: unknown option '--bogus'"},
		{"kernels", 2, "gsa-trace: kernels: expects exactly one trace file"},
		{"kernels a b", 2, "gsa-trace: kernels: expects exactly one trace file"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out;
		int rc = run_tool(cases[i].args, 1, &out);
		CHECK(rc == cases[i].rc, "gsa-trace %s: exit %d, expected %d", cases[i].args, rc,
		      cases[i].rc);
		CHECK_CONTAINS(out, cases[i].want);
		free(out);
	}
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/gsa-trace-test.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", tmpdir, strerror(errno));
		return 1;
	}
	test_round_trip();
	test_snapshots();
	test_duplicates_and_minor_versions();
	test_many_allocs_and_logs();
	test_bad_inputs();
	test_truncation_everywhere();
	test_random_corruption();
	test_human_bytes();

	const char *tool = getenv("GSA_TRACE_TOOL");
	tool = tool && *tool ? tool : "build/gsa-trace";
	CHECK(access(tool, X_OK) == 0, "the tool %s is not there (set GSA_TRACE_TOOL)", tool);
	if (access(tool, X_OK) == 0) {
		test_tool_summary();
		test_tool_kernels();
		test_tool_usage();
	}
	remove_tmpdir();
	return check_report("test_trace_reader");
}

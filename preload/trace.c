/* The trace writer (see trace.h). Lock order: trace_lock, then the counters' registry. */
#include "preload/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hooks/adapter.h"
#include "preload/config.h"
#include "preload/counters.h"
#include "preload/driver.h"
#include "preload/kernel_table.h"
#include "preload/log.h"
#include "preload/state.h"
#include "preload/trace_encode.h"
#include "preload/trace_format.h"
#include "sparse/stats.h"

#define RING_SIZE (256u * 1024u) /* per thread that emits records; a power of two */
#define MAX_RING_RECORD (16u * 1024u) /* well under the file buffer (see drain_rings) */
#define FLUSH_INTERVAL_MS 100
#define COUNTS_EVERY 10 /* flush cycles between counter snapshots (about a second) */

struct ring {
	uint8_t *buf;
	_Atomic uint64_t head; /* bytes ever written (producer) */
	_Atomic uint64_t tail; /* bytes ever drained (flusher) */
	_Atomic uint64_t dropped;
	struct ring *next;
};

bool gsa_tracing;
static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t trace_wake = PTHREAD_COND_INITIALIZER;
/* Guards the ring list only (taken inside trace_lock when draining), so that a thread that
 * logs while holding trace_lock can still create its ring. */
static pthread_mutex_t rings_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring *rings;
static __thread struct ring *my_ring;
static atomic_bool ring_alloc_failed;
static int fd = -1;
static atomic_int started; /* 0 never, 1 running, 2 stopped */
static bool stopping;
static pthread_t flusher;
static bool flusher_running;
static uint32_t kernels_written;        /* KERNEL records written so far, by id */
static atomic_ullong devices_wanted;     /* bit per ordinal < 64 */
static uint64_t devices_written;
static uint8_t fbuf[1 << 16];
static size_t flen;

static uint64_t now_ns(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- file output (trace_lock held) ---- */

static void file_failed(const char *what)
{
	gsa_tracing = false; /* first, so that the message below is not traced */
	gsa_log(GSA_LOG_ERROR, GSA_CODE_TRACE_IO, "trace %s failed (%s): tracing stops",
		what, strerror(errno));
	close(fd);
	fd = -1;
}

static void file_flush(void)
{
	size_t off = 0;
	while (fd >= 0 && off < flen) {
		ssize_t w = write(fd, fbuf + off, flen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			file_failed("write");
			break;
		}
		off += (size_t)w;
	}
	flen = 0;
}

static void file_put(const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		if (flen == sizeof fbuf)
			file_flush();
		size_t m = sizeof fbuf - flen < n ? sizeof fbuf - flen : n;
		memcpy(fbuf + flen, b, m);
		flen += m;
		b += m;
		n -= m;
	}
}

/* One whole record; the buffer is written out first if the record would not fit, so writes
 * end at record boundaries (a record larger than the buffer is the only exception). */
static void file_record(uint16_t type, const struct gsa_enc *e)
{
	if (e->failed)
		return;
	if (flen + GSA_TRACE_RECORD_HEADER_SIZE + e->n > sizeof fbuf)
		file_flush();
	uint8_t h[GSA_TRACE_RECORD_HEADER_SIZE] = {0};
	memcpy(h, &type, 2);
	memcpy(h + 4, &e->n, 4);
	file_put(h, sizeof h);
	file_put(e->p, e->n);
}

/* ---- records the flusher writes itself ---- */

static void write_header(void)
{
	uint8_t h[GSA_TRACE_HEADER_SIZE] = {0};
	uint16_t major = GSA_TRACE_MAJOR, minor = GSA_TRACE_MINOR;
	uint32_t hs = GSA_TRACE_HEADER_SIZE, pid = (uint32_t)getpid();
	uint64_t t = now_ns(CLOCK_REALTIME);
	memcpy(h, GSA_TRACE_MAGIC, 8);
	memcpy(h + 8, &major, 2);
	memcpy(h + 10, &minor, 2);
	memcpy(h + 12, &hs, 4);
	memcpy(h + 16, &t, 8);
	memcpy(h + 24, &pid, 4);
	file_put(h, sizeof h);
}

static void write_process(void)
{
	uint8_t buf[8192];
	struct gsa_enc e = {buf, 0, sizeof buf, false};
	char exe[PATH_MAX] = "", host[256] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	gethostname(host, sizeof host - 1);
	gsa_put_u32(&e, (uint32_t)getpid());
	gsa_put_u32(&e, (uint32_t)getppid());
	gsa_put_u64(&e, now_ns(CLOCK_MONOTONIC));
	gsa_put_cstr(&e, exe);
	gsa_put_cstr(&e, GSA_VERSION);
	gsa_put_cstr(&e, host);
	file_record(GSA_REC_PROCESS, &e);
}

struct config_ctx {
	struct gsa_enc e;
	uint16_t count;
};

static void config_pair(void *ctx, const char *key, const char *value)
{
	struct config_ctx *c = ctx;
	gsa_put_cstr(&c->e, key);
	gsa_put_cstr(&c->e, value);
	c->count++;
}

static void write_config(void)
{
	uint8_t buf[16384];
	struct config_ctx c = {{buf + 2, 0, sizeof buf - 2, false}, 0};
	config_pair(&c, "status", gsa_active ? "active" : "pass-through");
	gsa_config_describe(&gsa_cfg, config_pair, &c);
	if (c.e.failed)
		return;
	memcpy(buf, &c.count, 2);
	struct gsa_enc all = {buf, c.e.n + 2, sizeof buf, false};
	file_record(GSA_REC_CONFIG, &all);
}

static void write_kernels(void)
{
	uint32_t n = gsa_kernel_count();
	for (; kernels_written < n; kernels_written++) {
		struct gsa_kernel *k = gsa_kernel_by_id(kernels_written);
		if (!k)
			break; /* being filled in: next cycle */
		uint32_t np = k->param_count == GSA_PARAMS_UNKNOWN ? 0 : k->param_count;
		uint32_t cap = 64 + np * 8 + (uint32_t)strlen(k->name) + 256;
		uint8_t *buf = malloc(cap);
		if (!buf)
			break;
		struct gsa_enc e = {buf, 0, cap, false};
		gsa_put_u32(&e, k->id);
		gsa_put_u8(&e, k->handle_kind);
		gsa_put_u8(&e, k->named);
		gsa_put_u16(&e, 0);
		gsa_put_u64(&e, k->handle);
		gsa_put_u32(&e, k->param_count);
		for (uint32_t i = 0; i < np; i++) {
			gsa_put_u32(&e, k->param_offsets[i]);
			gsa_put_u32(&e, k->param_sizes[i]);
		}
		gsa_put_cstr(&e, k->name);
		gsa_put_cstr(&e, k->adapter ? k->adapter->family : "");
		file_record(GSA_REC_KERNEL, &e);
		free(buf);
	}
}

static void write_devices(void)
{
	uint64_t want = atomic_load(&devices_wanted) & ~devices_written;
	if (!want)
		return;
	const struct gsa_driver_api *d = gsa_driver();
	for (int i = 0; i < 64; i++) {
		if (!(want >> i & 1))
			continue;
		devices_written |= 1ull << i;
		CUdevice dev;
		char name[256] = "";
		int major = -1, minor = -1, sms = -1;
		size_t total = 0;
		if (!d->device_get || d->device_get(&dev, i) != CUDA_SUCCESS)
			continue;
		if (d->device_get_name)
			d->device_get_name(name, sizeof name - 1, dev);
		if (d->device_get_attribute) {
			d->device_get_attribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
			d->device_get_attribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
			d->device_get_attribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
		}
		if (d->device_total_mem)
			d->device_total_mem(&total, dev);
		uint8_t buf[512];
		struct gsa_enc e = {buf, 0, sizeof buf, false};
		gsa_put_u32(&e, (uint32_t)i);
		gsa_put_u32(&e, (uint32_t)major);
		gsa_put_u32(&e, (uint32_t)minor);
		gsa_put_u32(&e, (uint32_t)sms);
		gsa_put_u64(&e, total);
		gsa_put_cstr(&e, name);
		file_record(GSA_REC_DEVICE, &e);
	}
}

/* At most GSA_MAX_KERNELS entries of 12 bytes: always under GSA_TRACE_MAX_PAYLOAD. */
static void write_counts(void)
{
	uint32_t n = gsa_kernel_count();
	uint64_t *c = calloc(n ? n : 1, sizeof *c);
	uint32_t cap = 16 + n * 12;
	uint8_t *buf = malloc(cap);
	if (c && buf) {
		gsa_counters_snapshot(c, n);
		struct gsa_enc e = {buf, 0, cap, false};
		uint32_t nonzero = 0;
		for (uint32_t i = 0; i < n; i++)
			nonzero += c[i] != 0;
		gsa_put_u64(&e, now_ns(CLOCK_MONOTONIC));
		gsa_put_u32(&e, nonzero);
		for (uint32_t i = 0; i < n; i++) {
			if (!c[i])
				continue;
			gsa_put_u32(&e, i);
			gsa_put_u64(&e, c[i]);
		}
		file_record(GSA_REC_COUNTS, &e);
	}
	free(c);
	free(buf);
}

static void ring_get_bytes(const struct ring *r, uint64_t at, void *dst, uint32_t n)
{
	uint32_t off = (uint32_t)(at & (RING_SIZE - 1));
	uint32_t first = RING_SIZE - off < n ? RING_SIZE - off : n;
	memcpy(dst, r->buf + off, first);
	memcpy((uint8_t *)dst + first, r->buf, n - first);
}

/* Moves every ring's complete records into the file, a record at a time, so that the file
 * buffer is only ever written out at record boundaries: a process killed at any moment
 * leaves a trace whose records are all whole. */
static void drain_rings(void)
{
	pthread_mutex_lock(&rings_lock);
	for (struct ring *r = rings; r; r = r->next) {
		uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
		uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
		while (tail < head) {
			uint8_t h[GSA_TRACE_RECORD_HEADER_SIZE];
			uint32_t len;
			ring_get_bytes(r, tail, h, sizeof h);
			memcpy(&len, h + 4, 4);
			uint32_t total = GSA_TRACE_RECORD_HEADER_SIZE + len;
			if (flen + total > sizeof fbuf)
				file_flush();
			/* Records in rings are far smaller than the file buffer. */
			ring_get_bytes(r, tail, fbuf + flen, total);
			flen += total;
			tail += total;
		}
		atomic_store_explicit(&r->tail, tail, memory_order_release);
	}
	pthread_mutex_unlock(&rings_lock);
}

static void flush_cycle(bool counts)
{
	if (fd < 0)
		return;
	write_devices();
	write_kernels();
	gsa_stats_poll(); /* GPU selection statistics become ring records, drained next */
	drain_rings();
	if (counts)
		write_counts();
	file_flush();
}

static void *flusher_main(void *arg)
{
	unsigned cycle = 0;
	pthread_mutex_lock(&trace_lock);
	while (!stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += FLUSH_INTERVAL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&trace_wake, &trace_lock, &ts);
		if (!stopping)
			flush_cycle(++cycle % COUNTS_EVERY == 0);
	}
	pthread_mutex_unlock(&trace_lock);
	return arg;
}

/* ---- public ---- */

bool gsa_trace_expand_path(const char *tmpl, int pid, char *out, size_t cap)
{
	size_t n = 0;
	for (const char *s = tmpl; *s; s++) {
		char tmp[24];
		const char *piece = tmp;
		if (s[0] == '%' && s[1] == 'p') {
			snprintf(tmp, sizeof tmp, "%d", pid);
			s++;
		} else if (s[0] == '%' && s[1] == '%') {
			tmp[0] = '%', tmp[1] = 0;
			s++;
		} else {
			tmp[0] = *s, tmp[1] = 0;
		}
		size_t m = strlen(piece);
		if (n + m + 1 > cap)
			return false;
		memcpy(out + n, piece, m);
		n += m;
	}
	out[n] = 0;
	return true;
}

/* A child process that inherited a path without %p writes beside the parent's file. */
static bool inherited_path;

void gsa_trace_start(const char *tmpl)
{
	int expected = 0;
	if (!atomic_compare_exchange_strong(&started, &expected, 1))
		return;
	char path[4200];
	int pid = (int)getpid();
	if (!gsa_trace_expand_path(tmpl, pid, path, sizeof path - 24)) {
		gsa_log(GSA_LOG_ERROR, GSA_CODE_TRACE_IO, "GSA_TRACE path too long: not tracing");
		return;
	}
	if (inherited_path && !strstr(tmpl, "%p"))
		snprintf(path + strlen(path), 24, ".%d", pid);
	pthread_mutex_lock(&trace_lock);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		gsa_log(GSA_LOG_ERROR, GSA_CODE_TRACE_IO, "cannot open trace file %s (%s): not tracing",
			path, strerror(errno));
		pthread_mutex_unlock(&trace_lock);
		return;
	}
	write_header();
	write_process();
	write_config();
	file_flush();
	stopping = false;
	flusher_running = pthread_create(&flusher, NULL, flusher_main, NULL) == 0;
	if (!flusher_running)
		gsa_log(GSA_LOG_WARN, GSA_CODE_TRACE_IO,
			"no flusher thread: the trace is written at exit only");
	gsa_tracing = true;
	pthread_mutex_unlock(&trace_lock);
}

void gsa_trace_stop(void)
{
	if (atomic_load(&started) != 1)
		return;
	pthread_mutex_lock(&trace_lock);
	stopping = true;
	pthread_cond_signal(&trace_wake);
	pthread_mutex_unlock(&trace_lock);
	if (flusher_running)
		pthread_join(flusher, NULL);
	flusher_running = false;
	pthread_mutex_lock(&trace_lock);
	atomic_store(&started, 2);
	gsa_tracing = false;
	flush_cycle(true);
	if (fd >= 0) {
		uint8_t buf[8];
		struct gsa_enc e = {buf, 0, sizeof buf, false};
		gsa_put_u64(&e, now_ns(CLOCK_MONOTONIC));
		file_record(GSA_REC_END, &e);
		file_flush();
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	pthread_mutex_unlock(&trace_lock);
}

static struct ring *ring_get(void)
{
	struct ring *r = my_ring;
	if (__builtin_expect(r != NULL, 1))
		return r;
	if (atomic_load_explicit(&ring_alloc_failed, memory_order_relaxed))
		return NULL;
	r = calloc(1, sizeof *r);
	uint8_t *b = r ? malloc(RING_SIZE) : NULL;
	if (!b) {
		free(r);
		atomic_store(&ring_alloc_failed, true);
		return NULL;
	}
	r->buf = b;
	pthread_mutex_lock(&rings_lock);
	r->next = rings;
	rings = r;
	pthread_mutex_unlock(&rings_lock);
	my_ring = r;
	return r;
}

static void ring_put(struct ring *r, uint64_t at, const void *p, uint32_t n)
{
	uint32_t off = (uint32_t)(at & (RING_SIZE - 1));
	uint32_t first = RING_SIZE - off < n ? RING_SIZE - off : n;
	memcpy(r->buf + off, p, first);
	memcpy(r->buf, (const uint8_t *)p + first, n - first);
}

void gsa_trace_emit(uint16_t type, const void *payload, uint32_t len)
{
	if (!gsa_tracing || len > MAX_RING_RECORD)
		return;
	struct ring *r = ring_get();
	if (!r)
		return;
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	uint32_t need = GSA_TRACE_RECORD_HEADER_SIZE + len;
	uint64_t dropped = atomic_load_explicit(&r->dropped, memory_order_relaxed);
	uint32_t drop_rec = dropped ? GSA_TRACE_RECORD_HEADER_SIZE + 16 : 0;
	if (RING_SIZE - (head - tail) < (uint64_t)need + drop_rec) {
		atomic_store_explicit(&r->dropped, dropped + need, memory_order_relaxed);
		return;
	}
	uint8_t h[GSA_TRACE_RECORD_HEADER_SIZE] = {0};
	if (dropped) {
		/* First say what was lost, now that there is room again. */
		uint16_t t = GSA_REC_DROPPED;
		uint32_t l = 16;
		uint64_t d[2] = {now_ns(CLOCK_MONOTONIC), dropped};
		memcpy(h, &t, 2);
		memcpy(h + 4, &l, 4);
		ring_put(r, head, h, sizeof h);
		ring_put(r, head + sizeof h, d, sizeof d);
		head += drop_rec;
		atomic_store_explicit(&r->dropped, 0, memory_order_relaxed);
	}
	memcpy(h, &type, 2);
	memcpy(h + 4, &len, 4);
	ring_put(r, head, h, sizeof h);
	ring_put(r, head + sizeof h, payload, len);
	atomic_store_explicit(&r->head, head + need, memory_order_release);
}

void gsa_trace_log(int level, int code, const char *msg, size_t len)
{
	if (!gsa_tracing)
		return;
	uint8_t buf[600];
	struct gsa_enc e = {buf, 0, sizeof buf, false};
	gsa_put_u64(&e, now_ns(CLOCK_MONOTONIC));
	gsa_put_u8(&e, (uint8_t)level);
	gsa_put(&e, "\0\0\0", 3);
	gsa_put_u32(&e, (uint32_t)code);
	gsa_put_str(&e, msg, len > 512 ? 512 : len);
	gsa_trace_emit(GSA_REC_LOG, buf, e.n);
}

void gsa_trace_alloc(uint64_t ptr, uint64_t size, uint64_t callsite, int device, int api,
		     uint64_t stream)
{
	uint8_t buf[64];
	struct gsa_enc e = {buf, 0, sizeof buf, false};
	gsa_put_u64(&e, now_ns(CLOCK_MONOTONIC));
	gsa_put_u64(&e, ptr);
	gsa_put_u64(&e, size);
	gsa_put_u64(&e, callsite);
	gsa_put_u32(&e, (uint32_t)device);
	gsa_put_u8(&e, (uint8_t)api);
	gsa_put(&e, "\0\0\0", 3);
	gsa_put_u64(&e, stream);
	gsa_trace_emit(GSA_REC_ALLOC, buf, e.n);
}

void gsa_trace_free(uint64_t ptr, int api, bool known)
{
	uint8_t buf[32];
	struct gsa_enc e = {buf, 0, sizeof buf, false};
	gsa_put_u64(&e, now_ns(CLOCK_MONOTONIC));
	gsa_put_u64(&e, ptr);
	gsa_put_u8(&e, (uint8_t)api);
	gsa_put_u8(&e, known);
	gsa_put(&e, "\0\0\0\0\0\0", 6);
	gsa_trace_emit(GSA_REC_FREE, buf, e.n);
}

void gsa_trace_note_device(int ordinal)
{
	if (ordinal >= 0 && ordinal < 64)
		atomic_fetch_or_explicit(&devices_wanted, 1ull << ordinal, memory_order_relaxed);
}

/* Fork: the parent's flusher holds no lock across the fork; the child starts clean. */
void gsa_trace_fork_prepare(void)
{
	pthread_mutex_lock(&trace_lock);
	if (fd >= 0) {
		/* Drain now, so the records the parent has produced are in the parent's file. */
		drain_rings();
		file_flush();
	}
	pthread_mutex_lock(&rings_lock);
}

void gsa_trace_fork_parent(void)
{
	pthread_mutex_unlock(&rings_lock);
	pthread_mutex_unlock(&trace_lock);
}

void gsa_trace_fork_child(void)
{
	pthread_mutex_init(&trace_lock, NULL);
	pthread_mutex_init(&rings_lock, NULL);
	pthread_cond_init(&trace_wake, NULL);
	if (fd >= 0)
		close(fd); /* the parent's file, still written by the parent */
	fd = -1;
	flen = 0;
	inherited_path = atomic_load(&started) != 0;
	atomic_store(&started, 0);
	flusher_running = false;
	stopping = false;
	gsa_tracing = false;
	kernels_written = 0;
	devices_written = 0;
	/* Only this thread exists in the child: its ring restarts empty, the others go. */
	rings = NULL;
	if (my_ring) {
		atomic_store(&my_ring->head, 0);
		atomic_store(&my_ring->tail, 0);
		atomic_store(&my_ring->dropped, 0);
		my_ring->next = NULL;
		rings = my_ring;
	}
}

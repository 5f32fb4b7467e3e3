/* A standalone driver for tests/fuzz/fuzz_reader.c, for machines without libFuzzer: any C
 * compiler builds it (make build/test/fuzz_reader_standalone, with AddressSanitizer and
 * UBSan when gcc can link them). It also works as an AFL++ harness: with no corpus options
 * and a file argument it runs that one input (afl-fuzz ... -- fuzz_reader_standalone @@).
 *
 *   fuzz_reader_standalone [-t SECONDS] [-n ITERATIONS] [-s SEED] [SEED_FILE...]
 *       mutates the seeds (built-in small traces plus the files given) in a loop for that
 *       long (default 3 s) or that many inputs, whichever comes first; on a crash the
 *       sanitizer reports, and the input is in fuzz-crash.gsatrace (current directory)
 *   fuzz_reader_standalone --run FILE...    runs each file once (reproduce a crash)
 *   fuzz_reader_standalone --write-seeds DIR   writes the built-in seeds there
 *
 * Prints "fuzz_reader_standalone: N passed, 0 failed" at the end of a loop (N inputs).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/data/trace_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_SEEDS 64
#define MAX_INPUT (4u << 20)

static struct seed {
	uint8_t *b;
	size_t n;
} seeds[MAX_SEEDS];
static int n_seeds;

static void add_seed(const uint8_t *b, size_t n)
{
	if (n_seeds >= MAX_SEEDS || n > MAX_INPUT)
		return;
	seeds[n_seeds].b = malloc(n ? n : 1);
	if (!seeds[n_seeds].b)
		return;
	memcpy(seeds[n_seeds].b, b, n);
	seeds[n_seeds++].n = n;
}

static int read_file(const char *path, uint8_t **out, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	size_t cap = 1 << 16, len = 0, got;
	uint8_t *b = malloc(cap);
	while (b && (got = fread(b + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap) {
			uint8_t *nb = len < MAX_INPUT ? realloc(b, cap *= 2) : NULL;
			if (!nb)
				break;
			b = nb;
		}
	}
	fclose(f);
	*out = b;
	*n = len;
	return b ? 0 : -1;
}

/* Small traces with every record type, so that mutations start from valid structure. */
static void builtin_seeds(void)
{
	static const char *const kv[] = {"status", "active", "GSA_RATIO", "0.25"};
	static const uint32_t params[] = {0, 8, 8, 4};
	static const uint64_t counts[] = {1, 10, 2, 3};
	static const uint32_t pairs[] = {4, 16, 16, 16, 0, 0};
	uint8_t bm[8] = {0x81, 0x40, 0xff, 0x00, 0x01, 0x80, 0x3c, 0x07};
	struct tw w = {0};

	tw_header(&w, 1, 1);
	add_seed(w.b, w.n); /* a header alone */

	tw_process(&w, 1, 0, 100, "python", "0.1", "host");
	tw_config(&w, 2, kv);
	tw_device(&w, 0, 9, 0, 132, 1ull << 36, "GPU");
	tw_kernel(&w, 1, GSA_HANDLE_FUNCTION, 0x10, 2, params, "attn", "triton_unified");
	tw_kernel(&w, 2, GSA_HANDLE_KERNEL, 0x20, 0xffffffffu, NULL, "gemm", "");
	tw_counts(&w, 150, 2, counts);
	tw_alloc(&w, 160, 0x1000, 4096, 7, 0, GSA_API_CU_MEM_ALLOC, 0);
	tw_attention(&w, 200, 1, 0, 3, 0, 0);
	tw_attention(&w, 210, 1, 1, 3, 2, 1);
	tw_select(&w, 220, 0, 1, 0, 3, 3, pairs);
	tw_blocks(&w, 230, 0, 0, 0, 60, 12, 1, 2, 60, bm);
	tw_blocks(&w, 240, 1, 0, 0, 64, 12, 1, 2, 64, bm);
	tw_blocks(&w, 250, 2, 0, 0, 64, 12, 1, 2, 40, bm);
	tw_log(&w, 260, 1, 7, "fail-open: x");
	tw_free_rec(&w, 270, 0x1000, GSA_API_CU_MEM_ALLOC, 1);
	tw_dropped(&w, 280, 64);
	tw_end_rec(&w, 300);
	add_seed(w.b, w.n);
	tw_free(&w);

	/* GSA records only, many steps of one sequence (the churn and the heatmap's binning) */
	tw_header(&w, 2, 1);
	for (int i = 0; i < 300; i++) {
		bm[i % 8] ^= (uint8_t)(1u << (i % 7));
		tw_blocks(&w, 1000 + (uint64_t)i, (uint64_t)i, 3, 1, 20 + (uint32_t)i / 8, 9, 1, 2,
			  20 + (uint32_t)i / 8 < 64 ? 20 + (uint32_t)i / 8 : 64, bm);
	}
	add_seed(w.b, w.n);
	tw_free(&w);
}

static uint64_t rng;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* One mutated input from the seeds into buf (capacity MAX_INPUT); returns its size. */
static size_t mutate(uint8_t *buf)
{
	const struct seed *sd = &seeds[next() % (uint64_t)n_seeds];
	size_t n = sd->n;
	memcpy(buf, sd->b, n);
	int rounds = 1 + (int)(next() % 6);
	for (int r = 0; r < rounds; r++) {
		size_t at = n ? (size_t)(next() % n) : 0;
		switch (next() % 9) {
		case 0: /* flip a bit */
			if (n)
				buf[at] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: /* a random byte */
			if (n)
				buf[at] = (uint8_t)next();
			break;
		case 2: { /* an interesting 32-bit value (lengths and counts) */
			static const uint32_t vals[] = {0, 1, 7, 8, 0x7f, 0x80, 0xff, 0xffff, 0x10000,
							0x100000, 0x100001, 0x7fffffff, 0x80000000,
							0xfffffffe, 0xffffffff};
			uint32_t v = vals[next() % (sizeof(vals) / sizeof(vals[0]))];
			if (n >= 4) {
				at = (size_t)(next() % (n - 3));
				memcpy(buf + at, &v, 4);
			}
			break;
		}
		case 3: /* truncate */
			n = at;
			break;
		case 4: { /* delete a chunk */
			size_t len = (size_t)(next() % 64);
			if (at + len > n)
				len = n - at;
			memmove(buf + at, buf + at + len, n - at - len);
			n -= len;
			break;
		}
		case 5: { /* duplicate a chunk (records repeated) */
			size_t len = (size_t)(next() % 256);
			if (at + len > n)
				len = n - at;
			if (n + len <= MAX_INPUT) {
				memmove(buf + at + len, buf + at, n - at);
				n += len;
			}
			break;
		}
		case 6: { /* splice: the tail of another seed */
			const struct seed *o = &seeds[next() % (uint64_t)n_seeds];
			size_t from = o->n ? (size_t)(next() % o->n) : 0;
			size_t len = o->n - from;
			if (at + len <= MAX_INPUT) {
				memcpy(buf + at, o->b + from, len);
				n = at + len;
			}
			break;
		}
		case 7: /* a record type from 0 to 15 at a plausible header position */
			if (n >= 40) {
				at = 32 + (size_t)(next() % (n - 39));
				buf[at] = (uint8_t)(next() % 16);
				buf[at + 1] = 0;
			}
			break;
		default: /* a huge or zero 64-bit value */
			if (n >= 8) {
				uint64_t v = next() % 2 ? ~0ull : 0;
				at = (size_t)(next() % (n - 7));
				memcpy(buf + at, &v, 8);
			}
			break;
		}
	}
	return n;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = 3;
	uint64_t iterations = UINT64_MAX, seed = 0x9e3779b97f4a7c15ull;
	int run_only = 0, files = 0;
	const char *seeds_dir = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "-n") && i + 1 < argc)
			iterations = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-s") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--run"))
			run_only = 1;
		else if (!strcmp(argv[i], "--write-seeds") && i + 1 < argc)
			seeds_dir = argv[++i];
		else
			argv[++files] = argv[i]; /* keep the files in argv[1..files] */
	}
	/* AFL++ style: just a file, no options: run it once */
	if (argc == 2 && files == 1)
		run_only = 1;
	if (run_only) {
		for (int i = 1; i <= files; i++) {
			uint8_t *b;
			size_t n;
			if (read_file(argv[i], &b, &n)) {
				fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
				return 1;
			}
			LLVMFuzzerTestOneInput(b, n);
			free(b);
		}
		printf("fuzz_reader_standalone: %d passed, 0 failed\n", files);
		return 0;
	}
	builtin_seeds();
	if (seeds_dir) {
		for (int i = 0; i < n_seeds; i++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/builtin-%d.gsatrace", seeds_dir, i);
			FILE *f = fopen(path, "wb");
			if (!f || fwrite(seeds[i].b, 1, seeds[i].n, f) != seeds[i].n || fclose(f)) {
				fprintf(stderr, "%s: cannot write\n", path);
				return 1;
			}
		}
		return 0;
	}
	for (int i = 1; i <= files; i++) {
		uint8_t *b;
		size_t n;
		if (read_file(argv[i], &b, &n) == 0) {
			add_seed(b, n);
			free(b);
		} else {
			fprintf(stderr, "warning: %s: %s (seed skipped)\n", argv[i], strerror(errno));
		}
	}
	rng = seed ? seed : 1;
	uint8_t *buf = malloc(MAX_INPUT);
	if (!buf)
		return 1;
	/* the seeds themselves first, then mutations */
	for (int i = 0; i < n_seeds; i++)
		LLVMFuzzerTestOneInput(seeds[i].b, seeds[i].n);
	double end = now_s() + seconds;
	uint64_t done = (uint64_t)n_seeds;
	while (done < iterations) {
		size_t n = mutate(buf);
		/* keep the input where a crash can be found (written only every few inputs
		 * would lose it; writing each one costs little against the parse) */
		FILE *f = fopen("fuzz-crash.gsatrace", "wb");
		if (f) {
			fwrite(buf, 1, n, f);
			fclose(f);
		}
		LLVMFuzzerTestOneInput(buf, n);
		done++;
		if ((done & 63) == 0 && now_s() > end)
			break;
	}
	remove("fuzz-crash.gsatrace");
	free(buf);
	for (int i = 0; i < n_seeds; i++)
		free(seeds[i].b);
	printf("fuzz_reader_standalone: %" PRIu64 " passed, 0 failed\n", done);
	return 0;
}

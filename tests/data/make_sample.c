/* Writes tests/data/sample.gsatrace: a small synthetic trace shaped like what gsa-preload
 * writes for a vLLM decode run with tracing on (GSA_TRACE, GSA_TRACE_BLOCKS=0,1), for the
 * gsa-trace tests until a trace from a real GPU run replaces it. The tests derive their
 * expectations by reading the file, so any valid trace with BLOCKS records for layers 0 and
 * 1, sequences 0 and 1, can take its place.
 *
 *   make build/test/make_sample && build/test/make_sample tests/data/sample.gsatrace
 *
 * What it models (deterministic, no randomness from outside):
 *  - process, configuration, one H100, eight kernels: two Triton unified-attention variants
 *    that the triton_unified adapter recognises, the others pass through;
 *  - allocations: weights, one KV cache per layer, GSA's buffers, workspaces freed and
 *    allocated again every few steps;
 *  - two layers, two sequences; step 0 runs dense (query heads not known yet), steps 1-3
 *    are eager and rewritten, step 4 is captured into a CUDA graph (no selection runs), and
 *    every later step is a graph replay: no ATTENTION record, only SELECT and BLOCKS. The 3d
 *    attention variant always runs dense (unsupported geometry) and logs one fail-open;
 *  - 200 decode steps with selection statistics: sequence 0 starts below GSA_MIN_TOKENS and
 *    stays dense (all blocks kept, no sink or local window) until it grows past it, then
 *    turns sparse; sequence 1 is sparse throughout. The kept middle blocks follow a few
 *    slowly drifting "topics" plus noise, so the selection changes a little every step.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/data/trace_writer.h"

#define LAYERS 2
#define SEQS 2
#define STEPS 202          /* decode steps: 0 dense, 4 captured, 200 selected */
#define BLOCK_SIZE 16
#define RATIO 0.25
#define SINK 1
#define LOCAL 2
#define MIN_BLOCKS 16
#define MIN_TOKENS 2048
#define MAX_BLOCKS 512

#define MS 1000000ull
#define START_MONO 5000000000000ull /* the process started 5000 s after boot */

enum { K_ATTN_2D, K_ATTN_3D, K_GEMM, K_NORM, K_ROPE, K_CACHE, K_ACT, K_UNNAMED, N_KERNELS };

static uint64_t rng = 0x2545f4914f6cdd1dull;

static double uniform(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

/* Per (layer, sequence): an AR(1) noise per block, so the scores drift smoothly. */
static double noise[LAYERS][SEQS][MAX_BLOCKS];

static double score(int layer, int seq, int b, int step)
{
	/* three topics per (layer, seq), drifting slowly, of different weights */
	double s = 0;
	for (int k = 0; k < 3; k++) {
		double centre = 20 + 45 * k + 13 * layer + 7 * seq + 6 * sin(step / (25.0 + 10 * k));
		double width = 4 + 2 * k;
		double d = (b - centre) / width;
		s += (1.0 - 0.25 * k) * exp(-d * d);
	}
	return s + 0.35 * noise[layer][seq][b];
}

struct selection {
	uint32_t total, kept, sink, local;
	uint8_t bitmap[MAX_BLOCKS / 8];
};

static void select_blocks(int layer, int seq, int step, uint32_t tokens, struct selection *out)
{
	uint32_t n = (tokens + BLOCK_SIZE - 1) / BLOCK_SIZE;
	memset(out, 0, sizeof(*out));
	out->total = n;
	if (tokens < MIN_TOKENS) { /* dense: everything kept, no sink or local window */
		out->kept = n;
		for (uint32_t b = 0; b < n; b++)
			out->bitmap[b / 8] |= (uint8_t)(1u << (b % 8));
		return;
	}
	uint32_t keep = (uint32_t)ceil(RATIO * n);
	if (keep < MIN_BLOCKS)
		keep = MIN_BLOCKS;
	if (keep > n)
		keep = n;
	out->kept = keep;
	out->sink = SINK;
	out->local = LOCAL;
	uint8_t chosen[MAX_BLOCKS] = {0};
	for (uint32_t b = 0; b < SINK; b++)
		chosen[b] = 1;
	for (uint32_t b = n - LOCAL; b < n; b++)
		chosen[b] = 1;
	/* the best-scoring middle blocks, ties to the lower index */
	for (uint32_t k = SINK + LOCAL; k < keep; k++) {
		int best = -1;
		double best_score = -1e300;
		for (uint32_t b = SINK; b < n - LOCAL; b++) {
			if (chosen[b])
				continue;
			double sc = score(layer, seq, (int)b, step);
			if (sc > best_score) {
				best_score = sc;
				best = (int)b;
			}
		}
		chosen[best] = 1;
	}
	for (uint32_t b = 0; b < n; b++)
		if (chosen[b])
			out->bitmap[b / 8] |= (uint8_t)(1u << (b % 8));
}

static const uint32_t attn_params[] = {0, 8, 8, 8, 16, 8, 24, 8, 32, 8, 40, 8, 48, 4, 52, 4,
				       56, 4, 60, 4, 64, 8, 72, 8, 80, 4, 84, 4};

static uint64_t launches[N_KERNELS];

static void counts(struct tw *w, uint64_t t)
{
	uint64_t pairs[2 * N_KERNELS];
	for (int k = 0; k < N_KERNELS; k++) {
		pairs[2 * k] = (uint64_t)k;
		pairs[2 * k + 1] = launches[k];
	}
	tw_counts(w, t, N_KERNELS, pairs);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUT.gsatrace\n", argv[0]);
		return 2;
	}
	static const char *const config[] = {
		"status", "active",          "GSA_RATIO", "0.25",
		"GSA_SINK_BLOCKS", "1",      "GSA_LOCAL_BLOCKS", "2",
		"GSA_MIN_BLOCKS", "16",      "GSA_MIN_TOKENS", "2048",
		"GSA_TRACE", "/tmp/gsa-%p.bin", "GSA_TRACE_BLOCKS", "0,1",
	};
	struct tw w = {0};
	uint64_t t = START_MONO;
	tw_header(&w, 31337, 1767225600000000000ull);
	tw_process(&w, 31337, 31290, t, "/usr/bin/python3.11", "0.1.0", "gpu-node-7");
	tw_config(&w, 8, config);
	tw_log(&w, t += 2 * MS, 2, 0, "gsa-preload 0.1.0: active, tracing to /tmp/gsa-31337.bin");
	tw_device(&w, 0, 9, 0, 132, 85032697856ull, "NVIDIA H100 80GB HBM3");
	tw_kernel(&w, K_ATTN_2D, GSA_HANDLE_FUNCTION, 0x7f3a10001000ull, 14, attn_params,
		  "kernel_unified_attention_2d", "triton_unified");
	tw_kernel(&w, K_ATTN_3D, GSA_HANDLE_FUNCTION, 0x7f3a10002000ull, 14, attn_params,
		  "kernel_unified_attention_3d", "triton_unified");
	tw_kernel(&w, K_GEMM, GSA_HANDLE_KERNEL, 0x7f3a10003000ull, 0xffffffffu, NULL,
		  "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "");
	tw_kernel(&w, K_NORM, GSA_HANDLE_KERNEL, 0x7f3a10004000ull, 0xffffffffu, NULL,
		  "_ZN4vllm15rms_norm_kernelIN3c108BFloat16ELi8ELi3EEEvPT_PKS4_S7_fii", "");
	tw_kernel(&w, K_ROPE, GSA_HANDLE_KERNEL, 0x7f3a10005000ull, 0xffffffffu, NULL,
		  "_ZN4vllm23rotary_embedding_kernelIN3c108BFloat16ELb1EEEvPKlPT_S7_PKS5_iliii",
		  "");
	tw_kernel(&w, K_CACHE, GSA_HANDLE_KERNEL, 0x7f3a10006000ull, 0xffffffffu, NULL,
		  "_ZN4vllm30reshape_and_cache_flash_kernelIN3c108BFloat16ES2_LNS_18Fp8KVCacheDataTypeE0EEEvPKT_S7_PT0_S9_PKliiiiiiPKfSD_",
		  "");
	tw_kernel(&w, K_ACT, GSA_HANDLE_KERNEL, 0x7f3a10007000ull, 0xffffffffu, NULL,
		  "_ZN4vllm18act_and_mul_kernelIN3c108BFloat16EXadL_ZNS_11silu_kernelIS2_EET_RKS4_EELb1EEEvPS4_PKS4_i",
		  "");
	tw_kernel(&w, K_UNNAMED, GSA_HANDLE_UNKNOWN, 0x7f3a10008000ull, 0xffffffffu, NULL, "", "");

	/* weights, then the KV caches (one per layer), then GSA's own buffers */
	uint64_t ptr = 0x7f2000000000ull;
	for (int i = 0; i < 6; i++) {
		tw_alloc(&w, t += MS, ptr, (64ull + 32 * i) << 20, 0x5eed0001ull, 0,
			 GSA_API_CUDA_MALLOC, 0);
		ptr += 1ull << 30;
	}
	uint64_t kv[LAYERS];
	for (int l = 0; l < LAYERS; l++) {
		kv[l] = ptr;
		tw_alloc(&w, t += MS, ptr, 4ull << 30, 0x5eed0002ull, 0, GSA_API_CU_MEM_ALLOC, 0);
		ptr += 8ull << 30;
	}
	for (int l = 0; l < LAYERS; l++) {
		tw_alloc(&w, t += MS, ptr, 32ull << 20, 0x65a00001ull, 0, GSA_API_CU_MEM_ALLOC, 0);
		ptr += 1ull << 30;
	}
	(void)kv;
	counts(&w, t += MS);

	for (int l = 0; l < LAYERS; l++)
		for (int s = 0; s < SEQS; s++)
			for (int b = 0; b < MAX_BLOCKS; b++)
				noise[l][s][b] = uniform() * 2 - 1;

	uint32_t tokens[SEQS] = {1900, 3000};
	uint64_t launch = 0, workspace = 0;
	int logged_3d = 0;
	for (int step = 0; step < STEPS; step++) {
		t += 25 * MS;
		int eager = step < 5, captured = step == 4;
		/* a workspace freed and allocated again every 10 steps, with an async allocation */
		if (step % 10 == 0) {
			if (workspace)
				tw_free_rec(&w, t, workspace, GSA_API_CUDA_MALLOC_ASYNC, 1);
			workspace = ptr + (uint64_t)(step % 20) * (1ull << 24);
			tw_alloc(&w, t + 1000, workspace, (8ull + step % 7) << 20, 0x5eed0003ull, 0,
				 GSA_API_CUDA_MALLOC_ASYNC, 0x1234);
		}
		for (int l = 0; l < LAYERS; l++) {
			uint64_t tl = t + (uint64_t)l * 2 * MS;
			if (eager) {
				for (int k = K_GEMM; k < N_KERNELS; k++)
					launches[k] += (uint64_t)(k == K_GEMM ? 4 : 1);
				/* the 3d variant first: its geometry is not supported */
				launches[K_ATTN_3D]++;
				tw_attention(&w, tl, K_ATTN_3D, l, SEQS, 5, captured);
				if (!logged_3d++)
					tw_log(&w, tl + 500, 1, 7, "kernel_unified_attention_3d: attention "
					       "runs dense (unsupported geometry)");
				launches[K_ATTN_2D]++;
				tw_attention(&w, tl + 1000, K_ATTN_2D, l, SEQS, step == 0 ? 6 : 0,
					     captured);
				if (step == 0 && l == 0)
					tw_log(&w, tl + 1500, 1, 7, "kernel_unified_attention_2d: attention "
					       "runs dense (query heads not known yet)");
			}
			if (step == 0 || captured)
				continue; /* dense, or captured: nothing selected now */
			struct selection sel[SEQS];
			uint32_t kept_total[2 * SEQS];
			for (int s = 0; s < SEQS; s++) {
				select_blocks(l, s, step, tokens[s], &sel[s]);
				kept_total[2 * s] = sel[s].kept;
				kept_total[2 * s + 1] = sel[s].total;
			}
			/* the flusher reads the statistics slot a little later */
			uint64_t tr = tl + 3 * MS;
			for (int s = 0; s < SEQS; s++)
				tw_blocks(&w, tr, launch, l, (uint32_t)s, sel[s].total, sel[s].kept,
					  sel[s].sink, sel[s].local, sel[s].total, sel[s].bitmap);
			tw_select(&w, tr + 2000, launch, K_ATTN_2D, l, SEQS, SEQS, kept_total);
			launch++;
		}
		for (int s = 0; s < SEQS; s++) {
			tokens[s]++;
			/* layer 1's selection moves more than layer 0's */
			for (int b = 0; b < MAX_BLOCKS; b++) {
				noise[0][s][b] = 0.9 * noise[0][s][b] + 0.45 * (uniform() * 2 - 1);
				noise[1][s][b] = 0.85 * noise[1][s][b] + 0.55 * (uniform() * 2 - 1);
			}
		}
		if (step == 4)
			tw_log(&w, t + 10 * MS, 2, 0, "captured a CUDA graph with 2 rewritten "
			       "attention launches");
		if (step % 50 == 49)
			counts(&w, t + 20 * MS);
	}
	t += 100 * MS;
	tw_free_rec(&w, t, workspace, GSA_API_CUDA_MALLOC_ASYNC, 1);
	tw_free_rec(&w, t + MS, 0x7f00deadbeefull, GSA_API_CU_MEM_ALLOC, 0); /* not registered */
	counts(&w, t + 2 * MS);
	tw_end_rec(&w, t + 3 * MS);

	FILE *f = fopen(argv[1], "wb");
	if (!f || tw_flush(&w, f) != 0 || fclose(f) != 0) {
		perror(argv[1]);
		return 1;
	}
	tw_free(&w);
	return 0;
}

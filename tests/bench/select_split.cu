// Where the selection's time goes: the scoring and the selection kernels of a fatbin
// (build/sparse/gsa_kernels_split.fatbin, or an older build's) timed apart and together on
// synthetic decode batches, and their shadow tables checked against the C reference
// (sparse/select_ref.c) on the first configuration and those with larger blocks.
//
//   select_split FATBIN [--score-threads N] [--chunk N] [--select-threads N] [--policy mean|quest]
//                [--check] [--cold] [--cold-code] [--stamps] [--only I,J,...] [--launch-only]
//                [--seq-major] [--warp-blocks N]
//
// --score-threads, --chunk and --select-threads are GSA_SCORE_THREADS, GSA_SCORE_CHUNK and
// GSA_SELECT_THREADS of the build that made FATBIN (the launches depend on them; an older
// build's may differ from this one's: builds before 512-thread CTAs need --score-threads
// 256, which also sets the other two).
// Prints one line per configuration: microseconds per launch (median of 7 replays of a CUDA
// graph of 50 launches) of score alone, select alone and both (the one fused kernel the
// library launches, when FATBIN has it), and the bytes the scoring
// kernel must read.
//
// --cold: as in a decode step, where the attention between two selections has evicted the
// representations from L2: every launch in the graph follows a kernel that reads a
// 160 MB buffer (three times the L2), and the times printed are those of the graph with
// both minus that of a graph of the reads alone.
//
// --cold-code: --cold, and before each read a kernel that runs 256 KB of code on every SM,
// so that each launch also starts with none of its code cached (in a decode step the
// attention kernel and the layer's GEMMs run between two selections). With --stamps, the
// same before each stamped launch.
//
// --seq-major: the grid as (chunks, sequences), for a FATBIN built before the scoring grid
// became (sequences, chunks) (kernel_common.cuh's grid_seq).
// --warp-blocks N: blocks a scoring warp takes, instead of what the library would choose
// (gsa_warp_blocks for this GPU's multiprocessors); 8 for a FATBIN built before the choice
// (its chunk is then --chunk's).
// --only: the configurations of those indices (0-based, in the order printed) alone.
// --launch-only: no timing; the fused kernel launched five times per configuration, then the
// next (for a profiler: tests/bench/profile_select.sh runs Nsight Compute on it).
//
// --stamps: where the fused kernel's time goes, from a fatbin instrumented with clock
// stamps (sparse/kernel_common.cuh, GSA_STAMPS): each stamped launch follows the
// evictions of --cold or --cold-code when given, else a launch of its own (warm: code
// and data cached as far as they fit). The fatbin is built with
//   nvcc -std=c++17 -O3 -I. -fatbin -DGSA_STAMPS -DGSA_SPLIT_KERNELS \
//        -gencode arch=compute_90,code=sm_90 sparse/gsa_kernels.cu -o build/stamps.fatbin
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "preload/config.h"
#include "sparse/select_args.h"

extern "C" int gsa_select_ref(const struct gsa_select_args *a);

#define CK(x)                                                                              \
	do {                                                                               \
		cudaError_t e_ = (x);                                                      \
		if (e_ != cudaSuccess) {                                                   \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_)); \
			exit(1);                                                           \
		}                                                                          \
	} while (0)
#define CD(x)                                                                              \
	do {                                                                               \
		CUresult r_ = (x);                                                         \
		if (r_ != CUDA_SUCCESS) {                                                  \
			fprintf(stderr, "%s:%d: driver error %d\n", __FILE__, __LINE__, (int)r_); \
			exit(1);                                                           \
		}                                                                          \
	} while (0)

__global__ void fill(uint16_t *p, size_t n, uint32_t seed)
{
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		uint32_t h = (uint32_t)i * 2654435761u ^ seed;
		h ^= h >> 15, h *= 2246822519u, h ^= h >> 13, h *= 3266489917u, h ^= h >> 16;
		float f = ((h & 0xffffff) / 16777216.f) * 2.f - 1.f;
		uint32_t b = __float_as_uint(f);
		p[i] = (uint16_t)((b + 0x7fff + ((b >> 16) & 1)) >> 16);
	}
}

static CUfunction f_score, f_select, f_fused; /* f_fused: NULL in builds before it existed */
static int score_threads = GSA_SCORE_THREADS;
static int chunk = GSA_SCORE_CHUNK;
static int select_threads = GSA_SELECT_THREADS;
static bool seq_major; /* --seq-major */
static int warp_blocks_opt; /* --warp-blocks, 0: gsa_warp_blocks */
static int num_sms;

static void launch(bool score, bool select, gsa_select_args &a, cudaStream_t st)
{
	void *params[] = {&a};
	const int64_t ch = a.warp_blocks ? (int64_t)score_threads / 32 * a.warp_blocks : chunk;
	unsigned gx = (unsigned)((a.bt_stride + ch - 1) / ch);
	unsigned smem = (unsigned)GSA_SCORE_SMEM(a.num_kv_heads * a.head_size);
	// (sequences, chunks): kernel_common.cuh's grid_seq and grid_chunk (--seq-major: the
	// order of builds before it, (chunks, sequences)).
	const unsigned x = seq_major ? gx : (unsigned)a.num_seqs, y = seq_major ? (unsigned)a.num_seqs : gx;
	if (score && select && f_fused) {
		CD(cuLaunchKernel(f_fused, x, y, 1, score_threads, 1, 1, smem, st, params, NULL));
		return;
	}
	if (score)
		CD(cuLaunchKernel(f_score, x, y, 1, score_threads, 1, 1, smem, st, params, NULL));
	if (select)
		CD(cuLaunchKernel(f_select, a.num_seqs, 1, 1, select_threads, 1, 1, 0, st, params, NULL));
}

__global__ void nothing() {}

// Reads n float4 (evicting L2's contents with clean lines); writes only if the sum is
// exactly 1e30, which it never is, so that the reads are not optimised away.
__global__ void evict_l2(const float4 *p, size_t n, float *sink)
{
	float acc = 0.f;
	for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
	     i += (size_t)gridDim.x * blockDim.x) {
		float4 v = __ldcg(p + i);
		acc += v.x + v.y + v.z + v.w;
	}
	if (acc == 1e30f)
		*sink = acc;
}

// Runs 256 KB of straight-line code (16384 rotate-and-xor steps, which the assembler cannot
// fold) on every SM, so that the next kernel starts with none of its own code in the SMs'
// instruction caches, as in a decode step, where the attention kernel and the layer's
// GEMMs run between two selections. (Launched before evict_l2, which then also pushes the
// next kernel's code out of L2.)
#define GSA_ROT(c) v = __funnelshift_l(v, v, 5) ^ (c##u);
#define GSA_ROT8(c) GSA_ROT(c##1) GSA_ROT(c##2) GSA_ROT(c##3) GSA_ROT(c##4) GSA_ROT(c##5) GSA_ROT(c##6) GSA_ROT(c##7) GSA_ROT(c##8)
#define GSA_ROT64(c) GSA_ROT8(c##1) GSA_ROT8(c##2) GSA_ROT8(c##3) GSA_ROT8(c##4) GSA_ROT8(c##5) GSA_ROT8(c##6) GSA_ROT8(c##7) GSA_ROT8(c##8)
#define GSA_ROT512(c) GSA_ROT64(c##1) GSA_ROT64(c##2) GSA_ROT64(c##3) GSA_ROT64(c##4) GSA_ROT64(c##5) GSA_ROT64(c##6) GSA_ROT64(c##7) GSA_ROT64(c##8)
#define GSA_ROT4096(c) GSA_ROT512(c##1) GSA_ROT512(c##2) GSA_ROT512(c##3) GSA_ROT512(c##4) GSA_ROT512(c##5) GSA_ROT512(c##6) GSA_ROT512(c##7) GSA_ROT512(c##8)
__global__ void thrash_icache(unsigned *sink)
{
	unsigned v = threadIdx.x;
	GSA_ROT4096(1) GSA_ROT4096(2) GSA_ROT4096(3) GSA_ROT4096(4)
	if (v == 0x9e3779b9u)
		*sink = v;
}
static bool thrash; /* --cold-code */
static float4 *evict_buf;
static const size_t evict_n = (160u << 20) / sizeof(float4);

static void evict_caches(cudaStream_t st)
{
	if (thrash)
		thrash_icache<<<132, 32, 0, st>>>((unsigned *)evict_buf);
	evict_l2<<<132 * 4, 512, 0, st>>>(evict_buf, evict_n, (float *)evict_buf);
}

static bool cold, stamps;
static CUmodule mod;

// --stamps (a fatbin built with -DGSA_STAMPS): one launch of the fused kernel (cold with
// --cold or --cold-code, else right after another), then
// for each numbered point the spread over CTAs of when thread 0 reached it, in
// microseconds from the earliest CTA start.
static void print_stamps(gsa_select_args &a, cudaStream_t st)
{
	CUdeviceptr d;
	size_t bytes;
	if (cuModuleGetGlobal(&d, &bytes, mod, "gsa_stamps") != CUDA_SUCCESS) {
		printf("stamps: the fatbin has no gsa_stamps (build it with -DGSA_STAMPS)\n");
		return;
	}
	const int P = (int)(bytes / (64 * 256 * sizeof(unsigned long long))); /* GSA_STAMP_POINTS */
	std::vector<unsigned long long> h(bytes / 8);
	for (int rep = 0; rep < 3; rep++) {
		if (!cold) /* the warm-up launch, before the stamps are cleared */
			launch(true, true, a, st);
		CK(cudaStreamSynchronize(st));
		CD(cuMemsetD8(d, 0, bytes));
		CK(cudaDeviceSynchronize());
		if (cold)
			evict_caches(st);
		launch(true, true, a, st);
		CK(cudaStreamSynchronize(st));
		CD(cuMemcpyDtoH(h.data(), d, bytes));
		unsigned long long t0 = ~0ull;
		for (size_t i = 0; i < h.size(); i += P)
			if (h[i] && h[i] < t0)
				t0 = h[i];
		printf("stamps (rep %d):", rep);
		for (int p = 0; p < P; p++) {
			std::vector<double> v;
			for (size_t i = p; i < h.size(); i += P)
				if (h[i])
					v.push_back((h[i] - t0) / 1000.0);
			if (v.empty())
				continue;
			std::sort(v.begin(), v.end());
			printf("  p%d n=%zu %.1f/%.1f/%.1f", p, v.size(), v[0], v[v.size() / 2], v.back());
		}
		printf("\n");
	}
}

// Microseconds per launch: the median of 7 replays of a CUDA graph of 50 launches (graph
// replay is how vLLM runs decode; eager back-to-back launches would time the host).
// select == false and score == false: an empty kernel, the floor of one graph node.
static double graph_us(bool score, bool select, bool evict, gsa_select_args &a, cudaStream_t st)
{
	cudaGraph_t g;
	cudaGraphExec_t ge;
	CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
	for (int i = 0; i < 50; i++) {
		if (evict)
			evict_caches(st);
		if (!score && !select)
			nothing<<<1, 32, 0, st>>>();
		else
			launch(score, select, a, st);
	}
	CK(cudaStreamEndCapture(st, &g));
	CK(cudaGraphInstantiate(&ge, g, 0));
	CK(cudaGraphLaunch(ge, st)); /* warm-up */
	cudaEvent_t e0, e1;
	CK(cudaEventCreate(&e0));
	CK(cudaEventCreate(&e1));
	std::vector<float> t;
	for (int r = 0; r < 7; r++) {
		CK(cudaEventRecord(e0, st));
		CK(cudaGraphLaunch(ge, st));
		CK(cudaEventRecord(e1, st));
		CK(cudaEventSynchronize(e1));
		float ms;
		CK(cudaEventElapsedTime(&ms, e0, e1));
		t.push_back(ms * 1000.f / 50.f);
	}
	CK(cudaGraphExecDestroy(ge));
	CK(cudaGraphDestroy(g));
	CK(cudaEventDestroy(e0));
	CK(cudaEventDestroy(e1));
	std::sort(t.begin(), t.end());
	return t[3];
}

// One launch's microseconds (warm, or --cold: after evicting L2, the eviction's own time
// taken off).
static double time_us(bool score, bool select, gsa_select_args &a, cudaStream_t st)
{
	if (!cold)
		return graph_us(score, select, false, a, st);
	return graph_us(score, select, true, a, st) - graph_us(false, false, true, a, st) +
	       graph_us(false, false, false, a, st);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: select_split FATBIN [--score-threads N] [--chunk N] [--select-threads N] [--policy mean|quest] [--check] [--cold] [--cold-code] [--stamps]\n");
		return 2;
	}
	int policy = GSA_POLICY_MEAN;
	bool check = false, launch_only = false;
	const char *only = NULL;
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--score-threads") && i + 1 < argc)
			score_threads = select_threads = atoi(argv[++i]), chunk = score_threads / 32 * GSA_WARP_BLOCKS;
		else if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
			chunk = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--select-threads") && i + 1 < argc)
			select_threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--policy") && i + 1 < argc)
			policy = !strcmp(argv[++i], "quest") ? GSA_POLICY_QUEST : GSA_POLICY_MEAN;
		else if (!strcmp(argv[i], "--check"))
			check = true;
		else if (!strcmp(argv[i], "--cold"))
			cold = true;
		else if (!strcmp(argv[i], "--cold-code"))
			cold = thrash = true;
		else if (!strcmp(argv[i], "--stamps"))
			stamps = true;
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--launch-only"))
			launch_only = true;
		else if (!strcmp(argv[i], "--seq-major"))
			seq_major = true;
		else if (!strcmp(argv[i], "--warp-blocks") && i + 1 < argc)
			warp_blocks_opt = atoi(argv[++i]);
		else {
			fprintf(stderr, "select_split: unknown or incomplete option %s\n", argv[i]);
			return 2;
		}
	}
	CK(cudaFree(0));
	CK(cudaDeviceGetAttribute(&num_sms, cudaDevAttrMultiProcessorCount, 0));
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		perror(argv[1]);
		return 1;
	}
	std::vector<char> img(1 << 24);
	size_t n = fread(img.data(), 1, img.size(), f);
	fclose(f);
	img.resize(n);
	CD(cuModuleLoadData(&mod, img.data()));
	CD(cuModuleGetFunction(&f_score, mod, "gsa_score"));
	CD(cuModuleGetFunction(&f_select, mod, "gsa_select"));
	if (cuModuleGetFunction(&f_fused, mod, "gsa_score_select") != CUDA_SUCCESS)
		f_fused = NULL;
	cudaStream_t st;
	CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
	if (cold) {
		CK(cudaMalloc(&evict_buf, evict_n * sizeof(float4)));
		CK(cudaMemset(evict_buf, 0, evict_n * sizeof(float4)));
		printf("# cold: each launch after a read of %zu MB (L2 evicted)%s; its time taken off\n",
		       (evict_n * sizeof(float4)) >> 20, thrash ? " and 256 KB of code run on every SM" : "");
	}

	const int Hq = 32, Hkv = 8, D = 128, row = Hkv * D;
	// {batch, context, table width in blocks (0: the context's blocks + 4), block size}: row 8
	// is an engine's table (as wide as a 128K maximum length at 16-token blocks) holding 8K
	// sequences, where most CTAs of the grid find no blocks of theirs and must leave at once;
	// rows 9 and 10 the decode bench's batch 8 / 32K at 128- and 64-token blocks.
	const int cfg[][4] = {{8, 32768, 0, 16},  {8, 131072, 0, 16}, {32, 32768, 0, 16}, {32, 131072, 0, 16},
			      {64, 32768, 0, 16}, {64, 131072, 0, 16}, {1, 32768, 0, 16},  {8, 8192, 0, 16},
			      {32, 8192, 8192, 16}, {8, 32768, 0, 128}, {8, 32768, 0, 64}};
	for (auto &c : cfg) {
		if (only) {
			char key[16];
			snprintf(key, sizeof key, ",%d,", (int)(&c - cfg));
			std::string list = std::string(",") + only + ",";
			if (list.find(key) == std::string::npos)
				continue;
		}
		const int BS = c[3];
		int batch = c[0], ctx = c[1], nb = ctx / BS, cols = c[2] ? c[2] : nb + 4;
		int64_t blocks = (int64_t)batch * nb + 1;
		size_t kv_elems = (size_t)blocks * 2 * BS * row;
		uint16_t *kv, *q;
		int32_t *table, *lens, *shadow, *slens;
		float *scores;
		void *repr;
		uint64_t *fps;
		CK(cudaMalloc(&kv, kv_elems * 2));
		CK(cudaMalloc(&q, (size_t)batch * Hq * D * 2));
		CK(cudaMalloc(&table, (size_t)batch * cols * 4));
		CK(cudaMalloc(&shadow, (size_t)batch * cols * 4));
		CK(cudaMalloc(&scores, (size_t)batch * cols * 4));
		CK(cudaMalloc(&lens, batch * 4));
		CK(cudaMalloc(&slens, batch * 4));
		uint32_t *arrivals;
		CK(cudaMalloc(&arrivals, batch * 4));
		CK(cudaMemset(arrivals, 0, batch * 4));
		CK(cudaMalloc(&repr, (size_t)blocks * row * 4));
		CK(cudaMalloc(&fps, (size_t)blocks * 8));
		CK(cudaMemset(fps, 0, (size_t)blocks * 8));
		fill<<<1024, 256, 0, st>>>(kv, kv_elems, 1234u + batch);
		fill<<<64, 256, 0, st>>>(q, (size_t)batch * Hq * D, 99u + ctx);
		std::vector<int32_t> ht((size_t)batch * cols, 0), hl(batch, ctx), perm(blocks - 1);
		for (int64_t i = 0; i < blocks - 1; i++)
			perm[i] = (int32_t)(i + 1);
		srand(7);
		for (int64_t i = blocks - 2; i > 0; i--)
			std::swap(perm[i], perm[rand() % (i + 1)]);
		for (int s = 0; s < batch; s++)
			for (int b = 0; b < nb; b++)
				ht[(size_t)s * cols + b] = perm[(size_t)s * nb + b];
		CK(cudaMemcpy(table, ht.data(), ht.size() * 4, cudaMemcpyHostToDevice));
		CK(cudaMemcpy(lens, hl.data(), batch * 4, cudaMemcpyHostToDevice));
		gsa_select_args a;
		memset(&a, 0, sizeof a);
		a.query = q, a.q_stride_token = Hq * D, a.q_stride_kvhead = (Hq / Hkv) * D, a.q_stride_member = D;
		a.key_cache = kv, a.k_stride_block = 2 * BS * row, a.k_stride_token = row, a.k_stride_head = D;
		a.block_table = table, a.bt_stride = cols, a.seq_lens = lens, a.num_seqs = batch;
		a.block_size = BS, a.num_kv_heads = Hkv, a.num_q_heads = Hq, a.head_size = D;
		a.dtype = 0, a.policy = policy, a.ratio = 0.3, a.sink_blocks = 1, a.local_blocks = 2;
		a.min_blocks = 16, a.max_blocks = 0, a.min_tokens = 2048;
		a.repr = (decltype(a.repr))repr, a.fingerprints = fps, a.num_phys_blocks = blocks;
		a.scores = scores, a.shadow_table = shadow, a.shadow_lens = slens;
		a.arrivals = arrivals;
		a.warp_blocks = warp_blocks_opt ? warp_blocks_opt : gsa_warp_blocks(batch, cols, num_sms);
		launch(true, true, a, st); /* every representation computed once */
		CK(cudaStreamSynchronize(st));
		if (launch_only) {
			for (int i = 0; i < 5; i++)
				launch(true, true, a, st);
			CK(cudaStreamSynchronize(st));
			printf("batch %2d ctx %6d: 5 launches of the fused kernel\n", batch, ctx);
		} else {
			if (stamps) {
				printf("batch %2d ctx %6d: ", batch, ctx);
				print_stamps(a, st);
			}
			double t_score = time_us(true, false, a, st);
			double t_select = time_us(false, true, a, st);
			double t_both = time_us(true, true, a, st);
			double mb = (double)batch * (nb - 3) * row * (policy == GSA_POLICY_QUEST ? 4 : 2) / 1e6;
			printf("batch %2d ctx %6d blocks/seq %5d: score %8.1f us  select %7.1f us  %s %8.1f us  (repr MB at bf16: %.0f)%s",
			       batch, ctx, nb, t_score, t_select, f_fused ? "fused" : "both", t_both, mb,
			       c[2] ? "  (table 8192 blocks wide)" : "");
			if (BS != 16)
				printf("  (%d-token blocks)", BS);
			printf("  [%d blocks a warp]\n", a.warp_blocks);
			if (&c == &cfg[0])
				printf("empty kernel (one graph node's floor): %.1f us\n", time_us(false, false, a, st));
			fflush(stdout);
			if (check && (&c == &cfg[0] || BS != 16)) {
				std::vector<uint16_t> hkv(kv_elems), hq((size_t)batch * Hq * D);
				std::vector<int32_t> gs((size_t)batch * cols), rs((size_t)batch * cols, -1), gl(batch), rl(batch);
				CK(cudaMemcpy(hkv.data(), kv, kv_elems * 2, cudaMemcpyDeviceToHost));
				CK(cudaMemcpy(hq.data(), q, hq.size() * 2, cudaMemcpyDeviceToHost));
				CK(cudaMemcpy(gs.data(), shadow, gs.size() * 4, cudaMemcpyDeviceToHost));
				CK(cudaMemcpy(gl.data(), slens, batch * 4, cudaMemcpyDeviceToHost));
				gsa_select_args h = a;
				h.query = hq.data(), h.key_cache = hkv.data(), h.block_table = ht.data();
				h.seq_lens = hl.data(), h.shadow_table = rs.data(), h.shadow_lens = rl.data();
				if (gsa_select_ref(&h) != 0) {
					printf("CHECK FAIL: reference refused\n");
					return 1;
				}
				int keep = 0, diff_rows = 0, diff_cells = 0;
				for (int s = 0; s < batch; s++) {
					int k = (rl[s] + BS - 1) / BS;
					std::vector<int32_t> g(gs.begin() + (size_t)s * cols, gs.begin() + (size_t)s * cols + k);
					std::vector<int32_t> r(rs.begin() + (size_t)s * cols, rs.begin() + (size_t)s * cols + k);
					bool order = g == r;
					std::sort(g.begin(), g.end());
					std::sort(r.begin(), r.end());
					std::vector<int32_t> only;
					std::set_difference(g.begin(), g.end(), r.begin(), r.end(), std::back_inserter(only));
					keep = k;
					diff_rows += !order || gl[s] != rl[s];
					diff_cells += (int)only.size();
				}
				printf("CHECK %s: %d of %d rows differ from the C reference (%d blocks of %d kept "
				       "per row swapped in all; near-ties can swap a few)\n",
				       diff_rows ? "NOTE" : "PASS", diff_rows, batch, diff_cells, keep);
			}
		}
		cudaFree(kv), cudaFree(q), cudaFree(table), cudaFree(shadow), cudaFree(scores);
		cudaFree(lens), cudaFree(slens), cudaFree(repr), cudaFree(fps), cudaFree(arrivals);
	}
	return 0;
}

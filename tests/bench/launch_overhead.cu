// launch_overhead: the host cost of one kernel launch, for comparing a run without and with
// LD_PRELOAD=libgsa_preload.so (same binary).
//
// An empty kernel is launched in timed batches of --batch launches (default 256) into a
// stream of the launching thread: the batch is timed with clock_gettime(CLOCK_MONOTONIC), then
// the stream is synchronised outside the timed region so the launch queue never fills. Each
// configuration makes at least --launches launches (default 100000) after a warm-up; with
// several threads each thread has its own stream and its own timings and they start together.
// The per-launch time of a batch is its time / batch size; the report gives the median, p10
// and p90 over all batches of all threads of the configuration.
//
// APIs: driver = cuLaunchKernel on the kernel's CUfunction (cudaGetFuncBySymbol);
//       runtime = <<<>>> (through the CUDA runtime this binary is linked with).
//
// Output: "pid=<process id>", "gpu: <name>", then one line per configuration:
//   RESULT api=<driver|runtime> threads=<t> launches=<n> batches=<b> batch=<size>
//          median_ns=<x> p10_ns=<x> p90_ns=<x> mean_ns=<x> min_ns=<x> max_ns=<x> wall_s=<x>
// then "expect<TAB><kernel><TAB><launches>" per kernel and "launches=<total>" (every launch
// made, warm-up included), and "kernels: <names>".
// Exit status 0, or 1 after printing "FAIL: <reason>" when a call failed.
//
// Build: nvcc -O2 -std=c++17 -arch=sm_90 -o launch_overhead launch_overhead.cu -lcuda -lpthread
#include <cuda.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

extern "C" __global__ void gsa_bench_empty_driver(void) {}
extern "C" __global__ void gsa_bench_empty_runtime(void) {}

enum api_kind { API_DRIVER, API_RUNTIME };

static CUcontext primary_ctx;
static CUfunction driver_fn;
static std::atomic<long> launches_by_api[2]; // every launch made, warm-up included
static std::atomic<int> failures{0};
static char failure_text[512];
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail_once(const char *fmt, const char *what, int code, const char *name)
{
	failures.fetch_add(1);
	pthread_mutex_lock(&failure_lock);
	if (!failure_text[0])
		snprintf(failure_text, sizeof failure_text, fmt, what, code, name ? name : "?");
	pthread_mutex_unlock(&failure_lock);
}

static void cu_fail(const char *what, CUresult r)
{
	const char *name = NULL;
	cuGetErrorName(r, &name);
	fail_once("%s returned %d (%s)", what, (int)r, name);
}

static void rt_fail(const char *what, cudaError_t e)
{
	fail_once("%s returned %d (%s)", what, (int)e, cudaGetErrorName(e));
}

static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct config {
	api_kind api;
	int threads;
	int batch;
	int batches_per_thread;
	int warmup_batches;
};

struct worker {
	const config *cfg;
	pthread_barrier_t *barrier;
	std::vector<double> per_launch_ns; // one per timed batch
	long launches;
};

// Launches one batch; returns false after the first failed launch.
static inline bool launch_batch(api_kind api, int n, cudaStream_t s)
{
	if (api == API_DRIVER) {
		for (int i = 0; i < n; i++) {
			CUresult r = cuLaunchKernel(driver_fn, 1, 1, 1, 1, 1, 1, 0, (CUstream)s, NULL,
						    NULL);
			if (__builtin_expect(r != CUDA_SUCCESS, 0)) {
				cu_fail("cuLaunchKernel", r);
				return false;
			}
		}
	} else {
		for (int i = 0; i < n; i++)
			gsa_bench_empty_runtime<<<1, 1, 0, s>>>();
		cudaError_t e = cudaGetLastError();
		if (e != cudaSuccess) {
			rt_fail("<<<>>> launch", e);
			return false;
		}
	}
	return true;
}

static void *run_worker(void *arg)
{
	worker *w = (worker *)arg;
	const config *c = w->cfg;
	cudaStream_t s = NULL;
	CUresult r = cuCtxSetCurrent(primary_ctx);
	if (r != CUDA_SUCCESS)
		cu_fail("cuCtxSetCurrent", r);
	cudaError_t e = cudaSetDevice(0);
	if (e != cudaSuccess)
		rt_fail("cudaSetDevice", e);
	if (failures.load() == 0 && (e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)) !=
					    cudaSuccess)
		rt_fail("cudaStreamCreateWithFlags", e);
	bool ok = failures.load() == 0;
	for (int b = 0; ok && b < c->warmup_batches; b++) {
		ok = launch_batch(c->api, c->batch, s);
		w->launches += c->batch;
		if (ok && (e = cudaStreamSynchronize(s)) != cudaSuccess) {
			rt_fail("cudaStreamSynchronize", e);
			ok = false;
		}
	}
	// All threads start their timed batches together (also after a failure, so none waits
	// forever; a failed thread then just skips its batches).
	pthread_barrier_wait(w->barrier);
	w->per_launch_ns.reserve(c->batches_per_thread);
	for (int b = 0; ok && b < c->batches_per_thread; b++) {
		long long t0 = now_ns();
		ok = launch_batch(c->api, c->batch, s);
		long long t1 = now_ns();
		w->launches += c->batch;
		w->per_launch_ns.push_back((double)(t1 - t0) / c->batch);
		if (ok && (e = cudaStreamSynchronize(s)) != cudaSuccess) {
			rt_fail("cudaStreamSynchronize", e);
			ok = false;
		}
	}
	if (s)
		cudaStreamDestroy(s);
	launches_by_api[c->api].fetch_add(w->launches);
	return NULL;
}

static double pct(const std::vector<double> &sorted, double p)
{
	if (sorted.empty())
		return 0.0;
	double idx = p * (double)(sorted.size() - 1);
	size_t lo = (size_t)idx, hi = std::min(lo + 1, sorted.size() - 1);
	double f = idx - (double)lo;
	return sorted[lo] * (1.0 - f) + sorted[hi] * f;
}

static bool run_config(api_kind api, int threads, long min_launches, int batch, int warmup)
{
	config c;
	c.api = api;
	c.threads = threads;
	c.batch = batch;
	long per_thread = (min_launches + threads - 1) / threads;
	c.batches_per_thread = (int)((per_thread + batch - 1) / batch);
	c.warmup_batches = warmup;
	pthread_barrier_t barrier;
	pthread_barrier_init(&barrier, NULL, (unsigned)threads + 1);
	std::vector<worker> w(threads);
	std::vector<pthread_t> tid(threads);
	for (int i = 0; i < threads; i++) {
		w[i].cfg = &c;
		w[i].barrier = &barrier;
		w[i].launches = 0;
		if (pthread_create(&tid[i], NULL, run_worker, &w[i]) != 0) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&barrier); // the timed part starts
	long long t0 = now_ns();
	for (int i = 0; i < threads; i++)
		pthread_join(tid[i], NULL);
	double wall = (double)(now_ns() - t0) / 1e9;
	pthread_barrier_destroy(&barrier);
	if (failures.load())
		return false;
	std::vector<double> all;
	for (int i = 0; i < threads; i++)
		all.insert(all.end(), w[i].per_launch_ns.begin(), w[i].per_launch_ns.end());
	std::sort(all.begin(), all.end());
	double sum = 0;
	for (double v : all)
		sum += v;
	long timed = (long)all.size() * batch;
	printf("RESULT api=%s threads=%d launches=%ld batches=%zu batch=%d median_ns=%.1f "
	       "p10_ns=%.1f p90_ns=%.1f mean_ns=%.1f min_ns=%.1f max_ns=%.1f wall_s=%.3f\n",
	       api == API_DRIVER ? "driver" : "runtime", threads, timed, all.size(), batch,
	       pct(all, 0.5), pct(all, 0.1), pct(all, 0.9), all.empty() ? 0.0 : sum / all.size(),
	       all.empty() ? 0.0 : all.front(), all.empty() ? 0.0 : all.back(), wall);
	fflush(stdout);
	return true;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: launch_overhead [--launches N] [--batch B] [--warmup W] [--threads 1,8]\n"
		"                       [--api driver,runtime]\n"
		"  N: launches per configuration after warm-up (default 100000)\n"
		"  B: launches per timed batch (default 256)\n"
		"  W: warm-up batches per thread (default 20)\n");
	exit(2);
}

static std::vector<std::string> split(const char *s)
{
	std::vector<std::string> v;
	std::string cur;
	for (; *s; s++) {
		if (*s == ',') {
			if (!cur.empty())
				v.push_back(cur);
			cur.clear();
		} else {
			cur += *s;
		}
	}
	if (!cur.empty())
		v.push_back(cur);
	return v;
}

int main(int argc, char **argv)
{
	long launches = 100000;
	int batch = 256, warmup = 20;
	std::vector<std::string> threads_list = {"1", "8"}, api_list = {"driver", "runtime"};
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--launches"))
			launches = atol(argv[++i]);
		else if (!strcmp(argv[i], "--batch"))
			batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--warmup"))
			warmup = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads"))
			threads_list = split(argv[++i]);
		else if (!strcmp(argv[i], "--api"))
			api_list = split(argv[++i]);
		else
			usage();
	}
	if (launches <= 0 || batch <= 0 || warmup < 0)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("pid=%d\n", (int)getpid());

	cudaError_t e = cudaSetDevice(0);
	if (e == cudaSuccess)
		e = cudaFree(0);
	if (e != cudaSuccess) {
		printf("FAIL: CUDA runtime initialisation: %s (%s)\n", cudaGetErrorName(e),
		       cudaGetErrorString(e));
		return 1;
	}
	CUresult r = cuCtxGetCurrent(&primary_ctx);
	if (r != CUDA_SUCCESS || !primary_ctx) {
		printf("FAIL: cuCtxGetCurrent returned %d or no context\n", (int)r);
		return 1;
	}
	cudaFunction_t f = NULL;
	e = cudaGetFuncBySymbol(&f, (const void *)gsa_bench_empty_driver);
	if (e != cudaSuccess || !f) {
		printf("FAIL: cudaGetFuncBySymbol: %s\n", cudaGetErrorName(e));
		return 1;
	}
	driver_fn = (CUfunction)f;
	cudaDeviceProp prop;
	if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
		printf("gpu: %s\n", prop.name);

	for (const std::string &a : api_list) {
		api_kind api;
		if (a == "driver")
			api = API_DRIVER;
		else if (a == "runtime")
			api = API_RUNTIME;
		else
			usage();
		for (const std::string &t : threads_list) {
			int threads = atoi(t.c_str());
			if (threads <= 0 || threads > 256)
				usage();
			if (!run_config(api, threads, launches, batch, warmup)) {
				printf("FAIL: %s\n", failure_text);
				return 1;
			}
		}
	}
	long nd = launches_by_api[API_DRIVER].load(), nr = launches_by_api[API_RUNTIME].load();
	if (nd)
		printf("expect\tgsa_bench_empty_driver\t%ld\n", nd);
	if (nr)
		printf("expect\tgsa_bench_empty_runtime\t%ld\n", nr);
	printf("launches=%ld\n", nd + nr);
	printf("kernels: gsa_bench_empty_driver gsa_bench_empty_runtime\n");
	return 0;
}

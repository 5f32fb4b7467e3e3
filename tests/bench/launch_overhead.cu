// launch_overhead: the host time that libgsa_preload.so adds to one kernel launch, measured
// inside ONE process against libcuda's own entry point.
//
// Two cuLaunchKernel entry points are used side by side, in the same process and thread:
//   hooked: the call a program makes, cuLaunchKernel(...) through this executable's PLT. Under
//           LD_PRELOAD=libgsa_preload.so that is the library's wrapper; without it, libcuda's.
//   raw:    libcuda.so.1's own cuLaunchKernel, found without the dynamic linker or dlsym (the
//           library interposes dlsym): dl_iterate_phdr gives libcuda's load address, and its
//           dynamic section (DT_SYMTAB, DT_STRTAB, DT_GNU_HASH or DT_HASH) its .dynsym, which
//           is scanned for the name. What the PLT resolves to is read from the executable's own
//           GOT slot for cuLaunchKernel (its JUMP_SLOT/GLOB_DAT relocation). The two addresses
//           must differ under the library and be equal without it (printed: "RESOLVE ...").
//
// Timing. Per thread, a stream of its own; every "hold" first enqueues a kernel that spins on
// a host-mapped flag (launched through the raw pointer, so the library never sees it), then
// makes 4 timed batches of --batch launches of an empty kernel, in the order hooked, raw, raw,
// hooked (ABBA; BAAB on every other hold, so both paths take every position equally often).
// The launches only queue behind the spinning kernel, so the launch queue never drains during a
// batch and never fills (4 x batch pending launches per thread, at most --max-pending (512) in
// all: the batch is cut to fit, e.g. to 16 at 8 threads); after the batches the flag is
// released and the stream synchronised, outside the timed part. Batches are timed with
// clock_gettime(CLOCK_MONOTONIC). A hold gives one paired difference per thread:
//     ((hooked1 + hooked2) - (raw1 + raw2)) / (2 x batch)   ns per launch.
// The spinning kernel gives up after --hold-timeout-ms; a hold where it did (the queue filled
// or the host stalled) is discarded and the batch halved. --no-hold synchronises after each
// batch instead (no spinning kernel).
// Threads (--threads): each is pinned to its own CPU (sched_setaffinity; GPU-local CPUs and one
// logical CPU per core first) and all run in lockstep: a barrier before every batch, so all
// threads use the same path at the same time. The paired difference of one hold is the mean
// over the threads of their paired differences.
// APIs (--api): driver: hooked = cuLaunchKernel through the PLT, raw = libcuda's; the added time
// is hooked - raw. runtime: hooked = <<<>>> (the CUDA runtime calls the cuLaunchKernel pointer
// it got from cuGetProcAddress, which the library wraps), raw = libcuda's cuLaunchKernel; the
// difference (runtime - raw driver) is compared between processes with and without the library.
// Statistics per configuration: median, p10, p90 of the per-launch time of the batches of each
// path (all threads), and the median of the paired per-hold differences with a 95% confidence
// interval from order statistics (distribution-free; holds taken as independent).
//
// Output (stdout): "pid=<pid>", "gpu: <name>", "RESOLVE ..." and "cpus ..." lines, then per
// configuration one line
//   RESULT api=<driver|runtime> threads=<t> batch=<b> holds=<n> launches_per_path=<n>
//          hooked_median_ns=.. hooked_p10_ns=.. hooked_p90_ns=.. raw_median_ns=.. raw_p10_ns=..
//          raw_p90_ns=.. added_ns=.. added_ci_low=.. added_ci_high=.. timeouts=.. wall_s=..
// then "expect<TAB><kernel><TAB><launches>" per kernel as the library must count them (the
// hooked launches only; the raw ones bypass it, so gsa_bench_hold must be counted 0 times and
// gsa_bench_empty_driver exactly as often as it was launched through the PLT) and
// "launches=<total of those>". --dump FILE writes every timed batch (tab-separated: api threads
// hold thread pos path batch ns) for tests/gpu/check.py bench-report.
// Exit status 0, or 1 after printing "FAIL: <reason>".
//
// Other modes (no GPU needed): --resolve-only prints the two addresses and exits (a lazily
// bound GOT slot is not read: then the first definition in load order is printed);
// --selftest-elf LIB dlopens LIB and checks the .dynsym look-up against dlsym for every
// function symbol LIB defines; --dry-run ADDED_NS runs the harness and its statistics with
// busy loops for launches, the hooked path ADDED_NS longer.
//
// Build: nvcc -O2 -std=c++17 -arch=sm_90 -o launch_overhead launch_overhead.cu -lcuda -lpthread
#include <cuda.h>
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

// ------------------------------------------------------------------------------- kernels

extern "C" __global__ void gsa_bench_empty_driver(void) {}
extern "C" __global__ void gsa_bench_empty_runtime(void) {}

// Spins until *flag reaches seq (the host releases it), or gives up after timeout_ns and
// writes seq into *timed_out.
extern "C" __global__ void gsa_bench_hold(const volatile unsigned *flag, unsigned seq,
					  volatile unsigned *timed_out,
					  unsigned long long timeout_ns)
{
	unsigned long long t0, t;
	asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
	while ((int)(*flag - seq) < 0) {
		asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
		if (t - t0 > timeout_ns) {
			*timed_out = seq;
			__threadfence_system();
			return;
		}
		__nanosleep(500);
	}
}

// ------------------------------------------------------------------------------- ELF look-up

#if __ELF_NATIVE_CLASS == 64
#define SYM_TYPE(i) ELF64_ST_TYPE(i)
#define REL_SYM(i) ELF64_R_SYM(i)
#define REL_TYPE(i) ELF64_R_TYPE(i)
#else
#define SYM_TYPE(i) ELF32_ST_TYPE(i)
#define REL_SYM(i) ELF32_R_SYM(i)
#define REL_TYPE(i) ELF32_R_TYPE(i)
#endif

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned,
			      unsigned, unsigned, CUstream, void **, void **);

struct loaded_object {
	std::string name;
	ElfW(Addr) base;
	const ElfW(Phdr) *phdr;
	ElfW(Half) phnum;
};

static int collect_object(struct dl_phdr_info *info, size_t, void *data)
{
	std::vector<loaded_object> *v = (std::vector<loaded_object> *)data;
	loaded_object o;
	o.name = info->dlpi_name ? info->dlpi_name : "";
	o.base = info->dlpi_addr;
	o.phdr = info->dlpi_phdr;
	o.phnum = info->dlpi_phnum;
	v->push_back(o);
	return 0;
}

static std::vector<loaded_object> loaded_objects(void)
{
	std::vector<loaded_object> v;
	dl_iterate_phdr(collect_object, &v);
	return v;
}

static bool object_contains(const loaded_object &o, const void *addr)
{
	ElfW(Addr) a = (ElfW(Addr))addr;
	for (ElfW(Half) i = 0; i < o.phnum; i++) {
		const ElfW(Phdr) &p = o.phdr[i];
		if (p.p_type == PT_LOAD && a >= o.base + p.p_vaddr &&
		    a < o.base + p.p_vaddr + p.p_memsz)
			return true;
	}
	return false;
}

// The dynamic section of one loaded object, as far as symbols and relocations go.
struct dyn_tables {
	ElfW(Addr) base = 0;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	size_t strsz = 0;
	const uint32_t *hash = NULL;
	const uint32_t *gnu_hash = NULL;
	const ElfW(Versym) *versym = NULL;
	ElfW(Addr) jmprel = 0;
	size_t pltrelsz = 0;
	long pltrel = 0;
	ElfW(Addr) rela = 0;
	size_t relasz = 0;
	ElfW(Addr) rel = 0;
	size_t relsz = 0;
	size_t nsyms = 0;
	const char *nsyms_from = "none";
	std::string note;
};

// glibc relocates the address entries of a loaded object's dynamic section in place on most
// targets (not all: e.g. the vDSO's, or where .dynamic is read-only). An entry below the load
// address is an unrelocated offset.
static ElfW(Addr) dyn_addr(ElfW(Addr) base, ElfW(Addr) v)
{
	return v < base ? v + base : v;
}

static size_t gnu_hash_symbol_count(const uint32_t *h)
{
	uint32_t nbuckets = h[0], symoffset = h[1], bloom_size = h[2];
	const ElfW(Addr) *bloom = (const ElfW(Addr) *)(h + 4);
	const uint32_t *buckets = (const uint32_t *)(bloom + bloom_size);
	const uint32_t *chain = buckets + nbuckets;
	uint32_t last = 0;
	for (uint32_t b = 0; b < nbuckets; b++)
		if (buckets[b] > last)
			last = buckets[b];
	if (last < symoffset)
		return symoffset; // no hashed symbol at all
	while (!(chain[last - symoffset] & 1)) // the highest chain runs to its end bit
		last++;
	return (size_t)last + 1;
}

static bool read_dyn_tables(const loaded_object &o, dyn_tables *t, std::string *err)
{
	const ElfW(Dyn) *dyn = NULL;
	for (ElfW(Half) i = 0; i < o.phnum; i++)
		if (o.phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(o.base + o.phdr[i].p_vaddr);
	if (!dyn) {
		*err = "no PT_DYNAMIC segment in " + o.name;
		return false;
	}
	t->base = o.base;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		ElfW(Addr) p = dyn->d_un.d_ptr;
		switch (dyn->d_tag) {
		case DT_SYMTAB: t->symtab = (const ElfW(Sym) *)dyn_addr(o.base, p); break;
		case DT_STRTAB: t->strtab = (const char *)dyn_addr(o.base, p); break;
		case DT_STRSZ: t->strsz = dyn->d_un.d_val; break;
		case DT_HASH: t->hash = (const uint32_t *)dyn_addr(o.base, p); break;
		case DT_GNU_HASH: t->gnu_hash = (const uint32_t *)dyn_addr(o.base, p); break;
		case DT_VERSYM: t->versym = (const ElfW(Versym) *)dyn_addr(o.base, p); break;
		case DT_JMPREL: t->jmprel = dyn_addr(o.base, p); break;
		case DT_PLTRELSZ: t->pltrelsz = dyn->d_un.d_val; break;
		case DT_PLTREL: t->pltrel = (long)dyn->d_un.d_val; break;
		case DT_RELA: t->rela = dyn_addr(o.base, p); break;
		case DT_RELASZ: t->relasz = dyn->d_un.d_val; break;
		case DT_REL: t->rel = dyn_addr(o.base, p); break;
		case DT_RELSZ: t->relsz = dyn->d_un.d_val; break;
		default: break;
		}
	}
	if (!t->symtab || !t->strtab) {
		*err = "no DT_SYMTAB/DT_STRTAB in " + o.name;
		return false;
	}
	if (t->gnu_hash) {
		t->nsyms = gnu_hash_symbol_count(t->gnu_hash);
		t->nsyms_from = "DT_GNU_HASH";
		if (t->hash && t->hash[1] != t->nsyms)
			t->note = "DT_HASH counts " + std::to_string(t->hash[1]) +
				  " symbols, DT_GNU_HASH " + std::to_string(t->nsyms);
		if (t->hash && t->hash[1] > t->nsyms)
			t->nsyms = t->hash[1];
	} else if (t->hash) {
		t->nsyms = t->hash[1];
		t->nsyms_from = "DT_HASH";
	} else {
		*err = "neither DT_GNU_HASH nor DT_HASH in " + o.name;
		return false;
	}
	return true;
}

static const char *sym_name(const dyn_tables &t, const ElfW(Sym) &s)
{
	if (t.strsz && s.st_name >= t.strsz)
		return "";
	return t.strtab + s.st_name;
}

// The address of the function NAME that the object defines (its default version when
// versioned), or NULL. A scan of all its .dynsym entries (the count from the hash table).
static void *find_defined_function(const dyn_tables &t, const char *name, std::string *why)
{
	void *hidden_hit = NULL;
	for (size_t i = 1; i < t.nsyms; i++) {
		const ElfW(Sym) &s = t.symtab[i];
		if (s.st_shndx == SHN_UNDEF || s.st_value == 0)
			continue;
		if (strcmp(sym_name(t, s), name) != 0)
			continue;
		int type = SYM_TYPE(s.st_info);
		if (type == STT_GNU_IFUNC) {
			if (why)
				*why = std::string(name) + " is an IFUNC (its address is a resolver)";
			return NULL;
		}
		if (type != STT_FUNC)
			continue;
		void *addr = (void *)(t.base + s.st_value);
		if (t.versym && (t.versym[i] & 0x8000)) { // a hidden (non-default) version
			if (!hidden_hit)
				hidden_hit = addr;
			continue;
		}
		return addr;
	}
	// Only in a hidden (non-default) version: not what a call by name binds to (dlsym
	// returns NULL for it too).
	if (hidden_hit && why)
		*why = std::string(name) + " only in a non-default symbol version";
	return NULL;
}

// The value of the executable's relocation slot (GOT) for symbol NAME: what its PLT calls jump
// to once bound. Prefers the PLT's JUMP_SLOT over a GLOB_DAT.
static bool find_got_slot(const dyn_tables &t, const char *name, void **value, ElfW(Addr) *slot,
			  const char **kind)
{
	bool found = false;
	struct table {
		ElfW(Addr) at;
		size_t size;
		bool rela;
	} tabs[3] = {{t.jmprel, t.pltrelsz, t.pltrel != DT_REL},
		     {t.rela, t.relasz, true},
		     {t.rel, t.relsz, false}};
	for (int k = 0; k < 3; k++) {
		if (!tabs[k].at || !tabs[k].size)
			continue;
		size_t ent = tabs[k].rela ? sizeof(ElfW(Rela)) : sizeof(ElfW(Rel));
		for (size_t off = 0; off + ent <= tabs[k].size; off += ent) {
			const ElfW(Rel) *r = (const ElfW(Rel) *)(tabs[k].at + off); // r_offset, r_info
			size_t si = REL_SYM(r->r_info);
			unsigned type = (unsigned)REL_TYPE(r->r_info);
			if (!si || si >= t.nsyms || strcmp(sym_name(t, t.symtab[si]), name) != 0)
				continue;
#if defined(__x86_64__)
			bool jump = type == R_X86_64_JUMP_SLOT, glob = type == R_X86_64_GLOB_DAT;
#elif defined(__aarch64__)
			bool jump = type == R_AARCH64_JUMP_SLOT, glob = type == R_AARCH64_GLOB_DAT;
#else
			bool jump = false, glob = true;
#endif
			if (!jump && !glob)
				continue;
			if (!found || jump) {
				*slot = t.base + r->r_offset;
				*value = *(void *const *)*slot;
				*kind = jump ? "JUMP_SLOT" : "GLOB_DAT";
				found = true;
			}
			if (jump)
				return true;
		}
	}
	return found;
}

struct resolution {
	bool ok = false;
	std::string error;
	std::string libcuda; // path of the object the raw pointer comes from
	ElfW(Addr) libcuda_base = 0;
	int libcuda_objects = 0;
	const char *nsyms_from = "";
	size_t nsyms = 0;
	void *raw = NULL;      // libcuda.so.1's cuLaunchKernel
	void *raw_ptsz = NULL; // libcuda.so.1's cuLaunchKernel_ptsz (printed only)
	void *hooked = NULL;   // what this executable's call to cuLaunchKernel reaches
	std::string hooked_how;
	std::string hooked_object;
	std::string note;
};

static std::string hex(const void *p)
{
	char b[32];
	snprintf(b, sizeof b, "%#lx", (unsigned long)(uintptr_t)p);
	return b;
}

static std::string object_of(const std::vector<loaded_object> &objs, const void *p)
{
	for (const loaded_object &o : objs)
		if (object_contains(o, p))
			return o.name.empty() ? std::string("(the executable)") : o.name;
	return "(no loaded object)";
}

static void resolution_anchor(void) {}

static resolution resolve_launch_pointers(void)
{
	resolution res;
	std::vector<loaded_object> objs = loaded_objects();
	// (b) raw: the first object named like libcuda.so that defines cuLaunchKernel.
	for (const loaded_object &o : objs) {
		const char *base = strrchr(o.name.c_str(), '/');
		base = base ? base + 1 : o.name.c_str();
		if (!strstr(base, "libcuda.so"))
			continue;
		res.libcuda_objects++;
		if (res.raw)
			continue;
		dyn_tables t;
		std::string err, why;
		if (!read_dyn_tables(o, &t, &err)) {
			res.note += err + "; ";
			continue;
		}
		void *p = find_defined_function(t, "cuLaunchKernel", &why);
		if (!why.empty())
			res.note += o.name + ": " + why + "; ";
		if (!t.note.empty())
			res.note += o.name + ": " + t.note + "; ";
		if (!p)
			continue;
		res.raw = p;
		res.raw_ptsz = find_defined_function(t, "cuLaunchKernel_ptsz", NULL);
		res.libcuda = o.name;
		res.libcuda_base = o.base;
		res.nsyms = t.nsyms;
		res.nsyms_from = t.nsyms_from;
	}
	if (!res.raw) {
		res.error = res.libcuda_objects
				    ? "no libcuda.so object defines cuLaunchKernel in its .dynsym"
				    : "libcuda.so.1 is not loaded (no object named libcuda.so*)";
		return res;
	}
	// (a) hooked: the executable's GOT slot for cuLaunchKernel.
	for (const loaded_object &o : objs) {
		if (!object_contains(o, (const void *)&resolution_anchor))
			continue;
		dyn_tables t;
		std::string err;
		void *value = NULL;
		ElfW(Addr) slot = 0;
		const char *kind = "";
		if (read_dyn_tables(o, &t, &err) && find_got_slot(t, "cuLaunchKernel", &value, &slot,
								  &kind)) {
			if (object_contains(o, value)) {
				// A lazy slot not bound yet points back into the executable's PLT.
				res.note += std::string("the GOT ") + kind + " slot " +
					    hex((void *)slot) + " is not bound yet (" + hex(value) +
					    ", lazy binding); ";
			} else {
				res.hooked = value;
				res.hooked_how = std::string("GOT ") + kind + " slot " +
						 hex((void *)slot) + " of the executable";
			}
		} else {
			res.note += "executable: " + (err.empty() ? "no relocation for cuLaunchKernel"
								  : err) + "; ";
		}
		break;
	}
	if (!res.hooked) {
		// Fallback: the first definition in load order (the global scope's search order).
		for (const loaded_object &o : objs) {
			dyn_tables t;
			std::string err;
			if (!read_dyn_tables(o, &t, &err))
				continue;
			void *p = find_defined_function(t, "cuLaunchKernel", NULL);
			if (p) {
				res.hooked = p;
				res.hooked_how = "first definition in load order (GOT slot not used)";
				break;
			}
		}
	}
	if (!res.hooked) {
		res.error = "cannot tell what this executable's cuLaunchKernel calls reach";
		return res;
	}
	res.hooked_object = object_of(objs, res.hooked);
	res.ok = true;
	return res;
}

static void print_resolution(const resolution &r)
{
	const char *pre = getenv("LD_PRELOAD");
	printf("RESOLVE ok=%d raw=%s hooked=%s same=%d\n", r.ok ? 1 : 0, hex(r.raw).c_str(),
	       hex(r.hooked).c_str(), r.ok && r.raw == r.hooked ? 1 : 0);
	printf("  LD_PRELOAD: %s\n", pre && *pre ? pre : "(unset)");
	printf("  raw cuLaunchKernel %s (cuLaunchKernel_ptsz %s): .dynsym of %s (base %s, %zu "
	       "symbols counted from %s; %d object(s) named libcuda.so*)\n",
	       hex(r.raw).c_str(), hex(r.raw_ptsz).c_str(), r.libcuda.c_str(),
	       hex((void *)r.libcuda_base).c_str(), r.nsyms, r.nsyms_from, r.libcuda_objects);
	printf("  hooked cuLaunchKernel %s: %s, in %s\n", hex(r.hooked).c_str(),
	       r.hooked_how.c_str(), r.hooked_object.c_str());
	if (!r.note.empty())
		printf("  note: %s\n", r.note.c_str());
	if (!r.ok)
		printf("  error: %s\n", r.error.c_str());
}

// --selftest-elf LIB: every function LIB defines, looked up through its .dynsym as above,
// against dlsym's answer (run it without LD_PRELOAD: the library interposes dlsym).
static int selftest_elf(const char *lib)
{
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		printf("FAIL: dlopen %s: %s\n", lib, dlerror());
		return 1;
	}
	struct link_map *lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm) {
		printf("FAIL: dlinfo: %s\n", dlerror());
		return 1;
	}
	std::vector<loaded_object> objs = loaded_objects();
	const loaded_object *obj = NULL;
	for (const loaded_object &o : objs)
		if (o.base == lm->l_addr && !o.name.empty())
			obj = &o;
	if (!obj) {
		printf("FAIL: %s (base %s) not among dl_iterate_phdr's objects\n", lib,
		       hex((void *)lm->l_addr).c_str());
		return 1;
	}
	dyn_tables t;
	std::string err;
	if (!read_dyn_tables(*obj, &t, &err)) {
		printf("FAIL: %s\n", err.c_str());
		return 1;
	}
	size_t checked = 0, bad = 0, defined = 0, ifuncs = 0;
	for (size_t i = 1; i < t.nsyms; i++) {
		const ElfW(Sym) &s = t.symtab[i];
		if (s.st_shndx == SHN_UNDEF || SYM_TYPE(s.st_info) != STT_FUNC)
			continue;
		defined++;
		const char *name = sym_name(t, s);
		std::string why;
		void *mine = find_defined_function(t, name, &why);
		if (why.find("IFUNC") != std::string::npos) {
			ifuncs++; // dlsym runs the resolver; the look-up above declines those
			continue;
		}
		void *theirs = dlsym(h, name);
		checked++;
		if (mine != theirs) {
			if (bad < 10)
				printf("  mismatch %s: dynsym %s, dlsym %s\n", name, hex(mine).c_str(),
				       hex(theirs).c_str());
			bad++;
		}
	}
	void *mine = find_defined_function(t, "cuLaunchKernel", NULL);
	void *theirs = dlsym(h, "cuLaunchKernel");
	printf("%s: %zu symbols (counted from %s), %zu functions defined, %zu checked, %zu "
	       "IFUNC names skipped, %zu differ; cuLaunchKernel dynsym %s dlsym %s%s%s\n",
	       obj->name.c_str(), t.nsyms, t.nsyms_from, defined, checked, ifuncs, bad,
	       hex(mine).c_str(), hex(theirs).c_str(), t.note.empty() ? "" : "; note: ",
	       t.note.c_str());
	if (bad || !checked || (theirs && mine != theirs)) {
		printf("FAIL: the .dynsym look-up disagrees with dlsym\n");
		return 1;
	}
	printf("PASS: the .dynsym look-up agrees with dlsym for all %zu functions\n", checked);
	return 0;
}

// ------------------------------------------------------------------------------- benchmark

enum path_kind { PATH_PLT, PATH_RAW, PATH_RUNTIME };

static CUcontext primary_ctx;
static CUfunction fn_driver, fn_hold;
static launch_fn raw_launch;
static std::atomic<long> n_plt{0}, n_runtime{0}, n_raw{0}; // launches made, warm-up included
static std::atomic<int> failures{0};
static char failure_text[512];
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail_msg(const char *what, int code, const char *name)
{
	failures.fetch_add(1);
	pthread_mutex_lock(&failure_lock);
	if (!failure_text[0])
		snprintf(failure_text, sizeof failure_text, "%s returned %d (%s)", what, code,
			 name ? name : "?");
	pthread_mutex_unlock(&failure_lock);
}

static void cu_fail(const char *what, CUresult r)
{
	const char *name = NULL;
	cuGetErrorName(r, &name);
	fail_msg(what, (int)r, name);
}

static void rt_fail(const char *what, cudaError_t e)
{
	fail_msg(what, (int)e, cudaGetErrorName(e));
}

static inline long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	asm volatile("yield");
#endif
}

// A barrier for threads pinned to CPUs of their own: spins, then yields (when CPUs are shared).
struct spin_barrier {
	std::atomic<unsigned> count{0};
	std::atomic<unsigned> gen{0};
	unsigned n = 1;
	void wait()
	{
		if (n <= 1)
			return;
		unsigned g = gen.load(std::memory_order_acquire);
		if (count.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
			count.store(0, std::memory_order_relaxed);
			gen.fetch_add(1, std::memory_order_release);
			return;
		}
		for (unsigned spins = 0; gen.load(std::memory_order_acquire) == g; spins++) {
			if (spins < 20000)
				cpu_relax();
			else
				sched_yield();
		}
	}
};

// --dry-run: no CUDA at all; a "launch" is a busy loop, the hooked path's longer by the given
// nanoseconds. Checks the harness and its statistics on a machine without a GPU.
static bool dry_run;
static double dry_added_ns, dry_iters_per_ns;
static volatile unsigned long dry_sink;

static inline void dry_spin(double ns)
{
	unsigned long k = (unsigned long)(ns * dry_iters_per_ns);
	for (unsigned long i = 0; i < k; i++)
		dry_sink = dry_sink + i;
}

static void dry_calibrate(void)
{
	dry_iters_per_ns = 1.0;
	long long t0 = now_ns();
	dry_spin(20e6);
	dry_iters_per_ns = 20e6 / (double)(now_ns() - t0);
}

static bool dry_batch(path_kind p, int n)
{
	for (int i = 0; i < n; i++)
		dry_spin(p == PATH_RAW ? 2000.0 : p == PATH_PLT ? 2000.0 + dry_added_ns
							   : 2600.0 + dry_added_ns);
	return true;
}

// One launch batch on stream s; false after the first failed launch.
static inline bool launch_batch(path_kind p, int n, cudaStream_t s)
{
	CUstream cs = (CUstream)s;
	if (__builtin_expect(dry_run, 0))
		return dry_batch(p, n);
	switch (p) {
	case PATH_PLT:
		for (int i = 0; i < n; i++) {
			CUresult r = cuLaunchKernel(fn_driver, 1, 1, 1, 1, 1, 1, 0, cs, NULL, NULL);
			if (__builtin_expect(r != CUDA_SUCCESS, 0)) {
				cu_fail("cuLaunchKernel (through the PLT)", r);
				return false;
			}
		}
		return true;
	case PATH_RAW:
		for (int i = 0; i < n; i++) {
			CUresult r = raw_launch(fn_driver, 1, 1, 1, 1, 1, 1, 0, cs, NULL, NULL);
			if (__builtin_expect(r != CUDA_SUCCESS, 0)) {
				cu_fail("libcuda's cuLaunchKernel (raw)", r);
				return false;
			}
		}
		return true;
	case PATH_RUNTIME:
		for (int i = 0; i < n; i++)
			gsa_bench_empty_runtime<<<1, 1, 0, s>>>();
		return true;
	}
	return false;
}

static void count_launches(path_kind p, long n)
{
	(p == PATH_PLT ? n_plt : p == PATH_RUNTIME ? n_runtime : n_raw).fetch_add(n);
}

// Host-mapped flags of the spinning kernel, one cache line pair per thread.
struct hold_slot {
	volatile unsigned flag;
	char pad1[60];
	volatile unsigned timed_out;
	char pad2[60];
};
static hold_slot *hold_host;
static hold_slot *hold_dev;
static unsigned hold_seq[256];
static const int MAX_THREADS = 256;

struct config {
	const char *api;
	path_kind hooked;
	int threads;
	long launches_per_path; // all threads together
	int batch;
	int warmup_holds;
	bool hold;
	unsigned long long hold_timeout_ns;
	double max_seconds;
};

struct batch_record {
	int hold;
	int batch;
	unsigned char hooked_at[4];
	long long ns[4];
};

struct shared_state {
	const config *cfg;
	spin_barrier bar;
	// Decided by thread 0 between two barriers, read by all.
	bool stop = false, record = false;
	int batch = 0, order = 0, hold_index = 0;
	int prev_batch_for_count = 0; // the batch size the previous hold used
	// Set by any thread during a hold.
	std::atomic<int> timeout_seen{0};
	// Thread 0's bookkeeping.
	std::vector<char> hold_valid;
	long recorded_per_thread = 0; // launches per path per thread in valid holds
	int timeouts = 0, discarded = 0;
	bool capped = false;
	long long t_start = 0;
	std::string stop_reason;
};

struct worker {
	shared_state *sh;
	int index;
	int cpu;
	std::vector<batch_record> rec;
};

// The order of one hold: ABBA (hooked first) or BAAB.
static inline bool hooked_at(int order, int pos)
{
	bool first = pos == 0 || pos == 3;
	return order == 0 ? first : !first;
}

// Thread 0, with every thread between the two barriers of the hold's start.
static void decide(shared_state *sh, int h)
{
	const config *c = sh->cfg;
	if (h > 0) {
		bool valid = sh->record;
		if (sh->timeout_seen.load()) {
			sh->timeouts++;
			valid = false;
			sh->timeout_seen.store(0);
			if (sh->batch > 1)
				sh->batch /= 2;
		}
		if (sh->record && !valid)
			sh->discarded++;
		sh->hold_valid.push_back(valid ? 1 : 0);
		if (valid)
			sh->recorded_per_thread += 2L * sh->prev_batch_for_count;
	}
	if (h == 0)
		sh->t_start = now_ns();
	sh->hold_index = h;
	sh->order = h & 1;
	sh->record = h >= c->warmup_holds;
	double elapsed = (double)(now_ns() - sh->t_start) / 1e9;
	if (failures.load()) {
		sh->stop = true;
		sh->stop_reason = "a call failed";
	} else if (sh->recorded_per_thread * c->threads >= c->launches_per_path) {
		sh->stop = true;
	} else if (sh->timeouts > 12) {
		sh->stop = true;
		fail_msg("the spinning hold kernel kept timing out (the launch queue filled even "
			 "at small batches?)",
			 sh->timeouts, "timeouts");
	} else if (elapsed > c->max_seconds && sh->recorded_per_thread > 0) {
		sh->stop = true;
		sh->capped = true;
	}
	sh->prev_batch_for_count = sh->batch;
}

static void pin_to(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof set, &set); // best effort: printed CPUs are the request
}

static void *worker_main(void *arg)
{
	worker *w = (worker *)arg;
	shared_state *sh = w->sh;
	const config *c = sh->cfg;
	pin_to(w->cpu);
	cudaStream_t s = NULL;
	CUresult r = CUDA_SUCCESS;
	cudaError_t e = cudaSuccess;
	if (!dry_run) {
		if ((r = cuCtxSetCurrent(primary_ctx)) != CUDA_SUCCESS)
			cu_fail("cuCtxSetCurrent", r);
		if ((e = cudaSetDevice(0)) != cudaSuccess)
			rt_fail("cudaSetDevice", e);
		if (!failures.load() &&
		    (e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)) != cudaSuccess)
			rt_fail("cudaStreamCreateWithFlags", e);
	}
	hold_slot *slot_host = &hold_host[w->index];
	hold_slot *slot_dev = &hold_dev[w->index];
	bool ok = !failures.load();
	for (int h = 0;; h++) {
		sh->bar.wait();
		if (w->index == 0)
			decide(sh, h);
		sh->bar.wait();
		if (sh->stop)
			break;
		int n = sh->batch, order = sh->order;
		bool rec = sh->record;
		unsigned seq = 0;
		if (c->hold && ok) {
			seq = ++hold_seq[w->index];
			const volatile unsigned *flag = &slot_dev->flag;
			volatile unsigned *to = &slot_dev->timed_out;
			unsigned long long tmo = c->hold_timeout_ns;
			void *args[] = {(void *)&flag, (void *)&seq, (void *)&to, (void *)&tmo};
			r = raw_launch(fn_hold, 1, 1, 1, 1, 1, 1, 0, (CUstream)s, args, NULL);
			if (r != CUDA_SUCCESS) {
				cu_fail("cuLaunchKernel of the hold kernel (raw)", r);
				ok = false;
			}
		}
		batch_record br;
		br.hold = sh->hold_index;
		br.batch = n;
		for (int q = 0; q < 4; q++) {
			path_kind p = hooked_at(order, q) ? c->hooked : PATH_RAW;
			br.hooked_at[q] = hooked_at(order, q);
			sh->bar.wait();
			long long t0 = now_ns();
			if (ok)
				ok = launch_batch(p, n, s);
			long long t1 = now_ns();
			br.ns[q] = t1 - t0;
			count_launches(p, n);
		}
		if (c->hold && seq) {
			slot_host->flag = seq; // release the hold kernel
			__sync_synchronize();
		}
		if (ok && !dry_run && c->hooked == PATH_RUNTIME &&
		    (e = cudaGetLastError()) != cudaSuccess) {
			rt_fail("<<<>>> launch", e);
			ok = false;
		}
		if (s && (e = cudaStreamSynchronize(s)) != cudaSuccess && ok) {
			rt_fail("cudaStreamSynchronize", e);
			ok = false;
		}
		if (c->hold && ok && slot_host->timed_out == seq)
			sh->timeout_seen.store(1);
		if (rec && ok)
			w->rec.push_back(br);
	}
	if (s)
		cudaStreamDestroy(s);
	return NULL;
}

// ---- statistics

static double pct(const std::vector<double> &sorted, double p)
{
	if (sorted.empty())
		return NAN;
	double idx = p * (double)(sorted.size() - 1);
	size_t lo = (size_t)idx, hi = std::min(lo + 1, sorted.size() - 1);
	double f = idx - (double)lo;
	return sorted[lo] * (1.0 - f) + sorted[hi] * f;
}

// 95% confidence interval of the median from order statistics (ranks n/2 -+ 0.98 sqrt(n)).
static void median_ci(const std::vector<double> &sorted, double *lo, double *hi)
{
	size_t n = sorted.size();
	if (n == 0) {
		*lo = *hi = NAN;
		return;
	}
	double half = 0.98 * sqrt((double)n);
	long l = (long)floor((double)n / 2.0 - half) - 1;          // 0-based
	long u = (long)ceil((double)n / 2.0 + 1.0 + half) - 1;     // 0-based
	l = std::max(0L, l);
	u = std::min((long)n - 1, u);
	*lo = sorted[l];
	*hi = sorted[u];
}

// ---- CPUs

static std::vector<int> parse_cpulist(const char *s)
{
	std::vector<int> v;
	while (s && *s) {
		char *end;
		long a = strtol(s, &end, 10);
		if (end == s)
			break;
		long b = a;
		s = end;
		if (*s == '-') {
			b = strtol(s + 1, &end, 10);
			s = end;
		}
		for (long i = a; i <= b && i < CPU_SETSIZE; i++)
			v.push_back((int)i);
		while (*s == ',' || *s == '\n' || *s == ' ')
			s++;
	}
	return v;
}

static std::string read_small_file(const std::string &path)
{
	FILE *f = fopen(path.c_str(), "r");
	if (!f)
		return "";
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static std::vector<int> cpu_order;
static std::string cpu_order_note;

// The process's allowed CPUs, best first: GPU-local before others, one logical CPU per core
// before SMT siblings, CPU 0 last of its group.
static void plan_cpus(void)
{
	cpu_set_t allowed;
	CPU_ZERO(&allowed);
	if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
		cpu_order_note = "sched_getaffinity failed: threads not pinned";
		return;
	}
	std::vector<int> local;
	char bus[64] = {0};
	if (!dry_run && cudaDeviceGetPCIBusId(bus, sizeof bus, 0) == cudaSuccess) {
		std::string id = bus;
		for (char &ch : id)
			ch = (char)tolower((unsigned char)ch);
		size_t colon = id.find(':');
		if (colon != std::string::npos && colon > 4)
			id = id.substr(colon - 4); // 8-digit domain -> 4 digits as in sysfs
		std::string txt = read_small_file("/sys/bus/pci/devices/" + id + "/local_cpulist");
		local = parse_cpulist(txt.c_str());
		cpu_order_note = "GPU " + id + " local CPUs: " +
				 (txt.empty() ? std::string("unknown") : txt.substr(0, txt.find('\n')));
	}
	std::vector<std::pair<int, int>> ranked; // (rank, cpu)
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed))
			continue;
		std::string sib = read_small_file("/sys/devices/system/cpu/cpu" + std::to_string(cpu) +
						  "/topology/thread_siblings_list");
		std::vector<int> sibs = parse_cpulist(sib.c_str());
		bool first_of_core = sibs.empty() || sibs[0] == cpu;
		bool is_local = local.empty() ||
				std::find(local.begin(), local.end(), cpu) != local.end();
		int rank = (is_local ? 0 : 4) + (first_of_core ? 0 : 2) + (cpu == 0 ? 1 : 0);
		ranked.push_back({rank, cpu});
	}
	std::stable_sort(ranked.begin(), ranked.end(),
			 [](const std::pair<int, int> &a, const std::pair<int, int> &b) {
				 return a.first < b.first;
			 });
	for (auto &rc : ranked)
		cpu_order.push_back(rc.second);
}

// ---- one configuration

static bool run_config(const config &c, FILE *dump)
{
	shared_state sh;
	sh.cfg = &c;
	sh.bar.n = (unsigned)c.threads;
	sh.batch = c.batch;
	std::vector<worker> w(c.threads);
	std::vector<pthread_t> tid(c.threads);
	std::string cpus;
	for (int i = 0; i < c.threads; i++) {
		w[i].sh = &sh;
		w[i].index = i;
		w[i].cpu = cpu_order.empty() ? -1 : cpu_order[i % cpu_order.size()];
		cpus += (i ? " " : "") + std::to_string(w[i].cpu);
	}
	printf("cpus api=%s threads=%d: %s%s\n", c.api, c.threads, cpus.c_str(),
	       !cpu_order.empty() && (size_t)c.threads > cpu_order.size()
		       ? " (fewer CPUs than threads: shared)" : "");
	long long t0 = now_ns();
	for (int i = 0; i < c.threads; i++) {
		if (pthread_create(&tid[i], NULL, worker_main, &w[i]) != 0) {
			printf("FAIL: pthread_create failed\n");
			exit(1);
		}
	}
	for (int i = 0; i < c.threads; i++)
		pthread_join(tid[i], NULL);
	double wall = (double)(now_ns() - t0) / 1e9;
	if (failures.load())
		return false;

	// Valid holds, in order; every thread recorded the same holds.
	std::vector<double> hooked, raw, diffs;
	size_t nrec = w[0].rec.size();
	for (int i = 1; i < c.threads; i++)
		if (w[i].rec.size() != nrec) {
			printf("FAIL: threads recorded different numbers of holds (%zu vs %zu)\n", nrec,
			       w[i].rec.size());
			exit(1);
		}
	long launches_per_path = 0;
	int holds = 0;
	for (size_t k = 0; k < nrec; k++) {
		int h = w[0].rec[k].hold;
		if (h < 0 || (size_t)h >= sh.hold_valid.size() || !sh.hold_valid[h])
			continue;
		holds++;
		double dsum = 0;
		for (int i = 0; i < c.threads; i++) {
			const batch_record &b = w[i].rec[k];
			double hk = 0, rw = 0;
			for (int q = 0; q < 4; q++) {
				double per = (double)b.ns[q] / b.batch;
				if (b.hooked_at[q]) {
					hooked.push_back(per);
					hk += b.ns[q];
				} else {
					raw.push_back(per);
					rw += b.ns[q];
				}
				if (dump)
					fprintf(dump, "%s\t%d\t%d\t%d\t%d\t%s\t%d\t%lld\n", c.api,
						c.threads, h, i, q, b.hooked_at[q] ? "hooked" : "raw",
						b.batch, b.ns[q]);
			}
			dsum += (hk - rw) / (2.0 * b.batch);
			launches_per_path += 2L * b.batch;
		}
		diffs.push_back(dsum / c.threads);
	}
	if (!holds) {
		printf("FAIL: %s/%d threads: no valid hold recorded\n", c.api, c.threads);
		return false;
	}
	std::sort(hooked.begin(), hooked.end());
	std::sort(raw.begin(), raw.end());
	std::sort(diffs.begin(), diffs.end());
	double lo, hi;
	median_ci(diffs, &lo, &hi);
	printf("RESULT api=%s threads=%d batch=%d holds=%d launches_per_path=%ld "
	       "hooked_median_ns=%.1f hooked_p10_ns=%.1f hooked_p90_ns=%.1f raw_median_ns=%.1f "
	       "raw_p10_ns=%.1f raw_p90_ns=%.1f added_ns=%.2f added_ci_low=%.2f "
	       "added_ci_high=%.2f timeouts=%d discarded_holds=%d final_batch=%d capped=%d "
	       "mode=%s wall_s=%.3f\n",
	       c.api, c.threads, c.batch, holds, launches_per_path, pct(hooked, 0.5),
	       pct(hooked, 0.1), pct(hooked, 0.9), pct(raw, 0.5), pct(raw, 0.1), pct(raw, 0.9),
	       pct(diffs, 0.5), lo, hi, sh.timeouts, sh.discarded, sh.batch, sh.capped ? 1 : 0,
	       c.hold ? "hold" : "sync", wall);
	fflush(stdout);
	return true;
}

// ------------------------------------------------------------------------------- main

static void usage(void)
{
	fprintf(stderr,
		"usage: launch_overhead [--launches N] [--batch B] [--warmup W] [--threads 1,8]\n"
		"                       [--api driver,runtime] [--dump FILE] [--no-hold]\n"
		"                       [--hold-timeout-ms T] [--max-seconds S] [--max-pending P]\n"
		"                       [--dry-run ADDED_NS]\n"
		"       launch_overhead --resolve-only\n"
		"       launch_overhead --selftest-elf LIBRARY\n"
		"  N: launches per path (hooked and raw each) per configuration, all threads\n"
		"     together, after warm-up (default 100000)\n"
		"  B: launches per timed batch (default 32; a hold queues 4 x B per thread)\n"
		"  W: warm-up holds per configuration (default 20)\n"
		"  T: the spinning kernel gives up after T ms (default 250)\n"
		"  S: a configuration stops after S seconds of holds (default 10)\n"
		"  P: a hold queues at most P launches over all threads: the batch is cut to\n"
		"     P / (4 x threads) where larger (default 512)\n"
		"  --dry-run: no CUDA; launches are busy loops, the hooked path ADDED_NS longer\n");
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

// CUDA initialisation, the kernels' handles, the two launch pointers and the hold flags.
static bool cuda_setup(bool hold)
{
	cudaError_t e = cudaSetDevice(0);
	if (e == cudaSuccess)
		e = cudaFree(0);
	if (e != cudaSuccess) {
		printf("FAIL: CUDA runtime initialisation: %s (%s)\n", cudaGetErrorName(e),
		       cudaGetErrorString(e));
		return false;
	}
	CUresult r = cuCtxGetCurrent(&primary_ctx);
	if (r != CUDA_SUCCESS || !primary_ctx) {
		printf("FAIL: cuCtxGetCurrent returned %d or no context\n", (int)r);
		return false;
	}
	cudaFunction_t f = NULL;
	e = cudaGetFuncBySymbol(&f, (const void *)gsa_bench_empty_driver);
	if (e != cudaSuccess || !f) {
		printf("FAIL: cudaGetFuncBySymbol(gsa_bench_empty_driver): %s\n", cudaGetErrorName(e));
		return false;
	}
	fn_driver = (CUfunction)f;
	e = cudaGetFuncBySymbol(&f, (const void *)gsa_bench_hold);
	if (e != cudaSuccess || !f) {
		printf("FAIL: cudaGetFuncBySymbol(gsa_bench_hold): %s\n", cudaGetErrorName(e));
		return false;
	}
	fn_hold = (CUfunction)f;
	cudaDeviceProp prop;
	if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
		printf("gpu: %s\n", prop.name);
	int drv = 0, rtv = 0;
	cuDriverGetVersion(&drv);
	cudaRuntimeGetVersion(&rtv);
	printf("cuda: driver API %d, runtime %d\n", drv, rtv);

	// One launch through the PLT first, so that a lazily bound GOT slot is bound.
	r = cuLaunchKernel(fn_driver, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
	n_plt.fetch_add(1);
	if (r != CUDA_SUCCESS) {
		cu_fail("the first cuLaunchKernel", r);
		printf("FAIL: %s\n", failure_text);
		return false;
	}
	if ((e = cudaDeviceSynchronize()) != cudaSuccess) {
		printf("FAIL: cudaDeviceSynchronize after the first launch: %s\n",
		       cudaGetErrorName(e));
		return false;
	}
	resolution res = resolve_launch_pointers();
	print_resolution(res);
	if (!res.ok) {
		printf("FAIL: %s\n", res.error.c_str());
		return false;
	}
	raw_launch = (launch_fn)res.raw;

	if (hold) {
		void *hp = NULL;
		e = cudaHostAlloc(&hp, sizeof(hold_slot) * MAX_THREADS,
				  cudaHostAllocMapped | cudaHostAllocPortable);
		if (e != cudaSuccess) {
			printf("FAIL: cudaHostAlloc: %s\n", cudaGetErrorName(e));
			return false;
		}
		memset(hp, 0, sizeof(hold_slot) * MAX_THREADS);
		hold_host = (hold_slot *)hp;
		void *dp = NULL;
		e = cudaHostGetDevicePointer(&dp, hp, 0);
		if (e != cudaSuccess) {
			printf("FAIL: cudaHostGetDevicePointer: %s\n", cudaGetErrorName(e));
			return false;
		}
		hold_dev = (hold_slot *)dp;
	}
	return true;
}

int main(int argc, char **argv)
{
	long launches = 100000;
	int batch = 32, warmup = 20;
	double hold_timeout_ms = 250, max_seconds = 10;
	long max_pending = 512;
	bool hold = true, resolve_only = false;
	double dry = -1;
	const char *dump_path = NULL, *selftest = NULL;
	std::vector<std::string> threads_list = {"1", "8"}, api_list = {"driver", "runtime"};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--no-hold")) {
			hold = false;
			continue;
		}
		if (!strcmp(a, "--resolve-only")) {
			resolve_only = true;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--launches"))
			launches = atol(v);
		else if (!strcmp(a, "--batch"))
			batch = atoi(v);
		else if (!strcmp(a, "--warmup"))
			warmup = atoi(v);
		else if (!strcmp(a, "--threads"))
			threads_list = split(v);
		else if (!strcmp(a, "--api"))
			api_list = split(v);
		else if (!strcmp(a, "--dump"))
			dump_path = v;
		else if (!strcmp(a, "--hold-timeout-ms"))
			hold_timeout_ms = atof(v);
		else if (!strcmp(a, "--max-seconds"))
			max_seconds = atof(v);
		else if (!strcmp(a, "--max-pending"))
			max_pending = atol(v);
		else if (!strcmp(a, "--selftest-elf"))
			selftest = v;
		else if (!strcmp(a, "--dry-run"))
			dry = atof(v);
		else
			usage();
	}
	if (launches <= 0 || batch <= 0 || warmup < 0 || hold_timeout_ms <= 0 || max_seconds <= 0 ||
	    max_pending < 4)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (selftest)
		return selftest_elf(selftest);
	printf("pid=%d\n", (int)getpid());
	if (resolve_only) {
		resolution res = resolve_launch_pointers();
		print_resolution(res);
		return res.ok ? 0 : 1;
	}

	if (dry >= 0) {
		dry_run = true;
		dry_added_ns = dry;
		hold = false;
		dry_calibrate();
		printf("gpu: (dry run)\n");
		printf("DRY RUN: no CUDA; a launch is a %.0f ns busy loop, %.1f ns longer through the "
		       "hooked path (%.2f iterations/ns)\n", 2000.0, dry, dry_iters_per_ns);
		resolution res = resolve_launch_pointers();
		print_resolution(res);
	} else if (!cuda_setup(hold)) {
		return 1;
	}
	plan_cpus();
	printf("cpu order: %s%s%s\n",
	       [&] {
		       std::string s;
		       for (size_t i = 0; i < cpu_order.size() && i < 32; i++)
			       s += (i ? " " : "") + std::to_string(cpu_order[i]);
		       return s.empty() ? std::string("(none)") : s;
	       }().c_str(),
	       cpu_order_note.empty() ? "" : "; ", cpu_order_note.c_str());
	printf("method: %s, batch %d, %d warm-up holds, >= %ld launches per path per "
	       "configuration\n",
	       hold ? "launches queued behind a spinning kernel (hold)"
		    : "stream synchronised after each batch (--no-hold)",
	       batch, warmup, launches);
	if (hold)
		printf("  a hold queues 4 batches per thread, at most %ld launches in all (the batch "
		       "is cut where needed; RESULT batch= is the one used)\n", max_pending);

	FILE *dump = NULL;
	if (dump_path) {
		dump = fopen(dump_path, "w");
		if (!dump) {
			printf("FAIL: cannot write %s: %s\n", dump_path, strerror(errno));
			return 1;
		}
		fprintf(dump, "api\tthreads\thold\tthread\tpos\tpath\tbatch\tns\n");
	}
	for (const std::string &a : api_list) {
		config c;
		if (a == "driver") {
			c.api = "driver";
			c.hooked = PATH_PLT;
		} else if (a == "runtime") {
			c.api = "runtime";
			c.hooked = PATH_RUNTIME;
		} else {
			usage();
		}
		for (const std::string &t : threads_list) {
			c.threads = atoi(t.c_str());
			if (c.threads <= 0 || c.threads > MAX_THREADS)
				usage();
			c.launches_per_path = launches;
			// A hold queues 4 batches per thread: at most max_pending launches in all.
			c.batch = hold ? (int)std::max(1L, std::min((long)batch,
								  max_pending / (4L * c.threads)))
				       : batch;
			c.warmup_holds = warmup;
			c.hold = hold;
			c.hold_timeout_ns = (unsigned long long)(hold_timeout_ms * 1e6);
			c.max_seconds = max_seconds;
			if (!run_config(c, dump)) {
				printf("FAIL: %s\n", failure_text[0] ? failure_text : "see above");
				return 1;
			}
		}
	}
	if (dump) {
		if (fclose(dump) != 0) {
			printf("FAIL: writing %s: %s\n", dump_path, strerror(errno));
			return 1;
		}
		printf("dump: %s\n", dump_path);
	}
	long np = n_plt.load(), nr = n_runtime.load();
	printf("expect\tgsa_bench_empty_driver\t%ld\n", np);
	if (nr)
		printf("expect\tgsa_bench_empty_runtime\t%ld\n", nr);
	printf("expect\tgsa_bench_hold\t0\n");
	printf("launches=%ld\n", np + nr);
	printf("raw (libcuda's own entry, not seen by the library): %ld launches of "
	       "gsa_bench_empty_driver and one gsa_bench_hold per hold\n",
	       n_raw.load());
	printf("kernels: gsa_bench_empty_driver gsa_bench_empty_runtime gsa_bench_hold\n");
	return 0;
}

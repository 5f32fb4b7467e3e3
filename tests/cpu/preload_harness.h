/* Running a scenario under the preload and checking its trace, for the CPU tests of the
 * interposition (test_interpose, test_config_env, test_threads_fork).
 *
 * A test runs with no environment from run.sh: it finds build/ from /proc/self/exe (the test
 * binaries live in build/test/), runs the child with exactly the environment the case needs
 * (LD_PRELOAD=<abs build/libgsa_preload.so>, LD_LIBRARY_PATH=<abs build/test/fake>, GSA_*
 * as given, everything else from its own environment minus LD_PRELOAD, LD_LIBRARY_PATH and
 * GSA_*), waits for it with a timeout, and reads the child's stdout, stderr, FAIL lines and
 * trace files. Include after tests/cpu/check.h, in one file per test binary. */
#ifndef GSA_TEST_PRELOAD_HARNESS_H
#define GSA_TEST_PRELOAD_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preload/trace_format.h"
#include "tests/cpu/check.h"
#include "tests/cpu/scenario.h"
#include "tools/trace_reader.h"

#define H_UNUSED __attribute__((unused))

extern char **environ;

struct harness {
	char build[PATH_MAX];    /* absolute build/ */
	char preload[PATH_MAX];  /* build/libgsa_preload.so */
	char fake_dir[PATH_MAX]; /* build/test/fake */
	char scenario[PATH_MAX]; /* build/test/scenario */
	char tmp[PATH_MAX - 64]; /* this run's scratch directory */
	unsigned runs;
	int failed_before;       /* check_failed when the harness started */
};

struct run {
	char dir[PATH_MAX]; /* the run's directory: traces, stdout, stderr, report */
	pid_t pid;
	int status;
	bool timed_out;
	double seconds;
	char *out, *err, *report;
	char label[128];
};

static H_UNUSED char *h_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	size_t m;
	while (b && (m = fread(b + n, 1, cap - n - 1, f)) > 0) {
		n += m;
		if (cap - n - 1 == 0) {
			char *nb = realloc(b, cap * 2);
			if (!nb)
				break;
			b = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (b)
		b[n] = 0;
	return b ? b : strdup("");
}

/* Resolves the paths and makes the scratch directory. Returns false (after a failed CHECK)
 * when something needed is missing. */
static H_UNUSED bool harness_init(struct harness *h)
{
	memset(h, 0, sizeof *h);
	h->failed_before = check_failed;
	char exe[PATH_MAX - 64]; /* room for the names appended below */
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	CHECK(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
	if (n <= 0)
		return false;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	*slash = 0; /* build/test */
	snprintf(h->scenario, sizeof h->scenario, "%s/scenario", exe);
	snprintf(h->fake_dir, sizeof h->fake_dir, "%s/fake", exe);
	slash = strrchr(exe, '/');
	*slash = 0; /* build */
	snprintf(h->build, sizeof h->build, "%s", exe);
	snprintf(h->preload, sizeof h->preload, "%s/libgsa_preload.so", exe);
	const char *need[] = {h->preload, h->scenario, h->fake_dir};
	for (size_t i = 0; i < 3; i++) {
		CHECK(access(need[i], F_OK) == 0, "%s is missing", need[i]);
		if (access(need[i], F_OK) != 0)
			return false;
	}
	const char *t = getenv("TMPDIR");
	snprintf(h->tmp, sizeof h->tmp, "%s/gsa-preload-test-XXXXXX", t && *t ? t : "/tmp");
	CHECK(mkdtemp(h->tmp) != NULL, "mkdtemp %s: %s", h->tmp, strerror(errno));
	return h->tmp[0] != 0;
}

static H_UNUSED void h_rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char p[PATH_MAX];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			h_rm_tree(p);
		else
			unlink(p);
	}
	closedir(d);
	rmdir(dir);
}

/* Removes the scratch directory, unless a check failed (then it says where it is). */
static H_UNUSED void harness_finish(struct harness *h)
{
	if (!h->tmp[0])
		return;
	if (check_failed > h->failed_before)
		printf("NOTE files of the failed checks kept in %s\n", h->tmp);
	else
		h_rm_tree(h->tmp);
}

static H_UNUSED void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	free(r->report);
	r->out = r->err = r->report = NULL;
}

/* Replaces every "@DIR@" in s by dir. */
static H_UNUSED char *h_subst(const char *s, const char *dir)
{
	size_t cap = strlen(s) + 16 * strlen(dir) + 1;
	char *o = malloc(cap), *w = o;
	while (*s) {
		if (strncmp(s, "@DIR@", 5) == 0) {
			w += sprintf(w, "%s", dir);
			s += 5;
		} else {
			*w++ = *s++;
		}
	}
	*w = 0;
	return o;
}

/* Runs argv (argv[0]: a path, or NULL for the scenario binary) with the preload (unless
 * preload is false) and env_extra ("NAME=value" each, "@DIR@" replaced by the run's
 * directory; NULL-terminated). Waits at most timeout_s, then kills it. */
static H_UNUSED void harness_run(struct harness *h, struct run *r, const char *label,
				 const char *const *argv, const char *const *env_extra,
				 bool preload, int timeout_s)
{
	memset(r, 0, sizeof *r);
	snprintf(r->label, sizeof r->label, "%s", label);
	snprintf(r->dir, sizeof r->dir, "%s/run-%u", h->tmp, ++h->runs);
	mkdir(r->dir, 0755);
	char out[PATH_MAX + 16], err[PATH_MAX + 16], rep[PATH_MAX + 16];
	snprintf(out, sizeof out, "%s/stdout", r->dir);
	snprintf(err, sizeof err, "%s/stderr", r->dir);
	snprintf(rep, sizeof rep, "%s/report", r->dir);

	/* The environment. */
	size_t n = 0;
	for (char **e = environ; *e; e++)
		n++;
	for (const char *const *e = env_extra; e && *e; e++)
		n++;
	char **env = calloc(n + 8, sizeof *env);
	size_t k = 0;
	for (char **e = environ; *e; e++) {
		if (!strncmp(*e, "LD_PRELOAD=", 11) || !strncmp(*e, "LD_LIBRARY_PATH=", 16) ||
		    !strncmp(*e, "GSA_", 4) || !strncmp(*e, "SCENARIO_", 9))
			continue;
		env[k++] = *e;
	}
	char *pre = malloc(strlen(h->preload) + 16), *llp = malloc(strlen(h->fake_dir) + 32);
	char *repv = malloc(strlen(rep) + 32);
	sprintf(pre, "LD_PRELOAD=%s", h->preload);
	sprintf(llp, "LD_LIBRARY_PATH=%s", h->fake_dir);
	sprintf(repv, "%s=%s", SCENARIO_REPORT_ENV, rep);
	if (preload)
		env[k++] = pre;
	env[k++] = llp;
	env[k++] = repv;
	for (const char *const *e = env_extra; e && *e; e++)
		env[k++] = h_subst(*e, r->dir);
	env[k] = NULL;

	const char *path = argv[0] ? argv[0] : h->scenario;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fo < 0 || fe < 0)
			_exit(126);
		dup2(fo, 1);
		dup2(fe, 2);
		close(fo);
		close(fe);
		/* A new process group, so that a timeout can kill the scenario's children too. */
		setpgid(0, 0);
		char **av = calloc(16, sizeof *av);
		av[0] = (char *)path;
		for (int i = 1; argv[i] && i < 15; i++)
			av[i] = (char *)argv[i];
		execve(path, av, env);
		_exit(127);
	}
	r->pid = pid;
	CHECK(pid > 0, "[%s] fork: %s", label, strerror(errno));
	int status = 0;
	for (;;) {
		if (pid <= 0)
			break;
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > timeout_s) {
			r->timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	r->status = status;
	r->out = h_slurp(out);
	r->err = h_slurp(err);
	r->report = h_slurp(rep);
	for (size_t i = 0; env[i]; i++) {
		bool extra = true;
		for (char **e = environ; *e; e++)
			if (env[i] == *e)
				extra = false;
		if (extra && env[i] != pre && env[i] != llp && env[i] != repv)
			free(env[i]);
	}
	free(env);
	free(pre);
	free(llp);
	free(repv);
	CHECK(!r->timed_out, "[%s] timed out after %d s (killed)", label, timeout_s);
}

static H_UNUSED bool run_exited_ok(const struct run *r)
{
	return !r->timed_out && WIFEXITED(r->status) && WEXITSTATUS(r->status) == 0;
}

static H_UNUSED const char *h_status_text(const struct run *r)
{
	static char buf[64];
	if (r->timed_out)
		snprintf(buf, sizeof buf, "timed out");
	else if (WIFSIGNALED(r->status))
		snprintf(buf, sizeof buf, "killed by signal %d", WTERMSIG(r->status));
	else
		snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(r->status));
	return buf;
}

/* Adds the scenario's own checks (its result line on stdout, its FAIL lines in the report)
 * to this test's, and checks that it exited 0. */
static H_UNUSED void harness_merge(const struct run *r)
{
	int p = -1, f = -1;
	for (const char *l = r->out; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), l);
		const char *c = strstr(line, ": ");
		int pp, ff;
		if (c && strncmp(line, "scenario-", 9) == 0 &&
		    sscanf(c, ": %d passed, %d failed", &pp, &ff) == 2)
			p = pp, f = ff;
		l = e ? e + 1 : l + len;
	}
	CHECK(p >= 0, "[%s] the scenario printed no result line (%s); stdout:\n%s\nstderr:\n%s",
	      r->label, h_status_text(r), r->out, r->err);
	if (p >= 0) {
		check_passed += p;
		check_failed += f;
	}
	for (const char *l = r->report; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		if (len >= 5 && strncmp(l, "FAIL ", 5) == 0)
			fprintf(stderr, "FAIL [%s] %.*s\n", r->label, (int)len - 5, l + 5);
		else if (len)
			fprintf(stderr, "  %.*s\n", (int)len, l);
		l = e ? e + 1 : l + len;
	}
	CHECK(run_exited_ok(r), "[%s] scenario %s", r->label, h_status_text(r));
}

/* ---- traces ---- */

static H_UNUSED void trace_path(const struct run *r, int pid, char *out, size_t cap)
{
	snprintf(out, cap, "%s/trace-%d.bin", r->dir, pid);
}

/* Number of files in the run's directory whose name starts with "trace". */
static H_UNUSED int count_traces(const struct run *r)
{
	DIR *d = opendir(r->dir);
	int n = 0;
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strncmp(e->d_name, "trace", 5) == 0;
	if (d)
		closedir(d);
	return n;
}

struct trace_alloc { uint64_t ptr, size, stream; int device, api; };
struct trace_free { uint64_t ptr; int api, known; };
struct trace_mem {
	struct trace_alloc *allocs;
	size_t n_allocs;
	struct trace_free *frees;
	size_t n_frees;
	bool ok;
};

static H_UNUSED uint64_t h_le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The ALLOC and FREE records of a trace, read straight from the file (format:
 * preload/trace_format.h), since the reader keeps only their totals. */
static H_UNUSED struct trace_mem read_trace_mem(const char *path)
{
	struct trace_mem m = {0};
	FILE *f = fopen(path, "rb");
	if (!f)
		return m;
	unsigned char hdr[GSA_TRACE_HEADER_SIZE];
	if (fread(hdr, 1, sizeof hdr, f) != sizeof hdr || memcmp(hdr, GSA_TRACE_MAGIC, 8) != 0) {
		fclose(f);
		return m;
	}
	uint32_t hs = (uint32_t)h_le(hdr + 12, 4);
	if (hs > GSA_TRACE_HEADER_SIZE)
		fseek(f, hs, SEEK_SET);
	size_t cap_a = 0, cap_f = 0;
	unsigned char rh[GSA_TRACE_RECORD_HEADER_SIZE];
	static unsigned char payload[GSA_TRACE_MAX_PAYLOAD];
	m.ok = true;
	while (fread(rh, 1, sizeof rh, f) == sizeof rh) {
		uint16_t type = (uint16_t)h_le(rh, 2);
		uint32_t len = (uint32_t)h_le(rh + 4, 4);
		if (len > GSA_TRACE_MAX_PAYLOAD || fread(payload, 1, len, f) != len) {
			m.ok = false;
			break;
		}
		if (type == GSA_REC_ALLOC && len >= 48) {
			if (m.n_allocs == cap_a) {
				cap_a = cap_a ? cap_a * 2 : 64;
				m.allocs = realloc(m.allocs, cap_a * sizeof *m.allocs);
			}
			struct trace_alloc *a = &m.allocs[m.n_allocs++];
			a->ptr = h_le(payload + 8, 8);
			a->size = h_le(payload + 16, 8);
			a->device = (int32_t)h_le(payload + 32, 4);
			a->api = payload[36];
			a->stream = h_le(payload + 40, 8);
		} else if (type == GSA_REC_FREE && len >= 18) {
			if (m.n_frees == cap_f) {
				cap_f = cap_f ? cap_f * 2 : 64;
				m.frees = realloc(m.frees, cap_f * sizeof *m.frees);
			}
			struct trace_free *fr = &m.frees[m.n_frees++];
			fr->ptr = h_le(payload + 8, 8);
			fr->api = payload[16];
			fr->known = payload[17];
		}
	}
	fclose(f);
	return m;
}

static H_UNUSED void trace_mem_free(struct trace_mem *m)
{
	free(m->allocs);
	free(m->frees);
	memset(m, 0, sizeof *m);
}

/* The expectations one process announced ("E <pid> ..." lines, scenario.h). */
struct expect_launch { char name[64]; uint64_t count; };
struct expect_handle { char name[64]; uint64_t handle; };
struct expectations {
	int pid;
	struct expect_launch launch[64];
	size_t n_launch;
	char ignore[16][64];
	size_t n_ignore;
	bool ignore_unnamed;
	struct expect_handle handle[64];
	size_t n_handle;
	struct { uint64_t ptr, size, stream; unsigned mask; } alloc[256];
	size_t n_alloc;
	struct { uint64_t ptr; int known; } free_[256];
	size_t n_free;
};

/* Parses every E line of out; returns the number of processes (up to max). */
static H_UNUSED size_t parse_expectations(const char *out, struct expectations *ex, size_t max)
{
	size_t n = 0;
	for (const char *l = out; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		char line[512];
		snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), l);
		l = e ? e + 1 : l + len;
		int pid, off = 0;
		char kind[32];
		if (sscanf(line, "E %d %31s %n", &pid, kind, &off) < 2)
			continue;
		const char *rest = line + off;
		size_t i;
		for (i = 0; i < n && ex[i].pid != pid; i++)
			;
		if (i == n) {
			if (n == max)
				continue;
			memset(&ex[n], 0, sizeof ex[n]);
			ex[n++].pid = pid;
		}
		struct expectations *x = &ex[i];
		unsigned long long a, b, c;
		unsigned mask;
		int known;
		char name[64];
		if (!strcmp(kind, "launch") && x->n_launch < 64 &&
		    sscanf(rest, "%63s %llu", name, &a) == 2) {
			snprintf(x->launch[x->n_launch].name, 64, "%s", name);
			x->launch[x->n_launch++].count = a;
		} else if (!strcmp(kind, "ignore") && x->n_ignore < 16 && sscanf(rest, "%63s", name) == 1) {
			snprintf(x->ignore[x->n_ignore++], 64, "%s", name);
		} else if (!strcmp(kind, "ignore_unnamed")) {
			x->ignore_unnamed = true;
		} else if (!strcmp(kind, "handle") && x->n_handle < 64 &&
			   sscanf(rest, "%63s %llx", name, &a) == 2) {
			snprintf(x->handle[x->n_handle].name, 64, "%s", name);
			x->handle[x->n_handle++].handle = a;
		} else if (!strcmp(kind, "alloc") && x->n_alloc < 256 &&
			   sscanf(rest, "%llx %llu %u %llx", &a, &b, &mask, &c) == 4) {
			x->alloc[x->n_alloc].ptr = a;
			x->alloc[x->n_alloc].size = b;
			x->alloc[x->n_alloc].mask = mask;
			x->alloc[x->n_alloc++].stream = c;
		} else if (!strcmp(kind, "free") && x->n_free < 256 &&
			   sscanf(rest, "%llx %d", &a, &known) == 2) {
			x->free_[x->n_free].ptr = a;
			x->free_[x->n_free++].known = known;
		}
	}
	return n;
}

/* Checks pid's trace against its expectations: launches per name exactly (names not
 * announced have none), handles, and the ALLOC/FREE records exactly. Returns the summary
 * (caller frees) or leaves *s zeroed when it could not be read. */
static H_UNUSED void check_trace(const struct run *r, const struct expectations *x,
				 struct gsa_tr_summary *s)
{
	char path[PATH_MAX + 32];
	trace_path(r, x->pid, path, sizeof path);
	char err[256] = "";
	memset(s, 0, sizeof *s);
	int rc = gsa_tr_read(path, s, err, sizeof err);
	CHECK(rc == 0, "[%s] trace of pid %d (%s): %s", r->label, x->pid, path, err);
	if (rc != 0)
		return;
	CHECK(s->ended_cleanly, "[%s] trace of pid %d has no END record", r->label, x->pid);
	CHECK(s->pid == (uint32_t)x->pid, "[%s] trace of pid %d says pid %u", r->label, x->pid, s->pid);
	for (size_t i = 0; i < x->n_launch; i++) {
		const struct gsa_tr_kernel *k = gsa_tr_find_kernel(s, x->launch[i].name);
		uint64_t got = 0;
		/* Sum over records of the same name (a name may appear with several handles). */
		for (size_t j = 0; j < s->n_kernels; j++)
			if (!strcmp(s->kernels[j].name, x->launch[i].name))
				got += s->kernels[j].launches;
		CHECK(got == x->launch[i].count, "[%s] pid %d: kernel %s launched %llu times in the trace, "
		      "expected %llu", r->label, x->pid, x->launch[i].name, (unsigned long long)got,
		      (unsigned long long)x->launch[i].count);
		CHECK(x->launch[i].count == 0 || k != NULL, "[%s] pid %d: no kernel record for %s",
		      r->label, x->pid, x->launch[i].name);
	}
	for (size_t j = 0; j < s->n_kernels; j++) {
		const struct gsa_tr_kernel *k = &s->kernels[j];
		bool known = false;
		for (size_t i = 0; i < x->n_launch && !known; i++)
			known = !strcmp(k->name, x->launch[i].name);
		for (size_t i = 0; i < x->n_ignore && !known; i++)
			known = !strcmp(k->name, x->ignore[i]);
		if (!k->name[0] && x->ignore_unnamed)
			known = true;
		CHECK(known || k->launches == 0,
		      "[%s] pid %d: unexpected kernel \"%s\" (handle %#llx) launched %llu times",
		      r->label, x->pid, k->name, (unsigned long long)k->handle,
		      (unsigned long long)k->launches);
	}
	for (size_t i = 0; i < x->n_handle; i++) {
		const struct gsa_tr_kernel *k = gsa_tr_find_kernel(s, x->handle[i].name);
		CHECK(!k || k->handle == x->handle[i].handle,
		      "[%s] pid %d: kernel %s has handle %#llx, expected %#llx", r->label, x->pid,
		      x->handle[i].name, (unsigned long long)(k ? k->handle : 0),
		      (unsigned long long)x->handle[i].handle);
	}

	struct trace_mem m = read_trace_mem(path);
	CHECK(m.ok, "[%s] pid %d: could not scan the records of %s", r->label, x->pid, path);
	CHECK(m.n_allocs == x->n_alloc, "[%s] pid %d: %zu ALLOC records, expected %zu", r->label,
	      x->pid, m.n_allocs, x->n_alloc);
	CHECK(s->allocs == x->n_alloc, "[%s] pid %d: reader counts %llu allocations, expected %zu",
	      r->label, x->pid, (unsigned long long)s->allocs, x->n_alloc);
	bool *used = calloc(m.n_allocs + 1, 1);
	for (size_t i = 0; i < x->n_alloc; i++) {
		size_t j;
		for (j = 0; j < m.n_allocs; j++)
			if (!used[j] && m.allocs[j].ptr == x->alloc[i].ptr)
				break;
		CHECK(j < m.n_allocs, "[%s] pid %d: no ALLOC record for %#llx (%llu bytes)", r->label,
		      x->pid, (unsigned long long)x->alloc[i].ptr, (unsigned long long)x->alloc[i].size);
		if (j == m.n_allocs)
			continue;
		used[j] = true;
		const struct trace_alloc *a = &m.allocs[j];
		CHECK(a->size == x->alloc[i].size, "[%s] pid %d: ALLOC %#llx size %llu, expected %llu",
		      r->label, x->pid, (unsigned long long)a->ptr, (unsigned long long)a->size,
		      (unsigned long long)x->alloc[i].size);
		CHECK(a->api >= 0 && a->api < 32 && (x->alloc[i].mask >> a->api & 1),
		      "[%s] pid %d: ALLOC %#llx api %d, expected one of mask %#x", r->label, x->pid,
		      (unsigned long long)a->ptr, a->api, x->alloc[i].mask);
		CHECK(a->stream == x->alloc[i].stream, "[%s] pid %d: ALLOC %#llx stream %#llx, expected %#llx",
		      r->label, x->pid, (unsigned long long)a->ptr, (unsigned long long)a->stream,
		      (unsigned long long)x->alloc[i].stream);
		CHECK(a->device == 0, "[%s] pid %d: ALLOC %#llx device %d, expected 0", r->label, x->pid,
		      (unsigned long long)a->ptr, a->device);
	}
	free(used);
	CHECK(m.n_frees == x->n_free, "[%s] pid %d: %zu FREE records, expected %zu", r->label, x->pid,
	      m.n_frees, x->n_free);
	used = calloc(m.n_frees + 1, 1);
	uint64_t unknown = 0;
	for (size_t i = 0; i < x->n_free; i++) {
		unknown += !x->free_[i].known;
		size_t j;
		for (j = 0; j < m.n_frees; j++)
			if (!used[j] && m.frees[j].ptr == x->free_[i].ptr)
				break;
		CHECK(j < m.n_frees, "[%s] pid %d: no FREE record for %#llx", r->label, x->pid,
		      (unsigned long long)x->free_[i].ptr);
		if (j == m.n_frees)
			continue;
		used[j] = true;
		CHECK(m.frees[j].known == x->free_[i].known, "[%s] pid %d: FREE %#llx known=%d, expected %d",
		      r->label, x->pid, (unsigned long long)m.frees[j].ptr, m.frees[j].known,
		      x->free_[i].known);
	}
	free(used);
	CHECK(s->frees_unknown == unknown, "[%s] pid %d: reader counts %llu unknown frees, expected %llu",
	      r->label, x->pid, (unsigned long long)s->frees_unknown, (unsigned long long)unknown);
	trace_mem_free(&m);
}

/* Lines of text (a last line without a newline counts too). */
static H_UNUSED int count_lines(const char *s)
{
	int n = 0;
	for (const char *p = s; p && *p; p++)
		if (*p == '\n' || p[1] == 0)
			n++;
	return n;
}

#endif

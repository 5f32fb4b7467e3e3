/* Helpers for the gsa-trace tests (tests/cpu/test_gsa_trace_*.c): a temporary directory,
 * running the tool with separate stdout and stderr (and its peak RSS), a strict JSON parser
 * and an XML well-formedness checker that reports start tags, so that the tests can look at
 * what the tool wrote without python3 or xmllint (used too when installed).
 * Header-only: each test includes it once. */
#ifndef GSA_TEST_GSA_TRACE_UTIL_H
#define GSA_TEST_GSA_TRACE_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- files ---- */

static char tu_tmpdir[1024];

static __attribute__((unused)) void tu_init_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	snprintf(tu_tmpdir, sizeof(tu_tmpdir), "%s/%s.XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(tu_tmpdir)) {
		fprintf(stderr, "mkdtemp %s: %s\n", tu_tmpdir, strerror(errno));
		exit(1);
	}
}

static __attribute__((unused)) const char *tu_path(const char *name)
{
	static char path[16][1400];
	static int next;
	char *p = path[next++ % 16];
	snprintf(p, sizeof(path[0]), "%s/%s", tu_tmpdir, name);
	return p;
}

static __attribute__((unused)) void tu_remove_tmpdir(void)
{
	DIR *d = opendir(tu_tmpdir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlink(tu_path(e->d_name));
	if (d)
		closedir(d);
	rmdir(tu_tmpdir);
}

static __attribute__((unused)) const char *tu_write_file(const char *name, const void *data, size_t n)
{
	const char *path = tu_path(name);
	FILE *f = fopen(path, "wb");
	if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	return path;
}

/* The whole file, NUL-terminated (*n without the NUL), or NULL. */
static __attribute__((unused)) char *tu_read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, len = 0, got;
	char *b = malloc(cap);
	while (b && (got = fread(b + len, 1, cap - len - 1, f)) > 0) {
		len += got;
		if (cap - len < 2) {
			char *nb = realloc(b, cap *= 2);
			if (!nb) {
				free(b);
				b = NULL;
			}
			b = nb;
		}
	}
	fclose(f);
	if (!b)
		return NULL;
	b[len] = '\0';
	if (n)
		*n = len;
	return b;
}

static __attribute__((unused)) int tu_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Files in the temporary directory whose name contains part. */
static __attribute__((unused)) int tu_count_files(const char *part)
{
	int n = 0;
	DIR *d = opendir(tu_tmpdir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += strstr(e->d_name, part) != NULL;
	if (d)
		closedir(d);
	return n;
}

/* ---- running the tool ---- */

static __attribute__((unused)) const char *tu_tool(void)
{
	const char *t = getenv("GSA_TRACE_TOOL");
	return t && *t ? t : "build/gsa-trace";
}

struct tu_run {
	int status;      /* exit status, or -1 when killed by a signal */
	int sig;         /* the signal, or 0 */
	char *out, *err; /* what it wrote, NUL-terminated */
	size_t out_n, err_n;
	long maxrss_kb;  /* its peak resident set */
};

static __attribute__((unused)) void tu_run_free(struct tu_run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* Runs the tool with args (NULL-terminated array), stdin from in_path (or /dev/null),
 * env: NULL or "NAME=VALUE" strings, NULL-terminated. */
static __attribute__((unused)) int tu_run_argv(struct tu_run *r, const char *in_path, const char *const *env,
		       const char *const *args)
{
	static int serial;
	char outp[64], errp[64];
	snprintf(outp, sizeof(outp), "run%d.out", serial);
	snprintf(errp, sizeof(errp), "run%d.err", serial++);
	char out_path[1400], err_path[1400];
	snprintf(out_path, sizeof(out_path), "%s", tu_path(outp));
	snprintf(err_path, sizeof(err_path), "%s", tu_path(errp));
	const char *argv[64];
	int n = 0;
	argv[n++] = tu_tool();
	for (int i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		int in = open(in_path ? in_path : "/dev/null", O_RDONLY);
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || out < 0 || err < 0)
			_exit(127);
		dup2(in, 0);
		dup2(out, 1);
		dup2(err, 2);
		for (int i = 0; env && env[i]; i++)
			putenv((char *)env[i]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	memset(r, 0, sizeof(*r));
	struct rusage ru;
	int st = 0;
	if (pid < 0 || wait4(pid, &st, 0, &ru) != pid) {
		r->status = -1;
		r->out = calloc(1, 1);
		r->err = calloc(1, 1);
		return -1;
	}
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	r->maxrss_kb = ru.ru_maxrss;
	r->out = tu_read_file(out_path, &r->out_n);
	r->err = tu_read_file(err_path, &r->err_n);
	if (!r->out)
		r->out = calloc(1, 1);
	if (!r->err)
		r->err = calloc(1, 1);
	unlink(out_path);
	unlink(err_path);
	return r->status;
}

/* Same with the arguments inline: tu_run(&r, in, env, "summary", path, NULL). */
static __attribute__((unused)) int tu_run(struct tu_run *r, const char *in_path, const char *const *env, ...)
{
	const char *args[60];
	int n = 0;
	va_list ap;
	va_start(ap, env);
	for (const char *a; n < 59 && (a = va_arg(ap, const char *));)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	return tu_run_argv(r, in_path, env, args);
}

/* Lines in s. */
static __attribute__((unused)) int tu_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* The line of s that starts with prefix (a pointer into s), or NULL. */
static __attribute__((unused)) const char *tu_line_starting(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	for (const char *p = s; p && *p;) {
		if (strncmp(p, prefix, n) == 0)
			return p;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

/* A copy of the line at p, without its newline. */
static __attribute__((unused)) char *tu_line_copy(const char *p)
{
	if (!p)
		return strdup("");
	size_t n = strcspn(p, "\n");
	char *l = malloc(n + 1);
	memcpy(l, p, n);
	l[n] = '\0';
	return l;
}

/* Whether a program is installed (command -v). */
static __attribute__((unused)) int tu_have(const char *program)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", program);
	return system(cmd) == 0;
}

/* ---- JSON: a strict parser (RFC 8259) into a small tree ---- */

enum tu_jtype { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ };

struct tu_json {
	enum tu_jtype t;
	int b;
	double num;
	char *str;               /* TJ_STR (decoded, NUL-terminated) */
	struct tu_json *items;   /* TJ_ARR, TJ_OBJ */
	char **keys;             /* TJ_OBJ */
	size_t n, cap;
};

struct tu_jparser {
	const char *s, *end, *base;
	char *err;
	size_t errlen;
	int depth;
};

static __attribute__((unused)) int tj_fail(struct tu_jparser *p, const char *what)
{
	if (p->err && !p->err[0])
		snprintf(p->err, p->errlen, "%s at offset %ld", what, (long)(p->s - p->base));
	return -1;
}

static __attribute__((unused)) void tj_ws(struct tu_jparser *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
		p->s++;
}

static __attribute__((unused)) void tu_json_free(struct tu_json *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		tu_json_free(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->str);
	memset(v, 0, sizeof(*v));
}

static __attribute__((unused)) int tj_hex4(struct tu_jparser *p, unsigned *out)
{
	if (p->end - p->s < 4)
		return tj_fail(p, "short \\u escape");
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		char c = *p->s++;
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return tj_fail(p, "bad hex digit in \\u escape");
	}
	*out = v;
	return 0;
}

/* UTF-8 encode cp into b; returns the length. */
static __attribute__((unused)) int tj_utf8(unsigned cp, char *b)
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | cp >> 18);
	b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Validates raw UTF-8 at s (at most left bytes): its length, or 0. */
static __attribute__((unused)) size_t tj_utf8_len(const unsigned char *s, size_t left)
{
	if (s[0] < 0x80)
		return 1;
	size_t n = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (!n || n > left)
		return 0;
	unsigned cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	static const unsigned min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static __attribute__((unused)) int tj_string(struct tu_jparser *p, char **out)
{
	p->s++; /* the opening quote */
	size_t cap = 32, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (p->s >= p->end) {
			free(b);
			return tj_fail(p, "unterminated string");
		}
		if (cap - n < 8)
			b = realloc(b, cap *= 2);
		unsigned char c = (unsigned char)*p->s;
		if (c == '"') {
			p->s++;
			break;
		}
		if (c < 0x20) {
			free(b);
			return tj_fail(p, "control character in string");
		}
		if (c == '\\') {
			p->s++;
			if (p->s >= p->end) {
				free(b);
				return tj_fail(p, "unterminated escape");
			}
			char e = *p->s++;
			unsigned cp;
			switch (e) {
			case '"': b[n++] = '"'; break;
			case '\\': b[n++] = '\\'; break;
			case '/': b[n++] = '/'; break;
			case 'b': b[n++] = '\b'; break;
			case 'f': b[n++] = '\f'; break;
			case 'n': b[n++] = '\n'; break;
			case 'r': b[n++] = '\r'; break;
			case 't': b[n++] = '\t'; break;
			case 'u':
				if (tj_hex4(p, &cp)) {
					free(b);
					return -1;
				}
				if (cp >= 0xd800 && cp <= 0xdbff) {
					unsigned lo;
					if (p->end - p->s < 6 || p->s[0] != '\\' || p->s[1] != 'u') {
						free(b);
						return tj_fail(p, "lone high surrogate");
					}
					p->s += 2;
					if (tj_hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff) {
						free(b);
						return tj_fail(p, "bad low surrogate");
					}
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				} else if (cp >= 0xdc00 && cp <= 0xdfff) {
					free(b);
					return tj_fail(p, "lone low surrogate");
				}
				n += (size_t)tj_utf8(cp, b + n);
				break;
			default:
				free(b);
				return tj_fail(p, "bad escape");
			}
			continue;
		}
		size_t len = tj_utf8_len((const unsigned char *)p->s, (size_t)(p->end - p->s));
		if (!len) {
			free(b);
			return tj_fail(p, "invalid UTF-8 in string");
		}
		memcpy(b + n, p->s, len);
		n += len;
		p->s += len;
	}
	b[n] = '\0';
	*out = b;
	return 0;
}

static __attribute__((unused)) int tj_number(struct tu_jparser *p, double *out)
{
	const char *start = p->s;
	if (p->s < p->end && *p->s == '-')
		p->s++;
	if (p->s >= p->end)
		return tj_fail(p, "bad number");
	if (*p->s == '0') {
		p->s++;
	} else if (*p->s >= '1' && *p->s <= '9') {
		while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
			p->s++;
	} else {
		return tj_fail(p, "bad number");
	}
	if (p->s < p->end && *p->s == '.') {
		p->s++;
		if (p->s >= p->end || *p->s < '0' || *p->s > '9')
			return tj_fail(p, "bad fraction");
		while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
			p->s++;
	}
	if (p->s < p->end && (*p->s == 'e' || *p->s == 'E')) {
		p->s++;
		if (p->s < p->end && (*p->s == '+' || *p->s == '-'))
			p->s++;
		if (p->s >= p->end || *p->s < '0' || *p->s > '9')
			return tj_fail(p, "bad exponent");
		while (p->s < p->end && *p->s >= '0' && *p->s <= '9')
			p->s++;
	}
	char buf[64];
	size_t len = (size_t)(p->s - start);
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, start, len);
	buf[len] = '\0';
	*out = strtod(buf, NULL);
	return 0;
}

static int tj_value(struct tu_jparser *p, struct tu_json *v);

static __attribute__((unused)) int tj_push(struct tu_json *v, char *key, struct tu_json *item)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 8;
		v->items = realloc(v->items, v->cap * sizeof(*v->items));
		if (v->t == TJ_OBJ)
			v->keys = realloc(v->keys, v->cap * sizeof(*v->keys));
	}
	v->items[v->n] = *item;
	if (v->t == TJ_OBJ)
		v->keys[v->n] = key;
	v->n++;
	return 0;
}

static __attribute__((unused)) int tj_container(struct tu_jparser *p, struct tu_json *v, char close)
{
	if (++p->depth > 200)
		return tj_fail(p, "too deep");
	p->s++;
	tj_ws(p);
	if (p->s < p->end && *p->s == close) {
		p->s++;
		p->depth--;
		return 0;
	}
	for (;;) {
		char *key = NULL;
		tj_ws(p);
		if (v->t == TJ_OBJ) {
			if (p->s >= p->end || *p->s != '"')
				return tj_fail(p, "object key expected");
			if (tj_string(p, &key))
				return -1;
			tj_ws(p);
			if (p->s >= p->end || *p->s != ':') {
				free(key);
				return tj_fail(p, "':' expected");
			}
			p->s++;
		}
		struct tu_json item = {0};
		if (tj_value(p, &item)) {
			free(key);
			tu_json_free(&item);
			return -1;
		}
		tj_push(v, key, &item);
		tj_ws(p);
		if (p->s < p->end && *p->s == ',') {
			p->s++;
			continue;
		}
		if (p->s < p->end && *p->s == close) {
			p->s++;
			p->depth--;
			return 0;
		}
		return tj_fail(p, "',' or closing bracket expected");
	}
}

static __attribute__((unused)) int tj_value(struct tu_jparser *p, struct tu_json *v)
{
	tj_ws(p);
	if (p->s >= p->end)
		return tj_fail(p, "value expected");
	switch (*p->s) {
	case '{': v->t = TJ_OBJ; return tj_container(p, v, '}');
	case '[': v->t = TJ_ARR; return tj_container(p, v, ']');
	case '"': v->t = TJ_STR; return tj_string(p, &v->str);
	case 't':
		if (p->end - p->s >= 4 && !strncmp(p->s, "true", 4)) {
			v->t = TJ_BOOL;
			v->b = 1;
			p->s += 4;
			return 0;
		}
		return tj_fail(p, "bad literal");
	case 'f':
		if (p->end - p->s >= 5 && !strncmp(p->s, "false", 5)) {
			v->t = TJ_BOOL;
			p->s += 5;
			return 0;
		}
		return tj_fail(p, "bad literal");
	case 'n':
		if (p->end - p->s >= 4 && !strncmp(p->s, "null", 4)) {
			v->t = TJ_NULL;
			p->s += 4;
			return 0;
		}
		return tj_fail(p, "bad literal");
	default:
		v->t = TJ_NUM;
		return tj_number(p, &v->num);
	}
}

/* Parses the whole text; 0, or -1 with a reason in err. */
static __attribute__((unused)) int tu_json_parse(const char *s, size_t len, struct tu_json *out, char *err, size_t errlen)
{
	struct tu_jparser p = {s, s + len, s, err, errlen, 0};
	if (err && errlen)
		err[0] = '\0';
	memset(out, 0, sizeof(*out));
	if (tj_value(&p, out)) {
		tu_json_free(out);
		return -1;
	}
	tj_ws(&p);
	if (p.s != p.end) {
		tu_json_free(out);
		return tj_fail(&p, "text after the value");
	}
	return 0;
}

static __attribute__((unused)) const struct tu_json *tu_json_get(const struct tu_json *o, const char *key)
{
	if (!o || o->t != TJ_OBJ)
		return NULL;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return &o->items[i];
	return NULL;
}

static __attribute__((unused)) const char *tu_json_str(const struct tu_json *o, const char *key)
{
	const struct tu_json *v = tu_json_get(o, key);
	return v && v->t == TJ_STR ? v->str : NULL;
}

static __attribute__((unused)) double tu_json_num(const struct tu_json *o, const char *key, double dflt)
{
	const struct tu_json *v = tu_json_get(o, key);
	return v && v->t == TJ_NUM ? v->num : dflt;
}

/* ---- XML: well-formedness (elements, attributes, references, comments, PIs) ---- */

#define TU_XML_MAX_ATTRS 32
#define TU_XML_MAX_DEPTH 64

struct tu_xml_attr {
	char name[64];
	char value[512];
};

/* on_start(ctx, name, attrs, n, depth) for each start tag (also empty ones), on_end(ctx,
 * name, depth) for each end (also of empty tags). */
struct tu_xml_cb {
	void *ctx;
	void (*on_start)(void *ctx, const char *name, const struct tu_xml_attr *a, int n, int depth);
	void (*on_end)(void *ctx, const char *name, int depth);
};

static __attribute__((unused)) int tx_name_char(char c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':')
		return 1;
	return !first && ((c >= '0' && c <= '9') || c == '-' || c == '.');
}

static __attribute__((unused)) int tx_name(const char **s, const char *end, char *out, size_t cap)
{
	size_t n = 0;
	if (*s >= end || !tx_name_char(**s, 1))
		return -1;
	while (*s < end && tx_name_char(**s, 0)) {
		if (n + 1 < cap)
			out[n++] = **s;
		(*s)++;
	}
	out[n] = '\0';
	return 0;
}

/* A reference after '&': one of the five entities or a character reference. */
static __attribute__((unused)) int tx_reference(const char **s, const char *end)
{
	static const char *const ents[] = {"amp;", "lt;", "gt;", "quot;", "apos;"};
	for (int i = 0; i < 5; i++) {
		size_t n = strlen(ents[i]);
		if ((size_t)(end - *s) >= n && strncmp(*s, ents[i], n) == 0) {
			*s += n;
			return 0;
		}
	}
	if (*s < end && **s == '#') {
		(*s)++;
		int hex = *s < end && **s == 'x';
		if (hex)
			(*s)++;
		int digits = 0;
		while (*s < end && (((**s >= '0' && **s <= '9')) ||
				    (hex && ((**s >= 'a' && **s <= 'f') || (**s >= 'A' && **s <= 'F'))))) {
			(*s)++;
			digits++;
		}
		if (digits && *s < end && **s == ';') {
			(*s)++;
			return 0;
		}
	}
	return -1;
}

static __attribute__((unused)) void tx_ws(const char **s, const char *end)
{
	while (*s < end && (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r'))
		(*s)++;
}

/* Checks that the document is well-formed; 0, or -1 with a reason in err. */
static __attribute__((unused)) int tu_xml_check(const char *doc, size_t len, const struct tu_xml_cb *cb, char *err,
			size_t errlen)
{
	const char *s = doc, *end = doc + len;
	char stack[TU_XML_MAX_DEPTH][64];
	int depth = 0, roots = 0;
#define TX_FAIL(msg)                                                                      \
	do {                                                                              \
		snprintf(err, errlen, "%s at byte %ld", msg, (long)(s - doc));            \
		return -1;                                                                \
	} while (0)
	if (len >= 5 && strncmp(s, "<?xml", 5) == 0) {
		const char *e = strstr(s, "?>");
		if (!e)
			TX_FAIL("unterminated XML declaration");
		s = e + 2;
	}
	while (s < end) {
		if (*s != '<') {
			if (*s == '&') {
				s++;
				if (tx_reference(&s, end))
					TX_FAIL("bad reference");
				continue;
			}
			if (depth == 0 && !(*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'))
				TX_FAIL("text outside the root element");
			if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t' && *s != '\r')
				TX_FAIL("control character");
			s++;
			continue;
		}
		if (end - s >= 4 && strncmp(s, "<!--", 4) == 0) {
			const char *e = strstr(s + 4, "-->");
			if (!e || e > end)
				TX_FAIL("unterminated comment");
			s = e + 3;
			continue;
		}
		if (end - s >= 2 && s[1] == '?') {
			const char *e = strstr(s, "?>");
			if (!e)
				TX_FAIL("unterminated processing instruction");
			s = e + 2;
			continue;
		}
		if (end - s >= 2 && s[1] == '/') {
			char name[64];
			s += 2;
			if (tx_name(&s, end, name, sizeof(name)))
				TX_FAIL("bad end tag name");
			tx_ws(&s, end);
			if (s >= end || *s != '>')
				TX_FAIL("'>' expected");
			s++;
			if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
				TX_FAIL("end tag does not match");
			depth--;
			if (cb && cb->on_end)
				cb->on_end(cb->ctx, name, depth);
			continue;
		}
		/* a start tag */
		char name[64];
		struct tu_xml_attr attrs[TU_XML_MAX_ATTRS];
		int n = 0;
		s++;
		if (tx_name(&s, end, name, sizeof(name)))
			TX_FAIL("bad element name");
		if (depth == 0 && roots++)
			TX_FAIL("a second root element");
		for (;;) {
			const char *before = s;
			tx_ws(&s, end);
			if (s >= end)
				TX_FAIL("unterminated start tag");
			if (*s == '>' || (*s == '/' && end - s >= 2 && s[1] == '>'))
				break;
			if (s == before)
				TX_FAIL("space expected before an attribute");
			struct tu_xml_attr a;
			if (tx_name(&s, end, a.name, sizeof(a.name)))
				TX_FAIL("bad attribute name");
			tx_ws(&s, end);
			if (s >= end || *s != '=')
				TX_FAIL("'=' expected");
			s++;
			tx_ws(&s, end);
			if (s >= end || (*s != '"' && *s != '\''))
				TX_FAIL("quoted attribute value expected");
			char q = *s++;
			size_t vn = 0;
			while (s < end && *s != q) {
				if (*s == '<')
					TX_FAIL("'<' in an attribute value");
				if (*s == '&') {
					s++;
					if (tx_reference(&s, end))
						TX_FAIL("bad reference in an attribute value");
					continue;
				}
				if (vn + 1 < sizeof(a.value))
					a.value[vn++] = *s;
				s++;
			}
			if (s >= end)
				TX_FAIL("unterminated attribute value");
			s++;
			a.value[vn] = '\0';
			for (int i = 0; i < n; i++)
				if (strcmp(attrs[i].name, a.name) == 0)
					TX_FAIL("duplicate attribute");
			if (n < TU_XML_MAX_ATTRS)
				attrs[n++] = a;
		}
		int empty = *s == '/';
		s += empty ? 2 : 1;
		if (cb && cb->on_start)
			cb->on_start(cb->ctx, name, attrs, n, depth);
		if (empty) {
			if (cb && cb->on_end)
				cb->on_end(cb->ctx, name, depth);
			continue;
		}
		if (depth >= TU_XML_MAX_DEPTH)
			TX_FAIL("too deep");
		snprintf(stack[depth++], sizeof(stack[0]), "%s", name);
	}
	if (depth)
		TX_FAIL("unclosed element");
	if (!roots)
		TX_FAIL("no root element");
#undef TX_FAIL
	return 0;
}

static __attribute__((unused)) const char *tu_xml_attr(const struct tu_xml_attr *a, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(a[i].name, name) == 0)
			return a[i].value;
	return NULL;
}

#endif

/* Strict parsing of the GSA_* variables (see config.h). */
#include "preload/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "preload/log.h"

/* Defaults for the sparse layer are provisional until issue 3 measures them. */
const struct gsa_config_var gsa_config_vars[] = {
	{"GSA_RATIO", "0.3", "a number in (0, 1]", "fraction of KV blocks each decode step keeps"},
	{"GSA_DISABLE", "0", "0 or 1 (also false/true, no/yes, off/on)",
	 "1 makes the library inert: every call passes through, no trace"},
	{"GSA_TRACE", "unset", "a file path; %p becomes the process id, %% a percent sign",
	 "write a binary event trace there (read it with gsa-trace)"},
	{"GSA_LOG", "warn", "error, warn, info or debug", "what the library prints on stderr"},
	{"GSA_POLICY", "mean", "mean or quest", "block scoring policy (GSA mean key, Quest min/max)"},
	{"GSA_SINK_BLOCKS", "1", "an integer in [0, 1024]", "first blocks of a sequence always kept"},
	{"GSA_LOCAL_BLOCKS", "2", "an integer in [1, 1024]",
	 "last blocks of a sequence always kept (the partial last block among them)"},
	{"GSA_MIN_BLOCKS", "16", "an integer in [1, 1048576], at most GSA_MAX_BLOCKS",
	 "smallest per-sequence budget in blocks"},
	{"GSA_MAX_BLOCKS", "none", "none or an integer in [1, 1048576]",
	 "largest per-sequence budget in blocks"},
	{"GSA_MIN_TOKENS", "2048", "an integer in [0, 16777216]",
	 "sequences shorter than this stay dense"},
	{"GSA_TRACE_BLOCKS", "none", "none, all, or layer numbers in [0, 4095] separated by commas",
	 "layers whose kept-block bitmaps (first 8 sequences of each launch) go to the trace, for gsa-trace heatmap"},
	{"GSA_KV_DTYPE", "bf16", "bf16 or fp16",
	 "element type of the KV cache and queries (the launch does not say; fp8 caches run dense)"},
};
const size_t gsa_config_var_count = sizeof gsa_config_vars / sizeof gsa_config_vars[0];

void gsa_config_defaults(struct gsa_config *c)
{
	memset(c, 0, sizeof *c);
	c->ratio = 0.3;
	c->log_level = GSA_LOG_WARN;
	c->policy = GSA_POLICY_MEAN;
	c->sink_blocks = 1;
	c->local_blocks = 2;
	c->min_blocks = 16;
	c->max_blocks = 0;
	c->min_tokens = 2048;
	strcpy(c->trace_blocks_text, "none");
}

static const struct gsa_config_var *var_info(const char *name)
{
	for (size_t i = 0; i < gsa_config_var_count; i++)
		if (strcmp(gsa_config_vars[i].name, name) == 0)
			return &gsa_config_vars[i];
	return NULL;
}

static void reject(struct gsa_config_errors *errs, const char *name, const char *value)
{
	if (errs->count >= GSA_CONFIG_MAX_ERRORS)
		return;
	const struct gsa_config_var *v = var_info(name);
	snprintf(errs->line[errs->count++], sizeof errs->line[0],
		 "gsa-preload: %s=\"%.80s\" is invalid: expected %s; running unmodified (pass-through)",
		 name, value, v ? v->accepted : "a valid value");
}

static bool parse_double(const char *s, double *out)
{
	/* Plain decimal only: no leading space, hex floats, nan or inf. */
	if (!((*s >= '0' && *s <= '9') || *s == '.' || *s == '+' || *s == '-') ||
	    strpbrk(s, "xXpP"))
		return false;
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (errno || *end || !isfinite(d))
		return false;
	*out = d;
	return true;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
	if (!*s || !((*s >= '0' && *s <= '9') || *s == '-' || *s == '+'))
		return false;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) { *out = true; return true; }
		if (strcasecmp(s, no[i]) == 0) { *out = false; return true; }
	}
	return false;
}

/* "none", "all" or "0,5,31". */
static bool parse_layers(const char *s, struct gsa_config *c)
{
	memset(c->trace_blocks, 0, sizeof c->trace_blocks);
	if (strlen(s) >= sizeof c->trace_blocks_text)
		return false;
	strcpy(c->trace_blocks_text, s);
	if (strcmp(s, "none") == 0)
		return true;
	if (strcmp(s, "all") == 0) {
		memset(c->trace_blocks, 0xff, sizeof c->trace_blocks);
		return true;
	}
	if (!s[0] || s[0] == ',' || s[strlen(s) - 1] == ',' || strstr(s, ",,"))
		return false;
	char buf[256];
	strcpy(buf, s);
	char *save = NULL;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v;
		if (!parse_long(tok, 0, GSA_MAX_LAYERS - 1, &v))
			return false;
		c->trace_blocks[v / 8] |= (unsigned char)(1u << (v % 8));
	}
	return true;
}

static int index_of(const char *s, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static const char *const log_names[] = {"error", "warn", "info", "debug"};
static const char *const policy_names[] = {"mean", "quest"};
/* In the order of enum gsa_kv_dtype. */
static const char *const dtype_names[] = {"bf16", "fp16"};

size_t gsa_config_parse(struct gsa_config *c, const char *(*get)(const char *name),
			struct gsa_config_errors *errs)
{
	gsa_config_defaults(c);
	errs->count = 0;
	const char *s;

	if ((s = get("GSA_RATIO"))) {
		double d;
		if (parse_double(s, &d) && d > 0.0 && d <= 1.0)
			c->ratio = d;
		else
			reject(errs, "GSA_RATIO", s);
	}
	if ((s = get("GSA_DISABLE")) && !parse_bool(s, &c->disable))
		reject(errs, "GSA_DISABLE", s);
	if ((s = get("GSA_TRACE"))) {
		if (*s && strlen(s) < sizeof c->trace_path)
			strcpy(c->trace_path, s);
		else
			reject(errs, "GSA_TRACE", s);
	}
	if ((s = get("GSA_LOG"))) {
		int i = index_of(s, log_names, 4);
		if (i >= 0)
			c->log_level = i;
		else
			reject(errs, "GSA_LOG", s);
	}
	if ((s = get("GSA_POLICY"))) {
		int i = index_of(s, policy_names, 2);
		if (i >= 0)
			c->policy = i;
		else
			reject(errs, "GSA_POLICY", s);
	}
	if ((s = get("GSA_SINK_BLOCKS")) && !parse_long(s, 0, 1024, &c->sink_blocks))
		reject(errs, "GSA_SINK_BLOCKS", s);
	if ((s = get("GSA_LOCAL_BLOCKS")) && !parse_long(s, 1, 1024, &c->local_blocks))
		reject(errs, "GSA_LOCAL_BLOCKS", s);
	if ((s = get("GSA_MAX_BLOCKS")) && strcmp(s, "none") != 0 &&
	    !parse_long(s, 1, 1L << 20, &c->max_blocks))
		reject(errs, "GSA_MAX_BLOCKS", s);
	if ((s = get("GSA_MIN_BLOCKS"))) {
		long v;
		if (parse_long(s, 1, 1L << 20, &v) && (c->max_blocks == 0 || v <= c->max_blocks))
			c->min_blocks = v;
		else
			reject(errs, "GSA_MIN_BLOCKS", s);
	} else if (c->max_blocks && c->max_blocks < c->min_blocks) {
		/* An explicit cap below the default floor lowers the floor with it. */
		c->min_blocks = c->max_blocks;
	}
	if ((s = get("GSA_MIN_TOKENS")) && !parse_long(s, 0, 1L << 24, &c->min_tokens))
		reject(errs, "GSA_MIN_TOKENS", s);
	if ((s = get("GSA_TRACE_BLOCKS")) && !parse_layers(s, c))
		reject(errs, "GSA_TRACE_BLOCKS", s);
	if ((s = get("GSA_KV_DTYPE"))) {
		int i = index_of(s, dtype_names, 2);
		if (i >= 0)
			c->kv_dtype = i;
		else
			reject(errs, "GSA_KV_DTYPE", s);
	}
	return errs->count;
}

void gsa_config_describe(const struct gsa_config *c,
			 void (*emit)(void *ctx, const char *key, const char *value), void *ctx)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%g", c->ratio);
	emit(ctx, "GSA_RATIO", buf);
	emit(ctx, "GSA_DISABLE", c->disable ? "1" : "0");
	emit(ctx, "GSA_TRACE", c->trace_path);
	emit(ctx, "GSA_LOG", log_names[c->log_level]);
	emit(ctx, "GSA_POLICY", policy_names[c->policy]);
	snprintf(buf, sizeof buf, "%ld", c->sink_blocks);
	emit(ctx, "GSA_SINK_BLOCKS", buf);
	snprintf(buf, sizeof buf, "%ld", c->local_blocks);
	emit(ctx, "GSA_LOCAL_BLOCKS", buf);
	snprintf(buf, sizeof buf, "%ld", c->min_blocks);
	emit(ctx, "GSA_MIN_BLOCKS", buf);
	if (c->max_blocks)
		snprintf(buf, sizeof buf, "%ld", c->max_blocks);
	else
		strcpy(buf, "none");
	emit(ctx, "GSA_MAX_BLOCKS", buf);
	snprintf(buf, sizeof buf, "%ld", c->min_tokens);
	emit(ctx, "GSA_MIN_TOKENS", buf);
	emit(ctx, "GSA_TRACE_BLOCKS", c->trace_blocks_text);
	emit(ctx, "GSA_KV_DTYPE", dtype_names[c->kv_dtype]);
}

/* Configuration from GSA_* environment variables, read once when the library loads.
 * Parsing is strict: a value is accepted whole or rejected with a message naming the
 * variable, the value and the accepted range; nothing is clamped or guessed. */
#ifndef GSA_CONFIG_H
#define GSA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum gsa_policy { GSA_POLICY_MEAN = 0, GSA_POLICY_QUEST = 1 };

#define GSA_MAX_LAYERS 4096


struct gsa_config {
	double ratio;          /* GSA_RATIO: fraction of blocks kept, (0, 1] */
	bool disable;          /* GSA_DISABLE: inert library, every call passes through */
	char trace_path[4096]; /* GSA_TRACE: "" when unset; %p is expanded when opened */
	int log_level;         /* GSA_LOG: enum gsa_log_level */
	int policy;            /* GSA_POLICY: enum gsa_policy */
	long sink_blocks;      /* GSA_SINK_BLOCKS: first blocks always kept */
	long local_blocks;     /* GSA_LOCAL_BLOCKS: last blocks always kept */
	long min_blocks;       /* GSA_MIN_BLOCKS: lower clamp of the per-sequence budget */
	long max_blocks;       /* GSA_MAX_BLOCKS: upper clamp; 0 = none */
	long min_tokens;       /* GSA_MIN_TOKENS: shorter sequences stay dense */
	int kv_dtype;          /* GSA_KV_DTYPE: enum gsa_kv_dtype (sparse/select_args.h) */
	/* GSA_TRACE_BLOCKS: layers whose kept-block bitmaps are traced (bit per layer). */
	unsigned char trace_blocks[GSA_MAX_LAYERS / 8];
	char trace_blocks_text[256];
};

static inline bool gsa_config_traces_blocks(const struct gsa_config *c, int layer)
{
	return layer >= 0 && layer < GSA_MAX_LAYERS && (c->trace_blocks[layer / 8] >> (layer % 8) & 1);
}

/* One accepted variable: its name, default, range text (for messages and the README). */
struct gsa_config_var {
	const char *name;
	const char *default_text;
	const char *accepted;
	const char *meaning;
};
extern const struct gsa_config_var gsa_config_vars[];
extern const size_t gsa_config_var_count;

#define GSA_CONFIG_MAX_ERRORS 16
struct gsa_config_errors {
	size_t count;
	char line[GSA_CONFIG_MAX_ERRORS][256]; /* each a complete message, no newline */
};

void gsa_config_defaults(struct gsa_config *c);

/* Fills c from get(name) (getenv in the library, a table in tests). Returns the number of
 * rejected variables; their messages are in errs. c holds defaults for rejected ones. */
size_t gsa_config_parse(struct gsa_config *c, const char *(*get)(const char *name),
			struct gsa_config_errors *errs);

/* Writes "KEY=value" pairs of the effective configuration through emit(). */
void gsa_config_describe(const struct gsa_config *c,
			 void (*emit)(void *ctx, const char *key, const char *value), void *ctx);

#endif

/* GSA_* parsing: every accepted form, every rejected form with its message, defaults. */
#include <math.h>
#include <stdlib.h>

#include "preload/config.h"
#include "tests/cpu/check.h"

static const char *env_names[16], *env_values[16];
static int env_n;

static const char *fake_get(const char *name)
{
	for (int i = 0; i < env_n; i++)
		if (strcmp(env_names[i], name) == 0)
			return env_values[i];
	return NULL;
}

static size_t parse1(struct gsa_config *c, struct gsa_config_errors *e, const char *name,
		     const char *value)
{
	env_n = 1;
	env_names[0] = name;
	env_values[0] = value;
	return gsa_config_parse(c, fake_get, e);
}

static void defaults(void)
{
	struct gsa_config c;
	struct gsa_config_errors e;
	env_n = 0;
	CHECK_EQ_U64(gsa_config_parse(&c, fake_get, &e), 0);
	CHECK(fabs(c.ratio - 0.3) < 1e-12, "ratio %g", c.ratio);
	CHECK(!c.disable, "disable");
	CHECK_STR(c.trace_path, "");
	CHECK_EQ_U64(c.log_level, 1);
	CHECK_EQ_U64(c.policy, GSA_POLICY_MEAN);
	CHECK_EQ_U64(c.sink_blocks, 1);
	CHECK_EQ_U64(c.local_blocks, 2);
	CHECK_EQ_U64(c.min_blocks, 16);
	CHECK_EQ_U64(c.max_blocks, 0);
	CHECK_EQ_U64(c.min_tokens, 2048);
}

static void ratio(void)
{
	struct gsa_config c;
	struct gsa_config_errors e;
	const char *good[] = {"0.3", "1", "1.0", "0.05", "1e-3", ".5"};
	const double want[] = {0.3, 1.0, 1.0, 0.05, 1e-3, 0.5};
	for (int i = 0; i < 6; i++) {
		CHECK_EQ_U64(parse1(&c, &e, "GSA_RATIO", good[i]), 0);
		CHECK(c.ratio == want[i], "GSA_RATIO=%s gave %g", good[i], c.ratio);
	}
	const char *bad[] = {"abc", "0", "1.5", "-1", "", "0.3x", "nan", "inf", " 0.3", "0x0.4",
			     "1.0000001", "0.3 "};
	for (int i = 0; i < 12; i++) {
		CHECK_EQ_U64(parse1(&c, &e, "GSA_RATIO", bad[i]), 1);
		CHECK(c.ratio == 0.3, "rejected GSA_RATIO=%s must leave the default", bad[i]);
		char want_text[64];
		snprintf(want_text, sizeof want_text, "GSA_RATIO=\"%s\"", bad[i]);
		CHECK_CONTAINS(e.line[0], want_text);
		CHECK_CONTAINS(e.line[0], "(0, 1]");
		CHECK_CONTAINS(e.line[0], "pass-through");
		CHECK(strncmp(e.line[0], "gsa-preload: ", 13) == 0, "prefix: %s", e.line[0]);
		CHECK(!strchr(e.line[0], '\n'), "one line");
	}
}

static void others(void)
{
	struct gsa_config c;
	struct gsa_config_errors e;
	CHECK_EQ_U64(parse1(&c, &e, "GSA_DISABLE", "1"), 0);
	CHECK(c.disable, "GSA_DISABLE=1");
	CHECK_EQ_U64(parse1(&c, &e, "GSA_DISABLE", "off"), 0);
	CHECK(!c.disable, "GSA_DISABLE=off");
	CHECK_EQ_U64(parse1(&c, &e, "GSA_DISABLE", "2"), 1);
	CHECK_CONTAINS(e.line[0], "GSA_DISABLE=\"2\"");
	CHECK_EQ_U64(parse1(&c, &e, "GSA_TRACE", "/tmp/t-%p.bin"), 0);
	CHECK_STR(c.trace_path, "/tmp/t-%p.bin");
	CHECK_EQ_U64(parse1(&c, &e, "GSA_TRACE", ""), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_LOG", "debug"), 0);
	CHECK_EQ_U64(c.log_level, 3);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_LOG", "verbose"), 1);
	CHECK_CONTAINS(e.line[0], "error, warn, info or debug");
	CHECK_EQ_U64(parse1(&c, &e, "GSA_POLICY", "quest"), 0);
	CHECK_EQ_U64(c.policy, GSA_POLICY_QUEST);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_POLICY", "Quest"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_SINK_BLOCKS", "0"), 0);
	CHECK_EQ_U64(c.sink_blocks, 0);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_SINK_BLOCKS", "1025"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_LOCAL_BLOCKS", "0"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_LOCAL_BLOCKS", "2.5"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_MAX_BLOCKS", "none"), 0);
	CHECK_EQ_U64(c.max_blocks, 0);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_MAX_BLOCKS", "8"), 0);
	CHECK_EQ_U64(c.max_blocks, 8);
	CHECK_EQ_U64(c.min_blocks, 8); /* an explicit cap below the default floor lowers it */
	CHECK_EQ_U64(parse1(&c, &e, "GSA_TRACE_BLOCKS", "0,5,31"), 0);
	CHECK(gsa_config_traces_blocks(&c, 0) && gsa_config_traces_blocks(&c, 5) &&
		      gsa_config_traces_blocks(&c, 31) && !gsa_config_traces_blocks(&c, 1),
	      "layer list");
	CHECK_EQ_U64(parse1(&c, &e, "GSA_TRACE_BLOCKS", "all"), 0);
	CHECK(gsa_config_traces_blocks(&c, 4095), "all");
	CHECK_EQ_U64(parse1(&c, &e, "GSA_TRACE_BLOCKS", "1,,2"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_TRACE_BLOCKS", "4096"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_TRACE_BLOCKS", "3,"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_KV_DTYPE", "fp16"), 0);
	CHECK_EQ_U64(c.kv_dtype, 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_KV_DTYPE", "fp8"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_MIN_TOKENS", "-5"), 1);
	CHECK_EQ_U64(parse1(&c, &e, "GSA_MIN_TOKENS", "99999999999999999999"), 1);

	/* Both bounds given and inconsistent: the floor is the one rejected. */
	env_n = 2;
	env_names[0] = "GSA_MIN_BLOCKS", env_values[0] = "64";
	env_names[1] = "GSA_MAX_BLOCKS", env_values[1] = "32";
	CHECK_EQ_U64(gsa_config_parse(&c, fake_get, &e), 1);
	CHECK_CONTAINS(e.line[0], "GSA_MIN_BLOCKS=\"64\"");

	/* Several bad variables: one line each. */
	env_names[0] = "GSA_RATIO", env_values[0] = "2";
	env_names[1] = "GSA_LOG", env_values[1] = "loud";
	CHECK_EQ_U64(gsa_config_parse(&c, fake_get, &e), 2);
	CHECK_CONTAINS(e.line[0], "GSA_RATIO");
	CHECK_CONTAINS(e.line[1], "GSA_LOG");
}

static void table_documents_every_variable(void)
{
	/* Each variable the parser reads is in the table the README is checked against. */
	const char *read[] = {"GSA_RATIO", "GSA_DISABLE", "GSA_TRACE", "GSA_LOG", "GSA_POLICY",
			      "GSA_SINK_BLOCKS", "GSA_LOCAL_BLOCKS", "GSA_MIN_BLOCKS",
			      "GSA_MAX_BLOCKS", "GSA_MIN_TOKENS", "GSA_KV_DTYPE", "GSA_TRACE_BLOCKS"};
	CHECK_EQ_U64(gsa_config_var_count, sizeof read / sizeof read[0]);
	for (size_t i = 0; i < sizeof read / sizeof read[0]; i++) {
		int found = 0;
		for (size_t j = 0; j < gsa_config_var_count; j++)
			found |= strcmp(gsa_config_vars[j].name, read[i]) == 0;
		CHECK(found, "%s missing from gsa_config_vars", read[i]);
	}
}

int main(void)
{
	defaults();
	ratio();
	others();
	table_documents_every_variable();
	return check_report("test_config");
}

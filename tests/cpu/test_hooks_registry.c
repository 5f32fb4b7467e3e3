/* The adapter registry and dispatch: matching by name and signature, decode failure and
 * success both launch with parameters the dispatch returns, caller's array untouched. */
#include "hooks/registry.h"
#include "tests/cpu/check.h"

static int decodes;
static bool decode_ok;

static bool match_two_ints(const struct gsa_kernel *k)
{
	return strcmp(k->name, "attn") == 0 && k->param_count == 2 && k->param_sizes[0] == 8 &&
	       k->param_sizes[1] == 4;
}

static bool decode(const struct gsa_launch *l, struct gsa_attention *a)
{
	decodes++;
	memset(a, 0, sizeof *a);
	a->num_seqs = *(int *)l->params[1];
	return decode_ok;
}

static const struct gsa_adapter test_adapter = {"test-family", match_two_ints, decode, NULL};

int main(void)
{
	uint32_t sizes_ok[2] = {8, 4}, sizes_bad[2] = {8, 8}, offs[2] = {0, 8};
	struct gsa_kernel k = {.name = (char *)"attn", .param_count = 2, .param_offsets = offs,
			       .param_sizes = sizes_ok};
	CHECK(gsa_hooks_match(&k) == NULL, "no adapter before registration");
	CHECK(gsa_hooks_register(&test_adapter), "register");
	CHECK(gsa_hooks_match(&k) == &test_adapter, "name and signature match");
	k.param_sizes = sizes_bad;
	CHECK(gsa_hooks_match(&k) == NULL, "same name, other signature: no match");
	k.param_sizes = sizes_ok;
	k.name = (char *)"attn2";
	CHECK(gsa_hooks_match(&k) == NULL, "other name: no match");

	k.name = (char *)"attn";
	k.adapter = &test_adapter;
	void *ptr = (void *)0x1234;
	int n = 7;
	void *params[2] = {&ptr, &n};
	struct gsa_launch l = {.kernel = &k, .params = params};
	decode_ok = false;
	CHECK(gsa_hooks_dispatch(&l) == params, "failed decode launches the caller's parameters");
	decode_ok = true;
	CHECK(gsa_hooks_dispatch(&l) == params, "no selection yet: unmodified launch");
	CHECK_EQ_U64(decodes, 2);
	CHECK(params[0] == &ptr && params[1] == &n && n == 7, "caller's array untouched");
	return check_report("test_hooks_registry");
}

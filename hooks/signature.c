/* The signature solver (see signature.h): dynamic programming over (template position,
 * parameter position). A choice is part of some complete layout exactly when it is reachable
 * from the start and can reach the end; a field is resolved when the choices for its
 * template entry that lie on complete layouts all say the same thing. */
#include "hooks/signature.h"

#include <stdlib.h>
#include <string.h>

/* The sizes a kind may take, 0 meaning absent; terminated by -1. */
static const int *options(uint8_t kind)
{
	static const int ptr[] = {8, -1}, ptr_opt[] = {8, 0, -1}, f32[] = {4, -1},
			 i64[] = {8, -1}, i32[] = {4, -1}, any_int[] = {4, 0, -1},
			 any_opt[] = {8, 4, 0, -1};
	switch (kind) {
	case GSA_P_PTR: return ptr;
	case GSA_P_PTR_OPT: return ptr_opt;
	case GSA_P_F32: return f32;
	case GSA_P_I64: return i64;
	case GSA_P_I32: return i32;
	case GSA_P_INT: return any_int;
	default: return any_opt;
	}
}

bool gsa_sig_solve(const struct gsa_sig_tmpl *t, const uint32_t *sizes, uint32_t n_sizes,
		   int n_fields, int *field_param)
{
	const uint32_t T = t->n_params, N = n_sizes;
	/* fwd[i][j]: the first i template entries can produce the first j parameters.
	 * bwd[i][j]: entries i.. can produce parameters j.. (hidden trailing ones included). */
	uint8_t *fwd = calloc((size_t)(T + 1) * (N + 1), 1);
	uint8_t *bwd = calloc((size_t)(T + 1) * (N + 1), 1);
	bool ok = false;
	if (!fwd || !bwd)
		goto out;
#define F(i, j) fwd[(size_t)(i) * (N + 1) + (j)]
#define B(i, j) bwd[(size_t)(i) * (N + 1) + (j)]
	F(0, 0) = 1;
	for (uint32_t i = 0; i < T; i++)
		for (uint32_t j = 0; j <= N; j++) {
			if (!F(i, j))
				continue;
			for (const int *o = options(t->params[i].kind); *o >= 0; o++) {
				if (*o == 0)
					F(i + 1, j) = 1;
				else if (j < N && sizes[j] == (uint32_t)*o)
					F(i + 1, j + 1) = 1;
			}
		}
	/* The end: all template entries used, then up to max_hidden 8-byte parameters. */
	for (uint32_t j = N + 1; j-- > 0;) {
		uint32_t rest = N - j;
		bool hidden_ok = rest <= t->max_hidden;
		for (uint32_t k = j; k < N && hidden_ok; k++)
			hidden_ok = sizes[k] == 8;
		B(T, j) = hidden_ok;
	}
	for (uint32_t i = T; i-- > 0;)
		for (uint32_t j = 0; j <= N; j++)
			for (const int *o = options(t->params[i].kind); *o >= 0; o++) {
				if (*o == 0 ? B(i + 1, j)
					    : (j < N && sizes[j] == (uint32_t)*o && B(i + 1, j + 1)))
					B(i, j) = 1;
			}
	if (!B(0, 0))
		goto out;

	for (int f = 0; f < n_fields; f++)
		field_param[f] = GSA_FIELD_UNKNOWN;
	ok = true;
	for (uint32_t i = 0; i < T && ok; i++) {
		int f = t->params[i].field;
		if (f < 0 || f >= n_fields)
			continue;
		int seen = GSA_FIELD_UNKNOWN;
		for (uint32_t j = 0; j <= N && ok; j++) {
			if (!F(i, j))
				continue;
			for (const int *o = options(t->params[i].kind); *o >= 0; o++) {
				int here;
				if (*o == 0 && B(i + 1, j))
					here = GSA_FIELD_ABSENT;
				else if (*o && j < N && sizes[j] == (uint32_t)*o && B(i + 1, j + 1))
					here = (int)j;
				else
					continue;
				if (seen == GSA_FIELD_UNKNOWN)
					seen = here;
				else if (seen != here)
					ok = false;
			}
		}
		field_param[f] = seen;
	}
#undef F
#undef B
out:
	free(fwd);
	free(bwd);
	return ok;
}

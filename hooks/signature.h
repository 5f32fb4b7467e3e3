/* Matching a kernel's parameter layout, as the driver reports it (sizes in order), against
 * the parameter list of its source. Compilers such as Triton drop constexpr arguments,
 * arguments passed as None and integers equal to 1, size integers by value (32 or 64 bit)
 * and append hidden parameters, so one source function yields several layouts. A template
 * says what each source parameter may become; the solver finds every way the template can
 * produce the reported sizes and accepts only if all of them agree on where the fields an
 * adapter needs are. */
#ifndef GSA_HOOKS_SIGNATURE_H
#define GSA_HOOKS_SIGNATURE_H

#include <stdbool.h>
#include <stdint.h>

enum gsa_param_kind {
	GSA_P_PTR,      /* a pointer that is always passed: 8 bytes */
	GSA_P_PTR_OPT,  /* a pointer that may be None: 8 or absent */
	GSA_P_F32,      /* a float: 4 */
	GSA_P_I64,      /* an int annotated 64-bit: 8 (annotated ints are not specialised) */
	GSA_P_I32,      /* an int annotated 32-bit: 4 */
	GSA_P_INT,      /* an unannotated int (a count): 4, or absent when equal to 1 (Triton
	                 * types it 64-bit only past 2^31, which no count or stride here reaches) */
	GSA_P_ANY_OPT,  /* a scale that may be a tensor, a float or None: 8, 4 or absent */
};

struct gsa_param_tmpl {
	const char *name;
	uint8_t kind;  /* enum gsa_param_kind */
	int8_t field;  /* the adapter's field this parameter fills, or -1 */
};

struct gsa_sig_tmpl {
	const char *kernel;  /* the compiled kernel's name */
	const struct gsa_param_tmpl *params;
	uint32_t n_params;
	uint32_t max_hidden; /* trailing 8-byte parameters the compiler may append */
};

#define GSA_MAX_FIELDS 24
#define GSA_FIELD_ABSENT -1   /* dropped: a pointer that was None, or an int equal to 1 */
#define GSA_FIELD_UNKNOWN -2  /* not in the template, or the layouts disagree */

/* Where each field is: field_param[f] = its index in the launch's parameters, or
 * GSA_FIELD_ABSENT. Returns false when the sizes fit no layout of the template or the
 * layouts that fit disagree about any field in 0..n_fields-1. */
bool gsa_sig_solve(const struct gsa_sig_tmpl *t, const uint32_t *sizes, uint32_t n_sizes,
		   int n_fields, int *field_param);

#endif

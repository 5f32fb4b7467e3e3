/* A minimal assertion kit for the CPU tests: each CHECK counts as one check; a test binary
 * ends with check_report(), which prints "<name>: P passed, F failed" and returns the exit
 * status. tests/cpu/run.sh adds the counts of all binaries into the closing line. */
#ifndef GSA_TEST_CHECK_H
#define GSA_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (cond) {                                                           \
			check_passed++;                                               \
		} else {                                                              \
			check_failed++;                                               \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fputc('\n', stderr);                                          \
		}                                                                     \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                            \
	do {                                                                          \
		uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);          \
		CHECK(check_a_ == check_b_, "%s = %" PRIu64 ", expected %" PRIu64, #a, \
		      check_a_, check_b_);                                            \
	} while (0)

#define CHECK_STR(a, b)                                                               \
	do {                                                                          \
		const char *check_a_ = (a), *check_b_ = (b);                          \
		CHECK(check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0,        \
		      "%s = \"%s\", expected \"%s\"", #a, check_a_ ? check_a_ : "(null)", \
		      check_b_ ? check_b_ : "(null)");                                \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                   \
	do {                                                                          \
		const char *check_h_ = (hay), *check_n_ = (needle);                   \
		CHECK(check_h_ && strstr(check_h_, check_n_) != NULL,                 \
		      "\"%s\" not found in:\n%s", check_n_, check_h_ ? check_h_ : "(null)"); \
	} while (0)

static inline int check_report(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif

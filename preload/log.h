/* Logging: one line per message on stderr, prefixed "gsa-preload: ", filtered by GSA_LOG,
 * and mirrored into the trace (GSA_REC_LOG) when tracing. Never allocates; one write(2). */
#ifndef GSA_LOG_H
#define GSA_LOG_H

#include <stdatomic.h>

enum gsa_log_level { GSA_LOG_ERROR = 0, GSA_LOG_WARN = 1, GSA_LOG_INFO = 2, GSA_LOG_DEBUG = 3 };

/* Stable codes for what the library logs, so traces and tools can group them. */
enum gsa_log_code {
	GSA_CODE_GENERIC = 0,
	GSA_CODE_CONFIG = 1,        /* a GSA_* variable was rejected */
	GSA_CODE_DRIVER = 2,        /* libcuda or one of its functions could not be found */
	GSA_CODE_SLOTS = 3,         /* more resolved variants than wrapper slots: left unwrapped */
	GSA_CODE_TABLE_FULL = 4,    /* kernel table full: launches pass through uncounted */
	GSA_CODE_TRACE_IO = 5,      /* the trace file could not be opened or written */
	GSA_CODE_ALLOC_REG = 6,     /* allocation registry could not grow */
	GSA_CODE_FAIL_OPEN = 7,     /* an adapter failed: the launch ran unmodified */
	GSA_CODE_SIGNATURE = 8,     /* a known kernel name with an unknown parameter signature */
};

extern int gsa_log_level;

void gsa_log(int level, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Logs at most once per call site for the life of the process. */
#define GSA_LOG_ONCE(level, code, ...)                                                   \
	do {                                                                             \
		static atomic_flag gsa_once_ = ATOMIC_FLAG_INIT;                         \
		if (!atomic_flag_test_and_set_explicit(&gsa_once_, memory_order_relaxed)) \
			gsa_log(level, code, __VA_ARGS__);                               \
	} while (0)

#endif

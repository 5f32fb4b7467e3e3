/* Logging (see log.h). */
#include "preload/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "preload/trace.h"

int gsa_log_level = GSA_LOG_WARN;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void gsa_log(int level, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;

	if (level <= gsa_log_level) {
		char line[600];
		int m = snprintf(line, sizeof line, "gsa-preload: %s%s%.*s\n",
				 level <= GSA_LOG_WARN ? level_names[level] : "",
				 level <= GSA_LOG_WARN ? ": " : "", n, msg);
		if (m > 0) {
			if ((size_t)m >= sizeof line)
				m = sizeof line - 1;
			ssize_t w = write(STDERR_FILENO, line, (size_t)m);
			(void)w;
		}
	}
	if (level <= GSA_LOG_INFO)
		gsa_trace_log(level, code, msg, (size_t)n);
}

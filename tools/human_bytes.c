#include "tools/human_bytes.h"

#include <inttypes.h>
#include <stdio.h>

char *gsa_human_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = {"KiB", "MiB", "GiB"};
	if (bytes < 1024) {
		snprintf(buf, len, "%" PRIu64 " B", bytes);
		return buf;
	}
	double v = (double)bytes / 1024.0;
	size_t u = 0;
	/* Move up a unit when the value would print as 1024.0 or more, so 1048575 bytes is
	 * "1.0 MiB" and not "1024.0 KiB". GiB is the largest unit. */
	while (u + 1 < sizeof(units) / sizeof(units[0]) && v >= 1023.95) {
		v /= 1024.0;
		u++;
	}
	snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

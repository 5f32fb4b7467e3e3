/* Byte counts for people: "512 B", "1.5 KiB", "79.2 GiB" (binary units, one decimal). */
#ifndef GSA_HUMAN_BYTES_H
#define GSA_HUMAN_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Writes into buf (24 bytes are always enough) and returns buf. */
char *gsa_human_bytes(uint64_t bytes, char *buf, size_t len);

#endif

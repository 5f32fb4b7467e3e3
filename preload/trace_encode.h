/* Little-endian record encoding into a caller's buffer, bounds-checked: once a put does not
 * fit, the buffer is marked failed and later puts do nothing. */
#ifndef GSA_TRACE_ENCODE_H
#define GSA_TRACE_ENCODE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

struct gsa_enc {
	uint8_t *p;
	uint32_t n, cap;
	bool failed;
};

static inline void gsa_put(struct gsa_enc *e, const void *src, uint32_t len)
{
	if (e->failed || e->cap - e->n < len) {
		e->failed = true;
		return;
	}
	memcpy(e->p + e->n, src, len);
	e->n += len;
}
/* x86-64 and aarch64 are little-endian: the in-memory bytes are the file's bytes. */
static inline void gsa_put_u8(struct gsa_enc *e, uint8_t v) { gsa_put(e, &v, 1); }
static inline void gsa_put_u16(struct gsa_enc *e, uint16_t v) { gsa_put(e, &v, 2); }
static inline void gsa_put_u32(struct gsa_enc *e, uint32_t v) { gsa_put(e, &v, 4); }
static inline void gsa_put_u64(struct gsa_enc *e, uint64_t v) { gsa_put(e, &v, 8); }
static inline void gsa_put_str(struct gsa_enc *e, const char *s, size_t len)
{
	if (len > 0xffff)
		len = 0xffff;
	gsa_put_u16(e, (uint16_t)len);
	gsa_put(e, s, (uint32_t)len);
}
static inline void gsa_put_cstr(struct gsa_enc *e, const char *s)
{
	gsa_put_str(e, s ? s : "", s ? strlen(s) : 0);
}

#endif

/* Queries on a summary that gsa_tr_read produced, and its release. */
#include <stdlib.h>
#include <string.h>

#include "tools/trace_reader.h"

void gsa_tr_free(struct gsa_tr_summary *s)
{
	if (!s)
		return;
	free(s->exe);
	free(s->library_version);
	free(s->hostname);
	for (size_t i = 0; i < s->n_config; i++) {
		free(s->config[i].key);
		free(s->config[i].value);
	}
	free(s->config);
	for (size_t i = 0; i < s->n_devices; i++)
		free(s->devices[i].name);
	free(s->devices);
	for (size_t i = 0; i < s->n_kernels; i++) {
		free(s->kernels[i].param_offsets);
		free(s->kernels[i].param_sizes);
		free(s->kernels[i].name);
		free(s->kernels[i].adapter);
	}
	free(s->kernels);
	free(s->sites);
	for (size_t i = 0; i < s->n_logs; i++)
		free(s->logs[i].message);
	free(s->logs);
	free(s->layers);
	memset(s, 0, sizeof(*s));
}

uint64_t gsa_tr_total_launches(const struct gsa_tr_summary *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->n_kernels; i++)
		n += s->kernels[i].launches;
	return n;
}

uint64_t gsa_tr_unnamed_launches(const struct gsa_tr_summary *s)
{
	uint64_t n = 0;
	for (size_t i = 0; i < s->n_kernels; i++)
		if (!s->kernels[i].name || !s->kernels[i].name[0])
			n += s->kernels[i].launches;
	return n;
}

const struct gsa_tr_kernel *gsa_tr_find_kernel(const struct gsa_tr_summary *s, const char *name)
{
	/* kernels are sorted by id, so the first match is the one with the lowest id */
	for (size_t i = 0; i < s->n_kernels; i++)
		if (s->kernels[i].name && strcmp(s->kernels[i].name, name) == 0)
			return &s->kernels[i];
	return NULL;
}

const char *gsa_tr_reason_text(unsigned reason)
{
	/* the texts of sparse/buffers.c, which the library logs */
	static const char *const text[GSA_TR_REASONS] = {
		"rewritten",
		"selection kernels unavailable",
		"first seen during stream capture",
		"KV cache not a tracked allocation",
		"buffer allocation failed",
		"unsupported geometry",
		"query heads not known yet",
		"selection launch failed",
		"launch re-encoding failed",
	};
	return reason < GSA_TR_REASONS ? text[reason] : "unknown reason";
}

uint64_t gsa_tr_kernel_decisions(const struct gsa_tr_kernel *k)
{
	uint64_t n = 0;
	for (int i = 0; i < GSA_TR_REASON_SLOTS; i++)
		n += k->decisions[i];
	return n;
}

int gsa_tr_kernel_recognised(const struct gsa_tr_kernel *k)
{
	return (k->adapter && k->adapter[0]) || gsa_tr_kernel_decisions(k) > 0;
}

const struct gsa_tr_layer *gsa_tr_find_layer(const struct gsa_tr_summary *s, int32_t layer)
{
	size_t lo = 0, hi = s->n_layers; /* sorted by layer */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->layers[mid].layer == layer)
			return &s->layers[mid];
		if (s->layers[mid].layer < layer)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void gsa_tr_select_pair(const struct gsa_tr_event *ev, uint32_t i, uint32_t *kept,
			uint32_t *total)
{
	const uint8_t *p = ev->u.select.pairs + 8 * (size_t)i;
	*kept = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	*total = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
}

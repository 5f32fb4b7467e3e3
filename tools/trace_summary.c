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

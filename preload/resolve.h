/* Which resolved driver symbols get wrapped, by the name a resolver was asked for. */
#ifndef GSA_RESOLVE_H
#define GSA_RESOLVE_H

/* A result of cuGetProcAddress-style resolution (base name, e.g. "cuMemAlloc", and the
 * cudaVersion that selected the ABI): the wrapper, or fn unchanged. */
void *gsa_wrap_proc(const char *symbol, int cuda_version, void *fn);

/* A result of dlsym (exact exported name, e.g. "cuMemAlloc_v2"): the wrapper, or fn. */
void *gsa_wrap_export(const char *name, void *fn);

/* dlsym on an explicit handle: the real result, wrapped when it is an observed symbol. */
void *gsa_dlsym_handle(void *handle, const char *name);

#endif

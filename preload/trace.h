/* The trace writer (format: trace_format.h). Threads append records to their own ring
 * buffer without locks or system calls; a background thread drains the rings into the file,
 * writes the kernels it finds in the kernel table and snapshots of the launch counters, and
 * the last drain happens at exit. Nothing here ever blocks a launch: a full ring drops the
 * record and counts the bytes dropped (recorded in the file). */
#ifndef GSA_TRACE_H
#define GSA_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True once a trace file is open in this process. */
extern bool gsa_tracing;

/* Opens the file (template with %p) and starts the flusher; idempotent. */
void gsa_trace_start(const char *path_template);
/* Final drain, COUNTS and END records, close. Called at exit. */
void gsa_trace_stop(void);

void gsa_trace_log(int level, int code, const char *msg, size_t len);
void gsa_trace_alloc(uint64_t ptr, uint64_t size, uint64_t callsite, int device, int api,
		     uint64_t stream);
void gsa_trace_free(uint64_t ptr, int api, bool known);
/* Asks for a DEVICE record for this ordinal (written once per ordinal by the flusher). */
void gsa_trace_note_device(int ordinal);

/* Appends one record to this thread's ring (payload copied). For the layers above. */
void gsa_trace_emit(uint16_t type, const void *payload, uint32_t len);

void gsa_trace_fork_prepare(void);
void gsa_trace_fork_parent(void);
void gsa_trace_fork_child(void);

/* Expands %p (pid) and %% in a path template; returns false if it does not fit. */
bool gsa_trace_expand_path(const char *tmpl, int pid, char *out, size_t cap);

#endif

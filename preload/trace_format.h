/* The on-disk trace format, shared by the writer (preload/trace.c) and the reader (tools/).
 *
 * A trace is a 32-byte file header followed by records. Every record starts with an 8-byte
 * record header {u16 type, u16 reserved (0), u32 payload_len} and its payload follows. All
 * integers are little-endian; strings are a u16 length then that many bytes (no NUL).
 * Records appear in the order their writing thread produced them; records of different
 * threads interleave, so a reader resolves references (kernel ids) only at the end.
 *
 * Compatibility: a reader accepts any file whose major version equals its own and skips
 * record types it does not know (their length is always present). A larger major version is
 * refused with a clear message. Minor versions only ever add record types or append fields
 * at the end of a payload; readers ignore payload bytes beyond the fields they know.
 */
#ifndef GSA_TRACE_FORMAT_H
#define GSA_TRACE_FORMAT_H

#include <stdint.h>

#define GSA_TRACE_MAGIC "GSATRACE"       /* 8 bytes, no NUL in the file */
#define GSA_TRACE_MAJOR 1
#define GSA_TRACE_MINOR 1 /* 1: SELECT carries the selection's GPU time */
#define GSA_TRACE_HEADER_SIZE 32
#define GSA_TRACE_RECORD_HEADER_SIZE 8
/* Upper bound on one payload: anything larger is a corrupt file, not a real record. */
#define GSA_TRACE_MAX_PAYLOAD (1u << 20)

/* File header (32 bytes):
 *   0  char[8] magic   "GSATRACE"
 *   8  u16     major
 *  10  u16     minor
 *  12  u32     header_size (32)
 *  16  u64     start_unix_ns (CLOCK_REALTIME when the file was opened)
 *  24  u32     pid
 *  28  u32     reserved (0)
 */

enum gsa_trace_record_type {
	/* u32 pid, u32 ppid, u64 start_mono_ns, str exe, str library_version, str hostname */
	GSA_REC_PROCESS = 1,
	/* u16 count, then count times {str key, str value}: the effective configuration,
	 * plus key "status" = "active" | "pass-through" (and "error" = text when config failed) */
	GSA_REC_CONFIG = 2,
	/* i32 ordinal, i32 cc_major, i32 cc_minor, i32 sm_count, u64 total_mem, str name */
	GSA_REC_DEVICE = 3,
	/* u32 kernel_id, u8 handle_kind (see gsa_handle_kind), u8 named (0/1), u16 reserved,
	 * u64 handle, u32 param_count (0xffffffff when the driver could not tell),
	 * param_count times {u32 offset, u32 size}, str name ("" when unnamed),
	 * str adapter ("" when no adapter matched) */
	GSA_REC_KERNEL = 4,
	/* u64 mono_ns, u32 n, then n times {u32 kernel_id, u64 launches}: cumulative launch
	 * counts so far for all threads; the last such record in a file is the final one. */
	GSA_REC_COUNTS = 5,
	/* u64 mono_ns, u64 ptr, u64 size, u64 callsite_hash, i32 device, u8 api (gsa_alloc_api),
	 * u8 reserved[3], u64 stream (0 when synchronous) */
	GSA_REC_ALLOC = 6,
	/* u64 mono_ns, u64 ptr, u8 api, u8 known (1 when ptr was a registered allocation),
	 * u8 reserved[6] */
	GSA_REC_FREE = 7,
	/* u64 mono_ns, u8 level (gsa_log_level), u8 reserved[3], u32 code, str message:
	 * something the library logged, including every fail-open */
	GSA_REC_LOG = 8,
	/* u64 mono_ns, u64 dropped_bytes: a thread's buffer overflowed and this many bytes of
	 * records were dropped rather than block a launch */
	GSA_REC_DROPPED = 9,
	/* u64 mono_ns: written last by a clean shutdown; its absence means the process ended
	 * abruptly (the counts are then those of the last COUNTS record) */
	GSA_REC_END = 10,
	/* u64 mono_ns, u32 kernel_id, i32 layer (-1 unknown), i32 num_seqs, u8 reason
	 * (0 = rewritten to the GSA selection, else why it ran dense: sparse/buffers.h),
	 * u8 captured, u8 reserved[2]: one per recognised attention launch (host side) */
	GSA_REC_ATTENTION = 11,
	/* u64 mono_ns (when read), u64 launch (per-context selection counter), u32 kernel_id,
	 * i32 layer, u32 num_seqs, u32 n, then n times {u32 kept, u32 total} (blocks of the
	 * first n sequences): what the GPU selected, also for CUDA-graph replays;
	 * since 1.1 then u64 gpu_start_ns, u64 select_ns: the GPU clock (%globaltimer) when the
	 * selection started and how long it took (its kernel's first CTA to its last sequence
	 * selected; before the one-kernel selection: both kernels) */
	GSA_REC_SELECT = 12,
	/* u64 mono_ns (when read), u64 launch (as in SELECT), i32 layer, u32 seq (index in the
	 * launch), u32 total (blocks of the sequence), u32 kept, u32 sink, u32 local,
	 * u32 bitmap_bits, then ceil(bitmap_bits / 8) bytes: bit b (LSB first) set when logical
	 * block b was kept. Written for the layers GSA_TRACE_BLOCKS names, first sequences only;
	 * bitmap_bits < total when the row was too long to record whole. */
	GSA_REC_BLOCKS = 13,
};

enum gsa_handle_kind {
	GSA_HANDLE_FUNCTION = 1,   /* CUfunction, named by cuFuncGetName */
	GSA_HANDLE_KERNEL = 2,     /* CUkernel (runtime launches), named by cuKernelGetName */
	GSA_HANDLE_HOST_FUNC = 3,  /* a runtime host stub the driver layer never saw */
	GSA_HANDLE_UNKNOWN = 4,    /* the driver could name it neither way */
};

enum gsa_alloc_api {
	GSA_API_CU_MEM_ALLOC = 1,       /* cuMemAlloc_v2 / cuMemFree_v2 */
	GSA_API_CU_MEM_ALLOC_ASYNC = 2, /* cuMemAllocAsync / cuMemFreeAsync */
	GSA_API_CUDA_MALLOC = 3,        /* cudaMalloc / cudaFree the driver layer did not see */
	GSA_API_CUDA_MALLOC_ASYNC = 4,  /* cudaMallocAsync / cudaFreeAsync likewise */
};

#endif

/*===- Kernels.h - GRETA's GPU kernel library: the C ABI ----------*- C -*-===//
 *
 * The GPU counterpart of runtime/include/greta/rt/CInterface.h. The host
 * program (lowered greta IR, compiled ahead of time) calls these on device
 * buffers; no LLVM, no MLIR, plain C types so any compiler can call them.
 *
 * Conventions
 *  - Every pointer argument named d_* is a device pointer; h_* is host memory
 *    (pinned where said). Tensors are row-major 2-D: `rows` rows of `cols`
 *    elements, consecutive rows `ld` ELEMENTS apart (ld >= cols).
 *  - Suffix f16 = IEEE half, bf16 = bfloat16, f32 = float: the storage type.
 *    Every kernel computes in fp32 (attention, norms, GEMM accumulators).
 *  - Every call is asynchronous on `stream` (a cudaStream_t / hipStream_t,
 *    passed as void*; NULL = the legacy default stream). No call synchronizes
 *    the stream, except those documented as synchronous (init, malloc, free,
 *    greta_gpu_check_device_errors).
 *  - Every call returns a greta_gpu_status. On failure greta_gpu_last_error()
 *    holds a message for the calling thread. Nothing aborts the process.
 *
 *===----------------------------------------------------------------------===*/
#ifndef GRETA_GPU_KERNELS_H
#define GRETA_GPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GRETA_GPU_EXPORT __attribute__((visibility("default")))

typedef enum greta_gpu_status {
  GRETA_GPU_OK = 0,
  GRETA_GPU_ERR_NO_DEVICE = 1,       /* no GPU / driver, or bad device index */
  GRETA_GPU_ERR_UNKNOWN_VARIANT = 2, /* message lists the known variants */
  GRETA_GPU_ERR_OUT_OF_MEMORY = 3,   /* message: bytes asked, bytes free */
  GRETA_GPU_ERR_INVALID_ARGUMENT = 4,/* sizes, strides, unsupported head_dim */
  GRETA_GPU_ERR_LAUNCH = 5,          /* a HIP/CUDA call or launch failed */
  GRETA_GPU_ERR_BLAS = 6,            /* hipBLAS / cuBLAS failed */
  GRETA_GPU_ERR_DEVICE_ASSERT = 7    /* a kernel flagged bad data (e.g. id) */
} greta_gpu_status;

/* The last error message of the calling thread ("" when none). */
GRETA_GPU_EXPORT const char *greta_gpu_last_error(void);
GRETA_GPU_EXPORT const char *greta_gpu_status_name(greta_gpu_status s);
/* "cuda" or "hip": how this library was built. */
GRETA_GPU_EXPORT const char *greta_gpu_platform(void);

/* ---------------------------------------------------------------- device */
/* Selects `device`, checks it exists and can run this library's code.
 * Synchronous. Writes a one-line description (name, memory, SMs) into
 * `desc` when desc_len > 0. */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_init(int device, char *desc,
                                                 size_t desc_len);
/* cudaMalloc/hipMalloc with a clear out-of-memory message (asked, free,
 * total). Synchronous. */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_malloc(void **d_ptr, size_t bytes);
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_free(void *d_ptr);
/* Pinned host memory: the destination of asynchronous trace copies. */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_host_alloc(void **h_ptr,
                                                       size_t bytes);
/* Pinned host memory that kernels write directly through *d_ptr: for
 * results of a few bytes (the logits' top-5 ids), where a copy's launch
 * costs more than the writes. Freed by greta_gpu_host_free(*h_ptr). */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_host_alloc_mapped(void **h_ptr,
                                                              void **d_ptr,
                                                              size_t bytes);
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_host_free(void *h_ptr);
/* Kernels that find bad data (an embedding id outside the table) flag it in
 * a device word instead of trapping. This reads and clears it (synchronizes
 * `stream`): call it once per forward call, not per stage. */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_check_device_errors(void *stream);

/* -------------------------------------------------------------- variants */
typedef struct greta_gpu_variant_info {
  const char *op;          /* "attention", "rope", ... */
  const char *name;        /* "default", "fp16_angles", ... */
  int is_default;          /* 1 for the variant used unless another is set */
  int planted_bug;         /* 1 for a deliberately wrong kernel (validation) */
  const char *description; /* one sentence */
} greta_gpu_variant_info;

/* Every (op, variant) pair; *count receives the number of entries. */
GRETA_GPU_EXPORT const greta_gpu_variant_info *
greta_gpu_kernel_variants(size_t *count);
/* Selects the variant of an op for every later call in this process:
 * `spec` is "op=name" (e.g. "attention=partial_tile_bug"). Unknown op or
 * name -> GRETA_GPU_ERR_UNKNOWN_VARIANT, message listing the known ones. */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_set_variant(const char *spec);
/* The selected variant of `op` (NULL for an unknown op). */
GRETA_GPU_EXPORT const char *greta_gpu_get_variant(const char *op);
/* Back to the defaults for every op. */
GRETA_GPU_EXPORT void greta_gpu_reset_variants(void);

/* --------------------------------------------------------------- kernels */
#define GRETA_GPU_DECLARE_KERNELS(T, SUFFIX)                                   \
  /* out[i, :] = table[ids[i], :]; table [vocab, hidden]. An id outside      \
     [0, vocab) writes a NaN row and flags greta_gpu_check_device_errors. */ \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_embedding_##SUFFIX(              \
      const T *d_table, int64_t vocab, int64_t hidden, int64_t table_ld,       \
      const int64_t *d_ids, int64_t rows, T *d_out, int64_t out_ld,            \
      void *stream);                                                           \
  /* HF LlamaRMSNorm: x in fp32, x * rsqrt(mean(x^2) + eps), rounded to T,   \
     times weight, rounded to T. */                                           \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_rms_norm_##SUFFIX(               \
      const T *d_in, int64_t in_ld, const T *d_weight, int64_t rows,           \
      int64_t cols, float eps, T *d_out, int64_t out_ld, void *stream);        \
  /* out = in . weight^T; in [rows, in_features], weight [out_features,      \
     in_features] (nn.Linear), through hipBLAS/cuBLAS with fp32 compute. */   \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_linear_##SUFFIX(                 \
      const T *d_in, int64_t in_ld, const T *d_weight, int64_t w_ld,           \
      int64_t rows, int64_t in_features, int64_t out_features, T *d_out,       \
      int64_t out_ld, void *stream);                                           \
  /* RoPE, rotate-half (HF), on [rows, num_heads * head_dim]; row i is at    \
     position d_positions[i]. inv_freq and angles in fp32. In place allowed  \
     (d_out == d_in with the same ld). */                                     \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_rope_##SUFFIX(                   \
      const T *d_in, int64_t in_ld, const int64_t *d_positions, int64_t rows,  \
      int64_t num_heads, int64_t head_dim, float theta, T *d_out,              \
      int64_t out_ld, void *stream);                                           \
  /* Copies this call's k/v rows into the KV cache at their positions:       \
     cache[d_positions[i], :] = k[i, :]. Caches are [capacity, kv_dim]. k    \
     and v have their own row strides (Phi-3's v is a column slice of the    \
     fused qkv_proj output, k a rotated copy). */                            \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_kv_append_##SUFFIX(              \
      const T *d_k, int64_t k_ld, const T *d_v, int64_t v_ld,                  \
      const int64_t *d_positions,                                              \
      int64_t rows, int64_t kv_dim, int64_t capacity, T *d_k_cache,            \
      T *d_v_cache, int64_t cache_ld, void *stream);                           \
  /* Causal GQA attention. Query row i (q [n_q, num_heads*head_dim]) is at   \
     position q_start + i and attends to cached keys/values [0, q_start+i]   \
     (caches [>= q_start+n_q, num_kv_heads*head_dim], filled by kv_append).  \
     Query head h reads kv head h / (num_heads/num_kv_heads). out has the    \
     layout of q. head_dim: 32, 64 or 128; 8 and 16 (test-sized models)      \
     run the scalar kernel whatever the variant. */                          \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_attention_##SUFFIX(              \
      const T *d_q, int64_t q_ld, const T *d_k_cache, const T *d_v_cache,      \
      int64_t kv_ld, int64_t n_q, int64_t q_start, int64_t num_heads,          \
      int64_t num_kv_heads, int64_t head_dim, float scale, T *d_out,           \
      int64_t out_ld, void *stream);                                           \
  /* out = silu(gate) * up (HF: act(gate_proj(x)) * up_proj(x)). */          \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_swiglu_##SUFFIX(                 \
      const T *d_gate, int64_t gate_ld, const T *d_up, int64_t up_ld,          \
      int64_t rows, int64_t cols, T *d_out, int64_t out_ld, void *stream);     \
  /* out = lhs + rhs (residual add). */                                       \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_add_##SUFFIX(                    \
      const T *d_lhs, int64_t lhs_ld, const T *d_rhs, int64_t rhs_ld,          \
      int64_t rows, int64_t cols, T *d_out, int64_t out_ld, void *stream);

#ifdef __cplusplus
}
#endif
/* The storage types, as C sees them: 16-bit words for f16/bf16. In C++ with
 * the kernel headers, __half / __nv_bfloat16 / __hip_bfloat16 are
 * layout-compatible (one 16-bit word). */
typedef uint16_t greta_gpu_f16;
typedef uint16_t greta_gpu_bf16;
#ifdef __cplusplus
extern "C" {
#endif
/* The paged KV cache (kernels/src/Decode.hip) of chunked prefill and decode
   steps. A slot's pools are [pages * block_size, kv_dim]; position p lives
   in row table[p / block_size] * block_size + p % block_size. */
#define GRETA_GPU_DECLARE_PAGED_KERNELS(T, SUFFIX)                             \
  /* pool[row of d_positions[i]] = k[i, :] (and v), through the table. */    \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_paged_kv_append_##SUFFIX(        \
      const T *d_k, int64_t k_ld, const T *d_v, int64_t v_ld,                  \
      const int64_t *d_positions, int64_t rows, int64_t kv_dim,                \
      const int32_t *d_block_table, int64_t block_size, T *d_k_pool,           \
      T *d_v_pool, void *stream);                                              \
  /* out[i, :] = pool[row of position first + i] (the rows read back through \
     the table: the k_cache / v_cache trace records). */                     \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_paged_gather_##SUFFIX(           \
      const T *d_pool, const int32_t *d_block_table, int64_t block_size,       \
      int64_t first, int64_t rows, int64_t kv_dim, T *d_out, int64_t out_ld,   \
      void *stream);                                                           \
  /* Causal GQA attention of n_q query rows (row i at position q_start + i)  \
     over the paged cache, split-K (flash-decoding); any head_dim up to 256. \
     d_scratch: greta_gpu_paged_attention_scratch_bytes of device memory. */ \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_paged_attention_##SUFFIX(        \
      const T *d_q, int64_t q_ld, const T *d_k_pool, const T *d_v_pool,        \
      const int32_t *d_block_table, int64_t block_size, int64_t n_q,           \
      int64_t q_start, int64_t num_heads, int64_t num_kv_heads,                \
      int64_t head_dim, float scale, T *d_out, int64_t out_ld,                 \
      void *d_scratch, int64_t scratch_bytes, void *stream);
GRETA_GPU_EXPORT int64_t greta_gpu_paged_attention_scratch_bytes(
    int64_t n_q, int64_t q_start, int64_t num_heads, int64_t num_kv_heads,
    int64_t head_dim);
GRETA_GPU_DECLARE_PAGED_KERNELS(greta_gpu_f16, f16)
GRETA_GPU_DECLARE_PAGED_KERNELS(greta_gpu_bf16, bf16)
GRETA_GPU_DECLARE_PAGED_KERNELS(float, f32)

GRETA_GPU_DECLARE_KERNELS(greta_gpu_f16, f16)
GRETA_GPU_DECLARE_KERNELS(greta_gpu_bf16, bf16)
GRETA_GPU_DECLARE_KERNELS(float, f32)

/* ----------------------------------------------------------------- trace */
typedef enum greta_gpu_dtype {
  GRETA_GPU_F32 = 0, /* same numbering as greta::rt::DType */
  GRETA_GPU_F16 = 2,
  GRETA_GPU_BF16 = 3
} greta_gpu_dtype;

/* Flags: what to compute per row. SHA-256 and nz_count always. */
#define GRETA_GPU_TRACE_STATS 1u /* nan/inf counts + fingerprint */

/* One row's record, written by the device. 88 bytes, no padding. */
typedef struct greta_gpu_row_record {
  uint8_t sha256[32]; /* FIPS 180-4 SHA-256 of the row's bytes as stored */
  int64_t nz_count;   /* elements != 0 (NaN counts as non-zero) */
  int64_t nan_count, inf_count;     /* only with GRETA_GPU_TRACE_STATS */
  double min, max, mean, l2;        /* ditto; min/max skip NaN (NaN if all
                                       NaN), mean and l2 propagate NaN/inf */
} greta_gpu_row_record;

/* One tensor to trace: `rows` rows of `cols` elements, `ld` elements apart.
 * d_row_index: device array of n_sel row indices to record (each in
 * [0, rows)), or NULL for every row (then n_sel must equal rows). Records go
 * to out[record_offset + j] for the j-th selected row. */
typedef struct greta_gpu_trace_job {
  const void *d_data;
  int32_t dtype; /* greta_gpu_dtype */
  uint32_t flags;
  int64_t rows, cols, ld;
  const int64_t *d_row_index;
  int64_t n_sel;
  int64_t record_offset;
} greta_gpu_trace_job;

/* Hashes and fingerprints the selected rows of one tensor on the device
 * into d_records[0 .. n_sel), then (when h_records != NULL) queues an
 * asynchronous copy of them to h_records (pinned host memory) on `stream`.
 * Never synchronizes: the host learns the copy is done through an event
 * recorded after this call (or the stream's next synchronization). */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_trace_rows(
    const void *d_data, greta_gpu_dtype dtype, int64_t rows, int64_t cols,
    int64_t ld, const int64_t *d_row_index, int64_t n_sel, uint32_t flags,
    greta_gpu_row_record *d_records, greta_gpu_row_record *h_records,
    void *stream);
/* The same for up to GRETA_GPU_MAX_TRACE_JOBS tensors in one launch (e.g. all
 * stages of a layer): the SHA-256 of a row is a serial chain, so putting many
 * rows in flight at once is what makes tracing cheap. The host copy covers
 * records [0, total) where total = max(record_offset + n_sel). */
#define GRETA_GPU_MAX_TRACE_JOBS 16
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_trace_batch(
    const greta_gpu_trace_job *jobs, int num_jobs,
    greta_gpu_row_record *d_records, greta_gpu_row_record *h_records,
    void *stream);

/* The same with the job table in device memory (d_jobs[0 .. num_jobs),
 * num_jobs <= 65535): what a host program that batches a whole forward's
 * traces uses. The jobs are not validated on the host (they live on the
 * device): the caller guarantees what trace_batch checks. max_sel: the
 * largest n_sel; flags: GRETA_GPU_TRACE_STATS if any job asks for stats;
 * total_records: records copied to h_records (when not NULL). */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_trace_batch_device(
    const greta_gpu_trace_job *d_jobs, int num_jobs, int64_t max_sel,
    uint32_t flags, greta_gpu_row_record *d_records,
    greta_gpu_row_record *h_records, int64_t total_records, void *stream);

/* Gathers the selected rows of up to GRETA_GPU_MAX_GATHER_JOBS tensors into
 * one device buffer, so that a single copy brings them to the host: job j's
 * i-th row (d_data + d_row_index[i] * ld_bytes, or row i when d_row_index is
 * NULL; row_bytes long) goes to d_dst + dst_offset + i * row_bytes. What a
 * host program uses to hash a few rows per tensor on the host (a device
 * SHA-256 chain would occupy multiprocessors for ~0.1 ms beside the compute
 * stream). Asynchronous on `stream`; row indices are not validated (they
 * live on the device). */
typedef struct greta_gpu_gather_job {
  const void *d_data;
  int64_t row_bytes, ld_bytes;
  const int64_t *d_row_index;
  int64_t n_sel, dst_offset;
} greta_gpu_gather_job;
#define GRETA_GPU_MAX_GATHER_JOBS 32
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_gather_rows(
    const greta_gpu_gather_job *jobs, int num_jobs, void *d_dst, void *stream);

/* rms_norm followed by gather_rows, in one launch: the gather's rows are
 * copied by extra blocks of the norm's kernel (a launch of its own costs
 * the compute stream a few microseconds). The same result as the two calls
 * in that order, provided no gathered row overlaps `out`. */
#define GRETA_GPU_DECLARE_RMS_NORM_GATHER(SUFFIX, CT)                          \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_rms_norm_gather_##SUFFIX(        \
      const CT *in, int64_t in_ld, const CT *weight, int64_t rows,             \
      int64_t cols, float eps, CT *out, int64_t out_ld,                        \
      const greta_gpu_gather_job *jobs, int num_jobs, void *d_gather_dst,      \
      void *stream);
GRETA_GPU_DECLARE_RMS_NORM_GATHER(f16, greta_gpu_f16)
GRETA_GPU_DECLARE_RMS_NORM_GATHER(bf16, greta_gpu_bf16)
GRETA_GPU_DECLARE_RMS_NORM_GATHER(f32, float)
#undef GRETA_GPU_DECLARE_RMS_NORM_GATHER

/* Top-5 ids of each selected row (highest value first, NaN after every
 * number, ties by the lower index: the CPU runtime's order; -1 pads rows of
 * fewer than 5 elements) into d_top5[5*j .. 5*j+4] for the j-th selected
 * row: the logits records' top-5 without copying the rows to the host.
 * d_top5 may be mapped host memory (greta_gpu_host_alloc_mapped).
 * d_scratch: device memory of greta_gpu_top5_scratch_bytes(n_sel, cols)
 * bytes, or null. With it, each of a few rows (a 3-position trace) is
 * split over many blocks, whose lists a second launch merges; without it,
 * one block ranks each row. Asynchronous on `stream`. */
GRETA_GPU_EXPORT greta_gpu_status greta_gpu_top5_rows(
    const void *d_data, greta_gpu_dtype dtype, int64_t rows, int64_t cols,
    int64_t ld, const int64_t *d_row_index, int64_t n_sel, int32_t *d_top5,
    void *d_scratch, void *stream);
/* Bytes of d_scratch that greta_gpu_top5_rows uses for n_sel rows of
 * `cols` (0: such rows are not split). */
GRETA_GPU_EXPORT int64_t greta_gpu_top5_scratch_bytes(int64_t n_sel,
                                                      int64_t cols);

#ifdef __cplusplus
}
#endif

#endif /* GRETA_GPU_KERNELS_H */

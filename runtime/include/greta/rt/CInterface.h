//===- CInterface.h - The C ABI that compiled models call -------*- C++ -*-===//
//
// Compiled code (the CPU JIT, objects compiled ahead of time, the GPU host
// program) calls only these functions. Functions declared in MLIR with
// `llvm.emit_c_interface` are called as `_mlir_ciface_<name>` with every
// memref passed as a pointer to its descriptor and scalars by value, in the
// order of the greta.kernel operands: ins, then outs.
//
// Naming: greta_cpu_<op>_<dtype> for kernels, greta_rt_<what>_<dtype> for the
// runtime (params, trace). dtype is f32 or f64 (the CPU computes in these;
// f16/bf16 are emulated by rounding, see greta-convert-precision).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_CINTERFACE_H
#define GRETA_RT_CINTERFACE_H

#include <cstdint>

namespace greta::rt {
/// Layout-compatible with MLIR's StridedMemRefType<T, N> (CRunnerUtils.h),
/// redeclared so the runtime needs no MLIR header.
template <typename T, int N> struct MemRef {
  T *basePtr;
  T *data;
  int64_t offset;
  int64_t sizes[N];
  int64_t strides[N];
};
/// Points `d` at a dense row-major tensor of `shape` (a parameter the
/// runtime holds, for the CPU and the GPU glue alike).
template <typename T, int N>
void setDenseDescriptor(MemRef<T, N> *d, T *data, const int64_t *shape) {
  d->basePtr = d->data = data;
  d->offset = 0;
  int64_t stride = 1;
  for (int i = N - 1; i >= 0; --i) {
    d->sizes[i] = shape[i];
    d->strides[i] = stride;
    stride *= shape[i];
  }
}
} // namespace greta::rt

#define GRETA_MEMREF(T, N) ::greta::rt::MemRef<T, N>
#define GRETA_RT_EXPORT extern "C" __attribute__((visibility("default")))

#define GRETA_DECLARE_KERNELS(T, SUFFIX)                                       \
  /* out[i, :] = table[ids[i], :]; an id outside the table is an error. */     \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_embedding_##SUFFIX(              \
      GRETA_MEMREF(T, 2) * table, GRETA_MEMREF(int64_t, 1) * ids,              \
      GRETA_MEMREF(T, 2) * out);                                               \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_rms_norm_##SUFFIX(               \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(T, 1) * weight, double eps,        \
      GRETA_MEMREF(T, 2) * out);                                               \
  /* out = in . weight^T, weight [out_features, in_features] */                \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_linear_##SUFFIX(                 \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(T, 2) * weight,                    \
      GRETA_MEMREF(T, 2) * out);                                               \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_linear_bias_##SUFFIX(            \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(T, 2) * weight,                    \
      GRETA_MEMREF(T, 1) * bias, GRETA_MEMREF(T, 2) * out);                    \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_rope_##SUFFIX(                   \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(int64_t, 1) * positions,           \
      double theta, int64_t headDim, GRETA_MEMREF(T, 2) * out);                \
  /* Causal GQA attention over this call's k/v plus the session's KV cache  \
     slot `cacheSlot` (k/v of this call are appended to it first). */         \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_attention_##SUFFIX(              \
      GRETA_MEMREF(T, 2) * q, GRETA_MEMREF(T, 2) * k, GRETA_MEMREF(T, 2) * v,  \
      GRETA_MEMREF(int64_t, 1) * positions, int64_t numHeads,                  \
      int64_t numKvHeads, int64_t headDim, double scale, int64_t cacheSlot,    \
      GRETA_MEMREF(T, 2) * out);                                               \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_swiglu_##SUFFIX(                 \
      GRETA_MEMREF(T, 2) * gate, GRETA_MEMREF(T, 2) * up,                      \
      GRETA_MEMREF(T, 2) * out);                                               \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_add_##SUFFIX(                    \
      GRETA_MEMREF(T, 2) * lhs, GRETA_MEMREF(T, 2) * rhs,                      \
      GRETA_MEMREF(T, 2) * out);                                               \
  /* Rounds every element to f16 or bf16 (round to nearest even) in place:  \
     how f16/bf16 engines are emulated on the CPU. kind: 0 f16, 1 bf16. */   \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_round_##SUFFIX(                  \
      GRETA_MEMREF(T, 2) * in, int64_t kind, GRETA_MEMREF(T, 2) * out);        \
  /* Fault injection: rows whose position >= fromPosition are perturbed.    \
     kind: 0 scale (x*m), 1 offset (x+m), 2 bitflip (flip bit int(m)). */     \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_inject_fault_##SUFFIX(           \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(int64_t, 1) * positions,           \
      int64_t fromPosition, int64_t kind, double magnitude,                    \
      GRETA_MEMREF(T, 2) * out);                                               \
  /* The parameter `name` (NUL-terminated) of the session's weights,        \
     converted to T; its shape was validated at load time. */                 \
  GRETA_RT_EXPORT void _mlir_ciface_greta_rt_param_r1_##SUFFIX(                \
      GRETA_MEMREF(T, 1) * result, const char *name);                          \
  GRETA_RT_EXPORT void _mlir_ciface_greta_rt_param_r2_##SUFFIX(                \
      GRETA_MEMREF(T, 2) * result, const char *name);                          \
  /* One record per row (row i is the token at the session's position i of  \
     this call) when the session's filter selects it. */                      \
  GRETA_RT_EXPORT void _mlir_ciface_greta_rt_trace_##SUFFIX(                   \
      GRETA_MEMREF(T, 2) * value, int64_t recordId, int64_t payload);          \
  /* The same, where the compiler knows `value` is the buffer of the         \
     previous trace call, unwritten since (a value with two stage tags): the  \
     runtime may reuse that call's digests (greta-kernels-to-calls). */        \
  GRETA_RT_EXPORT void _mlir_ciface_greta_rt_trace_repeat_##SUFFIX(            \
      GRETA_MEMREF(T, 2) * value, int64_t recordId, int64_t payload);

GRETA_DECLARE_KERNELS(float, f32)
GRETA_DECLARE_KERNELS(double, f64)

/* The compiled CPU model's buffers (greta-lower-to-cpu renames
   _mlir_memref_to_llvm_alloc/_aligned_alloc/free to these). Every block
   comes from posix_memalign, so free() releases it too (greta-run frees the
   returned logits so); freed blocks are kept by size for the next buffer of
   that size, and those of 2 MiB or more are advised as huge pages. */
GRETA_RT_EXPORT void *greta_rt_alloc(uint64_t size);
GRETA_RT_EXPORT void *greta_rt_aligned_alloc(uint64_t alignment,
                                             uint64_t size);
GRETA_RT_EXPORT void greta_rt_free(void *p);

/* The ops the other dense families add (runtime/lib/CpuFamilyKernels.cpp,
   and attention_window in CpuKernels.cpp): docs/MODELS.md. */
#define GRETA_DECLARE_FAMILY_KERNELS(T, SUFFIX)                                \
  /* Sliding-window attention: a query at position p sees keys > p - window \
     (Mistral, Qwen2, Phi-3); otherwise as greta_cpu_attention. */            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_attention_window_##SUFFIX(       \
      GRETA_MEMREF(T, 2) * q, GRETA_MEMREF(T, 2) * k, GRETA_MEMREF(T, 2) * v,  \
      GRETA_MEMREF(int64_t, 1) * positions, int64_t numHeads,                  \
      int64_t numKvHeads, int64_t headDim, double scale, int64_t cacheSlot,    \
      int64_t window, GRETA_MEMREF(T, 2) * out);                               \
  /* RoPE with frequencies from `table` (f64 [1 or 2, headDim/2]): row 1,     \
     when present, for a call whose largest position + 1 exceeds longFrom     \
     (longrope); cos and sin times attentionFactor. */                        \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_rope_table_##SUFFIX(             \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(int64_t, 1) * positions,           \
      GRETA_MEMREF(double, 2) * table, int64_t longFrom,                       \
      double attentionFactor, int64_t headDim, GRETA_MEMREF(T, 2) * out);      \
  /* Dynamic NTK RoPE: theta rescaled for L = max(largest position + 1,      \
     maxPosition) as theta * (factor*L/maxPosition - (factor-1))^(d/(d-2)). */\
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_rope_dynamic_##SUFFIX(           \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(int64_t, 1) * positions,           \
      double theta, double factor, int64_t maxPosition, int64_t headDim,       \
      GRETA_MEMREF(T, 2) * out);                                               \
  /* RMSNorm scaled by (offset + w) (Gemma: offset 1). */                    \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_rms_norm_offset_##SUFFIX(        \
      GRETA_MEMREF(T, 2) * in, GRETA_MEMREF(T, 1) * weight, double eps,        \
      double offset, GRETA_MEMREF(T, 2) * out);                                \
  /* gelu_tanh(gate) * up, PyTorch's tanh approximation. */                  \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_geglu_##SUFFIX(                  \
      GRETA_MEMREF(T, 2) * gate, GRETA_MEMREF(T, 2) * up,                      \
      GRETA_MEMREF(T, 2) * out);                                               \
  /* out = in * T(factor). */                                                \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_scale_##SUFFIX(                  \
      GRETA_MEMREF(T, 2) * in, double factor, GRETA_MEMREF(T, 2) * out);       \
  /* dst = src for buffers the compiled code cannot copy with memcpy (a     \
     slice: rows with a stride), rank 1 and 2. */                             \
  GRETA_RT_EXPORT void _mlir_ciface_greta_rt_copy_r1_##SUFFIX(                 \
      GRETA_MEMREF(T, 1) * src, GRETA_MEMREF(T, 1) * dst);                     \
  GRETA_RT_EXPORT void _mlir_ciface_greta_rt_copy_r2_##SUFFIX(                 \
      GRETA_MEMREF(T, 2) * src, GRETA_MEMREF(T, 2) * dst);

GRETA_DECLARE_FAMILY_KERNELS(float, f32)
GRETA_DECLARE_FAMILY_KERNELS(double, f64)

/* Mixture of experts (runtime/lib/CpuMoEKernels.cpp, docs/MODELS.md). */
#define GRETA_DECLARE_MOE_KERNELS(T, SUFFIX)                                   \
  /* Per row: softmax, the topK largest in rank order (ties to the lower       \
     id), renormalised when normalize != 0; out [rows, 2*topK] = ids as T,     \
     then weights. The _fault variant shifts every id by one (mod experts)     \
     on rows at a position >= fromPosition (a planted bug). */                 \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_moe_router_##SUFFIX(             \
      GRETA_MEMREF(T, 2) * logits, int64_t topK, int64_t normalize,            \
      GRETA_MEMREF(T, 2) * out);                                               \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_moe_router_fault_##SUFFIX(       \
      GRETA_MEMREF(T, 2) * logits, GRETA_MEMREF(int64_t, 1) * positions,       \
      int64_t topK, int64_t normalize, int64_t experts, int64_t fromPosition,  \
      GRETA_MEMREF(T, 2) * out);                                               \
  /* out = acc (zeros for _first) + expertOut * w on the rows whose            \
     selection lists `expert` with weight w, acc elsewhere. */                 \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_moe_accumulate_##SUFFIX(         \
      GRETA_MEMREF(T, 2) * expertOut, GRETA_MEMREF(T, 2) * selection,          \
      GRETA_MEMREF(T, 2) * acc, int64_t expert, GRETA_MEMREF(T, 2) * out);     \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_moe_accumulate_first_##SUFFIX(   \
      GRETA_MEMREF(T, 2) * expertOut, GRETA_MEMREF(T, 2) * selection,          \
      int64_t expert, GRETA_MEMREF(T, 2) * out);                               \
  /* out = x + sigmoid(gate[row]) * y; gate is [rows, 1]. */                   \
  GRETA_RT_EXPORT void _mlir_ciface_greta_cpu_sigmoid_gate_add_##SUFFIX(       \
      GRETA_MEMREF(T, 2) * x, GRETA_MEMREF(T, 2) * y,                          \
      GRETA_MEMREF(T, 2) * gate, GRETA_MEMREF(T, 2) * out);

GRETA_DECLARE_MOE_KERNELS(float, f32)
GRETA_DECLARE_MOE_KERNELS(double, f64)

#endif // GRETA_RT_CINTERFACE_H

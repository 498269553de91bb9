/*===- FamilyKernels.h - GPU kernels of the other dense families -*- C -*-===//
 *
 * What Mistral, Qwen2/3, Gemma and Phi-3 (and Llama's RoPE scalings) add to
 * the Llama kernels of Kernels.h, with its conventions (device pointers,
 * row-major with `ld` elements between rows, asynchronous on `stream`, a
 * greta_gpu_status back). The CPU counterparts are in
 * runtime/lib/CpuFamilyKernels.cpp; docs/MODELS.md lists the families.
 *
 *===----------------------------------------------------------------------===*/
#ifndef GRETA_GPU_FAMILYKERNELS_H
#define GRETA_GPU_FAMILYKERNELS_H

#include "greta/gpu/Kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GRETA_GPU_DECLARE_FAMILY_KERNELS(T, SUFFIX)                            \
  /* Gemma's RMSNorm: x * rsqrt(mean(x^2) + eps) * (offset + w), all in     \
     fp32, rounded to T once (HF GemmaRMSNorm). */                            \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_rms_norm_offset_##SUFFIX(        \
      const T *d_in, int64_t in_ld, const T *d_weight, int64_t rows,           \
      int64_t cols, float eps, float offset, T *d_out, int64_t out_ld,         \
      void *stream);                                                           \
  /* out = in . weight^T + bias (nn.Linear with bias): the bias is the GEMM's \
     C operand (beta = 1), so the sum is rounded to T once, as addmm does. */ \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_linear_bias_##SUFFIX(            \
      const T *d_in, int64_t in_ld, const T *d_weight, int64_t w_ld,           \
      const T *d_bias, int64_t rows, int64_t in_features,                      \
      int64_t out_features, T *d_out, int64_t out_ld, void *stream);           \
  /* out = gelu_tanh(gate) * up (HF gelu_pytorch_tanh, GeGLU): the GELU in   \
     fp32, rounded to T, times up, rounded to T. */                           \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_geglu_##SUFFIX(                  \
      const T *d_gate, int64_t gate_ld, const T *d_up, int64_t up_ld,          \
      int64_t rows, int64_t cols, T *d_out, int64_t out_ld, void *stream);     \
  /* out = in * T(factor) (Gemma's embedding times sqrt(hidden), the factor  \
     rounded to T first as HF makes it a tensor of the activation dtype). */  \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_scale_##SUFFIX(                  \
      const T *d_in, int64_t in_ld, int64_t rows, int64_t cols, double factor, \
      T *d_out, int64_t out_ld, void *stream);                                 \
  /* RoPE (rotate-half) with the frequencies given: d_inv_freq, head_dim/2   \
     floats in device memory (linear, llama3, yarn, longrope and dynamic NTK \
     tables, computed by the caller); cos and sin times attention_factor in  \
     fp32, then rounded to T. Otherwise as greta_gpu_rope_*. */               \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_rope_freqs_##SUFFIX(             \
      const T *d_in, int64_t in_ld, const int64_t *d_positions, int64_t rows,  \
      int64_t num_heads, int64_t head_dim, const float *d_inv_freq,            \
      float attention_factor, T *d_out, int64_t out_ld, void *stream);         \
  /* greta_gpu_attention_* with a sliding window: the query at position p    \
     sees keys (p - window, p] (Mistral, Qwen2, Phi-3); window > 0. Runs the \
     scalar kernel whatever the attention variant. */                         \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_attention_window_##SUFFIX(       \
      const T *d_q, int64_t q_ld, const T *d_k_cache, const T *d_v_cache,      \
      int64_t kv_ld, int64_t n_q, int64_t q_start, int64_t num_heads,          \
      int64_t num_kv_heads, int64_t head_dim, float scale, int64_t window,     \
      T *d_out, int64_t out_ld, void *stream);

GRETA_GPU_DECLARE_FAMILY_KERNELS(greta_gpu_f16, f16)
GRETA_GPU_DECLARE_FAMILY_KERNELS(greta_gpu_bf16, bf16)
GRETA_GPU_DECLARE_FAMILY_KERNELS(float, f32)
#undef GRETA_GPU_DECLARE_FAMILY_KERNELS

#ifdef __cplusplus
}
#endif

#endif /* GRETA_GPU_FAMILYKERNELS_H */

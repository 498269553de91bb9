/*===- MoEKernels.h - GPU mixture-of-experts kernels ------------*- C -*-===//
 *
 * The GPU counterparts of runtime/lib/CpuMoEKernels.cpp (greta.moe_router,
 * greta.moe_accumulate, greta.sigmoid_gate_add), with Kernels.h's
 * conventions (device pointers, row-major with `ld` elements between rows,
 * asynchronous on `stream`, a greta_gpu_status back). A selection row is
 * [k expert ids as T, k weights as T] (the expert_selection stage), ids in
 * rank order, ties to the lower expert id, as the CPU's. Every row is
 * computed by one thread or one block alone: no atomics, the same bits run
 * to run and whatever the other rows of the call.
 *
 *===----------------------------------------------------------------------===*/
#ifndef GRETA_GPU_MOEKERNELS_H
#define GRETA_GPU_MOEKERNELS_H

#include "greta/gpu/Kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GRETA_GPU_DECLARE_MOE_KERNELS(T, SUFFIX)                               \
  /* HF's router: softmax of each row of d_logits [rows, experts] in fp32,   \
     the top_k largest in rank order (ties to the lower id, NaN last),       \
     divided by their fp32 sum when normalize; ids and weights rounded to T \
     into d_out [rows, 2*top_k]. With d_positions (the planted off-by-one    \
     bug, greta-moe-router-fault), rows at a position >= fault_from report  \
     id + 1 mod experts; d_positions NULL: no fault. */                       \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_moe_router_##SUFFIX(             \
      const T *d_logits, int64_t logits_ld, int64_t rows, int64_t experts,     \
      int64_t top_k, int normalize, const int64_t *d_positions,                \
      int64_t fault_from, T *d_out, int64_t out_ld, void *stream);             \
  /* out = acc + T(expert_out * w) (rounded to T, as HF's index_add of the   \
     weighted expert output) on the rows whose selection lists `expert`     \
     with weight w; acc elsewhere. d_acc NULL: the sum starts from zeros.   \
     An id that is not a whole number in [0, 2^24) sets the device error    \
     word (greta_gpu_check_device_errors) and counts as not chosen. */        \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_moe_accumulate_##SUFFIX(        \
      const T *d_expert_out, int64_t y_ld, const T *d_selection,               \
      int64_t sel_ld, int64_t top_k, const T *d_acc, int64_t acc_ld,           \
      int64_t rows, int64_t cols, int64_t expert, T *d_out, int64_t out_ld,    \
      void *stream);                                                           \
  /* out = x + T(T(sigmoid(gate[row])) * y), the gate [rows, 1] (Qwen2-MoE's \
     shared expert, HF's F.sigmoid(gate) * shared in the activation dtype). */ \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_sigmoid_gate_add_##SUFFIX(       \
      const T *d_x, int64_t x_ld, const T *d_y, int64_t y_ld,                  \
      const T *d_gate, int64_t gate_ld, int64_t rows, int64_t cols, T *d_out,  \
      int64_t out_ld, void *stream);                                           \
  /* The grouped experts (runtime/gpu/GpuMoEExperts.cpp). out row j = in     \
     row d_rows[j], for j < n. */                                             \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_moe_gather_rows_##SUFFIX(        \
      const T *d_in, int64_t in_ld, const int32_t *d_rows, int64_t n,          \
      int64_t cols, T *d_out, int64_t out_ld, void *stream);                   \
  /* out = acc (zeros when d_acc is NULL) on every row, then on row          \
     d_rows[j] (j < n, each row at most once): out += T(y row j * w), w the  \
     selection's column top_k + d_slots[j] of that row: moe_accumulate's     \
     rounding, on the routed rows only. */                                    \
  GRETA_GPU_EXPORT greta_gpu_status greta_gpu_moe_scatter_add_##SUFFIX(        \
      const T *d_y, int64_t y_ld, const int32_t *d_rows,                       \
      const int32_t *d_slots, int64_t n, const T *d_selection, int64_t sel_ld, \
      int64_t top_k, const T *d_acc, int64_t acc_ld, int64_t rows,             \
      int64_t cols, T *d_out, int64_t out_ld, void *stream);

GRETA_GPU_DECLARE_MOE_KERNELS(greta_gpu_f16, f16)
GRETA_GPU_DECLARE_MOE_KERNELS(greta_gpu_bf16, bf16)
GRETA_GPU_DECLARE_MOE_KERNELS(float, f32)
#undef GRETA_GPU_DECLARE_MOE_KERNELS

#ifdef __cplusplus
}
#endif

#endif /* GRETA_GPU_MOEKERNELS_H */

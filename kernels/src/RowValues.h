//===- RowValues.h - Traced rows' elements, trace carveout ---*- HIP -*-===//
//
// Shared by the trace kernels (Trace.hip) and the top-5 ranking (Top5.hip).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_KERNELS_ROWVALUES_H
#define GRETA_KERNELS_ROWVALUES_H

#include "Common.h"

#include <cstring>

namespace greta::gpu {

__device__ __forceinline__ int esizeOf(int32_t dtype) {
  return dtype == GRETA_GPU_F32 ? 4 : 2;
}

__device__ __forceinline__ float loadAsFloat(const void *base, int32_t dtype,
                                             int64_t i) {
  if (dtype == GRETA_GPU_F32)
    return static_cast<const float *>(base)[i];
  if (dtype == GRETA_GPU_F16)
    return __half2float(static_cast<const greta_half *>(base)[i]);
  return greta_bf16_to_float(static_cast<const greta_bf16 *>(base)[i]);
}

// Half `hi` of a word of two f16 or bf16 values, as a float (exact).
__device__ __forceinline__ float halfWordAsFloat(uint32_t word, int hi,
                                                 int32_t dtype) {
  uint16_t bits = static_cast<uint16_t>(hi ? word >> 16 : word);
  if (dtype == GRETA_GPU_F16) {
    greta_half h;
    memcpy(&h, &bits, 2);
    return __half2float(h);
  }
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

// The trace kernels need little or no shared memory, but they run beside
// GEMM and attention kernels that need the largest shared-memory carveout.
// Left to choose, the driver may give an SM a small carveout for a trace
// block; a GEMM block then cannot start there until the SM has drained, and
// a SHA-256 block holds its SM for a whole chain. Every row of the 1.1B
// model at 1653 tokens took 17.3 ms instead of 12.4 ms with such a mix of
// kernels (H200, docs/KERNELS.md). So they ask for the largest carveout
// too (on AMD, where LDS is not carved out of L1, the call is a no-op).
template <typename K> void preferLargestCarveout(K *kernel) {
  if (hipFuncSetAttribute(reinterpret_cast<const void *>(kernel),
                          hipFuncAttributePreferredSharedMemoryCarveout,
                          100) != hipSuccess)
    (void)hipGetLastError(); // a hint only: never a launch error
}

} // namespace greta::gpu

#endif // GRETA_KERNELS_ROWVALUES_H

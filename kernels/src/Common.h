//===- Common.h - Shared by the kernel sources (not installed) ---*- C++ -*-===//
#ifndef GRETA_KERNELS_COMMON_H
#define GRETA_KERNELS_COMMON_H

#include "hip_compat.h"
#include "greta/gpu/Kernels.h"

#include <cstdint>
#include <string>

namespace greta::gpu {

// ------------------------------------------------------------ errors (host)
greta_gpu_status fail(greta_gpu_status s, std::string message);
greta_gpu_status failFromHip(hipError_t e, const char *expr, const char *file,
                             int line);
inline hipStream_t asStream(void *s) { return static_cast<hipStream_t>(s); }

// Variants (Runtime.hip). Index of the selected variant of an op.
enum class Op { Embedding, RmsNorm, Linear, Rope, KvAppend, Attention, Swiglu,
                Add, Trace, PagedKvAppend, PagedAttention, Count };
// Names per op, in the registry's order; variant 0 is the default.
int selectedVariant(Op op);
namespace variant {
inline constexpr int kRopeDefault = 0, kRopeFp16Angles = 1;
inline constexpr int kAttnDefault = 0, kAttnWmma = 1, kAttnScalar = 2,
                     kAttnPartialTileBug = 3;
inline constexpr int kTraceDefault = 0, kTraceRowPerThread = 1,
                     kTraceSplit = 2;
inline constexpr int kPagedStalePageBug = 1; // paged_kv_append
inline constexpr int kPagedBoundaryBug = 1;  // paged_attention
} // namespace variant

// The device word kernels set on bad data (Runtime.hip).
unsigned *deviceErrorWord();
inline constexpr unsigned kErrBadEmbeddingId = 1u;
inline constexpr unsigned kErrBadExpertId = 2u; // MoE.hip

// ----------------------------------------------- storage type <-> float
template <typename T> struct Conv;
template <> struct Conv<float> {
  __device__ __host__ static float toF(float x) { return x; }
  __device__ static float fromF(float x) { return x; }
  static constexpr greta_gpu_dtype kDType = GRETA_GPU_F32;
};
template <> struct Conv<greta_half> {
  __device__ static float toF(greta_half x) { return __half2float(x); }
  __device__ static greta_half fromF(float x) { return __float2half_rn(x); }
  static constexpr greta_gpu_dtype kDType = GRETA_GPU_F16;
};
template <> struct Conv<greta_bf16> {
  __device__ static float toF(greta_bf16 x) { return greta_bf16_to_float(x); }
  __device__ static greta_bf16 fromF(float x) { return greta_float_to_bf16_rn(x); }
  static constexpr greta_gpu_dtype kDType = GRETA_GPU_BF16;
};
template <typename T> __device__ inline float toF(T x) { return Conv<T>::toF(x); }
template <typename T> __device__ inline T fromF(float x) { return Conv<T>::fromF(x); }
// Rounds a float through T (identity for float): the HF order of operations
// rounds intermediate tensors to the storage dtype.
template <typename T> __device__ inline float roundT(float x) {
  return toF<T>(fromF<T>(x));
}

// Sum over the block; every thread gets the result. blockDim.x is a multiple
// of the warp width and at most 1024.
__device__ inline float blockSum(float v, float *scratch) {
  for (int m = GRETA_WARP / 2; m > 0; m /= 2)
    v += GRETA_SHFL_XOR(v, m);
  int warp = threadIdx.x / GRETA_WARP, lane = threadIdx.x % GRETA_WARP;
  if (lane == 0)
    scratch[warp] = v;
  __syncthreads();
  int nWarps = blockDim.x / GRETA_WARP;
  v = lane < nWarps ? scratch[lane] : 0.f;
  for (int m = GRETA_WARP / 2; m > 0; m /= 2)
    v += GRETA_SHFL_XOR(v, m);
  return v;
}

// Validation shared by the entry points.
greta_gpu_status checkMatrix(const char *what, const void *p, int64_t rows,
                             int64_t cols, int64_t ld);

} // namespace greta::gpu

#endif

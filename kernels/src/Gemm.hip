//===- Gemm.hip - linear (x . W^T) through hipBLAS / cuBLAS ---------------===//
//
// Row-major out[M,N] = in[M,K] . W[N,K]^T is, seen column-major,
// out^T[N,M] = W^T... i.e. GemmEx(op_T on W (K x N col-major, ld w_ld),
// op_N on in (K x M col-major, ld in_ld)) -> N x M col-major, ld out_ld.
// Compute type fp32 for every storage type (fp16/bf16 products accumulate in
// fp32 on the tensor cores; f32 stays true fp32: no TF32 unless the handle's
// math mode allows it, and we never set it).
//
//===----------------------------------------------------------------------===//
// hipBLAS / cuBLAS declarations from hip_compat.h (only this file needs them).
#define GRETA_KERNELS_NEED_BLAS 1
#include "Common.h"
#include "greta/gpu/FamilyKernels.h"

#include <climits>
#include <string>

namespace greta::gpu {
namespace {

// One handle per host thread (handles are not thread-safe to share while
// switching streams); created on first use, never destroyed before exit.
thread_local hipblasHandle_t tlsHandle = nullptr;

greta_gpu_status handle(hipblasHandle_t *out) {
  if (!tlsHandle) {
    hipblasStatus_t st = hipblasCreate(&tlsHandle);
    if (st != HIPBLAS_STATUS_SUCCESS) {
      tlsHandle = nullptr;
      return fail(GRETA_GPU_ERR_BLAS,
                  "hipblasCreate/cublasCreate failed with status " +
                      std::to_string(static_cast<int>(st)));
    }
  }
  *out = tlsHandle;
  return GRETA_GPU_OK;
}

template <typename T> struct BlasType;
template <> struct BlasType<float> { static constexpr auto v = GRETA_R_32F; };
template <> struct BlasType<greta_half> { static constexpr auto v = GRETA_R_16F; };
template <> struct BlasType<greta_bf16> { static constexpr auto v = GRETA_R_16BF; };

// out[r, :] = bias: the C operand of a GEMM with beta = 1 (linear_bias).
template <typename T>
__global__ void broadcastRowKernel(const T *bias, int64_t rows, int64_t cols,
                                   T *out, int64_t outLd) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x)
      out[r * outLd + c] = bias[c];
}

// With `bias`: out = in . W^T + bias, the bias added inside the GEMM (beta =
// 1 on out filled with it), so the sum is rounded once, as torch's addmm.
template <typename T>
greta_gpu_status linear(const T *in, int64_t inLd, const T *w, int64_t wLd,
                        int64_t rows, int64_t k, int64_t n, T *out,
                        int64_t outLd, void *stream, const T *bias = nullptr) {
  if (auto s = checkMatrix("linear in", in, rows, k, inLd))
    return s;
  if (auto s = checkMatrix("linear weight", w, n, k, wLd))
    return s;
  if (auto s = checkMatrix("linear out", out, rows, n, outLd))
    return s;
  for (int64_t v : {rows, k, n, inLd, wLd, outLd})
    if (v > INT_MAX)
      return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                  "linear: a size or stride exceeds the BLAS int range");
  if (rows == 0 || n == 0)
    return GRETA_GPU_OK;
  if (k == 0) // BLAS would leave out untouched: out = 0 by definition.
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "linear: in_features == 0");
  hipblasHandle_t h;
  if (auto s = handle(&h))
    return s;
  hipblasStatus_t st = hipblasSetStream(h, asStream(stream));
  if (st != HIPBLAS_STATUS_SUCCESS)
    return fail(GRETA_GPU_ERR_BLAS, "hipblasSetStream failed with status " +
                                        std::to_string(static_cast<int>(st)));
  if (bias) {
    int64_t gx = (n + 255) / 256, gy = rows < 65535 ? rows : 65535;
    hipLaunchKernelGGL(broadcastRowKernel<T>,
                       dim3(static_cast<unsigned>(gx > 64 ? 64 : gx),
                            static_cast<unsigned>(gy)),
                       dim3(256), 0, asStream(stream), bias, rows, n, out,
                       outLd);
    GRETA_HIP_LAUNCH_CHECK();
  }
  const float alpha = 1.f, beta = bias ? 1.f : 0.f;
  st = hipblasGemmEx(h, HIPBLAS_OP_T, HIPBLAS_OP_N, static_cast<int>(n),
                     static_cast<int>(rows), static_cast<int>(k), &alpha, w,
                     BlasType<T>::v, static_cast<int>(wLd), in, BlasType<T>::v,
                     static_cast<int>(inLd), &beta, out, BlasType<T>::v,
                     static_cast<int>(outLd), GRETA_COMPUTE_32F,
                     HIPBLAS_GEMM_DEFAULT);
  if (st != HIPBLAS_STATUS_SUCCESS)
    return fail(GRETA_GPU_ERR_BLAS,
                "GemmEx (" + std::to_string(rows) + "x" + std::to_string(k) +
                    " . " + std::to_string(n) + "x" + std::to_string(k) +
                    "^T) failed with status " +
                    std::to_string(static_cast<int>(st)));
  return GRETA_GPU_OK;
}

} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

#define GRETA_DEFINE_LINEAR(CT, T, SUFFIX)                                     \
  extern "C" greta_gpu_status greta_gpu_linear_##SUFFIX(                       \
      const CT *in, int64_t inLd, const CT *w, int64_t wLd, int64_t rows,      \
      int64_t k, int64_t n, CT *out, int64_t outLd, void *stream) {            \
    return linear<T>(reinterpret_cast<const T *>(in), inLd,                    \
                     reinterpret_cast<const T *>(w), wLd, rows, k, n,          \
                     reinterpret_cast<T *>(out), outLd, stream);               \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_linear_bias_##SUFFIX(                  \
      const CT *in, int64_t inLd, const CT *w, int64_t wLd, const CT *bias,    \
      int64_t rows, int64_t k, int64_t n, CT *out, int64_t outLd,              \
      void *stream) {                                                          \
    if (n > 0 && rows > 0 && !bias)                                            \
      return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "linear_bias: null bias");   \
    return linear<T>(reinterpret_cast<const T *>(in), inLd,                    \
                     reinterpret_cast<const T *>(w), wLd, rows, k, n,          \
                     reinterpret_cast<T *>(out), outLd, stream,                \
                     reinterpret_cast<const T *>(bias));                       \
  }
GRETA_DEFINE_LINEAR(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_LINEAR(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_LINEAR(float, float, f32)

//===- Family.hip - RMSNorm (offset + w), GeGLU, scale, RoPE by table -----===//
//
// The memory-bound kernels the other dense families add (FamilyKernels.h).
// Each computes in fp32 and rounds to the storage type T where HF's modules
// do (a no-op for float), as Elementwise.hip does for Llama's. Scalar
// kernels only (one element per thread): these ops are a small part of a
// forward, and the packed 16-byte forms of Elementwise.hip can follow when
// a profile asks for them. linear_bias is in Gemm.hip and
// attention_window in Attention.hip.
//
//===----------------------------------------------------------------------===//
#include "Common.h"
#include "greta/gpu/FamilyKernels.h"

#include <cmath>
#include <cstring>
#include <string>

namespace greta::gpu {
namespace {

// HF GemmaRMSNorm: _norm(x.float()) * (1.0 + weight.float()), then
// .type_as(x): one rounding, at the end.
template <typename T>
__global__ void rmsNormOffsetKernel(const T *in, int64_t inLd, const T *weight,
                                    int64_t cols, float eps, float offset,
                                    T *out, int64_t outLd) {
  __shared__ float scratch[1024 / 32];
  const int64_t row = blockIdx.x;
  const T *x = in + row * inLd;
  T *y = out + row * outLd;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = toF<T>(x[c]);
    ss = fmaf(v, v, ss);
  }
  float rinv = rsqrtf(blockSum(ss, scratch) / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    y[c] = fromF<T>((toF<T>(x[c]) * rinv) * (offset + toF<T>(weight[c])));
}

// PyTorch's GELU(approximate='tanh') in its fp32 opmath, rounded to T (the
// activation's output tensor), times up, rounded to T.
template <typename T>
__global__ void gegluKernel(const T *gate, int64_t gateLd, const T *up,
                            int64_t upLd, int64_t rows, int64_t cols, T *out,
                            int64_t outLd) {
  const float kBeta = 0.7978845608028654f; // sqrt(2) * 2/sqrt(pi) / 2
  const float kKappa = 0.044715f;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x) {
      float x = toF<T>(gate[r * gateLd + c]);
      float inner = kBeta * (x + kKappa * (x * x * x));
      float act = roundT<T>(0.5f * x * (1.f + tanhf(inner)));
      out[r * outLd + c] = fromF<T>(act * toF<T>(up[r * upLd + c]));
    }
}

template <typename T>
__global__ void scaleKernel(const T *in, int64_t inLd, int64_t rows,
                            int64_t cols, float factor, T *out, int64_t outLd) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x)
      out[r * outLd + c] = fromF<T>(toF<T>(in[r * inLd + c]) * factor);
}

// One block per row, as Elementwise.hip's ropeKernel, with the caller's
// inv_freq and HF's attention_scaling on cos and sin (in fp32, before the
// cast to T).
template <typename T>
__global__ void ropeFreqsKernel(const T *in, int64_t inLd,
                                const int64_t *positions, int64_t numHeads,
                                int64_t headDim, const float *invFreq,
                                float attentionFactor, T *out, int64_t outLd) {
  extern __shared__ float cosSin[];
  const int64_t half = headDim / 2;
  float *cs = cosSin, *sn = cosSin + half;
  const int64_t row = blockIdx.x;
  const float pos = static_cast<float>(positions[row]);
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(pos * invFreq[i], &s, &c); // accurate: large angles
    cs[i] = roundT<T>(c * attentionFactor);
    sn[i] = roundT<T>(s * attentionFactor);
  }
  __syncthreads();
  const T *x = in + row * inLd;
  T *y = out + row * outLd;
  for (int64_t k = threadIdx.x; k < numHeads * half; k += blockDim.x) {
    int64_t h = k / half, i = k % half;
    float x1 = toF<T>(x[h * headDim + i]);
    float x2 = toF<T>(x[h * headDim + i + half]);
    float o1 = roundT<T>(x1 * cs[i]) - roundT<T>(x2 * sn[i]);
    float o2 = roundT<T>(x2 * cs[i]) + roundT<T>(x1 * sn[i]);
    y[h * headDim + i] = fromF<T>(o1);
    y[h * headDim + i + half] = fromF<T>(o2);
  }
}

dim3 rowsGrid(int64_t rows, int64_t cols, int threads) {
  int64_t gx = (cols + threads - 1) / threads;
  int64_t gy = rows < 65535 ? rows : 65535;
  return dim3(static_cast<unsigned>(gx < 1    ? 1
                                    : gx > 64 ? 64
                                              : gx),
              static_cast<unsigned>(gy < 1 ? 1 : gy));
}

// ------------------------------------------------------------ entry points
template <typename T>
greta_gpu_status rmsNormOffset(const T *in, int64_t inLd, const T *weight,
                               int64_t rows, int64_t cols, float eps,
                               float offset, T *out, int64_t outLd,
                               void *stream) {
  if (auto s = checkMatrix("rms_norm_offset in", in, rows, cols, inLd))
    return s;
  if (auto s = checkMatrix("rms_norm_offset out", out, rows, cols, outLd))
    return s;
  if (cols > 0 && !weight)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "rms_norm_offset: null weight");
  if (rows == 0 || cols == 0)
    return GRETA_GPU_OK;
  int threads = cols >= 2048 ? 512 : cols >= 512 ? 256 : 128;
  hipLaunchKernelGGL(rmsNormOffsetKernel<T>, dim3(static_cast<unsigned>(rows)),
                     dim3(threads), 0, asStream(stream), in, inLd, weight, cols,
                     eps, offset, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status geglu(const T *gate, int64_t gateLd, const T *up, int64_t upLd,
                       int64_t rows, int64_t cols, T *out, int64_t outLd,
                       void *stream) {
  if (auto s = checkMatrix("geglu gate", gate, rows, cols, gateLd))
    return s;
  if (auto s = checkMatrix("geglu up", up, rows, cols, upLd))
    return s;
  if (auto s = checkMatrix("geglu out", out, rows, cols, outLd))
    return s;
  if (rows == 0 || cols == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(gegluKernel<T>, rowsGrid(rows, cols, 256), dim3(256), 0,
                     asStream(stream), gate, gateLd, up, upLd, rows, cols, out,
                     outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

// T(f) on the host, round to nearest even (Gemma's sqrt(hidden) as a tensor
// of the activation dtype).
template <typename T> float hostRoundTo(float f);
template <> float hostRoundTo<float>(float f) { return f; }
template <> float hostRoundTo<greta_half>(float f) {
  return __half2float(__float2half_rn(f));
}
template <> float hostRoundTo<greta_bf16>(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return f; // NaN
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

template <typename T>
greta_gpu_status scale(const T *in, int64_t inLd, int64_t rows, int64_t cols,
                       double factor, T *out, int64_t outLd, void *stream) {
  if (auto s = checkMatrix("scale in", in, rows, cols, inLd))
    return s;
  if (auto s = checkMatrix("scale out", out, rows, cols, outLd))
    return s;
  if (!std::isfinite(factor))
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "scale: factor " + std::to_string(factor) + " is not finite");
  if (rows == 0 || cols == 0)
    return GRETA_GPU_OK;
  float f = hostRoundTo<T>(static_cast<float>(factor));
  hipLaunchKernelGGL(scaleKernel<T>, rowsGrid(rows, cols, 256), dim3(256), 0,
                     asStream(stream), in, inLd, rows, cols, f, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status ropeFreqs(const T *in, int64_t inLd, const int64_t *positions,
                           int64_t rows, int64_t numHeads, int64_t headDim,
                           const float *invFreq, float attentionFactor, T *out,
                           int64_t outLd, void *stream) {
  if (headDim <= 0 || headDim % 2 || numHeads <= 0 || headDim > 8192)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "rope_freqs: head_dim must be even, in (0, 8192], num_heads "
                "> 0 (got head_dim " +
                    std::to_string(headDim) + ", num_heads " +
                    std::to_string(numHeads) + ")");
  int64_t cols = numHeads * headDim;
  if (auto s = checkMatrix("rope_freqs in", in, rows, cols, inLd))
    return s;
  if (auto s = checkMatrix("rope_freqs out", out, rows, cols, outLd))
    return s;
  if (rows > 0 && (!positions || !invFreq))
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "rope_freqs: null positions or inv_freq");
  if (rows == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(ropeFreqsKernel<T>, dim3(static_cast<unsigned>(rows)),
                     dim3(128), headDim * sizeof(float), asStream(stream), in,
                     inLd, positions, numHeads, headDim, invFreq,
                     attentionFactor, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

#define GRETA_DEFINE_FAMILY(CT, T, SUFFIX)                                     \
  extern "C" greta_gpu_status greta_gpu_rms_norm_offset_##SUFFIX(              \
      const CT *in, int64_t inLd, const CT *weight, int64_t rows,              \
      int64_t cols, float eps, float offset, CT *out, int64_t outLd,           \
      void *stream) {                                                          \
    return rmsNormOffset<T>(reinterpret_cast<const T *>(in), inLd,             \
                            reinterpret_cast<const T *>(weight), rows, cols,   \
                            eps, offset, reinterpret_cast<T *>(out), outLd,    \
                            stream);                                           \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_geglu_##SUFFIX(                        \
      const CT *gate, int64_t gateLd, const CT *up, int64_t upLd,              \
      int64_t rows, int64_t cols, CT *out, int64_t outLd, void *stream) {      \
    return geglu<T>(reinterpret_cast<const T *>(gate), gateLd,                 \
                    reinterpret_cast<const T *>(up), upLd, rows, cols,         \
                    reinterpret_cast<T *>(out), outLd, stream);                \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_scale_##SUFFIX(                        \
      const CT *in, int64_t inLd, int64_t rows, int64_t cols, double factor,   \
      CT *out, int64_t outLd, void *stream) {                                  \
    return scale<T>(reinterpret_cast<const T *>(in), inLd, rows, cols, factor, \
                    reinterpret_cast<T *>(out), outLd, stream);                \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_rope_freqs_##SUFFIX(                   \
      const CT *in, int64_t inLd, const int64_t *positions, int64_t rows,      \
      int64_t numHeads, int64_t headDim, const float *invFreq,                 \
      float attentionFactor, CT *out, int64_t outLd, void *stream) {           \
    return ropeFreqs<T>(reinterpret_cast<const T *>(in), inLd, positions,      \
                        rows, numHeads, headDim, invFreq, attentionFactor,     \
                        reinterpret_cast<T *>(out), outLd, stream);            \
  }

GRETA_DEFINE_FAMILY(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_FAMILY(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_FAMILY(float, float, f32)

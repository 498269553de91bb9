//===- MoE.hip - Mixture-of-experts router, weighted add, gated add -------===//
//
// MoEKernels.h. The router runs one thread per row (a row is E <= a few
// hundred logits and k <= 64 picks: a small part of a forward beside the
// experts' GEMMs); the top k are found by k passes over the row, each taking
// the best expert ranked after the previous pick, so no per-thread array of
// E is needed and the order is exactly the CPU's stable sort (descending
// probability, ties to the lower id, NaN last). The weighted add and the
// gated add are elementwise, one element per thread, each row's weight read
// by every thread of the row: nothing is summed across threads, so there
// are no atomics on floats and the bits do not depend on the launch.
//
//===----------------------------------------------------------------------===//
#include "Common.h"
#include "greta/gpu/MoEKernels.h"

#include <string>

namespace greta::gpu {
namespace {

// True when expert a (probability pa) ranks before expert b: the CPU's
// stable_sort order (CpuMoEKernels.cpp routeRow).
__device__ inline bool ranksBefore(float pa, int64_t a, float pb, int64_t b) {
  bool na = isnan(pa), nb = isnan(pb);
  if (na != nb)
    return nb;
  if (!na && pa != pb)
    return pa > pb;
  return a < b;
}

// HF: softmax(router_logits, dtype=float), topk, `/= sum` when normalised,
// then .to(hidden dtype). The sum of exponentials is taken in double, as the
// CPU kernel does, so an f32 run ranks near-ties as the CPU does.
template <typename T>
__global__ void routerKernel(const T *logits, int64_t ld, int64_t rows,
                             int64_t experts, int64_t k, int normalize,
                             const int64_t *positions, int64_t faultFrom,
                             T *out, int64_t outLd) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows;
       r += (int64_t)gridDim.x * blockDim.x) {
    const T *x = logits + r * ld;
    T *o = out + r * outLd;
    float max = toF<T>(x[0]);
    for (int64_t e = 1; e < experts; ++e)
      max = fmaxf(max, toF<T>(x[e]));
    double sum = 0;
    for (int64_t e = 0; e < experts; ++e)
      sum += static_cast<double>(expf(toF<T>(x[e]) - max));
    float total = static_cast<float>(sum);
    auto prob = [&](int64_t e) { return expf(toF<T>(x[e]) - max) / total; };
    bool fault = positions && positions[r] >= faultFrom;
    int64_t prev = -1;
    float prevP = 0.f, kept = 0.f;
    for (int64_t j = 0; j < k; ++j) {
      int64_t best = -1;
      float bestP = 0.f;
      for (int64_t e = 0; e < experts; ++e) {
        float p = prob(e);
        if (prev >= 0 && !ranksBefore(prevP, prev, p, e))
          continue;
        if (best < 0 || ranksBefore(p, e, bestP, best)) {
          best = e;
          bestP = p;
        }
      }
      prev = best;
      prevP = bestP;
      kept += bestP;
      int64_t id = fault ? (best + 1) % experts : best;
      o[j] = fromF<T>(static_cast<float>(id));
      o[k + j] = fromF<T>(bestP); // divided below when normalised
    }
    if (normalize)
      for (int64_t j = 0; j < k; ++j) {
        // Recomputed from the fp32 probability, not from o (rounded to T).
        int64_t id = static_cast<int64_t>(toF<T>(o[j]));
        if (fault)
          id = (id + experts - 1) % experts;
        o[k + j] = fromF<T>(prob(id) / kept);
      }
  }
}

template <typename T>
__global__ void accumulateKernel(const T *y, int64_t yLd, const T *sel,
                                 int64_t selLd, int64_t k, const T *acc,
                                 int64_t accLd, int64_t rows, int64_t cols,
                                 int64_t expert, T *out, int64_t outLd,
                                 unsigned *err) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const T *s = sel + r * selLd;
    float w = -1.f;
    bool chosen = false, bad = false;
    for (int64_t j = 0; j < k; ++j) {
      float id = toF<T>(s[j]);
      if (!(id >= 0.f) || id >= 16777216.f || id != floorf(id)) {
        bad = true;
        continue;
      }
      if (static_cast<int64_t>(id) == expert) {
        chosen = true;
        w = toF<T>(s[k + j]);
      }
    }
    if (bad && err && blockIdx.x == 0 && threadIdx.x == 0)
      atomicOr(err, kErrBadExpertId);
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x) {
      float a = acc ? toF<T>(acc[r * accLd + c]) : 0.f;
      float v = chosen ? a + roundT<T>(toF<T>(y[r * yLd + c]) * w) : a;
      out[r * outLd + c] = fromF<T>(v);
    }
  }
}

template <typename T>
__global__ void sigmoidGateAddKernel(const T *x, int64_t xLd, const T *y,
                                     int64_t yLd, const T *gate,
                                     int64_t gateLd, int64_t rows,
                                     int64_t cols, T *out, int64_t outLd) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    float s = roundT<T>(1.f / (1.f + expf(-toF<T>(gate[r * gateLd]))));
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x)
      out[r * outLd + c] = fromF<T>(toF<T>(x[r * xLd + c]) +
                                    roundT<T>(s * toF<T>(y[r * yLd + c])));
  }
}

template <typename T>
__global__ void gatherRowsKernel(const T *in, int64_t inLd, const int32_t *rows,
                                 int64_t n, int64_t cols, T *out,
                                 int64_t outLd) {
  for (int64_t j = blockIdx.y; j < n; j += gridDim.y) {
    const T *src = in + rows[j] * inLd;
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x)
      out[j * outLd + c] = src[c];
  }
}

template <typename T>
__global__ void copyOrZeroKernel(const T *acc, int64_t accLd, int64_t rows,
                                 int64_t cols, T *out, int64_t outLd) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x)
      out[r * outLd + c] = acc ? acc[r * accLd + c] : fromF<T>(0.f);
}

// accumulateKernel's rounding: out = T(out + T(y * w)). Each row is in the
// list at most once, so no two threads write one element.
template <typename T>
__global__ void scatterAddKernel(const T *y, int64_t yLd, const int32_t *rows,
                                 const int32_t *slots, int64_t n,
                                 const T *sel, int64_t selLd, int64_t k,
                                 int64_t cols, T *out, int64_t outLd) {
  for (int64_t j = blockIdx.y; j < n; j += gridDim.y) {
    int64_t r = rows[j];
    float w = toF<T>(sel[r * selLd + k + slots[j]]);
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x) {
      float v = toF<T>(out[r * outLd + c]) + roundT<T>(toF<T>(y[j * yLd + c]) * w);
      out[r * outLd + c] = fromF<T>(v);
    }
  }
}

dim3 moeRowsGrid(int64_t rows, int64_t cols, int threads) {
  int64_t gx = (cols + threads - 1) / threads;
  int64_t gy = rows < 65535 ? rows : 65535;
  return dim3(static_cast<unsigned>(gx < 1 ? 1 : gx > 64 ? 64 : gx),
              static_cast<unsigned>(gy < 1 ? 1 : gy));
}

template <typename T>
greta_gpu_status router(const T *logits, int64_t ld, int64_t rows,
                        int64_t experts, int64_t k, int normalize,
                        const int64_t *positions, int64_t faultFrom, T *out,
                        int64_t outLd, void *stream) {
  if (auto s = checkMatrix("moe_router logits", logits, rows, experts, ld))
    return s;
  if (auto s = checkMatrix("moe_router out", out, rows, 2 * k, outLd))
    return s;
  if (experts < 1 || k < 1 || k > experts)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "moe_router: top_k " + std::to_string(k) + " of " +
                    std::to_string(experts) + " experts");
  // An id must be exact in T: bf16 holds whole numbers to 256, f16 to 2048.
  int64_t exact = Conv<T>::kDType == GRETA_GPU_F32   ? (int64_t(1) << 24)
                  : Conv<T>::kDType == GRETA_GPU_F16 ? 2048
                                                     : 256;
  if (experts > exact)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "moe_router: " + std::to_string(experts) +
                    " experts: ids above " + std::to_string(exact) +
                    " are not exact in the storage type");
  if (rows == 0)
    return GRETA_GPU_OK;
  int threads = 128;
  int64_t blocks = (rows + threads - 1) / threads;
  hipLaunchKernelGGL(routerKernel<T>,
                     dim3(static_cast<unsigned>(blocks > 65535 ? 65535
                                                               : blocks)),
                     dim3(threads), 0, asStream(stream), logits, ld, rows,
                     experts, k, normalize, positions, faultFrom, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status accumulate(const T *y, int64_t yLd, const T *sel,
                            int64_t selLd, int64_t k, const T *acc,
                            int64_t accLd, int64_t rows, int64_t cols,
                            int64_t expert, T *out, int64_t outLd,
                            void *stream) {
  if (auto s = checkMatrix("moe_accumulate expert_out", y, rows, cols, yLd))
    return s;
  if (auto s = checkMatrix("moe_accumulate selection", sel, rows, 2 * k, selLd))
    return s;
  if (acc)
    if (auto s = checkMatrix("moe_accumulate acc", acc, rows, cols, accLd))
      return s;
  if (auto s = checkMatrix("moe_accumulate out", out, rows, cols, outLd))
    return s;
  if (k < 1 || expert < 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "moe_accumulate: top_k " + std::to_string(k) + ", expert " +
                    std::to_string(expert));
  if (rows == 0 || cols == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(accumulateKernel<T>, moeRowsGrid(rows, cols, 256),
                     dim3(256), 0, asStream(stream), y, yLd, sel, selLd, k,
                     acc, accLd, rows, cols, expert, out, outLd,
                     deviceErrorWord());
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status sigmoidGateAdd(const T *x, int64_t xLd, const T *y,
                                int64_t yLd, const T *gate, int64_t gateLd,
                                int64_t rows, int64_t cols, T *out,
                                int64_t outLd, void *stream) {
  if (auto s = checkMatrix("sigmoid_gate_add x", x, rows, cols, xLd))
    return s;
  if (auto s = checkMatrix("sigmoid_gate_add y", y, rows, cols, yLd))
    return s;
  if (auto s = checkMatrix("sigmoid_gate_add gate", gate, rows, 1, gateLd))
    return s;
  if (auto s = checkMatrix("sigmoid_gate_add out", out, rows, cols, outLd))
    return s;
  if (rows == 0 || cols == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(sigmoidGateAddKernel<T>, moeRowsGrid(rows, cols, 256),
                     dim3(256), 0, asStream(stream), x, xLd, y, yLd, gate,
                     gateLd, rows, cols, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}
template <typename T>
greta_gpu_status gatherRows(const T *in, int64_t inLd, const int32_t *rows,
                            int64_t n, int64_t cols, T *out, int64_t outLd,
                            void *stream) {
  if (auto s = checkMatrix("moe_gather_rows out", out, n, cols, outLd))
    return s;
  if (n < 0 || cols < 0 || inLd < cols || (n > 0 && (!in || !rows)))
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "moe_gather_rows: " + std::to_string(n) + " rows of " +
                    std::to_string(cols) + " (in ld " + std::to_string(inLd) +
                    ")");
  if (n == 0 || cols == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(gatherRowsKernel<T>, moeRowsGrid(n, cols, 256), dim3(256),
                     0, asStream(stream), in, inLd, rows, n, cols, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status scatterAdd(const T *y, int64_t yLd, const int32_t *rows,
                            const int32_t *slots, int64_t n, const T *sel,
                            int64_t selLd, int64_t k, const T *acc,
                            int64_t accLd, int64_t total, int64_t cols, T *out,
                            int64_t outLd, void *stream) {
  if (auto s = checkMatrix("moe_scatter_add out", out, total, cols, outLd))
    return s;
  if (acc)
    if (auto s = checkMatrix("moe_scatter_add acc", acc, total, cols, accLd))
      return s;
  if (auto s = checkMatrix("moe_scatter_add selection", sel, total, 2 * k,
                           selLd))
    return s;
  if (k < 1 || n < 0 || n > total || (n > 0 && (!y || !rows || !slots)) ||
      yLd < cols)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "moe_scatter_add: " + std::to_string(n) + " routed rows of " +
                    std::to_string(total) + ", top_k " + std::to_string(k));
  if (total == 0 || cols == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(copyOrZeroKernel<T>, moeRowsGrid(total, cols, 256),
                     dim3(256), 0, asStream(stream), acc, accLd, total, cols,
                     out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  if (n == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(scatterAddKernel<T>, moeRowsGrid(n, cols, 256), dim3(256),
                     0, asStream(stream), y, yLd, rows, slots, n, sel, selLd, k,
                     cols, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}
} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

#define GRETA_DEFINE_MOE(CT, T, SUFFIX)                                        \
  extern "C" greta_gpu_status greta_gpu_moe_router_##SUFFIX(                   \
      const CT *logits, int64_t ld, int64_t rows, int64_t experts,             \
      int64_t topK, int normalize, const int64_t *positions,                   \
      int64_t faultFrom, CT *out, int64_t outLd, void *stream) {               \
    return router<T>(reinterpret_cast<const T *>(logits), ld, rows, experts,   \
                     topK, normalize, positions, faultFrom,                    \
                     reinterpret_cast<T *>(out), outLd, stream);               \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_moe_accumulate_##SUFFIX(              \
      const CT *y, int64_t yLd, const CT *sel, int64_t selLd, int64_t topK,    \
      const CT *acc, int64_t accLd, int64_t rows, int64_t cols,                \
      int64_t expert, CT *out, int64_t outLd, void *stream) {                  \
    return accumulate<T>(reinterpret_cast<const T *>(y), yLd,                  \
                         reinterpret_cast<const T *>(sel), selLd, topK,        \
                         reinterpret_cast<const T *>(acc), accLd, rows, cols,  \
                         expert, reinterpret_cast<T *>(out), outLd, stream);   \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_sigmoid_gate_add_##SUFFIX(            \
      const CT *x, int64_t xLd, const CT *y, int64_t yLd, const CT *gate,      \
      int64_t gateLd, int64_t rows, int64_t cols, CT *out, int64_t outLd,      \
      void *stream) {                                                          \
    return sigmoidGateAdd<T>(                                                  \
        reinterpret_cast<const T *>(x), xLd, reinterpret_cast<const T *>(y),   \
        yLd, reinterpret_cast<const T *>(gate), gateLd, rows, cols,            \
        reinterpret_cast<T *>(out), outLd, stream);                            \
  }

#define GRETA_DEFINE_MOE_GROUPED(CT, T, SUFFIX)                                \
  extern "C" greta_gpu_status greta_gpu_moe_gather_rows_##SUFFIX(              \
      const CT *in, int64_t inLd, const int32_t *rows, int64_t n,              \
      int64_t cols, CT *out, int64_t outLd, void *stream) {                    \
    return gatherRows<T>(reinterpret_cast<const T *>(in), inLd, rows, n, cols, \
                         reinterpret_cast<T *>(out), outLd, stream);           \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_moe_scatter_add_##SUFFIX(              \
      const CT *y, int64_t yLd, const int32_t *rows, const int32_t *slots,     \
      int64_t n, const CT *sel, int64_t selLd, int64_t topK, const CT *acc,    \
      int64_t accLd, int64_t total, int64_t cols, CT *out, int64_t outLd,      \
      void *stream) {                                                          \
    return scatterAdd<T>(reinterpret_cast<const T *>(y), yLd, rows, slots, n,  \
                         reinterpret_cast<const T *>(sel), selLd, topK,        \
                         reinterpret_cast<const T *>(acc), accLd, total, cols, \
                         reinterpret_cast<T *>(out), outLd, stream);           \
  }

GRETA_DEFINE_MOE_GROUPED(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_MOE_GROUPED(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_MOE_GROUPED(float, float, f32)

GRETA_DEFINE_MOE(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_MOE(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_MOE(float, float, f32)

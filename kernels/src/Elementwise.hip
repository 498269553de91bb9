//===- Elementwise.hip - embedding, RMSNorm, RoPE, KV append, SwiGLU, add -===//
//
// Memory-bound kernels. Each computes in fp32 and follows the HF order of
// rounding to the storage type T (a no-op for float), so an f16/bf16 run
// matches what PyTorch's eager kernels produce for the same model.
//
//===----------------------------------------------------------------------===//
#include "Common.h"
#include "Gather.h"

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

namespace greta::gpu {
namespace {

inline constexpr unsigned kErrBadKvPosition = 2u;

// 16 bytes of T, the unit of the packed kernels: one 128-bit load or store
// per thread instead of one 2-byte access per element (the scalar kernels
// reached ~1.2 TB/s of the H200's ~4.8). The arithmetic per element is the
// scalar kernels', so both give the same bits (RMSNorm's sum of squares is
// added in another order). The scalar kernels remain for rows that are not
// whole, 16-byte aligned packs.
template <typename T> struct alignas(16) Pack {
  static constexpr int N = 16 / sizeof(T);
  T v[N];
};
template <typename T>
__device__ __forceinline__ Pack<T> loadPack(const T *p) {
  return *reinterpret_cast<const Pack<T> *>(p);
}
template <typename T>
__device__ __forceinline__ void storePack(T *p, const Pack<T> &x) {
  *reinterpret_cast<Pack<T> *>(p) = x;
}

template <typename T>
__global__ void embeddingKernel(const T *table, int64_t vocab, int64_t hidden,
                                int64_t tableLd, const int64_t *ids, T *out,
                                int64_t outLd, unsigned *err) {
  int64_t row = blockIdx.x;
  int64_t id = ids[row];
  T *dst = out + row * outLd;
  if (id < 0 || id >= vocab) {
    for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x)
      dst[c] = fromF<T>(NAN);
    if (threadIdx.x == 0 && err)
      atomicOr(err, kErrBadEmbeddingId);
    return;
  }
  const T *src = table + id * tableLd;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x)
    dst[c] = src[c];
}

template <typename T, typename G>
__global__ void rmsNormKernel(const T *in, int64_t inLd, const T *weight,
                              int64_t cols, float eps, T *out, int64_t outLd,
                              G gather) {
  if (gatherBlock(gather))
    return;
  __shared__ float scratch[1024 / 32];
  const int64_t row = ownBlock(gather);
  const T *x = in + row * inLd;
  T *y = out + row * outLd;
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float v = toF<T>(x[c]);
    ss = fmaf(v, v, ss);
  }
  float total = blockSum(ss, scratch);
  // HF: variance = mean(x^2) in fp32; x * rsqrt(variance + eps).
  float rinv = rsqrtf(total / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
    float normed = roundT<T>(toF<T>(x[c]) * rinv); // hidden.to(input_dtype)
    y[c] = fromF<T>(toF<T>(weight[c]) * normed);   // weight * hidden
  }
}

template <typename T, typename G>
__global__ void rmsNormPackedKernel(const T *in, int64_t inLd, const T *weight,
                                    int64_t packs, float eps, T *out,
                                    int64_t outLd, G gather) {
  if (gatherBlock(gather))
    return;
  __shared__ float scratch[1024 / 32];
  constexpr int N = Pack<T>::N;
  const int64_t row = ownBlock(gather);
  const T *x = in + row * inLd;
  T *y = out + row * outLd;
  float ss = 0.f;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    Pack<T> v = loadPack(x + p * N);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      float f = toF<T>(v.v[k]);
      ss = fmaf(f, f, ss);
    }
  }
  float total = blockSum(ss, scratch);
  float rinv = rsqrtf(total / static_cast<float>(packs * N) + eps);
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    Pack<T> v = loadPack(x + p * N), w = loadPack(weight + p * N), o;
#pragma unroll
    for (int k = 0; k < N; ++k)
      o.v[k] = fromF<T>(toF<T>(w.v[k]) * roundT<T>(toF<T>(v.v[k]) * rinv));
    storePack(y + p * N, o);
  }
}

// The angle of RoPE's pair i at position pos (both kernels below).
__device__ __forceinline__ float ropeAngle(int64_t pos, float invFreq,
                                           int fp16Angles) {
  if (fp16Angles) {
    // PLANTED BUG (variant rope=fp16_angles): the angle is formed in half
    // precision, as a kernel that keeps everything in the activation dtype
    // would do. fp16 has 11 significant bits: positions above 2048 are not
    // even representable exactly, and pos*inv_freq is rounded to 2^-11
    // relative, so the rotation drifts as the position grows.
    __half hp = __float2half_rn(static_cast<float>(pos));
    __half hf = __float2half_rn(invFreq);
    return __half2float(__hmul(hp, hf));
  }
  return static_cast<float>(pos) * invFreq; // HF: fp32 matmul
}

// Correctly rounded fp32 inv_freq = 1 / theta^(2i/D): what HF computes
// (torch.arange(0, D, 2).float() / D, theta ** that, 1.0 / that) up to the
// last ulp of fp32 pow.
__device__ __forceinline__ float ropeInvFreq(int64_t i, int64_t headDim,
                                             float theta) {
  return static_cast<float>(
      1.0 / pow(static_cast<double>(theta),
                static_cast<double>(2 * i) / static_cast<double>(headDim)));
}

// One block per row: cos and sin of the row's D/2 angles are computed once
// into shared memory (rounded to T, as HF casts them), then every head's
// pairs (i, i + D/2) are rotated a pack at a time.
template <typename T>
__global__ void ropePackedKernel(const T *in, int64_t inLd,
                                 const int64_t *positions, int64_t numHeads,
                                 int64_t headDim, float theta, T *out,
                                 int64_t outLd, int fp16Angles) {
  extern __shared__ float cosSin[];
  constexpr int N = Pack<T>::N;
  int64_t half = headDim / 2;
  float *cs = cosSin, *sn = cosSin + half;
  int64_t row = blockIdx.x;
  int64_t pos = positions[row];
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
    float s, c;
    sincosf(ropeAngle(pos, ropeInvFreq(i, headDim, theta), fp16Angles), &s,
            &c); // accurate (not __sincosf): large angles
    cs[i] = roundT<T>(c);
    sn[i] = roundT<T>(s);
  }
  __syncthreads();
  const int64_t packsPerHalf = half / N;
  const T *x = in + row * inLd;
  T *y = out + row * outLd;
  for (int64_t k = threadIdx.x; k < numHeads * packsPerHalf; k += blockDim.x) {
    int64_t h = k / packsPerHalf, i0 = (k % packsPerHalf) * N;
    int64_t o = h * headDim + i0;
    Pack<T> a = loadPack(x + o), b = loadPack(x + o + half), ya, yb;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      float x1 = toF<T>(a.v[j]), x2 = toF<T>(b.v[j]);
      float c = cs[i0 + j], s = sn[i0 + j];
      ya.v[j] = fromF<T>(roundT<T>(x1 * c) - roundT<T>(x2 * s));
      yb.v[j] = fromF<T>(roundT<T>(x2 * c) + roundT<T>(x1 * s));
    }
    storePack(y + o, ya);
    storePack(y + o + half, yb);
  }
}

// One block per row: inv_freq for the row's head_dim is computed once into
// shared memory, then every (head, i < D/2) pair is rotated.
template <typename T>
__global__ void ropeKernel(const T *in, int64_t inLd, const int64_t *positions,
                           int64_t numHeads, int64_t headDim, float theta,
                           T *out, int64_t outLd, int fp16Angles) {
  extern __shared__ float invFreq[];
  int64_t half = headDim / 2;
  for (int64_t i = threadIdx.x; i < half; i += blockDim.x)
    invFreq[i] = ropeInvFreq(i, headDim, theta);
  __syncthreads();
  int64_t row = blockIdx.x;
  int64_t pos = positions[row];
  const T *x = in + row * inLd;
  T *y = out + row * outLd;
  for (int64_t k = threadIdx.x; k < numHeads * half; k += blockDim.x) {
    int64_t h = k / half, i = k % half;
    float s, c;
    sincosf(ropeAngle(pos, invFreq[i], fp16Angles), &s, &c);
    // HF casts cos/sin to the activation dtype before using them.
    c = roundT<T>(c);
    s = roundT<T>(s);
    float x1 = toF<T>(x[h * headDim + i]);
    float x2 = toF<T>(x[h * headDim + i + half]);
    // q*cos + rotate_half(q)*sin, rotate_half(q) = cat(-q2, q1); each
    // product and the sum rounded to T like PyTorch's eager ops.
    float o1 = roundT<T>(x1 * c) - roundT<T>(x2 * s);
    float o2 = roundT<T>(x2 * c) + roundT<T>(x1 * s);
    y[h * headDim + i] = fromF<T>(o1);
    y[h * headDim + i + half] = fromF<T>(o2);
  }
}

template <typename T>
__global__ void kvAppendKernel(const T *k, int64_t kLd, const T *v, int64_t vLd,
                               const int64_t *positions, int64_t kvDim,
                               int64_t capacity, T *kc, T *vc, int64_t cacheLd,
                               unsigned *err) {
  int64_t row = blockIdx.x;
  int64_t pos = positions[row];
  if (pos < 0 || pos >= capacity) {
    if (threadIdx.x == 0 && err)
      atomicOr(err, kErrBadKvPosition);
    return;
  }
  for (int64_t c = threadIdx.x; c < kvDim; c += blockDim.x) {
    kc[pos * cacheLd + c] = k[row * kLd + c];
    vc[pos * cacheLd + c] = v[row * vLd + c];
  }
}

template <typename T>
__global__ void kvAppendPackedKernel(const T *k, int64_t kLd, const T *v,
                                     int64_t vLd,
                                     const int64_t *positions, int64_t packs,
                                     int64_t capacity, T *kc, T *vc,
                                     int64_t cacheLd, unsigned *err) {
  constexpr int N = Pack<T>::N;
  int64_t row = blockIdx.x;
  int64_t pos = positions[row];
  if (pos < 0 || pos >= capacity) {
    if (threadIdx.x == 0 && err)
      atomicOr(err, kErrBadKvPosition);
    return;
  }
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    storePack(kc + pos * cacheLd + p * N, loadPack(k + row * kLd + p * N));
    storePack(vc + pos * cacheLd + p * N, loadPack(v + row * vLd + p * N));
  }
}

template <typename T>
__device__ __forceinline__ float siluT(float g) {
  return roundT<T>(g / (1.f + expf(-g))); // F.silu in dtype
}

template <typename T>
__global__ void swigluPackedKernel(const T *gate, int64_t gateLd, const T *up,
                                   int64_t upLd, int64_t rows, int64_t packs,
                                   T *out, int64_t outLd) {
  constexpr int N = Pack<T>::N;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < packs;
         p += (int64_t)gridDim.x * blockDim.x) {
      Pack<T> g = loadPack(gate + r * gateLd + p * N),
              u = loadPack(up + r * upLd + p * N), o;
#pragma unroll
      for (int k = 0; k < N; ++k)
        o.v[k] = fromF<T>(siluT<T>(toF<T>(g.v[k])) * toF<T>(u.v[k]));
      storePack(out + r * outLd + p * N, o);
    }
}

template <typename T>
__global__ void addPackedKernel(const T *a, int64_t aLd, const T *b,
                                int64_t bLd, int64_t rows, int64_t packs,
                                T *out, int64_t outLd) {
  constexpr int N = Pack<T>::N;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t p = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; p < packs;
         p += (int64_t)gridDim.x * blockDim.x) {
      Pack<T> x = loadPack(a + r * aLd + p * N),
              y = loadPack(b + r * bLd + p * N), o;
#pragma unroll
      for (int k = 0; k < N; ++k)
        o.v[k] = fromF<T>(toF<T>(x.v[k]) + toF<T>(y.v[k]));
      storePack(out + r * outLd + p * N, o);
    }
}

template <typename T>
__global__ void swigluKernel(const T *gate, int64_t gateLd, const T *up,
                             int64_t upLd, int64_t rows, int64_t cols, T *out,
                             int64_t outLd) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x) {
      float act = siluT<T>(toF<T>(gate[r * gateLd + c]));
      out[r * outLd + c] = fromF<T>(act * toF<T>(up[r * upLd + c]));
    }
}

template <typename T>
__global__ void addKernel(const T *a, int64_t aLd, const T *b, int64_t bLd,
                          int64_t rows, int64_t cols, T *out, int64_t outLd) {
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)gridDim.x * blockDim.x)
      out[r * outLd + c] =
          fromF<T>(toF<T>(a[r * aLd + c]) + toF<T>(b[r * bLd + c]));
}

dim3 grid2d(int64_t rows, int64_t cols, int threads) {
  int64_t gx = (cols + threads - 1) / threads;
  if (gx > 64)
    gx = 64;
  int64_t gy = rows < 65535 ? rows : 65535;
  return dim3(static_cast<unsigned>(gx < 1 ? 1 : gx),
              static_cast<unsigned>(gy < 1 ? 1 : gy));
}

// Whether rows of `cols` elements at these (pointer, row stride) pairs can be
// read and written as whole, 16-byte aligned Packs.
template <typename T>
bool packable(int64_t cols,
              std::initializer_list<std::pair<const void *, int64_t>> mats) {
  constexpr int64_t N = Pack<T>::N;
  if (cols % N)
    return false;
  for (auto [p, ld] : mats)
    if ((reinterpret_cast<uintptr_t>(p) & 15) || ld % N)
      return false;
  return true;
}

int threadsFor(int64_t work, int maxThreads) {
  int64_t t = (work + 31) / 32 * 32;
  return static_cast<int>(t < 32 ? 32 : t > maxThreads ? maxThreads : t);
}

// ------------------------------------------------------------ entry points
template <typename T>
greta_gpu_status embedding(const T *table, int64_t vocab, int64_t hidden,
                           int64_t tableLd, const int64_t *ids, int64_t rows,
                           T *out, int64_t outLd, void *stream) {
  if (auto s = checkMatrix("embedding table", table, vocab, hidden, tableLd))
    return s;
  if (auto s = checkMatrix("embedding out", out, rows, hidden, outLd))
    return s;
  if (rows > 0 && !ids)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "embedding: null ids");
  if (rows == 0 || hidden == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(embeddingKernel<T>, dim3(rows), dim3(256), 0,
                     asStream(stream), table, vocab, hidden, tableLd, ids, out,
                     outLd, deviceErrorWord());
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

// G: NoGather, or GatherJobs carried in `gather.slots()` extra blocks.
template <typename T, typename G>
greta_gpu_status launchRmsNorm(const T *in, int64_t inLd, const T *weight,
                               int64_t rows, int64_t cols, float eps, T *out,
                               int64_t outLd, const G &gather,
                               void *stream) {
  dim3 grid(static_cast<unsigned>(rows + gather.slots()));
  if (packable<T>(cols, {{in, inLd}, {out, outLd}, {weight, 0}})) {
    int64_t packs = cols / Pack<T>::N;
    hipLaunchKernelGGL((rmsNormPackedKernel<T, G>), grid,
                       dim3(threadsFor(packs, 512)), 0, asStream(stream), in,
                       inLd, weight, packs, eps, out, outLd, gather);
    GRETA_HIP_LAUNCH_CHECK();
    return GRETA_GPU_OK;
  }
  int threads = cols >= 2048 ? 512 : cols >= 512 ? 256 : 128;
  hipLaunchKernelGGL((rmsNormKernel<T, G>), grid, dim3(threads), 0,
                     asStream(stream), in, inLd, weight, cols, eps, out, outLd,
                     gather);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

// With `jobs` (rms_norm_gather): the gather rides in the norm's launch.
template <typename T>
greta_gpu_status rmsNorm(const T *in, int64_t inLd, const T *weight,
                         int64_t rows, int64_t cols, float eps, T *out,
                         int64_t outLd, void *stream,
                         const greta_gpu_gather_job *jobs = nullptr,
                         int numJobs = 0, void *gatherDst = nullptr) {
  if (auto s = checkMatrix("rms_norm in", in, rows, cols, inLd))
    return s;
  if (auto s = checkMatrix("rms_norm out", out, rows, cols, outLd))
    return s;
  if (cols > 0 && !weight)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "rms_norm: null weight");
  GatherJobs g;
  if (jobs || numJobs)
    if (auto s = packGatherJobs(jobs, numJobs, gatherDst, g))
      return s;
  if (rows == 0 || cols == 0)
    return g.slots() ? greta_gpu_gather_rows(jobs, numJobs, gatherDst, stream)
                     : GRETA_GPU_OK;
  if (g.slots())
    return launchRmsNorm(in, inLd, weight, rows, cols, eps, out, outLd, g,
                         stream);
  return launchRmsNorm(in, inLd, weight, rows, cols, eps, out, outLd,
                       NoGather{}, stream);
}

template <typename T>
greta_gpu_status rope(const T *in, int64_t inLd, const int64_t *positions,
                      int64_t rows, int64_t numHeads, int64_t headDim,
                      float theta, T *out, int64_t outLd, void *stream) {
  if (headDim <= 0 || headDim % 2 || numHeads <= 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "rope: head_dim must be even and positive, num_heads > 0 "
                "(got head_dim " + std::to_string(headDim) + ", num_heads " +
                    std::to_string(numHeads) + ")");
  if (headDim > 8192)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "rope: head_dim > 8192");
  int64_t cols = numHeads * headDim;
  if (auto s = checkMatrix("rope in", in, rows, cols, inLd))
    return s;
  if (auto s = checkMatrix("rope out", out, rows, cols, outLd))
    return s;
  if (rows > 0 && !positions)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "rope: null positions");
  if (rows == 0)
    return GRETA_GPU_OK;
  int bug = selectedVariant(Op::Rope) == variant::kRopeFp16Angles;
  if ((headDim / 2) % Pack<T>::N == 0 &&
      packable<T>(cols, {{in, inLd}, {out, outLd}})) {
    int64_t work = numHeads * (headDim / 2 / Pack<T>::N);
    hipLaunchKernelGGL(ropePackedKernel<T>, dim3(rows),
                       dim3(threadsFor(work, 256)), headDim * sizeof(float),
                       asStream(stream), in, inLd, positions, numHeads,
                       headDim, theta, out, outLd, bug);
    GRETA_HIP_LAUNCH_CHECK();
    return GRETA_GPU_OK;
  }
  hipLaunchKernelGGL(ropeKernel<T>, dim3(rows), dim3(128),
                     (headDim / 2) * sizeof(float), asStream(stream), in, inLd,
                     positions, numHeads, headDim, theta, out, outLd, bug);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status kvAppend(const T *k, int64_t kLd, const T *v, int64_t vLd,
                          const int64_t *positions, int64_t rows,
                          int64_t kvDim, int64_t capacity, T *kc, T *vc,
                          int64_t cacheLd, void *stream) {
  if (auto s = checkMatrix("kv_append k", k, rows, kvDim, kLd))
    return s;
  if (auto s = checkMatrix("kv_append v", v, rows, kvDim, vLd))
    return s;
  if (auto s = checkMatrix("kv_append k cache", kc, capacity, kvDim, cacheLd))
    return s;
  if (auto s = checkMatrix("kv_append v cache", vc, capacity, kvDim, cacheLd))
    return s;
  if (rows > 0 && !positions)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "kv_append: null positions");
  if (rows == 0 || kvDim == 0)
    return GRETA_GPU_OK;
  if (packable<T>(kvDim, {{k, kLd}, {v, vLd}, {kc, cacheLd}, {vc, cacheLd}})) {
    int64_t packs = kvDim / Pack<T>::N;
    hipLaunchKernelGGL(kvAppendPackedKernel<T>, dim3(rows),
                       dim3(threadsFor(packs, 256)), 0, asStream(stream), k, kLd,
                       v, vLd, positions, packs, capacity, kc, vc, cacheLd,
                       deviceErrorWord());
    GRETA_HIP_LAUNCH_CHECK();
    return GRETA_GPU_OK;
  }
  hipLaunchKernelGGL(kvAppendKernel<T>, dim3(rows), dim3(256), 0,
                     asStream(stream), k, kLd, v, vLd, positions, kvDim, capacity,
                     kc, vc, cacheLd, deviceErrorWord());
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status swiglu(const T *gate, int64_t gateLd, const T *up,
                        int64_t upLd, int64_t rows, int64_t cols, T *out,
                        int64_t outLd, void *stream) {
  if (auto s = checkMatrix("swiglu gate", gate, rows, cols, gateLd))
    return s;
  if (auto s = checkMatrix("swiglu up", up, rows, cols, upLd))
    return s;
  if (auto s = checkMatrix("swiglu out", out, rows, cols, outLd))
    return s;
  if (rows == 0 || cols == 0)
    return GRETA_GPU_OK;
  if (packable<T>(cols, {{gate, gateLd}, {up, upLd}, {out, outLd}})) {
    int64_t packs = cols / Pack<T>::N;
    int threads = threadsFor(packs, 256);
    hipLaunchKernelGGL(swigluPackedKernel<T>, grid2d(rows, packs, threads),
                       dim3(threads), 0, asStream(stream), gate, gateLd, up,
                       upLd, rows, packs, out, outLd);
    GRETA_HIP_LAUNCH_CHECK();
    return GRETA_GPU_OK;
  }
  hipLaunchKernelGGL(swigluKernel<T>, grid2d(rows, cols, 256), dim3(256), 0,
                     asStream(stream), gate, gateLd, up, upLd, rows, cols, out,
                     outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status add(const T *a, int64_t aLd, const T *b, int64_t bLd,
                     int64_t rows, int64_t cols, T *out, int64_t outLd,
                     void *stream) {
  if (auto s = checkMatrix("add lhs", a, rows, cols, aLd))
    return s;
  if (auto s = checkMatrix("add rhs", b, rows, cols, bLd))
    return s;
  if (auto s = checkMatrix("add out", out, rows, cols, outLd))
    return s;
  if (rows == 0 || cols == 0)
    return GRETA_GPU_OK;
  if (packable<T>(cols, {{a, aLd}, {b, bLd}, {out, outLd}})) {
    int64_t packs = cols / Pack<T>::N;
    int threads = threadsFor(packs, 256);
    hipLaunchKernelGGL(addPackedKernel<T>, grid2d(rows, packs, threads),
                       dim3(threads), 0, asStream(stream), a, aLd, b, bLd,
                       rows, packs, out, outLd);
    GRETA_HIP_LAUNCH_CHECK();
    return GRETA_GPU_OK;
  }
  hipLaunchKernelGGL(addKernel<T>, grid2d(rows, cols, 256), dim3(256), 0,
                     asStream(stream), a, aLd, b, bLd, rows, cols, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

#define GRETA_DEFINE_ELEMENTWISE(CT, T, SUFFIX)                                \
  extern "C" greta_gpu_status greta_gpu_embedding_##SUFFIX(                    \
      const CT *table, int64_t vocab, int64_t hidden, int64_t tableLd,         \
      const int64_t *ids, int64_t rows, CT *out, int64_t outLd,                \
      void *stream) {                                                          \
    return embedding<T>(reinterpret_cast<const T *>(table), vocab, hidden,     \
                        tableLd, ids, rows, reinterpret_cast<T *>(out), outLd, \
                        stream);                                               \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_rms_norm_##SUFFIX(                     \
      const CT *in, int64_t inLd, const CT *weight, int64_t rows,              \
      int64_t cols, float eps, CT *out, int64_t outLd, void *stream) {         \
    return rmsNorm<T>(reinterpret_cast<const T *>(in), inLd,                   \
                      reinterpret_cast<const T *>(weight), rows, cols, eps,    \
                      reinterpret_cast<T *>(out), outLd, stream);              \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_rms_norm_gather_##SUFFIX(              \
      const CT *in, int64_t inLd, const CT *weight, int64_t rows,              \
      int64_t cols, float eps, CT *out, int64_t outLd,                         \
      const greta_gpu_gather_job *jobs, int numJobs, void *gatherDst,          \
      void *stream) {                                                          \
    return rmsNorm<T>(reinterpret_cast<const T *>(in), inLd,                   \
                      reinterpret_cast<const T *>(weight), rows, cols, eps,    \
                      reinterpret_cast<T *>(out), outLd, stream, jobs,         \
                      numJobs, gatherDst);                                     \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_rope_##SUFFIX(                         \
      const CT *in, int64_t inLd, const int64_t *positions, int64_t rows,      \
      int64_t numHeads, int64_t headDim, float theta, CT *out, int64_t outLd,  \
      void *stream) {                                                          \
    return rope<T>(reinterpret_cast<const T *>(in), inLd, positions, rows,     \
                   numHeads, headDim, theta, reinterpret_cast<T *>(out),       \
                   outLd, stream);                                             \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_kv_append_##SUFFIX(                    \
      const CT *k, int64_t kLd, const CT *v, int64_t vLd,                      \
      const int64_t *positions, int64_t rows, int64_t kvDim, int64_t capacity, \
      CT *kc, CT *vc, int64_t cacheLd, void *stream) {                         \
    return kvAppend<T>(reinterpret_cast<const T *>(k), kLd,                    \
                       reinterpret_cast<const T *>(v), vLd, positions, rows,   \
                       kvDim, capacity, reinterpret_cast<T *>(kc),             \
                       reinterpret_cast<T *>(vc), cacheLd, stream);            \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_swiglu_##SUFFIX(                       \
      const CT *gate, int64_t gateLd, const CT *up, int64_t upLd,              \
      int64_t rows, int64_t cols, CT *out, int64_t outLd, void *stream) {      \
    return swiglu<T>(reinterpret_cast<const T *>(gate), gateLd,                \
                     reinterpret_cast<const T *>(up), upLd, rows, cols,        \
                     reinterpret_cast<T *>(out), outLd, stream);               \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_add_##SUFFIX(                          \
      const CT *a, int64_t aLd, const CT *b, int64_t bLd, int64_t rows,        \
      int64_t cols, CT *out, int64_t outLd, void *stream) {                    \
    return add<T>(reinterpret_cast<const T *>(a), aLd,                         \
                  reinterpret_cast<const T *>(b), bLd, rows, cols,             \
                  reinterpret_cast<T *>(out), outLd, stream);                  \
  }

GRETA_DEFINE_ELEMENTWISE(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_ELEMENTWISE(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_ELEMENTWISE(float, float, f32)

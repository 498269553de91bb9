//===- Attention.hip - Causal GQA attention, flash-style ------------------===//
//
// Queries at positions [q_start, q_start + n_q) attend to cached keys
// [0, position]. One block per (64-query tile, query head); key/value tiles
// of 64 rows are staged in shared memory and folded in with the online
// softmax (running max m, running sum l, output rescaled by exp(m_old -
// m_new)), so any context length runs in constant shared memory, and
// lengths that are not multiples of 64 are masked, not padded.
//
// Five kernels, chosen by the attention variant (Runtime.hip's registry):
//  - attnHopperKernel<T, D> (`default` and `hopper` on compute capability
//    9.0 at head_dim 64/128, f16/bf16): sm_90a wgmma, a producer warpgroup
//    and two consumer warpgroups (AttentionHopper.h).
//  - attnGqaKernel<T, D> (`gqa`, `lazy_rescale`, and `default` on other
//    NVIDIA GPUs and head_dims): mma.sync (sm_80+), f16/bf16; one block serves
//    the query heads of a KV head; FlashAttention-2's structure, packed for
//    grouped-query attention.
//  - attnMmaKernel<T, D> (`mma_fa2`): the previous default, one query head
//    per block, kept for comparison.
//  - attnWmmaKernel<T, D> (`wmma`): NVIDIA only (CUDA WMMA), f16/bf16; QK^T
//    and PV on the tensor cores through shared memory.
//  - attnScalarKernel<T, D> (`scalar`; also f32, rows not 16-byte aligned,
//    and every variant on AMD): portable (HIP and CUDA, every dtype), fp32
//    FMA, one thread per query row.
// The scalar kernel and the launchers are here; the WMMA and mma_fa2 kernels
// in AttentionTensorCore.h, the GQA kernel in AttentionGqa.h, the Hopper
// kernel in AttentionHopper.h (fragments of this translation unit).
// Planted bug (variant attention=partial_tile_bug): the number of key tiles
// is computed as kv_len / 64 instead of ceil, dropping the partial last tile.
//
//===----------------------------------------------------------------------===//
#include "Common.h"
#include "greta/gpu/FamilyKernels.h"

#include <string>
#include <type_traits>

#if !defined(__HIP_PLATFORM_AMD__) && !defined(GRETA_GPU_HIP)
#include <mma.h>
#define GRETA_HAVE_WMMA 1
#endif

namespace greta::gpu {
namespace {

constexpr int kBQ = 64, kBK = 64;
// Indices of attention=mma_fa2 and attention=lazy_rescale in Runtime.hip's
// registry (after the variants of Common.h's variant::kAttn*).
constexpr int kAttnMmaFa2 = 4, kAttnLazyRescale = 5, kAttnHopper = 6,
              kAttnGqa = 7;
constexpr float kLog2e = 1.4426950408889634f;

struct AttnArgs {
  const void *q, *k, *v;
  void *out;
  int64_t qLd, kvLd, outLd;
  int64_t nQ, qStart;
  int numHeads, numKvHeads;
  float scaleLog2; // softmax scale * log2(e): exp2 instead of exp
  int partialTileBug;
  // Sliding window (Mistral, Qwen2, Phi-3): a query at position p sees keys
  // (p - window, p]; 0 = none. Only the scalar kernel takes one.
  int64_t window;
};

// Key tiles block `qTile` must visit. Its last query is at position
// qStart + min(q0 + BQ, nQ) - 1, so keys [0, that] are needed.
__device__ __forceinline__ int64_t keyTilesFor(const AttnArgs &a, int64_t q0,
                                              int64_t bq = kBQ) {
  int64_t lastQ = (q0 + bq < a.nQ ? q0 + bq : a.nQ) - 1;
  int64_t needed = a.qStart + lastQ + 1;
  int64_t tiles = (needed + kBK - 1) / kBK;
  if (a.partialTileBug) {
    // PLANTED BUG: "kv_len / BLOCK_N" where kv_len is this call's whole
    // key range: the partial last tile is never loaded.
    int64_t kvLen = a.qStart + a.nQ;
    int64_t full = kvLen / kBK;
    tiles = tiles < full ? tiles : full;
  }
  return tiles;
}

// ----------------------------------------------------------- scalar kernel
// Shared memory: K, V tiles as T [BK][D]; Q and O as float [BQ][D+1] (the +1
// keeps each thread's own row on its own bank).
template <typename T, int D>
__global__ void __launch_bounds__(kBQ)
    attnScalarKernel(AttnArgs a) {
  extern __shared__ __align__(16) unsigned char smemRaw[];
  T *Ks = reinterpret_cast<T *>(smemRaw);
  T *Vs = Ks + kBK * D;
  float *Qs = reinterpret_cast<float *>(Vs + kBK * D);
  float *Os = Qs + kBQ * (D + 1);
  const int t = threadIdx.x;
  const int64_t q0 = blockIdx.x * (int64_t)kBQ;
  const int h = blockIdx.y;
  const int kvh = h / (a.numHeads / a.numKvHeads);
  const T *q = static_cast<const T *>(a.q);
  const T *k = static_cast<const T *>(a.k);
  const T *v = static_cast<const T *>(a.v);
  const int64_t i = q0 + t;
  const bool valid = i < a.nQ;
  const int64_t pos = a.qStart + i;
  for (int d = 0; d < D; ++d) {
    Qs[t * (D + 1) + d] = valid ? toF<T>(q[i * a.qLd + h * D + d]) : 0.f;
    Os[t * (D + 1) + d] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  const int64_t tiles = keyTilesFor(a, q0);
  // With a window, keys before the block's first query's window are seen by
  // no row of the block: their tiles are skipped.
  const int64_t firstKey =
      a.window > 0 && a.qStart + q0 - a.window + 1 > 0
          ? a.qStart + q0 - a.window + 1
          : 0;
  const int64_t lowest = a.window > 0 ? pos - a.window : -1; // keys > lowest
  for (int64_t tile = firstKey / kBK; tile < tiles; ++tile) {
    const int64_t k0 = tile * kBK;
    __syncthreads();
    for (int e = t; e < kBK * D; e += kBQ) {
      int j = e / D, d = e % D;
      int64_t key = k0 + j;
      bool in = key < a.qStart + a.nQ;
      Ks[e] = in ? k[key * a.kvLd + kvh * D + d] : fromF<T>(0.f);
      Vs[e] = in ? v[key * a.kvLd + kvh * D + d] : fromF<T>(0.f);
    }
    __syncthreads();
    if (!valid)
      continue;
    float s[kBK];
    float tileMax = -INFINITY;
#pragma unroll
    for (int j = 0; j < kBK; ++j) {
      float acc = 0.f;
#pragma unroll 8
      for (int d = 0; d < D; ++d)
        acc = fmaf(Qs[t * (D + 1) + d], toF<T>(Ks[j * D + d]), acc);
      s[j] = (k0 + j <= pos && k0 + j > lowest) ? acc * a.scaleLog2
                                                : -INFINITY;
      tileMax = fmaxf(tileMax, s[j]);
    }
    float mNew = fmaxf(m, tileMax);
    float mUse = mNew == -INFINITY ? 0.f : mNew;
    float alpha = exp2f(m - mUse);
    float rowSum = 0.f;
#pragma unroll
    for (int j = 0; j < kBK; ++j) {
      s[j] = exp2f(s[j] - mUse);
      rowSum += s[j];
    }
    l = l * alpha + rowSum;
    m = mNew;
    for (int d = 0; d < D; ++d) {
      float o = Os[t * (D + 1) + d] * alpha;
#pragma unroll
      for (int j = 0; j < kBK; ++j) // an unseen key is skipped, not * 0
        o = k0 + j <= pos && k0 + j > lowest
                ? fmaf(s[j], toF<T>(Vs[j * D + d]), o)
                : o;
      Os[t * (D + 1) + d] = o;
    }
  }
  if (!valid)
    return;
  T *out = static_cast<T *>(a.out) + i * a.outLd + h * D;
  float inv = 1.f / l; // l == 0 only when keys were dropped (bug): NaN
  for (int d = 0; d < D; ++d)
    out[d] = fromF<T>(Os[t * (D + 1) + d] * inv);
}

#include "AttentionTensorCore.h"
#include "AttentionGqa.h"
#include "AttentionHopper.h"

template <typename T, int D>
greta_gpu_status launchScalar(const AttnArgs &a, hipStream_t s) {
  size_t smem = 2 * size_t(kBK) * D * sizeof(T) + 2 * size_t(kBQ) * (D + 1) * 4;
  GRETA_HIP_TRY(hipFuncSetAttribute(
      reinterpret_cast<const void *>(&attnScalarKernel<T, D>),
      hipFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  dim3 grid(static_cast<unsigned>((a.nQ + kBQ - 1) / kBQ), a.numHeads);
  hipLaunchKernelGGL((attnScalarKernel<T, D>), grid, dim3(kBQ), smem, s, a);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

#ifdef GRETA_HAVE_WMMA
template <typename T, int D>
greta_gpu_status launchWmma(const AttnArgs &a, hipStream_t s) {
  size_t smem = WmmaLayout<D>::template bytes<T>();
  GRETA_HIP_TRY(hipFuncSetAttribute(
      reinterpret_cast<const void *>(&attnWmmaKernel<T, D>),
      hipFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  dim3 grid(static_cast<unsigned>((a.nQ + kBQ - 1) / kBQ), a.numHeads);
  hipLaunchKernelGGL((attnWmmaKernel<T, D>), grid, dim3(128), smem, s, a);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T, int D>
greta_gpu_status launchMma(const AttnArgs &a, hipStream_t s) {
  size_t smem = MmaLayout<D>::template bytes<T>();
  GRETA_HIP_TRY(hipFuncSetAttribute(
      reinterpret_cast<const void *>(&attnMmaKernel<T, D>),
      hipFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  dim3 grid(static_cast<unsigned>((a.nQ + kBQ - 1) / kBQ), a.numHeads);
  hipLaunchKernelGGL((attnMmaKernel<T, D>), grid, dim3(128), smem, s, a);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}
#endif

#ifdef GRETA_HAVE_WMMA
constexpr int gcdInt(int x, int y) { return y == 0 ? x : gcdInt(y, x % y); }

template <typename T, int D, int NW, int MT, int ST, bool TUNED>
greta_gpu_status launchGqa(const AttnArgs &a, hipStream_t s, float lazy) {
  constexpr size_t smem = GqaLayout<D, ST>::template bytes<T>();
  auto kern = &attnGqaKernel<T, D, NW, MT, ST, TUNED>;
  GRETA_HIP_TRY(hipFuncSetAttribute(reinterpret_cast<const void *>(kern),
                                    hipFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  GqaGeom gm;
  gm.group = a.numHeads / a.numKvHeads;
  gm.gb = gcdInt(gm.group, NW * MT);
  gm.bqPos = 16 * NW * MT / gm.gb;
  gm.headGroups = a.numKvHeads * (gm.group / gm.gb);
  const int64_t posTiles = (a.nQ + gm.bqPos - 1) / gm.bqPos;
  const int64_t blocks = posTiles * gm.headGroups;
  if (blocks > 0x7fffffff)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "attention: too many rows");
  gm.posTiles = static_cast<int>(posTiles);
  gm.lazy = lazy;
  hipLaunchKernelGGL((attnGqaKernel<T, D, NW, MT, ST, TUNED>),
                     dim3(static_cast<unsigned>(blocks)), dim3(NW * 32), smem,
                     s, a, gm);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

// The sm_90a wgmma kernel: a producer and two consumer warpgroups, BN-key
// tiles, ST stages.
template <typename T, int D, int BN, int ST>
greta_gpu_status launchHopper(const AttnArgs &a, hipStream_t s) {
  constexpr int NWG = 2; // consumer warpgroups
  constexpr size_t smem = HopperLayout<D, BN, ST>::bytes();
  auto kern = &attnHopperKernel<T, D, BN, ST>;
  GRETA_HIP_TRY(hipFuncSetAttribute(reinterpret_cast<const void *>(kern),
                                    hipFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(smem)));
  GqaGeom gm;
  gm.group = a.numHeads / a.numKvHeads;
  gm.gb = gcdInt(gm.group, 4 * NWG);
  gm.bqPos = 64 * NWG / gm.gb;
  gm.headGroups = a.numKvHeads * (gm.group / gm.gb);
  const int64_t posTiles = (a.nQ + gm.bqPos - 1) / gm.bqPos;
  const int64_t blocks = posTiles * gm.headGroups;
  if (blocks > 0x7fffffff)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "attention: too many rows");
  gm.posTiles = static_cast<int>(posTiles);
  gm.lazy = 0.f;
  hipLaunchKernelGGL((attnHopperKernel<T, D, BN, ST>),
                     dim3(static_cast<unsigned>(blocks)), dim3(128 + NWG * 128),
                     smem, s, a, gm);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

#ifdef GRETA_HAVE_SM90A
// Whether the current device runs sm_90a code (compute capability 9.0).
bool deviceIsSm90() {
  int dev = 0, major = 0, minor = 0;
  if (hipGetDevice(&dev) != hipSuccess ||
      hipDeviceGetAttribute(&major, hipDeviceAttributeComputeCapabilityMajor,
                            dev) != hipSuccess ||
      hipDeviceGetAttribute(&minor, hipDeviceAttributeComputeCapabilityMinor,
                            dev) != hipSuccess)
    return false;
  return major == 9 && minor == 0;
}
#endif

// The measured best shape (H100): 4 warps, 32 rows per warp (16 at
// D = 128, where 32 would not fit the registers), 3 stages; two blocks per SM.
// The default is the TUNED kernel; lazy_rescale (lazy > 0) keeps the code it
// was measured with.
template <typename T, int D>
greta_gpu_status launchGqaDefault(const AttnArgs &a, hipStream_t s, float lazy) {
  constexpr int MT = D == 128 ? 1 : 2;
  if (lazy > 0.f)
    return launchGqa<T, D, 4, MT, 3, false>(a, s, lazy);
  return launchGqa<T, D, 4, MT, 3, true>(a, s, lazy);
}
#endif

template <typename T>
constexpr bool kIs16Bit = sizeof(T) == 2;
enum class Kernel { Scalar, Wmma, Mma, Gqa, GqaLazy, Hopper };

template <typename T, int D>
greta_gpu_status launch(const AttnArgs &a, hipStream_t s, Kernel kern) {
#ifdef GRETA_HAVE_WMMA
  if constexpr (kIs16Bit<T>) {
    // head_dim 64 and 128 on sm_90; the GQA kernel elsewhere.
    if (kern == Kernel::Hopper) {
#ifdef GRETA_HAVE_SM90A // else the kernel's body is empty (CMakeLists.txt)
      if constexpr (D == 64 || D == 128) {
        if (deviceIsSm90())
          return launchHopper<T, D, 128, D == 128 ? 3 : 4>(a, s);
      }
#endif
      kern = Kernel::Gqa;
    }
    if (kern == Kernel::Gqa || kern == Kernel::GqaLazy)
      return launchGqaDefault<T, D>(a, s, kern == Kernel::GqaLazy ? 8.f : 0.f);
    if (kern == Kernel::Mma)
      return launchMma<T, D>(a, s);
    if (kern == Kernel::Wmma)
      return launchWmma<T, D>(a, s);
  }
#endif
  (void)kern;
  return launchScalar<T, D>(a, s);
}

template <typename T>
greta_gpu_status attention(const T *q, int64_t qLd, const T *kc, const T *vc,
                           int64_t kvLd, int64_t nQ, int64_t qStart,
                           int64_t numHeads, int64_t numKvHeads,
                           int64_t headDim, float scale, T *out, int64_t outLd,
                           void *stream, int64_t window = 0) {
  if (window < 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "attention: sliding window " + std::to_string(window) +
                    " < 0");
  if (headDim != 8 && headDim != 16 && headDim != 32 && headDim != 64 &&
      headDim != 128)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "attention: head_dim " + std::to_string(headDim) +
                    " not supported (8, 16, 32, 64 or 128)");
  if (numHeads <= 0 || numKvHeads <= 0 || numHeads % numKvHeads ||
      numHeads > 65535)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "attention: num_heads (" + std::to_string(numHeads) +
                    ") must be a positive multiple of num_kv_heads (" +
                    std::to_string(numKvHeads) + ")");
  if (qStart < 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "attention: q_start < 0");
  if (auto st = checkMatrix("attention q", q, nQ, numHeads * headDim, qLd))
    return st;
  if (auto st = checkMatrix("attention out", out, nQ, numHeads * headDim, outLd))
    return st;
  int64_t kvRows = qStart + nQ;
  if (auto st = checkMatrix("attention k cache", kc, kvRows,
                            numKvHeads * headDim, kvLd))
    return st;
  if (auto st = checkMatrix("attention v cache", vc, kvRows,
                            numKvHeads * headDim, kvLd))
    return st;
  if (nQ == 0)
    return GRETA_GPU_OK;
  int var = selectedVariant(Op::Attention);
  AttnArgs a{q, kc, vc, out, qLd, kvLd, outLd, nQ, qStart,
             static_cast<int>(numHeads), static_cast<int>(numKvHeads),
             scale * kLog2e, var == variant::kAttnPartialTileBug ? 1 : 0,
             window};
  // The tensor-core kernel loads 16-byte vectors: every row start must be
  // 16-byte aligned; otherwise the scalar kernel runs.
  auto aligned = [](const void *p, int64_t ld) {
    return (reinterpret_cast<uintptr_t>(p) % 16 == 0) && (ld * 2) % 16 == 0;
  };
  bool vec = aligned(q, qLd) && aligned(kc, kvLd) && aligned(vc, kvLd) &&
             aligned(out, outLd);
  // A sliding window runs the scalar kernel whatever the variant (the
  // tensor-core kernels take no window yet: docs/KERNELS.md).
  Kernel kern = !vec || window > 0 || var == variant::kAttnScalar
                    ? Kernel::Scalar
                : var == variant::kAttnWmma         ? Kernel::Wmma
                : var == kAttnMmaFa2                ? Kernel::Mma
                : var == kAttnLazyRescale           ? Kernel::GqaLazy
                : var == kAttnGqa                   ? Kernel::Gqa
                : var == kAttnHopper                ? Kernel::Hopper
                                                    : Kernel::Hopper;
  hipStream_t s = asStream(stream);
  switch (headDim) {
  // The small head_dims of test-sized models (the HF references): the
  // scalar kernel only.
  case 8: return launchScalar<T, 8>(a, s);
  case 16: return launchScalar<T, 16>(a, s);
  case 32: return launch<T, 32>(a, s, kern);
  case 64: return launch<T, 64>(a, s, kern);
  default: return launch<T, 128>(a, s, kern);
  }
}

} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

#define GRETA_DEFINE_ATTENTION(CT, T, SUFFIX)                                  \
  extern "C" greta_gpu_status greta_gpu_attention_##SUFFIX(                    \
      const CT *q, int64_t qLd, const CT *kc, const CT *vc, int64_t kvLd,      \
      int64_t nQ, int64_t qStart, int64_t numHeads, int64_t numKvHeads,        \
      int64_t headDim, float scale, CT *out, int64_t outLd, void *stream) {    \
    return attention<T>(reinterpret_cast<const T *>(q), qLd,                   \
                        reinterpret_cast<const T *>(kc),                       \
                        reinterpret_cast<const T *>(vc), kvLd, nQ, qStart,     \
                        numHeads, numKvHeads, headDim, scale,                  \
                        reinterpret_cast<T *>(out), outLd, stream);            \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_attention_window_##SUFFIX(             \
      const CT *q, int64_t qLd, const CT *kc, const CT *vc, int64_t kvLd,      \
      int64_t nQ, int64_t qStart, int64_t numHeads, int64_t numKvHeads,        \
      int64_t headDim, float scale, int64_t window, CT *out, int64_t outLd,    \
      void *stream) {                                                          \
    return attention<T>(reinterpret_cast<const T *>(q), qLd,                   \
                        reinterpret_cast<const T *>(kc),                       \
                        reinterpret_cast<const T *>(vc), kvLd, nQ, qStart,     \
                        numHeads, numKvHeads, headDim, scale,                  \
                        reinterpret_cast<T *>(out), outLd, stream, window);    \
  }
GRETA_DEFINE_ATTENTION(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_ATTENTION(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_ATTENTION(float, float, f32)

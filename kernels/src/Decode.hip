//===- Decode.hip - Paged KV cache: append and split-K attention ---------===//
//
// The paged KV cache of chunked prefill and decode steps (GpuSession holds
// the pages and the block tables): a slot's rows live in pages of
// `block_size` rows; position p is row table[p / block_size] * block_size +
// p % block_size of the slot's pool [pages * block_size, kv_dim].
//
// paged_attention is flash-decoding: query row i (position q_start + i)
// attends to keys [0, q_start + i]; the keys are cut into `splits` ranges,
// one block per (kv head, split, query row) whose warps are the query heads
// of that kv head (GQA: the kv rows are read once per block), each with an
// online softmax in fp32; a second kernel merges the splits' partial
// (max, sum, output) in a fixed order (deterministic).
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <algorithm>

namespace greta::gpu {
namespace {

constexpr int kMaxHeadDim = 256;
constexpr int kMaxPerLane = kMaxHeadDim / 32;
// Query heads per kv head: one warp each in a block of at most 1024 threads.
constexpr int kMaxGroup = 1024 / GRETA_WARP_CONST;

__device__ inline int64_t pagedRow(const int32_t *table, int64_t pos,
                                   int64_t bs, bool boundaryBug) {
  // PLANTED BUG (page_boundary_bug): the page of a key that opens a page
  // taken as (pos - 1) / bs, the previous page.
  int64_t page = boundaryBug && pos > 0 ? (pos - 1) / bs : pos / bs;
  return static_cast<int64_t>(table[page]) * bs + pos % bs;
}

template <typename T>
__global__ void pagedAppendKernel(const T *k, int64_t kLd, const T *v,
                                  int64_t vLd, const int64_t *positions,
                                  int64_t kvDim, const int32_t *table,
                                  int64_t bs, T *kPool, T *vPool,
                                  int stalePageBug) {
  int64_t i = blockIdx.x;
  int64_t pos = positions[i];
  // PLANTED BUG (stale_page_bug): the row that opens a page is written
  // through the page pointer held from before the sequence grew, which
  // covers no such row: it is dropped, and the new page's slot keeps what
  // its previous use left there.
  if (stalePageBug && pos > 0 && pos % bs == 0)
    return;
  int64_t row = pagedRow(table, pos, bs, false);
  for (int64_t c = threadIdx.x; c < kvDim; c += blockDim.x) {
    kPool[row * kvDim + c] = k[i * kLd + c];
    vPool[row * kvDim + c] = v[i * vLd + c];
  }
}

template <typename T>
__global__ void pagedGatherKernel(const T *pool, const int32_t *table,
                                  int64_t bs, int64_t first, int64_t kvDim,
                                  T *out, int64_t outLd) {
  int64_t i = blockIdx.x;
  int64_t row = pagedRow(table, first + i, bs, false);
  for (int64_t c = threadIdx.x; c < kvDim; c += blockDim.x)
    out[i * outLd + c] = pool[row * kvDim + c];
}

// Partial results: per (row, head, split) the running max m, the sum l and
// the unnormalized output o[head_dim], in fp32.
template <typename T, int PER_LANE>
__global__ void pagedAttentionSplit(const T *q, int64_t qLd, const T *kPool,
                                    const T *vPool, const int32_t *table,
                                    int64_t bs, int64_t qStart, int numHeads,
                                    int numKvHeads, int headDim, float scale,
                                    int64_t keysPerSplit, int splits,
                                    float *partial, int boundaryBug) {
  int kvh = blockIdx.x, split = blockIdx.y;
  int64_t row = blockIdx.z;
  int group = numHeads / numKvHeads;
  int warp = threadIdx.x / GRETA_WARP, lane = threadIdx.x % GRETA_WARP;
  if (warp >= group)
    return;
  int head = kvh * group + warp;
  int64_t kvDim = static_cast<int64_t>(numKvHeads) * headDim;
  int64_t len = qStart + row + 1;
  int64_t begin = split * keysPerSplit;
  int64_t end = begin + keysPerSplit < len ? begin + keysPerSplit : len;
  float qv[PER_LANE], acc[PER_LANE];
  const T *qRow = q + row * qLd + static_cast<int64_t>(head) * headDim;
  for (int e = 0; e < PER_LANE; ++e) {
    int d = lane + e * GRETA_WARP;
    qv[e] = d < headDim ? toF<T>(qRow[d]) * scale : 0.f;
    acc[e] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  // KEYS keys at a time: their dot products, shuffles and exps are
  // independent (a warp's chain of one key at a time is latency-bound).
  constexpr int KEYS = 4;
  for (int64_t j = begin; j < end; j += KEYS) {
    int nk = end - j < KEYS ? static_cast<int>(end - j) : KEYS;
    const T *vRow[KEYS];
    float s[KEYS];
#pragma unroll
    for (int u = 0; u < KEYS; ++u) {
      int64_t r = pagedRow(table, u < nk ? j + u : j, bs, boundaryBug != 0);
      const T *kRow = kPool + r * kvDim + static_cast<int64_t>(kvh) * headDim;
      vRow[u] = vPool + r * kvDim + static_cast<int64_t>(kvh) * headDim;
      s[u] = 0.f;
#pragma unroll
      for (int e = 0; e < PER_LANE; ++e) {
        int d = lane + e * GRETA_WARP;
        if (d < headDim)
          s[u] += qv[e] * toF<T>(kRow[d]);
      }
    }
    for (int off = GRETA_WARP / 2; off > 0; off /= 2)
#pragma unroll
      for (int u = 0; u < KEYS; ++u)
        s[u] += GRETA_SHFL_XOR(s[u], off);
    float mNew = m;
#pragma unroll
    for (int u = 0; u < KEYS; ++u)
      if (u < nk)
        mNew = fmaxf(mNew, s[u]);
    float corr = expf(m - mNew), p[KEYS];
    l *= corr;
#pragma unroll
    for (int u = 0; u < KEYS; ++u) {
      p[u] = u < nk ? expf(s[u] - mNew) : 0.f;
      l += p[u];
    }
#pragma unroll
    for (int e = 0; e < PER_LANE; ++e) {
      int d = lane + e * GRETA_WARP;
      float a = acc[e] * corr;
      if (d < headDim)
#pragma unroll
        for (int u = 0; u < KEYS; ++u)
          if (u < nk)
            a += p[u] * toF<T>(vRow[u][d]);
      acc[e] = a;
    }
    m = mNew;
  }
  float *out = partial + ((row * numHeads + head) * static_cast<int64_t>(splits) +
                          split) *
                             (headDim + 2);
  if (lane == 0) {
    out[0] = m;
    out[1] = l;
  }
  for (int e = 0; e < PER_LANE; ++e) {
    int d = lane + e * GRETA_WARP;
    if (d < headDim)
      out[2 + d] = acc[e];
  }
}

template <typename T>
__global__ void pagedAttentionMerge(const float *partial, int numHeads,
                                    int headDim, int splits, T *out,
                                    int64_t outLd) {
  int head = blockIdx.x;
  int64_t row = blockIdx.y;
  const float *p =
      partial + (row * numHeads + head) * static_cast<int64_t>(splits) *
                    (headDim + 2);
  float mMax = -INFINITY;
  for (int s = 0; s < splits; ++s)
    mMax = fmaxf(mMax, p[s * (headDim + 2)]);
  for (int d = threadIdx.x; d < headDim; d += blockDim.x) {
    float num = 0.f, den = 0.f;
    for (int s = 0; s < splits; ++s) {
      const float *ps = p + s * (headDim + 2);
      if (ps[1] == 0.f) // an empty split (past the row's keys)
        continue;
      float w = expf(ps[0] - mMax);
      num += w * ps[2 + d];
      den += w * ps[1];
    }
    out[row * outLd + static_cast<int64_t>(head) * headDim + d] =
        fromF<T>(num / den);
  }
}

int64_t keysPerSplitFor(int64_t nQ, int64_t numKvHeads, int64_t maxLen,
                        int *splits) {
  // Enough blocks for ~8 per SM on 132 SMs (a warp walks its keys one
  // after another: latency-bound, so parallelism over keys is what pays);
  // at least 64 keys a split.
  int64_t blocks = std::max<int64_t>(1, nQ * numKvHeads);
  int64_t want = std::max<int64_t>(1, (1056 + blocks - 1) / blocks);
  int64_t maxSplits = std::max<int64_t>(1, (maxLen + 63) / 64);
  int64_t n = std::min(want, maxSplits);
  int64_t per = (maxLen + n - 1) / n;
  *splits = static_cast<int>((maxLen + per - 1) / per);
  return per;
}

greta_gpu_status checkPaged(const char *what, const void *table,
                            int64_t blockSize, const void *kPool,
                            const void *vPool) {
  if (!table || !kPool || !vPool)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                std::string(what) + ": null block table or page pool");
  if (blockSize <= 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                std::string(what) + ": block_size " +
                    std::to_string(blockSize) + " must be positive");
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status pagedAppend(const T *k, int64_t kLd, const T *v, int64_t vLd,
                             const int64_t *positions, int64_t rows,
                             int64_t kvDim, const int32_t *table,
                             int64_t blockSize, T *kPool, T *vPool,
                             void *stream) {
  if (auto st = checkPaged("paged_kv_append", table, blockSize, kPool, vPool))
    return st;
  if (auto st = checkMatrix("paged_kv_append k", k, rows, kvDim, kLd))
    return st;
  if (auto st = checkMatrix("paged_kv_append v", v, rows, kvDim, vLd))
    return st;
  if (rows == 0)
    return GRETA_GPU_OK;
  int bug = selectedVariant(Op::PagedKvAppend) == variant::kPagedStalePageBug;
  int threads = static_cast<int>(std::min<int64_t>(256, kvDim));
  hipLaunchKernelGGL(pagedAppendKernel<T>, dim3(static_cast<unsigned>(rows)),
                     dim3(threads), 0, asStream(stream), k, kLd, v, vLd,
                     positions, kvDim, table, blockSize, kPool, vPool, bug);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status pagedGather(const T *pool, const int32_t *table,
                             int64_t blockSize, int64_t first, int64_t rows,
                             int64_t kvDim, T *out, int64_t outLd,
                             void *stream) {
  if (auto st = checkPaged("paged_gather", table, blockSize, pool, pool))
    return st;
  if (first < 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "paged_gather: first < 0");
  if (auto st = checkMatrix("paged_gather out", out, rows, kvDim, outLd))
    return st;
  if (rows == 0)
    return GRETA_GPU_OK;
  int threads = static_cast<int>(std::min<int64_t>(256, kvDim));
  hipLaunchKernelGGL(pagedGatherKernel<T>, dim3(static_cast<unsigned>(rows)),
                     dim3(threads), 0, asStream(stream), pool, table,
                     blockSize, first, kvDim, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

template <typename T>
greta_gpu_status pagedAttention(const T *q, int64_t qLd, const T *kPool,
                                const T *vPool, const int32_t *table,
                                int64_t blockSize, int64_t nQ, int64_t qStart,
                                int64_t numHeads, int64_t numKvHeads,
                                int64_t headDim, float scale, T *out,
                                int64_t outLd, void *scratch,
                                int64_t scratchBytes, void *stream) {
  if (auto st = checkPaged("paged_attention", table, blockSize, kPool, vPool))
    return st;
  if (headDim <= 0 || headDim > kMaxHeadDim)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "paged_attention: head_dim " + std::to_string(headDim) +
                    " not supported (1 to 256)");
  if (numHeads <= 0 || numKvHeads <= 0 || numHeads % numKvHeads ||
      numHeads / numKvHeads > kMaxGroup)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "paged_attention: num_heads (" + std::to_string(numHeads) +
                    ") must be a positive multiple of num_kv_heads (" +
                    std::to_string(numKvHeads) + "), at most " +
                    std::to_string(kMaxGroup) + " times it");
  if (qStart < 0)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "paged_attention: q_start < 0");
  if (nQ > 65535) // a grid dimension of its own
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "paged_attention: " + std::to_string(nQ) +
                    " query rows in one call, at most 65535");
  if (auto st = checkMatrix("paged_attention q", q, nQ, numHeads * headDim,
                            qLd))
    return st;
  if (auto st = checkMatrix("paged_attention out", out, nQ,
                            numHeads * headDim, outLd))
    return st;
  if (nQ == 0)
    return GRETA_GPU_OK;
  int64_t need = greta_gpu_paged_attention_scratch_bytes(nQ, qStart, numHeads,
                                                         numKvHeads, headDim);
  if (!scratch || scratchBytes < need)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "paged_attention: scratch of " + std::to_string(scratchBytes) +
                    " bytes, needs " + std::to_string(need));
  int splits = 1;
  int64_t per = keysPerSplitFor(nQ, numKvHeads, qStart + nQ, &splits);
  int bug =
      selectedVariant(Op::PagedAttention) == variant::kPagedBoundaryBug;
  int group = static_cast<int>(numHeads / numKvHeads);
  // Whole warps; at least 2 so the block is never a lone warp.
  dim3 grid(static_cast<unsigned>(numKvHeads), static_cast<unsigned>(splits),
            static_cast<unsigned>(nQ));
  dim3 block(static_cast<unsigned>(std::max(group, 2) * GRETA_WARP));
  hipStream_t s = asStream(stream);
  auto *partial = static_cast<float *>(scratch);
  int perLane = static_cast<int>((headDim + GRETA_WARP - 1) / GRETA_WARP);
#define GRETA_PAGED_SPLIT(N)                                                   \
  hipLaunchKernelGGL((pagedAttentionSplit<T, N>), grid, block, 0, s, q, qLd,  \
                     kPool, vPool, table, blockSize, qStart,                   \
                     static_cast<int>(numHeads), static_cast<int>(numKvHeads), \
                     static_cast<int>(headDim), scale, per, splits, partial,   \
                     bug)
  if (perLane <= 1)
    GRETA_PAGED_SPLIT(1);
  else if (perLane <= 2)
    GRETA_PAGED_SPLIT(2);
  else if (perLane <= 4)
    GRETA_PAGED_SPLIT(4);
  else
    GRETA_PAGED_SPLIT(kMaxPerLane);
#undef GRETA_PAGED_SPLIT
  GRETA_HIP_LAUNCH_CHECK();
  hipLaunchKernelGGL(pagedAttentionMerge<T>,
                     dim3(static_cast<unsigned>(numHeads),
                          static_cast<unsigned>(nQ)),
                     dim3(static_cast<unsigned>(
                         std::min<int64_t>(128, std::max<int64_t>(
                                                    GRETA_WARP, headDim)))),
                     0, s, partial, static_cast<int>(numHeads),
                     static_cast<int>(headDim), splits, out, outLd);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

extern "C" int64_t greta_gpu_paged_attention_scratch_bytes(
    int64_t nQ, int64_t qStart, int64_t numHeads, int64_t numKvHeads,
    int64_t headDim) {
  int splits = 1;
  keysPerSplitFor(nQ, numKvHeads, qStart + nQ, &splits);
  return nQ * numHeads * splits * (headDim + 2) *
         static_cast<int64_t>(sizeof(float));
}

#define GRETA_DEFINE_PAGED(CT, T, SUFFIX)                                      \
  extern "C" greta_gpu_status greta_gpu_paged_kv_append_##SUFFIX(              \
      const CT *k, int64_t kLd, const CT *v, int64_t vLd,                      \
      const int64_t *positions, int64_t rows, int64_t kvDim,                   \
      const int32_t *table, int64_t blockSize, CT *kPool, CT *vPool,           \
      void *stream) {                                                          \
    return pagedAppend<T>(reinterpret_cast<const T *>(k), kLd,                 \
                          reinterpret_cast<const T *>(v), vLd, positions,      \
                          rows, kvDim, table, blockSize,                       \
                          reinterpret_cast<T *>(kPool),                        \
                          reinterpret_cast<T *>(vPool), stream);               \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_paged_gather_##SUFFIX(                 \
      const CT *pool, const int32_t *table, int64_t blockSize, int64_t first,  \
      int64_t rows, int64_t kvDim, CT *out, int64_t outLd, void *stream) {     \
    return pagedGather<T>(reinterpret_cast<const T *>(pool), table, blockSize, \
                          first, rows, kvDim, reinterpret_cast<T *>(out),      \
                          outLd, stream);                                      \
  }                                                                            \
  extern "C" greta_gpu_status greta_gpu_paged_attention_##SUFFIX(              \
      const CT *q, int64_t qLd, const CT *kPool, const CT *vPool,              \
      const int32_t *table, int64_t blockSize, int64_t nQ, int64_t qStart,     \
      int64_t numHeads, int64_t numKvHeads, int64_t headDim, float scale,      \
      CT *out, int64_t outLd, void *scratch, int64_t scratchBytes,             \
      void *stream) {                                                          \
    return pagedAttention<T>(                                                  \
        reinterpret_cast<const T *>(q), qLd,                                   \
        reinterpret_cast<const T *>(kPool),                                    \
        reinterpret_cast<const T *>(vPool), table, blockSize, nQ, qStart,      \
        numHeads, numKvHeads, headDim, scale, reinterpret_cast<T *>(out),      \
        outLd, scratch, scratchBytes, stream);                                 \
  }
GRETA_DEFINE_PAGED(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_PAGED(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_PAGED(float, float, f32)

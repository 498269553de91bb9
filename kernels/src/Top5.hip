//===- Top5.hip - Top-5 ids of selected logits rows ----------------------===//
//
// What a logits record carries, ranked on the device (greta_gpu_top5_rows)
// instead of copying whole logits rows to the host.
//
//===----------------------------------------------------------------------===//
#include "Common.h"
#include "RowValues.h"

#include <algorithm>
#include <mutex>
#include <string>

namespace greta::gpu {
namespace {

// Top-5 ids of a row (highest first, NaN after every number, ties by the
// lower index, as the CPU runtime ranks in Session.cpp topFive; -1 pads
// rows shorter than 5): what a logits record carries, ranked here instead
// of copying whole logits rows (vocab x rows) to the host.
//
// Each element becomes one 64-bit key whose unsigned order is that
// ranking: the value's bits made monotonic in the high word (NaN just above
// the empty key 0, -0 as +0), the complement of its index in the low word
// (the lower index wins a tie). A thread keeps its best 5 keys with a
// branch-free insertion; a branchy one made every warp take the insertion
// path (some lane almost always inserts), 2x the instructions.
__device__ __forceinline__ uint64_t rankKey(float x, int32_t index) {
  uint32_t u = __float_as_uint(x == 0.f ? 0.f : x);
  uint32_t k = x != x ? 1u : (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return (static_cast<uint64_t>(k) << 32) | static_cast<uint32_t>(~index);
}

__device__ __forceinline__ uint64_t shflXor64(uint64_t v, int mask) {
  uint32_t lo = GRETA_SHFL_XOR(static_cast<uint32_t>(v), mask);
  uint32_t hi = GRETA_SHFL_XOR(static_cast<uint32_t>(v >> 32), mask);
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

struct Top5Keys {
  uint64_t k[5]; // best first; 0 = empty
  __device__ void init() {
#pragma unroll
    for (int i = 0; i < 5; ++i)
      k[i] = 0;
  }
  // Constant indices only, so k stays in registers.
  __device__ __forceinline__ void insert(uint64_t p) {
#pragma unroll
    for (int i = 0; i < 5; ++i) {
      uint64_t hi = k[i] > p ? k[i] : p;
      p = k[i] > p ? p : k[i];
      k[i] = hi;
    }
  }
  // Merges the list of the lane `mask` apart (xor butterfly: the two lists
  // come from disjoint lanes, so no key is counted twice).
  __device__ void mergeLane(int mask) {
    uint64_t o[5];
#pragma unroll
    for (int i = 0; i < 5; ++i)
      o[i] = shflXor64(k[i], mask);
#pragma unroll
    for (int i = 0; i < 5; ++i)
      insert(o[i]);
  }
  __device__ int32_t id(int i) const {
    return k[i] ? static_cast<int32_t>(~static_cast<uint32_t>(k[i])) : -1;
  }
};

constexpr int kTop5Threads = 256;
// A few selected rows (a 3-position trace) would leave the ranking to a
// few SMs, each issue-bound for ~30 us on a 32000-wide row (H100, ncu):
// then each row is split over up to 64 blocks of >= 1024 columns, about
// 256 blocks in all, whose best 5 a second launch merges.
constexpr int64_t kTop5SplitBlocks = 256;
constexpr int64_t kTop5MinSplitCols = 1024;
constexpr int64_t kTop5MaxSplits = 64;

int64_t top5Splits(int64_t nSel, int64_t cols) {
  if (nSel <= 0)
    return 1;
  int64_t s = std::min({kTop5SplitBlocks / nSel, cols / kTop5MinSplitCols,
                        kTop5MaxSplits});
  return s > 1 ? s : 1;
}

// Adds the row's elements [begin, end) to t: 16-byte loads, four in flight
// per thread, where the row and `begin` are 16-byte aligned.
__device__ void top5Scan(const void *base, int32_t dtype, int64_t begin,
                         int64_t end, Top5Keys &t) {
  const int per = 16 / esizeOf(dtype); // elements per 16-byte chunk
  int64_t scalarFrom = begin;
  if ((reinterpret_cast<uintptr_t>(base) & 15) == 0 && begin % per == 0) {
    const uint4 *chunks = static_cast<const uint4 *>(base);
    const int64_t qEnd = end / per;
    constexpr int kInFlight = 4;
    for (int64_t q0 = begin / per + threadIdx.x; q0 < qEnd;
         q0 += kInFlight * static_cast<int64_t>(blockDim.x)) {
      uint4 v[kInFlight];
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        int64_t q = q0 + u * static_cast<int64_t>(blockDim.x);
        v[u] = q < qEnd ? chunks[q] : make_uint4(0, 0, 0, 0);
      }
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        int64_t q = q0 + u * static_cast<int64_t>(blockDim.x);
        if (q >= qEnd)
          break;
        const uint32_t w[4] = {v[u].x, v[u].y, v[u].z, v[u].w};
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          if (e >= per)
            break;
          float x = dtype == GRETA_GPU_F32
                        ? __uint_as_float(w[e & 3])
                        : halfWordAsFloat(w[e / 2], e & 1, dtype);
          t.insert(rankKey(x, static_cast<int32_t>(q * per + e)));
        }
      }
    }
    scalarFrom = qEnd * per > begin ? qEnd * per : begin;
  }
  for (int64_t c = scalarFrom + threadIdx.x; c < end; c += blockDim.x)
    t.insert(rankKey(loadAsFloat(base, dtype, c), static_cast<int32_t>(c)));
}

// The block's best 5 keys, in thread 0: each warp's by a butterfly of
// merges, then warp 0 merges the warps' lists the same way.
__device__ Top5Keys top5Block(Top5Keys t) {
  constexpr int kWarps = kTop5Threads / GRETA_WARP_CONST;
  __shared__ uint64_t sk[kWarps * 5];
  for (int m = GRETA_WARP / 2; m > 0; m /= 2)
    t.mergeLane(m);
  const int warp = threadIdx.x / GRETA_WARP, lane = threadIdx.x % GRETA_WARP;
  if (lane == 0)
    for (int i = 0; i < 5; ++i)
      sk[warp * 5 + i] = t.k[i];
  __syncthreads();
  Top5Keys b;
  b.init();
  if (warp == 0) {
    if (lane < kWarps)
      for (int i = 0; i < 5; ++i)
        b.k[i] = sk[lane * 5 + i];
    for (int m = kWarps / 2; m > 0; m /= 2)
      b.mergeLane(m);
  }
  return b;
}

// Block (j, s) ranks slice s of the j-th selected row (gridDim.y slices,
// cut on 16-byte chunks): its ids into out, or with slices its 5 keys into
// partial for top5MergeKernel.
template <bool kPartial>
__global__ void __launch_bounds__(kTop5Threads)
    top5Kernel(const void *data, int32_t dtype, int64_t cols, int64_t ld,
               const int64_t *rowIndex, int32_t *out, uint64_t *partial) {
  const int64_t j = blockIdx.x, splits = gridDim.y, s = blockIdx.y;
  const int64_t row = rowIndex ? rowIndex[j] : j;
  const int esize = esizeOf(dtype);
  const void *base = static_cast<const uint8_t *>(data) + row * ld * esize;
  const int64_t chunks = cols / (16 / esize);
  const int64_t begin = chunks * s / splits * (16 / esize);
  const int64_t end =
      s + 1 == splits ? cols : chunks * (s + 1) / splits * (16 / esize);
  Top5Keys t;
  t.init();
  top5Scan(base, dtype, begin, end, t);
  Top5Keys b = top5Block(t);
  if (threadIdx.x != 0)
    return;
  for (int i = 0; i < 5; ++i) {
    if (kPartial)
      partial[(j * splits + s) * 5 + i] = b.k[i];
    else
      out[j * 5 + i] = b.id(i);
  }
}

// One warp per selected row merges its slices' best 5 keys.
__global__ void top5MergeKernel(const uint64_t *partial, int splits,
                                int32_t *out) {
  const int64_t j = blockIdx.x;
  const uint64_t *p = partial + j * splits * 5;
  Top5Keys t;
  t.init();
  for (int i = threadIdx.x; i < splits * 5; i += GRETA_WARP)
    t.insert(p[i]);
  for (int m = GRETA_WARP / 2; m > 0; m /= 2)
    t.mergeLane(m);
  if (threadIdx.x == 0)
    for (int i = 0; i < 5; ++i)
      out[j * 5 + i] = t.id(i);
}

void preferTop5Carveouts() {
  static std::once_flag once;
  std::call_once(once, [] {
    preferLargestCarveout(top5Kernel<false>);
    preferLargestCarveout(top5Kernel<true>);
    preferLargestCarveout(top5MergeKernel);
  });
}

} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

extern "C" greta_gpu_status
greta_gpu_top5_rows(const void *data, greta_gpu_dtype dtype, int64_t rows,
                    int64_t cols, int64_t ld, const int64_t *rowIndex,
                    int64_t nSel, int32_t *dTop5, void *dScratch,
                    void *stream) {
  if (dtype != GRETA_GPU_F32 && dtype != GRETA_GPU_F16 &&
      dtype != GRETA_GPU_BF16)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "top5: unknown dtype " + std::to_string(dtype));
  if (auto s = checkMatrix("top5 data", data, rows, cols, ld))
    return s;
  if (nSel < 0 || (!rowIndex && nSel != rows) || !dTop5 ||
      cols > INT32_MAX || nSel > INT32_MAX)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "top5: " + std::to_string(nSel) + " selected of " +
                    std::to_string(rows) + " rows of " +
                    std::to_string(cols));
  if (nSel == 0)
    return GRETA_GPU_OK;
  preferTop5Carveouts();
  const int64_t splits = dScratch ? top5Splits(nSel, cols) : 1;
  hipStream_t s = asStream(stream);
  uint64_t *partial = static_cast<uint64_t *>(dScratch);
  dim3 grid(static_cast<unsigned>(nSel), static_cast<unsigned>(splits));
  if (splits == 1) {
    hipLaunchKernelGGL(top5Kernel<false>, grid, dim3(kTop5Threads), 0, s,
                       data, static_cast<int32_t>(dtype), cols, ld, rowIndex,
                       dTop5, partial);
  } else {
    hipLaunchKernelGGL(top5Kernel<true>, grid, dim3(kTop5Threads), 0, s, data,
                       static_cast<int32_t>(dtype), cols, ld, rowIndex, dTop5,
                       partial);
    GRETA_HIP_LAUNCH_CHECK();
    hipLaunchKernelGGL(top5MergeKernel, dim3(static_cast<unsigned>(nSel)),
                       dim3(GRETA_WARP_CONST), 0, s, partial,
                       static_cast<int>(splits), dTop5);
  }
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

extern "C" int64_t greta_gpu_top5_scratch_bytes(int64_t nSel, int64_t cols) {
  const int64_t splits = top5Splits(nSel, cols);
  return splits > 1 ? nSel * splits * 5 * static_cast<int64_t>(sizeof(uint64_t))
                    : 0;
}

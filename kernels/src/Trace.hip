//===- Trace.hip - Per-row SHA-256, nz/nan/inf counts, fingerprints -------===//
//
// SHA-256 (FIPS 180-4) written for the device: neither CUDA nor ROCm ships a
// device-callable SHA-256 (cuCollections/hipCollections hash for hash tables,
// not cryptographic digests), see docs/KERNELS.md. A row's digest is a serial
// chain of compressions (Merkle-Damgard), so the parallelism is across rows:
// one thread per row. The statistics are a reduction: one warp per row.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

#include <algorithm>
#include <string>

namespace greta::gpu {
namespace {

__constant__ uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

__device__ __forceinline__ uint32_t rotr(uint32_t x, int n) {
  return (x >> n) | (x << (32 - n));
}
__device__ __forceinline__ uint32_t bswap32(uint32_t x) {
#if defined(__HIP_PLATFORM_AMD__) || defined(GRETA_GPU_HIP)
  return __builtin_bswap32(x);
#else
  return __byte_perm(x, 0, 0x0123);
#endif
}

// One compression of the 16 big-endian message words w into state st.
// Fully unrolled: w[] is indexed by constants only and stays in registers.
__device__ __forceinline__ void sha256Compress(uint32_t st[8], uint32_t w[16]) {
  uint32_t a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5],
           g = st[6], h = st[7];
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    if (i >= 16) {
      uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
      uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
      uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
      w[i & 15] += s0 + w[(i - 7) & 15] + s1;
    }
    uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = h + S1 + ch + kSha256K[i] + w[i & 15];
    uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
    uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
    uint32_t t2 = S0 + mj;
    h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
  }
  st[0] += a; st[1] += b; st[2] += c; st[3] += d;
  st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

// nz count of 4 little-endian bytes holding 2 (esize 2) or 1 (esize 4)
// elements: non-zero unless every bit but the sign is 0 (-0 == 0; NaN != 0).
__device__ __forceinline__ int nzOfWord(uint32_t x, int esize) {
  if (esize == 2)
    return ((x & 0x7fffu) != 0) + ((x & 0x7fff0000u) != 0);
  return (x & 0x7fffffffu) != 0;
}

__device__ __forceinline__ int nzOfElement(const uint8_t *p, int esize) {
  if (esize == 2)
    return ((p[0] | (p[1] << 8)) & 0x7fff) != 0;
  return ((p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24)) &
          0x7fffffffu) != 0;
}

__device__ __forceinline__ int esizeOf(int32_t dtype) {
  return dtype == GRETA_GPU_F32 ? 4 : 2;
}

// The jobs of one launch: by value (up to GRETA_GPU_MAX_TRACE_JOBS, the
// host API) or a table in device memory (any number, the GPU session's
// batches). Both index as jobs[i].
struct TraceJobs {
  greta_gpu_trace_job job[GRETA_GPU_MAX_TRACE_JOBS];
  __device__ const greta_gpu_trace_job &operator[](int i) const {
    return job[i];
  }
};

// The (job, selected row) pairs of a launch, numbered job-major with
// `perJob` = the largest n_sel slots per job, are spread over a 1-D grid: a
// batch of many tensors with a few selected rows each (3 positions x 13
// stages) takes a few blocks instead of one nearly idle block per tensor.
// That matters because the trace runs beside the compute stream: every SM
// holding a trace block for a SHA-256 chain (~0.1 ms) cannot start a
// register-hungry GEMM block meanwhile.
__device__ __forceinline__ bool slotOf(int64_t slot, int numJobs,
                                       int64_t perJob, int &job, int64_t &j) {
  if (slot >= numJobs * perJob)
    return false;
  job = static_cast<int>(slot / perJob);
  j = slot % perJob;
  return true;
}

template <typename Jobs>
__global__ void sha256RowsKernel(Jobs jobs, int numJobs, int64_t perJob,
                                 greta_gpu_row_record *out) {
  int job;
  int64_t j;
  if (!slotOf(blockIdx.x * (int64_t)blockDim.x + threadIdx.x, numJobs, perJob,
              job, j))
    return;
  const greta_gpu_trace_job &J = jobs[job];
  if (j >= J.n_sel)
    return;
  int64_t row = J.d_row_index ? J.d_row_index[j] : j;
  greta_gpu_row_record &rec = out[J.record_offset + j];
  const int esize = esizeOf(J.dtype);
  if (row < 0 || row >= J.rows) { // bad index: an all-ones digest, counts -1
    for (int i = 0; i < 32; ++i)
      rec.sha256[i] = 0xff;
    rec.nz_count = rec.nan_count = rec.inf_count = -1;
    return;
  }
  const uint8_t *p = static_cast<const uint8_t *>(J.d_data) +
                     (row * J.ld) * static_cast<int64_t>(esize);
  const uint64_t len = static_cast<uint64_t>(J.cols) * esize;
  const uint64_t nFull = len / 64;
  uint32_t st[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  int64_t nz = 0;
  uint32_t w[16];
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) {
    const uint4 *q = reinterpret_cast<const uint4 *>(p);
    // Software pipeline: the next block's four 16-byte loads are issued
    // before this block's compression, so memory latency hides behind the
    // ~64 dependent rounds instead of adding to them.
    uint4 next[4];
    if (nFull > 0) {
#pragma unroll
      for (int i = 0; i < 4; ++i)
        next[i] = q[i];
    }
    for (uint64_t blk = 0; blk < nFull; ++blk) {
      uint4 v[4];
#pragma unroll
      for (int i = 0; i < 4; ++i)
        v[i] = next[i];
      if (blk + 1 < nFull) {
#pragma unroll
        for (int i = 0; i < 4; ++i)
          next[i] = q[(blk + 1) * 4 + i];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        uint32_t x[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          nz += nzOfWord(x[k], esize);
          w[i * 4 + k] = bswap32(x[k]);
        }
      }
      sha256Compress(st, w);
    }
  } else { // unaligned row: byte loads (slow path, same digest)
    for (uint64_t blk = 0; blk < nFull; ++blk) {
      const uint8_t *b = p + blk * 64;
#pragma unroll
      for (int i = 0; i < 16; ++i)
        w[i] = (uint32_t(b[4 * i]) << 24) | (uint32_t(b[4 * i + 1]) << 16) |
               (uint32_t(b[4 * i + 2]) << 8) | uint32_t(b[4 * i + 3]);
      for (int e = 0; e < 64; e += esize)
        nz += nzOfElement(b + e, esize);
      sha256Compress(st, w);
    }
  }
  // Tail: r < 64 bytes, then 0x80, zeros, and the length in bits.
  const uint8_t *t = p + nFull * 64;
  const uint32_t r = static_cast<uint32_t>(len - nFull * 64);
  for (uint32_t e = 0; e < r; e += esize)
    nz += nzOfElement(t + e, esize);
#pragma unroll
  for (int i = 0; i < 16; ++i) {
    uint32_t word = 0;
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      uint32_t bi = 4 * i + k;
      uint32_t byte = bi < r ? t[bi] : (bi == r ? 0x80u : 0u);
      word = (word << 8) | byte;
    }
    w[i] = word;
  }
  const uint64_t bits = len * 8;
  if (r < 56) {
    w[14] = static_cast<uint32_t>(bits >> 32);
    w[15] = static_cast<uint32_t>(bits);
    sha256Compress(st, w);
  } else {
    sha256Compress(st, w);
#pragma unroll
    for (int i = 0; i < 14; ++i)
      w[i] = 0;
    w[14] = static_cast<uint32_t>(bits >> 32);
    w[15] = static_cast<uint32_t>(bits);
    sha256Compress(st, w);
  }
  uint32_t *digest = reinterpret_cast<uint32_t *>(rec.sha256);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    digest[i] = bswap32(st[i]); // big-endian bytes
  rec.nz_count = nz;
  if (!(J.flags & GRETA_GPU_TRACE_STATS)) {
    rec.nan_count = rec.inf_count = 0;
    rec.min = rec.max = rec.mean = rec.l2 = 0;
  }
}

__device__ __forceinline__ float loadAsFloat(const void *base, int32_t dtype,
                                             int64_t i) {
  if (dtype == GRETA_GPU_F32)
    return static_cast<const float *>(base)[i];
  if (dtype == GRETA_GPU_F16)
    return __half2float(static_cast<const greta_half *>(base)[i]);
  return greta_bf16_to_float(static_cast<const greta_bf16 *>(base)[i]);
}

// One warp per selected row; 8 warps per block.
template <typename Jobs>
__global__ void statsRowsKernel(Jobs jobs, int numJobs, int64_t perJob,
                                greta_gpu_row_record *out) {
  int warpsPerBlock = blockDim.x / GRETA_WARP;
  int job;
  int64_t j;
  if (!slotOf(blockIdx.x * (int64_t)warpsPerBlock + threadIdx.x / GRETA_WARP,
              numJobs, perJob, job, j))
    return;
  const greta_gpu_trace_job &J = jobs[job];
  int lane = threadIdx.x % GRETA_WARP;
  if (!(J.flags & GRETA_GPU_TRACE_STATS) || j >= J.n_sel)
    return;
  int64_t row = J.d_row_index ? J.d_row_index[j] : j;
  if (row < 0 || row >= J.rows)
    return; // the SHA kernel marks the record
  const int esize = esizeOf(J.dtype);
  const void *base = static_cast<const uint8_t *>(J.d_data) +
                     (row * J.ld) * static_cast<int64_t>(esize);
  long long nan = 0, inf = 0;
  float mn = INFINITY, mx = -INFINITY;
  double sum = 0, sq = 0;
  for (int64_t i = lane; i < J.cols; i += GRETA_WARP) {
    float v = loadAsFloat(base, J.dtype, i);
    if (isnan(v)) {
      ++nan;
    } else {
      inf += isinf(v) ? 1 : 0;
      mn = fminf(mn, v);
      mx = fmaxf(mx, v);
    }
    double dv = v;
    sum += dv;
    sq += dv * dv;
  }
  for (int m = GRETA_WARP / 2; m > 0; m /= 2) {
    nan += GRETA_SHFL_XOR(nan, m);
    inf += GRETA_SHFL_XOR(inf, m);
    mn = fminf(mn, GRETA_SHFL_XOR(mn, m));
    mx = fmaxf(mx, GRETA_SHFL_XOR(mx, m));
    sum += GRETA_SHFL_XOR(sum, m);
    sq += GRETA_SHFL_XOR(sq, m);
  }
  if (lane == 0) {
    greta_gpu_row_record &rec = out[J.record_offset + j];
    rec.nan_count = nan;
    rec.inf_count = inf;
    bool allNan = nan == J.cols;
    rec.min = allNan ? NAN : mn;
    rec.max = allNan ? NAN : mx;
    rec.mean = J.cols ? sum / static_cast<double>(J.cols) : 0.0;
    rec.l2 = sqrt(sq);
  }
}

// Top-5 ids of a row (highest first, NaN after every number, ties by the
// lower index, as the CPU runtime ranks; -1 pads rows shorter than 5): what
// a logits record carries. One block per
// selected row: each thread keeps the best 5 of its strided elements, then
// thread 0 merges the block's candidates. Replaces copying whole logits rows
// (vocab x rows) to the host just to rank them.
struct Top5 {
  float v[5];
  int32_t id[5];
  __device__ void init() {
    for (int k = 0; k < 5; ++k) {
      v[k] = -INFINITY;
      id[k] = -1;
    }
  }
  // The CPU runtime's order (Session.cpp topFive): numbers before NaN,
  // higher first, ties (and NaNs) by the lower id.
  __device__ static bool better(float a, int32_t ia, float b, int32_t ib) {
    if (ib < 0)
      return true;
    bool na = a != a, nb = b != b;
    if (na != nb)
      return nb;
    if (!na && a != b)
      return a > b;
    return ia < ib;
  }
  // Sorted insertion with constant indices only, so v and id stay in
  // registers (a loop with a variable index puts them in local memory).
  // Empty entries (id < 0) are never inserted.
  __device__ void insert(float x, int32_t i) {
    if (i < 0 || !better(x, i, v[4], id[4]))
      return;
    bool placed = false;
#pragma unroll
    for (int k = 4; k >= 0; --k) {
      if (placed)
        continue;
      if (k > 0 && better(x, i, v[k - 1], id[k - 1])) {
        v[k] = v[k - 1];
        id[k] = id[k - 1];
      } else {
        v[k] = x;
        id[k] = i;
        placed = true;
      }
    }
  }
  // Merges the lists of the lanes `mask` apart (xor butterfly: the two
  // lists come from disjoint lanes, so no entry is counted twice).
  __device__ void mergeLane(int mask) {
    float pv[5];
    int32_t pid[5];
#pragma unroll
    for (int k = 0; k < 5; ++k) {
      pv[k] = GRETA_SHFL_XOR(v[k], mask);
      pid[k] = GRETA_SHFL_XOR(id[k], mask);
    }
#pragma unroll
    for (int k = 0; k < 5; ++k)
      insert(pv[k], pid[k]);
  }
};

constexpr int kTop5Threads = 256;

__global__ void __launch_bounds__(kTop5Threads)
    top5RowsKernel(const void *data, int32_t dtype, int64_t cols, int64_t ld,
                   const int64_t *rowIndex, int32_t *out) {
  __shared__ float sv[kTop5Threads / GRETA_WARP_CONST * 5];
  __shared__ int32_t si[kTop5Threads / GRETA_WARP_CONST * 5];
  int64_t j = blockIdx.x;
  int64_t row = rowIndex ? rowIndex[j] : j;
  int esize = esizeOf(dtype);
  const void *base = static_cast<const uint8_t *>(data) + row * ld * esize;
  Top5 t;
  t.init();
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
    t.insert(loadAsFloat(base, dtype, c), static_cast<int32_t>(c));
  // Each warp's best 5 by a butterfly of merges, then warp 0 merges the
  // warps' lists the same way (a merge on one thread took ~0.1 ms).
  for (int m = GRETA_WARP / 2; m > 0; m /= 2)
    t.mergeLane(m);
  const int warp = threadIdx.x / GRETA_WARP, lane = threadIdx.x % GRETA_WARP;
  constexpr int kWarps = kTop5Threads / GRETA_WARP_CONST;
  if (lane == 0)
    for (int k = 0; k < 5; ++k) {
      sv[warp * 5 + k] = t.v[k];
      si[warp * 5 + k] = t.id[k];
    }
  __syncthreads();
  if (warp == 0) {
    Top5 m;
    m.init();
    if (lane < kWarps)
      for (int k = 0; k < 5; ++k)
        m.insert(sv[lane * 5 + k], si[lane * 5 + k]);
    for (int mask = GRETA_WARP / 2; mask > 0; mask /= 2)
      m.mergeLane(mask);
    if (lane == 0)
      for (int k = 0; k < 5; ++k)
        out[j * 5 + k] = m.id[k];
  }
}

struct GatherJobs {
  greta_gpu_gather_job job[GRETA_GPU_MAX_GATHER_JOBS];
};

// One block per (job, selected row) slot: a plain copy, 16 bytes per thread
// where source and destination allow it. Short blocks, so they barely delay
// the compute stream's kernels.
__global__ void gatherRowsKernel(GatherJobs jobs, int numJobs, int64_t perJob,
                                 uint8_t *dst) {
  int job;
  int64_t j;
  if (!slotOf(blockIdx.x, numJobs, perJob, job, j))
    return;
  const greta_gpu_gather_job &J = jobs.job[job];
  if (j >= J.n_sel)
    return;
  int64_t row = J.d_row_index ? J.d_row_index[j] : j;
  const uint8_t *src =
      static_cast<const uint8_t *>(J.d_data) + row * J.ld_bytes;
  uint8_t *out = dst + J.dst_offset + j * J.row_bytes;
  if (((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(out) |
        static_cast<uintptr_t>(J.row_bytes)) & 15) == 0) {
    for (int64_t i = threadIdx.x; i < J.row_bytes / 16; i += blockDim.x)
      reinterpret_cast<uint4 *>(out)[i] =
          reinterpret_cast<const uint4 *>(src)[i];
  } else {
    for (int64_t i = threadIdx.x; i < J.row_bytes; i += blockDim.x)
      out[i] = src[i];
  }
}

template <typename Jobs>
greta_gpu_status launchTrace(Jobs jobs, int numJobs, int64_t maxSel,
                             bool anyStats, greta_gpu_row_record *dRecords,
                             greta_gpu_row_record *hRecords, int64_t total,
                             hipStream_t s) {
  // Few selected rows (a handful of positions): 32-thread blocks, so the
  // chains spread over SMs instead of stacking in one (latency-bound either
  // way); many rows: 64-thread blocks.
  const int64_t slots = numJobs * maxSel;
  const int shaThreads = slots < 4096 ? 32 : 64;
  hipLaunchKernelGGL(sha256RowsKernel<Jobs>,
                     dim3(static_cast<unsigned>((slots + shaThreads - 1) /
                                                shaThreads)),
                     dim3(shaThreads), 0, s, jobs, numJobs, maxSel, dRecords);
  GRETA_HIP_LAUNCH_CHECK();
  if (anyStats) {
    const int warps = 8;
    hipLaunchKernelGGL(statsRowsKernel<Jobs>,
                       dim3(static_cast<unsigned>((slots + warps - 1) / warps)),
                       dim3(warps * GRETA_WARP_CONST), 0, s, jobs, numJobs,
                       maxSel, dRecords);
    GRETA_HIP_LAUNCH_CHECK();
  }
  if (hRecords && total > 0)
    GRETA_HIP_TRY(hipMemcpyAsync(hRecords, dRecords,
                                 total * sizeof(greta_gpu_row_record),
                                 hipMemcpyDeviceToHost, s));
  return GRETA_GPU_OK;
}

greta_gpu_status traceBatch(const greta_gpu_trace_job *jobs, int numJobs,
                            greta_gpu_row_record *dRecords,
                            greta_gpu_row_record *hRecords, void *stream) {
  if (numJobs < 0 || numJobs > GRETA_GPU_MAX_TRACE_JOBS)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "trace: " + std::to_string(numJobs) + " jobs (1.." +
                    std::to_string(GRETA_GPU_MAX_TRACE_JOBS) + " per launch)");
  if (numJobs == 0)
    return GRETA_GPU_OK;
  if (!jobs || !dRecords)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT, "trace: null jobs or records");
  TraceJobs tj{};
  int64_t maxSel = 0, total = 0;
  bool anyStats = false;
  for (int i = 0; i < numJobs; ++i) {
    const greta_gpu_trace_job &J = jobs[i];
    if (J.dtype != GRETA_GPU_F32 && J.dtype != GRETA_GPU_F16 &&
        J.dtype != GRETA_GPU_BF16)
      return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                  "trace: unknown dtype " + std::to_string(J.dtype));
    if (auto s = checkMatrix("trace data", J.d_data, J.rows, J.cols, J.ld))
      return s;
    if (J.n_sel < 0 || J.record_offset < 0 ||
        (!J.d_row_index && J.n_sel != J.rows))
      return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                  "trace: n_sel must equal rows when every row is traced "
                  "(n_sel " + std::to_string(J.n_sel) + ", rows " +
                      std::to_string(J.rows) + ")");
    tj.job[i] = J;
    maxSel = J.n_sel > maxSel ? J.n_sel : maxSel;
    total = J.record_offset + J.n_sel > total ? J.record_offset + J.n_sel
                                              : total;
    anyStats |= (J.flags & GRETA_GPU_TRACE_STATS) != 0;
  }
  if (maxSel == 0)
    return GRETA_GPU_OK;
  return launchTrace(tj, numJobs, maxSel, anyStats, dRecords, hRecords, total,
                     asStream(stream));
}

} // namespace
} // namespace greta::gpu

using namespace greta::gpu;

static_assert(sizeof(greta_gpu_row_record) == 88, "record layout");

extern "C" greta_gpu_status
greta_gpu_trace_batch(const greta_gpu_trace_job *jobs, int numJobs,
                      greta_gpu_row_record *dRecords,
                      greta_gpu_row_record *hRecords, void *stream) {
  return traceBatch(jobs, numJobs, dRecords, hRecords, stream);
}

extern "C" greta_gpu_status
greta_gpu_trace_rows(const void *data, greta_gpu_dtype dtype, int64_t rows,
                     int64_t cols, int64_t ld, const int64_t *rowIndex,
                     int64_t nSel, uint32_t flags,
                     greta_gpu_row_record *dRecords,
                     greta_gpu_row_record *hRecords, void *stream) {
  greta_gpu_trace_job job{data, static_cast<int32_t>(dtype), flags, rows,
                          cols, ld, rowIndex, nSel, 0};
  return traceBatch(&job, 1, dRecords, hRecords, stream);
}

extern "C" greta_gpu_status greta_gpu_gather_rows(
    const greta_gpu_gather_job *jobs, int numJobs, void *dDst, void *stream) {
  if (numJobs < 0 || numJobs > GRETA_GPU_MAX_GATHER_JOBS ||
      (numJobs > 0 && (!jobs || !dDst)))
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "gather: " + std::to_string(numJobs) + " jobs (0.." +
                    std::to_string(GRETA_GPU_MAX_GATHER_JOBS) +
                    " per launch), destination " + (dDst ? "set" : "null"));
  GatherJobs gj{};
  int64_t maxSel = 0;
  for (int i = 0; i < numJobs; ++i) {
    const greta_gpu_gather_job &J = jobs[i];
    if (J.n_sel < 0 || J.row_bytes < 0 || J.dst_offset < 0 ||
        (J.n_sel > 0 && !J.d_data) ||
        (!J.d_row_index && J.n_sel > 1 && J.ld_bytes < J.row_bytes))
      return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                  "gather job " + std::to_string(i) + ": " +
                      std::to_string(J.n_sel) + " rows of " +
                      std::to_string(J.row_bytes) + " bytes, stride " +
                      std::to_string(J.ld_bytes) + ", offset " +
                      std::to_string(J.dst_offset));
    gj.job[i] = J;
    maxSel = std::max(maxSel, J.n_sel);
  }
  if (numJobs == 0 || maxSel == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(gatherRowsKernel,
                     dim3(static_cast<unsigned>(numJobs * maxSel)), dim3(128),
                     0, asStream(stream), gj, numJobs, maxSel,
                     static_cast<uint8_t *>(dDst));
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

extern "C" greta_gpu_status
greta_gpu_top5_rows(const void *data, greta_gpu_dtype dtype, int64_t rows,
                    int64_t cols, int64_t ld, const int64_t *rowIndex,
                    int64_t nSel, int32_t *dTop5, void *stream) {
  if (dtype != GRETA_GPU_F32 && dtype != GRETA_GPU_F16 &&
      dtype != GRETA_GPU_BF16)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "top5: unknown dtype " + std::to_string(dtype));
  if (auto s = checkMatrix("top5 data", data, rows, cols, ld))
    return s;
  if (nSel < 0 || (!rowIndex && nSel != rows) || !dTop5 ||
      cols > INT32_MAX)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "top5: " + std::to_string(nSel) + " selected of " +
                    std::to_string(rows) + " rows of " +
                    std::to_string(cols));
  if (nSel == 0)
    return GRETA_GPU_OK;
  hipLaunchKernelGGL(top5RowsKernel, dim3(static_cast<unsigned>(nSel)),
                     dim3(kTop5Threads), 0, asStream(stream), data,
                     static_cast<int32_t>(dtype), cols, ld, rowIndex, dTop5);
  GRETA_HIP_LAUNCH_CHECK();
  return GRETA_GPU_OK;
}

extern "C" greta_gpu_status greta_gpu_trace_batch_device(
    const greta_gpu_trace_job *dJobs, int numJobs, int64_t maxSel,
    uint32_t flags, greta_gpu_row_record *dRecords,
    greta_gpu_row_record *hRecords, int64_t totalRecords, void *stream) {
  if (numJobs < 0 || numJobs > 65535 || maxSel < 0 || totalRecords < 0 ||
      (numJobs > 0 && (!dJobs || !dRecords)))
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "trace batch: " + std::to_string(numJobs) +
                    " jobs (0..65535), max rows " + std::to_string(maxSel) +
                    ", records " + std::to_string(totalRecords));
  if (numJobs == 0 || maxSel == 0)
    return GRETA_GPU_OK;
  return launchTrace(dJobs, numJobs, maxSel,
                     (flags & GRETA_GPU_TRACE_STATS) != 0, dRecords, hRecords,
                     totalRecords, asStream(stream));
}

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
#include "Gather.h"
#include "RowValues.h"

#include <algorithm>
#include <mutex>
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

// One round on the working variables v = (a..h), with kw = K[i] + W[i].
// v is indexed by constants only, so after unrolling the renaming is free.
__device__ __forceinline__ void sha256Round(uint32_t v[8], uint32_t kw) {
  const uint32_t e = v[4], a = v[0];
  uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
  uint32_t ch = (e & v[5]) ^ (~e & v[6]);
  uint32_t t1 = v[7] + S1 + ch + kw;
  uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
  uint32_t mj = (a & v[1]) ^ (a & v[2]) ^ (v[1] & v[2]);
  v[7] = v[6]; v[6] = v[5]; v[5] = e; v[4] = v[3] + t1;
  v[3] = v[2]; v[2] = v[1]; v[1] = a; v[0] = t1 + S0 + mj;
}

// Message schedule step i >= 16 in the 16-word ring w.
__device__ __forceinline__ void sha256Schedule(uint32_t w[16], int i) {
  uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
  uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
  uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
  w[i & 15] += s0 + w[(i - 7) & 15] + s1;
}

__device__ __forceinline__ void sha256AddState(uint32_t st[8],
                                               const uint32_t v[8]) {
#pragma unroll
  for (int i = 0; i < 8; ++i)
    st[i] += v[i];
}

// One compression of the 16 big-endian message words w into state st.
// Fully unrolled: w[] is indexed by constants only and stays in registers.
__device__ __forceinline__ void sha256Compress(uint32_t st[8], uint32_t w[16]) {
  uint32_t v[8] = {st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7]};
#pragma unroll
  for (int i = 0; i < 64; ++i) {
    if (i >= 16)
      sha256Schedule(w, i);
    sha256Round(v, kSha256K[i] + w[i & 15]);
  }
  sha256AddState(st, v);
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

// One traced row of a launch: its bytes and the record it fills.
struct RowSlot {
  greta_gpu_row_record *rec = nullptr; // null: the slot holds no row
  const uint8_t *p = nullptr;          // null with rec: bad row index
  uint64_t len = 0;                    // bytes
  int esize = 2;
  uint32_t flags = 0;
};

template <typename Jobs>
__device__ __forceinline__ RowSlot rowSlot(const Jobs &jobs, int numJobs,
                                           int64_t perJob, int64_t slot,
                                           greta_gpu_row_record *out) {
  RowSlot s;
  int job;
  int64_t j;
  if (!slotOf(slot, numJobs, perJob, job, j))
    return s;
  const greta_gpu_trace_job &J = jobs[job];
  if (j >= J.n_sel)
    return s;
  s.rec = &out[J.record_offset + j];
  s.flags = J.flags;
  int64_t row = J.d_row_index ? J.d_row_index[j] : j;
  if (row < 0 || row >= J.rows)
    return s;
  s.esize = esizeOf(J.dtype);
  s.p = static_cast<const uint8_t *>(J.d_data) +
        (row * J.ld) * static_cast<int64_t>(s.esize);
  s.len = static_cast<uint64_t>(J.cols) * s.esize;
  return s;
}

// Block `blk` of an unaligned row by byte loads (slow path, same digest).
__device__ __forceinline__ void loadBlockBytes(const uint8_t *p, uint64_t blk,
                                               int esize, uint32_t w[16],
                                               int64_t &nz) {
  const uint8_t *b = p + blk * 64;
#pragma unroll
  for (int i = 0; i < 16; ++i)
    w[i] = (uint32_t(b[4 * i]) << 24) | (uint32_t(b[4 * i + 1]) << 16) |
           (uint32_t(b[4 * i + 2]) << 8) | uint32_t(b[4 * i + 3]);
  for (int e = 0; e < 64; e += esize)
    nz += nzOfElement(b + e, esize);
}

// Four 16-byte loads of an aligned block as big-endian words, counting nz.
// kPackedNz counts a word's elements at once: with m = the bits other than
// the sign of each element, (x & m) + m sets an element's top bit iff it is
// non-zero, with no carry into the next element. Fewer instructions, which
// the split kernel's producer needs to keep ahead of the rounds; one thread
// per row ran slower with it (H200), so it keeps nzOfWord.
template <bool kPackedNz>
__device__ __forceinline__ void unpackBlock(const uint4 v[4], int esize,
                                            uint32_t w[16], int64_t &nz) {
  const uint32_t m = esize == 2 ? 0x7fff7fffu : 0x7fffffffu;
  uint32_t packed = 0; // element counts in bits 0..15 and 16..31 (<= 16 each)
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    uint32_t x[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      if (kPackedNz)
        packed += (((x[k] & m) + m) & ~m) >> 15;
      else
        nz += nzOfWord(x[k], esize);
      w[i * 4 + k] = bswap32(x[k]);
    }
  }
  if (kPackedNz)
    nz += (packed & 0xffffu) + (packed >> 16);
}

// The last one or two compressions (the r < 64 tail bytes, 0x80, zeros and
// the length in bits), then the record: digest, nz and, without stats,
// zeros for the fields the stats kernel would fill.
__device__ void finishRow(uint32_t st[8], const RowSlot &s, uint64_t nFull,
                          int64_t nz) {
  uint32_t w[16];
  const uint8_t *t = s.p + nFull * 64;
  const uint32_t r = static_cast<uint32_t>(s.len - nFull * 64);
  for (uint32_t e = 0; e < r; e += s.esize)
    nz += nzOfElement(t + e, s.esize);
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
  const uint64_t bits = s.len * 8;
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
  greta_gpu_row_record &rec = *s.rec;
  uint32_t *digest = reinterpret_cast<uint32_t *>(rec.sha256);
#pragma unroll
  for (int i = 0; i < 8; ++i)
    digest[i] = bswap32(st[i]); // big-endian bytes
  rec.nz_count = nz;
  if (!(s.flags & GRETA_GPU_TRACE_STATS)) {
    rec.nan_count = rec.inf_count = 0;
    rec.min = rec.max = rec.mean = rec.l2 = 0;
  }
}

// A row index out of range: an all-ones digest, counts -1.
__device__ __forceinline__ void markBadRow(greta_gpu_row_record &rec) {
  for (int i = 0; i < 32; ++i)
    rec.sha256[i] = 0xff;
  rec.nz_count = rec.nan_count = rec.inf_count = -1;
}

__device__ __forceinline__ void sha256Init(uint32_t st[8]) {
  const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
#pragma unroll
  for (int i = 0; i < 8; ++i)
    st[i] = iv[i];
}

// One thread per row: the whole chain (schedule and rounds) in one thread.
// The most rows per SM, so the fastest when a launch fills the GPU.
template <typename Jobs>
__global__ void sha256RowsKernel(Jobs jobs, int numJobs, int64_t perJob,
                                 greta_gpu_row_record *out) {
  const RowSlot s = rowSlot(jobs, numJobs, perJob,
                            blockIdx.x * (int64_t)blockDim.x + threadIdx.x, out);
  if (!s.rec)
    return;
  if (!s.p) {
    markBadRow(*s.rec);
    return;
  }
  const uint64_t nFull = s.len / 64;
  uint32_t st[8];
  sha256Init(st);
  int64_t nz = 0;
  uint32_t w[16];
  if ((reinterpret_cast<uintptr_t>(s.p) & 15) == 0) {
    const uint4 *q = reinterpret_cast<const uint4 *>(s.p);
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
      unpackBlock<false>(v, s.esize, w, nz);
      sha256Compress(st, w);
    }
  } else {
    for (uint64_t blk = 0; blk < nFull; ++blk) {
      loadBlockBytes(s.p, blk, s.esize, w, nz);
      sha256Compress(st, w);
    }
  }
  finishRow(st, s, nFull, nz);
}

// Split schedule: the rows of a block (one per lane) are hashed by two
// warps. The first (producer) loads block t of each row, counts its nz and
// computes its message schedule W[0..63] into shared memory while the
// second (consumer) runs the 64 rounds of block t-1 (adding K[i] there is
// free: it joins h + W[i] in one three-input add). A warp issues at most
// one instruction per cycle and this code is integer-pipe bound, so taking
// the schedule (a third of the instructions) off the round chain makes a
// row's chain ~2x shorter (H200: 1.05 vs 2.1 ms for 827 rows of 64 KB, the
// logits after the last GEMM, docs/KERNELS.md). Twice the warps per row, so
// a launch that fills the GPU runs faster one thread per row.
constexpr int kSplitRows = GRETA_WARP_CONST; // rows (lanes) per block
constexpr int64_t kSplitMaxSlots = 32768;     // the default's crossover

template <typename Jobs>
__global__ void __launch_bounds__(2 * GRETA_WARP_CONST)
    sha256SplitKernel(Jobs jobs, int numJobs, int64_t perJob,
                      greta_gpu_row_record *out) {
  __shared__ uint32_t sched[2][64][kSplitRows]; // W: [stage][round][lane]
  __shared__ long long nzFull[kSplitRows];
  __shared__ unsigned long long steps;
  const int lane = threadIdx.x % kSplitRows;
  const bool producer = threadIdx.x < kSplitRows;
  const RowSlot s = rowSlot(jobs, numJobs, perJob,
                            blockIdx.x * (int64_t)kSplitRows + lane, out);
  const uint64_t nFull = s.p ? s.len / 64 : 0;
  if (threadIdx.x == 0)
    steps = 0;
  __syncthreads();
  if (producer && nFull > 0)
    atomicMax(&steps, static_cast<unsigned long long>(nFull));
  __syncthreads();
  const uint64_t nSteps = steps; // the block's longest row
  const bool aligned = (reinterpret_cast<uintptr_t>(s.p) & 15) == 0;
  const uint4 *q = reinterpret_cast<const uint4 *>(s.p);
  uint32_t st[8];
  sha256Init(st);
  int64_t nz = 0;
  uint4 next[4];
  if (producer && aligned && nFull > 0) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
      next[i] = q[i];
  }
  for (uint64_t t = 0; t <= nSteps; ++t) {
    if (producer) {
      if (t < nFull) {
        uint32_t w[16];
        if (aligned) { // loads one block ahead, as in sha256RowsKernel
          uint4 v[4];
#pragma unroll
          for (int i = 0; i < 4; ++i)
            v[i] = next[i];
          if (t + 1 < nFull) {
#pragma unroll
            for (int i = 0; i < 4; ++i)
              next[i] = q[(t + 1) * 4 + i];
          }
          unpackBlock<true>(v, s.esize, w, nz);
        } else {
          loadBlockBytes(s.p, t, s.esize, w, nz);
        }
#pragma unroll
        for (int i = 0; i < 64; ++i) {
          if (i >= 16)
            sha256Schedule(w, i);
          sched[t & 1][i][lane] = w[i & 15];
        }
      }
    } else if (t > 0 && t - 1 < nFull) {
      uint32_t v[8] = {st[0], st[1], st[2], st[3], st[4], st[5], st[6], st[7]};
#pragma unroll
      for (int i = 0; i < 64; ++i)
        sha256Round(v, kSha256K[i] + sched[(t - 1) & 1][i][lane]);
      sha256AddState(st, v);
    }
    __syncthreads(); // stage t written, stage t-1 read
  }
  if (producer)
    nzFull[lane] = nz;
  __syncthreads();
  if (producer || !s.rec)
    return;
  if (!s.p)
    markBadRow(*s.rec);
  else
    finishRow(st, s, nFull, nzFull[lane]);
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

// One block per piece of a selected row: a plain copy. Short blocks, so
// they barely delay the compute stream's kernels.
__global__ void gatherRowsKernel(GatherJobs jobs) {
  gatherRowSlot(jobs, blockIdx.x);
}

void preferLargestCarveouts() {
  static std::once_flag once;
  std::call_once(once, [] {
    preferLargestCarveout(sha256RowsKernel<TraceJobs>);
    preferLargestCarveout(sha256RowsKernel<const greta_gpu_trace_job *>);
    preferLargestCarveout(sha256SplitKernel<TraceJobs>);
    preferLargestCarveout(sha256SplitKernel<const greta_gpu_trace_job *>);
    preferLargestCarveout(statsRowsKernel<TraceJobs>);
    preferLargestCarveout(statsRowsKernel<const greta_gpu_trace_job *>);
    preferLargestCarveout(gatherRowsKernel);
  });
}

template <typename Jobs>
greta_gpu_status launchTrace(Jobs jobs, int numJobs, int64_t maxSel,
                             bool anyStats, greta_gpu_row_record *dRecords,
                             greta_gpu_row_record *hRecords, int64_t total,
                             hipStream_t s) {
  // The split kernel shortens each row's chain but uses two warps per 32
  // rows: alone on the GPU it is as fast as one thread per row at 16 K
  // rows of 4 KB and 11 % slower at 32 K (H200). Beside the forward, every
  // row of the 1.1B model at 1653 / 4096 tokens: 12.7 / 28.3 ms with a
  // split up to 32 K slots, 17.4 / 33.4 ms up to 16 K, 12.7 / 30.6 ms up to
  // 64 K, 13.2 / 29.5 ms never (docs/KERNELS.md). Few rows (a handful of
  // positions): 32-thread blocks, so the chains spread over SMs.
  preferLargestCarveouts();
  const int64_t slots = numJobs * maxSel;
  const int var = selectedVariant(Op::Trace);
  const bool split =
      var == variant::kTraceSplit ||
      (var == variant::kTraceDefault && slots <= kSplitMaxSlots);
  if (split) {
    hipLaunchKernelGGL(sha256SplitKernel<Jobs>,
                       dim3(static_cast<unsigned>((slots + kSplitRows - 1) /
                                                  kSplitRows)),
                       dim3(2 * kSplitRows), 0, s, jobs, numJobs, maxSel,
                       dRecords);
  } else {
    const int shaThreads = slots < 4096 ? 32 : 64;
    hipLaunchKernelGGL(sha256RowsKernel<Jobs>,
                       dim3(static_cast<unsigned>((slots + shaThreads - 1) /
                                                  shaThreads)),
                       dim3(shaThreads), 0, s, jobs, numJobs, maxSel,
                       dRecords);
  }
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

namespace greta::gpu {
greta_gpu_status packGatherJobs(const greta_gpu_gather_job *jobs, int numJobs,
                                void *dDst, GatherJobs &out) {
  if (numJobs < 0 || numJobs > GRETA_GPU_MAX_GATHER_JOBS ||
      (numJobs > 0 && (!jobs || !dDst)))
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "gather: " + std::to_string(numJobs) + " jobs (0.." +
                    std::to_string(GRETA_GPU_MAX_GATHER_JOBS) +
                    " per launch), destination " + (dDst ? "set" : "null"));
  out = GatherJobs{};
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
    out.job[i] = J;
    if (J.n_sel > 0 && J.row_bytes > 0) {
      out.perJob = std::max(out.perJob, J.n_sel);
      out.pieces = std::max(out.pieces, (J.row_bytes + kGatherPieceBytes - 1) /
                                            kGatherPieceBytes);
    }
  }
  out.numJobs = numJobs;
  out.dst = static_cast<uint8_t *>(dDst);
  return GRETA_GPU_OK;
}
} // namespace greta::gpu

extern "C" greta_gpu_status greta_gpu_gather_rows(
    const greta_gpu_gather_job *jobs, int numJobs, void *dDst, void *stream) {
  GatherJobs gj;
  if (auto st = packGatherJobs(jobs, numJobs, dDst, gj))
    return st;
  if (gj.slots() == 0)
    return GRETA_GPU_OK;
  preferLargestCarveouts();
  hipLaunchKernelGGL(gatherRowsKernel, dim3(static_cast<unsigned>(gj.slots())),
                     dim3(128), 0, asStream(stream), gj);
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

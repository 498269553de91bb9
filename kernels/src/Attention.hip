//===- Attention.hip - Causal GQA attention, flash-style ------------------===//
//
// Queries at positions [q_start, q_start + n_q) attend to cached keys
// [0, position]. One block per (64-query tile, query head); key/value tiles
// of 64 rows are staged in shared memory and folded in with the online
// softmax (running max m, running sum l, output rescaled by exp(m_old -
// m_new)), so any context length runs in constant shared memory, and
// lengths that are not multiples of 64 are masked, not padded.
//
// Four kernels, chosen by the attention variant (Runtime.hip's registry):
//  - attnGqaKernel<T, D> (`default`, and `lazy_rescale`): NVIDIA only
//    (mma.sync, sm_80+), f16/bf16; one block serves the query heads of a KV
//    head; FlashAttention-2's structure, packed for grouped-query attention.
//  - attnMmaKernel<T, D> (`mma_fa2`): the previous default, one query head
//    per block, kept for comparison.
//  - attnWmmaKernel<T, D> (`wmma`): NVIDIA only (CUDA WMMA), f16/bf16; QK^T
//    and PV on the tensor cores through shared memory.
//  - attnScalarKernel<T, D> (`scalar`; also f32, rows not 16-byte aligned,
//    and every variant on AMD): portable (HIP and CUDA, every dtype), fp32
//    FMA, one thread per query row.
// Planted bug (variant attention=partial_tile_bug): the number of key tiles
// is computed as kv_len / 64 instead of ceil, dropping the partial last tile.
//
//===----------------------------------------------------------------------===//
#include "Common.h"

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
constexpr int kAttnMmaFa2 = 4, kAttnLazyRescale = 5;
constexpr float kLog2e = 1.4426950408889634f;

struct AttnArgs {
  const void *q, *k, *v;
  void *out;
  int64_t qLd, kvLd, outLd;
  int64_t nQ, qStart;
  int numHeads, numKvHeads;
  float scaleLog2; // softmax scale * log2(e): exp2 instead of exp
  int partialTileBug;
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
  for (int64_t tile = 0; tile < tiles; ++tile) {
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
      s[j] = (k0 + j <= pos) ? acc * a.scaleLog2 : -INFINITY;
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
      for (int j = 0; j < kBK; ++j) // a later key is skipped, not * 0
        o = k0 + j <= pos ? fmaf(s[j], toF<T>(Vs[j * D + d]), o) : o;
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

#ifdef GRETA_HAVE_WMMA
// ------------------------------- later non-finite values (tensor-core kernels)
// A masked probability is 0, and 0 * inf is NaN: a tensor-core product over
// a key tile that crosses a row's position would carry a later key's
// non-finite value into that row (issue 18 item 9). So on each tile that
// crosses the block's first position (its "diagonal" tiles) the block zeroes
// the non-finite elements of V in shared memory before the product (the
// scalar kernel skips later keys instead), and notes that it did. After the
// loop, only then, each stored row element takes what the zeroed values of
// the keys it sees make of it (poison()): +-inf, or NaN for a NaN or
// infinities of both signs, as p * v with p > 0 would. Rows that see none are untouched, a
// run without non-finite values computes exactly as before, and the hot loop
// gains only the scan of V on diagonal tiles (no registers: the loop sits at
// the register limit, and any live value there spilled).
namespace nonfinite {
// Zeroes the non-finite elements of a [kBK x D] V tile in shared memory (row
// stride ld), sets *flag when there was one. A barrier: every thread calls it.
template <typename T, int D>
__device__ __forceinline__ void zeroTile(T *Vs, int ld, int tid, int nThreads,
                                         volatile int *flag) {
  constexpr uint32_t e = std::is_same_v<T, greta_half> ? 0x7C00u : 0x7F80u;
  for (int w = tid; w < kBK * D / 2; w += nThreads) {
    uint32_t *p = reinterpret_cast<uint32_t *>(Vs + (w / (D / 2)) * ld) +
                  w % (D / 2);
    const uint32_t x = *p;
    const bool lo = (x & e) == e, hi = ((x >> 16) & e) == e;
    if (lo || hi) {
      *p = x & ((lo ? 0u : 0xFFFFu) | (hi ? 0u : 0xFFFF0000u));
      *flag = 1;
    }
  }
  __syncthreads();
}
// The first key of the tiles that cross position `first` (those zeroTile
// scanned for a block whose first query is at `first`).
__device__ __forceinline__ int64_t diagonalStart(int64_t first) {
  return (first + 1) / kBK * kBK;
}
// An output element already stored, which sees keys [from, to] of column
// `vcol` of V: when any of them is non-finite, it becomes what p * v (p > 0)
// makes of it: +-inf, or NaN for a NaN or infinities of both signs. After
// the store, so no accumulator is live across this cold call.
template <typename T>
__device__ __noinline__ void poison(T *out, const T *vcol, int64_t ld,
                                    int64_t from, int64_t to) {
  bool nan = false, pos = false, neg = false;
  for (int64_t j = from; j <= to; ++j) {
    const float x = toF<T>(vcol[j * ld]);
    nan |= isnan(x);
    pos |= x == INFINITY;
    neg |= x == -INFINITY;
  }
  if (nan || (pos && neg))
    *out = fromF<T>(NAN);
  else if (pos || neg)
    *out = fromF<T>(toF<T>(*out) + (pos ? INFINITY : -INFINITY));
}
} // namespace nonfinite

// ------------------------------------------------------------- WMMA kernel
template <int D> struct WmmaLayout {
  static constexpr int kLdT = D + 8;                  // Q, K, V rows (T)
  static constexpr int kLdS = (D > kBK ? D : kBK) + 4; // S / PV scratch
  static constexpr int kLdP = kBK + 8;                 // P rows (T)
  template <typename T> static constexpr size_t bytes() {
    return 3 * size_t(kBQ) * kLdT * sizeof(T) + size_t(kBQ) * kLdS * 4 +
           size_t(kBQ) * kLdP * sizeof(T);
  }
};

template <typename T, int D>
__global__ void __launch_bounds__(128) attnWmmaKernel(AttnArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  using L = WmmaLayout<D>;
  extern __shared__ __align__(16) unsigned char smemRaw[];
  T *Qs = reinterpret_cast<T *>(smemRaw);
  T *Ks = Qs + kBQ * L::kLdT;
  T *Vs = Ks + kBK * L::kLdT;
  float *Ss = reinterpret_cast<float *>(Vs + kBK * L::kLdT);
  T *Ps = reinterpret_cast<T *>(Ss + kBQ * L::kLdS);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  __shared__ int sBad; // a diagonal tile had a non-finite value
  if (tid == 0)
    sBad = 0;
  const int64_t q0 = blockIdx.x * (int64_t)kBQ;
  const int h = blockIdx.y;
  const int kvh = h / (a.numHeads / a.numKvHeads);
  const T *q = static_cast<const T *>(a.q);
  const T *k = static_cast<const T *>(a.k);
  const T *v = static_cast<const T *>(a.v);
  constexpr int kVecPerRow = D / 8; // 16-byte vectors per row
  const int64_t kvLen = a.qStart + a.nQ;

  // Q tile (rows past n_q zero-filled).
  for (int e = tid; e < kBQ * kVecPerRow; e += 128) {
    int r = e / kVecPerRow, c = e % kVecPerRow;
    int64_t i = q0 + r;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (i < a.nQ)
      val = *reinterpret_cast<const uint4 *>(q + i * a.qLd + h * D + c * 8);
    *reinterpret_cast<uint4 *>(Qs + r * L::kLdT + c * 8) = val;
  }
  // This lane's row within the warp's 16 and its half of the columns.
  const int r = lane / 2, half = lane % 2;
  const int64_t i = q0 + warp * 16 + r;
  const bool valid = i < a.nQ;
  const int64_t pos = valid ? a.qStart + i : -1; // invalid rows: all masked
  const int64_t warpLastPos = a.qStart + q0 + warp * 16 + 15;
  float o[D / 2];
#pragma unroll
  for (int d = 0; d < D / 2; ++d)
    o[d] = 0.f;
  float m = -INFINITY, l = 0.f;
  float *Sw = Ss + warp * 16 * L::kLdS;
  T *Pw = Ps + warp * 16 * L::kLdP;
  const T *Qw = Qs + warp * 16 * L::kLdT;

  const int64_t tiles = keyTilesFor(a, q0);
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t k0 = tile * kBK;
    __syncthreads(); // previous tile's K/V reads done
    for (int e = tid; e < kBK * kVecPerRow; e += 128) {
      int j = e / kVecPerRow, c = e % kVecPerRow;
      int64_t key = k0 + j;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = kv;
      if (key < kvLen) {
        kv = *reinterpret_cast<const uint4 *>(k + key * a.kvLd + kvh * D + c * 8);
        vv = *reinterpret_cast<const uint4 *>(v + key * a.kvLd + kvh * D + c * 8);
      }
      *reinterpret_cast<uint4 *>(Ks + j * L::kLdT + c * 8) = kv;
      *reinterpret_cast<uint4 *>(Vs + j * L::kLdT + c * 8) = vv;
    }
    __syncthreads();
    if (k0 + kBK - 1 > a.qStart + q0)
      nonfinite::zeroTile<T, D>(Vs, L::kLdT, tid, 128, &sBad);
    if (k0 > warpLastPos)
      continue; // every key of this tile is in the future of this warp's rows

    // S = Q_w K^T (16 x 64), fp32 accumulators.
#pragma unroll
    for (int nt = 0; nt < kBK / 16; ++nt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
#pragma unroll
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
        wmma::load_matrix_sync(fa, Qw + kk * 16, L::kLdT);
        wmma::load_matrix_sync(fb, Ks + nt * 16 * L::kLdT + kk * 16, L::kLdT);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Sw + nt * 16, acc, L::kLdS, wmma::mem_row_major);
    }
    __syncwarp();

    // Online softmax on this lane's 32 columns of row r.
    float s[32];
    float tileMax = -INFINITY;
#pragma unroll
    for (int c = 0; c < 32; ++c) {
      int col = half * 32 + c;
      float x = Sw[r * L::kLdS + col] * a.scaleLog2;
      s[c] = (k0 + col <= pos) ? x : -INFINITY;
      tileMax = fmaxf(tileMax, s[c]);
    }
    tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
    float mNew = fmaxf(m, tileMax);
    float mUse = mNew == -INFINITY ? 0.f : mNew;
    float alpha = exp2f(m - mUse);
    float rowSum = 0.f;
#pragma unroll
    for (int c = 0; c < 32; ++c) {
      float p = exp2f(s[c] - mUse);
      rowSum += p;
      Pw[r * L::kLdP + half * 32 + c] = fromF<T>(p);
    }
    rowSum += __shfl_xor_sync(0xffffffffu, rowSum, 1);
    l = l * alpha + rowSum;
    m = mNew;
    __syncwarp(); // P written, S fully read: Sw may be reused for PV

    // PV (16 x D) into the scratch, then folded into the registers.
#pragma unroll
    for (int dt = 0; dt < D / 16; ++dt) {
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
      wmma::fill_fragment(acc, 0.f);
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fb;
        wmma::load_matrix_sync(fa, Pw + kk * 16, L::kLdP);
        wmma::load_matrix_sync(fb, Vs + kk * 16 * L::kLdT + dt * 16, L::kLdT);
        wmma::mma_sync(acc, fa, fb, acc);
      }
      wmma::store_matrix_sync(Sw + dt * 16, acc, L::kLdS, wmma::mem_row_major);
    }
    __syncwarp();
#pragma unroll
    for (int d = 0; d < D / 2; ++d)
      o[d] = o[d] * alpha + Sw[r * L::kLdS + half * (D / 2) + d];
    __syncwarp(); // scratch read before the next tile's S store
  }
  if (!valid)
    return;
  T *out = static_cast<T *>(a.out) + i * a.outLd + h * D + half * (D / 2);
  float inv = 1.f / l;
#pragma unroll
  for (int d = 0; d < D / 2; ++d)
    out[d] = fromF<T>(o[d] * inv);
  if (sBad) // the zeroed values this row sees
    for (int d = 0; d < D / 2; ++d)
      nonfinite::poison<T>(out + d, v + kvh * D + half * (D / 2) + d, a.kvLd,
                           nonfinite::diagonalStart(a.qStart + q0), pos);
#endif
}
#endif // GRETA_HAVE_WMMA

#ifdef GRETA_HAVE_WMMA
// ------------------------------------- mma.sync kernel (variant mma_fa2)
// FlashAttention-2 structure on raw mma.sync.m16n8k16 (sm_80+): each warp
// owns 16 query rows; Q fragments live in registers for the whole kernel;
// S = QK^T stays in registers (the accumulator layout is known, unlike
// WMMA's), the online softmax runs on it with quad shuffles, P is repacked in
// registers as the A operand of PV (the C layout of m16n8 equals the A layout
// of m16n8k16), and O is rescaled in registers. K/V tiles are double
// buffered in shared memory with cp.async (zero-fill past the last key);
// ldmatrix feeds the B operands (.trans for V).
namespace mma {
__device__ __forceinline__ uint32_t smemAddr(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cpAsync16(void *dst, const void *src,
                                          int srcBytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
                   smemAddr(dst)),
               "l"(src), "r"(srcBytes));
}
__device__ __forceinline__ void cpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::);
}
template <int N> __device__ __forceinline__ void cpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}
__device__ __forceinline__ void ldmatrixX4(uint32_t r[4], const void *p) {
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(smemAddr(p)));
}
__device__ __forceinline__ void ldmatrixX4T(uint32_t r[4], const void *p) {
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(smemAddr(p)));
}
template <typename T>
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4],
                                         uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, greta_half>)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                   "r"(b1));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                 "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0),
                   "r"(b1));
}
template <typename T> __device__ __forceinline__ uint32_t pack2(float x, float y) {
  T lo = fromF<T>(x), hi = fromF<T>(y);
  uint16_t l16, h16;
  memcpy(&l16, &lo, 2);
  memcpy(&h16, &hi, 2);
  return uint32_t(l16) | (uint32_t(h16) << 16);
}
} // namespace mma

template <int D> struct MmaLayout {
  static constexpr int kLd = D + 8; // T elements per smem row (16B pad)
  template <typename T> static constexpr size_t bytes() {
    return 2 /*stages*/ * 2 /*K,V*/ * size_t(kBK) * kLd * sizeof(T);
  }
};

template <typename T, int D>
__global__ void __launch_bounds__(128) attnMmaKernel(AttnArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using L = MmaLayout<D>;
  extern __shared__ __align__(16) unsigned char smemRaw[];
  T *Kst = reinterpret_cast<T *>(smemRaw); // [2][BK][kLd]
  T *Vst = Kst + 2 * kBK * L::kLd;         // [2][BK][kLd]
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  __shared__ int sBad; // a diagonal tile had a non-finite value
  if (tid == 0)
    sBad = 0;
  const int g = lane / 4, t = lane % 4;
  // Heaviest (latest) query tiles first: better tail balance under causality.
  const int64_t q0 = (gridDim.x - 1 - blockIdx.x) * (int64_t)kBQ;
  const int h = blockIdx.y;
  const int kvh = h / (a.numHeads / a.numKvHeads);
  const T *q = static_cast<const T *>(a.q);
  const T *k = static_cast<const T *>(a.k);
  const T *v = static_cast<const T *>(a.v);
  const int64_t kvLen = a.qStart + a.nQ;
  const int64_t r0 = q0 + warp * 16 + g, r1 = r0 + 8;
  const bool valid0 = r0 < a.nQ, valid1 = r1 < a.nQ;
  const int64_t pos0 = valid0 ? a.qStart + r0 : -1;
  const int64_t pos1 = valid1 ? a.qStart + r1 : -1;
  const int64_t warpLastPos = a.qStart + q0 + warp * 16 + 15;

  auto loadTile = [&](int stage, int64_t tile) {
    const int64_t k0 = tile * kBK;
    constexpr int kVec = D / 8;
    T *Ks = Kst + stage * kBK * L::kLd, *Vs = Vst + stage * kBK * L::kLd;
    for (int e = tid; e < kBK * kVec; e += 128) {
      int j = e / kVec, c = e % kVec;
      int64_t key = k0 + j;
      bool in = key < kvLen;
      int64_t src = (in ? key : 0) * a.kvLd + kvh * D + c * 8;
      mma::cpAsync16(Ks + j * L::kLd + c * 8, k + src, in ? 16 : 0);
      mma::cpAsync16(Vs + j * L::kLd + c * 8, v + src, in ? 16 : 0);
    }
    mma::cpAsyncCommit();
  };

  const int64_t tiles = keyTilesFor(a, q0);
  if (tiles > 0)
    loadTile(0, 0);

  // Q fragments (A operand, row-major 16 x D per warp), straight from global.
  uint32_t qf[D / 16][4];
  auto ldq = [&](int64_t row, int col) -> uint32_t {
    if (row >= a.nQ)
      return 0u;
    return *reinterpret_cast<const uint32_t *>(q + row * a.qLd + h * D + col);
  };
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    qf[kk][0] = ldq(r0, kk * 16 + 2 * t);
    qf[kk][1] = ldq(r1, kk * 16 + 2 * t);
    qf[kk][2] = ldq(r0, kk * 16 + 8 + 2 * t);
    qf[kk][3] = ldq(r1, kk * 16 + 8 + 2 * t);
  }

  float o[D / 8][4];
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd)
    o[nd][0] = o[nd][1] = o[nd][2] = o[nd][3] = 0.f;
  float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f; // l: lane partial

  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int stage = tile & 1;
    if (tile + 1 < tiles) {
      loadTile(stage ^ 1, tile + 1);
      mma::cpAsyncWait<1>();
    } else {
      mma::cpAsyncWait<0>();
    }
    __syncthreads();
    const int64_t k0 = tile * kBK;
    if (k0 + kBK - 1 > a.qStart + q0)
      nonfinite::zeroTile<T, D>(Vst + stage * kBK * L::kLd, L::kLd, tid, 128,
                                &sBad);
    if (k0 <= warpLastPos) {
      const T *Ks = Kst + stage * kBK * L::kLd;
      const T *Vs = Vst + stage * kBK * L::kLd;
      float sc[kBK / 8][4];
#pragma unroll
      for (int nb = 0; nb < kBK / 8; ++nb) {
        sc[nb][0] = sc[nb][1] = sc[nb][2] = sc[nb][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
          // x4: (keys nb*8.., d kk*16), (+8 d), ((kk+1)*16), (+8): b0/b1 of
          // two k-steps.
          uint32_t b[4];
          mma::ldmatrixX4(b, Ks + (nb * 8 + (lane & 7)) * L::kLd + kk * 16 +
                                 (lane >> 3) * 8);
          mma::mma16816<T>(sc[nb], qf[kk], b[0], b[1]);
          if (kk + 1 < D / 16)
            mma::mma16816<T>(sc[nb], qf[kk + 1], b[2], b[3]);
        }
      }
      // Scale, causal mask, row max over the quad.
      float tmax0 = -INFINITY, tmax1 = -INFINITY;
#pragma unroll
      for (int nb = 0; nb < kBK / 8; ++nb)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          int64_t key = k0 + nb * 8 + 2 * t + (e & 1);
          int64_t pos = e < 2 ? pos0 : pos1;
          float x = key <= pos ? sc[nb][e] * a.scaleLog2 : -INFINITY;
          sc[nb][e] = x;
          if (e < 2)
            tmax0 = fmaxf(tmax0, x);
          else
            tmax1 = fmaxf(tmax1, x);
        }
#pragma unroll
      for (int mk = 1; mk <= 2; mk *= 2) {
        tmax0 = fmaxf(tmax0, __shfl_xor_sync(0xffffffffu, tmax0, mk));
        tmax1 = fmaxf(tmax1, __shfl_xor_sync(0xffffffffu, tmax1, mk));
      }
      const float mNew0 = fmaxf(m0, tmax0), mNew1 = fmaxf(m1, tmax1);
      const float mUse0 = mNew0 == -INFINITY ? 0.f : mNew0;
      const float mUse1 = mNew1 == -INFINITY ? 0.f : mNew1;
      const float alpha0 = exp2f(m0 - mUse0), alpha1 = exp2f(m1 - mUse1);
      m0 = mNew0;
      m1 = mNew1;
      float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
      for (int nb = 0; nb < kBK / 8; ++nb) {
        sc[nb][0] = exp2f(sc[nb][0] - mUse0);
        sc[nb][1] = exp2f(sc[nb][1] - mUse0);
        sc[nb][2] = exp2f(sc[nb][2] - mUse1);
        sc[nb][3] = exp2f(sc[nb][3] - mUse1);
        sum0 += sc[nb][0] + sc[nb][1];
        sum1 += sc[nb][2] + sc[nb][3];
      }
      l0 = l0 * alpha0 + sum0;
      l1 = l1 * alpha1 + sum1;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd) {
        o[nd][0] *= alpha0;
        o[nd][1] *= alpha0;
        o[nd][2] *= alpha1;
        o[nd][3] *= alpha1;
      }
      // O += P V: P from registers (C layout -> A layout), V via ldmatrix.trans.
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk) {
        uint32_t pa[4] = {mma::pack2<T>(sc[2 * kk][0], sc[2 * kk][1]),
                          mma::pack2<T>(sc[2 * kk][2], sc[2 * kk][3]),
                          mma::pack2<T>(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                          mma::pack2<T>(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
        for (int nd = 0; nd < D / 8; nd += 2) {
          uint32_t b[4];
          mma::ldmatrixX4T(b, Vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) *
                                       L::kLd +
                                   (nd + (lane >> 4)) * 8);
          mma::mma16816<T>(o[nd], pa, b[0], b[1]);
          mma::mma16816<T>(o[nd + 1], pa, b[2], b[3]);
        }
      }
    }
    __syncthreads(); // this stage is overwritten by the next prefetch
  }
  // Finish the row sums across the quad, normalise, store (32-bit pairs).
#pragma unroll
  for (int mk = 1; mk <= 2; mk *= 2) {
    l0 += __shfl_xor_sync(0xffffffffu, l0, mk);
    l1 += __shfl_xor_sync(0xffffffffu, l1, mk);
  }
  const float inv0 = 1.f / l0, inv1 = 1.f / l1; // l == 0: keys dropped (bug)
  T *out = static_cast<T *>(a.out);
#pragma unroll
  for (int nd = 0; nd < D / 8; ++nd) {
    int col = h * D + nd * 8 + 2 * t;
    if (valid0)
      *reinterpret_cast<uint32_t *>(out + r0 * a.outLd + col) =
          mma::pack2<T>(o[nd][0] * inv0, o[nd][1] * inv0);
    if (valid1)
      *reinterpret_cast<uint32_t *>(out + r1 * a.outLd + col) =
          mma::pack2<T>(o[nd][2] * inv1, o[nd][3] * inv1);
  }
  if (sBad) // the zeroed values rows g and g+8 see
    for (int e = 0; e < D / 4 * 2; ++e) {
      const int rr = e / (D / 4), col = (e % (D / 4)) / 2 * 8 + 2 * t + e % 2;
      if (rr ? valid1 : valid0)
        nonfinite::poison<T>(out + (rr ? r1 : r0) * a.outLd + h * D + col,
                             v + kvh * D + col, a.kvLd,
                             nonfinite::diagonalStart(a.qStart + q0),
                             rr ? pos1 : pos0);
    }
#endif
}
#endif // GRETA_HAVE_WMMA

#ifdef GRETA_HAVE_WMMA
// ------------------------------------- GQA-packed mma.sync kernel (default)
// The FlashAttention-2 structure of attnMmaKernel, reorganised for grouped-
// query attention on Hopper-class SM throughput:
//  - GQA packing: one block serves Gb = gcd(H/KVH, NW*MT) query heads that
//    share one KV head, so every K/V tile staged in shared memory feeds
//    16*NW*MT query rows (8 heads x 16 positions for TinyLlama) instead of
//    64 rows of one head; the rows of one m16 tile are one head at 16
//    consecutive positions, so causal masks stay per position.
//  - MT m16 tiles per warp (32 rows at MT=2): each K/V fragment read by
//    ldmatrix feeds MT mma's (halves the shared-memory traffic per flop).
//  - Softmax on raw scores: max first, then one FFMA (s*scale*log2e - m)
//    and ex2.approx.ftz per element; the causal mask only on tiles that
//    cross a row's position (diagonal tiles), fully masked tiles skipped.
//  - O and l are rescaled only when some row of the warp has a new max
//    (alpha would be exactly 1 otherwise): the same arithmetic as FA2's
//    eager online softmax, P relative to the running max, as PyTorch's
//    kernels round it.
//    Variant attention=lazy_rescale (gm.lazy = 8) moves the reference only
//    when a row max grows by more than 2^8 (P <= 256, O and l in fp32), so O
//    is rarely rescaled: 6-12% faster on the H100, equally accurate against
//    an exact reference (+5-7% relative L2), but its P rounds differently from
//    PyTorch's, so its distance to torch's output doubles (2.8e-4 vs 1.3e-4
//    at f16) -- a bad trade for a tool that diffs against HF.
//  - ST-stage cp.async pipeline, one __syncthreads per key tile.
//  - 1-D grid, latest (heaviest) query tiles first, head groups innermost.
//  - TUNED (the default since 2026-11-26; lazy_rescale keeps TUNED = false,
//    the code it was measured with): the K/V tile loader has a compile-time
//    trip count and one 64-bit row offset per tile (the generic loop cost
//    ~100 dependent integer instructions per tile and warp, ~14% of the
//    loop's issue slots), and the rescale vote is per m16 tile instead of
//    per warp (half the rows per vote, so O is rescaled about half as often;
//    skipped rows would have been multiplied by exactly 1). ~4% faster at
//    L = 16384 on the H200 (docs/PERFORMANCE.md); the same outputs.
// Key tiles are 64 keys (kBK) so the planted partial_tile_bug keeps its exact
// semantics (keyTilesFor).
namespace mma {
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
template <typename T> __device__ __forceinline__ uint32_t cvtPack(float lo, float hi) {
  uint32_t r;
  if constexpr (std::is_same_v<T, greta_half>)
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  else
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}
} // namespace mma

struct GqaGeom {
  int group;      // H / KVH
  int gb;         // heads per block (divides group and NW*MT)
  int bqPos;      // query positions per block = 16*NW*MT/gb
  int headGroups; // KVH * group / gb
  int posTiles;   // ceil(nQ / bqPos)
  float lazy;     // log2 growth of a row max that forces a rescale (0: any)
};

template <int D, int ST> struct GqaLayout {
  static constexpr int kLd = D + 8; // T elements per smem row (16B pad)
  template <typename T> static constexpr size_t bytes() {
    return size_t(ST) * 2 /*K,V*/ * kBK * kLd * sizeof(T);
  }
};

template <typename T, int D, int NW, int MT, int ST, bool TUNED>
__global__ void __launch_bounds__(NW * 32) attnGqaKernel(AttnArgs a, GqaGeom gm) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using L = GqaLayout<D, ST>;
  constexpr int NT = NW * 32;
  constexpr int kVec = D / 8; // 16-byte vectors per K/V row
  static_assert(NT % kVec == 0, "tile loader assumes whole rows per pass");
  extern __shared__ __align__(16) unsigned char smemRaw[];
  T *Kst = reinterpret_cast<T *>(smemRaw); // [ST][BK][kLd]
  T *Vst = Kst + ST * kBK * L::kLd;        // [ST][BK][kLd]
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  __shared__ int sBad; // a diagonal tile had a non-finite value
  if (tid == 0)
    sBad = 0;
  const int g = lane / 4, t = lane % 4;

  const int hg = blockIdx.x % gm.headGroups;
  const int64_t pt = gm.posTiles - 1 - blockIdx.x / gm.headGroups;
  const int kvh = hg / (gm.group / gm.gb);
  const int head0 = hg * gm.gb;
  const int64_t q0 = pt * gm.bqPos; // first query index of the block
  const T *q = static_cast<const T *>(a.q);
  const int64_t kvLen = a.qStart + a.nQ;

  // This warp's m16 tiles: u = warp*MT + mt -> head head0 + u % gb, query
  // rows q0 + (u / gb)*16 + [0, 16).
  int headOf[MT];
  int64_t rowOf[MT]; // first query index of the m-tile
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    const int u = warp * MT + mt;
    headOf[mt] = head0 + u % gm.gb;
    rowOf[mt] = q0 + (u / gm.gb) * 16;
  }
  const int64_t warpMinPos = a.qStart + q0 + ((warp * MT) / gm.gb) * 16;
  const int64_t warpMaxPos =
      a.qStart + q0 + ((warp * MT + MT - 1) / gm.gb) * 16 + 15;

  // K/V tile loader: thread owns vector column c of rows j0 + i*(NT/kVec).
  const int ldCol = tid % kVec, ldRow = tid / kVec;
  const T *kBase = static_cast<const T *>(a.k) + kvh * D + ldCol * 8;
  const T *vBase = static_cast<const T *>(a.v) + kvh * D + ldCol * 8;
  constexpr int kRowsPerPass = NT / kVec, kPasses = kBK / kRowsPerPass;
  static_assert(kBK % kRowsPerPass == 0, "tile loader: whole passes");
  const int64_t passStep = int64_t(kRowsPerPass) * a.kvLd;
  auto loadTile = [&](int stage, int64_t tile) {
    T *Ks = Kst + stage * kBK * L::kLd, *Vs = Vst + stage * kBK * L::kLd;
    if constexpr (TUNED) {
      // kPasses rows per thread at a compile-time stride: one 64-bit offset
      // per tile, rows past the last key zero-filled (src-size 0, row 0).
      const int64_t key0 = tile * kBK + ldRow;
      const int64_t off0 = key0 * a.kvLd;
      const int64_t left = kvLen - key0; // rows i*kRowsPerPass < left exist
#pragma unroll
      for (int i = 0; i < kPasses; ++i) {
        const bool in = i * kRowsPerPass < left;
        const int64_t off = in ? off0 + i * passStep : 0;
        const int so = (ldRow + i * kRowsPerPass) * L::kLd + ldCol * 8;
        mma::cpAsync16(Ks + so, kBase + off, in ? 16 : 0);
        mma::cpAsync16(Vs + so, vBase + off, in ? 16 : 0);
      }
    } else {
#pragma unroll
      for (int j = ldRow; j < kBK; j += NT / kVec) {
        const int64_t key = tile * kBK + j;
        const bool in = key < kvLen;
        const int64_t off = (in ? key : 0) * a.kvLd;
        mma::cpAsync16(Ks + j * L::kLd + ldCol * 8, kBase + off, in ? 16 : 0);
        mma::cpAsync16(Vs + j * L::kLd + ldCol * 8, vBase + off, in ? 16 : 0);
      }
    }
  };

  const int64_t tiles = keyTilesFor(a, q0, gm.bqPos);
  constexpr int kAhead = ST - 1; // tiles in flight ahead of the current one
  static_assert(kAhead >= 1, "need at least one tile in flight");
#pragma unroll
  for (int s = 0; s < kAhead; ++s) {
    if (s < tiles)
      loadTile(s, s);
    mma::cpAsyncCommit();
  }

  // Q fragments (A operand, 16 x D per m-tile), straight from global.
  uint32_t qf[MT][D / 16][4];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    const int64_t ra = rowOf[mt] + g, rb = ra + 8;
    const T *qa = q + ra * a.qLd + headOf[mt] * D + 2 * t;
    const T *qb = q + rb * a.qLd + headOf[mt] * D + 2 * t;
    const bool va = ra < a.nQ, vb = rb < a.nQ;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      qf[mt][kk][0] = va ? *reinterpret_cast<const uint32_t *>(qa + kk * 16) : 0u;
      qf[mt][kk][1] = vb ? *reinterpret_cast<const uint32_t *>(qb + kk * 16) : 0u;
      qf[mt][kk][2] = va ? *reinterpret_cast<const uint32_t *>(qa + kk * 16 + 8) : 0u;
      qf[mt][kk][3] = vb ? *reinterpret_cast<const uint32_t *>(qb + kk * 16 + 8) : 0u;
    }
  }

  float o[MT][D / 8][4];
  float mRef[MT][2], lsum[MT][2]; // reference max (scaled, log2 units); lane partial sums
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
    for (int nd = 0; nd < D / 8; ++nd)
      o[mt][nd][0] = o[mt][nd][1] = o[mt][nd][2] = o[mt][nd][3] = 0.f;
    mRef[mt][0] = mRef[mt][1] = -INFINITY;
    lsum[mt][0] = lsum[mt][1] = 0.f;
  }
  const float sl2 = a.scaleLog2;
  const float kLazy = gm.lazy; // rescale when a row max grows by > 2^lazy
  uint32_t pa[MT][kBK / 16][4]; // P of the current tile (PV's A operand)
  // O += P V: V's B operands by ldmatrix.trans, each shared by MT tiles.
  auto pv = [&](const T *Vs) {
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
#pragma unroll
      for (int nd = 0; nd < D / 8; nd += 2) {
        uint32_t b[4];
        mma::ldmatrixX4T(b, Vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) *
                                     L::kLd +
                                 (nd + (lane >> 4)) * 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma::mma16816<T>(o[mt][nd], pa[mt][kk], b[0], b[1]);
          mma::mma16816<T>(o[mt][nd + 1], pa[mt][kk], b[2], b[3]);
        }
      }
    }
  };

  int stage = 0;
  for (int64_t tile = 0; tile < tiles; ++tile) {
    mma::cpAsyncWait<kAhead - 1>();
    __syncthreads(); // tile landed for all; the stage refilled next is free
    {
      const int64_t nt = tile + kAhead;
      if (nt < tiles) {
        int ns = stage + kAhead;
        ns = ns >= ST ? ns - ST : ns;
        loadTile(ns, nt);
      }
      mma::cpAsyncCommit();
    }
    const int64_t k0 = tile * kBK;
    if (k0 + kBK - 1 > a.qStart + q0)
      nonfinite::zeroTile<T, D>(Vst + stage * kBK * L::kLd, L::kLd, tid, NT,
                                &sBad);
    if (k0 <= warpMaxPos) {
      const T *Ks = Kst + stage * kBK * L::kLd;
      const T *Vs = Vst + stage * kBK * L::kLd;
      float sc[MT][kBK / 8][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nb = 0; nb < kBK / 8; ++nb)
          sc[mt][nb][0] = sc[mt][nb][1] = sc[mt][nb][2] = sc[mt][nb][3] = 0.f;
#pragma unroll
      for (int nb = 0; nb < kBK / 8; ++nb) {
#pragma unroll
        for (int kk = 0; kk < D / 16; kk += 2) {
          uint32_t b[4];
          mma::ldmatrixX4(b, Ks + (nb * 8 + (lane & 7)) * L::kLd + kk * 16 +
                                 (lane >> 3) * 8);
#pragma unroll
          for (int mt = 0; mt < MT; ++mt) {
            mma::mma16816<T>(sc[mt][nb], qf[mt][kk], b[0], b[1]);
            if (kk + 1 < D / 16)
              mma::mma16816<T>(sc[mt][nb], qf[mt][kk + 1], b[2], b[3]);
          }
        }
      }
      // Causal mask, only where the tile crosses this warp's positions.
      if (k0 + kBK - 1 > warpMinPos) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int r = 0; r < 2; ++r) {
            // key k0 + nb*8 + 2t + c allowed iff nb*8 + c <= pos - k0 - 2t
            const int64_t pos = a.qStart + rowOf[mt] + g + 8 * r;
            const int64_t d64 = pos - k0 - 2 * t;
            const int lim = d64 < -1 ? -1 : (d64 > kBK ? kBK : int(d64));
#pragma unroll
            for (int nb = 0; nb < kBK / 8; ++nb)
#pragma unroll
              for (int c = 0; c < 2; ++c)
                if (nb * 8 + c > lim)
                  sc[mt][nb][2 * r + c] = -INFINITY;
          }
      }
      // Row max (raw scores; scale > 0), lazily moved reference.
      float mx[MT][2];
      bool need = false;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float x = sc[mt][0][2 * r];
#pragma unroll
          for (int nb = 0; nb < kBK / 8; ++nb)
            x = fmaxf(x, fmaxf(sc[mt][nb][2 * r], sc[mt][nb][2 * r + 1]));
          x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
          x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
          mx[mt][r] = x * sl2;
          need |= mx[mt][r] > mRef[mt][r] + kLazy;
        }
      // Moves the reference of row r (0: g, 1: g+8) of m-tile mt to its new
      // max and rescales O and l by alpha = 2^(old - new): exactly 1 where
      // the max did not grow, 0 when old was -inf (nothing to keep).
      auto rescaleRows = [&](int mt, int r) {
        const float mNew = fmaxf(mRef[mt][r], mx[mt][r]);
        const float mOldUse = mRef[mt][r] == -INFINITY ? 0.f : mRef[mt][r];
        const float mNewUse = mNew == -INFINITY ? 0.f : mNew;
        const float alpha =
            mRef[mt][r] == -INFINITY ? 0.f : mma::ex2(mOldUse - mNewUse);
        mRef[mt][r] = mNew;
        lsum[mt][r] *= alpha;
#pragma unroll
        for (int nd = 0; nd < D / 8; ++nd) {
          o[mt][nd][2 * r] *= alpha;
          o[mt][nd][2 * r + 1] *= alpha;
        }
      };
      if constexpr (TUNED) {
        // One vote per m16 tile: only tiles with a grown row are rescaled.
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          if (__any_sync(0xffffffffu, mx[mt][0] > mRef[mt][0] + kLazy ||
                                          mx[mt][1] > mRef[mt][1] + kLazy)) {
            rescaleRows(mt, 0);
            rescaleRows(mt, 1);
          }
      } else if (__any_sync(0xffffffffu, need)) {
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int r = 0; r < 2; ++r)
            rescaleRows(mt, r);
      }
      // P = 2^(s*scale*log2e - ref), packed to T as PV's A operand.
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const float ref0 = mRef[mt][0] == -INFINITY ? 0.f : mRef[mt][0];
        const float ref1 = mRef[mt][1] == -INFINITY ? 0.f : mRef[mt][1];
        float s0 = 0.f, s1 = 0.f;
#pragma unroll
        for (int nb = 0; nb < kBK / 8; ++nb) {
          const float p0 = mma::ex2(fmaf(sc[mt][nb][0], sl2, -ref0));
          const float p1 = mma::ex2(fmaf(sc[mt][nb][1], sl2, -ref0));
          const float p2 = mma::ex2(fmaf(sc[mt][nb][2], sl2, -ref1));
          const float p3 = mma::ex2(fmaf(sc[mt][nb][3], sl2, -ref1));
          s0 += p0 + p1;
          s1 += p2 + p3;
          pa[mt][nb / 2][(nb & 1) * 2 + 0] = mma::cvtPack<T>(p0, p1);
          pa[mt][nb / 2][(nb & 1) * 2 + 1] = mma::cvtPack<T>(p2, p3);
        }
        lsum[mt][0] += s0;
        lsum[mt][1] += s1;
      }
      pv(Vs);
    }
    stage = stage + 1 == ST ? 0 : stage + 1;
  }
  mma::cpAsyncWait<0>(); // no copy may outlive the block (empty groups only)
  // Row sums across the quad, normalise, store.
  T *out = static_cast<T *>(a.out);
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = lsum[mt][r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = 1.f / l; // l == 0: keys dropped (bug) -> NaN
      const int64_t row = rowOf[mt] + g + 8 * r;
      if (row >= a.nQ)
        continue;
      T *dst = out + row * a.outLd + headOf[mt] * D + 2 * t;
#pragma unroll
      for (int nd = 0; nd < D / 8; ++nd)
        *reinterpret_cast<uint32_t *>(dst + nd * 8) =
            mma::cvtPack<T>(o[mt][nd][2 * r] * inv, o[mt][nd][2 * r + 1] * inv);
      if (sBad) // the zeroed values this row sees
        for (int e = 0; e < D / 4; ++e) {
          const int col = e / 2 * 8 + e % 2; // from dst's 2t
          nonfinite::poison<T>(dst + col,
                               static_cast<const T *>(a.v) + kvh * D + 2 * t +
                                   col,
                               a.kvLd, nonfinite::diagonalStart(a.qStart + q0),
                               a.qStart + row);
        }
    }
#endif
}
#endif // GRETA_HAVE_WMMA

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
enum class Kernel { Scalar, Wmma, Mma, Gqa, GqaLazy };

template <typename T, int D>
greta_gpu_status launch(const AttnArgs &a, hipStream_t s, Kernel kern) {
#ifdef GRETA_HAVE_WMMA
  if constexpr (kIs16Bit<T>) {
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
                           void *stream) {
  if (headDim != 32 && headDim != 64 && headDim != 128)
    return fail(GRETA_GPU_ERR_INVALID_ARGUMENT,
                "attention: head_dim " + std::to_string(headDim) +
                    " not supported (32, 64 or 128)");
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
             scale * kLog2e, var == variant::kAttnPartialTileBug ? 1 : 0};
  // The tensor-core kernel loads 16-byte vectors: every row start must be
  // 16-byte aligned; otherwise the scalar kernel runs.
  auto aligned = [](const void *p, int64_t ld) {
    return (reinterpret_cast<uintptr_t>(p) % 16 == 0) && (ld * 2) % 16 == 0;
  };
  bool vec = aligned(q, qLd) && aligned(kc, kvLd) && aligned(vc, kvLd) &&
             aligned(out, outLd);
  Kernel kern = !vec || var == variant::kAttnScalar ? Kernel::Scalar
                : var == variant::kAttnWmma         ? Kernel::Wmma
                : var == kAttnMmaFa2                ? Kernel::Mma
                : var == kAttnLazyRescale           ? Kernel::GqaLazy
                                                    : Kernel::Gqa;
  hipStream_t s = asStream(stream);
  switch (headDim) {
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
  }
GRETA_DEFINE_ATTENTION(greta_gpu_f16, greta_half, f16)
GRETA_DEFINE_ATTENTION(greta_gpu_bf16, greta_bf16, bf16)
GRETA_DEFINE_ATTENTION(float, float, f32)

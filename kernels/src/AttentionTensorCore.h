//===- AttentionTensorCore.h - WMMA and mma.sync (mma_fa2) kernels ----------===//
//
// A part of Attention.hip, included there inside namespace greta::gpu's
// anonymous namespace after AttnArgs, keyTilesFor and the scalar kernel
// (one translation unit: the launchers instantiate these templates).
//
//===----------------------------------------------------------------------===//
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

//===- AttentionGqa.h - GQA-packed mma.sync kernel --------------------------===//
//
// A part of Attention.hip, included there inside namespace greta::gpu's
// anonymous namespace after AttnArgs, keyTilesFor and the scalar kernel
// (one translation unit: the launchers instantiate these templates).
//
//===----------------------------------------------------------------------===//
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

//===- AttentionHopper.h - sm_90a wgmma attention kernel --------*- C++ -*-===//
//
// A part of Attention.hip, included there inside namespace greta::gpu's
// anonymous namespace after AttentionGqa.h (one translation unit: the
// launchers instantiate these templates).
//
//===----------------------------------------------------------------------===//
#ifdef GRETA_HAVE_WMMA
// ------------------------------------------ Hopper wgmma kernel (`hopper`)
// FlashAttention-3's structure on GRETA's layout and the GQA packing of
// attnGqaKernel (docs/KERNELS.md "hopper"):
//  - warpgroup 0 loads K/V tiles (cp.async into wgmma's 128-byte-swizzled
//    shared-memory layout, an mbarrier full/empty pipeline of ST stages);
//    warpgroups 1 and 2 compute 64 query rows each; setmaxnreg moves the
//    registers to them.
//  - each warp owns 16 rows, one head at 16 consecutive positions (the block
//    serves gcd(H/KVH, 8) heads of one KV head), so a warpgroup's 64 rows are
//    the M of one wgmma m64nNk16 and the causal mask stays per position.
//  - S = Q K^T: wgmma with Q and K in shared memory; O += P V: wgmma with P
//    as the register A operand (S's accumulator layout is the A-fragment
//    layout) and V read transposed (MN-major); one n64 wgmma per 64 columns
//    of D.
//  - a turn issues S(it) and PV(it - 1) back to back; the two consumer
//    warpgroups take turns (named barriers), so softmax and GEMMs overlap.
//  - softmax, masks, rescale vote and non-finite handling are
//    attnGqaKernel's (TUNED), on 128-key tiles.
// 16-byte chunk c (of D/8) of row r of a swizzled [rows][D] tile lives at
// [c / 8][r][(c % 8) ^ (r % 8)] in 16-byte units (1024-byte-aligned atoms).
namespace hopper {
__device__ __forceinline__ uint32_t smemAddr(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// wgmma shared-memory descriptor, 128-byte swizzle; lbo/sbo in bytes.
__device__ __forceinline__ uint64_t desc(const void *p, uint32_t lbo,
                                         uint32_t sbo) {
  return uint64_t((smemAddr(p) & 0x3FFFF) >> 4) |
         (uint64_t((lbo >> 4) & 0x3FFF) << 16) |
         (uint64_t((sbo >> 4) & 0x3FFF) << 32) | (1ull << 62);
}
__device__ __forceinline__ void fence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wait0() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
__device__ __forceinline__ void wait1() {
  asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
}
// Generic-proxy writes (cp.async, stores) visible to the async proxy.
__device__ __forceinline__ void fenceProxyAsync() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving accumulator accesses across wgmma's
// fence/wait (the asm's register operands are the only link it sees).
template <int N> __device__ __forceinline__ void fenceRegs(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
    asm volatile("" : "+f"(d[i])::"memory");
}
// Keeps a register A operand live (unshared) until its wgmma is waited for.
template <int N>
__device__ __forceinline__ void fenceRegs(uint32_t (&a)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      asm volatile("" : "+r"(a[i][e])::"memory");
}

#define GRETA_F4(i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define GRETA_F16(i)                                                           \
  GRETA_F4(i), GRETA_F4(i + 4), GRETA_F4(i + 8), GRETA_F4(i + 12)
#define GRETA_R32                                                              \
  "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20," \
  "%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31"
#define GRETA_R64                                                              \
  GRETA_R32 ",%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,"    \
            "%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62," \
            "%63"
// d (64 x 128, fp32) = (acc ? d : 0) + A B, A and B in shared memory.
template <typename T>
__device__ __forceinline__ void mmaN128SS(float (&d)[64], uint64_t da,
                                          uint64_t db, int acc) {
#define GRETA_WGMMA(TY)                                                        \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                    \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TY "." TY        \
               " {" GRETA_R64 "}, %64, %65, p, 1, 1, 0, 0;\n}\n"               \
               : GRETA_F16(0), GRETA_F16(16), GRETA_F16(32), GRETA_F16(48)     \
               : "l"(da), "l"(db), "r"(acc))
  if constexpr (std::is_same_v<T, greta_half>)
    GRETA_WGMMA("f16");
  else
    GRETA_WGMMA("bf16");
#undef GRETA_WGMMA
}
// d (64 x 64) += A B, A in registers (m16n8k16 A-fragment layout per warp),
// B MN-major (transposed) in shared memory.
template <typename T>
__device__ __forceinline__ void mmaN64RS(float (&d)[32], const uint32_t (&a)[4],
                                         uint64_t db) {
#define GRETA_WGMMA(TY)                                                        \
  asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32." TY "." TY         \
               " {" GRETA_R32 "}, {%32,%33,%34,%35}, %36, 1, 1, 1, 1;\n"       \
               : GRETA_F16(0), GRETA_F16(16)                                   \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db))
  if constexpr (std::is_same_v<T, greta_half>)
    GRETA_WGMMA("f16");
  else
    GRETA_WGMMA("bf16");
#undef GRETA_WGMMA
}
#undef GRETA_F4
#undef GRETA_F16
#undef GRETA_R32
#undef GRETA_R64

// Byte offset of 16-byte chunk c (of D/8) of row r in a swizzled [rows][D]
// tile: [D/64][rows][128 B], chunk c%8 of a row at (c%8) ^ (r%8).
__device__ __forceinline__ uint32_t swz(int r, int c, int rows) {
  return (c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}
} // namespace hopper

namespace hopper {
__device__ __forceinline__ void mbarInit(uint64_t *b, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smemAddr(b)),
               "r"(count)
               : "memory");
}
__device__ __forceinline__ void mbarArrive(uint64_t *b) {
  asm volatile(
      "{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(
          smemAddr(b))
      : "memory");
}
// Waits for the completion of the phase of parity `parity`.
__device__ __forceinline__ void mbarWait(uint64_t *b, uint32_t parity) {
  asm volatile("{\n.reg .pred p;\nWAIT:\n"
               "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
               "@!p bra WAIT;\n}\n" ::"r"(smemAddr(b)),
               "r"(parity)
               : "memory");
}
// A barrier among `n` threads (named barrier id; 0 is __syncthreads').
__device__ __forceinline__ void namedBar(int id, int n) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
// Arrives at it without waiting (the other `n` - this warpgroup's wait).
__device__ __forceinline__ void namedArrive(int id, int n) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(n) : "memory");
}
} // namespace hopper

// Block: warpgroup 0 loads (the producer), warpgroups 1 and 2 compute (the
// consumers, 64 query rows each). Registers move from the producer (24) to
// the consumers (240) with setmaxnreg.
template <int D, int BN, int ST> struct HopperLayout {
  static constexpr int kBM = 128;
  static constexpr uint32_t kQBytes = uint32_t(kBM) * D * 2;
  static constexpr uint32_t kTileBytes = uint32_t(BN) * D * 2; // K or V
  // +1024: the swizzle atoms must be 1024-byte aligned.
  static constexpr size_t bytes() {
    return 1024 + kQBytes + size_t(ST) * 2 * kTileBytes;
  }
};

// The consumer warpgroups' part of attnHopperKernel (ctid: 0-255).
template <typename T, int D, int BN, int ST>
__device__ __forceinline__ void
attnHopperConsume(const AttnArgs &a, const GqaGeom &gm, unsigned char *Qs,
                  unsigned char *KVs, uint64_t *fullB, uint64_t *emptyB,
                  const int *sBadP, int ctid, int head0, int kvh, int64_t q0,
                  int64_t firstPos, int64_t tiles) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = HopperLayout<D, BN, ST>;
  constexpr int BM = L::kBM, kVec = D / 8;
  const int warp = __shfl_sync(0xffffffffu, ctid / 32, 0), lane = ctid % 32;
  const int wg = warp / 4;
  const int g = lane / 4, t4 = lane % 4;
  // Warp u's 16 rows: head head0 + u % gb, queries q0 + (u / gb)*16 + [0,16).
  const int headW = head0 + warp % gm.gb;
  const int64_t rowW = q0 + (warp / gm.gb) * 16;
  const int64_t warpMinPos = a.qStart + rowW;
  // Keys at or past keyEnd are masked: the planted partial_tile_bug drops
  // those of the partial last 64-key tile (keyTilesFor's kv_len / 64).
  const int64_t kvLen = a.qStart + a.nQ;
  const int64_t keyEnd = a.partialTileBug ? kvLen / kBK * kBK : kvLen;
  {
    // This warpgroup's 64 Q rows (rows past n_q zero-filled).
    const T *q = static_cast<const T *>(a.q);
    for (int e = ctid % 128; e < 64 * kVec; e += 128) {
      const int r = wg * 64 + e / kVec, c = e % kVec, u = r / 16;
      const int64_t row = q0 + (u / gm.gb) * 16 + r % 16;
      const bool in = row < a.nQ;
      const T *src = in ? q + row * a.qLd + (head0 + u % gm.gb) * D + c * 8 : q;
      mma::cpAsync16(Qs + hopper::swz(r, c, BM), src, in ? 16 : 0);
    }
    mma::cpAsyncCommit();
    mma::cpAsyncWait<0>();
    hopper::fenceProxyAsync();
    hopper::namedBar(2 + wg, 128);
  }

  float o[D / 64][32];
#pragma unroll
  for (int h = 0; h < D / 64; ++h)
#pragma unroll
    for (int i = 0; i < 32; ++i)
      o[h][i] = 0.f;
  float mRef[2] = {-INFINITY, -INFINITY}, lsum[2] = {0.f, 0.f};
  const float sl2 = a.scaleLog2;
  // FlashAttention-3's schedule. Turn `it` issues S(it) = Q K(it)^T and then
  // P(it-1) V(it-1) back to back, so the softmax of S(it) runs while the
  // tensor cores do the PV; the two warpgroups take turns at issuing (named
  // barriers 4 + wg), so one's softmax overlaps the other's GEMMs. O's
  // rescale by a grown max of tile it is applied before PV(it) is issued.
  uint32_t pa[BN / 16][4]; // P(it - 1), PV's A operand
  uint32_t pn[BN / 16][4]; // P(it): PV(it - 1) may still read pa
  float alpha[2] = {1.f, 1.f};
  float s[BN / 2];
  auto waitFull = [&](int64_t it) {
    hopper::mbarWait(&fullB[it % ST], uint32_t((it / ST) & 1));
  };
  auto issueS = [&](int64_t it) {
    const unsigned char *Ks = KVs + (it % ST) * 2 * L::kTileBytes;
    // Descriptors first: registers defined between the wgmmas of one stage
    // serialize them (C7513).
    uint64_t da[D / 16], db[D / 16];
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t ko = (kk % 4) * 32u; // k16 step inside the atom
      da[kk] =
          hopper::desc(Qs + (kk / 4) * BM * 128 + wg * 64 * 128 + ko, 16, 1024);
      db[kk] = hopper::desc(Ks + (kk / 4) * BN * 128 + ko, 16, 1024);
    }
    hopper::fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      hopper::mmaN128SS<T>(s, da[kk], db[kk], kk > 0);
    }
    hopper::commit();
  };
  // O *= alpha: exactly 1 where no max grew (unconditional, since O
  // modified under a branch serializes the wgmma); before the turn's first
  // wgmma (O defined inside a wgmma stage serializes them too, C7513).
  auto scaleO = [&] {
#pragma unroll
    for (int r = 0; r < 2; ++r)
#pragma unroll
      for (int h = 0; h < D / 64; ++h)
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          o[h][4 * j + 2 * r] *= alpha[r];
          o[h][4 * j + 2 * r + 1] *= alpha[r];
        }
#pragma unroll
    for (int h = 0; h < D / 64; ++h)
      hopper::fenceRegs(o[h]);
  };
  // O += P(it) V(it).
  auto issuePV = [&](int64_t it) {
    const unsigned char *Vs =
        KVs + (it % ST) * 2 * L::kTileBytes + L::kTileBytes;
    uint64_t dv[BN / 16][D / 64];
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk)
#pragma unroll
      for (int h = 0; h < D / 64; ++h)
        dv[kk][h] =
            hopper::desc(Vs + h * BN * 128 + kk * 16 * 128, BN * 128, 1024);
    hopper::fence();
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk)
#pragma unroll
      for (int h = 0; h < D / 64; ++h)
        hopper::mmaN64RS<T>(o[h], pa[kk], dv[kk][h]);
    hopper::commit();
  };
  // Mask, online-softmax update and P(it) into pn, from S(it) in s.
  auto softmax = [&](int64_t it) {
    hopper::fenceRegs(s);
    const int64_t k0 = it * BN;
    // s[4j + 2r + c]: row g + 8r, key k0 + 8j + 2t + c.
    if (k0 + BN - 1 > warpMinPos || k0 + BN > keyEnd) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        // key k0 + 8j + 2t + c allowed iff 8j + c <= last - k0 - 2t
        const int64_t pos = warpMinPos + g + 8 * r;
        const int64_t last = pos < keyEnd - 1 ? pos : keyEnd - 1;
        const int64_t d64 = last - k0 - 2 * t4;
        const int lim = d64 < -1 ? -1 : (d64 > BN ? BN : int(d64));
#pragma unroll
        for (int j = 0; j < BN / 8; ++j)
#pragma unroll
          for (int c = 0; c < 2; ++c)
            if (j * 8 + c > lim)
              s[4 * j + 2 * r + c] = -INFINITY;
      }
    }
    float mx[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float x = s[2 * r];
#pragma unroll
      for (int j = 0; j < BN / 8; ++j)
        x = fmaxf(x, fmaxf(s[4 * j + 2 * r], s[4 * j + 2 * r + 1]));
      x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
      x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
      mx[r] = x * sl2;
    }
    alpha[0] = alpha[1] = 1.f;
    if (__any_sync(0xffffffffu, mx[0] > mRef[0] || mx[1] > mRef[1])) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float mNew = fmaxf(mRef[r], mx[r]);
        const float mOldUse = mRef[r] == -INFINITY ? 0.f : mRef[r];
        const float mNewUse = mNew == -INFINITY ? 0.f : mNew;
        alpha[r] = mRef[r] == -INFINITY ? 0.f : mma::ex2(mOldUse - mNewUse);
        mRef[r] = mNew;
        lsum[r] *= alpha[r];
      }
    }
    const float ref0 = mRef[0] == -INFINITY ? 0.f : mRef[0];
    const float ref1 = mRef[1] == -INFINITY ? 0.f : mRef[1];
    float s0 = 0.f, s1 = 0.f;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const float p0 = mma::ex2(fmaf(s[4 * j + 0], sl2, -ref0));
      const float p1 = mma::ex2(fmaf(s[4 * j + 1], sl2, -ref0));
      const float p2 = mma::ex2(fmaf(s[4 * j + 2], sl2, -ref1));
      const float p3 = mma::ex2(fmaf(s[4 * j + 3], sl2, -ref1));
      s0 += p0 + p1;
      s1 += p2 + p3;
      pn[j / 2][(j & 1) * 2 + 0] = mma::cvtPack<T>(p0, p1);
      pn[j / 2][(j & 1) * 2 + 1] = mma::cvtPack<T>(p2, p3);
    }
    lsum[0] += s0;
    lsum[1] += s1;
  };
  // Tile it - 1's K and V no longer read by this warp; P(it) becomes pa.
  auto retire = [&](int64_t it) {
    __syncwarp();
    if (lane == 0)
      hopper::mbarArrive(&emptyB[(it - 1) % ST]);
  };
  auto takeP = [&] {
#pragma unroll
    for (int kk = 0; kk < BN / 16; ++kk)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        pa[kk][e] = pn[kk][e];
  };
  // Turns: 0 issues S(0); it in [1, tiles) issues S(it) and PV(it - 1);
  // the last issues PV(tiles - 1). Every wgmma and wait sits on a
  // block-uniform path (else ptxas serializes them: C7514/C7518); a
  // warpgroup whose rows all precede a tile computes it anyway (all masked:
  // P = 0, no rescale).
  if (wg == 1)
    hopper::namedArrive(4, 256); // warpgroup 0 issues first
  waitFull(0);
  hopper::namedBar(4 + wg, 256);
  issueS(0);
  hopper::namedArrive(4 + (1 - wg), 256);
  hopper::wait0();
  softmax(0);
  takeP();
  for (int64_t it = 1; it < tiles; ++it) {
    waitFull(it);
    hopper::namedBar(4 + wg, 256);
    scaleO();
    issueS(it);
    issuePV(it - 1);
    hopper::namedArrive(4 + (1 - wg), 256);
    hopper::wait1(); // S(it) done, PV(it - 1) may run on
    softmax(it);
    hopper::wait0();
#pragma unroll
    for (int h = 0; h < D / 64; ++h)
      hopper::fenceRegs(o[h]);
    hopper::fenceRegs(pa); // read by PV(it - 1) until here
    retire(it);
    takeP();
  }
  hopper::namedBar(4 + wg, 256);
  scaleO();
  issuePV(tiles - 1);
  if (wg == 0) // the arrivals match the other's turns
    hopper::namedArrive(5, 256);
  hopper::wait0();
#pragma unroll
  for (int h = 0; h < D / 64; ++h)
    hopper::fenceRegs(o[h]);
  retire(tiles);
  T *out = static_cast<T *>(a.out);
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = lsum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = 1.f / l;
    const int64_t row = rowW + g + 8 * r;
    if (row >= a.nQ)
      continue;
    T *dst = out + row * a.outLd + headW * D + 2 * t4;
#pragma unroll
    for (int h = 0; h < D / 64; ++h)
#pragma unroll
      for (int j = 0; j < 8; ++j)
        *reinterpret_cast<uint32_t *>(dst + h * 64 + j * 8) = mma::cvtPack<T>(
            o[h][4 * j + 2 * r] * inv, o[h][4 * j + 2 * r + 1] * inv);
    // sBad: written by the producer before its full[] arrivals, which this
    // thread has waited for.
    if (*static_cast<const volatile int *>(sBadP)) // zeroed values seen
      for (int e = 0; e < D / 4; ++e) {
        const int col = e / 2 * 8 + e % 2; // from dst's 2t
        nonfinite::poison<T>(
            dst + col, static_cast<const T *>(a.v) + kvh * D + 2 * t4 + col,
            a.kvLd, (firstPos + 1) / BN * BN, a.qStart + row);
      }
  }
#endif
}

// Pipeline: stage s = tile % ST; full[s] completes when the producer's 128
// threads have landed (and, on tiles with masked keys, scanned) the tile,
// empty[s] when the 8 consumer warps are done with it. Use k = tile / ST of
// a stage waits for phase parity k & 1.
template <typename T, int D, int BN, int ST>
__global__ void __launch_bounds__(384, 1)
    attnHopperKernel(AttnArgs a, GqaGeom gm) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using L = HopperLayout<D, BN, ST>;
  constexpr int kVec = D / 8;
  static_assert(BN == 128, "S is one wgmma m64n128k16 per k16 step");
  static_assert((BN * kVec) % 128 == 0, "tile loader: whole passes");
  extern __shared__ __align__(16) unsigned char smemRaw[];
  unsigned char *Qs = reinterpret_cast<unsigned char *>(
      (reinterpret_cast<uintptr_t>(smemRaw) + 1023) & ~uintptr_t(1023));
  unsigned char *KVs = Qs + L::kQBytes; // stage s: K, then V
  __shared__ uint64_t fullB[ST], emptyB[ST];
  __shared__ int sBad; // a tile with masked keys had a non-finite V
  const int tid = threadIdx.x;
  if (tid == 0) {
    sBad = 0;
    for (int s = 0; s < ST; ++s) {
      hopper::mbarInit(&fullB[s], 128);
      hopper::mbarInit(&emptyB[s], 8);
    }
  }
  __syncthreads();

  const int hg = blockIdx.x % gm.headGroups;
  const int64_t pt = gm.posTiles - 1 - blockIdx.x / gm.headGroups;
  const int kvh = hg / (gm.group / gm.gb);
  const int head0 = hg * gm.gb;
  const int64_t q0 = pt * gm.bqPos;
  const int64_t kvLen = a.qStart + a.nQ;
  const int64_t firstPos = a.qStart + q0;
  const int64_t lastQ = (q0 + gm.bqPos < a.nQ ? q0 + gm.bqPos : a.nQ) - 1;
  const int64_t tiles = (a.qStart + lastQ + 1 + BN - 1) / BN;

  // Warp-uniform in ptxas's eyes (through the shuffle): a wgmma on a path it
  // cannot prove uniform is serialized (C7518).
  if (__shfl_sync(0xffffffffu, tid / 128, 0) == 0) {
    // ------------------------------------------------------------ producer
    asm volatile("setmaxnreg.dec.sync.aligned.u32 24;\n");
    const T *kBase = static_cast<const T *>(a.k) + kvh * D;
    const T *vBase = static_cast<const T *>(a.v) + kvh * D;
    // Once the thread's copies of tile u landed: on a tile with masked keys,
    // non-finite V zeroed (0 * inf would reach rows that never see the key;
    // the outputs are poisoned after the store); then full[u % ST].
    auto publish = [&](int64_t u) {
      const int s = int(u % ST);
      if (u * BN + BN - 1 > firstPos) { // block-uniform
        hopper::namedBar(1, 128);       // every copy of the tile landed
        constexpr uint32_t ex =
            std::is_same_v<T, greta_half> ? 0x7C00u : 0x7F80u;
        uint32_t *w = reinterpret_cast<uint32_t *>(KVs + s * 2 * L::kTileBytes +
                                                   L::kTileBytes);
        for (int i = tid; i < BN * D / 2; i += 128) {
          const uint32_t x = w[i];
          const bool lo = (x & ex) == ex, hi = ((x >> 16) & ex) == ex;
          if (lo || hi) {
            w[i] = x & ((lo ? 0u : 0xFFFFu) | (hi ? 0u : 0xFFFF0000u));
            sBad = 1;
          }
        }
      }
      hopper::fenceProxyAsync();
      hopper::mbarArrive(&fullB[s]);
    };
    for (int64_t t = 0; t < tiles; ++t) {
      const int s = int(t % ST);
      if (t >= ST)
        hopper::mbarWait(&emptyB[s], uint32_t((t / ST - 1) & 1));
      unsigned char *Ks = KVs + s * 2 * L::kTileBytes;
      unsigned char *Vs = Ks + L::kTileBytes;
#pragma unroll 1 // the producer's 24 registers; it has time to spare
      for (int i = 0; i < BN * kVec / 128; ++i) {
        const int e = tid + i * 128, r = e / kVec, c = e % kVec;
        const int64_t key = t * BN + r;
        const bool in = key < kvLen;
        const int64_t off = in ? key * a.kvLd + c * 8 : 0;
        const uint32_t so = hopper::swz(r, c, BN);
        mma::cpAsync16(Ks + so, kBase + off, in ? 16 : 0);
        mma::cpAsync16(Vs + so, vBase + off, in ? 16 : 0);
      }
      mma::cpAsyncCommit();
      if (t >= 1) {
        mma::cpAsyncWait<1>();
        publish(t - 1);
      }
    }
    mma::cpAsyncWait<0>();
    if (tiles >= 1)
      publish(tiles - 1);
  } else {
    // ------------------------------------------------------------ consumers
    asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n");
    attnHopperConsume<T, D, BN, ST>(a, gm, Qs, KVs, fullB, emptyB, &sBad,
                                    tid - 128, head0, kvh, q0, firstPos, tiles);
  }
#endif
}
#endif // GRETA_HAVE_WMMA

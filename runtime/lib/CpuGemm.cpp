//===- CpuGemm.cpp - Batch-invariant matrix products ------------*- C++ -*-===//
//
// Why not OpenBLAS (docs/RUNTIME.md, "Batch invariance"): its blocking, its
// edge kernels and its thread split depend on the number of rows, so a row's
// bits changed with the number of rows per call (q_pre_rope L0 differed
// between --chunk 128 and a whole prefill); and on small-K products
// (attention's K = 32) its thread hand-off and the zero-fill of C cost more
// than the products. These tiles are register-blocked outer products over
// packed panels of B, one FMA chain per element: on a CPU with AVX-512 they
// run at about twice OpenBLAS's Haswell kernels here (PERFORMANCE.md).
//
//===----------------------------------------------------------------------===//
#include "CpuGemm.h"
#include "ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <utility>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GRETA_GEMM_X86 1
#include <immintrin.h>
#endif

namespace greta::rt::cpu {
namespace {

namespace generic {
template <typename T> struct Ops {
  using V = T;
  static constexpr int W = 1;
  static V load(const T *p) { return *p; }
  static void store(T *p, V v) { *p = v; }
  static V set1(T x) { return x; }
  static V zero() { return T(0); }
  static V fma(V a, V b, V c) { return std::fma(a, b, c); }
  static V mul(V a, V b) { return a * b; }
  static void storeFirst(T *p, V v, int n) {
    if (n > 0)
      *p = v;
  }
};
template <typename T> constexpr int kMR = 4;
#include "CpuGemmTiles.inc"
} // namespace generic

#ifdef GRETA_GEMM_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
template <typename T> struct Ops;
template <> struct Ops<float> {
  using V = __m256;
  static constexpr int W = 8;
  static V load(const float *p) { return _mm256_loadu_ps(p); }
  static void store(float *p, V v) { _mm256_storeu_ps(p, v); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V zero() { return _mm256_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static void storeFirst(float *p, V v, int n) {
    alignas(32) float t[W];
    _mm256_store_ps(t, v);
    std::copy(t, t + n, p);
  }
};
template <> struct Ops<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static V load(const double *p) { return _mm256_loadu_pd(p); }
  static void store(double *p, V v) { _mm256_storeu_pd(p, v); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V zero() { return _mm256_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static void storeFirst(double *p, V v, int n) {
    alignas(32) double t[W];
    _mm256_store_pd(t, v);
    std::copy(t, t + n, p);
  }
};
// 6 x 2 accumulators + 2 of B + 1 broadcast = 15 of 16 registers.
template <typename T> constexpr int kMR = 6;
#include "CpuGemmTiles.inc"
} // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
namespace avx512 {
template <typename T> struct Ops;
template <> struct Ops<float> {
  using V = __m512;
  static constexpr int W = 16;
  static V load(const float *p) { return _mm512_loadu_ps(p); }
  static void store(float *p, V v) { _mm512_storeu_ps(p, v); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V zero() { return _mm512_setzero_ps(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static void storeFirst(float *p, V v, int n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
  }
};
template <> struct Ops<double> {
  using V = __m512d;
  static constexpr int W = 8;
  static V load(const double *p) { return _mm512_loadu_pd(p); }
  static void store(double *p, V v) { _mm512_storeu_pd(p, v); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V zero() { return _mm512_setzero_pd(); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static void storeFirst(double *p, V v, int n) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v);
  }
};
// 8 x 2 accumulators of 32 registers: the two FMA pipes stay busy through
// the 4-cycle latency, and broadcasts plus B loads stay under the load ports.
template <typename T> constexpr int kMR = 8;
#include "CpuGemmTiles.inc"
} // namespace avx512
#pragma GCC pop_options
#endif

Isa detectIsa() {
#ifdef GRETA_GEMM_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return Isa::Avx2;
#endif
  return Isa::Generic;
}

std::atomic<int> forcedIsa{-1};

template <typename T> const GemmKernels<T> &kernelsFor(Isa isa) {
  static const GemmKernels<T> gen = generic::kernels<T>();
#ifdef GRETA_GEMM_X86
  static const GemmKernels<T> a2 = avx2::kernels<T>();
  static const GemmKernels<T> a512 = avx512::kernels<T>();
  if (isa == Isa::Avx512)
    return a512;
  if (isa == Isa::Avx2)
    return a2;
#endif
  (void)isa;
  return gen;
}

} // namespace

Isa activeIsa() {
  static const Isa best = detectIsa();
  int forced = forcedIsa.load();
  if (forced < 0)
    return best;
  Isa want = static_cast<Isa>(forced);
  // Only what this CPU runs: Avx512 > Avx2 > Generic.
  return static_cast<int>(want) <= static_cast<int>(best) ? want : Isa::Generic;
}

void setIsa(Isa isa) { forcedIsa.store(static_cast<int>(isa)); }

const char *isaName(Isa isa) {
  switch (isa) {
  case Isa::Avx512:
    return "avx512";
  case Isa::Avx2:
    return "avx2";
  default:
    return "generic";
  }
}

template <typename T> const GemmKernels<T> &gemmKernels() {
  return kernelsFor<T>(activeIsa());
}

template <typename T> T *Scratch<T>::get(size_t n) {
  if (n > n_) {
    size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    p_.reset(static_cast<T *>(std::aligned_alloc(64, bytes)));
    n_ = p_ ? n : 0;
  }
  return p_.get();
}
template <typename T> void Scratch<T>::Free::operator()(T *p) const {
  std::free(p);
}

template <typename T>
void gemmNT(int64_t m, int64_t n, int64_t k, const T *a, int64_t lda,
            const T *b, int64_t ldb, T *c, int64_t ldc, T alpha) {
  if (m <= 0 || n <= 0)
    return;
  if (k <= 0) {
    for (int64_t i = 0; i < m; ++i)
      std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  const GemmKernels<T> &K = gemmKernels<T>();
  const int64_t nr = K.nr, mr = K.mr;
  const int64_t panels = (n + nr - 1) / nr;
  const int64_t panelElems = k * nr;
  // Panels packed together: about 128 KiB, in L2 while a block's rows pass.
  const int64_t group = std::clamp<int64_t>(
      (int64_t(128) << 10) / (panelElems * int64_t(sizeof(T))), 1, panels);
  const int64_t groups = (panels + group - 1) / group;
  const int threads = threadsFor(double(m) * double(n) * double(k));
  // Row blocks only when the panel groups alone cannot feed the threads;
  // each block repacks its panels, so blocks keep >= 64 rows.
  int64_t rowBlocks = 1;
  if (threads > 1 && groups < 4 * threads)
    rowBlocks = std::clamp<int64_t>((4 * threads + groups - 1) / groups, 1,
                                    std::max<int64_t>(1, m / 64));
  int64_t rowsPer = (m + rowBlocks - 1) / rowBlocks;
  rowsPer = (rowsPer + mr - 1) / mr * mr;
  rowBlocks = (m + rowsPer - 1) / rowsPer;
  parallelFor(rowBlocks * groups, threads, [&](int64_t task) {
    static thread_local Scratch<T> scratch;
    const int64_t g = task % groups, rb = task / groups;
    const int64_t p0 = g * group, p1 = std::min(panels, p0 + group);
    T *packed = scratch.get(static_cast<size_t>((p1 - p0) * panelElems));
    if (!packed)
      std::abort(); // out of memory for 128 KiB: nothing sane to return
    for (int64_t p = p0; p < p1; ++p)
      K.packPanel(b + p * nr * ldb, ldb, std::min(nr, n - p * nr), k,
                  packed + (p - p0) * panelElems);
    const int64_t r0 = rb * rowsPer, r1 = std::min(m, r0 + rowsPer);
    for (int64_t i = r0; i < r1; i += mr)
      for (int64_t p = p0; p < p1; ++p)
        K.tileNT[std::min(mr, r1 - i) - 1](
            k, a + i * lda, lda, packed + (p - p0) * panelElems,
            c + i * ldc + p * nr, ldc,
            static_cast<int>(std::min(nr, n - p * nr)), alpha);
  });
}

template const GemmKernels<float> &gemmKernels<float>();
template const GemmKernels<double> &gemmKernels<double>();
template class Scratch<float>;
template class Scratch<double>;
template class Scratch<int64_t>;
template void gemmNT<float>(int64_t, int64_t, int64_t, const float *, int64_t,
                            const float *, int64_t, float *, int64_t, float);
template void gemmNT<double>(int64_t, int64_t, int64_t, const double *, int64_t,
                             const double *, int64_t, double *, int64_t,
                             double);

} // namespace greta::rt::cpu

//===- Kernel.cpp - Per-row numeric comparison, one pass, vectorized -------===//
//
// The hot loop of greta-diff: every row whose hashes differ goes through
// accumulateRow once. All reductions are declared to the compiler with
// `omp simd` (built with -fopenmp-simd, no OpenMP runtime), which lets it
// vectorize the f64 sums without -ffast-math elsewhere.
//
//===----------------------------------------------------------------------===//
#include "greta/diff/Diff.h"
#include "greta/rt/Half.h"

#include <cmath>
#include <cstdint>
#include <cstring>

using namespace greta;
using namespace greta::diff;
using rt::DType;

namespace {

/// The sums over the pairs finite on both sides, and the non-finite
/// positions that differ (NaN vs NaN and equal infinities agree): a NaN or
/// inf shared by both rows must not make them look alike.
template <typename A, typename B>
void accumulateFinite(const A *a, const B *b, int64_t n, RowAccum &acc) {
  for (int64_t i = 0; i < n; ++i) {
    double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (!std::isfinite(x) || !std::isfinite(y)) {
      bool same = x == y || (std::isnan(x) && std::isnan(y));
      acc.nonFiniteDiffer += !same;
      continue;
    }
    double d = y - x, ad = std::fabs(d);
    ++acc.finite;
    acc.sumAbs += ad;
    acc.maxAbs = ad > acc.maxAbs ? ad : acc.maxAbs;
    acc.sumSq += d * d;
    acc.sumA2 += x * x;
    acc.sumB2 += y * y;
    acc.sumAB += x * y;
  }
}

template <typename A, typename B>
__attribute__((always_inline)) inline void
accumulateTyped(const A *__restrict a, const B *__restrict b, int64_t n,
                double atol, double rtol, RowAccum &acc) {
  double sumAbs = 0, maxAbs = 0, sumSq = 0, sumA2 = 0, sumB2 = 0, sumAB = 0;
  int64_t notClose = 0, nanA = 0, nanB = 0, infA = 0, infB = 0;
  const double inf = HUGE_VAL;
#pragma omp simd reduction(+ : sumAbs, sumSq, sumA2, sumB2, sumAB, notClose,  \
                               nanA, nanB, infA, infB) reduction(max : maxAbs)
  for (int64_t i = 0; i < n; ++i) {
    double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    double d = y - x, ad = std::fabs(d);
    bool xNaN = x != x, yNaN = y != y;
    sumAbs += ad;
    maxAbs = ad > maxAbs ? ad : maxAbs; // NaN never wins: counted below.
    sumSq += d * d;
    sumA2 += x * x;
    sumB2 += y * y;
    sumAB += x * y;
    // numpy.isclose(b, a, equal_nan=True): |b - a| <= atol + rtol * |a|;
    // equal values (so equal infinities) and both-NaN are close.
    bool close = (ad <= atol + rtol * std::fabs(x)) | (x == y) | (xNaN & yNaN);
    notClose += !close;
    nanA += xNaN;
    nanB += yNaN;
    infA += std::fabs(x) == inf;
    infB += std::fabs(y) == inf;
  }
  acc.n += n;
  if (nanA | nanB | infA | infB) {
    // A NaN or inf would poison the sums: they are taken again over the
    // finite pairs only. Rare, so the common loop stays lean: masking in
    // it made greta-diff's comparison 2x slower (GCC 12 left it scalar).
    accumulateFinite(a, b, n, acc);
  } else {
    acc.finite += n;
    acc.sumAbs += sumAbs;
    acc.maxAbs = maxAbs > acc.maxAbs ? maxAbs : acc.maxAbs;
    acc.sumSq += sumSq;
    acc.sumA2 += sumA2;
    acc.sumB2 += sumB2;
    acc.sumAB += sumAB;
  }
  acc.notClose += notClose;
  acc.nanA += nanA;
  acc.nanB += nanB;
  acc.infA += infA;
  acc.infB += infB;
}

// The same loop built for AVX-512 (x86-64-v4: 8 doubles a vector), AVX2
// (4) and the baseline ISA, picked at load time: the binary still runs on
// any x86-64 host; the AVX-512 clone is the faster one where it runs
// (docs/PERFORMANCE.md, "greta-diff: read and compare").
#if defined(__x86_64__) && defined(__GNUC__)
#define GRETA_DIFF_CLONES                                                      \
  __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define GRETA_DIFF_CLONES
#endif
GRETA_DIFF_CLONES void accF32F32(const float *a, const float *b, int64_t n,
                                 double atol, double rtol, RowAccum &acc) {
  accumulateTyped(a, b, n, atol, rtol, acc);
}
GRETA_DIFF_CLONES void accF64F64(const double *a, const double *b, int64_t n,
                                 double atol, double rtol, RowAccum &acc) {
  accumulateTyped(a, b, n, atol, rtol, acc);
}
void accAny(const float *a, const float *b, int64_t n, double atol,
            double rtol, RowAccum &acc) {
  accF32F32(a, b, n, atol, rtol, acc);
}
void accAny(const double *a, const double *b, int64_t n, double atol,
            double rtol, RowAccum &acc) {
  accF64F64(a, b, n, atol, rtol, acc);
}
template <typename A, typename B>
void accAny(const A *a, const B *b, int64_t n, double atol, double rtol,
            RowAccum &acc) {
  accumulateTyped(a, b, n, atol, rtol, acc);
}

/// Sum of squares of the finite elements, and their count: one vectorized
/// pass (the scale of every row judged on values).
template <typename T>
__attribute__((always_inline)) inline void
sumSquaresTyped(const T *__restrict x, int64_t n, double &sumSq,
                int64_t &finite) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; ++i) {
    double v = static_cast<double>(x[i]);
    s += v * v;
  }
  if (std::isfinite(s)) { // no NaN or infinity in the row: the common case
    sumSq += s;
    finite += n;
    return;
  }
  s = 0;
  int64_t f = 0;
  const double inf = HUGE_VAL;
#pragma omp simd reduction(+ : s, f)
  for (int64_t i = 0; i < n; ++i) {
    double v = static_cast<double>(x[i]);
    bool ok = std::fabs(v) < inf; // false for NaN and infinities
    s += ok ? v * v : 0.0;
    f += ok;
  }
  sumSq += s;
  finite += f;
}
GRETA_DIFF_CLONES void sumSquares(const float *x, int64_t n, double &sumSq,
                                  int64_t &finite) {
  sumSquaresTyped(x, n, sumSq, finite);
}
GRETA_DIFF_CLONES void sumSquares(const double *x, int64_t n, double &sumSq,
                                  int64_t &finite) {
  sumSquaresTyped(x, n, sumSq, finite);
}

constexpr int64_t kChunk = 1024;

/// Widens `n` elements of a 2-byte type starting at element `off`.
void widen(DType d, const uint8_t *p, int64_t off, int64_t n, float *out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, p + 2 * (off + i), 2);
    out[i] = d == DType::F16 ? rt::halfBitsToFloat(h) : rt::bf16BitsToFloat(h);
  }
}

bool isHalfLike(DType d) { return d == DType::F16 || d == DType::BF16; }

/// Whether `p` may be read as an array of `d` in place. Rows viewed where
/// records.bin's bytes lie (read buffer, file offsets kept mod 64) need not
/// be: an f64 row's values start 4 bytes off an
/// 8-byte boundary (body offset 124 + 8r + 4k), and reading them through a
/// `const double *` is undefined behaviour (UBSan: misaligned load).
bool inPlace(DType d, const uint8_t *p) {
  return !isHalfLike(d) &&
         reinterpret_cast<uintptr_t>(p) % rt::dtypeSize(d) == 0;
}

/// Calls f(aPtr, bPtr, count) on typed views of the two rows, widening
/// f16/bf16 chunk by chunk into stack buffers (no allocation); misaligned
/// f32/f64 rows are copied chunk by chunk into aligned buffers.
template <typename F>
void dispatch(DType da, const uint8_t *a, DType db, const uint8_t *b,
              int64_t n, F &&f) {
  auto asF32 = [](const uint8_t *p) { return reinterpret_cast<const float *>(p); };
  auto asF64 = [](const uint8_t *p) { return reinterpret_cast<const double *>(p); };
  if (inPlace(da, a) && inPlace(db, b)) {
    if (da == DType::F32 && db == DType::F32)
      return f(asF32(a), asF32(b), n);
    if (da == DType::F64 && db == DType::F64)
      return f(asF64(a), asF64(b), n);
    if (da == DType::F32)
      return f(asF32(a), asF64(b), n);
    return f(asF64(a), asF32(b), n);
  }
  float bufA[kChunk], bufB[kChunk];
  double dbufA[kChunk], dbufB[kChunk];
  for (int64_t off = 0; off < n; off += kChunk) {
    int64_t m = std::min(kChunk, n - off);
    // Each side: widened half data, an aligned copy of a misaligned row, or
    // a typed pointer into the row.
    auto run = [&](auto pa) {
      if (isHalfLike(db)) {
        widen(db, b, off, m, bufB);
        f(pa, static_cast<const float *>(bufB), m);
      } else if (!inPlace(db, b) && db == DType::F32) {
        std::memcpy(bufB, b + 4 * off, 4 * m);
        f(pa, static_cast<const float *>(bufB), m);
      } else if (!inPlace(db, b)) {
        std::memcpy(dbufB, b + 8 * off, 8 * m);
        f(pa, static_cast<const double *>(dbufB), m);
      } else if (db == DType::F32) {
        f(pa, asF32(b) + off, m);
      } else {
        f(pa, asF64(b) + off, m);
      }
    };
    if (isHalfLike(da)) {
      widen(da, a, off, m, bufA);
      run(static_cast<const float *>(bufA));
    } else if (!inPlace(da, a) && da == DType::F32) {
      std::memcpy(bufA, a + 4 * off, 4 * m);
      run(static_cast<const float *>(bufA));
    } else if (!inPlace(da, a)) {
      std::memcpy(dbufA, a + 8 * off, 8 * m);
      run(static_cast<const double *>(dbufA));
    } else if (da == DType::F32) {
      run(asF32(a) + off);
    } else {
      run(asF64(a) + off);
    }
  }
}

double roundTo(double x, Precision p) {
  switch (p) {
  case Precision::F64:
    return x;
  case Precision::F32:
    return static_cast<double>(static_cast<float>(x));
  case Precision::F16:
    return rt::roundToHalf(x);
  case Precision::BF16:
    return rt::roundToBF16(x);
  }
  return x;
}

} // namespace

RowAccum greta::diff::accumulateRow(DType da, const uint8_t *a, DType db,
                                    const uint8_t *b, int64_t n, double atol,
                                    double rtol) {
  RowAccum acc;
  dispatch(da, a, db, b, n, [&](const auto *pa, const auto *pb, int64_t m) {
    accAny(pa, pb, m, atol, rtol, acc);
  });
  return acc;
}

double greta::diff::rmseRounded(DType dx, const uint8_t *x, DType dref,
                                const uint8_t *ref, int64_t n,
                                Precision roundToP, int64_t *refOnly) {
  double sumSq = 0;
  int64_t used = 0, onlyRef = 0;
  // Not on the hot path (reference policy only, on differing rows): rounding
  // to half needs the scalar encoder, so this loop stays simple.
  dispatch(dx, x, dref, ref, n, [&](const auto *px, const auto *pr, int64_t m) {
    for (int64_t i = 0; i < m; ++i) {
      double xv = static_cast<double>(px[i]), rv = static_cast<double>(pr[i]);
      bool xFinite = std::isfinite(xv), rFinite = std::isfinite(rv);
      onlyRef += xFinite && !rFinite;
      if (!xFinite || !rFinite)
        continue;
      double d = roundTo(xv, roundToP) - rv;
      sumSq += d * d;
      ++used;
    }
  });
  if (refOnly)
    *refOnly = onlyRef;
  return used ? std::sqrt(sumSq / static_cast<double>(used)) : std::nan("");
}

double greta::diff::rowRms(DType d, const uint8_t *x, int64_t n,
                           int64_t *nonFinite) {
  if (nonFinite)
    *nonFinite = 0;
  if (n == 0)
    return 0;
  double sumSq = 0;
  int64_t finite = 0; // a NaN or inf must not make the whole row's scale NaN
  dispatch(d, x, d, x, n, [&](const auto *px, const auto *, int64_t m) {
    sumSquares(px, m, sumSq, finite);
  });
  if (nonFinite)
    *nonFinite = n - finite;
  return finite ? std::sqrt(sumSq / static_cast<double>(finite)) : 0;
}

Metrics greta::diff::metricsOf(const RowAccum &acc) {
  Metrics m;
  const double undefined = std::nan("");
  m.finite = acc.finite;
  m.nonFiniteDiffer = acc.nonFiniteDiffer;
  if (acc.finite == 0) { // nothing finite on both sides to measure
    m.mae = m.maxAbs = m.rmse = m.relL2 = m.cosine = undefined;
  } else {
    double n = static_cast<double>(acc.finite);
    m.mae = acc.sumAbs / n;
    m.maxAbs = acc.maxAbs;
    m.rmse = std::sqrt(acc.sumSq / n);
    // Relative to BASE; an all-zero BASE row makes any difference infinite.
    m.relL2 = acc.sumA2 > 0 ? std::sqrt(acc.sumSq / acc.sumA2)
                            : (acc.sumSq > 0 ? HUGE_VAL : 0.0);
    double denom = std::sqrt(acc.sumA2) * std::sqrt(acc.sumB2);
    // A zero row has no direction: the angle is undefined, not 0 or 1.
    m.cosine = denom > 0 ? acc.sumAB / denom : undefined;
  }
  m.notClose = acc.notClose;
  m.nanBase = acc.nanA;
  m.nanTest = acc.nanB;
  m.infBase = acc.infA;
  m.infTest = acc.infB;
  return m;
}

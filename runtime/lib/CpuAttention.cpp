//===- CpuAttention.cpp - Causal GQA attention over the KV cache -*- C++
//-*-===//
//
// Per (query head, block of queries): S = scale * Q K^T over the keys the
// block can see, a softmax per row over keys [0, position], O = P V over the
// same keys. Both products are the batch-invariant tiles of CpuGemm.h: the
// keys of each KV head are packed once per call as panels of K^T, and P V
// reads the values in place (or from a padded copy when the head dim is not
// a whole number of panels). A row never reads a score, a probability or a
// value past its own position, so a non-finite later key cannot reach it
// (0 * inf is NaN: masking by a zero probability is not enough).
//
//===----------------------------------------------------------------------===//
#include "CpuAttention.h"
#include "CpuGemm.h"
#include "CpuMath.h"
#include "ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace greta::rt::cpu {
namespace {

constexpr int kLanes = 16;

/// The lanes of a sum in the order the f32 path folds them: pairwise, 8,
/// 4, 2, 1 apart.
template <typename T> T foldSum(T (&sum)[kLanes]) {
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l)
      sum[l] += sum[l + w];
  return sum[0];
}

} // namespace

/// Lane l of the vectors holds keys j = l (mod 16): the max (`x > m ? x :
/// m`, NaN never wins; exact in any order), the exp and the sum run on
/// whole vectors, the tail of the row in a vector padded past n.
GRETA_ISA_CLONES void softmaxRow(float *row, int64_t n) {
  const int64_t full = n / kLanes * kLanes;
  const int rem = static_cast<int>(n - full);
  const float ninf = -std::numeric_limits<float>::infinity();
  Vec16f m = Vec16f{} + ninf, x;
  for (int64_t j = 0; j < full; j += kLanes) {
    std::memcpy(&x, row + j, sizeof x);
    m = x > m ? x : m;
  }
  if (rem) {
    x = Vec16f{} + ninf;
    std::memcpy(&x, row + full, sizeof(float) * rem);
    m = x > m ? x : m;
  }
  float mx = m[0];
  for (int l = 1; l < kLanes; ++l)
    mx = m[l] > mx ? m[l] : mx;
  Vec16f s = Vec16f{};
  for (int64_t j = 0; j < full; j += kLanes) {
    std::memcpy(&x, row + j, sizeof x);
    Vec16f e = fastExpT(x - mx);
    std::memcpy(row + j, &e, sizeof e);
    s += e;
  }
  float sum[kLanes];
  std::memcpy(sum, &s, sizeof sum);
  if (rem) {
    x = Vec16f{};
    std::memcpy(&x, row + full, sizeof(float) * rem);
    Vec16f e = fastExpT(x - mx);
    for (int l = 0; l < rem; ++l) {
      row[full + l] = e[l];
      sum[l] += e[l];
    }
  }
  const float inv = 1.0f / foldSum(sum);
  for (int64_t j = 0; j < full; j += kLanes) {
    std::memcpy(&x, row + j, sizeof x);
    x *= inv;
    std::memcpy(row + j, &x, sizeof x);
  }
  for (int64_t j = full; j < n; ++j)
    row[j] *= inv;
}

/// The f64 reference keeps libm's exp; its sum has the f32 path's lanes.
void softmaxRow(double *row, int64_t n) {
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j)
    mx = row[j] > mx ? row[j] : mx;
  double sum[kLanes] = {};
  for (int64_t j = 0; j < n; ++j) {
    row[j] = std::exp(row[j] - mx);
    sum[j % kLanes] += row[j];
  }
  const double inv = 1.0 / foldSum(sum);
  for (int64_t j = 0; j < n; ++j)
    row[j] *= inv;
}

template <typename T>
void causalAttention(const T *q, int64_t qld, const T *kCache, const T *vCache,
                     int64_t kvDim, int64_t pos0, int64_t rows,
                     int64_t numHeads, int64_t numKvHeads, int64_t headDim,
                     T scale, T *out, int64_t outLd, int64_t window) {
  if (rows <= 0)
    return;
  const GemmKernels<T> &K = gemmKernels<T>();
  const int64_t nr = K.nr, mr = K.mr, d = headDim;
  const int64_t keys = pos0 + rows;
  const int64_t keyPanels = (keys + nr - 1) / nr;
  const int64_t dPanels = (d + nr - 1) / nr;
  const int64_t group = numHeads / numKvHeads;
  // K^T panels per KV head; V in place when its rows hold whole panels.
  const bool vInPlace = d % nr == 0;
  const int64_t vLd = vInPlace ? kvDim : dPanels * nr;
  const int64_t kPackHead = keyPanels * d * nr;
  const int64_t vPackHead = vInPlace ? 0 : keys * vLd;
  static thread_local Scratch<T> kScratch, vScratch;
  T *kPack = kScratch.get(static_cast<size_t>(numKvHeads * kPackHead));
  T *vPack = vInPlace
                 ? nullptr
                 : vScratch.get(static_cast<size_t>(numKvHeads * vPackHead));
  if (!kPack || (!vInPlace && !vPack))
    std::abort(); // no memory for a copy of the cache: nothing sane to do
  int packThreads = threadsFor(double(keys) * double(kvDim) * 4);
  parallelFor(numKvHeads, packThreads, [&](int64_t g) {
    for (int64_t p = 0; p < keyPanels; ++p)
      K.packPanel(kCache + p * nr * kvDim + g * d, kvDim,
                  std::min(nr, keys - p * nr), d,
                  kPack + g * kPackHead + p * d * nr);
    if (!vInPlace)
      for (int64_t j = 0; j < keys; ++j) {
        T *dst = vPack + g * vPackHead + j * vLd;
        std::copy(vCache + j * kvDim + g * d, vCache + j * kvDim + g * d + d,
                  dst);
        std::fill(dst + d, dst + vLd, T(0));
      }
  });

  // Blocks of queries; the latest (heaviest under causality) first.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  const double flops =
      double(rows) * double(pos0 + rows / 2 + 1) * double(d) * 2 * numHeads;
  parallelFor(blocks * numHeads, threadsFor(flops), [&](int64_t task) {
    static thread_local Scratch<T> sScratch;
    static thread_local Scratch<int64_t> endScratch;
    const int64_t h = task % numHeads, b = blocks - 1 - task / numHeads;
    const int64_t g = h / group;
    const int64_t i0 = b * kBlock, bq = std::min(kBlock, rows - i0);
    const int64_t blockKeys = pos0 + i0 + bq; // keys the last row sees
    const int64_t ldS = (blockKeys + nr - 1) / nr * nr;
    T *s = sScratch.get(static_cast<size_t>(mr * ldS)); // one tile's rows
    int64_t *ends = endScratch.get(static_cast<size_t>(bq));
    if (!s || !ends)
      std::abort();
    const T *kg = kPack + g * kPackHead;
    const T *vg = vInPlace ? vCache + g * d : vPack + g * vPackHead;
    for (int64_t r = 0; r < bq; ++r)
      ends[r] = pos0 + i0 + r + 1;
    for (int64_t r = 0; r < bq; r += mr) {
      const int64_t tr = std::min(mr, bq - r);
      // Panels up to the last key this tile's last row sees.
      const int64_t tilePanels = (ends[r + tr - 1] + nr - 1) / nr;
      for (int64_t p = 0; p < tilePanels; ++p)
        K.tileNT[tr - 1](d, q + (i0 + r) * qld + h * d, qld, kg + p * d * nr,
                         s + p * nr, ldS, static_cast<int>(nr), scale);
      for (int64_t i = 0; i < tr; ++i) {
        // Keys [lo, end): a softmax over the window alone (its order fixed
        // by the window's length), exact zeros before it.
        const int64_t end = ends[r + i];
        const int64_t lo = window > 0 ? std::max<int64_t>(0, end - window) : 0;
        std::fill(s + i * ldS, s + i * ldS + lo, T(0));
        softmaxRow(s + i * ldS + lo, end - lo);
      }
      for (int64_t dp = 0; dp < dPanels; ++dp)
        K.tileNN[tr - 1](s, ldS, ends + r, vg + dp * nr, vLd,
                         out + (i0 + r) * outLd + h * d + dp * nr, outLd,
                         static_cast<int>(std::min(nr, d - dp * nr)));
    }
  });
}

template void causalAttention<float>(const float *, int64_t, const float *,
                                     const float *, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, int64_t, float, float *,
                                     int64_t, int64_t);
template void causalAttention<double>(const double *, int64_t, const double *,
                                      const double *, int64_t, int64_t, int64_t,
                                      int64_t, int64_t, int64_t, double,
                                      double *, int64_t, int64_t);

} // namespace greta::rt::cpu

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
#include <limits>

namespace greta::rt::cpu {
namespace {

constexpr int kLanes = 16;

template <typename T, typename Exp>
inline void softmaxRowImpl(T *row, int64_t n, Exp exp) {
  T mx = -std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < n; ++j)
    mx = row[j] > mx ? row[j] : mx;
  T sum[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      T e = exp(row[j + l] - mx);
      row[j + l] = e;
      sum[l] += e;
    }
  for (int l = 0; j + l < n; ++l) {
    T e = exp(row[j + l] - mx);
    row[j + l] = e;
    sum[l] += e;
  }
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int l = 0; l < w; ++l)
      sum[l] += sum[l + w];
  T inv = T(1) / sum[0];
  for (int64_t i = 0; i < n; ++i)
    row[i] *= inv;
}

} // namespace

GRETA_ISA_CLONES void softmaxRow(float *row, int64_t n) {
  softmaxRowImpl(row, n, [](float x) { return fastExp(x); });
}
/// The f64 reference keeps libm's exp.
void softmaxRow(double *row, int64_t n) {
  softmaxRowImpl(row, n, [](double x) { return std::exp(x); });
}

template <typename T>
void causalAttention(const T *q, int64_t qld, const T *kCache, const T *vCache,
                     int64_t kvDim, int64_t pos0, int64_t rows,
                     int64_t numHeads, int64_t numKvHeads, int64_t headDim,
                     T scale, T *out, int64_t outLd) {
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
      const int tr = static_cast<int>(std::min(mr, bq - r));
      // Panels up to the last key this tile's last row sees.
      const int64_t tilePanels = (ends[r + tr - 1] + nr - 1) / nr;
      for (int64_t p = 0; p < tilePanels; ++p)
        K.tileNT(tr, d, q + (i0 + r) * qld + h * d, qld, kg + p * d * nr,
                 s + p * nr, ldS, static_cast<int>(nr), scale);
      for (int64_t i = 0; i < tr; ++i)
        softmaxRow(s + i * ldS, ends[r + i]);
      for (int64_t dp = 0; dp < dPanels; ++dp)
        K.tileNN(tr, s, ldS, ends + r, vg + dp * nr, vLd,
                 out + (i0 + r) * outLd + h * d + dp * nr, outLd,
                 static_cast<int>(std::min(nr, d - dp * nr)));
    }
  });
}

template void causalAttention<float>(const float *, int64_t, const float *,
                                     const float *, int64_t, int64_t, int64_t,
                                     int64_t, int64_t, int64_t, float, float *,
                                     int64_t);
template void causalAttention<double>(const double *, int64_t, const double *,
                                      const double *, int64_t, int64_t, int64_t,
                                      int64_t, int64_t, int64_t, double,
                                      double *, int64_t);

} // namespace greta::rt::cpu

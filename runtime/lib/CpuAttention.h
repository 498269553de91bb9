//===- CpuAttention.h - Causal GQA attention over the KV cache --*- C++ -*-===//
#ifndef GRETA_RT_CPUATTENTION_H
#define GRETA_RT_CPUATTENTION_H

#include <cstdint>

namespace greta::rt::cpu {

/// Softmax of row[0, n) in place, in an order fixed by n alone: the sum runs
/// in 16 lanes (lane = index mod 16) folded pairwise.
void softmaxRow(float *row, int64_t n);
void softmaxRow(double *row, int64_t n);

/// Causal GQA attention of `rows` queries at positions pos0, pos0 + 1, ...
/// over the cached keys/values [0, pos0 + rows) (rows of kvDim = numKvHeads
/// * headDim): out[i, h] = softmax(scale * q[i, h] . K^T over keys <= pos0 +
/// i) . V. Row i depends on its own query and the keys up to its position
/// alone: never on the other rows of the call, the thread split, or any
/// value of a later key. A sliding `window` > 0 limits row i to the keys
/// (position - window, position], as Mistral, Qwen2 and Phi-3 do.
template <typename T>
void causalAttention(const T *q, int64_t qld, const T *kCache, const T *vCache,
                     int64_t kvDim, int64_t pos0, int64_t rows,
                     int64_t numHeads, int64_t numKvHeads, int64_t headDim,
                     T scale, T *out, int64_t outLd, int64_t window = 0);

} // namespace greta::rt::cpu

#endif

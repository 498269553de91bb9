//===- CpuKernels.h - The CPU kernels of the Llama ops ----------*- C++ -*-===//
//
// Internal to runtime/lib. Defined in CpuKernels.cpp for f32 and f64; the C
// ABI (CpuEntryPoints.cpp) calls them with the compiled model's memref
// descriptors. A bad argument is reported through the current Session.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_CPUKERNELS_H
#define GRETA_RT_CPUKERNELS_H

#include "greta/rt/CInterface.h"

#include <cstdint>

namespace greta::rt::cpu {

template <typename T>
void embedding(MemRef<T, 2> *table, MemRef<int64_t, 1> *ids, MemRef<T, 2> *out);
template <typename T>
void rmsNorm(MemRef<T, 2> *in, MemRef<T, 1> *weight, double eps,
             MemRef<T, 2> *out);
/// `bias` may be null.
template <typename T>
void linear(MemRef<T, 2> *in, MemRef<T, 2> *weight, MemRef<T, 1> *bias,
            MemRef<T, 2> *out);
template <typename T>
void rope(MemRef<T, 2> *in, MemRef<int64_t, 1> *positions, double theta,
          int64_t headDim, MemRef<T, 2> *out);
/// `window` 0: full causal attention; > 0: sliding window.
template <typename T>
void attention(MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,
               MemRef<int64_t, 1> *positions, int64_t numHeads,
               int64_t numKvHeads, int64_t headDim, double scale,
               int64_t cacheSlot, int64_t window, MemRef<T, 2> *out);
template <typename T>
void swiglu(MemRef<T, 2> *gate, MemRef<T, 2> *up, MemRef<T, 2> *out);
template <typename T>
void add(MemRef<T, 2> *lhs, MemRef<T, 2> *rhs, MemRef<T, 2> *out);
template <typename T>
void roundKernel(MemRef<T, 2> *in, int64_t kind, MemRef<T, 2> *out);
template <typename T>
void injectFault(MemRef<T, 2> *in, MemRef<int64_t, 1> *positions,
                 int64_t fromPosition, int64_t kind, double magnitude,
                 MemRef<T, 2> *out);
} // namespace greta::rt::cpu

#endif // GRETA_RT_CPUKERNELS_H

//===- CpuKernels.cpp - The CPU kernels of the Llama ops --------*- C++ -*-===//
//
// Hand-written because these are the reference semantics GRETA compares
// against (HF transformers' Llama, op by op, in the same order of rounding),
// and attention must use the session's KV cache, which no library offers.
// Matrix products are CpuGemm.h's, attention is CpuAttention.h's: both
// batch-invariant, as every kernel here is (a row's bits never depend on the
// other rows of the call). Every kernel is a template instantiated for f32
// and f64; a bad argument is reported through the current Session, never a
// crash.
//
//===----------------------------------------------------------------------===//
#include "CpuAttention.h"
#include "CpuGemm.h"
#include "CpuKernels.h"
#include "CpuMath.h"
#include "CpuViews.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Half.h"
#include "greta/rt/Session.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

using namespace greta::rt;
using namespace greta::rt::cpu;

namespace greta::rt::cpu {

template <typename T>
void embedding(MemRef<T, 2> *table, MemRef<int64_t, 1> *ids,
               MemRef<T, 2> *out) {
  const char *k = "embedding";
  Mat<T> tb, o;
  int64_t *id, n, st;
  if (!view(table, k, "table", tb) || !view(out, k, "out", o) ||
      !view1(ids, k, "ids", id, n, st))
    return;
  if (n != o.rows || tb.cols != o.cols) {
    report("embedding: " + std::to_string(n) + " ids for " +
           std::to_string(o.rows) + " output rows, or hidden " +
           std::to_string(tb.cols) + " vs " + std::to_string(o.cols));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    int64_t t = id[i * st];
    if (t < 0 || t >= tb.rows) {
      report("embedding: token id " + std::to_string(t) + " at row " +
             std::to_string(i) + " is outside the vocabulary (" +
             std::to_string(tb.rows) + " tokens)");
      zero(o);
      return;
    }
    std::memcpy(o.row(i), tb.row(t), sizeof(T) * o.cols);
  }
}

template <typename T>
void rmsNorm(MemRef<T, 2> *in, MemRef<T, 1> *weight, double eps,
             MemRef<T, 2> *out) {
  const char *k = "rms_norm";
  Mat<T> x, o;
  T *w;
  int64_t n, ws;
  if (!view(in, k, "in", x) || !view(out, k, "out", o) ||
      !view1(weight, k, "weight", w, n, ws) || !sameShape(x, o, k))
    return;
  if (n != x.cols) {
    report("rms_norm: weight has " + std::to_string(n) + " elements, rows " +
           std::to_string(x.cols));
    return;
  }
  for (int64_t i = 0; i < x.rows; ++i) {
    const T *xr = x.row(i);
    T *orow = o.row(i);
    T r = inverseRms(xr, x.cols, eps); // HF: x.pow(2).mean(-1)
    for (int64_t j = 0; j < x.cols; ++j)
      orow[j] = w[j * ws] * (xr[j] * r);
  }
}

template <typename T>
void linear(MemRef<T, 2> *in, MemRef<T, 2> *weight, MemRef<T, 1> *bias,
            MemRef<T, 2> *out) {
  const char *k = bias ? "linear_bias" : "linear";
  Mat<T> x, w, o;
  if (!view(in, k, "in", x) || !view(weight, k, "weight", w) ||
      !view(out, k, "out", o))
    return;
  if (x.cols != w.cols || o.rows != x.rows || o.cols != w.rows) {
    report(std::string(k) + ": in [" + std::to_string(x.rows) + ", " +
           std::to_string(x.cols) + "] . weight^T [" + std::to_string(w.cols) +
           ", " + std::to_string(w.rows) + "] does not give out [" +
           std::to_string(o.rows) + ", " + std::to_string(o.cols) + "]");
    return;
  }
  if (o.rows == 0 || o.cols == 0)
    return;
  if (x.cols == 0) {
    zero(o);
  } else {
    cpu::gemmNT<T>(x.rows, w.rows, x.cols, x.p, x.ld, w.p, w.ld, o.p, o.ld);
  }
  if (bias) {
    T *b;
    int64_t n, bs;
    if (!view1(bias, k, "bias", b, n, bs))
      return;
    if (n != o.cols) {
      report("linear_bias: bias has " + std::to_string(n) + " elements for " +
             std::to_string(o.cols) + " outputs");
      return;
    }
    for (int64_t i = 0; i < o.rows; ++i)
      for (int64_t j = 0; j < o.cols; ++j)
        o.row(i)[j] += b[j * bs];
  }
}

template <typename T>
void rope(MemRef<T, 2> *in, MemRef<int64_t, 1> *positions, double theta,
          int64_t headDim, MemRef<T, 2> *out) {
  Mat<T> x, o;
  std::vector<int64_t> pos;
  if (!ropeArgs("rope", in, positions, headDim, out, x, o, pos))
    return;
  // HF: inv_freq = 1 / base ** (arange(0, d, 2).float() / d), all in the
  // compute dtype; angle = pos * inv_freq rounded to it; then cos/sin.
  std::vector<T> invFreq(headDim / 2);
  for (int64_t i = 0; i < headDim / 2; ++i)
    invFreq[i] =
        T(1) / std::pow(static_cast<T>(theta),
                        static_cast<T>(2 * i) / static_cast<T>(headDim));
  rotateRows(x, o, pos, invFreq, headDim, T(1));
}

template <typename T>
void attention(MemRef<T, 2> *qm, MemRef<T, 2> *km, MemRef<T, 2> *vm,
               MemRef<int64_t, 1> *positions, int64_t numHeads,
               int64_t numKvHeads, int64_t headDim, double scale,
               int64_t cacheSlot, int64_t window, MemRef<T, 2> *outm) {
  const char *kn = "attention";
  Mat<T> q, k, v, o;
  std::vector<int64_t> pos;
  if (!view(qm, kn, "q", q) || !view(km, kn, "k", k) || !view(vm, kn, "v", v) ||
      !view(outm, kn, "out", o) || !sameShape(q, o, kn) ||
      !sameShape(k, v, kn) || !readPositions<T>(positions, q.rows, kn, pos))
    return;
  if (numHeads <= 0 || numKvHeads <= 0 || headDim <= 0 ||
      numHeads % numKvHeads || q.cols != numHeads * headDim ||
      k.cols != numKvHeads * headDim || k.rows != q.rows) {
    report("attention: heads " + std::to_string(numHeads) + "/" +
           std::to_string(numKvHeads) + " x dim " + std::to_string(headDim) +
           " do not fit q [" + std::to_string(q.rows) + ", " +
           std::to_string(q.cols) + "] and k [" + std::to_string(k.rows) +
           ", " + std::to_string(k.cols) + "]");
    return;
  }
  Session *session = Session::current();
  if (!session) {
    report("attention: no current session (the KV cache lives there)");
    zero(o);
    return;
  }
  int64_t rows = q.rows, kvDim = k.cols;
  if (rows == 0)
    return;
  // This call's rows must continue (or rewrite) the cached prefix without a
  // gap, in ascending order: a gap would attend to keys never computed.
  Session::KVSlot &slot = session->kvSlot(cacheSlot);
  if (slot.kvDim != 0 && slot.kvDim != kvDim) {
    report("attention: KV slot " + std::to_string(cacheSlot) +
           " holds rows of " + std::to_string(slot.kvDim) + ", this call " +
           std::to_string(kvDim));
    zero(o);
    return;
  }
  for (int64_t i = 0; i < rows; ++i)
    if (pos[i] != pos[0] + i || pos[0] > slot.filled) {
      report("attention: positions must be contiguous and continue the KV "
             "cache (slot " +
             std::to_string(cacheSlot) + " holds [0, " +
             std::to_string(slot.filled) + "), row " + std::to_string(i) +
             " has position " + std::to_string(pos[i]) + ")");
      zero(o);
      return;
    }
  slot.kvDim = kvDim;
  int64_t end = pos[0] + rows;
  size_t need = static_cast<size_t>(end * kvDim) * sizeof(T);
  if (slot.k.size() < need) {
    size_t cap = std::max(need, slot.k.size() * 2);
    slot.k.resize(cap);
    slot.v.resize(cap);
  }
  T *kc = reinterpret_cast<T *>(slot.k.data());
  T *vc = reinterpret_cast<T *>(slot.v.data());
  for (int64_t i = 0; i < rows; ++i) {
    std::memcpy(kc + pos[i] * kvDim, k.row(i), sizeof(T) * kvDim);
    std::memcpy(vc + pos[i] * kvDim, v.row(i), sizeof(T) * kvDim);
  }
  const Session::KVFault &fault = session->kvFault();
  bool faulty =
      fault.layer == cacheSlot && pos[0] > 0 && pos[0] >= fault.fromPosition;
  if (faulty && fault.kind == Session::KVFault::Stale)
    std::memcpy(kc + pos[0] * kvDim, kc + (pos[0] - 1) * kvDim,
                sizeof(T) * kvDim);
  slot.filled = std::max(slot.filled, end);
  DType dt = sizeof(T) == 8 ? DType::F64 : DType::F32;
  session->traceCacheWrites(cacheSlot, dt, kc, vc, kvDim, pos[0], rows);
  if (faulty && fault.kind == Session::KVFault::Overwrite)
    std::memcpy(kc + (pos[0] - 1) * kvDim, kc + pos[0] * kvDim,
                sizeof(T) * kvDim);
  session->traceCacheReads(cacheSlot, dt, kc, vc, kvDim);

  cpu::causalAttention<T>(q.p, q.ld, kc, vc, kvDim, pos[0], rows, numHeads,
                          numKvHeads, headDim, static_cast<T>(scale), o.p,
                          o.ld, window);
}

namespace {
/// out = silu(g) * u, silu(g) = g / (1 + exp(-g)) as torch computes it.
/// In vectors of 16 (the compiler's loop vectorizer left fastExp scalar),
/// the tail one by one: the same operations per element either way.
GRETA_ISA_CLONES void swigluRow(const float *g, const float *u, float *out,
                                int64_t n) {
  using cpu::Vec16f;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    Vec16f gv, uv;
    std::memcpy(&gv, g + j, sizeof gv);
    std::memcpy(&uv, u + j, sizeof uv);
    Vec16f o = (gv / (1.0f + cpu::fastExpT(-gv))) * uv;
    std::memcpy(out + j, &o, sizeof o);
  }
  for (; j < n; ++j)
    out[j] = (g[j] / (1.0f + cpu::fastExp(-g[j]))) * u[j];
}
void swigluRow(const double *g, const double *u, double *out, int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    out[j] = (g[j] / (1.0 + std::exp(-g[j]))) * u[j];
}
} // namespace

template <typename T>
void swiglu(MemRef<T, 2> *gm, MemRef<T, 2> *um, MemRef<T, 2> *outm) {
  const char *k = "swiglu";
  Mat<T> g, u, o;
  if (!view(gm, k, "gate", g) || !view(um, k, "up", u) ||
      !view(outm, k, "out", o) || !sameShape(g, u, k) || !sameShape(g, o, k))
    return;
  for (int64_t i = 0; i < g.rows; ++i)
    swigluRow(g.row(i), u.row(i), o.row(i), g.cols);
}

template <typename T>
void add(MemRef<T, 2> *lm, MemRef<T, 2> *rm, MemRef<T, 2> *outm) {
  const char *k = "add";
  Mat<T> l, r, o;
  if (!view(lm, k, "lhs", l) || !view(rm, k, "rhs", r) ||
      !view(outm, k, "out", o) || !sameShape(l, r, k) || !sameShape(l, o, k))
    return;
  for (int64_t i = 0; i < l.rows; ++i) {
    const T *a = l.row(i), *b = r.row(i);
    T *c = o.row(i);
    for (int64_t j = 0; j < l.cols; ++j)
      c[j] = a[j] + b[j];
  }
}

template <typename T>
void roundKernel(MemRef<T, 2> *in, int64_t kind, MemRef<T, 2> *outm) {
  const char *k = "round";
  Mat<T> x, o;
  if (!view(in, k, "in", x) || !view(outm, k, "out", o) || !sameShape(x, o, k))
    return;
  if (kind != 0 && kind != 1) {
    report("round: unknown kind " + std::to_string(kind) +
           " (0 = f16, 1 = bf16)");
    return;
  }
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < x.cols; ++j) {
      double v = x.row(i)[j];
      o.row(i)[j] = static_cast<T>(kind == 0 ? roundToHalf(v) : roundToBF16(v));
    }
}

template <typename T>
void injectFault(MemRef<T, 2> *in, MemRef<int64_t, 1> *positions,
                 int64_t fromPosition, int64_t kind, double magnitude,
                 MemRef<T, 2> *outm) {
  const char *k = "inject_fault";
  Mat<T> x, o;
  std::vector<int64_t> pos;
  if (!view(in, k, "in", x) || !view(outm, k, "out", o) ||
      !sameShape(x, o, k) || !readPositions<T>(positions, x.rows, k, pos))
    return;
  using Bits = std::conditional_t<std::is_same_v<T, float>, uint32_t, uint64_t>;
  int64_t bit = static_cast<int64_t>(magnitude);
  if (kind < 0 || kind > 2 ||
      (kind == 2 && (bit < 0 || bit >= static_cast<int64_t>(8 * sizeof(T))))) {
    report("inject_fault: bad kind " + std::to_string(kind) + " or bit index " +
           std::to_string(bit));
    return;
  }
  for (int64_t i = 0; i < x.rows; ++i) {
    const T *xr = x.row(i);
    T *orow = o.row(i);
    bool hit = pos[i] >= fromPosition;
    for (int64_t j = 0; j < x.cols; ++j) {
      T val = xr[j];
      if (hit) {
        if (kind == 0) {
          val = static_cast<T>(val * magnitude);
        } else if (kind == 1) {
          val = static_cast<T>(val + magnitude);
        } else {
          Bits b;
          std::memcpy(&b, &val, sizeof b);
          b ^= Bits(1) << bit;
          std::memcpy(&val, &b, sizeof b);
        }
      }
      orow[j] = val;
    }
  }
}

} // namespace greta::rt::cpu

// The entry points (CpuEntryPoints.cpp) call these for f32 and f64.
#define GRETA_INSTANTIATE_KERNELS(T)                                           \
  template void embedding<T>(MemRef<T, 2> *, MemRef<int64_t, 1> *,             \
                             MemRef<T, 2> *);                                  \
  template void rmsNorm<T>(MemRef<T, 2> *, MemRef<T, 1> *, double,             \
                           MemRef<T, 2> *);                                    \
  template void linear<T>(MemRef<T, 2> *, MemRef<T, 2> *, MemRef<T, 1> *,      \
                          MemRef<T, 2> *);                                     \
  template void rope<T>(MemRef<T, 2> *, MemRef<int64_t, 1> *, double, int64_t, \
                        MemRef<T, 2> *);                                       \
  template void attention<T>(MemRef<T, 2> *, MemRef<T, 2> *, MemRef<T, 2> *,  \
                             MemRef<int64_t, 1> *, int64_t, int64_t, int64_t,  \
                             double, int64_t, int64_t, MemRef<T, 2> *);        \
  template void swiglu<T>(MemRef<T, 2> *, MemRef<T, 2> *, MemRef<T, 2> *);     \
  template void add<T>(MemRef<T, 2> *, MemRef<T, 2> *, MemRef<T, 2> *);        \
  template void roundKernel<T>(MemRef<T, 2> *, int64_t, MemRef<T, 2> *);       \
  template void injectFault<T>(MemRef<T, 2> *, MemRef<int64_t, 1> *, int64_t,  \
                               int64_t, double, MemRef<T, 2> *);
namespace greta::rt::cpu {
GRETA_INSTANTIATE_KERNELS(float)
GRETA_INSTANTIATE_KERNELS(double)
} // namespace greta::rt::cpu

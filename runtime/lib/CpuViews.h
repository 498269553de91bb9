//===- CpuViews.h - Argument checks shared by the CPU kernels ---*- C++ -*-===//
//
// Internal to runtime/lib. The kernels receive MLIR memref descriptors
// (CInterface.h); these views check them and report a bad argument through
// the current Session (never a crash). CpuKernels.cpp (the Llama ops) and
// CpuFamilyKernels.cpp (the ops the other families add) share them, and
// RoPE's rotation.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_CPUVIEWS_H
#define GRETA_RT_CPUVIEWS_H

#include "greta/rt/CInterface.h"
#include "greta/rt/Session.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

namespace greta::rt::cpu {

inline void report(const std::string &msg) {
  if (Session *s = Session::current())
    s->setError(msg);
  else
    std::fprintf(stderr, "greta runtime: %s (no session)\n", msg.c_str());
}

template <typename T> constexpr const char *suffix() {
  return std::is_same_v<T, float> ? "f32" : "f64";
}

/// A row-major matrix view of a 2-D memref; rows may be strided, the
/// innermost stride must be 1 (what bufferization produces).
template <typename T> struct Mat {
  T *p = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
  T *row(int64_t i) const { return p + i * ld; }
};

template <typename T>
bool view(MemRef<T, 2> *m, const char *kernel, const char *arg, Mat<T> &out) {
  if (!m) {
    report(std::string(kernel) + ": null memref for '" + arg + "'");
    return false;
  }
  out.rows = m->sizes[0];
  out.cols = m->sizes[1];
  if (out.rows < 0 || out.cols < 0) {
    report(std::string(kernel) + ": negative size in '" + arg + "'");
    return false;
  }
  if (m->strides[1] != 1 && out.cols > 1) {
    report(std::string(kernel) + ": '" + arg + "' has innermost stride " +
           std::to_string(m->strides[1]) + " (only 1 is supported)");
    return false;
  }
  out.p = m->data + m->offset;
  out.ld = out.rows > 1 ? m->strides[0] : std::max<int64_t>(out.cols, 1);
  if (out.ld < out.cols && out.rows > 1) {
    report(std::string(kernel) + ": '" + arg + "' rows overlap (stride " +
           std::to_string(out.ld) + " < " + std::to_string(out.cols) + ")");
    return false;
  }
  return true;
}

template <typename T>
bool view1(MemRef<T, 1> *m, const char *kernel, const char *arg, T *&p,
           int64_t &n, int64_t &stride) {
  if (!m) {
    report(std::string(kernel) + ": null memref for '" + arg + "'");
    return false;
  }
  p = m->data + m->offset;
  n = m->sizes[0];
  stride = m->strides[0];
  return true;
}

template <typename T>
bool sameShape(const Mat<T> &a, const Mat<T> &b, const char *kernel) {
  if (a.rows == b.rows && a.cols == b.cols)
    return true;
  report(std::string(kernel) + ": shape mismatch [" + std::to_string(a.rows) +
         ", " + std::to_string(a.cols) + "] vs [" + std::to_string(b.rows) +
         ", " + std::to_string(b.cols) + "]");
  return false;
}

template <typename T> void zero(const Mat<T> &m) {
  for (int64_t i = 0; i < m.rows; ++i)
    std::fill(m.row(i), m.row(i) + m.cols, T(0));
}

/// 1 / sqrt(mean(x^2) + eps) of a row, as HF's RMSNorms compute it: the
/// mean in the compute dtype, the sum accumulated in double (torch sums
/// pairwise; both are within an ulp).
template <typename T> T inverseRms(const T *x, int64_t n, double eps) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j)
    sum += static_cast<double>(x[j]) * static_cast<double>(x[j]);
  T var = static_cast<T>(sum / static_cast<double>(n));
  return T(1) / std::sqrt(var + static_cast<T>(eps));
}

template <typename T>
bool readPositions(MemRef<int64_t, 1> *positions, int64_t rows,
                   const char *kernel, std::vector<int64_t> &out) {
  int64_t *p, n, st;
  if (!view1(positions, kernel, "positions", p, n, st))
    return false;
  if (n != rows) {
    report(std::string(kernel) + ": " + std::to_string(n) + " positions for " +
           std::to_string(rows) + " rows");
    return false;
  }
  out.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    out[i] = p[i * st];
    if (out[i] < 0) {
      report(std::string(kernel) + ": negative position " +
             std::to_string(out[i]) + " at row " + std::to_string(i));
      return false;
    }
  }
  return true;
}

/// RoPE's arguments: in and out of one shape, one position per row, an even
/// head_dim dividing the row.
template <typename T>
bool ropeArgs(const char *k, MemRef<T, 2> *in, MemRef<int64_t, 1> *positions,
              int64_t headDim, MemRef<T, 2> *out, Mat<T> &x, Mat<T> &o,
              std::vector<int64_t> &pos) {
  if (!view(in, k, "in", x) || !view(out, k, "out", o) || !sameShape(x, o, k) ||
      !readPositions<T>(positions, x.rows, k, pos))
    return false;
  if (headDim <= 0 || headDim % 2 || x.cols % headDim) {
    report(std::string(k) + ": head dim " + std::to_string(headDim) +
           " must be even and divide the row size " + std::to_string(x.cols));
    return false;
  }
  return true;
}

/// Rotate-half RoPE of every head of every row: angle = pos * invFreq[i]
/// in T, cos and sin in T times `factor` (HF's attention_scaling; 1 is
/// exact), then x*cos + rotate_half(x)*sin.
template <typename T>
void rotateRows(const Mat<T> &x, const Mat<T> &o,
                const std::vector<int64_t> &pos, const std::vector<T> &invFreq,
                int64_t headDim, T factor) {
  int64_t half = headDim / 2, heads = x.cols / headDim;
  std::vector<T> c(half), s(half), tmp(headDim);
  for (int64_t r = 0; r < x.rows; ++r) {
    for (int64_t i = 0; i < half; ++i) {
      T angle = static_cast<T>(pos[r]) * invFreq[i];
      c[i] = std::cos(angle) * factor;
      s[i] = std::sin(angle) * factor;
    }
    for (int64_t h = 0; h < heads; ++h) {
      const T *xi = x.row(r) + h * headDim;
      // Through a copy: `out` may alias `in`.
      std::copy(xi, xi + headDim, tmp.begin());
      T *oi = o.row(r) + h * headDim;
      for (int64_t i = 0; i < half; ++i) {
        oi[i] = tmp[i] * c[i] + (-tmp[i + half]) * s[i];
        oi[i + half] = tmp[i + half] * c[i] + tmp[i] * s[i];
      }
    }
  }
}

} // namespace greta::rt::cpu

#endif // GRETA_RT_CPUVIEWS_H

//===- CpuFamilyKernels.cpp - CPU kernels of the other families -*- C++ -*-===//
//
// What Mistral, Qwen, Gemma and Phi-3 add to the Llama kernels of
// CpuKernels.cpp (docs/MODELS.md): RoPE from frequency tables (linear,
// llama3, yarn, longrope) or with a dynamic base (dynamic NTK), RMSNorm by
// (offset + w), GeGLU with PyTorch's tanh GELU, a scale, and the strided
// copy the compiled code calls for slices. Each follows HF's order of
// rounding in the compute dtype T, as the Llama kernels do.
//
//===----------------------------------------------------------------------===//
#include "CpuViews.h"

#include <cmath>

using namespace greta::rt;
using namespace greta::rt::cpu;

namespace {

/// The largest position of the call plus one: HF's seq_len for dynamic NTK
/// and longrope (torch.max(position_ids) + 1).
int64_t sequenceLength(const std::vector<int64_t> &pos) {
  int64_t end = 0;
  for (int64_t p : pos)
    end = std::max(end, p + 1);
  return end;
}

template <typename T>
void ropeTable(MemRef<T, 2> *in, MemRef<int64_t, 1> *positions,
               MemRef<double, 2> *table, int64_t longFrom,
               double attentionFactor, int64_t headDim, MemRef<T, 2> *out) {
  const char *k = "rope_table";
  Mat<T> x, o;
  std::vector<int64_t> pos;
  Mat<double> t;
  if (!ropeArgs(k, in, positions, headDim, out, x, o, pos) ||
      !view(table, k, "table", t))
    return;
  if (t.cols != headDim / 2 || t.rows < 1 || t.rows > 2 ||
      (t.rows == 2) != (longFrom > 0)) {
    report("rope_table: table [" + std::to_string(t.rows) + ", " +
           std::to_string(t.cols) + "] does not fit head_dim " +
           std::to_string(headDim) + " and long_from " +
           std::to_string(longFrom));
    return;
  }
  // longrope: the long factors when the sequence passes the original
  // context, for every row of the call.
  const double *freqs =
      t.rows == 2 && sequenceLength(pos) > longFrom ? t.row(1) : t.row(0);
  std::vector<T> invFreq(freqs, freqs + headDim / 2);
  rotateRows(x, o, pos, invFreq, headDim, static_cast<T>(attentionFactor));
}

template <typename T>
void ropeDynamic(MemRef<T, 2> *in, MemRef<int64_t, 1> *positions, double theta,
                 double factor, int64_t maxPosition, int64_t headDim,
                 MemRef<T, 2> *out) {
  Mat<T> x, o;
  std::vector<int64_t> pos;
  if (!ropeArgs("rope_dynamic", in, positions, headDim, out, x, o, pos))
    return;
  if (maxPosition <= 0 || !(factor > 0) || headDim <= 2) {
    report("rope_dynamic: max_position " + std::to_string(maxPosition) +
           ", factor " + std::to_string(factor) + " and head_dim " +
           std::to_string(headDim) + " must be positive (head_dim > 2)");
    return;
  }
  // HF's _compute_dynamic_ntk_parameters with seq_len = max(L, m).
  double len = static_cast<double>(std::max(sequenceLength(pos), maxPosition));
  double d = static_cast<double>(headDim);
  double base = theta * std::pow(factor * len / double(maxPosition) -
                                     (factor - 1),
                                 d / (d - 2));
  std::vector<T> invFreq(headDim / 2);
  for (int64_t i = 0; i < headDim / 2; ++i)
    invFreq[i] = static_cast<T>(1.0 / std::pow(base, double(2 * i) / d));
  rotateRows(x, o, pos, invFreq, headDim, T(1));
}

template <typename T>
void rmsNormOffset(MemRef<T, 2> *in, MemRef<T, 1> *weight, double eps,
                   double offset, MemRef<T, 2> *out) {
  const char *k = "rms_norm_offset";
  Mat<T> x, o;
  T *w;
  int64_t n, ws;
  if (!view(in, k, "in", x) || !view(out, k, "out", o) ||
      !view1(weight, k, "weight", w, n, ws) || !sameShape(x, o, k))
    return;
  if (n != x.cols) {
    report("rms_norm_offset: weight has " + std::to_string(n) +
           " elements, rows " + std::to_string(x.cols));
    return;
  }
  T off = static_cast<T>(offset);
  for (int64_t i = 0; i < x.rows; ++i) {
    const T *xr = x.row(i);
    T *orow = o.row(i);
    // Gemma: x * rsqrt(mean(x^2) + eps) * (1 + w).
    T r = inverseRms(xr, x.cols, eps);
    for (int64_t j = 0; j < x.cols; ++j)
      orow[j] = (xr[j] * r) * (off + w[j * ws]);
  }
}

template <typename T>
void geglu(MemRef<T, 2> *gm, MemRef<T, 2> *um, MemRef<T, 2> *outm) {
  const char *k = "geglu";
  Mat<T> g, u, o;
  if (!view(gm, k, "gate", g) || !view(um, k, "up", u) ||
      !view(outm, k, "out", o) || !sameShape(g, u, k) || !sameShape(g, o, k))
    return;
  // PyTorch's GELU(approximate='tanh'): kBeta = sqrt(2) * 2/sqrt(pi) / 2.
  const T kBeta = static_cast<T>(M_SQRT2 * M_2_SQRTPI * 0.5);
  const T kKappa = static_cast<T>(0.044715);
  for (int64_t i = 0; i < g.rows; ++i) {
    const T *gr = g.row(i), *ur = u.row(i);
    T *orow = o.row(i);
    for (int64_t j = 0; j < g.cols; ++j) {
      T x = gr[j];
      T inner = kBeta * (x + kKappa * (x * x * x));
      orow[j] = (T(0.5) * x * (T(1) + std::tanh(inner))) * ur[j];
    }
  }
}

template <typename T>
void scale(MemRef<T, 2> *in, double factor, MemRef<T, 2> *outm) {
  const char *k = "scale";
  Mat<T> x, o;
  if (!view(in, k, "in", x) || !view(outm, k, "out", o) || !sameShape(x, o, k))
    return;
  T f = static_cast<T>(factor);
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < x.cols; ++j)
      o.row(i)[j] = x.row(i)[j] * f;
}

template <typename T, int N> void copy(MemRef<T, N> *src, MemRef<T, N> *dst) {
  if (!src || !dst) {
    report("copy: null memref");
    return;
  }
  for (int i = 0; i < N; ++i)
    if (src->sizes[i] != dst->sizes[i]) {
      report("copy: shapes differ in dim " + std::to_string(i) + " (" +
             std::to_string(src->sizes[i]) + " vs " +
             std::to_string(dst->sizes[i]) + ")");
      return;
    }
  const T *s = src->data + src->offset;
  T *d = dst->data + dst->offset;
  int64_t rows = N == 2 ? src->sizes[0] : 1, cols = src->sizes[N - 1];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      int64_t so = (N == 2 ? r * src->strides[0] : 0) + c * src->strides[N - 1];
      int64_t dOff =
          (N == 2 ? r * dst->strides[0] : 0) + c * dst->strides[N - 1];
      d[dOff] = s[so];
    }
}

} // namespace

#define GRETA_DEFINE_FAMILY_KERNELS(T, SUFFIX)                                 \
  void _mlir_ciface_greta_cpu_rope_table_##SUFFIX(                             \
      MemRef<T, 2> *in, MemRef<int64_t, 1> *positions,                         \
      MemRef<double, 2> *table, int64_t longFrom, double attentionFactor,      \
      int64_t headDim, MemRef<T, 2> *out) {                                    \
    ropeTable<T>(in, positions, table, longFrom, attentionFactor, headDim,     \
                 out);                                                         \
  }                                                                            \
  void _mlir_ciface_greta_cpu_rope_dynamic_##SUFFIX(                           \
      MemRef<T, 2> *in, MemRef<int64_t, 1> *positions, double theta,           \
      double factor, int64_t maxPosition, int64_t headDim,                     \
      MemRef<T, 2> *out) {                                                     \
    ropeDynamic<T>(in, positions, theta, factor, maxPosition, headDim, out);   \
  }                                                                            \
  void _mlir_ciface_greta_cpu_rms_norm_offset_##SUFFIX(                        \
      MemRef<T, 2> *in, MemRef<T, 1> *weight, double eps, double offset,       \
      MemRef<T, 2> *out) {                                                     \
    rmsNormOffset<T>(in, weight, eps, offset, out);                            \
  }                                                                            \
  void _mlir_ciface_greta_cpu_geglu_##SUFFIX(                                  \
      MemRef<T, 2> *gate, MemRef<T, 2> *up, MemRef<T, 2> *out) {               \
    geglu<T>(gate, up, out);                                                   \
  }                                                                            \
  void _mlir_ciface_greta_cpu_scale_##SUFFIX(MemRef<T, 2> *in, double factor, \
                                             MemRef<T, 2> *out) {              \
    scale<T>(in, factor, out);                                                 \
  }                                                                            \
  void _mlir_ciface_greta_rt_copy_r1_##SUFFIX(MemRef<T, 1> *src,               \
                                              MemRef<T, 1> *dst) {             \
    copy<T, 1>(src, dst);                                                      \
  }                                                                            \
  void _mlir_ciface_greta_rt_copy_r2_##SUFFIX(MemRef<T, 2> *src,               \
                                              MemRef<T, 2> *dst) {             \
    copy<T, 2>(src, dst);                                                      \
  }

GRETA_DEFINE_FAMILY_KERNELS(float, f32)
GRETA_DEFINE_FAMILY_KERNELS(double, f64)

//===- GpuFamilyEntryPoints.cpp - glue of the family kernels --*- C++ -*-===//
//
// The _mlir_ciface_greta_gpu_<op>_<dt> entry points of the ops the other
// dense families add (greta-lower-to-kernels: rms_norm_offset, linear_bias,
// geglu, scale, rope_table, rope_dynamic, attention_window), over the
// kernels of greta/gpu/FamilyKernels.h, with GpuSession.cpp's conventions:
// memref descriptors of device buffers, the session's stream, the first
// failure recorded in the session and every later call a no-op.
//
// RoPE frequency tables reach the device once: rope_table's f64 table is a
// constant of the compiled model (host memory), rope_dynamic's depends on
// the call's length; both become fp32 inv_freq arrays uploaded on first
// use and kept for the process (a few hundred bytes each).
//
//===----------------------------------------------------------------------===//
#include "GpuGlue.h"
#include "greta/gpu/FamilyKernels.h"
#include "greta/gpu/GpuSession.h"
#include "greta/rt/CInterface.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <vector>

using namespace greta;
using namespace greta::gpu;
using namespace greta::gpu::glue;

namespace {
template <typename T> struct Fam;
#define GRETA_FAMILY_KERNELS(TAG, SUF)                                         \
  template <> struct Fam<TAG> {                                                \
    static constexpr auto rms_norm_offset = greta_gpu_rms_norm_offset_##SUF;   \
    static constexpr auto linear_bias = greta_gpu_linear_bias_##SUF;           \
    static constexpr auto geglu = greta_gpu_geglu_##SUF;                       \
    static constexpr auto scale = greta_gpu_scale_##SUF;                       \
    static constexpr auto rope_freqs = greta_gpu_rope_freqs_##SUF;             \
    static constexpr auto kv_append = greta_gpu_kv_append_##SUF;               \
    static constexpr auto attention_window = greta_gpu_attention_window_##SUF; \
  };
GRETA_FAMILY_KERNELS(F16, f16)
GRETA_FAMILY_KERNELS(BF16, bf16)
GRETA_FAMILY_KERNELS(float, f32)
#undef GRETA_FAMILY_KERNELS

/// The largest position of the call plus one (HF's seq_len for dynamic NTK
/// and longrope).
int64_t sequenceLength(const std::vector<int64_t> &pos) {
  int64_t end = 0;
  for (int64_t p : pos)
    end = std::max(end, p + 1);
  return end;
}

/// inv_freq arrays on the device, one per distinct table, for the process
/// (a later session's stream sees the copy: every call ends synchronized).
const float *deviceInvFreq(GpuSession *s, const char *op,
                           const std::vector<float> &invFreq) {
  static std::mutex mu;
  static std::map<std::vector<float>, void *> tables;
  std::lock_guard<std::mutex> lock(mu);
  auto it = tables.find(invFreq);
  if (it != tables.end())
    return static_cast<const float *>(it->second);
  void *d = nullptr;
  size_t bytes = invFreq.size() * sizeof(float);
  if (!check(s, op, greta_gpu_malloc(&d, bytes)))
    return nullptr;
  // On the session's stream, before the kernel that reads it (a plain
  // cudaMemcpy from pageable memory may return before its DMA is done); the
  // pageable source is staged before the call returns.
  cudaError_t e =
      cudaMemcpyAsync(d, invFreq.data(), bytes, cudaMemcpyHostToDevice,
                      static_cast<cudaStream_t>(s->stream()));
  if (e != cudaSuccess) {
    s->setError(std::string(op) +
                ": inv_freq upload: " + cudaGetErrorString(e));
    greta_gpu_free(d);
    return nullptr;
  }
  tables.emplace(invFreq, d);
  return static_cast<const float *>(d);
}

template <typename T>
bool ropeShape(GpuSession *s, const char *op, MemRef<T, 2> *in,
               int64_t headDim) {
  if (headDim <= 0 || headDim % 2 || in->sizes[1] % headDim) {
    s->setError(std::string(op) + ": row of " + std::to_string(in->sizes[1]) +
                " values is not a multiple of the even head_dim " +
                std::to_string(headDim));
    return false;
  }
  return true;
}

template <typename T>
void ropeWith(GpuSession *s, const char *op, MemRef<T, 2> *in,
              MemRef<int64_t, 1> *pos, const std::vector<float> &invFreq,
              double attentionFactor, int64_t headDim, MemRef<T, 2> *out) {
  const float *d = deviceInvFreq(s, op, invFreq);
  if (!d)
    return;
  OpScope scope(s, op);
  check(s, op,
        Fam<T>::rope_freqs(dev(in), ld(in), pos->data + pos->offset,
                           in->sizes[0], in->sizes[1] / headDim, headDim, d,
                           static_cast<float>(attentionFactor), dev(out),
                           ld(out), s->stream()));
}

template <typename T>
void ropeTable(MemRef<T, 2> *in, MemRef<int64_t, 1> *pos,
               MemRef<double, 2> *table, int64_t longFrom,
               double attentionFactor, int64_t headDim, MemRef<T, 2> *out) {
  const char *op = "rope_table";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {in, out}) || !ropeShape(s, op, in, headDim))
    return;
  int64_t rows = table->sizes[0], half = table->sizes[1];
  if (half != headDim / 2 || rows < 1 || rows > 2 ||
      (rows == 2) != (longFrom > 0)) {
    s->setError("rope_table: table [" + std::to_string(rows) + ", " +
                std::to_string(half) + "] does not fit head_dim " +
                std::to_string(headDim) + " and long_from " +
                std::to_string(longFrom));
    return;
  }
  // longrope: the long factors for every row of a call whose sequence
  // passes the original context (the table is host memory: a constant of
  // the compiled model).
  int64_t r = rows == 2 && sequenceLength(s->positions()) > longFrom ? 1 : 0;
  std::vector<float> invFreq(half);
  const double *t = table->data + table->offset;
  for (int64_t i = 0; i < half; ++i)
    invFreq[i] =
        static_cast<float>(t[r * table->strides[0] + i * table->strides[1]]);
  ropeWith(s, op, in, pos, invFreq, attentionFactor, headDim, out);
}

template <typename T>
void ropeDynamic(MemRef<T, 2> *in, MemRef<int64_t, 1> *pos, double theta,
                 double factor, int64_t maxPosition, int64_t headDim,
                 MemRef<T, 2> *out) {
  const char *op = "rope_dynamic";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {in, out}) || !ropeShape(s, op, in, headDim))
    return;
  if (maxPosition <= 0 || !(factor > 0) || headDim <= 2) {
    s->setError("rope_dynamic: max_position " + std::to_string(maxPosition) +
                ", factor " + std::to_string(factor) + " and head_dim " +
                std::to_string(headDim) + " must be positive (head_dim > 2)");
    return;
  }
  // HF's _compute_dynamic_ntk_parameters with seq_len = max(L, m), as the
  // CPU kernel (CpuFamilyKernels.cpp).
  double len = static_cast<double>(
      std::max(sequenceLength(s->positions()), maxPosition));
  double d = static_cast<double>(headDim);
  double base =
      theta *
      std::pow(factor * len / double(maxPosition) - (factor - 1), d / (d - 2));
  std::vector<float> invFreq(headDim / 2);
  for (int64_t i = 0; i < headDim / 2; ++i)
    invFreq[i] = static_cast<float>(1.0 / std::pow(base, double(2 * i) / d));
  ropeWith(s, op, in, pos, invFreq, 1.0, headDim, out);
}

template <typename T>
void rmsNormOffset(MemRef<T, 2> *in, MemRef<T, 1> *w, double eps, double offset,
                   MemRef<T, 2> *out) {
  const char *op = "rms_norm_offset";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {in, out}))
    return;
  if (w->sizes[0] != in->sizes[1] || (w->strides[0] != 1 && w->sizes[0] > 1)) {
    s->setError("rms_norm_offset: weight of " + std::to_string(w->sizes[0]) +
                " elements (stride " + std::to_string(w->strides[0]) +
                ") for rows of " + std::to_string(in->sizes[1]));
    return;
  }
  OpScope scope(s, op);
  check(s, op,
        Fam<T>::rms_norm_offset(dev(in), ld(in), dev(w), in->sizes[0],
                                in->sizes[1], static_cast<float>(eps),
                                static_cast<float>(offset), dev(out), ld(out),
                                s->stream()));
}

template <typename T>
void linearBias(MemRef<T, 2> *in, MemRef<T, 2> *w, MemRef<T, 1> *b,
                MemRef<T, 2> *out) {
  const char *op = "linear_bias";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {in, w, out}))
    return;
  if (b->sizes[0] != w->sizes[0] || (b->strides[0] != 1 && b->sizes[0] > 1)) {
    s->setError("linear_bias: bias of " + std::to_string(b->sizes[0]) +
                " elements (stride " + std::to_string(b->strides[0]) +
                ") for " + std::to_string(w->sizes[0]) + " outputs");
    return;
  }
  OpScope scope(s, op);
  check(s, op,
        Fam<T>::linear_bias(dev(in), ld(in), dev(w), ld(w), dev(b),
                            in->sizes[0], in->sizes[1], w->sizes[0], dev(out),
                            ld(out), s->stream()));
}

template <typename T>
void geglu(MemRef<T, 2> *g, MemRef<T, 2> *u, MemRef<T, 2> *out) {
  const char *op = "geglu";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {g, u, out}))
    return;
  OpScope scope(s, op);
  check(s, op,
        Fam<T>::geglu(dev(g), ld(g), dev(u), ld(u), g->sizes[0], g->sizes[1],
                      dev(out), ld(out), s->stream()));
}

template <typename T>
void scale(MemRef<T, 2> *in, double factor, MemRef<T, 2> *out) {
  const char *op = "scale";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {in, out}))
    return;
  OpScope scope(s, op);
  check(s, op,
        Fam<T>::scale(dev(in), ld(in), in->sizes[0], in->sizes[1], factor,
                      dev(out), ld(out), s->stream()));
}

// As GpuEntryPoints.cpp's attention: this call's k/v rows into the session's
// KV cache slot, then attention over the cache, here with the window.
template <typename T>
void attentionWindow(MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,
                     MemRef<int64_t, 1> *pos, int64_t numHeads,
                     int64_t numKvHeads, int64_t headDim, double scale,
                     int64_t slot, int64_t window, MemRef<T, 2> *out) {
  const char *op = "attention_window";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {q, k, v, out}))
    return;
  if (window <= 0) {
    s->setError("attention_window: window " + std::to_string(window) +
                " must be positive");
    return;
  }
  int64_t rows = q->sizes[0], kvDim = k->sizes[1];
  using C = typename DeviceWord<T>::type;
  GpuSession::KVSlot *kv =
      appendToCache(s, op, rows, kvDim, slot, [&](auto &kv) {
        return Fam<T>::kv_append(dev(k), ld(k), dev(v), ld(v),
                                 pos->data + pos->offset, rows, kvDim,
                                 s->capacity(), static_cast<C *>(kv.k),
                                 static_cast<C *>(kv.v), kvDim, s->stream());
      });
  if (!kv)
    return;
  OpScope scope(s, op);
  check(s, op,
        Fam<T>::attention_window(dev(q), ld(q), static_cast<const C *>(kv->k),
                                 static_cast<const C *>(kv->v), kvDim, rows,
                                 s->positions().front(), numHeads, numKvHeads,
                                 headDim, static_cast<float>(scale), window,
                                 dev(out), ld(out), s->stream()));
}
} // namespace

#define GRETA_GPU_FAMILY_GLUE(T, SUF)                                          \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_rms_norm_offset_##SUF(           \
      MemRef<T, 2> *i, MemRef<T, 1> *w, double eps, double offset,             \
      MemRef<T, 2> *o) {                                                       \
    rmsNormOffset(i, w, eps, offset, o);                                       \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_linear_bias_##SUF(               \
      MemRef<T, 2> *i, MemRef<T, 2> *w, MemRef<T, 1> *b, MemRef<T, 2> *o) {    \
    linearBias(i, w, b, o);                                                    \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_geglu_##SUF(                     \
      MemRef<T, 2> *g, MemRef<T, 2> *u, MemRef<T, 2> *o) {                     \
    geglu(g, u, o);                                                            \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_scale_##SUF(                     \
      MemRef<T, 2> *i, double factor, MemRef<T, 2> *o) {                       \
    scale(i, factor, o);                                                       \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_rope_table_##SUF(                \
      MemRef<T, 2> *i, MemRef<int64_t, 1> *p, MemRef<double, 2> *table,        \
      int64_t longFrom, double attentionFactor, int64_t hd, MemRef<T, 2> *o) { \
    ropeTable(i, p, table, longFrom, attentionFactor, hd, o);                  \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_rope_dynamic_##SUF(              \
      MemRef<T, 2> *i, MemRef<int64_t, 1> *p, double theta, double factor,     \
      int64_t maxPosition, int64_t hd, MemRef<T, 2> *o) {                      \
    ropeDynamic(i, p, theta, factor, maxPosition, hd, o);                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_attention_window_##SUF(          \
      MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,                       \
      MemRef<int64_t, 1> *p, int64_t nh, int64_t nkv, int64_t hd,              \
      double scale, int64_t slot, int64_t window, MemRef<T, 2> *o) {           \
    attentionWindow(q, k, v, p, nh, nkv, hd, scale, slot, window, o);          \
  }

GRETA_GPU_FAMILY_GLUE(F16, f16)
GRETA_GPU_FAMILY_GLUE(BF16, bf16)
GRETA_GPU_FAMILY_GLUE(float, f32)

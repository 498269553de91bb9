//===- CpuEntryPoints.cpp - The CPU C ABI ------------------------*- C++ -*-===//
//
// The functions programs lowered by greta-lower-to-cpu call
// (_mlir_ciface_greta_cpu_<op>_<dt>, _mlir_ciface_greta_rt_{param,trace}_*):
// the Llama kernels of CpuKernels.cpp, parameters and the trace through the
// current Session. The GPU twin is runtime/gpu/GpuEntryPoints.cpp. Like it
// they have no error channel: a bad argument is reported through the
// Session, never a crash.
//
//===----------------------------------------------------------------------===//
#include "CpuKernels.h"
#include "CpuViews.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Session.h"

#include <string>
#include <type_traits>
#include <vector>

using namespace greta::rt;
using namespace greta::rt::cpu;

namespace {
// A zero-size buffer for unknown parameters: compiled code gets a valid
// descriptor it will not read through, and the session holds the error.
alignas(64) double emptyParam[1] = {0};

template <typename T, int N>
void param(MemRef<T, N> *result, const char *name) {
  if (!result)
    return;
  Session *s = Session::current();
  const int64_t *shape = nullptr;
  const void *p = nullptr;
  if (!s) {
    report(std::string("param '") + (name ? name : "") + "': no session");
  } else if (s->computeDType() !=
             (std::is_same_v<T, float> ? DType::F32 : DType::F64)) {
    report(std::string("param '") + (name ? name : "") + "' requested as " +
           suffix<T>() + " but the session computes in " +
           std::string(dtypeName(s->computeDType())));
  } else if (!(p = s->param(name, N, &shape))) {
    report(std::string("param: the weights have no rank-") + std::to_string(N) +
           " parameter '" + (name ? name : "(null)") +
           "' (not declared to the session)");
  }
  if (!p) {
    result->basePtr = result->data = reinterpret_cast<T *>(emptyParam);
    result->offset = 0;
    for (int i = 0; i < N; ++i)
      result->sizes[i] = 0, result->strides[i] = 1;
    return;
  }
  setDenseDescriptor(result, const_cast<T *>(static_cast<const T *>(p)),
                     shape);
}

template <typename T>
void trace(MemRef<T, 2> *value, int64_t recordId, int64_t payload,
           bool repeat) {
  Session *s = Session::current();
  if (!s)
    return; // Nothing to trace into: tracing is off.
  Mat<T> x;
  if (!value) {
    report("trace: null memref");
    return;
  }
  x.rows = value->sizes[0];
  x.cols = value->sizes[1];
  x.p = value->data + value->offset;
  x.ld = value->strides[0];
  // A patched buffer is no longer the previous trace's bytes.
  if (value->strides[1] == 1 || x.cols <= 1) {
    if (s->applyPatch(recordId,
                      std::is_same_v<T, float> ? DType::F32 : DType::F64, x.p,
                      x.rows, x.cols, x.rows > 1 ? x.ld : x.cols) > 0)
      repeat = false;
    s->trace(recordId, payload,
             std::is_same_v<T, float> ? DType::F32 : DType::F64, x.p, x.rows,
             x.cols, x.rows > 1 ? x.ld : x.cols, repeat);
    return;
  }
  // Hash the row's values as a contiguous row, whatever the layout.
  std::vector<T> tmp(static_cast<size_t>(x.rows * x.cols));
  for (int64_t i = 0; i < x.rows; ++i)
    for (int64_t j = 0; j < x.cols; ++j)
      tmp[i * x.cols + j] = x.p[i * x.ld + j * value->strides[1]];
  s->trace(recordId, payload,
           std::is_same_v<T, float> ? DType::F32 : DType::F64, tmp.data(),
           x.rows, x.cols, x.cols, /*repeat=*/false);
}

} // namespace

#define GRETA_DEFINE_KERNELS(T, SUFFIX)                                        \
  void _mlir_ciface_greta_cpu_embedding_##SUFFIX(                              \
      MemRef<T, 2> *table, MemRef<int64_t, 1> *ids, MemRef<T, 2> *out) {       \
    embedding<T>(table, ids, out);                                             \
  }                                                                            \
  void _mlir_ciface_greta_cpu_rms_norm_##SUFFIX(                               \
      MemRef<T, 2> *in, MemRef<T, 1> *weight, double eps, MemRef<T, 2> *out) { \
    rmsNorm<T>(in, weight, eps, out);                                          \
  }                                                                            \
  void _mlir_ciface_greta_cpu_linear_##SUFFIX(                                 \
      MemRef<T, 2> *in, MemRef<T, 2> *weight, MemRef<T, 2> *out) {             \
    linear<T>(in, weight, nullptr, out);                                       \
  }                                                                            \
  void _mlir_ciface_greta_cpu_linear_bias_##SUFFIX(                            \
      MemRef<T, 2> *in, MemRef<T, 2> *weight, MemRef<T, 1> *bias,              \
      MemRef<T, 2> *out) {                                                     \
    if (!bias) {                                                               \
      report("linear_bias: null bias");                                        \
      return;                                                                  \
    }                                                                          \
    linear<T>(in, weight, bias, out);                                          \
  }                                                                            \
  void _mlir_ciface_greta_cpu_rope_##SUFFIX(                                   \
      MemRef<T, 2> *in, MemRef<int64_t, 1> *positions, double theta,           \
      int64_t headDim, MemRef<T, 2> *out) {                                    \
    rope<T>(in, positions, theta, headDim, out);                               \
  }                                                                            \
  void _mlir_ciface_greta_cpu_attention_##SUFFIX(                              \
      MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,                       \
      MemRef<int64_t, 1> *positions, int64_t numHeads, int64_t numKvHeads,     \
      int64_t headDim, double scale, int64_t cacheSlot, MemRef<T, 2> *out) {   \
    attention<T>(q, k, v, positions, numHeads, numKvHeads, headDim, scale,     \
                 cacheSlot, /*window=*/0, out);                                \
  }                                                                            \
  void _mlir_ciface_greta_cpu_attention_window_##SUFFIX(                       \
      MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,                       \
      MemRef<int64_t, 1> *positions, int64_t numHeads, int64_t numKvHeads,     \
      int64_t headDim, double scale, int64_t cacheSlot, int64_t window,        \
      MemRef<T, 2> *out) {                                                     \
    if (window <= 0)                                                           \
      report("attention_window: window " + std::to_string(window) +           \
             " must be positive");                                             \
    else                                                                       \
      attention<T>(q, k, v, positions, numHeads, numKvHeads, headDim, scale,   \
                   cacheSlot, window, out);                                    \
  }                                                                            \
  void _mlir_ciface_greta_cpu_swiglu_##SUFFIX(                                 \
      MemRef<T, 2> *gate, MemRef<T, 2> *up, MemRef<T, 2> *out) {               \
    swiglu<T>(gate, up, out);                                                  \
  }                                                                            \
  void _mlir_ciface_greta_cpu_add_##SUFFIX(                                    \
      MemRef<T, 2> *lhs, MemRef<T, 2> *rhs, MemRef<T, 2> *out) {               \
    add<T>(lhs, rhs, out);                                                     \
  }                                                                            \
  void _mlir_ciface_greta_cpu_round_##SUFFIX(MemRef<T, 2> *in, int64_t kind,   \
                                             MemRef<T, 2> *out) {              \
    roundKernel<T>(in, kind, out);                                             \
  }                                                                            \
  void _mlir_ciface_greta_cpu_inject_fault_##SUFFIX(                           \
      MemRef<T, 2> *in, MemRef<int64_t, 1> *positions, int64_t fromPosition,   \
      int64_t kind, double magnitude, MemRef<T, 2> *out) {                     \
    injectFault<T>(in, positions, fromPosition, kind, magnitude, out);         \
  }                                                                            \
  void _mlir_ciface_greta_rt_param_r1_##SUFFIX(MemRef<T, 1> *result,           \
                                               const char *name) {             \
    param<T, 1>(result, name);                                                 \
  }                                                                            \
  void _mlir_ciface_greta_rt_param_r2_##SUFFIX(MemRef<T, 2> *result,           \
                                               const char *name) {             \
    param<T, 2>(result, name);                                                 \
  }                                                                            \
  void _mlir_ciface_greta_rt_trace_##SUFFIX(                                   \
      MemRef<T, 2> *value, int64_t recordId, int64_t payload) {                \
    trace<T>(value, recordId, payload, /*repeat=*/false);                      \
  }                                                                            \
  void _mlir_ciface_greta_rt_trace_repeat_##SUFFIX(                            \
      MemRef<T, 2> *value, int64_t recordId, int64_t payload) {                \
    trace<T>(value, recordId, payload, /*repeat=*/true);                       \
  }

GRETA_DEFINE_KERNELS(float, f32)
GRETA_DEFINE_KERNELS(double, f64)

//===- GpuGlue.h - What the C ABI glue files share --------------*- C++ -*-===//
//
// Private to runtime/gpu: the helpers of the _mlir_ciface_greta_gpu_* entry
// points (GpuEntryPoints.cpp, GpuFamilyEntryPoints.cpp, GpuMoE*.cpp): the
// kernels' element types, the live session, status checks, operand layout
// checks, the op profiler's scope, and the KV-cache append that every
// attention variant starts with.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_GPU_GLUE_H
#define GRETA_GPU_GLUE_H

#include "greta/gpu/GpuSession.h"
#include "greta/gpu/Kernels.h"
#include "greta/rt/CInterface.h"

#include <cstdio>
#include <initializer_list>
#include <string>

namespace greta::gpu::glue {
template <typename T, int N> using MemRef = ::greta::rt::MemRef<T, N>;

// f16 and bf16 are both 16-bit words in C: distinct tag types pick the
// kernels.
struct F16 {
  uint16_t bits;
};
struct BF16 {
  uint16_t bits;
};

/// The kernels' element type of a tag (greta_gpu_f16, greta_gpu_bf16,
/// float), and a memref's first element as one.
template <typename T> struct DeviceWord { using type = T; };
template <> struct DeviceWord<F16> { using type = greta_gpu_f16; };
template <> struct DeviceWord<BF16> { using type = greta_gpu_bf16; };
template <typename T, int N>
typename DeviceWord<T>::type *dev(MemRef<T, N> *m) {
  return reinterpret_cast<typename DeviceWord<T>::type *>(m->data + m->offset);
}

template <typename T> int64_t ld(MemRef<T, 2> *m) { return m->strides[0]; }
template <typename T, int N> bool unitInner(MemRef<T, N> *m) {
  return m->strides[N - 1] == 1 || m->sizes[N - 1] <= 1;
}

/// The session, or nullptr when there is none or it already failed.
inline GpuSession *live(const char *fn) {
  GpuSession *s = GpuSession::current();
  if (!s) {
    fprintf(stderr, "greta: %s called without a GPU session\n", fn);
    return nullptr;
  }
  return s->error().empty() ? s : nullptr;
}
/// GRETA_GPU_OP_PROFILE: times the launches made in its lifetime.
struct OpScope {
  GpuSession *s;
  int index;
  OpScope(GpuSession *s, const char *op)
      : s(s), index(s ? s->opBegin(op) : -1) {}
  void end() {
    if (index >= 0)
      s->opEnd(index);
    index = -1;
  }
  ~OpScope() { end(); }
};
inline bool check(GpuSession *s, const char *op, greta_gpu_status st) {
  if (st == GRETA_GPU_OK)
    return true;
  s->setError(std::string(op) + ": " + greta_gpu_status_name(st) + ": " +
              greta_gpu_last_error());
  return false;
}
/// Every 2-D operand must have unit inner stride (rows may be strided: a
/// slice of a fused projection).
template <typename T>
bool rowMajor(GpuSession *s, const char *op,
              std::initializer_list<MemRef<T, 2> *> ms) {
  for (MemRef<T, 2> *m : ms)
    if (!unitInner(m)) {
      s->setError(std::string(op) + ": the innermost stride must be 1");
      return false;
    }
  return true;
}

/// The first half of every attention variant: one query row per position of
/// the call, then this call's k/v rows into the session's KV cache slot by
/// `append(slot)` (a kv_append launch). The slot, or nullptr with the
/// session's error set.
template <typename Append>
GpuSession::KVSlot *appendToCache(GpuSession *s, const char *op, int64_t rows,
                                  int64_t kvDim, int64_t slot, Append append) {
  if (rows != static_cast<int64_t>(s->positions().size()) || rows == 0) {
    s->setError(std::string(op) + ": " + std::to_string(rows) +
                " query rows but the call has " +
                std::to_string(s->positions().size()) + " positions");
    return nullptr;
  }
  GpuSession::KVSlot *kv = s->kvSlot(slot, kvDim);
  if (!kv)
    return nullptr;
  OpScope kvScope(s, "kv_append");
  return check(s, "kv_append", append(*kv)) ? kv : nullptr;
}
} // namespace greta::gpu::glue

#endif // GRETA_GPU_GLUE_H

//===- GpuEntryPoints.cpp - The GPU C ABI glue ------------------*- C++ -*-===//
//
// The functions programs lowered by greta-lower-to-gpu call
// (_mlir_ciface_greta_gpu_<op>_<dt>, greta_gpu_rt_alloc/free): they
// translate MLIR memref descriptors of device buffers into calls of the
// kernel library (runtime/include/greta/gpu/Kernels.h) on the session's
// stream. Like the CPU ABI they have no error channel: the first failure is
// recorded in the session (GpuSession::error), every later glue call
// returns at once, and the runner reports it after the call with the trace
// written so far kept.
//
//===----------------------------------------------------------------------===//
#include "GpuGlue.h"
#include "greta/gpu/GpuSession.h"
#include "greta/gpu/Kernels.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Half.h"
#include "greta/rt/Stages.h"

#include <cstdint>
#include <cstdio>
#include <string>

using namespace greta;
using namespace greta::gpu;
using namespace greta::gpu::glue;

namespace {
template <typename T, int N> T *ptr(MemRef<T, N> *m) {
  return m->data + m->offset;
}

template <typename T> struct Kern;
} // namespace
#define GRETA_KERN_CAST(SUF, CT)                                               \
  namespace {                                                                  \
  template <> struct Kern<CT> {                                                \
    static greta_gpu_status embedding(const CT *t, int64_t v, int64_t h,       \
                                      int64_t tl, const int64_t *ids,          \
                                      int64_t r, CT *o, int64_t ol, void *s) { \
      return greta_gpu_embedding_##SUF((const uint16_t *)t, v, h, tl, ids, r,  \
                                       (uint16_t *)o, ol, s);                  \
    }                                                                          \
    static greta_gpu_status rms_norm(const CT *i, int64_t il, const CT *w,     \
                                     int64_t r, int64_t c, float e, CT *o,     \
                                     int64_t ol, void *s) {                    \
      return greta_gpu_rms_norm_##SUF((const uint16_t *)i, il,                 \
                                      (const uint16_t *)w, r, c, e,            \
                                      (uint16_t *)o, ol, s);                   \
    }                                                                          \
    static greta_gpu_status rms_norm_gather(                                   \
        const CT *i, int64_t il, const CT *w, int64_t r, int64_t c, float e,   \
        CT *o, int64_t ol, const greta_gpu_gather_job *g, int ng, void *gd,    \
        void *s) {                                                             \
      return greta_gpu_rms_norm_gather_##SUF((const uint16_t *)i, il,          \
                                             (const uint16_t *)w, r, c, e,     \
                                             (uint16_t *)o, ol, g, ng, gd, s); \
    }                                                                          \
    static greta_gpu_status linear(const CT *i, int64_t il, const CT *w,       \
                                   int64_t wl, int64_t r, int64_t in,          \
                                   int64_t out, CT *o, int64_t ol, void *s) {  \
      return greta_gpu_linear_##SUF((const uint16_t *)i, il,                   \
                                    (const uint16_t *)w, wl, r, in, out,       \
                                    (uint16_t *)o, ol, s);                     \
    }                                                                          \
    static greta_gpu_status rope(const CT *i, int64_t il, const int64_t *p,    \
                                 int64_t r, int64_t nh, int64_t hd, float th,  \
                                 CT *o, int64_t ol, void *s) {                 \
      return greta_gpu_rope_##SUF((const uint16_t *)i, il, p, r, nh, hd, th,   \
                                  (uint16_t *)o, ol, s);                       \
    }                                                                          \
    static greta_gpu_status kv_append(const CT *k, int64_t kl, const CT *v,    \
                                      int64_t vl, const int64_t *p, int64_t r, \
                                      int64_t kd, int64_t cap, CT *kc,         \
                                      CT *vc, int64_t cl, void *s) {           \
      return greta_gpu_kv_append_##SUF((const uint16_t *)k, kl,                \
                                       (const uint16_t *)v, vl, p, r, kd,      \
                                       cap, (uint16_t *)kc, (uint16_t *)vc,    \
                                       cl, s);                                 \
    }                                                                          \
    static greta_gpu_status attention(const CT *q, int64_t ql, const CT *kc,   \
                                      const CT *vc, int64_t kl, int64_t nq,    \
                                      int64_t qs, int64_t nh, int64_t nkv,     \
                                      int64_t hd, float sc, CT *o, int64_t ol, \
                                      void *s) {                               \
      return greta_gpu_attention_##SUF((const uint16_t *)q, ql,                \
                                       (const uint16_t *)kc,                   \
                                       (const uint16_t *)vc, kl, nq, qs, nh,   \
                                       nkv, hd, sc, (uint16_t *)o, ol, s);     \
    }                                                                          \
    static greta_gpu_status paged_kv_append(                                   \
        const CT *k, int64_t kl, const CT *v, int64_t vl, const int64_t *p,    \
        int64_t r, int64_t kd, const int32_t *t, int64_t bs, CT *kp, CT *vp,   \
        void *s) {                                                             \
      return greta_gpu_paged_kv_append_##SUF(                                  \
          (const uint16_t *)k, kl, (const uint16_t *)v, vl, p, r, kd, t, bs,   \
          (uint16_t *)kp, (uint16_t *)vp, s);                                  \
    }                                                                          \
    static greta_gpu_status paged_gather(const CT *pl, const int32_t *t,       \
                                         int64_t bs, int64_t f, int64_t r,     \
                                         int64_t kd, CT *o, int64_t ol,        \
                                         void *s) {                            \
      return greta_gpu_paged_gather_##SUF((const uint16_t *)pl, t, bs, f, r,   \
                                          kd, (uint16_t *)o, ol, s);           \
    }                                                                          \
    static greta_gpu_status paged_attention(                                   \
        const CT *q, int64_t ql, const CT *kp, const CT *vp, const int32_t *t, \
        int64_t bs, int64_t nq, int64_t qs, int64_t nh, int64_t nkv,           \
        int64_t hd, float sc, CT *o, int64_t ol, void *w, int64_t wb,          \
        void *s) {                                                             \
      return greta_gpu_paged_attention_##SUF(                                  \
          (const uint16_t *)q, ql, (const uint16_t *)kp, (const uint16_t *)vp, \
          t, bs, nq, qs, nh, nkv, hd, sc, (uint16_t *)o, ol, w, wb, s);        \
    }                                                                          \
    static greta_gpu_status swiglu(const CT *g, int64_t gl, const CT *u,       \
                                   int64_t ul, int64_t r, int64_t c, CT *o,    \
                                   int64_t ol, void *s) {                      \
      return greta_gpu_swiglu_##SUF((const uint16_t *)g, gl,                   \
                                    (const uint16_t *)u, ul, r, c,             \
                                    (uint16_t *)o, ol, s);                     \
    }                                                                          \
    static greta_gpu_status add(const CT *a, int64_t al, const CT *b,          \
                                int64_t bl, int64_t r, int64_t c, CT *o,       \
                                int64_t ol, void *s) {                         \
      return greta_gpu_add_##SUF((const uint16_t *)a, al,                      \
                                 (const uint16_t *)b, bl, r, c,                \
                                 (uint16_t *)o, ol, s);                        \
    }                                                                          \
  };                                                                           \
  }
GRETA_KERN_CAST(f16, F16)
GRETA_KERN_CAST(bf16, BF16)
namespace {
template <> struct Kern<float> {
  static constexpr auto embedding = greta_gpu_embedding_f32;
  static constexpr auto rms_norm = greta_gpu_rms_norm_f32;
  static constexpr auto rms_norm_gather = greta_gpu_rms_norm_gather_f32;
  static constexpr auto linear = greta_gpu_linear_f32;
  static constexpr auto rope = greta_gpu_rope_f32;
  static constexpr auto kv_append = greta_gpu_kv_append_f32;
  static constexpr auto attention = greta_gpu_attention_f32;
  static constexpr auto paged_kv_append = greta_gpu_paged_kv_append_f32;
  static constexpr auto paged_gather = greta_gpu_paged_gather_f32;
  static constexpr auto paged_attention = greta_gpu_paged_attention_f32;
  static constexpr auto swiglu = greta_gpu_swiglu_f32;
  static constexpr auto add = greta_gpu_add_f32;
};
template <typename T> constexpr rt::DType dtypeOf();
template <> constexpr rt::DType dtypeOf<F16>() { return rt::DType::F16; }
template <> constexpr rt::DType dtypeOf<BF16>() { return rt::DType::BF16; }
template <> constexpr rt::DType dtypeOf<float>() { return rt::DType::F32; }

template <typename T>
void embedding(MemRef<T, 2> *table, MemRef<int64_t, 1> *ids,
               MemRef<T, 2> *out) {
  GpuSession *s = live("embedding");
  if (!s || !rowMajor(s, "embedding", {table, out}))
    return;
  OpScope scope(s, "embedding");
  check(s, "embedding",
        Kern<T>::embedding(ptr(table), table->sizes[0], table->sizes[1],
                           ld(table), ptr(ids), ids->sizes[0], ptr(out),
                           ld(out), s->stream()));
}
template <typename T>
void rmsNorm(MemRef<T, 2> *in, MemRef<T, 1> *w, double eps,
             MemRef<T, 2> *out) {
  GpuSession *s = live("rms_norm");
  if (!s || !rowMajor(s, "rms_norm", {in, out}))
    return;
  OpScope scope(s, "rms_norm");
  s->flushFinishedLayer();
  void *gatherDst = nullptr;
  if (const auto *g = s->pendingGathers(&gatherDst)) {
    if (check(s, "rms_norm",
              Kern<T>::rms_norm_gather(
                  ptr(in), ld(in), ptr(w), in->sizes[0], in->sizes[1],
                  static_cast<float>(eps), ptr(out), ld(out), g->data(),
                  static_cast<int>(g->size()), gatherDst, s->stream())))
      s->gathersLaunched();
    return;
  }
  check(s, "rms_norm",
        Kern<T>::rms_norm(ptr(in), ld(in), ptr(w), in->sizes[0], in->sizes[1],
                          static_cast<float>(eps), ptr(out), ld(out),
                          s->stream()));
}
template <typename T>
void linear(MemRef<T, 2> *in, MemRef<T, 2> *w, MemRef<T, 2> *out) {
  GpuSession *s = live("linear");
  if (!s || !rowMajor(s, "linear", {in, w, out}))
    return;
  OpScope scope(s, "linear");
  check(s, "linear",
        Kern<T>::linear(ptr(in), ld(in), ptr(w), ld(w), in->sizes[0],
                        in->sizes[1], w->sizes[0], ptr(out), ld(out),
                        s->stream()));
}
template <typename T>
void rope(MemRef<T, 2> *in, MemRef<int64_t, 1> *pos, double theta,
          int64_t headDim, MemRef<T, 2> *out) {
  GpuSession *s = live("rope");
  if (!s || !rowMajor(s, "rope", {in, out}))
    return;
  if (headDim <= 0 || in->sizes[1] % headDim) {
    s->setError("rope: row of " + std::to_string(in->sizes[1]) +
                " values is not a multiple of head_dim " +
                std::to_string(headDim));
    return;
  }
  OpScope scope(s, "rope");
  check(s, "rope",
        Kern<T>::rope(ptr(in), ld(in), ptr(pos), in->sizes[0],
                      in->sizes[1] / headDim, headDim,
                      static_cast<float>(theta), ptr(out), ld(out),
                      s->stream()));
}
/// The k_cache / v_cache records of this call's rows, read back from the
/// pages through the block table (what later calls will read).
template <typename T>
void traceCacheWrites(GpuSession *s, GpuSession::PagedSlot &kv, int64_t layer,
                      int64_t first, int64_t rows) {
  for (auto [stage, pool] : {std::pair{rt::Stage::KCache, kv.k},
                             std::pair{rt::Stage::VCache, kv.v}}) {
    if (!s->traces(stage, layer))
      continue;
    size_t bytes = static_cast<size_t>(rows * kv.kvDim) * sizeof(T);
    T *buf = static_cast<T *>(s->alloc(bytes));
    if (!buf)
      return;
    {
      OpScope scope(s, "paged_gather");
      if (!check(s, "paged_gather",
                 Kern<T>::paged_gather(static_cast<const T *>(pool), kv.dTable,
                                       s->blockSize(), first, rows, kv.kvDim,
                                       buf, kv.kvDim, s->stream())))
        return;
    }
    s->trace(rt::recordId(stage, layer), 0, dtypeOf<T>(), buf, rows,
             kv.kvDim, kv.kvDim);
    s->release(buf); // held by the trace until its batch has run
  }
}

/// A call of a paged run: its rows appended to the pages, then a call
/// starting at position 0 (the prefill) attends over its own k/v with the
/// prefill kernels, any later call (a chunk, a decode step) over the pages
/// with the split-K kernel.
template <typename T>
void pagedAttention(GpuSession *s, MemRef<T, 2> *q, MemRef<T, 2> *k,
                    MemRef<T, 2> *v, MemRef<int64_t, 1> *pos, int64_t numHeads,
                    int64_t numKvHeads, int64_t headDim, double scale,
                    int64_t slot, MemRef<T, 2> *out) {
  int64_t rows = q->sizes[0], kvDim = k->sizes[1];
  if (rows != static_cast<int64_t>(s->positions().size()) || rows == 0) {
    s->setError("attention: " + std::to_string(rows) +
                " query rows but the call has " +
                std::to_string(s->positions().size()) + " positions");
    return;
  }
  int64_t first = s->positions().front();
  GpuSession::PagedSlot *kv = s->pagedSlot(slot, kvDim, first + rows);
  if (!kv)
    return;
  {
    OpScope scope(s, "paged_kv_append");
    if (!check(s, "paged_kv_append",
               Kern<T>::paged_kv_append(
                   ptr(k), ld(k), ptr(v), ld(v), ptr(pos), rows, kvDim,
                   kv->dTable, s->blockSize(), static_cast<T *>(kv->k),
                   static_cast<T *>(kv->v), s->stream())))
      return;
  }
  traceCacheWrites<T>(s, *kv, slot, first, rows);
  s->traceCacheReads(slot, *kv);
  if (!s->error().empty())
    return;
  if (first == 0 && ld(k) == ld(v)) {
    OpScope scope(s, "attention");
    check(s, "attention",
          Kern<T>::attention(ptr(q), ld(q), ptr(k), ptr(v), ld(k), rows, 0,
                             numHeads, numKvHeads, headDim,
                             static_cast<float>(scale), ptr(out), ld(out),
                             s->stream()));
    return;
  }
  int64_t bytes = greta_gpu_paged_attention_scratch_bytes(
      rows, first, numHeads, numKvHeads, headDim);
  void *scratch = s->alloc(static_cast<size_t>(bytes));
  if (!scratch)
    return;
  OpScope scope(s, "paged_attention");
  check(s, "paged_attention",
        Kern<T>::paged_attention(
            ptr(q), ld(q), static_cast<const T *>(kv->k),
            static_cast<const T *>(kv->v), kv->dTable, s->blockSize(), rows,
            first, numHeads, numKvHeads, headDim, static_cast<float>(scale),
            ptr(out), ld(out), scratch, bytes, s->stream()));
  s->release(scratch); // stream-ordered: the next user runs after it
}

template <typename T>
void attention(MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,
               MemRef<int64_t, 1> *pos, int64_t numHeads, int64_t numKvHeads,
               int64_t headDim, double scale, int64_t slot,
               MemRef<T, 2> *out) {
  GpuSession *s = live("attention");
  if (!s || !rowMajor(s, "attention", {q, k, v, out}))
    return;
  if (s->blockSize() > 0)
    return pagedAttention(s, q, k, v, pos, numHeads, numKvHeads, headDim,
                          scale, slot, out);
  int64_t rows = q->sizes[0], kvDim = k->sizes[1];
  GpuSession::KVSlot *kv =
      appendToCache(s, "attention", rows, kvDim, slot, [&](auto &kv) {
        return Kern<T>::kv_append(ptr(k), ld(k), ptr(v), ld(v), ptr(pos), rows,
                                  kvDim, s->capacity(), static_cast<T *>(kv.k),
                                  static_cast<T *>(kv.v), kvDim, s->stream());
      });
  if (!kv)
    return;
  OpScope scope(s, "attention");
  check(s, "attention",
        Kern<T>::attention(ptr(q), ld(q), static_cast<const T *>(kv->k),
                           static_cast<const T *>(kv->v), kvDim, rows,
                           s->positions().front(), numHeads, numKvHeads,
                           headDim, static_cast<float>(scale), ptr(out),
                           ld(out), s->stream()));
}
template <typename T>
void swiglu(MemRef<T, 2> *g, MemRef<T, 2> *u, MemRef<T, 2> *out) {
  GpuSession *s = live("swiglu");
  if (!s || !rowMajor(s, "swiglu", {g, u, out}))
    return;
  OpScope scope(s, "swiglu");
  check(s, "swiglu",
        Kern<T>::swiglu(ptr(g), ld(g), ptr(u), ld(u), g->sizes[0], g->sizes[1],
                        ptr(out), ld(out), s->stream()));
}
template <typename T>
void add(MemRef<T, 2> *a, MemRef<T, 2> *b, MemRef<T, 2> *out) {
  GpuSession *s = live("add");
  if (!s || !rowMajor(s, "add", {a, b, out}))
    return;
  OpScope scope(s, "add");
  check(s, "add",
        Kern<T>::add(ptr(a), ld(a), ptr(b), ld(b), a->sizes[0], a->sizes[1],
                     ptr(out), ld(out), s->stream()));
}
template <typename T, int N>
void param(MemRef<T, N> *result, const char *name) {
  *result = MemRef<T, N>{};
  GpuSession *s = live("param");
  if (!s)
    return;
  const int64_t *shape = nullptr;
  const void *p = s->param(name, N, &shape);
  if (!p) {
    s->setError(std::string("unknown parameter '") + (name ? name : "") +
                "' of rank " + std::to_string(N));
    return;
  }
  rt::setDenseDescriptor(result, static_cast<T *>(const_cast<void *>(p)),
                         shape);
}
template <typename T>
void trace(MemRef<T, 2> *value, int64_t recordId, int64_t payload,
           bool repeat) {
  GpuSession *s = live("trace");
  if (!s)
    return;
  if (!unitInner(value)) {
    s->setError("trace: the innermost stride must be 1");
    return;
  }
  // A patched buffer is no longer the previous trace's bytes.
  if (s->applyPatch(recordId, dtypeOf<T>(), ptr(value), value->sizes[0],
                    value->sizes[1], value->strides[0]) > 0)
    repeat = false;
  s->trace(recordId, payload, dtypeOf<T>(), ptr(value), value->sizes[0],
           value->sizes[1], value->strides[0], repeat);
}
void unsupported(const char *what) {
  if (GpuSession *s = live(what))
    s->setError(std::string(what) +
                " has no GPU kernel (fault injection and f16 emulation are "
                "CPU features)");
}
} // namespace

#define GRETA_GPU_GLUE(T, SUF)                                                 \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_embedding_##SUF(                 \
      MemRef<T, 2> *t, MemRef<int64_t, 1> *ids, MemRef<T, 2> *o) {             \
    embedding(t, ids, o);                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_rms_norm_##SUF(                  \
      MemRef<T, 2> *i, MemRef<T, 1> *w, double eps, MemRef<T, 2> *o) {         \
    rmsNorm(i, w, eps, o);                                                     \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_linear_##SUF(                    \
      MemRef<T, 2> *i, MemRef<T, 2> *w, MemRef<T, 2> *o) {                     \
    linear(i, w, o);                                                           \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_rope_##SUF(                      \
      MemRef<T, 2> *i, MemRef<int64_t, 1> *p, double theta, int64_t hd,        \
      MemRef<T, 2> *o) {                                                       \
    rope(i, p, theta, hd, o);                                                  \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_attention_##SUF(                 \
      MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,                       \
      MemRef<int64_t, 1> *p, int64_t nh, int64_t nkv, int64_t hd,              \
      double scale, int64_t slot, MemRef<T, 2> *o) {                           \
    attention(q, k, v, p, nh, nkv, hd, scale, slot, o);                        \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_swiglu_##SUF(                    \
      MemRef<T, 2> *g, MemRef<T, 2> *u, MemRef<T, 2> *o) {                     \
    swiglu(g, u, o);                                                           \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_add_##SUF(                       \
      MemRef<T, 2> *a, MemRef<T, 2> *b, MemRef<T, 2> *o) {                     \
    add(a, b, o);                                                              \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_round_##SUF(                     \
      MemRef<T, 2> *, int64_t, MemRef<T, 2> *) {                               \
    unsupported("round");                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_inject_fault_##SUF(              \
      MemRef<T, 2> *, MemRef<int64_t, 1> *, int64_t, int64_t, double,          \
      MemRef<T, 2> *) {                                                        \
    unsupported("inject_fault");                                               \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_param_r1_##SUF(                  \
      MemRef<T, 1> *r, const char *name) {                                     \
    param<T, 1>(r, name);                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_param_r2_##SUF(                  \
      MemRef<T, 2> *r, const char *name) {                                     \
    param<T, 2>(r, name);                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_trace_##SUF(                     \
      MemRef<T, 2> *v, int64_t recordId, int64_t payload) {                    \
    trace(v, recordId, payload, /*repeat=*/false);                             \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_trace_repeat_##SUF(              \
      MemRef<T, 2> *v, int64_t recordId, int64_t payload) {                    \
    trace(v, recordId, payload, /*repeat=*/true);                              \
  }

GRETA_GPU_GLUE(F16, f16)
GRETA_GPU_GLUE(BF16, bf16)
GRETA_GPU_GLUE(float, f32)

// The device allocator the lowered program calls for every memref.alloc /
// memref.dealloc (greta-gpu-device-allocator). A failure is recorded in the
// session; the null buffer is never dereferenced (the glue skips every later
// call).
GRETA_RT_EXPORT void *greta_gpu_rt_alloc(int64_t bytes) {
  GpuSession *s = GpuSession::current();
  if (!s) {
    fprintf(stderr, "greta: device allocation without a GPU session\n");
    return nullptr;
  }
  return s->alloc(static_cast<size_t>(bytes));
}
GRETA_RT_EXPORT void *greta_gpu_rt_aligned_alloc(int64_t /*alignment*/,
                                                 int64_t bytes) {
  // cudaMalloc returns 256-byte aligned memory.
  return greta_gpu_rt_alloc(bytes);
}
GRETA_RT_EXPORT void greta_gpu_rt_free(void *ptr) {
  if (GpuSession *s = GpuSession::current())
    s->release(ptr);
}


//===- GpuMoEEntryPoints.cpp - glue of the mixture-of-experts kernels -----===//
//
// The _mlir_ciface_greta_gpu_<op>_<dt> entry points of greta.moe_router,
// greta.moe_accumulate and greta.sigmoid_gate_add (greta-lower-to-kernels
// names them as for the CPU: moe_router, moe_router_fault, moe_accumulate,
// moe_accumulate_first, sigmoid_gate_add, with the CPU's arguments), over
// greta/gpu/MoEKernels.h, with GpuSession.cpp's conventions: memref
// descriptors of device buffers, the session's stream, the first failure
// recorded in the session and every later call a no-op.
//
//===----------------------------------------------------------------------===//
#include "GpuGlue.h"
#include "GpuMoE.h"
#include "greta/gpu/GpuSession.h"
#include "greta/gpu/MoEKernels.h"
#include "greta/rt/CInterface.h"

#include <string>

using namespace greta;
using namespace greta::gpu;
using namespace greta::gpu::glue;

namespace {
template <typename T> struct Moe;
#define GRETA_MOE_KERNELS(TAG, SUF)                                            \
  template <> struct Moe<TAG> {                                                \
    static constexpr auto router = greta_gpu_moe_router_##SUF;                 \
    static constexpr auto accumulate = greta_gpu_moe_accumulate_##SUF;         \
    static constexpr auto sigmoid_gate_add = greta_gpu_sigmoid_gate_add_##SUF; \
  };
GRETA_MOE_KERNELS(F16, f16)
GRETA_MOE_KERNELS(BF16, bf16)
GRETA_MOE_KERNELS(float, f32)
#undef GRETA_MOE_KERNELS

template <typename T>
void router(MemRef<T, 2> *logits, MemRef<int64_t, 1> *pos, int64_t topK,
            int64_t normalize, int64_t experts, int64_t faultFrom,
            MemRef<T, 2> *out) {
  const char *op = pos ? "moe_router_fault" : "moe_router";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {logits, out}))
    return;
  int64_t rows = logits->sizes[0];
  if (out->sizes[0] != rows || out->sizes[1] != 2 * topK ||
      (pos && (experts != logits->sizes[1] || pos->sizes[0] != rows ||
               (pos->strides[0] != 1 && rows > 1)))) {
    s->setError(std::string(op) + ": logits [" + std::to_string(rows) + ", " +
                std::to_string(logits->sizes[1]) + "], top_k " +
                std::to_string(topK) + ", experts " +
                std::to_string(experts) + " do not fit out [" +
                std::to_string(out->sizes[0]) + ", " +
                std::to_string(out->sizes[1]) + "]" +
                (pos ? " and " + std::to_string(pos->sizes[0]) +
                           " contiguous positions"
                     : ""));
    return;
  }
  moe::routingChanged(); // the grouped experts read this selection anew
  OpScope scope(s, op);
  check(s, op,
        Moe<T>::router(dev(logits), ld(logits), rows, logits->sizes[1], topK,
                       normalize != 0 ? 1 : 0,
                       pos ? pos->data + pos->offset : nullptr, faultFrom,
                       dev(out), ld(out), s->stream()));
}

template <typename T>
void accumulate(MemRef<T, 2> *y, MemRef<T, 2> *sel, MemRef<T, 2> *acc,
                int64_t expert, MemRef<T, 2> *out) {
  const char *op = acc ? "moe_accumulate" : "moe_accumulate_first";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {y, sel, out}) ||
      (acc && !rowMajor(s, op, {acc})))
    return;
  int64_t rows = y->sizes[0], cols = y->sizes[1];
  bool fits = sel->sizes[0] == rows && sel->sizes[1] % 2 == 0 &&
              sel->sizes[1] > 0 && out->sizes[0] == rows &&
              out->sizes[1] == cols &&
              (!acc || (acc->sizes[0] == rows && acc->sizes[1] == cols));
  if (!fits) {
    s->setError(std::string(op) + ": expert_out [" + std::to_string(rows) +
                ", " + std::to_string(cols) + "], selection [" +
                std::to_string(sel->sizes[0]) + ", " +
                std::to_string(sel->sizes[1]) +
                "] (k ids, then k weights), out [" +
                std::to_string(out->sizes[0]) + ", " +
                std::to_string(out->sizes[1]) + "] do not fit");
    return;
  }
  OpScope scope(s, op);
  check(s, op,
        Moe<T>::accumulate(dev(y), ld(y), dev(sel), ld(sel), sel->sizes[1] / 2,
                           acc ? dev(acc) : nullptr, acc ? ld(acc) : cols,
                           rows, cols, expert, dev(out), ld(out),
                           s->stream()));
}

template <typename T>
void sigmoidGateAdd(MemRef<T, 2> *x, MemRef<T, 2> *y, MemRef<T, 2> *g,
                    MemRef<T, 2> *out) {
  const char *op = "sigmoid_gate_add";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {x, y, out}))
    return;
  int64_t rows = x->sizes[0], cols = x->sizes[1];
  if (y->sizes[0] != rows || y->sizes[1] != cols || out->sizes[0] != rows ||
      out->sizes[1] != cols || g->sizes[0] != rows || g->sizes[1] != 1) {
    s->setError(std::string(op) + ": x [" + std::to_string(rows) + ", " +
                std::to_string(cols) + "], gate [" +
                std::to_string(g->sizes[0]) + ", " +
                std::to_string(g->sizes[1]) + "] (expected [rows, 1])");
    return;
  }
  OpScope scope(s, op);
  check(s, op,
        Moe<T>::sigmoid_gate_add(dev(x), ld(x), dev(y), ld(y), dev(g),
                                 g->strides[0], rows, cols, dev(out), ld(out),
                                 s->stream()));
}
} // namespace

#define GRETA_GPU_MOE_GLUE(T, SUF)                                             \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_moe_router_##SUF(                \
      MemRef<T, 2> *logits, int64_t topK, int64_t normalize,                   \
      MemRef<T, 2> *out) {                                                     \
    router(logits, nullptr, topK, normalize, logits->sizes[1], 0, out);        \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_moe_router_fault_##SUF(          \
      MemRef<T, 2> *logits, MemRef<int64_t, 1> *positions, int64_t topK,       \
      int64_t normalize, int64_t experts, int64_t fromPosition,                \
      MemRef<T, 2> *out) {                                                     \
    router(logits, positions, topK, normalize, experts, fromPosition, out);    \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_moe_accumulate_##SUF(            \
      MemRef<T, 2> *y, MemRef<T, 2> *sel, MemRef<T, 2> *acc, int64_t expert,   \
      MemRef<T, 2> *out) {                                                     \
    accumulate(y, sel, acc, expert, out);                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_moe_accumulate_first_##SUF(      \
      MemRef<T, 2> *y, MemRef<T, 2> *sel, int64_t expert, MemRef<T, 2> *out) { \
    accumulate<T>(y, sel, nullptr, expert, out);                               \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_sigmoid_gate_add_##SUF(          \
      MemRef<T, 2> *x, MemRef<T, 2> *y, MemRef<T, 2> *gate,                    \
      MemRef<T, 2> *out) {                                                     \
    sigmoidGateAdd(x, y, gate, out);                                           \
  }

GRETA_GPU_MOE_GLUE(F16, f16)
GRETA_GPU_MOE_GLUE(BF16, bf16)
GRETA_GPU_MOE_GLUE(float, f32)

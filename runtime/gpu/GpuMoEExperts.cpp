//===- GpuMoEExperts.cpp - glue of the grouped experts ----------*- C++ -*-===//
//
// _mlir_ciface_greta_gpu_moe_expert_swiglu[_first]_<dt>: one expert of a
// mixture-of-experts layer on the rows routed to it only
// (greta-gpu-fuse-moe-experts): gather those rows, the gate and up GEMMs
// (the cuBLAS linear every dense layer uses), SwiGLU, the down GEMM, then
// out = acc with T(y * w) added on those rows (moe_accumulate's rounding).
//
// The rows of each expert come from the layer's selection, read back to the
// host once per router call (one stream synchronisation per layer: cuBLAS
// needs each expert's row count on the host) and grouped there
// (greta/rt/MoERouting.h); the index arrays and the per-expert scratch are
// device buffers kept for the process and grown as needed (one set: two
// sessions running MoE layers at once on two streams would share the
// scratch; the runners run one session at a time). Nothing is summed across
// rows: the same bits run to run.
//
//===----------------------------------------------------------------------===//
#include "GpuGlue.h"
#include "GpuMoE.h"
#include "greta/gpu/GpuSession.h"
#include "greta/gpu/MoEKernels.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/MoERouting.h"
#include "greta/rt/SelectionIds.h"

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

using namespace greta;
using namespace greta::gpu;
using namespace greta::gpu::glue;

namespace {
std::atomic<uint64_t> gGeneration{1};

template <typename T> struct Ex;
#define GRETA_MOE_EXPERT_KERNELS(TAG, SUF, DT)                                 \
  template <> struct Ex<TAG> {                                                 \
    static constexpr rt::DType dtype = DT;                                     \
    static constexpr auto linear = greta_gpu_linear_##SUF;                     \
    static constexpr auto swiglu = greta_gpu_swiglu_##SUF;                     \
    static constexpr auto gather = greta_gpu_moe_gather_rows_##SUF;            \
    static constexpr auto scatter = greta_gpu_moe_scatter_add_##SUF;           \
  };
GRETA_MOE_EXPERT_KERNELS(F16, f16, rt::DType::F16)
GRETA_MOE_EXPERT_KERNELS(BF16, bf16, rt::DType::BF16)
GRETA_MOE_EXPERT_KERNELS(float, f32, rt::DType::F32)
#undef GRETA_MOE_EXPERT_KERNELS

/// A device buffer for the process, grown (never shrunk) on demand. Growing
/// waits for the stream first: queued kernels may still read the old one.
struct DeviceBuffer {
  void *d = nullptr;
  size_t bytes = 0;
  bool reserve(GpuSession *s, const char *op, size_t need) {
    if (need <= bytes)
      return true;
    if (d) {
      cudaStreamSynchronize(static_cast<cudaStream_t>(s->stream()));
      greta_gpu_free(d);
      d = nullptr;
      bytes = 0;
    }
    size_t grown = need + need / 4 + 256;
    if (!check(s, op, greta_gpu_malloc(&d, grown)))
      return false;
    bytes = grown;
    return true;
  }
};

/// The grouping of the current selection, read once per router call.
struct Plan {
  uint64_t generation = 0;
  const void *selection = nullptr;
  int64_t rows = -1;
  rt::ExpertRows groups;
  std::vector<int32_t> index; // rows then slots, uploaded as one array
  DeviceBuffer dIndex;
  DeviceBuffer scratch;
};
std::mutex gMutex;
Plan gPlan;

template <typename T>
bool readPlan(GpuSession *s, const char *op, MemRef<T, 2> *sel) {
  const void *p = dev(sel);
  int64_t rows = sel->sizes[0], cols = sel->sizes[1];
  uint64_t gen = gGeneration.load();
  if (gPlan.generation == gen && gPlan.selection == p && gPlan.rows == rows)
    return true;
  size_t es = rt::dtypeSize(Ex<T>::dtype);
  std::vector<uint8_t> host(static_cast<size_t>(rows * cols) * es);
  auto stream = static_cast<cudaStream_t>(s->stream());
  cudaError_t e = rows == 0 ? cudaSuccess
                            : cudaMemcpy2DAsync(host.data(), cols * es, p,
                                                ld(sel) * es, cols * es, rows,
                                                cudaMemcpyDeviceToHost, stream);
  if (e == cudaSuccess)
    e = cudaStreamSynchronize(stream);
  if (e != cudaSuccess) {
    s->setError(std::string(op) + ": selection read-back: " +
                cudaGetErrorString(e));
    return false;
  }
  std::vector<int32_t> ids;
  rt::selectionIds(host.data(), Ex<T>::dtype, rows, cols, ids);
  std::string err;
  if (!rt::groupRowsByExpert(ids, rows, cols / 2, gPlan.groups, err)) {
    s->setError(std::string(op) + ": " + err);
    return false;
  }
  gPlan.index = gPlan.groups.rows;
  gPlan.index.insert(gPlan.index.end(), gPlan.groups.slots.begin(),
                     gPlan.groups.slots.end());
  size_t bytes = gPlan.index.size() * sizeof(int32_t);
  if (!gPlan.dIndex.reserve(s, op, bytes))
    return false;
  // The host array stays in gPlan until the next read-back, which
  // synchronizes the stream first: the copy is done by then.
  if (bytes)
    e = cudaMemcpyAsync(gPlan.dIndex.d, gPlan.index.data(), bytes,
                        cudaMemcpyHostToDevice, stream);
  if (e != cudaSuccess) {
    s->setError(std::string(op) + ": routing upload: " +
                cudaGetErrorString(e));
    return false;
  }
  gPlan.generation = gen;
  gPlan.selection = p;
  gPlan.rows = rows;
  return true;
}

template <typename T>
void expertSwiglu(MemRef<T, 2> *x, MemRef<T, 2> *sel, MemRef<T, 2> *acc,
                  MemRef<T, 2> *wg, MemRef<T, 2> *wu, MemRef<T, 2> *wd,
                  int64_t expert, MemRef<T, 2> *out) {
  const char *op = acc ? "moe_expert_swiglu" : "moe_expert_swiglu_first";
  GpuSession *s = live(op);
  if (!s || !rowMajor(s, op, {x, sel, wg, wu, wd, out}) ||
      (acc && !rowMajor(s, op, {acc})))
    return;
  int64_t rows = x->sizes[0], hidden = x->sizes[1], inter = wg->sizes[0];
  bool fits = sel->sizes[0] == rows && sel->sizes[1] > 0 &&
              sel->sizes[1] % 2 == 0 && wg->sizes[1] == hidden &&
              wu->sizes[0] == inter && wu->sizes[1] == hidden &&
              wd->sizes[0] == hidden && wd->sizes[1] == inter &&
              out->sizes[0] == rows && out->sizes[1] == hidden &&
              (!acc || (acc->sizes[0] == rows && acc->sizes[1] == hidden)) &&
              expert >= 0;
  if (!fits) {
    s->setError(std::string(op) + ": x [" + std::to_string(rows) + ", " +
                std::to_string(hidden) + "], selection [" +
                std::to_string(sel->sizes[0]) + ", " +
                std::to_string(sel->sizes[1]) + "], gate [" +
                std::to_string(inter) + ", " + std::to_string(wg->sizes[1]) +
                "], up [" + std::to_string(wu->sizes[0]) + ", " +
                std::to_string(wu->sizes[1]) + "], down [" +
                std::to_string(wd->sizes[0]) + ", " +
                std::to_string(wd->sizes[1]) + "], expert " +
                std::to_string(expert) + " do not fit");
    return;
  }
  std::lock_guard<std::mutex> lock(gMutex);
  if (!readPlan(s, op, sel))
    return;
  int64_t k = sel->sizes[1] / 2, n = gPlan.groups.count(expert);
  using C = typename DeviceWord<T>::type;
  // Scratch: X [n, hidden], G, U, S [n, inter], Y [n, hidden].
  size_t es = sizeof(C);
  size_t need = static_cast<size_t>(n) * (2 * hidden + 3 * inter) * es;
  if (!gPlan.scratch.reserve(s, op, need))
    return;
  auto *X = static_cast<C *>(gPlan.scratch.d);
  C *G = X + n * hidden, *U = G + n * inter, *S = U + n * inter,
    *Y = S + n * inter;
  const int32_t *dRows = static_cast<const int32_t *>(gPlan.dIndex.d);
  int64_t first = n ? gPlan.groups.offsets[expert] : 0;
  const int32_t *eRows = dRows ? dRows + first : nullptr;
  const int32_t *eSlots =
      dRows ? dRows + gPlan.groups.rows.size() + first : nullptr;
  void *st = s->stream();
  OpScope scope(s, op);
  if (n > 0 &&
      !(check(s, op,
              Ex<T>::gather(dev(x), ld(x), eRows, n, hidden, X, hidden, st)) &&
        check(s, op,
              Ex<T>::linear(X, hidden, dev(wg), ld(wg), n, hidden, inter, G,
                            inter, st)) &&
        check(s, op,
              Ex<T>::linear(X, hidden, dev(wu), ld(wu), n, hidden, inter, U,
                            inter, st)) &&
        check(s, op, Ex<T>::swiglu(G, inter, U, inter, n, inter, S, inter, st)) &&
        check(s, op,
              Ex<T>::linear(S, inter, dev(wd), ld(wd), n, inter, hidden, Y,
                            hidden, st))))
    return;
  check(s, op,
        Ex<T>::scatter(Y, hidden, eRows, eSlots, n, dev(sel), ld(sel), k,
                       acc ? dev(acc) : nullptr, acc ? ld(acc) : hidden, rows,
                       hidden, dev(out), ld(out), st));
}
} // namespace

void greta::gpu::moe::routingChanged() { gGeneration.fetch_add(1); }

#define GRETA_GPU_MOE_EXPERT_GLUE(T, SUF)                                      \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_moe_expert_swiglu_##SUF(         \
      MemRef<T, 2> *x, MemRef<T, 2> *sel, MemRef<T, 2> *acc,                   \
      MemRef<T, 2> *wg, MemRef<T, 2> *wu, MemRef<T, 2> *wd, int64_t expert,    \
      MemRef<T, 2> *out) {                                                     \
    expertSwiglu(x, sel, acc, wg, wu, wd, expert, out);                        \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_moe_expert_swiglu_first_##SUF(   \
      MemRef<T, 2> *x, MemRef<T, 2> *sel, MemRef<T, 2> *wg, MemRef<T, 2> *wu,  \
      MemRef<T, 2> *wd, int64_t expert, MemRef<T, 2> *out) {                   \
    expertSwiglu<T>(x, sel, nullptr, wg, wu, wd, expert, out);                 \
  }

GRETA_GPU_MOE_EXPERT_GLUE(F16, f16)
GRETA_GPU_MOE_EXPERT_GLUE(BF16, bf16)
GRETA_GPU_MOE_EXPERT_GLUE(float, f32)

//===- CpuMoEKernels.cpp - Mixture-of-experts CPU kernels -------*- C++ -*-===//
//
// The router (softmax, top-k with ties to the lower expert id, optional
// renormalisation), one expert's weighted add on the rows routed to it, and
// Qwen2-MoE's sigmoid-gated shared expert (docs/MODELS.md). Each row is
// computed on its own, so a row's result does not depend on the other rows
// of the call (batch invariance, docs/RUNTIME.md). The order of rounding
// follows HF's: softmax in the compute dtype, weights divided by their sum,
// expert outputs times their weight added to the running sum in expert-id
// order.
//
//===----------------------------------------------------------------------===//
#include "CpuViews.h"

#include <cmath>
#include <numeric>

using namespace greta::rt;
using namespace greta::rt::cpu;

namespace {

/// Softmax of one row of router logits, then the k largest probabilities in
/// rank order, ties to the lower expert id (a stable sort by descending
/// probability), as [ids..., weights...].
template <typename T>
void routeRow(const T *logits, int64_t experts, int64_t k, bool normalize,
              T *out, std::vector<T> &prob, std::vector<int64_t> &order) {
  T max = logits[0];
  for (int64_t e = 1; e < experts; ++e)
    max = std::max(max, logits[e]);
  double sum = 0;
  for (int64_t e = 0; e < experts; ++e) {
    prob[e] = std::exp(logits[e] - max);
    sum += static_cast<double>(prob[e]);
  }
  T total = static_cast<T>(sum);
  for (int64_t e = 0; e < experts; ++e)
    prob[e] = prob[e] / total;
  std::iota(order.begin(), order.end(), 0);
  // NaN ranks last, so a NaN row still yields k distinct ids.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (std::isnan(prob[b]))
      return !std::isnan(prob[a]);
    return prob[a] > prob[b];
  });
  T kept = 0;
  for (int64_t j = 0; j < k; ++j)
    kept += prob[order[j]];
  for (int64_t j = 0; j < k; ++j) {
    out[j] = static_cast<T>(order[j]);
    out[k + j] = normalize ? prob[order[j]] / kept : prob[order[j]];
  }
}

template <typename T>
bool routerArgs(const char *kn, MemRef<T, 2> *in, int64_t k, MemRef<T, 2> *out,
                Mat<T> &x, Mat<T> &o) {
  if (!view(in, kn, "logits", x) || !view(out, kn, "out", o))
    return false;
  if (k < 1 || k > x.cols || o.cols != 2 * k || o.rows != x.rows) {
    report(std::string(kn) + ": top_k " + std::to_string(k) + " of " +
           std::to_string(x.cols) + " experts does not fit out [" +
           std::to_string(o.rows) + ", " + std::to_string(o.cols) + "]");
    return false;
  }
  return true;
}

template <typename T>
void moeRouter(MemRef<T, 2> *in, int64_t k, int64_t normalize,
               MemRef<T, 2> *out) {
  Mat<T> x, o;
  if (!routerArgs("moe_router", in, k, out, x, o))
    return;
  std::vector<T> prob(x.cols);
  std::vector<int64_t> order(x.cols);
  for (int64_t i = 0; i < x.rows; ++i)
    routeRow(x.row(i), x.cols, k, normalize != 0, o.row(i), prob, order);
}

/// The planted bug (greta-moe-router-fault): from `fromPosition` on, every
/// chosen id is reported one too high (id + 1 mod E), an off-by-one index.
template <typename T>
void moeRouterFault(MemRef<T, 2> *in, MemRef<int64_t, 1> *positions, int64_t k,
                    int64_t normalize, int64_t experts, int64_t fromPosition,
                    MemRef<T, 2> *out) {
  const char *kn = "moe_router_fault";
  Mat<T> x, o;
  std::vector<int64_t> pos;
  if (!routerArgs(kn, in, k, out, x, o) ||
      !readPositions<T>(positions, x.rows, kn, pos))
    return;
  if (experts != x.cols) {
    report(std::string(kn) + ": " + std::to_string(experts) +
           " experts but the logits have " + std::to_string(x.cols));
    return;
  }
  std::vector<T> prob(x.cols);
  std::vector<int64_t> order(x.cols);
  for (int64_t i = 0; i < x.rows; ++i) {
    T *row = o.row(i);
    routeRow(x.row(i), x.cols, k, normalize != 0, row, prob, order);
    if (pos[i] >= fromPosition)
      for (int64_t j = 0; j < k; ++j)
        row[j] = static_cast<T>((static_cast<int64_t>(row[j]) + 1) % experts);
  }
}

/// The weight of `expert` in one selection row, or -1 when it is not
/// chosen. False (reported) when the row holds an id that is not a whole
/// number in [0, 2^24) (a selection written by something else).
template <typename T>
bool weightOf(const T *sel, int64_t k, int64_t expert, T &weight, int64_t row) {
  weight = T(-1);
  for (int64_t j = 0; j < k; ++j) {
    T id = sel[j];
    if (!(id >= 0) || id >= T(1 << 24) || id != std::floor(id)) {
      report("moe_accumulate: selection row " + std::to_string(row) +
             " holds expert id " + std::to_string(double(id)) +
             " (not a whole number)");
      return false;
    }
    if (static_cast<int64_t>(id) == expert)
      weight = sel[k + j];
  }
  return true;
}

/// out = acc + y * w on the rows routed to `expert`, acc elsewhere; without
/// acc (first) the sum starts from zeros, as HF's zeros_like + index_add.
template <typename T>
void moeAccumulate(MemRef<T, 2> *ym, MemRef<T, 2> *selm, MemRef<T, 2> *accm,
                   int64_t expert, MemRef<T, 2> *outm) {
  const char *kn = "moe_accumulate";
  Mat<T> y, sel, acc, o;
  if (!view(ym, kn, "expert_out", y) || !view(selm, kn, "selection", sel) ||
      !view(outm, kn, "out", o) || !sameShape(y, o, kn))
    return;
  if (accm && (!view(accm, kn, "acc", acc) || !sameShape(acc, o, kn)))
    return;
  if (sel.rows != y.rows || sel.cols % 2) {
    report(std::string(kn) + ": selection [" + std::to_string(sel.rows) + ", " +
           std::to_string(sel.cols) + "] does not fit " +
           std::to_string(y.rows) + " rows (k ids, then k weights)");
    return;
  }
  int64_t k = sel.cols / 2;
  for (int64_t i = 0; i < y.rows; ++i) {
    T w;
    if (!weightOf(sel.row(i), k, expert, w, i))
      return;
    const T *yr = y.row(i);
    const T *ar = accm ? acc.row(i) : nullptr;
    T *orow = o.row(i);
    for (int64_t j = 0; j < y.cols; ++j) {
      T a = ar ? ar[j] : T(0);
      orow[j] = w < 0 ? a : a + yr[j] * w;
    }
  }
}

/// x + sigmoid(gate) * y, one gate per row (Qwen2-MoE's shared expert).
template <typename T>
void sigmoidGateAdd(MemRef<T, 2> *xm, MemRef<T, 2> *ym, MemRef<T, 2> *gm,
                    MemRef<T, 2> *outm) {
  const char *kn = "sigmoid_gate_add";
  Mat<T> x, y, g, o;
  if (!view(xm, kn, "x", x) || !view(ym, kn, "y", y) ||
      !view(gm, kn, "gate", g) || !view(outm, kn, "out", o) ||
      !sameShape(x, y, kn) || !sameShape(x, o, kn))
    return;
  if (g.rows != x.rows || g.cols != 1) {
    report(std::string(kn) + ": gate [" + std::to_string(g.rows) + ", " +
           std::to_string(g.cols) + "], expected [" + std::to_string(x.rows) +
           ", 1]");
    return;
  }
  for (int64_t i = 0; i < x.rows; ++i) {
    T s = T(1) / (T(1) + std::exp(-g.row(i)[0]));
    for (int64_t j = 0; j < x.cols; ++j)
      o.row(i)[j] = x.row(i)[j] + s * y.row(i)[j];
  }
}

} // namespace

#define GRETA_DEFINE_MOE_KERNELS(T, SUFFIX)                                    \
  void _mlir_ciface_greta_cpu_moe_router_##SUFFIX(                             \
      MemRef<T, 2> *logits, int64_t topK, int64_t normalize,                   \
      MemRef<T, 2> *out) {                                                     \
    moeRouter<T>(logits, topK, normalize, out);                                \
  }                                                                            \
  void _mlir_ciface_greta_cpu_moe_router_fault_##SUFFIX(                       \
      MemRef<T, 2> *logits, MemRef<int64_t, 1> *positions, int64_t topK,       \
      int64_t normalize, int64_t experts, int64_t fromPosition,                \
      MemRef<T, 2> *out) {                                                     \
    moeRouterFault<T>(logits, positions, topK, normalize, experts,             \
                      fromPosition, out);                                      \
  }                                                                            \
  void _mlir_ciface_greta_cpu_moe_accumulate_##SUFFIX(                         \
      MemRef<T, 2> *expertOut, MemRef<T, 2> *selection, MemRef<T, 2> *acc,     \
      int64_t expert, MemRef<T, 2> *out) {                                     \
    moeAccumulate<T>(expertOut, selection, acc, expert, out);                  \
  }                                                                            \
  void _mlir_ciface_greta_cpu_moe_accumulate_first_##SUFFIX(                   \
      MemRef<T, 2> *expertOut, MemRef<T, 2> *selection, int64_t expert,        \
      MemRef<T, 2> *out) {                                                     \
    moeAccumulate<T>(expertOut, selection, nullptr, expert, out);              \
  }                                                                            \
  void _mlir_ciface_greta_cpu_sigmoid_gate_add_##SUFFIX(                       \
      MemRef<T, 2> *x, MemRef<T, 2> *y, MemRef<T, 2> *gate,                    \
      MemRef<T, 2> *out) {                                                     \
    sigmoidGateAdd<T>(x, y, gate, out);                                        \
  }

GRETA_DEFINE_MOE_KERNELS(float, f32)
GRETA_DEFINE_MOE_KERNELS(double, f64)

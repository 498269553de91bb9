//===- MoEChecks.hip - The mixture-of-experts kernels against references --===//
//
// greta/gpu/MoEKernels.h on f32, f16 and bf16 against host references from
// the values the device read. Router logits are multiples of 1/16 in
// [-2, 2] (exact in every storage type): many exact ties, whose ids must
// follow the CPU's order (lower id first), and no near-ties a rounding
// could flip. k = 1, 2, 8 of 8, 60 and 128 experts, with and without
// renormalisation, and the planted off-by-one; the weighted add with an
// expert no row chose (the result is acc, bit for bit), without acc, and
// with a corrupt id (the device error word); the sigmoid-gated add; two
// runs of each give the same bytes.
//
//===----------------------------------------------------------------------===//
#include "GpuKernelCheck.h"
#include "greta/gpu/MoEKernels.h"
#include "greta/rt/MoERouting.h"

#include <algorithm>
#include <numeric>

namespace gpucheck {
namespace {

bool sameBytes(const HostT &a, const HostT &b) { return a.bytes == b.bytes; }

// The CPU kernel's routeRow in double: softmax, a stable sort by descending
// probability (ties to the lower id), the top k, renormalised.
void routeRef(const double *x, int64_t E, int64_t k, bool normalize,
              std::vector<int64_t> &ids, std::vector<double> &w) {
  double max = *std::max_element(x, x + E), sum = 0;
  std::vector<double> p(E);
  for (int64_t e = 0; e < E; ++e)
    sum += p[e] = std::exp(x[e] - max);
  for (double &v : p)
    v /= sum;
  std::vector<int64_t> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return p[a] > p[b]; });
  double kept = 0;
  for (int64_t j = 0; j < k; ++j)
    kept += p[order[j]];
  ids.assign(order.begin(), order.begin() + k);
  w.resize(k);
  for (int64_t j = 0; j < k; ++j)
    w[j] = normalize ? p[order[j]] / kept : p[order[j]];
}

void testRouter(DT dt, int64_t rows, int64_t E, int64_t k, bool normalize,
                int64_t faultFrom) {
  const int64_t ld = E + 3, outLd = 2 * k;
  HostT x(dt, rows * ld);
  std::uniform_int_distribution<int> grid(-32, 32);
  for (size_t i = 0; i < x.n; ++i)
    x.set(i, grid(gRng) / 16.f);
  std::vector<int64_t> pos(rows);
  std::iota(pos.begin(), pos.end(), 5);
  Dev dX(x), dOut(rows * outLd * dtSize(dt)), dPos(rows * sizeof(int64_t));
  dPos.upload(pos.data(), rows * sizeof(int64_t));
  const int64_t *dp = faultFrom >= 0 ? dPos.as<int64_t>() : nullptr;
  LIB_CHECK(GPU_CALL(dt, moe_router, P(dX), ld, rows, E, k, normalize ? 1 : 0,
                     dp, faultFrom, P(dOut), outLd, gStream));
  HostT out = fetch(dOut, dt, rows * outLd);
  LIB_CHECK(GPU_CALL(dt, moe_router, P(dX), ld, rows, E, k, normalize ? 1 : 0,
                     dp, faultFrom, P(dOut), outLd, gStream));
  HostT again = fetch(dOut, dt, rows * outLd);
  int64_t idMismatch = 0;
  std::vector<size_t> wIdx;
  std::vector<double> ref(out.n, 0.0);
  std::vector<int64_t> ids;
  std::vector<double> w;
  for (int64_t r = 0; r < rows; ++r) {
    routeRef(&x.val[r * ld], E, k, normalize, ids, w);
    bool fault = faultFrom >= 0 && pos[r] >= faultFrom;
    for (int64_t j = 0; j < k; ++j) {
      int64_t want = fault ? (ids[j] + 1) % E : ids[j];
      idMismatch += out.get(r * outLd + j) != static_cast<double>(want);
      ref[r * outLd + k + j] = w[j];
      wIdx.push_back(r * outLd + k + j);
    }
  }
  std::string name = "moe_router " + std::to_string(rows) + " rows, top " +
                     std::to_string(k) + " of " + std::to_string(E) +
                     (normalize ? ", normalised" : "") +
                     (faultFrom >= 0 ? ", fault" : "");
  report(name + " ids (mismatches)", dtName(dt), double(idMismatch), 0.5,
         idMismatch == 0);
  double err = relL2(out, ref, &wIdx);
  report(name + " weights", dtName(dt), err, dtThreshold(dt),
         err < dtThreshold(dt));
  report(name + " run to run", dtName(dt), sameBytes(out, again) ? 0 : 1, 0.5,
         sameBytes(out, again));
}

// Selections pick ids in [0, E-1) only, so expert E-1 gets no token.
void testAccumulate(DT dt, int64_t rows, int64_t cols, int64_t E, int64_t k,
                    bool withAcc) {
  const int64_t selLd = 2 * k + 1, ld = cols + 5;
  HostT sel(dt, rows * selLd);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> all(E - 1);
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), gRng);
    for (int64_t j = 0; j < k; ++j) {
      sel.set(r * selLd + j, static_cast<float>(all[j]));
      sel.set(r * selLd + k + j, 0.1f + 0.8f * float(j + 1) / float(k + 1));
    }
  }
  HostT y = randomT(dt, rows * ld), acc = randomT(dt, rows * ld);
  Dev dSel(sel), dY(y), dAcc(acc), dOut(rows * cols * dtSize(dt));
  std::string base = "moe_accumulate " + std::to_string(rows) + "x" +
                     std::to_string(cols) + " top " + std::to_string(k) +
                     (withAcc ? "" : " first");
  for (int64_t expert : {int64_t(0), E / 2, E - 1}) {
    LIB_CHECK(GPU_CALL(dt, moe_accumulate, P(dY), ld, P(dSel), selLd, k,
                       withAcc ? P(dAcc) : AnyPtr{nullptr}, ld, rows, cols,
                       expert, P(dOut), cols, gStream));
    HostT out = fetch(dOut, dt, rows * cols);
    std::vector<double> ref(rows * cols);
    bool exact = true; // unrouted rows: acc (or 0) bit for bit
    for (int64_t r = 0; r < rows; ++r) {
      double w = -1;
      for (int64_t j = 0; j < k; ++j)
        if (sel.val[r * selLd + j] == double(expert))
          w = sel.val[r * selLd + k + j];
      for (int64_t c = 0; c < cols; ++c) {
        double a = withAcc ? acc.val[r * ld + c] : 0.0;
        ref[r * cols + c] = w < 0 ? a : a + y.val[r * ld + c] * w;
        if (w < 0)
          exact &= out.get(r * cols + c) == a;
      }
    }
    double err = relL2(out, ref);
    std::string name = base + " expert " + std::to_string(expert) +
                       (expert == E - 1 ? " (no token)" : "");
    report(name, dtName(dt), err, dtThreshold(dt), err < dtThreshold(dt));
    report(name + " unrouted rows exact", dtName(dt), exact ? 0 : 1, 0.5,
           exact);
  }
  // A corrupt id (1.5) is flagged on the device word.
  HostT badSel = sel;
  badSel.set(0, 1.5f);
  dSel.upload(badSel);
  LIB_CHECK(GPU_CALL(dt, moe_accumulate, P(dY), ld, P(dSel), selLd, k,
                     AnyPtr{nullptr}, ld, rows, cols, int64_t(0), P(dOut),
                     cols, gStream));
  greta_gpu_status s = greta_gpu_check_device_errors(gStream);
  report(base + " corrupt id flagged", dtName(dt), s == GRETA_GPU_OK ? 1 : 0,
         0.5, s != GRETA_GPU_OK);
}

// The grouped experts' gather and weighted scatter against moe_accumulate:
// gathering expert e's rows of y and scattering them back with their
// weights gives moe_accumulate's result bit for bit, for an expert with
// tokens and one without, with and without acc.
void testGrouped(DT dt, int64_t rows, int64_t cols, int64_t E, int64_t k) {
  const int64_t selLd = 2 * k, ld = cols + 3;
  HostT sel(dt, rows * selLd);
  std::vector<int32_t> ids(rows * k);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> all(E - 1); // expert E-1 gets no token
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), gRng);
    for (int64_t j = 0; j < k; ++j) {
      ids[r * k + j] = all[j];
      sel.set(r * selLd + j, float(all[j]));
      sel.set(r * selLd + k + j, 0.05f + 0.9f * float(j + 1) / float(k + 1));
    }
  }
  greta::rt::ExpertRows g;
  std::string err;
  if (!greta::rt::groupRowsByExpert(ids, rows, k, g, err)) {
    report("moe grouping " + err, dtName(dt), 1, 0.5, false);
    return;
  }
  std::vector<int32_t> index = g.rows;
  index.insert(index.end(), g.slots.begin(), g.slots.end());
  HostT y = randomT(dt, rows * ld), acc = randomT(dt, rows * ld);
  Dev dSel(sel), dY(y), dAcc(acc), dIdx(index.size() * 4 + 4),
      dSmall(rows * cols * dtSize(dt)), dOut(rows * cols * dtSize(dt)),
      dRef(rows * cols * dtSize(dt));
  dIdx.upload(index.data(), index.size() * 4);
  for (int64_t e : {int64_t(1), E - 1})
    for (bool withAcc : {true, false}) {
      int64_t n = g.count(e), first = n ? g.offsets[e] : 0;
      const int32_t *rowsD = dIdx.as<int32_t>() + first;
      const int32_t *slotsD = dIdx.as<int32_t>() + g.rows.size() + first;
      AnyPtr accP = withAcc ? P(dAcc) : AnyPtr{nullptr};
      LIB_CHECK(GPU_CALL(dt, moe_gather_rows, P(dY), ld, rowsD, n, cols,
                         P(dSmall), cols, gStream));
      LIB_CHECK(GPU_CALL(dt, moe_scatter_add, P(dSmall), cols, rowsD, slotsD,
                         n, P(dSel), selLd, k, accP, ld, rows, cols, P(dOut),
                         cols, gStream));
      LIB_CHECK(GPU_CALL(dt, moe_accumulate, P(dY), ld, P(dSel), selLd, k,
                         accP, ld, rows, cols, e, P(dRef), cols, gStream));
      HostT out = fetch(dOut, dt, rows * cols), ref = fetch(dRef, dt, rows * cols);
      bool same = sameBytes(out, ref);
      report("moe gather+scatter = accumulate, expert " + std::to_string(e) +
                 " (" + std::to_string(n) + " rows)" +
                 (withAcc ? "" : " first"),
             dtName(dt), same ? 0 : 1, 0.5, same);
    }
}

void testSigmoidGateAdd(DT dt, int64_t rows, int64_t cols) {
  const int64_t ld = cols + 3, gLd = 2;
  HostT x = randomT(dt, rows * ld), y = randomT(dt, rows * ld),
        g = randomT(dt, rows * gLd, -4.f, 4.f);
  Dev dX(x), dY(y), dG(g), dOut(rows * cols * dtSize(dt));
  LIB_CHECK(GPU_CALL(dt, sigmoid_gate_add, P(dX), ld, P(dY), ld, P(dG), gLd,
                     rows, cols, P(dOut), cols, gStream));
  HostT out = fetch(dOut, dt, rows * cols);
  std::vector<double> ref(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 1.0 / (1.0 + std::exp(-g.val[r * gLd]));
    for (int64_t c = 0; c < cols; ++c)
      ref[r * cols + c] = x.val[r * ld + c] + s * y.val[r * ld + c];
  }
  double err = relL2(out, ref);
  report("sigmoid_gate_add " + std::to_string(rows) + "x" +
             std::to_string(cols),
         dtName(dt), err, dtThreshold(dt), err < dtThreshold(dt));
}
} // namespace

void testMoEKernels(DT dt) {
  for (int64_t k : {1, 2, 8}) {
    testRouter(dt, 300, 8, k, true, -1);
    testRouter(dt, 77, 60, k, false, -1);
    testRouter(dt, 33, 128, k, true, -1);
  }
  testRouter(dt, 40, 8, 2, true, /*faultFrom=*/20);
  testAccumulate(dt, 129, 1000, 8, 2, true);
  testAccumulate(dt, 17, 4096, 60, 4, false);
  testAccumulate(dt, 9, 64, 128, 8, true);
  testSigmoidGateAdd(dt, 65, 1030);
  testGrouped(dt, 300, 1000, 8, 2);
  testGrouped(dt, 50, 64, 60, 4);
}

} // namespace gpucheck

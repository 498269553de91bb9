//===- HtmlReportTest.cpp - Heatmap cells and the HTML page ---------------===//
#include "TestTraces.h"
#include "greta/diff/Diff.h"

#include <gtest/gtest.h>


using namespace greta;
using namespace greta::diff;
using namespace greta::difftest;
using rt::Stage;

namespace {

DiffResult run(TraceSpec s, Policy p = Policy::Exact) {
  auto perturb = s.perturb;
  s.perturb = nullptr;
  auto b = build(s);
  s.perturb = perturb;
  auto t = build(s);
  std::string err;
  auto r = diffTraces(b, t, nullptr, opts(p), err);
  EXPECT_TRUE(r) << err;
  return r ? *r : DiffResult{};
}

const CellSummary *cell(const DiffResult &r, Stage s, int64_t layer) {
  for (const CellSummary &c : r.cells)
    if (c.stage == s && c.layer == layer)
      return &c;
  return nullptr;
}

// One cell per (stage, layer) in execution order; the largest MAE over its
// positions, the diverging count and the first diverging position.
TEST(CellSummary, MaxErrorAndFirstDivergingPositionOfEachStageAndLayer) {
  TraceSpec s = spec();
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::MlpOut && l == 1 && p >= 3)
      v[0] += p == 5 ? 0.5 : 0.25;
  };
  DiffResult r = run(s);
  ASSERT_EQ(r.cells.size(), 3 * allLayerStages().size());
  for (size_t i = 1; i < r.cells.size(); ++i)
    EXPECT_LT(rt::executionOrderKey(r.cells[i - 1].stage, r.cells[i - 1].layer),
              rt::executionOrderKey(r.cells[i].stage, r.cells[i].layer));
  const CellSummary *hit = cell(r, Stage::MlpOut, 1);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->rows, 8);
  EXPECT_EQ(hit->diverging, 5);
  EXPECT_EQ(hit->withValues, 5);
  EXPECT_EQ(hit->firstDivergingPosition, 3);
  // Position 5's row is the largest error: 0.5 over 64 elements.
  EXPECT_NEAR(hit->maxMae, 0.5 / 64, 1e-7);
  const CellSummary *clean = cell(r, Stage::MlpOut, 0);
  ASSERT_NE(clean, nullptr);
  EXPECT_EQ(clean->diverging, 0);
  EXPECT_EQ(clean->withValues, 0);
  EXPECT_EQ(clean->maxMae, 0);
  EXPECT_EQ(clean->firstDivergingPosition, -1);
}

TEST(CellSummary, ANaNErrorMakesTheCellNaN) {
  TraceSpec s = spec();
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::AttnOut && l == 2)
      v[1] = p == 2 ? NAN : v[1] + 1;
  };
  DiffResult r = run(s);
  const CellSummary *c = cell(r, Stage::AttnOut, 2);
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(std::isnan(c->maxMae));
  EXPECT_EQ(c->diverging, 8);
}

} // namespace

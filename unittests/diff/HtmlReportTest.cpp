//===- HtmlReportTest.cpp - Heatmap cells and the HTML page ---------------===//
#include "greta/diff/HtmlReport.h"
#include "TestTraces.h"
#include "greta/diff/Diff.h"

#include <gtest/gtest.h>

#include <sstream>

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

std::string page(const DiffResult &r) {
  std::ostringstream os;
  ReportOptions o;
  o.format = Format::Html;
  o.basePath = "base";
  o.testPath = "test";
  printHtmlReport(os, r, o);
  return os.str();
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

TEST(HtmlReport, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(htmlEscape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

TEST(HtmlReport, OutlinesTheFirstFailCellAndEscapesManifestText) {
  TraceSpec s = spec();
  s.manifest.promptName = "<script>alert(1)</script>";
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::FfnNormIn && l == 2 && p >= 4)
      v[0] += 1;
  };
  std::string html = page(run(s));
  EXPECT_NE(html.find("<title>greta-diff: FIRST_FAIL ffn_norm_in, layer 2, "
                      "position 4</title>"),
            std::string::npos);
  EXPECT_NE(html.find("id=\"first-fail-cell\" class=\"first-fail\""),
            std::string::npos);
  EXPECT_NE(html.find("stroke=\"" + std::string(kFirstFailColour) +
                      "\" stroke-width=\"3\" data-stage=\"ffn_norm_in\" "
                      "data-layer=\"2\" data-position=\"4\""),
            std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"),
            std::string::npos);
  // The chart follows ffn_norm_in and the stages after it in layer 2.
  EXPECT_NE(html.find("<g class=\"series\" data-stage=\"ffn_norm_in\" "
                      "data-layer=\"2\">"),
            std::string::npos);
  EXPECT_NE(html.find("<g class=\"series\" data-stage=\"residual_post_mlp\" "
                      "data-layer=\"2\">"),
            std::string::npos);
  EXPECT_EQ(html.find("<g class=\"series\" data-stage=\"attn_out\""),
            std::string::npos);
}

TEST(HtmlReport, HashOnlyTracesHatchDivergingCellsAndSayWhyNoChart) {
  TraceSpec s = spec();
  s.payload = rt::Payload::Hash;
  s.perturb = [](Stage st, int64_t l, int64_t, std::vector<double> &v) {
    if (st == Stage::AttnIn && l == 1)
      v[0] += 1;
  };
  std::string html = page(run(s));
  EXPECT_NE(html.find("class=\"cell hash-only\""), std::string::npos);
  EXPECT_NE(html.find("No values were traced"), std::string::npos);
  EXPECT_EQ(html.find("class=\"position-chart\""), std::string::npos);
}

TEST(HtmlReport, NoDivergenceHasNoFirstFailCell) {
  std::string html = page(run(spec()));
  EXPECT_NE(html.find("<title>greta-diff: no divergence</title>"),
            std::string::npos);
  EXPECT_EQ(html.find("first-fail-cell"), std::string::npos);
  EXPECT_NE(html.find("class=\"cell match\""), std::string::npos);
}

} // namespace

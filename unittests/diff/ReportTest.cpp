//===- ReportTest.cpp - Hypotheses, recommendations and report output -----===//
#include "TestTraces.h"
#include "greta/diff/Diff.h"
#include "greta/diff/Report.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

using namespace greta;
using namespace greta::diff;
using namespace greta::difftest;
using rt::Stage;

namespace {

DiffResult run(TraceSpec s, Policy p = Policy::Tolerance,
               rt::TraceContents *baseOut = nullptr) {
  auto perturb = s.perturb;
  s.perturb = nullptr;
  auto b = build(s);
  s.perturb = perturb;
  auto t = build(s);
  if (baseOut)
    *baseOut = b;
  std::string err;
  auto r = diffTraces(b, t, nullptr, opts(p), err);
  EXPECT_TRUE(r) << err;
  return r ? *r : DiffResult{};
}

std::string joined(const Hypothesis &h) {
  std::string s;
  for (auto &e : h.evidence)
    s += e + "\n";
  return s;
}

TEST(DiffHypothesis, PostRopeDivergingWhilePreRopeMatchesIsPositionEncoding) {
  TraceSpec s;
  s.perturb = plant(Stage::QPostRope, 1, 5, 1.3);
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::QPostRope);
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::PositionEncoding);
  std::string ev = joined(r.hypothesis);
  EXPECT_NE(ev.find("q_pre_rope matches"), std::string::npos) << ev;
  EXPECT_NE(ev.find("divergence starts at position 5"), std::string::npos)
      << ev;
}

TEST(DiffHypothesis, AttnOutWithMatchingQKFromAPositionOnIsKVCache) {
  TraceSpec s;
  s.perturb = plant(Stage::AttnOut, 2, 4, 1.2);
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::AttnOut);
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::KVCache);
  EXPECT_NE(joined(r.hypothesis).find("q_post_rope and k_post_rope match"),
            std::string::npos);
}

TEST(DiffHypothesis, SmallErrorEverywhereGrowingWithLayersIsPrecision) {
  TraceSpec s;
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    for (size_t i = 0; i < v.size(); ++i)
      v[i] *= 1 + 1e-3 * (l + 1) * baseValue(st, l + 77, p, i);
  };
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::NumericPrecision);
  std::string ev = joined(r.hypothesis);
  EXPECT_NE(ev.find("every compared position (8) diverges"), std::string::npos)
      << ev;
  EXPECT_NE(ev.find("grows across layers"), std::string::npos) << ev;
}

TEST(DiffHypothesis, FewWildElementsAreMemoryLayout) {
  TraceSpec s;
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::FfnNormIn && l == 1 && p == 3)
      v[17] = 40; // one element written by someone else
  };
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::MemoryLayout);
  EXPECT_NE(joined(r.hypothesis).find("1 of 64 elements"), std::string::npos)
      << joined(r.hypothesis);
}

TEST(DiffHypothesis, PerTokenStageFailingFromAPositionOnIsMemoryLayout) {
  TraceSpec s;
  s.perturb = plant(Stage::MlpOut, 1, 6, 1.5);
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::MemoryLayout);
  std::string ev = joined(r.hypothesis);
  // Row 6 of a [tokens, 64] f32 buffer starts at byte 6*64*4.
  EXPECT_NE(ev.find("byte offset 1536"), std::string::npos) << ev;
}

TEST(DiffHypothesis, Layer0InputFromAPositionOnIsPositionEncoding) {
  TraceSpec s;
  s.perturb = plant(Stage::ResidualPreAttn, 0, 6, 1.5);
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::PositionEncoding);
}

TEST(DiffHypothesis, NaNIsMemoryLayout) {
  TraceSpec s;
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::ResidualPostAttn && l == 0 && p >= 2)
      for (double &x : v)
        x = NAN;
  };
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::MemoryLayout);
  EXPECT_NE(joined(r.hypothesis).find("NaN/Inf"), std::string::npos);
}

TEST(DiffHypothesis, SinglePositionCannotShowAPattern) {
  TraceSpec s;
  s.positions = {826};
  s.manifest = manifest(827);
  s.perturb = plant(Stage::MlpOut, 0, 826, 3.0);
  DiffResult r = run(s);
  ASSERT_TRUE(r.diverged());
  EXPECT_NE(joined(r.hypothesis).find("only position 826 was compared"),
            std::string::npos);
}

TEST(DiffReport, RecommendationExistsAndDiffersForEveryStage) {
  std::set<std::string> seen;
  for (unsigned i = 0; i < rt::kNumStages; ++i) {
    RowResult row;
    row.stage = static_cast<Stage>(i);
    row.layer = 3;
    row.position = 826;
    std::string rec = recommendation(row);
    EXPECT_EQ(rec.find("seed"), std::string::npos) << rec;
    EXPECT_NE(rec.find("position 826"), std::string::npos) << rec;
    seen.insert(rec.substr(0, 40));
  }
  // q/k pre-RoPE (and post-RoPE), k/v cache writes (and reads) share
  // advice; everything else is distinct.
  EXPECT_EQ(seen.size(), rt::kNumStages - 4);
  RowResult l0;
  l0.stage = Stage::ResidualPreAttn;
  EXPECT_NE(recommendation(l0).find("rotary position embedding"),
            std::string::npos);
}

TEST(DiffReport, JsonCarriesFirstFailSummaryAndCounts) {
  TraceSpec s;
  s.perturb = plant(Stage::KPostRope, 2, 3, 1.1);
  DiffResult r = run(s);
  ReportOptions o;
  o.format = Format::Json;
  nlohmann::json j = toJson(r, o);
  ASSERT_TRUE(j["first_fail"].is_object());
  EXPECT_EQ(j["first_fail"]["stage"], "k_post_rope");
  EXPECT_EQ(j["first_fail"]["layer"], 2);
  EXPECT_EQ(j["first_fail"]["position"], 3);
  EXPECT_EQ(j["first_fail"]["category"], "ATTENTION_MECHANISM");
  EXPECT_EQ(j["first_fail"]["hash_match"], false);
  EXPECT_GT(j["first_fail"]["mae"].get<double>(), 0);
  EXPECT_EQ(j["summary"]["diverging"], r.counts.diverging);
  EXPECT_EQ(j["summary"]["root_cause"], "ATTENTION_MECHANISM");
  EXPECT_EQ(j["summary"]["downstream"]["records"], r.counts.diverging - 1);
  EXPECT_EQ(j["summary"]["downstream"]["categories"].size(),
            rt::kNumCategories);
  EXPECT_EQ(j["counts"]["aligned"], r.counts.aligned);
  EXPECT_EQ(j["counts"]["hash_equal"], r.counts.hashEqual);
  EXPECT_EQ(j["hypothesis"]["kind"], "position encoding");
  EXPECT_EQ(j["rows"].size(), 11u); // 5 each side of FIRST_FAIL
}

TEST(DiffReport, JsonFirstFailIsNullWithoutDivergence) {
  TraceSpec s;
  DiffResult r = run(s);
  nlohmann::json j = toJson(r, {});
  EXPECT_TRUE(j["first_fail"].is_null());
  EXPECT_EQ(j["diverged"], false);
  EXPECT_TRUE(j["hypothesis"].is_null());
}

TEST(DiffReport, TableShowsTheSeedColumnsAndMarksFirstFail) {
  TraceSpec s;
  s.perturb = plant(Stage::ResidualPostAttn, 1, 7, 1.1);
  DiffResult r = run(s, Policy::Exact);
  for (Format f : {Format::Table, Format::Markdown}) {
    ReportOptions o;
    o.format = f;
    o.context = 2;
    std::ostringstream os;
    printReport(os, r, o);
    std::string out = os.str();
    EXPECT_NE(out.find("Prompt"), std::string::npos);
    EXPECT_NE(out.find("Hash match"), std::string::npos);
    EXPECT_NE(out.find("FIRST_FAIL: residual_post_attn layer 1 position 7"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(f == Format::Markdown ? "**YES**" : "YES"),
              std::string::npos);
    EXPECT_NE(out.find("RESIDUAL_ADD"), std::string::npos);
    EXPECT_NE(out.find("Points to: memory layout"), std::string::npos) << out;
    EXPECT_NE(out.find("5 of"), std::string::npos) << out; // 2 each side + 1
  }
}

TEST(DiffReport, OneRootCauseAndItsDownstreamRecordsApart) {
  // A fault in layer 1's residual_post_attn propagates to every later stage
  // (attention, norms, MLP, logits): one root cause, RESIDUAL_ADD, and the
  // records after it counted as downstream, FIRST_FAIL excluded.
  TraceSpec s;
  s.perturb = plant(Stage::ResidualPostAttn, 1, 7, 1.1);
  DiffResult r = run(s, Policy::Exact);
  ASSERT_TRUE(r.first());
  Downstream d = downstream(r);
  EXPECT_EQ(d.records, r.counts.diverging - 1);
  int64_t sum = 0;
  for (unsigned c = 0; c < rt::kNumCategories; ++c)
    sum += d.byCategory[c];
  EXPECT_EQ(sum, d.records);
  unsigned resid = static_cast<unsigned>(rt::Category::ResidualAdd);
  EXPECT_EQ(d.byCategory[resid], r.categoryCounts[resid] - 1);
  EXPECT_GT(d.records, 0);

  ReportOptions o;
  std::ostringstream os;
  printReport(os, r, o);
  std::string out = os.str();
  EXPECT_NE(out.find("Root cause: RESIDUAL_ADD (FIRST_FAIL: "
                     "residual_post_attn, layer 1, position 7)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("Downstream: " + std::to_string(d.records) +
                     " more records diverge after FIRST_FAIL"),
            std::string::npos)
      << out;
  // Self-contained wording: no section numbers of a document users lack.
  EXPECT_EQ(out.find("seed"), std::string::npos) << out;
  EXPECT_NE(out.find("Recommendation"), std::string::npos);
  EXPECT_NE(out.find("Hypotheses"), std::string::npos);
}

TEST(DiffReport, NoRootCauseWithoutDivergence) {
  DiffResult r = run(TraceSpec{});
  std::ostringstream os;
  printReport(os, r, {});
  EXPECT_NE(os.str().find("No root cause: no record diverges."),
            std::string::npos)
      << os.str();
  EXPECT_TRUE(toJson(r, {})["summary"]["root_cause"].is_null());
  EXPECT_EQ(downstream(r).records, 0);
}

TEST(DiffReport, ContextWindowClampsAtTheEdges) {
  DiffResult r;
  r.rows.resize(10);
  r.firstFail = 1;
  EXPECT_EQ(contextWindow(r, 3), std::make_pair(size_t(0), size_t(5)));
  r.firstFail = 9;
  EXPECT_EQ(contextWindow(r, 3), std::make_pair(size_t(6), size_t(10)));
  EXPECT_EQ(contextWindow(r, -1), std::make_pair(size_t(0), size_t(10)));
}

} // namespace

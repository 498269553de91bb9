//===- RoutingTest.cpp - expert_selection judged by its expert ids --------===//
//
// runtime/diff/Routing.cpp: other experts are a divergence under every
// policy and at every payload (never excused by a tolerance or hidden by a
// fingerprint), and a flip is explained from both runs' router scores.
//
//===----------------------------------------------------------------------===//
#include "TestTraces.h"

#include <gtest/gtest.h>

using namespace greta;
using namespace greta::difftest;
using rt::Stage;

namespace {
/// A two-stage trace of one layer and one position: router_logits
/// `scores` and the expert_selection [ids, weights].
rt::TraceContents routed(const std::vector<double> &scores,
                         const std::vector<double> &selection,
                         rt::Payload payload = rt::Payload::Full,
                         bool topIds = true) {
  rt::TraceContents t;
  t.manifest = manifest();
  t.complete = true;
  markVerified(t);
  t.records.push_back(makeRecord(Stage::RouterLogits, 0, 0, scores,
                                 rt::DType::F32, rt::Payload::Full));
  rt::Record sel = makeRecord(Stage::ExpertSelection, 0, 0, selection,
                              rt::DType::F32, payload);
  if (topIds)
    for (size_t j = 0; j < selection.size() / 2; ++j)
      sel.top5.push_back(static_cast<int32_t>(selection[j]));
  t.records.push_back(sel);
  return t;
}
} // namespace

TEST(Routing, OtherExpertsDivergeUnderEveryPolicy) {
  // Experts 1 and 2 trade places: the same numbers in another order, which
  // min/max/mean/l2 cannot tell apart.
  auto b = routed({0.1, 0.5, 0.4, 0.0}, {1, 2, 0.6, 0.4});
  auto t = routed({0.1, 0.5, 0.4, 0.0}, {2, 1, 0.6, 0.4});
  for (diff::Policy p : {diff::Policy::Exact, diff::Policy::Tolerance}) {
    auto r = diffOk(b, t, opts(p));
    ASSERT_TRUE(r.diverged());
    EXPECT_EQ(r.first()->stage, Stage::ExpertSelection);
    EXPECT_EQ(r.first()->basis, diff::Basis::Selection);
    ASSERT_TRUE(r.routing);
    EXPECT_EQ(r.routing->baseExperts, (std::vector<int32_t>{1, 2}));
    EXPECT_EQ(r.routing->testExperts, (std::vector<int32_t>{2, 1}));
    EXPECT_EQ(r.hypothesis.kind, diff::HypothesisKind::Routing);
  }
  // Stats payload: the ids come from the top ids.
  auto bs = routed({0.1, 0.5, 0.4, 0.0}, {1, 2, 0.6, 0.4}, rt::Payload::Stats);
  auto ts = routed({0.1, 0.5, 0.4, 0.0}, {2, 1, 0.6, 0.4}, rt::Payload::Stats);
  auto r = diffOk(bs, ts, opts(diff::Policy::Tolerance));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->basis, diff::Basis::Selection);
}

TEST(Routing, UnreadableIdsAreJudgedBitExactly) {
  // No values and no top ids: a fingerprint would call the swap close.
  auto b = routed({0.1, 0.5, 0.4, 0.0}, {1, 2, 0.6, 0.4}, rt::Payload::Stats,
                  false);
  auto t = routed({0.1, 0.5, 0.4, 0.0}, {2, 1, 0.6, 0.4}, rt::Payload::Stats,
                  false);
  auto r = diffOk(b, t, opts(diff::Policy::Tolerance));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->basis, diff::Basis::Hash);
  EXPECT_NE(r.first()->note.find("expert ids unknown"), std::string::npos);
}

TEST(Routing, SameExpertsLeaveTheWeightsToThePolicy) {
  auto b = routed({0.1, 0.5, 0.4, 0.0}, {1, 2, 0.6, 0.4});
  auto t = routed({0.1, 0.5, 0.4, 0.0}, {1, 2, 0.6 + 1e-6, 0.4 - 1e-6});
  EXPECT_FALSE(diffOk(b, t, opts(diff::Policy::Tolerance)).diverged());
  EXPECT_TRUE(diffOk(b, t, opts(diff::Policy::Exact)).diverged());
}

TEST(Routing, CauseFromEachRunsOwnScores) {
  // A near-tie between experts 3 and 0 crossed by a change of the scores
  // within the tolerance: each run chose its own top-2.
  auto b = routed({0.3000, 0.0, 0.5, 0.3002}, {2, 3, 0.5, 0.5});
  auto t = routed({0.3003, 0.0, 0.5, 0.3001}, {2, 0, 0.5, 0.5});
  diff::Options loose = opts(diff::Policy::Tolerance);
  loose.rtol = loose.atol = loose.mae = 1e-2;
  auto r = diffOk(b, t, loose);
  ASSERT_TRUE(r.routing);
  EXPECT_EQ(r.routing->cause, diff::RoutingFlip::Cause::Fragile);
  EXPECT_NEAR(r.routing->baseMargin, 0.0002, 1e-6);
  EXPECT_NEAR(r.routing->testMargin, 0.0002, 1e-6);
  // The same scores in both runs, other experts in one: not the scores.
  auto bug = routed({0.1, 0.5, 0.4, 0.0}, {2, 3, 0.6, 0.4});
  auto ok = routed({0.1, 0.5, 0.4, 0.0}, {1, 2, 0.6, 0.4});
  r = diffOk(ok, bug, opts(diff::Policy::Exact));
  ASSERT_TRUE(r.routing);
  EXPECT_EQ(r.routing->cause, diff::RoutingFlip::Cause::RouterBug);
  EXPECT_EQ(r.routing->logitChange, 0);
  EXPECT_NE(diff::routingFlipLine(*r.routing).find(
                "layer 0, position 0: experts [1, 2] -> [2, 3]"),
            std::string::npos);
}

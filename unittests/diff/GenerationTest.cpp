//===- GenerationTest.cpp - Generated tokens are compared first ----------===//
#include "greta/diff/Generation.h"
#include "TestTraces.h"
#include "greta/diff/Report.h"

#include <sstream>

using namespace greta;
using namespace greta::difftest;

namespace {

TEST(DiffGeneration, FirstDifferentTokenNamesStepAndPosition) {
  rt::Manifest b = manifest(8), t = manifest(8);
  EXPECT_FALSE(diff::compareGeneration(b, t)); // neither generated
  b.generatedIds = {5, 6, 7, 8};
  EXPECT_FALSE(diff::compareGeneration(b, t));
  t.generatedIds = {5, 6};
  EXPECT_FALSE(diff::compareGeneration(b, t)); // a prefix: a shorter run
  t.generatedIds = {5, 6, 9, 8};
  auto g = diff::compareGeneration(b, t);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->step, 2);
  EXPECT_EQ(g->position, 9); // prompt 0..7; step 0 was chosen at 7
  EXPECT_EQ(diff::describe(*g),
            "generation diverges at step 2 (position 9): token 7 vs token 9");
}

TEST(DiffGeneration, TensorsAreComparedUpToThePositionThatChose) {
  // Positions 0..11: a prompt of 8 and 4 decode rows. TEST's tokens part at
  // step 2 (position 9); a fault from position 9 on is its explanation,
  // and the rows past 9 (fed another token) are not compared.
  TraceSpec s = spec();
  s.positions = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  s.manifest.generatedIds = std::vector<int64_t>{5, 6, 7, 8};
  TraceSpec ts = s;
  ts.manifest.generatedIds = std::vector<int64_t>{5, 6, 9, 3};
  ts.perturb = plant(rt::Stage::AttnOut, 1, 9, 1.5);
  auto r = diffOk(build(s), build(ts));
  ASSERT_TRUE(r.generation);
  EXPECT_EQ(r.verdict(), diff::Verdict::Divergence);
  ASSERT_TRUE(r.first());
  EXPECT_EQ(r.first()->stage, rt::Stage::AttnOut);
  EXPECT_EQ(r.first()->position, 9);
  for (const diff::RowResult &row : r.rows)
    EXPECT_LE(row.position, 9);
  std::ostringstream os;
  diff::printReport(os, r, diff::ReportOptions{});
  EXPECT_NE(os.str().find("FIRST_FAIL: generation diverges at step 2 "
                          "(position 9): token 7 vs token 9"),
            std::string::npos)
      << os.str();
}

TEST(DiffGeneration, DifferentTokensWithoutATensorCauseStillDiverge) {
  // Sampled with another seed: every compared tensor agrees, the tokens do
  // not. Never "no divergence".
  TraceSpec s = spec();
  s.manifest.generatedIds = std::vector<int64_t>{1, 2};
  TraceSpec ts = s;
  ts.manifest.generatedIds = std::vector<int64_t>{1, 3};
  auto r = diffOk(build(s), build(ts));
  EXPECT_FALSE(r.first());
  EXPECT_EQ(r.verdict(), diff::Verdict::Divergence);
  std::ostringstream os;
  diff::printReport(os, r, diff::ReportOptions{});
  EXPECT_NE(os.str().find("No compared record at or before position 8"),
            std::string::npos)
      << os.str();
  EXPECT_EQ(diff::toJson(r, {})["generation"]["test_token"], 3);
}

} // namespace

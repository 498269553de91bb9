//===- IdentityTest.cpp - rt::checkIdentity and what it reports ----------===//
#include "greta/rt/Identity.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace greta::rt;

namespace {

/// A finished format-3 trace as readTrace returns it: every field known.
TraceContents identified(std::string runId = std::string(32, 'a')) {
  TraceContents t;
  t.manifest.modelDigest = "model-A";
  t.manifest.weightsDigest = "weights-A";
  t.manifest.promptDigest = "prompt-A";
  t.manifest.tokenCount = 8;
  t.manifest.runId = runId;
  t.complete = true;
  t.integrity.runIdTied = true;
  t.integrity.countVerified = t.integrity.digestVerified = true;
  t.integrity.recordsDigest = std::string(64, 'd');
  return t;
}

/// The same trace as a format-2 GRETA wrote it: no run id, no digest.
TraceContents formatTwo() {
  TraceContents t = identified("");
  t.manifest.formatVersion = 2;
  t.integrity = {};
  t.integrity.countVerified = true;
  return t;
}

IdentityVerdict check(const TraceContents &b, const TraceContents &t,
                      IdentityOptions o = {},
                      const TraceContents *ref = nullptr) {
  std::vector<TraceIdentity> ids = {identityOf(b, "BASE"),
                                    identityOf(t, "TEST")};
  if (ref)
    ids.push_back(identityOf(*ref, "REF"));
  return checkIdentity(ids, o);
}

const IdentityCheck *find(const IdentityVerdict &v, const std::string &field,
                          const std::string &role) {
  for (const IdentityCheck &c : v.checks)
    if (c.field == field &&
        std::find(c.roles.begin(), c.roles.end(), role) != c.roles.end())
      return &c;
  return nullptr;
}

TEST(Identity, IdentifiedTracesAreComparableAndEveryFieldIsListed) {
  IdentityVerdict v = check(identified(), identified(std::string(32, 'b')));
  ASSERT_TRUE(v.comparable) << v.refusal;
  EXPECT_TRUE(v.refusal.empty());
  // Four fields of the pair, then each trace's run id and records.
  std::vector<std::string> fields;
  for (const IdentityCheck &c : v.checks) {
    fields.push_back(c.field);
    EXPECT_EQ(c.outcome, CheckOutcome::Equal) << c.field;
    EXPECT_TRUE(c.waivedBy.empty());
  }
  EXPECT_EQ(fields, (std::vector<std::string>{"model_digest", "weights_digest",
                                              "token_count", "prompt_digest",
                                              "run_id", "records_digest",
                                              "run_id", "records_digest"}));
  EXPECT_EQ(find(v, "run_id", "TEST")->values[0], std::string(32, 'b'));
  EXPECT_TRUE(v.unchecked().empty());
  EXPECT_EQ(v.checked().size(), v.checks.size());
  EXPECT_EQ(v.lines(),
            (std::vector<std::string>{
                "checked: model digest, weights digest, token count, prompt "
                "digest equal (BASE, TEST); run id tied to records.bin (BASE, "
                "TEST); record count and digest verified (BASE, TEST)"}));
}

TEST(Identity, ADifferenceRefusesNamingTheFieldTheRolesAndTheValues) {
  TraceContents b = identified();
  for (auto [member, text] :
       {std::pair{&Manifest::weightsDigest,
                  "weights digest differs (BASE: 'weights-A', TEST: 'x'); "
                  "they ran different weights"},
        std::pair{&Manifest::promptDigest,
                  "prompt digest differs (BASE: 'prompt-A', TEST: 'x'); they "
                  "ran different prompts"}}) {
    TraceContents t = identified();
    t.manifest.*member = "x";
    IdentityVerdict v = check(b, t);
    EXPECT_FALSE(v.comparable);
    EXPECT_EQ(v.refusal, std::string("traces are not comparable: ") + text);
    // --allow-unidentified never accepts a difference.
    IdentityOptions o;
    o.allowUnidentified = true;
    EXPECT_FALSE(check(b, t, o).comparable);
  }
  // The reference is checked against BASE too.
  TraceContents ref = identified();
  ref.manifest.weightsDigest = "w2";
  IdentityVerdict v = check(b, identified(), {}, &ref);
  EXPECT_FALSE(v.comparable);
  EXPECT_NE(v.refusal.find("(BASE: 'weights-A', REF: 'w2')"), std::string::npos)
      << v.refusal;
}

// A model digest difference is two graphs of one model (an edited IR, a
// pass pipeline's output): compared, where their configs agree (the diff
// refuses the rest), and the report says it was accepted and why.
TEST(Identity, ADifferentModelDigestIsComparedAsDifferentGraphs) {
  TraceContents t = identified();
  t.manifest.modelDigest = "x";
  IdentityVerdict v = check(identified(), t);
  EXPECT_TRUE(v.comparable);
  EXPECT_TRUE(v.refusal.empty()) << v.refusal;
  const IdentityCheck *c = find(v, "model_digest", "TEST");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->outcome, CheckOutcome::Differs);
  EXPECT_EQ(c->waivedBy, "different graphs");
  std::vector<std::string> lines = v.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].rfind("accepted (different graphs): model digest "
                           "differs (BASE, TEST): different graphs: ",
                           0),
            0u)
      << lines[1];
  // Other differences still refuse beside it.
  t.manifest.weightsDigest = "y";
  EXPECT_FALSE(check(identified(), t).comparable);
}

// Nothing unknown is ever equal: two manifests without a weights digest do
// not have "the same" weights.
TEST(Identity, AnUnknownFieldIsNeverEqualAndRefusesUnlessAllowed) {
  TraceContents b = identified(), t = identified();
  b.manifest.weightsDigest.clear();
  t.manifest.weightsDigest.clear();
  IdentityVerdict v = check(b, t);
  EXPECT_FALSE(v.comparable);
  EXPECT_EQ(find(v, "weights_digest", "BASE")->outcome, CheckOutcome::Unknown);
  EXPECT_EQ(v.refusal,
            "traces are not fully identified: weights digest: none in BASE's "
            "manifest. Nothing unknown is taken as equal: pass "
            "--allow-unidentified to compare them anyway (the report then "
            "lists what was not checked)");
  IdentityOptions o;
  o.allowUnidentified = true;
  v = check(b, t, o);
  ASSERT_TRUE(v.comparable) << v.refusal;
  ASSERT_EQ(v.unchecked().size(), 1u);
  EXPECT_EQ(v.unchecked()[0]->waivedBy, "--allow-unidentified");
  EXPECT_EQ(v.lines().back(), "not checked (--allow-unidentified): weights "
                              "digest: none in BASE's manifest");
}

TEST(Identity, FormatTwoTracesHaveNoRunIdNorDigest) {
  IdentityVerdict v = check(identified(), formatTwo());
  EXPECT_FALSE(v.comparable);
  EXPECT_NE(v.refusal.find("TEST run id: none (format version 2, written "
                           "before run ids): records.bin is not tied to its "
                           "manifest; TEST records digest: none (format "
                           "version 2; the record count was verified)"),
            std::string::npos)
      << v.refusal;
  IdentityOptions o;
  o.allowUnidentified = true;
  v = check(identified(), formatTwo(), o);
  ASSERT_TRUE(v.comparable);
  std::vector<std::string> lines = v.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "checked: model digest, weights digest, token count, "
                      "prompt digest equal (BASE, TEST); run id tied to "
                      "records.bin (BASE); record count and digest verified "
                      "(BASE)");
  EXPECT_EQ(
      lines[1].rfind("not checked (--allow-unidentified): TEST run id", 0), 0u);
  EXPECT_EQ(lines[2].rfind("not checked (--allow-unidentified): TEST records "
                           "digest",
                           0),
            0u);
}

TEST(Identity, DifferentLengthsNeedTheirOwnFlagAndLeaveThePromptUnchecked) {
  TraceContents b = identified(), t = identified();
  t.manifest.tokenCount = 10;
  t.manifest.promptDigest = "prompt-B";
  IdentityVerdict v = check(b, t);
  EXPECT_FALSE(v.comparable);
  EXPECT_EQ(v.refusal, "traces have different lengths (BASE: 8 tokens, TEST: "
                       "10 tokens); pass --allow-different-lengths to compare "
                       "their shared positions 0..7");
  IdentityOptions o;
  o.allowDifferentLengths = true;
  v = check(b, t, o); // not --allow-unidentified: the flag covers the prompt
  ASSERT_TRUE(v.comparable) << v.refusal;
  EXPECT_EQ(find(v, "token_count", "TEST")->outcome, CheckOutcome::Differs);
  EXPECT_EQ(find(v, "prompt_digest", "TEST")->outcome, CheckOutcome::Unknown);
  EXPECT_EQ(find(v, "prompt_digest", "TEST")->waivedBy,
            "--allow-different-lengths");
  std::vector<std::string> lines = v.lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1], "accepted (--allow-different-lengths): token counts "
                      "differ (BASE: 8, TEST: 10): shared positions compared");
  EXPECT_EQ(lines[2].rfind("not checked (--allow-different-lengths): prompt "
                           "digest",
                           0),
            0u);
}

// A killed run has no count or digest to verify: its records are read up to
// its torn last frame (the reader checks that), and its run id still ties.
TEST(Identity, AnUnfinishedRunIsIdentifiedByItsRunId) {
  TraceContents t = identified();
  t.complete = false;
  t.integrity.countVerified = t.integrity.digestVerified = false;
  IdentityVerdict v = check(identified(), t);
  ASSERT_TRUE(v.comparable) << v.refusal;
  EXPECT_EQ(find(v, "run_id", "TEST")->outcome, CheckOutcome::Equal);
  EXPECT_EQ(find(v, "records_digest", "TEST"), nullptr);
}

TEST(Identity, ThreeTracesAreEachCheckedAgainstBase) {
  TraceContents ref = identified();
  IdentityVerdict v = check(identified(), identified(), {}, &ref);
  ASSERT_TRUE(v.comparable);
  EXPECT_EQ(v.checks.size(), 2 * 4 + 3 * 2u);
  EXPECT_EQ(v.lines()[0],
            "checked: model digest, weights digest, token count, prompt "
            "digest equal (BASE, TEST, REF); run id tied to records.bin "
            "(BASE, TEST, REF); record count and digest verified (BASE, "
            "TEST, REF)");
  EXPECT_EQ(checkOutcomeName(CheckOutcome::Unknown), "unknown");
}

} // namespace

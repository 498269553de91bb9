//===- DiffTest.cpp - Alignment, policies, manifests of greta-diff --------===//
#include "TestTraces.h"
#include "greta/diff/Diff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <sys/mman.h>
#include <unistd.h>

using namespace greta;
using namespace greta::diff;
using namespace greta::difftest;
using rt::Stage;

namespace {

TEST(DiffAlign, IdenticalTracesDoNotDivergeAndAreNeverComparedNumerically) {
  auto b = build(spec());
  DiffResult r = diffOk(b, b, opts(Policy::Tolerance));
  EXPECT_FALSE(r.diverged());
  EXPECT_EQ(r.counts.aligned, static_cast<int64_t>(b.records.size()));
  EXPECT_EQ(r.counts.hashEqual, r.counts.aligned);
  EXPECT_EQ(r.counts.comparedValues, 0);
  EXPECT_EQ(r.counts.bytesCompared, 0u);
  EXPECT_EQ(r.hypothesis.kind, HypothesisKind::None);
}

/// Values that fault on any read: a view into an inaccessible mapping (like
/// the reader's views into records.bin, but PROT_NONE).
rt::ValueBytes untouchable(size_t size) {
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t len = (size + page - 1) / page * page;
  void *p = ::mmap(nullptr, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  EXPECT_NE(p, MAP_FAILED);
  std::shared_ptr<void> owner(p, [len](void *q) { ::munmap(q, len); });
  return rt::ValueBytes::view(static_cast<const uint8_t *>(p), size, owner);
}

// Rows whose SHA-256 match are never read: their values fault on access,
// and the diff still completes. The death test shows the guard bites.
TEST(DiffAlign, HashEqualRowsNeverTouchTheirValues) {
  TraceSpec s = spec();
  auto b = build(s);
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::MlpOut && l == 1 && p == 3)
      v[0] += 1;
  };
  auto t = build(s);
  ASSERT_EQ(b.records.size(), t.records.size());
  int64_t guarded = 0;
  size_t differing = 0;
  for (size_t i = 0; i < b.records.size(); ++i) {
    if (b.records[i].sha256 != t.records[i].sha256) {
      differing = i;
      continue;
    }
    b.records[i].values = untouchable(b.records[i].values.size());
    t.records[i].values = untouchable(t.records[i].values.size());
    ++guarded;
  }
  ASSERT_EQ(guarded + 1, static_cast<int64_t>(b.records.size()));
  for (Policy p : {Policy::Exact, Policy::Tolerance}) {
    DiffResult r = diffOk(b, t, opts(p));
    EXPECT_TRUE(r.diverged());
    EXPECT_EQ(r.counts.hashEqual, guarded);
    EXPECT_EQ(r.counts.bytesCompared, 2u * 64 * 4);
  }
  ::testing::GTEST_FLAG(death_test_style) = "threadsafe";
  t.records[differing].values = untouchable(64 * 4);
  EXPECT_DEATH(
      {
        std::string err;
        diffTraces(b, t, nullptr, opts(Policy::Tolerance), err);
      },
      "");
}

TEST(DiffAlign, RowsFollowExecutionOrderWhateverTheFileOrder) {
  TraceSpec s = spec();
  s.stages = {Stage::EmbedOut, Stage::AttnOut, Stage::MlpOut, Stage::Logits};
  s.layers = {0, 1};
  s.positions = {0, 1, 2};
  auto b = build(s);
  auto t = b;
  std::mt19937 rng(7);
  std::shuffle(t.records.begin(), t.records.end(), rng);
  std::shuffle(b.records.begin(), b.records.end(), rng);
  DiffResult r = diffOk(b, t);
  ASSERT_EQ(r.rows.size(), b.records.size());
  for (size_t i = 1; i < r.rows.size(); ++i) {
    auto key = [](const RowResult &x) {
      return std::make_pair(rt::executionOrderKey(x.stage, x.layer),
                            x.position);
    };
    EXPECT_LT(key(r.rows[i - 1]), key(r.rows[i])) << "row " << i;
  }
  // embed_out layer 0 first, logits of the last layer last.
  EXPECT_EQ(r.rows.front().stage, Stage::EmbedOut);
  EXPECT_EQ(r.rows.back().stage, Stage::Logits);
  EXPECT_EQ(r.rows.back().layer, 1);
}

TEST(DiffAlign, FirstFailIsEarliestInExecutionOrderNotInPosition) {
  TraceSpec s = spec();
  auto b = build(s);
  // Layer 1 mlp_out at position 5 and layer 2 attn_in at position 0: the
  // layer-1 record runs first although its position is later.
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if ((st == Stage::MlpOut && l == 1 && p == 5) ||
        (st == Stage::AttnIn && l == 2 && p == 0))
      v[0] += 1;
  };
  DiffResult r = diffOk(b, build(s));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::MlpOut);
  EXPECT_EQ(r.first()->layer, 1);
  EXPECT_EQ(r.first()->position, 5);
  EXPECT_EQ(r.counts.diverging, 2);
}

TEST(DiffAlign, LowestPositionFirstWithinAGroup) {
  TraceSpec s = spec();
  auto b = build(s);
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::AttnOut && l == 0 && (p == 6 || p == 3))
      v[1] *= 2;
  };
  DiffResult r = diffOk(b, build(s));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->position, 3);
}

TEST(DiffAlign, RecordsInOneTraceOnlyAreCountedNotCompared) {
  TraceSpec s = spec();
  auto b = build(s);
  s.layers = {0, 1};
  auto t = build(s);
  DiffResult r = diffOk(b, t);
  EXPECT_FALSE(r.diverged());
  EXPECT_EQ(r.counts.onlyInBase, 12 * 8);
  EXPECT_EQ(r.counts.onlyInTest, 0);
}

TEST(DiffAlign, DuplicateRecordIsAnError) {
  auto b = build(spec());
  auto t = b;
  t.records.push_back(t.records[3]);
  std::string err = diffErr(b, t);
  EXPECT_NE(err.find("TEST trace holds two records"), std::string::npos) << err;
}

TEST(DiffAlign, NoCommonRecordIsAnError) {
  TraceSpec s = spec();
  s.positions = {0, 1};
  auto b = build(s);
  s.positions = {2, 3};
  std::string err = diffErr(b, build(s));
  EXPECT_NE(err.find("share no (stage, layer, position) record"),
            std::string::npos)
      << err;
}

TEST(DiffAlign, EmptyTraceIsAnError) {
  auto b = build(spec());
  rt::TraceContents t;
  t.manifest = b.manifest;
  EXPECT_NE(diffErr(b, t).find("TEST trace holds no records"),
            std::string::npos);
}

TEST(DiffAlign, ShapeMismatchDiverges) {
  TraceSpec s = spec();
  auto b = build(s);
  s.hidden = 32;
  DiffResult r = diffOk(b, build(s), opts(Policy::Tolerance));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->basis, Basis::Shape);
  EXPECT_NE(r.first()->note.find("element counts differ"), std::string::npos);
}

//===--- Policies ----------------------------------------------------------===//

TEST(DiffPolicy, ExactFlagsTheSmallestChange) {
  TraceSpec s = spec();
  auto b = build(s);
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::FfnNormIn && l == 2 && p == 4)
      v[7] = std::nextafter(static_cast<float>(v[7]), 2.0f);
  };
  DiffResult r = diffOk(b, build(s), opts(Policy::Exact));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::FfnNormIn);
  EXPECT_FALSE(r.first()->hashMatch);
  EXPECT_EQ(r.first()->basis, Basis::Hash);
  EXPECT_TRUE(r.first()->hasMetrics); // values present: MAE for the table
  EXPECT_GT(r.first()->metrics.mae, 0);
  // The same change is noise for the tolerance policy.
  EXPECT_FALSE(diffOk(b, build(s), opts(Policy::Tolerance)).diverged());
}

TEST(DiffPolicy, ToleranceSeparatesNoiseFromFaults) {
  TraceSpec s = spec();
  auto b = build(s);
  auto noisy = [](double rel) {
    return [rel](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
      for (size_t i = 0; i < v.size(); ++i)
        v[i] *= 1 + rel * baseValue(st, l + 100, p, i);
    };
  };
  s.perturb = noisy(1e-6); // f32 reduction-order noise
  DiffResult quiet = diffOk(b, build(s), opts(Policy::Tolerance));
  EXPECT_FALSE(quiet.diverged());
  EXPECT_GT(quiet.counts.comparedValues, 0);
  s.perturb = noisy(1e-3);
  EXPECT_TRUE(diffOk(b, build(s), opts(Policy::Tolerance)).diverged());
  // ... unless the run is declared f16, whose defaults are 100x looser.
  TraceSpec s16 = spec();
  s16.manifest = manifest(8, "f16");
  auto b16 = build(s16);
  s16.perturb = noisy(1e-3);
  EXPECT_FALSE(diffOk(b16, build(s16), opts(Policy::Tolerance)).diverged());
  // And overrides win over defaults.
  Options o = opts(Policy::Tolerance);
  o.rtol = 1e-2;
  o.atol = 1e-3;
  o.mae = 1e-2;
  s.perturb = noisy(1e-3);
  EXPECT_FALSE(diffOk(b, build(s), o).diverged());
}

// The bounds are relative to the row's scale (its RMS). Measured on an H100
// (GRETA CPU f32 vs HF CPU f32, TinyLlama-1.1B shape), a residual row of
// RMS ~2.8 differs by rel-L2 1.4e-6 with one 1.4e-5 error at an element
// near zero: rounding, which the absolute atol 1e-5 flagged. The same
// relative fault must mean the same on a residual row (RMS 0.1) and after
// a norm (RMS 1).
TEST(DiffPolicy, ToleranceIsRelativeToTheRowScale) {
  auto scaled = [](double scale, double rel, double spike) {
    TraceSpec s = spec();
    s.stages = {Stage::ResidualPostMlp, Stage::AttnIn};
    s.perturb = [=](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
      for (size_t i = 0; i < v.size(); ++i)
        v[i] *= scale * (1 + rel * baseValue(st, l + 100, p, i));
      v[0] = scale * 1e-3 + spike; // an element near zero
    };
    return build(s);
  };
  Options o = opts(Policy::Tolerance);
  // Rounding noise on a row of RMS ~2.8: no divergence.
  EXPECT_FALSE(
      diffOk(scaled(4.8, 0, 0), scaled(4.8, 1.4e-6, 1.4e-5), o).diverged());
  // A 1e-3 relative fault diverges at RMS 0.1 as at RMS 1 ...
  for (double scale : {0.17, 1.7}) {
    DiffResult r = diffOk(scaled(scale, 0, 0), scaled(scale, 1e-3, 0), o);
    ASSERT_TRUE(r.diverged()) << scale;
    EXPECT_GT(r.first()->scale, 0.5 * scale);
  }
  // ... and a 1e-6 one at neither.
  for (double scale : {0.17, 1.7})
    EXPECT_FALSE(
        diffOk(scaled(scale, 0, 0), scaled(scale, 1e-6, 0), o).diverged())
        << scale;
}

// The reference floor is relative too: a fault of 1e-3 relative to the row
// is flagged whether the rows have RMS 0.01 or 10.
TEST(DiffReference, FloorIsRelativeToTheReferenceRow) {
  for (double scale : {0.01, 10.0}) {
    auto run = [&](rt::DType d, double fault) {
      TraceSpec s = spec();
      s.dtype = d;
      s.manifest = manifest(8, d == rt::DType::F64 ? "f64" : "f32");
      s.perturb = [=](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
        for (double &x : v)
          x *= scale * (st == Stage::MlpOut && l == 1 ? 1 + fault : 1);
      };
      return build(s);
    };
    auto ref = run(rt::DType::F64, 0), base = run(rt::DType::F32, 0);
    DiffResult r =
        diffOk(base, run(rt::DType::F32, 1e-3), opts(Policy::Reference), &ref);
    ASSERT_TRUE(r.diverged()) << scale;
    EXPECT_EQ(r.first()->stage, Stage::MlpOut);
    EXPECT_FALSE(
        diffOk(base, run(rt::DType::F32, 1e-6), opts(Policy::Reference), &ref)
            .diverged())
        << scale;
  }
}

// atol and mae are relative to the row's RMS: the shift is 5e-4 x RMS.
TEST(DiffPolicy, MaeBoundCatchesAShiftThatAllcloseAllows) {
  TraceSpec s = spec();
  auto b = build(s);
  s.perturb = [](Stage st, int64_t l, int64_t, std::vector<double> &v) {
    if (st != Stage::MlpOut || l != 1)
      return;
    double sq = 0;
    for (double x : v)
      sq += x * x;
    double rms = std::sqrt(sq / v.size());
    for (double &x : v)
      x += 5e-4 * rms; // every element shifted by the same small amount
  };
  Options o = opts(Policy::Tolerance);
  o.atol = 1e-3; // allclose passes ...
  o.mae = 1e-4;  // ... the mean error does not
  DiffResult r = diffOk(b, build(s), o);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::MlpOut);
  EXPECT_EQ(r.first()->metrics.notClose, 0);
  EXPECT_NEAR(r.first()->metrics.mae, 5e-4 * r.first()->scale, 1e-6);
  o.mae = 1e-3;
  EXPECT_FALSE(diffOk(b, build(s), o).diverged());
}

// A NaN shared by BASE, TEST (and REF) leaves the row's scale the RMS of its
// finite elements: it once made the scale NaN, so the bounds fell to the unit
// roundoff and a 1e-6 x RMS difference in the finite part diverged.
TEST(DiffPolicy, SharedNaNLeavesTheScaleTheRmsOfTheFiniteElements) {
  auto nanAt = [](double shift) {
    return [shift](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
      if (st != Stage::MlpOut || l != 1 || p != 3)
        return;
      double sq = 0;
      for (size_t i = 1; i < v.size(); ++i)
        sq += v[i] * v[i];
      double rms = std::sqrt(sq / (v.size() - 1));
      for (double &x : v)
        x += shift * rms;
      v[0] = NAN;
    };
  };
  TraceSpec s = spec();
  s.perturb = nanAt(0);
  auto b = build(s);
  s.dtype = rt::DType::F64;
  auto ref = build(s);
  s.dtype = rt::DType::F32;
  s.perturb = nanAt(1e-6);
  auto t = build(s);
  for (Policy p : {Policy::Tolerance, Policy::Reference}) {
    DiffResult r =
        diffOk(b, t, opts(p), p == Policy::Reference ? &ref : nullptr);
    EXPECT_FALSE(r.diverged())
        << policyName(p) << ": " << rt::stageName(r.first()->stage) << " scale "
        << r.first()->scale;
  }
  // The finite part is still judged: a 1e-2 x RMS shift diverges there.
  s.perturb = nanAt(1e-2);
  auto bad = build(s);
  for (Policy p : {Policy::Tolerance, Policy::Reference}) {
    DiffResult r =
        diffOk(b, bad, opts(p), p == Policy::Reference ? &ref : nullptr);
    ASSERT_TRUE(r.diverged()) << policyName(p);
    EXPECT_EQ(r.first()->stage, Stage::MlpOut);
    EXPECT_EQ(r.first()->position, 3);
  }
}

TEST(DiffPolicy, ToleranceFallsBackToFingerprintWithoutValues) {
  TraceSpec s = spec();
  s.payload = rt::Payload::Stats;
  auto b = build(s);
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    for (double &x : v)
      x *= 1 + 1e-7; // hash changes, fingerprint within tolerance
    if (st == Stage::KPreRope && l == 1 && p == 2)
      v[0] = 5; // moves max and mean
  };
  DiffResult r = diffOk(b, build(s), opts(Policy::Tolerance));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::KPreRope);
  EXPECT_EQ(r.first()->basis, Basis::Fingerprint);
  EXPECT_FALSE(r.first()->hasMetrics);
  EXPECT_EQ(r.counts.diverging, 1);
  EXPECT_GT(r.counts.comparedFingerprint, 1);
  bool noted = std::any_of(r.notes.begin(), r.notes.end(), [](auto &n) {
    return n.find("judged by fingerprint") != std::string::npos;
  });
  EXPECT_TRUE(noted);
}

TEST(DiffPolicy, HashOnlyPayloadIsJudgedBitExactly) {
  TraceSpec s = spec();
  s.payload = rt::Payload::Hash;
  auto b = build(s);
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::AttnOut && l == 0 && p == 1)
      v[0] *= 1 + 1e-6;
  };
  DiffResult r = diffOk(b, build(s), opts(Policy::Tolerance));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->basis, Basis::Hash);
  EXPECT_EQ(r.counts.comparedHashOnly, 1);
}

//===--- Categories ---------------------------------------------------------===//

TEST(DiffSummary, CategoriesCountDivergingRecords) {
  TraceSpec s = spec();
  s.positions = {0};
  auto b = build(s);
  // From layer 1 attn_out on: attn_out (ATTENTION_MECHANISM),
  // residual_post_attn + residual_post_mlp (RESIDUAL_ADD), ffn_norm_in,
  // mlp_out in layer 1, then the 12 stages of layer 2.
  s.perturb = plant(Stage::AttnOut, 1, 0, 1.5);
  DiffResult r = diffOk(b, build(s));
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->category(), rt::Category::AttentionMechanism);
  EXPECT_EQ(r.counts.diverging, 5 + 12);
  auto count = [&](rt::Category c) {
    return r.categoryCounts[static_cast<unsigned>(c)];
  };
  EXPECT_EQ(count(rt::Category::RoutingSelection), 1);  // L2 pre_attn
  EXPECT_EQ(count(rt::Category::AttnKernelInputs), 4);  // L2, v_proj too
  EXPECT_EQ(count(rt::Category::AttentionMechanism), 4); // L1 attn_out + L2
  EXPECT_EQ(count(rt::Category::ResidualAdd), 4);
  EXPECT_EQ(count(rt::Category::FfnNormPath), 2);
  EXPECT_EQ(count(rt::Category::MlpOutput), 2);
  EXPECT_EQ(count(rt::Category::Unknown), 0);
}

//===--- Manifests ----------------------------------------------------------===//

TEST(DiffManifest, DifferentDigestsAreRefusedNamingBothValues) {
  auto b = build(spec());
  for (auto field :
       {&rt::Manifest::weightsDigest, &rt::Manifest::promptDigest}) {
    auto t = b;
    t.manifest.*field = "other-digest";
    std::string err = diffErr(b, t);
    EXPECT_NE(err.find("BASE: '" + b.manifest.*field + "'"), std::string::npos)
        << err;
    EXPECT_NE(err.find("TEST: 'other-digest'"), std::string::npos) << err;
  }
}

// Two graphs of one config (an edited IR, a pass pipeline's output) are
// compared, and the result says so; configs that differ are refused.
TEST(DiffManifest, DifferentGraphsOfOneConfigCompare) {
  TraceSpec s = spec();
  auto b = build(s);
  s.manifest.model = "edited";
  s.manifest.modelDigest = "model-B-0123456789";
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::MlpOut && l == 1 && p >= 2)
      v[3] += 0.5;
  };
  auto t = build(s);
  DiffResult r = diffOk(b, t);
  EXPECT_EQ(r.differentGraphs, "synthetic (model-A) vs edited (model-B-0123)");
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::MlpOut);
  EXPECT_EQ(r.first()->position, 2);
  EXPECT_TRUE(diffOk(b, b).differentGraphs.empty());
}

TEST(DiffManifest, DifferentGraphsOfDifferentConfigsAreRefused) {
  TraceSpec s = spec();
  auto b = build(s);
  s.manifest.modelDigest = "model-B";
  TraceSpec wide = s;
  wide.hidden = 96; // another hidden size
  std::string err = diffErr(b, build(wide));
  EXPECT_NE(err.find("different configs"), std::string::npos) << err;
  EXPECT_NE(err.find("64 elements in BASE, 96 in TEST"), std::string::npos)
      << err;
  TraceSpec deeper = s;
  deeper.layers = {0, 1, 2, 3}; // another layer count
  err = diffErr(b, build(deeper));
  EXPECT_NE(err.find("different configs"), std::string::npos) << err;
  EXPECT_NE(err.find("layer 3"), std::string::npos) << err;
  EXPECT_NE(err.find("only in TEST"), std::string::npos) << err;
}

// A version-1 trace (record frames only, an older GRETA: no run id, no
// records digest) is not identified: refused, unless asked for; then it
// compares with a version-3 one (the records mean the same) and the result
// says what was not checked.
TEST(DiffManifest, TracesOfFormatVersion1CompareWhenUnidentifiedIsAllowed) {
  auto b = build(spec());
  auto t = b;
  t.manifest.formatVersion = 1;
  t.manifest.runId.clear();
  t.integrity = {};
  t.integrity.countVerified = true;
  std::string err = diffErr(b, t);
  EXPECT_NE(err.find("traces are not fully identified: TEST run id: none "
                     "(format version 1, written before run ids)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("--allow-unidentified"), std::string::npos) << err;
  Options o;
  o.allowUnidentified = true;
  DiffResult r = diffOk(b, t, o);
  EXPECT_FALSE(r.diverged());
  EXPECT_EQ(r.counts.aligned, static_cast<int64_t>(b.records.size()));
  std::vector<const rt::IdentityCheck *> unchecked = r.identity.unchecked();
  ASSERT_EQ(unchecked.size(), 2u);
  EXPECT_EQ(unchecked[0]->field, "run_id");
  EXPECT_EQ(unchecked[1]->field, "records_digest");
  EXPECT_EQ(unchecked[0]->waivedBy, "--allow-unidentified");
}

TEST(DiffManifest, ReferenceOfAnotherModelIsRefused) {
  auto b = build(spec());
  auto ref = b;
  ref.manifest.weightsDigest = "w2";
  std::string err = diffErr(b, b, opts(Policy::Reference), &ref);
  EXPECT_NE(err.find("REF: 'w2'"), std::string::npos) << err;
}

TEST(DiffManifest, DifferentLengthsNeedTheFlagThenCompareSharedPositions) {
  TraceSpec s = spec();
  s.manifest = manifest(6);
  s.positions = {0, 1, 2, 3, 4, 5};
  auto b = build(s);
  s.manifest = manifest(8);
  s.positions = {0, 1, 2, 3, 4, 5, 6, 7};
  s.perturb = [](Stage, int64_t, int64_t p, std::vector<double> &v) {
    if (p >= 6)
      v[0] += 1; // past the shorter run: must not count
  };
  auto t = build(s);
  std::string err = diffErr(b, t);
  EXPECT_NE(err.find("BASE: 6 tokens, TEST: 8 tokens"), std::string::npos)
      << err;
  EXPECT_NE(err.find("--allow-different-lengths"), std::string::npos);
  Options o;
  o.allowDifferentLengths = true;
  DiffResult r = diffOk(b, t, o);
  EXPECT_FALSE(r.diverged());
  EXPECT_EQ(r.counts.beyondSharedLength, 2 * 12 * 3);
  EXPECT_EQ(r.counts.aligned, 6 * 12 * 3);
  EXPECT_FALSE(r.notes.empty());
}

TEST(DiffManifest, TruncatedTraceComparesUpToWhereItStops) {
  TraceSpec s = spec();
  auto b = build(s);
  s.perturb = plant(Stage::MlpOut, 2, 0, 2.0);
  auto t = build(s);
  // TEST died inside layer 1: its later records are gone.
  t.records.resize(11 * 8 + 5 * 8);
  t.complete = false;
  t.stopReason = "record 128 at byte 9999: checksum mismatch";
  DiffResult r = diffOk(b, t);
  EXPECT_FALSE(r.diverged()); // the fault lies past the truncation
  EXPECT_EQ(r.counts.afterTruncation,
            static_cast<int64_t>(b.records.size() - t.records.size()));
  EXPECT_EQ(r.counts.onlyInBase, 0);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_NE(r.notes[0].find("TEST trace is truncated (record 128"),
            std::string::npos)
      << r.notes[0];
  // A fault before the truncation point is still found.
  s.perturb = plant(Stage::AttnIn, 1, 2, 2.0);
  auto t2 = build(s);
  t2.records.resize(t.records.size());
  t2.complete = false;
  DiffResult r2 = diffOk(b, t2);
  ASSERT_TRUE(r2.diverged());
  EXPECT_EQ(r2.first()->stage, Stage::AttnIn);
  EXPECT_EQ(r2.first()->position, 2);
}

TEST(DiffManifest, UnfinishedTraceWithoutStopReasonIsStillTruncated) {
  auto b = build(spec());
  auto t = b;
  t.complete = false;
  DiffResult r = diffOk(b, t);
  ASSERT_FALSE(r.notes.empty());
  EXPECT_NE(r.notes[0].find("did not finish"), std::string::npos);
}

TEST(DiffManifest, ParallelAndSerialAgree) {
  TraceSpec s = spec();
  s.positions.resize(0);
  for (int p = 0; p < 64; ++p)
    s.positions.push_back(p);
  auto b = build(s);
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    for (size_t i = 0; i < v.size(); ++i)
      v[i] *= 1 + 1e-6 * baseValue(st, l, p + 1000, i);
    if (st == Stage::MlpOut && l == 2 && p == 40)
      v[3] += 1;
  };
  auto t = build(s);
  Options one = opts(Policy::Tolerance), four = opts(Policy::Tolerance);
  one.jobs = 1;
  four.jobs = 4;
  DiffResult a = diffOk(b, t, one), c = diffOk(b, t, four);
  ASSERT_TRUE(a.diverged() && c.diverged());
  EXPECT_EQ(*a.firstFail, *c.firstFail);
  EXPECT_EQ(a.counts.diverging, c.counts.diverging);
  EXPECT_EQ(a.counts.bytesCompared, c.counts.bytesCompared);
  for (size_t i = 0; i < a.rows.size(); ++i)
    EXPECT_EQ(a.rows[i].metrics.mae, c.rows[i].metrics.mae);
}

} // namespace

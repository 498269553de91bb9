//===- DiffReferenceTest.cpp - Reference policy, non-finite rows --*- C++ -*-===//
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

//===--- Reference policy on a simulated f32 / f16 / f64 residual stack ---===//

/// A tiny residual network run at three precisions: every op's result is
/// rounded to `p` (f16 emulation rounds each op, accumulates dots in f32).
struct Stack {
  static constexpr int H = 1024, L = 4, T = 6;
  std::vector<double> W[L];
  Stack() {
    for (int l = 0; l < L; ++l) {
      W[l].resize(H * 8);
      for (int i = 0; i < H * 8; ++i)
        W[l][i] = baseValue(Stage::MlpOut, l + 50, i, 3) / std::sqrt(8.0);
    }
  }
  static double rnd(double x, Precision p) {
    switch (p) {
    case Precision::F64:
      return x;
    case Precision::F32:
      return static_cast<float>(x);
    case Precision::F16:
      return rt::roundToHalf(x);
    case Precision::BF16:
      return rt::roundToBF16(x);
    }
    return x;
  }
  /// Trace of residual_post_attn / mlp_out / residual_post_mlp at every
  /// layer; `fault` scales mlp_out of `faultLayer` from `faultPos` on.
  rt::TraceContents run(Precision p, double fault = 1, int faultLayer = -1,
                        int faultPos = 0) const {
    rt::TraceContents t;
    t.manifest = manifest(T, std::string(precisionName(p)));
    t.complete = true;
    markVerified(t);
    rt::DType d = p == Precision::F64 ? rt::DType::F64 : rt::DType::F32;
    for (int pos = 0; pos < T; ++pos) {
      std::vector<double> x(H);
      for (int i = 0; i < H; ++i)
        x[i] = rnd(baseValue(Stage::EmbedOut, 0, pos, i), p);
      for (int l = 0; l < L; ++l) {
        // A "mixer": each output mixes 8 neighbours, tanh nonlinearity.
        std::vector<double> m(H);
        for (int i = 0; i < H; ++i) {
          double acc = 0;
          for (int j = 0; j < 8; ++j) {
            double prod = x[(i * 7 + j * 131) % H] * W[l][i * 8 + j];
            acc = p == Precision::F64 ? acc + prod
                                      : static_cast<float>(acc + prod);
          }
          m[i] = rnd(std::tanh(rnd(acc, p)), p);
          if (l == faultLayer && pos >= faultPos)
            m[i] = rnd(m[i] * fault, p);
        }
        for (int i = 0; i < H; ++i)
          x[i] = rnd(x[i] + m[i], p);
        t.records.push_back(makeRecord(Stage::MlpOut, l, pos, m, d));
        t.records.push_back(makeRecord(Stage::ResidualPostMlp, l, pos, x, d));
      }
    }
    return t;
  }
};

TEST(DiffReference, CleanF16RunPassesAgainstF32BaseWithF64Reference) {
  Stack s;
  auto ref = s.run(Precision::F64), base = s.run(Precision::F32),
       test = s.run(Precision::F16);
  DiffResult r = diffOk(base, test, opts(Policy::Reference), &ref);
  EXPECT_FALSE(r.diverged())
      << "first: " << rt::stageName(r.first()->stage) << " L"
      << r.first()->layer << " p" << r.first()->position << " err "
      << r.first()->errTest << " vs " << r.first()->errBase;
  EXPECT_EQ(r.counts.comparedValues, r.counts.aligned);
  // The tolerance policy at f32 defaults would have cried wolf.
  Options tol = opts(Policy::Tolerance);
  tol.rtol = 1e-4;
  tol.atol = 1e-5;
  tol.mae = 1e-5;
  EXPECT_TRUE(diffOk(base, test, tol).diverged());
}

TEST(DiffReference, PlantedOnePercentFaultInF16RunIsFound) {
  Stack s;
  auto ref = s.run(Precision::F64), base = s.run(Precision::F32),
       test = s.run(Precision::F16, 1.01, /*layer=*/2, /*pos=*/3);
  DiffResult r = diffOk(base, test, opts(Policy::Reference), &ref);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->stage, Stage::MlpOut);
  EXPECT_EQ(r.first()->layer, 2);
  EXPECT_EQ(r.first()->position, 3);
  EXPECT_EQ(r.first()->basis, Basis::Reference);
  EXPECT_GT(r.first()->errTest, r.first()->k * r.first()->errBase);
  EXPECT_DOUBLE_EQ(r.first()->k, 3.0); // TEST is f16
}

TEST(DiffReference, RuleIsErrTestAboveKErrBasePlusFloor) {
  TraceSpec s = spec();
  s.hidden = 2000; // >= 1000 elements: k = 2 for f32
  auto ref = build(s);
  auto off = [](double e) {
    return [e](Stage, int64_t, int64_t, std::vector<double> &v) {
      for (size_t i = 0; i < v.size(); ++i)
        v[i] += (i % 2 ? e : -e);
    };
  };
  s.perturb = off(1e-3);
  auto base = build(s); // err(BASE, REF) = 1e-3
  s.perturb = off(1.9e-3);
  auto ok = build(s); // 1.9e-3 <= 2 * 1e-3 + 1e-5
  s.perturb = off(2.1e-3);
  auto bad = build(s); // 2.1e-3 > 2.01e-3
  EXPECT_FALSE(diffOk(base, ok, opts(Policy::Reference), &ref).diverged());
  DiffResult r = diffOk(base, bad, opts(Policy::Reference), &ref);
  ASSERT_TRUE(r.diverged());
  EXPECT_DOUBLE_EQ(r.first()->k, 2.0);
  EXPECT_NEAR(r.first()->errBase, 1e-3, 1e-9);
  EXPECT_NEAR(r.first()->errTest, 2.1e-3, 1e-9);
  // A larger k forgives it.
  Options o = opts(Policy::Reference);
  o.k = 3;
  EXPECT_FALSE(diffOk(base, bad, o, &ref).diverged());
}

TEST(DiffReference, AccumulationAllowanceGrowsWithSqrtDepthPastEightLayers) {
  TraceSpec s = spec();
  s.stages = {Stage::MlpOut};
  s.layers = {2, 7, 20};
  s.hidden = 2000;
  auto ref = build(s), base = build(s);
  s.dtype = rt::DType::F16; // TEST coarser than BASE: the allowance applies
  auto test = build(s);
  DiffResult r = diffOk(base, test, opts(Policy::Reference), &ref);
  const double u = std::ldexp(1.0, -11); // f16 unit roundoff
  int checked = 0;
  for (const RowResult &row : r.rows) {
    for (const rt::Record &rec : ref.records) {
      if (rec.layer != row.layer || rec.position != row.position)
        continue;
      double sq = 0;
      std::vector<double> v = rec.valuesAsDouble();
      for (double x : v)
        sq += x * x;
      double rms = std::sqrt(sq / v.size());
      // Flat 8 u for the first 8 layers, then 8 u * sqrt((layer + 1) / 8).
      double depth = row.layer < 8 ? 1.0 : (row.layer + 1) / 8.0;
      EXPECT_NEAR(row.allowance, 8 * u * rms * std::sqrt(depth),
                  1e-12 * (1 + rms))
          << "layer " << row.layer;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 3 * 8);
}

TEST(DiffReference, MissingReferenceRowFallsBackToTolerance) {
  TraceSpec s = spec();
  auto base = build(s);
  s.layers = {0, 1};
  auto ref = build(s); // no layer 2
  s.layers = {0, 1, 2};
  s.perturb = [](Stage st, int64_t l, int64_t, std::vector<double> &v) {
    if (st == Stage::MlpOut && l == 2)
      v[0] += 1;
  };
  DiffResult r = diffOk(base, build(s), opts(Policy::Reference), &ref);
  ASSERT_TRUE(r.diverged());
  EXPECT_EQ(r.first()->layer, 2);
  EXPECT_EQ(r.first()->basis, Basis::Values);
  EXPECT_NE(r.first()->note.find("absent from REF"), std::string::npos);
  EXPECT_GT(r.counts.referenceFallback, 0);
}

// Issue 18 item 6: BASE and TEST share NaN and inf elements in rows where
// TEST's finite elements are halved; REF is finite. Every policy finds the
// first such row: a shared non-finite value never makes two rows match.
TEST(DiffNonFinite, SharedNonFiniteValuesNeverMaskADivergence) {
  TraceSpec s = spec();
  auto shared = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::FfnNormIn && l == 1 && p >= 3) {
      v[0] = NAN;
      v[1] = INFINITY;
      v[2] = -INFINITY;
    }
  };
  s.dtype = rt::DType::F64;
  s.manifest = manifest(8, "f64");
  auto ref = build(s);
  s.dtype = rt::DType::F32;
  s.manifest = manifest(8, "f32");
  s.perturb = shared;
  auto b = build(s);
  s.perturb = [&](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    shared(st, l, p, v);
    if (st == Stage::FfnNormIn && l == 1 && p >= 3)
      for (size_t i = 3; i < v.size(); ++i)
        v[i] *= 0.5;
  };
  auto t = build(s);
  for (Policy p : {Policy::Exact, Policy::Tolerance, Policy::Reference}) {
    SCOPED_TRACE(policyName(p));
    DiffResult r =
        diffOk(b, t, opts(p), p == Policy::Reference ? &ref : nullptr);
    ASSERT_TRUE(r.diverged());
    const RowResult *ff = r.first();
    EXPECT_EQ(ff->stage, Stage::FfnNormIn);
    EXPECT_EQ(ff->layer, 1);
    EXPECT_EQ(ff->position, 3);
    ASSERT_TRUE(ff->hasMetrics);
    EXPECT_EQ(ff->metrics.finite, 61);
    EXPECT_EQ(ff->metrics.nonFiniteDiffer, 0);
    EXPECT_NEAR(ff->metrics.relL2, 0.5, 1e-6);
    EXPECT_NEAR(ff->metrics.cosine, 1, 1e-9);
    if (p == Policy::Reference) {
      EXPECT_EQ(ff->basis, Basis::Reference);
      EXPECT_GT(ff->errTest, 100 * ff->errBase);
    }
  }
}

// Only the non-finite positions differ (a NaN moved): the finite elements
// are equal, and still the row diverges in every policy.
TEST(DiffNonFinite, MovedNonFiniteValuesDivergeInEveryPolicy) {
  TraceSpec s = spec();
  s.dtype = rt::DType::F64;
  s.manifest = manifest(8, "f64");
  auto ref = build(s);
  s.dtype = rt::DType::F32;
  s.manifest = manifest(8, "f32");
  auto at = [](int64_t i) {
    return [i](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
      if (st == Stage::MlpOut && l == 2 && p == 5)
        v[i] = NAN;
    };
  };
  s.perturb = at(0);
  auto b = build(s);
  s.perturb = at(1);
  auto t = build(s);
  for (Policy p : {Policy::Exact, Policy::Tolerance, Policy::Reference}) {
    SCOPED_TRACE(policyName(p));
    DiffResult r =
        diffOk(b, t, opts(p), p == Policy::Reference ? &ref : nullptr);
    ASSERT_TRUE(r.diverged());
    EXPECT_EQ(r.first()->stage, Stage::MlpOut);
    EXPECT_EQ(r.first()->position, 5);
    EXPECT_EQ(r.first()->metrics.nonFiniteDiffer, 2);
    if (p != Policy::Exact)
      EXPECT_NE(r.first()->note.find("2 non-finite elements differ"),
                std::string::npos)
          << r.first()->note;
  }
}

// REF non-finite where BASE and TEST are finite cannot judge the row: the
// tolerance policy does, and says so.
TEST(DiffNonFinite, NonFiniteReferenceFallsBackToTolerance) {
  TraceSpec s = spec();
  s.dtype = rt::DType::F64;
  s.manifest = manifest(8, "f64");
  s.perturb = [](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
    if (st == Stage::MlpOut && l == 2 && p == 5)
      v[7] = NAN;
  };
  auto ref = build(s);
  s.dtype = rt::DType::F32;
  s.manifest = manifest(8, "f32");
  s.perturb = nullptr;
  auto b = build(s);
  s.perturb = plant(Stage::MlpOut, 2, 5, 1.5);
  auto t = build(s);
  DiffResult r = diffOk(b, t, opts(Policy::Reference), &ref);
  ASSERT_TRUE(r.diverged());
  const RowResult *ff = r.first();
  EXPECT_EQ(ff->stage, Stage::MlpOut);
  EXPECT_EQ(ff->basis, Basis::Values);
  EXPECT_FALSE(ff->hasReference);
  EXPECT_EQ(ff->note, "REF has 1 non-finite elements where BASE and TEST are "
                      "finite: judged by tolerance");
}

// The same holds when TEST is within the floor of BASE: a REF row with a
// NaN has no usable scale, so the reference shortcut must not judge it.
TEST(DiffNonFinite, NonFiniteReferenceNeverTakesTheFloorShortcut) {
  auto tiny = [](double factor, bool nan) {
    return [=](Stage st, int64_t l, int64_t p, std::vector<double> &v) {
      if (st != Stage::MlpOut || l != 2 || p != 5)
        return;
      for (double &x : v)
        x *= 1e-12 * factor; // RMS far below f32's unit roundoff
      if (nan)
        v[7] = NAN;
    };
  };
  TraceSpec s = spec();
  s.dtype = rt::DType::F64;
  s.manifest = manifest(8, "f64");
  s.perturb = tiny(1, true);
  auto ref = build(s);
  s.dtype = rt::DType::F32;
  s.manifest = manifest(8, "f32");
  s.perturb = tiny(1, false);
  auto b = build(s);
  s.perturb = tiny(1.5, false);
  DiffResult r = diffOk(b, build(s), opts(Policy::Reference), &ref);
  const RowResult *row = nullptr;
  for (size_t x = 0; x < r.rows.size(); ++x)
    if (r.rows.stage(x) == Stage::MlpOut && r.rows.layer(x) == 2 &&
        r.rows.position(x) == 5)
      row = r.rows.stored(x);
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(row->basis, Basis::Values);
  EXPECT_FALSE(row->hasReference);
  EXPECT_EQ(row->note, "REF has 1 non-finite elements where BASE and TEST are "
                       "finite: judged by tolerance");
}

TEST(DiffReference, NeedsAReferenceTrace) {
  auto b = build(spec());
  EXPECT_NE(diffErr(b, b, opts(Policy::Reference)).find("--ref"),
            std::string::npos);
}

} // namespace

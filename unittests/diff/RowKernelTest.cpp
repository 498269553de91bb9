//===- KernelTest.cpp - Per-row metrics of greta-diff ---------------------===//
#include "TestTraces.h"
#include "greta/diff/Diff.h"

#include <gtest/gtest.h>

using namespace greta;
using namespace greta::diff;
using namespace greta::difftest;

namespace {

std::vector<uint8_t> bytesOf(const std::vector<double> &v, rt::DType d) {
  std::vector<uint8_t> out(v.size() * rt::dtypeSize(d));
  for (size_t i = 0; i < v.size(); ++i)
    store(d, v[i], out.data() + i * rt::dtypeSize(d));
  return out;
}

Metrics run(const std::vector<double> &a, const std::vector<double> &b,
            rt::DType da = rt::DType::F32, rt::DType db = rt::DType::F32,
            double atol = 0, double rtol = 0) {
  auto ba = bytesOf(a, da), bb = bytesOf(b, db);
  return metricsOf(
      accumulateRow(da, ba.data(), db, bb.data(), a.size(), atol, rtol));
}

TEST(DiffKernel, MetricsOfAKnownPair) {
  Metrics m = run({1, 2, 3, 4}, {1, 2, 3.5, 4});
  EXPECT_DOUBLE_EQ(m.mae, 0.125);
  EXPECT_DOUBLE_EQ(m.maxAbs, 0.5);
  EXPECT_DOUBLE_EQ(m.rmse, std::sqrt(0.25 / 4));
  EXPECT_DOUBLE_EQ(m.relL2, 0.5 / std::sqrt(30.0));
  EXPECT_NEAR(m.cosine, 31.5 / (std::sqrt(30.0) * std::sqrt(33.25)), 1e-15);
  EXPECT_EQ(m.notClose, 1);
}

TEST(DiffKernel, AllcloseUsesAtolPlusRtolTimesBase) {
  // |b-a| <= atol + rtol*|a|: 0.09 <= 0.05 + 0.05*1 passes, 0.09 > 0.06.
  EXPECT_EQ(run({1}, {1.09}, rt::DType::F64, rt::DType::F64, 0.05, 0.05)
                .notClose, 0);
  EXPECT_EQ(run({1}, {1.09}, rt::DType::F64, rt::DType::F64, 0.05, 0.01)
                .notClose, 1);
  // Relative to BASE, not TEST: |10 - 1| <= 0 + 0.5*|1| fails.
  EXPECT_EQ(run({1}, {10}, rt::DType::F64, rt::DType::F64, 0, 0.5).notClose,
            1);
}

TEST(DiffKernel, NaNAndInfAreCounted) {
  Metrics m = run({NAN, 1, INFINITY, 0}, {NAN, NAN, INFINITY, -INFINITY});
  EXPECT_EQ(m.nanBase, 1);
  EXPECT_EQ(m.nanTest, 2);
  EXPECT_EQ(m.infBase, 1);
  EXPECT_EQ(m.infTest, 2);
  // Element 0 (both NaN) and 2 (equal infinities) are close, as in
  // numpy.isclose(equal_nan=True); 1 (NaN vs 1) and 3 (-inf vs 0) are not.
  EXPECT_EQ(m.notClose, 2);
  EXPECT_EQ(m.nonFiniteDiffer, 2);
  // No element is finite on both sides: every metric is undefined, never 0.
  EXPECT_EQ(m.finite, 0);
  for (double v : {m.mae, m.maxAbs, m.rmse, m.relL2, m.cosine})
    EXPECT_TRUE(std::isnan(v)) << v;
}

// A shared NaN or inf stays out of the sums: the finite elements are
// measured on their own (issue 18 item 6: a shared non-finite value made
// rel-L2 NaN and the reference errors equal).
TEST(DiffKernel, FiniteElementsAreMeasuredOnTheirOwn) {
  Metrics m =
      run({NAN, 1, INFINITY, 2, -INFINITY}, {NAN, 0.5, INFINITY, 1, -INFINITY});
  EXPECT_EQ(m.finite, 2);
  EXPECT_EQ(m.nonFiniteDiffer, 0);
  EXPECT_EQ(m.notClose, 2);
  EXPECT_DOUBLE_EQ(m.mae, 0.75);
  EXPECT_DOUBLE_EQ(m.maxAbs, 1);
  EXPECT_DOUBLE_EQ(m.relL2, 0.5);
  EXPECT_DOUBLE_EQ(m.cosine, 1);
  // An inf that changed sign, or a NaN that became inf, differs.
  Metrics s = run({INFINITY, NAN, 1}, {-INFINITY, INFINITY, 1});
  EXPECT_EQ(s.nonFiniteDiffer, 2);
  EXPECT_EQ(s.notClose, 2);
  EXPECT_EQ(s.finite, 1);
  EXPECT_EQ(s.mae, 0);
}

TEST(DiffKernel, BothNaNIsClose) {
  EXPECT_EQ(run({NAN, 2}, {NAN, 2}).notClose, 0);
}

TEST(DiffKernel, EveryDTypePairAgreesWithF64) {
  // 2500 elements: more than one 1024-element widening chunk, not a multiple.
  std::vector<double> a(2500), b(2500);
  for (int i = 0; i < 2500; ++i) {
    a[i] = baseValue(rt::Stage::MlpOut, 1, 2, i);
    b[i] = a[i] * 1.25; // exact in every dtype after rounding a
  }
  for (rt::DType da : {rt::DType::F32, rt::DType::F64, rt::DType::F16,
                       rt::DType::BF16})
    for (rt::DType db : {rt::DType::F32, rt::DType::F64, rt::DType::F16,
                         rt::DType::BF16}) {
      // Reference: the values as stored, widened to double.
      auto ba = bytesOf(a, da), bb = bytesOf(b, db);
      double sumAbs = 0, maxAbs = 0;
      for (int i = 0; i < 2500; ++i) {
        auto load = [](rt::DType d, const uint8_t *p) -> double {
          if (d == rt::DType::F32) {
            float f;
            std::memcpy(&f, p, 4);
            return f;
          }
          if (d == rt::DType::F64) {
            double x;
            std::memcpy(&x, p, 8);
            return x;
          }
          uint16_t h;
          std::memcpy(&h, p, 2);
          return d == rt::DType::F16 ? rt::halfBitsToFloat(h)
                                     : rt::bf16BitsToFloat(h);
        };
        double d = load(db, bb.data() + i * rt::dtypeSize(db)) -
                   load(da, ba.data() + i * rt::dtypeSize(da));
        sumAbs += std::fabs(d);
        maxAbs = std::max(maxAbs, std::fabs(d));
      }
      Metrics m = metricsOf(
          accumulateRow(da, ba.data(), db, bb.data(), 2500, 0, 0));
      SCOPED_TRACE(std::string(rt::dtypeName(da)) + " vs " +
                   std::string(rt::dtypeName(db)));
      EXPECT_NEAR(m.mae, sumAbs / 2500, 1e-12);
      EXPECT_DOUBLE_EQ(m.maxAbs, maxAbs);
    }
}

TEST(DiffKernel, ZeroRows) {
  Metrics m = run({0, 0}, {0, 0});
  EXPECT_EQ(m.relL2, 0);
  EXPECT_TRUE(std::isnan(m.cosine)); // a zero row has no direction
  Metrics n = run({0, 0}, {1, 0});
  EXPECT_TRUE(std::isinf(n.relL2));
  EXPECT_TRUE(std::isnan(n.cosine)); // undefined, not 0
}

TEST(DiffKernel, RmseRoundsToTheGivenPrecision) {
  // 1 + 2^-12 rounds to 1 in f16 (10 mantissa bits) but not in f32.
  std::vector<double> x{1 + 1.0 / 4096}, ref{1};
  auto bx = bytesOf(x, rt::DType::F64), br = bytesOf(ref, rt::DType::F64);
  EXPECT_DOUBLE_EQ(rmseRounded(rt::DType::F64, bx.data(), rt::DType::F64,
                               br.data(), 1, Precision::F32),
                   1.0 / 4096);
  EXPECT_DOUBLE_EQ(rmseRounded(rt::DType::F64, bx.data(), rt::DType::F64,
                               br.data(), 1, Precision::F16),
                   0.0);
}

TEST(DiffKernel, RmseSkipsNonFiniteElementsAndCountsTheReferenceOnes) {
  std::vector<double> x{1, NAN, 3, 4}, ref{1, NAN, NAN, 2};
  auto bx = bytesOf(x, rt::DType::F64), br = bytesOf(ref, rt::DType::F64);
  int64_t refOnly = -1;
  EXPECT_DOUBLE_EQ(rmseRounded(rt::DType::F64, bx.data(), rt::DType::F64,
                               br.data(), 4, Precision::F64, &refOnly),
                   std::sqrt(4.0 / 2));
  EXPECT_EQ(refOnly, 1); // element 2: x finite, ref NaN
  std::vector<double> nan{NAN};
  auto bn = bytesOf(nan, rt::DType::F64);
  EXPECT_TRUE(std::isnan(rmseRounded(rt::DType::F64, bn.data(), rt::DType::F64,
                                     bn.data(), 1, Precision::F64)));
}

TEST(DiffKernel, DefaultsTightenWithPrecision) {
  Tolerance f64 = defaultTolerance(Precision::F64),
            f32 = defaultTolerance(Precision::F32),
            f16 = defaultTolerance(Precision::F16),
            bf16 = defaultTolerance(Precision::BF16);
  EXPECT_LT(f64.rtol, f32.rtol);
  EXPECT_LT(f32.rtol, f16.rtol);
  EXPECT_LT(f16.rtol, bf16.rtol);
  EXPECT_DOUBLE_EQ(f32.rtol, 1e-4);
  EXPECT_DOUBLE_EQ(f16.rtol, 1e-2);
}

} // namespace

//===- TestTraces.h - In-memory traces for the greta-diff unit tests ------===//
#ifndef GRETA_TEST_UNIT_DIFF_TESTTRACES_H
#define GRETA_TEST_UNIT_DIFF_TESTTRACES_H

#include "greta/diff/Diff.h"
#include "greta/rt/Half.h"
#include "greta/rt/Sha256.h"
#include "greta/rt/Trace.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>

namespace greta::difftest {

inline rt::Manifest manifest(int64_t tokens = 8, std::string precision = "f32") {
  rt::Manifest m;
  m.runId = "00112233445566778899aabbccddeeff";
  m.model = "synthetic";
  m.modelDigest = "model-A";
  m.weightsDigest = "weights-A";
  m.promptDigest = "prompt-" + std::to_string(tokens);
  m.promptName = "p_test";
  m.tokenCount = tokens;
  m.backend = "cpu";
  m.precision = std::move(precision);
  return m;
}

/// Deterministic value in [-1, 1) of (stage, layer, position, element).
inline double baseValue(rt::Stage s, int64_t layer, int64_t pos, int64_t i) {
  uint64_t x = (rt::executionOrderKey(s, layer) * 1315423911ull) ^
               (pos * 2654435761ull) ^ (i * 97531ull + 12345);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return static_cast<double>(x >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

inline void store(rt::DType d, double v, uint8_t *p) {
  switch (d) {
  case rt::DType::F32: {
    float f = static_cast<float>(v);
    std::memcpy(p, &f, 4);
    break;
  }
  case rt::DType::F64:
    std::memcpy(p, &v, 8);
    break;
  case rt::DType::F16: {
    uint16_t h = rt::doubleToHalfBits(v);
    std::memcpy(p, &h, 2);
    break;
  }
  case rt::DType::BF16: {
    uint16_t h = rt::doubleToBF16Bits(v);
    std::memcpy(p, &h, 2);
    break;
  }
  }
}

/// A record of `values` with real SHA-256, counts and fingerprint.
inline rt::Record makeRecord(rt::Stage s, int64_t layer, int64_t pos,
                             const std::vector<double> &values,
                             rt::DType d = rt::DType::F32,
                             rt::Payload payload = rt::Payload::Full) {
  rt::Record r;
  r.stage = s;
  r.layer = layer;
  r.position = pos;
  r.dtype = d;
  r.shape = {static_cast<int64_t>(values.size())};
  r.payload = payload;
  size_t es = rt::dtypeSize(d);
  std::vector<uint8_t> bytes(values.size() * es);
  double mn = INFINITY, mx = -INFINITY, sum = 0, sq = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    store(d, values[i], bytes.data() + i * es);
    double v = values[i];
    r.nzCount += v != 0;
    if (std::isnan(v)) {
      ++r.nanCount;
      continue;
    }
    r.infCount += std::isinf(v);
    mn = std::min(mn, v);
    mx = std::max(mx, v);
    sum += v;
    sq += v * v;
  }
  r.sha256 = rt::sha256(bytes.data(), bytes.size());
  if (payload != rt::Payload::Hash)
    r.fingerprint = {mn, mx, sum / values.size(), std::sqrt(sq)};
  else
    r.nanCount = r.infCount = 0;
  if (payload == rt::Payload::Full)
    r.values = std::move(bytes);
  return r;
}

/// Builds a trace over stages x layers x positions; `perturb` may change a
/// row's values given (stage, layer, position).
struct TraceSpec {
  std::vector<rt::Stage> stages;
  std::vector<int64_t> layers{0, 1, 2};
  std::vector<int64_t> positions{0, 1, 2, 3, 4, 5, 6, 7};
  int64_t hidden = 64;
  rt::DType dtype = rt::DType::F32;
  rt::Payload payload = rt::Payload::Full;
  rt::Manifest manifest = difftest::manifest();
  std::function<void(rt::Stage, int64_t, int64_t, std::vector<double> &)>
      perturb;
};

inline std::vector<rt::Stage> allLayerStages() {
  std::vector<rt::Stage> v;
  // Every stage of a dense layer, in execution order (not embed_out,
  // logits, the KV-cache stages `--stages all` leaves out, nor the
  // mixture-of-experts stages: RoutingTest.cpp has those).
  for (unsigned s = 1; s + 1 < rt::kNumStages; ++s)
    if (!rt::isCacheStage(rt::kExecutionOrder[s]) &&
        rt::kExecutionOrder[s] != rt::Stage::RouterLogits &&
        rt::kExecutionOrder[s] != rt::Stage::ExpertSelection &&
        rt::kExecutionOrder[s] != rt::Stage::MoeOut)
      v.push_back(rt::kExecutionOrder[s]);
  return v;
}

/// What readTrace verifies of a finished format-3 trace, as if it had read
/// `t` from disk: its run id tied to records.bin, its count and digest.
inline void markVerified(rt::TraceContents &t) {
  t.integrity.runIdTied = !t.manifest.runId.empty();
  t.integrity.countVerified = t.integrity.digestVerified = t.complete;
  t.integrity.recordsDigest = std::string(64, '0');
}

inline rt::TraceContents build(const TraceSpec &spec) {
  rt::TraceContents t;
  t.manifest = spec.manifest;
  t.complete = true;
  markVerified(t);
  std::vector<rt::Stage> stages =
      spec.stages.empty() ? allLayerStages() : spec.stages;
  for (int64_t l : spec.layers)
    for (rt::Stage s : stages)
      for (int64_t p : spec.positions) {
        std::vector<double> v(spec.hidden);
        for (int64_t i = 0; i < spec.hidden; ++i)
          v[i] = baseValue(s, l, p, i);
        if (spec.perturb)
          spec.perturb(s, l, p, v);
        t.records.push_back(makeRecord(s, l, p, v, spec.dtype, spec.payload));
      }
  return t;
}

/// Perturbation that scales (stage, layer) from position `from` on and every
/// later record at those positions, like a real fault propagating.
inline auto plant(rt::Stage s, int64_t layer, int64_t from, double factor) {
  return [=](rt::Stage rs, int64_t rl, int64_t rp, std::vector<double> &v) {
    if (rp >= from &&
        rt::executionOrderKey(rs, rl) >= rt::executionOrderKey(s, layer))
      for (double &x : v)
        x *= factor;
  };
}

/// The default trace of the tests (TraceSpec's defaults).
inline TraceSpec spec() { return TraceSpec{}; }

/// Comparison options with `p` and the defaults otherwise.
inline diff::Options opts(diff::Policy p) {
  diff::Options o;
  o.policy = p;
  return o;
}

/// diffTraces that must succeed (its result) or fail (its error).
inline diff::DiffResult diffOk(const rt::TraceContents &b,
                               const rt::TraceContents &t, diff::Options o = {},
                               const rt::TraceContents *ref = nullptr) {
  std::string err;
  auto r = diff::diffTraces(b, t, ref, o, err);
  EXPECT_TRUE(r.has_value()) << err;
  return r ? *r : diff::DiffResult{};
}

inline std::string diffErr(const rt::TraceContents &b,
                           const rt::TraceContents &t, diff::Options o = {},
                           const rt::TraceContents *ref = nullptr) {
  std::string err;
  auto r = diff::diffTraces(b, t, ref, o, err);
  EXPECT_FALSE(r.has_value());
  return err;
}

} // namespace greta::difftest

#endif

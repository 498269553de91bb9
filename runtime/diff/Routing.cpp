//===- Routing.cpp - Mixture-of-experts routing in the diff -----*- C++ -*-===//
//
// An expert_selection row is [k ids, k weights] (the CPU writer also puts
// the ids in the record's top ids, so they are known at every payload). A
// change of ids is a divergence under every policy: the token went to
// other experts, which no tolerance on the weights can excuse. The flip is
// then explained from the router_logits of the same layer and position:
// each run's margin (k-th minus (k+1)-th score), how far the scores moved
// between the runs, and whether each run's ids are the top-k of its own
// scores (docs/DIFF.md, "Routing").
//
//===----------------------------------------------------------------------===//
#include "Routing.h"
#include "Judge.h"

#include "greta/rt/Half.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>

using namespace greta;
using namespace greta::diff;
using namespace greta::diff::detail;

namespace {
/// Element i of a row with values, widened to double.
double valueAt(const Record &r, int64_t i) {
  const uint8_t *p = r.values.data();
  switch (r.dtype) {
  case rt::DType::F32: {
    float v;
    std::memcpy(&v, p + 4 * i, 4);
    return v;
  }
  case rt::DType::F64: {
    double v;
    std::memcpy(&v, p + 8 * i, 8);
    return v;
  }
  case rt::DType::F16: {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return rt::halfBitsToFloat(h);
  }
  case rt::DType::BF16: {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return rt::bf16BitsToFloat(h);
  }
  }
  return std::nan("");
}

/// The expert ids of a selection row, rank order: its top ids, else the
/// first half of its values; nullopt when neither can be read.
std::optional<std::vector<int32_t>> expertIds(const Record &r) {
  int64_t k = elementsOf(r) / 2;
  if (k > 0 && static_cast<int64_t>(r.top5.size()) == k)
    return r.top5;
  if (!hasValues(r) || k <= 0)
    return std::nullopt;
  std::vector<int32_t> ids(k);
  for (int64_t j = 0; j < k; ++j) {
    double v = valueAt(r, j);
    if (!(v >= 0 && v < 2147483647.0) || v != std::floor(v))
      return std::nullopt;
    ids[j] = static_cast<int32_t>(v);
  }
  return ids;
}

std::string idList(const std::vector<int32_t> &ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i)
    s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

std::string num(double v) {
  if (std::isnan(v))
    return "unknown";
  if (std::isinf(v))
    return "n/a (every expert is chosen)";
  std::ostringstream os;
  os.precision(3);
  os << v;
  return os.str();
}

/// The row of (stage, layer, position) in `rows`, copied into `out`. A row
/// whose values cannot be read back counts as absent: the flip's explanation
/// then lacks it, the verdict (already judged) does not change.
bool findRow(const TraceRows &rows, rt::Stage stage, int64_t layer,
             int64_t position, Record &out) {
  for (uint32_t s = 0; s < rows.segments(); ++s)
    for (uint32_t j = 0; j < rows.segRows(s); ++j) {
      RowRef r{s, j};
      if (rows.stage(r) == stage && rows.layer(r) == layer &&
          rows.position(r) == position) {
        Record scratch;
        std::string error;
        const Record *got = rows.record(r, scratch, error);
        if (!got)
          return false;
        out = *got;
        return true;
      }
    }
  return false;
}

/// Scores of a router_logits row with values; empty otherwise.
std::vector<double> scoresOf(const Record *r) {
  std::vector<double> s;
  if (!r || !hasValues(*r))
    return s;
  int64_t n = elementsOf(*r);
  s.reserve(n);
  for (int64_t i = 0; i < n; ++i)
    s.push_back(valueAt(*r, i));
  return s;
}

/// k-th minus (k+1)-th largest score; inf when k covers every expert.
double marginOf(std::vector<double> s, size_t k) {
  if (k >= s.size())
    return INFINITY;
  std::sort(s.begin(), s.end(), std::greater<double>());
  return s[k - 1] - s[k];
}

/// The ids are the top-k of the run's own scores, in rank order, up to
/// `slack` (ties and the rounding of softmax are not held against them).
bool followsScores(const std::vector<int32_t> &ids,
                   const std::vector<double> &s, double slack) {
  std::vector<bool> chosen(s.size(), false);
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= s.size() || chosen[id])
      return false;
    chosen[id] = true;
  }
  for (size_t j = 1; j < ids.size(); ++j)
    if (s[ids[j]] > s[ids[j - 1]] + slack)
      return false;
  double lowest = s[ids.back()];
  for (size_t e = 0; e < s.size(); ++e)
    if (!chosen[e] && s[e] > lowest + slack)
      return false;
  return true;
}
} // namespace

bool greta::diff::detail::judgeSelection(const Record &b, const Record &t,
                                         RowResult &row) {
  std::optional<std::vector<int32_t>> bi = expertIds(b), ti = expertIds(t);
  if (!bi || !ti) {
    // A fingerprint could hide two experts trading places: bit-exact.
    row.basis = Basis::Hash;
    row.diverges = true;
    row.note = "expert ids unknown (no values or top ids on a side): judged "
               "bit-exactly";
    return true;
  }
  if (*bi == *ti)
    return false;
  row.basis = Basis::Selection;
  row.diverges = true;
  row.note = "experts " + idList(*bi) + " -> " + idList(*ti);
  return true;
}

std::optional<RoutingFlip> greta::diff::detail::findRoutingFlip(
    const TraceRows &base, const TraceRows &test, const RowResult &ff) {
  if (ff.stage != rt::Stage::ExpertSelection || ff.basis != Basis::Selection)
    return std::nullopt;
  Record bs, ts, bl, tl;
  if (!findRow(base, ff.stage, ff.layer, ff.position, bs) ||
      !findRow(test, ff.stage, ff.layer, ff.position, ts))
    return std::nullopt;
  std::optional<std::vector<int32_t>> bi = expertIds(bs), ti = expertIds(ts);
  if (!bi || !ti)
    return std::nullopt;
  RoutingFlip f;
  f.layer = ff.layer;
  f.position = ff.position;
  f.baseExperts = *bi;
  f.testExperts = *ti;
  bool haveB =
      findRow(base, rt::Stage::RouterLogits, ff.layer, ff.position, bl);
  bool haveT =
      findRow(test, rt::Stage::RouterLogits, ff.layer, ff.position, tl);
  std::vector<double> sb = scoresOf(haveB ? &bl : nullptr),
                      st = scoresOf(haveT ? &tl : nullptr);
  f.baseMargin = sb.empty() ? NAN : marginOf(sb, bi->size());
  f.testMargin = st.empty() ? NAN : marginOf(st, ti->size());
  f.logitChange = NAN;
  if (sb.empty() || st.empty() || sb.size() != st.size()) {
    f.cause = RoutingFlip::Cause::Unknown;
    return f;
  }
  f.logitChange = 0;
  double scale = 0;
  for (size_t e = 0; e < sb.size(); ++e) {
    f.logitChange = std::max(f.logitChange, std::fabs(sb[e] - st[e]));
    scale = std::max({scale, std::fabs(sb[e]), std::fabs(st[e])});
  }
  // Softmax may round two close scores to one probability; what top-k then
  // keeps is a tie. A few f32 ulps of the largest score cover it.
  double slack = 8 * 0x1p-24 * scale;
  // A flip that follows from the scores needs them to move by half the
  // margin each: a run whose ids are not the top-k of its own scores was
  // routed by something other than its scores.
  bool consistent =
      followsScores(*bi, sb, slack) && followsScores(*ti, st, slack);
  f.cause =
      consistent ? RoutingFlip::Cause::Fragile : RoutingFlip::Cause::RouterBug;
  return f;
}

std::string_view greta::diff::routingCauseName(RoutingFlip::Cause c) {
  switch (c) {
  case RoutingFlip::Cause::Fragile:
    return "numerically fragile routing";
  case RoutingFlip::Cause::RouterBug:
    return "router or gating bug";
  case RoutingFlip::Cause::Unknown:
    return "unknown (router_logits not traced with values)";
  }
  return "?";
}

std::string greta::diff::routingFlipLine(const RoutingFlip &f) {
  return "layer " + std::to_string(f.layer) + ", position " +
         std::to_string(f.position) + ": experts " + idList(f.baseExperts) +
         " -> " + idList(f.testExperts) + "; router margin BASE " +
         num(f.baseMargin) + ", TEST " + num(f.testMargin) +
         "; router logits moved by up to " + num(f.logitChange) + ": " +
         std::string(routingCauseName(f.cause));
}

std::string greta::diff::routingAdvice(const RoutingFlip &f) {
  std::string where = " (layer " + std::to_string(f.layer) + ", position " +
                      std::to_string(f.position) + ")";
  switch (f.cause) {
  case RoutingFlip::Cause::Fragile:
    return "Numerically fragile routing" + where +
           ": both runs chose the top-k of their own router scores, and the "
           "scores moved by more than the gap between the last chosen and "
           "the first unchosen expert. Not a kernel bug: audit the router's "
           "precision (the gate GEMM's dtype and accumulation, softmax in "
           "f32), the tie-breaking of top-k, and whether the difference "
           "upstream (the residual stream) is expected; compare the two "
           "runs on a prompt without near-ties, or pin the router to f32.";
  case RoutingFlip::Cause::RouterBug:
    return "Router or gating bug" + where +
           ": a run's chosen experts are not the top-k of its own router "
           "scores, so the flip does not come from the scores. Audit the "
           "top-k kernel (index arithmetic, off-by-one expert ids, the "
           "order of softmax, top-k and renormalisation), the expert-id to "
           "weight-tensor mapping, and the token-to-expert dispatch "
           "(gather/scatter indices).";
  case RoutingFlip::Cause::Unknown:
    break;
  }
  return "The chosen experts differ" + where +
         ": trace router_logits with --payload full to tell a near-tie "
         "(numerically fragile routing) from a router or gating bug; then "
         "audit the router's precision and the top-k kernel.";
}

//===- Advice.cpp - Hypotheses and recommendations --------------*- C++ -*-===//
//
// From a DiffResult, the likely cause of FIRST_FAIL (selectHypothesis) and
// what to study next (docs/DIFF.md, "Hypotheses").
//
//===----------------------------------------------------------------------===//
#include "greta/diff/Diff.h"

#include <algorithm>
#include <cmath>
#include <sstream>

using namespace greta;
using namespace greta::diff;
using rt::Stage;

//===----------------------------------------------------------------------===//
// Hypotheses
//===----------------------------------------------------------------------===//

namespace {
std::string fmt(double v) {
  std::ostringstream os;
  os.precision(3);
  os << v;
  return os.str();
}
} // namespace

Hypothesis greta::diff::selectHypothesis(const DiffResult &res) {
  Hypothesis h;
  const RowResult *ff = res.first();
  if (!ff)
    return h;
  // Rows are read through their cheap fields: only diverging rows (always
  // stored in full) are looked at as RowResults.
  const RowResults &rows = res.rows;
  size_t nRows = rows.size();
  auto keyAt = [&](size_t i) {
    return std::pair{rt::executionOrderKey(rows.stage(i), rows.layer(i)),
                     rows.position(i)};
  };
  bool sortedRows = true; // strictly ascending: diffTraces' order
  for (size_t i = 1; i < nRows && sortedRows; ++i)
    sortedRows = keyAt(i - 1) < keyAt(i);
  std::vector<int64_t> allPos, divPos;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  for (size_t i = 0; i < nRows; ++i) {
    lo = std::min(lo, rows.position(i));
    hi = std::max(hi, rows.position(i));
  }
  if (nRows && static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo) <
                   4 * static_cast<uint64_t>(nRows) + 1024) {
    // Distinct positions through a bitmap: no sort of every row.
    std::vector<bool> seen(static_cast<size_t>(hi - lo) + 1);
    for (size_t i = 0; i < nRows; ++i)
      seen[static_cast<size_t>(rows.position(i) - lo)] = true;
    for (size_t p = 0; p < seen.size(); ++p)
      if (seen[p])
        allPos.push_back(lo + static_cast<int64_t>(p));
  } else {
    for (size_t i = 0; i < nRows; ++i)
      allPos.push_back(rows.position(i));
  }
  for (const RowResult &r : rows.storedRows())
    if (r.diverges)
      divPos.push_back(r.position);
  auto uniq = [](std::vector<int64_t> &v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  };
  uniq(allPos);
  uniq(divPos);
  // The row of (stage, layer, position), built on demand; the last one
  // when rows repeat a key.
  std::vector<RowResult> found; // keeps the rows find() returns alive
  found.reserve(4);
  auto find = [&](Stage s, int64_t layer, int64_t pos) -> const RowResult * {
    std::pair<int64_t, int64_t> k{rt::executionOrderKey(s, layer), pos};
    size_t at = nRows;
    if (sortedRows) {
      size_t a = 0, b = nRows;
      while (a < b) {
        size_t m = a + (b - a) / 2;
        if (keyAt(m) < k)
          a = m + 1;
        else
          b = m;
      }
      if (a < nRows && keyAt(a) == k)
        at = a;
    } else {
      for (size_t i = nRows; i-- > 0;)
        if (keyAt(i) == k) {
          at = i;
          break;
        }
    }
    if (at == nRows)
      return nullptr;
    if (const RowResult *r = rows.stored(at))
      return r;
    found.push_back(rows[at]);
    return &found.back();
  };
  int64_t p0 = divPos.front();
  bool cleanBefore = allPos.front() < p0;
  std::vector<int64_t> tail(std::lower_bound(allPos.begin(), allPos.end(), p0),
                            allPos.end());
  bool suffix = tail == divPos; // every compared position from p0 on diverges
  bool onset = cleanBefore && suffix;
  bool everywhere = divPos == allPos && allPos.size() > 1;
  bool isolated = !suffix;

  // Size of the error over diverging rows with values.
  double maxRel = 0;
  bool anyMetrics = false, nanInf = false;
  for (const RowResult &r : rows.storedRows()) {
    if (!r.diverges || !r.hasMetrics)
      continue;
    anyMetrics = true;
    maxRel = std::max(maxRel, r.metrics.relL2);
    if (r.metrics.nanTest != r.metrics.nanBase ||
        r.metrics.infTest != r.metrics.infBase || r.metrics.nonFiniteDiffer)
      nanInf = true;
  }
  bool small = anyMetrics && maxRel < 1e-2 && !nanInf;
  // MAE of FIRST_FAIL's stage at its position, layer by layer.
  std::vector<double> maeByLayer;
  for (const RowResult &r : rows.storedRows())
    if (r.stage == ff->stage && r.position == ff->position && r.diverges &&
        r.hasMetrics)
      maeByLayer.push_back(r.metrics.mae);
  bool grows = maeByLayer.size() >= 2 &&
               std::is_sorted(maeByLayer.begin(), maeByLayer.end()) &&
               maeByLayer.back() > maeByLayer.front();
  bool sparse = ff->hasMetrics && ff->elements > 0 &&
                ff->metrics.notClose * 20 < ff->elements &&
                ff->metrics.maxAbs > 10 * ff->metrics.mae;
  bool precisionsDiffer = res.base.precision != res.test.precision;

  auto say = [&](std::string s) { h.evidence.push_back(std::move(s)); };
  std::string at = "layer " + std::to_string(ff->layer) + ", position " +
                   std::to_string(ff->position);
  if (onset)
    say("divergence starts at position " + std::to_string(p0) +
        " and every compared position from there on diverges, while the " +
        std::to_string(std::lower_bound(allPos.begin(), allPos.end(), p0) -
                       allPos.begin()) +
        " earlier compared positions match: a position-dependent cause");
  else if (everywhere)
    say("every compared position (" + std::to_string(allPos.size()) +
        ") diverges: no position threshold");
  else if (isolated)
    say("diverging positions are not a contiguous tail: " +
        std::to_string(divPos.size()) + " of " + std::to_string(allPos.size()) +
        " compared positions diverge, with "
        "matching positions after the first divergent one");
  else
    say("only position " + std::to_string(p0) +
        " was compared: the position pattern cannot be judged (trace more "
        "positions, e.g. a range ending at " +
        std::to_string(p0) + ")");

  // 0. A router chose other experts: everything after it follows.
  if (res.routing) {
    h.kind = HypothesisKind::Routing;
    say("the router chose other experts at " + routingFlipLine(*res.routing));
    if (res.routing->cause == RoutingFlip::Cause::Fragile)
      h.alternatives.push_back(HypothesisKind::NumericPrecision);
    return h;
  }
  // 1. RoPE: post-RoPE diverges while its pre-RoPE input matches.
  if (ff->stage == Stage::QPostRope || ff->stage == Stage::KPostRope) {
    Stage pre =
        ff->stage == Stage::QPostRope ? Stage::QPreRope : Stage::KPreRope;
    const RowResult *p = find(pre, ff->layer, ff->position);
    h.kind = HypothesisKind::PositionEncoding;
    if (p)
      say(std::string(rt::stageName(ff->stage)) + " diverges at " + at +
          " while its input " + std::string(rt::stageName(pre)) +
          " matches: RoPE itself changes the values");
    else
      say(std::string(rt::stageName(ff->stage)) +
          " is the first divergent "
          "record; " +
          std::string(rt::stageName(pre)) +
          " was not traced: trace it to confirm that RoPE is the cause");
    if (small)
      h.alternatives.push_back(HypothesisKind::NumericPrecision);
    return h;
  }
  // 2. Attention output wrong while the token's own Q/K are right: the other
  // positions it reads (the KV cache) or the softmax over them.
  if (ff->stage == Stage::AttnOut) {
    const RowResult *q = find(Stage::QPostRope, ff->layer, ff->position);
    const RowResult *k = find(Stage::KPostRope, ff->layer, ff->position);
    if (q || k)
      say(std::string("attn_out diverges at ") + at + " while " +
          (q && k ? "q_post_rope and k_post_rope match"
           : q    ? "q_post_rope matches"
                  : "k_post_rope matches") +
          ": the inputs of this token are right, the keys/values it reads "
          "from other positions or the softmax over them are not");
    else
      say("attn_out is the first divergent record; q_post_rope/k_post_rope "
          "were not traced at that layer and position");
    if (small && everywhere && !onset) {
      h.kind = HypothesisKind::NumericPrecision;
      say("small relative error (max relative L2 " + fmt(maxRel) +
          ") at every position: softmax/accumulation precision");
      h.alternatives.push_back(HypothesisKind::KVCache);
    } else {
      h.kind = HypothesisKind::KVCache;
      h.alternatives.push_back(HypothesisKind::NumericPrecision);
    }
    return h;
  }
  // 3. A few wild elements or NaN/Inf: something wrote where it should not.
  if (sparse || nanInf) {
    h.kind = HypothesisKind::MemoryLayout;
    if (sparse)
      say(std::to_string(ff->metrics.notClose) + " of " +
          std::to_string(ff->elements) + " elements of " +
          std::string(rt::stageName(ff->stage)) + " (" + at + ")" +
          " are off, by up to " + fmt(ff->metrics.maxAbs) + " (MAE " +
          fmt(ff->metrics.mae) + "): localized corruption, not noise");
    if (nanInf)
      say("NaN/Inf counts differ between BASE and TEST on divergent rows");
    return h;
  }
  // 4. Small errors everywhere, or growing with length in a lower precision.
  if (small && (everywhere || (onset && precisionsDiffer))) {
    h.kind = HypothesisKind::NumericPrecision;
    say("errors are small (max relative L2 " + fmt(maxRel) +
        "), typical of rounding, not of a wrong computation");
    if (grows)
      say("MAE of " + std::string(rt::stageName(ff->stage)) +
          " grows across layers (" + fmt(maeByLayer.front()) + " to " +
          fmt(maeByLayer.back()) + "): accumulation");
    if (precisionsDiffer)
      say("the runs use different precisions (BASE " + res.base.precision +
          ", TEST " + res.test.precision + ")");
    return h;
  }
  if (isolated) {
    h.kind = HypothesisKind::MemoryLayout;
    say("isolated divergent positions point at specific offsets (strided "
        "access, buffer aliasing), not at a threshold");
    return h;
  }
  if (onset) {
    // A per-token stage cannot see the position; going wrong from p on
    // means the row's place in memory matters, unless it is the embedding
    // (then read as position encoding).
    uint64_t offset =
        static_cast<uint64_t>(p0) * ff->elements * rt::dtypeSize(ff->testDType);
    if ((ff->stage == Stage::EmbedOut || ff->stage == Stage::ResidualPreAttn) &&
        ff->layer == 0) {
      h.kind = HypothesisKind::PositionEncoding;
      say("the first divergent record is the layer-0 input, before any "
          "attention: the first suspect is the position encoding of the "
          "embedding in extended contexts");
      h.alternatives.push_back(HypothesisKind::MemoryLayout);
    } else {
      h.kind = HypothesisKind::MemoryLayout;
      h.alternatives.push_back(HypothesisKind::KVCache);
    }
    say(std::string(rt::stageName(ff->stage)) +
        " is computed per token, without reading the position; the row of "
        "position " +
        std::to_string(p0) + " starts at byte offset " +
        std::to_string(offset) + " of a [tokens, " +
        std::to_string(ff->elements) +
        "] buffer: check strides and buffer "
        "sizes around it");
    if (small)
      h.alternatives.push_back(HypothesisKind::NumericPrecision);
    return h;
  }
  h.kind = HypothesisKind::Inconclusive;
  if (!anyMetrics)
    say("no values on the divergent rows (hash payload): record with "
        "--payload full to judge error sizes");
  else
    say("max relative L2 " + fmt(maxRel) +
        " on divergent rows: too large for rounding, no position pattern");
  return h;
}

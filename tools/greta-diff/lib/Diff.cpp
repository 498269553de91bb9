//===- Diff.cpp - Alignment, policies, FIRST_FAIL --------------------------===//
#include "greta/diff/Diff.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <sstream>
#include <thread>
#include <tuple>
#include <unordered_map>

using namespace greta;
using namespace greta::diff;
using rt::Record;
using rt::Stage;
using rt::TraceContents;

std::string_view greta::diff::policyName(Policy p) {
  switch (p) {
  case Policy::Exact:
    return "exact";
  case Policy::Tolerance:
    return "tolerance";
  case Policy::Reference:
    return "reference";
  }
  return "?";
}

std::optional<Policy> greta::diff::parsePolicy(std::string_view name) {
  for (Policy p : {Policy::Exact, Policy::Tolerance, Policy::Reference})
    if (policyName(p) == name)
      return p;
  return std::nullopt;
}

std::string_view greta::diff::precisionName(Precision p) {
  switch (p) {
  case Precision::F64:
    return "f64";
  case Precision::F32:
    return "f32";
  case Precision::F16:
    return "f16";
  case Precision::BF16:
    return "bf16";
  }
  return "?";
}

std::optional<Precision> greta::diff::parsePrecision(std::string_view name) {
  for (Precision p :
       {Precision::F64, Precision::F32, Precision::F16, Precision::BF16})
    if (precisionName(p) == name)
      return p;
  return std::nullopt;
}

Precision greta::diff::precisionOf(rt::DType d) {
  switch (d) {
  case rt::DType::F64:
    return Precision::F64;
  case rt::DType::F32:
    return Precision::F32;
  case rt::DType::F16:
    return Precision::F16;
  case rt::DType::BF16:
    return Precision::BF16;
  }
  return Precision::F32;
}

Tolerance greta::diff::defaultTolerance(Precision p) {
  // rtol: a few ulps of the precision, times the growth of reduction-order
  // noise over long dot products and many layers; atol and the MAE bound are
  // rtol/10 (docs/DIFF.md, "Tolerance defaults").
  switch (p) {
  case Precision::F64:
    return {1e-10, 1e-9, 1e-10};
  case Precision::F32:
    return {1e-5, 1e-4, 1e-5};
  case Precision::F16:
    return {1e-3, 1e-2, 1e-3};
  case Precision::BF16:
    return {5e-3, 5e-2, 5e-3};
  }
  return {1e-5, 1e-4, 1e-5};
}

std::string_view greta::diff::basisName(Basis b) {
  switch (b) {
  case Basis::HashEqual:
    return "hash-equal";
  case Basis::Hash:
    return "hash";
  case Basis::Values:
    return "values";
  case Basis::Fingerprint:
    return "fingerprint";
  case Basis::Reference:
    return "reference";
  case Basis::Shape:
    return "shape";
  }
  return "?";
}

std::string_view greta::diff::hypothesisName(HypothesisKind h) {
  switch (h) {
  case HypothesisKind::None:
    return "none";
  case HypothesisKind::PositionEncoding:
    return "position encoding";
  case HypothesisKind::KVCache:
    return "KV cache";
  case HypothesisKind::NumericPrecision:
    return "numeric precision";
  case HypothesisKind::MemoryLayout:
    return "memory layout";
  case HypothesisKind::Inconclusive:
    return "inconclusive";
  }
  return "?";
}

//===----------------------------------------------------------------------===//
// Manifests
//===----------------------------------------------------------------------===//

static bool isTruncated(const TraceContents &t) {
  return !t.complete || !t.stopReason.empty();
}

bool greta::diff::checkCompatible(const TraceContents &a, const char *roleA,
                                  const TraceContents &b, const char *roleB,
                                  bool allowDifferentLengths, bool isReference,
                                  std::string &error) {
  const rt::Manifest &ma = a.manifest, &mb = b.manifest;
  auto refuse = [&](const char *what, const std::string &va,
                    const std::string &vb, const char *why) {
    std::ostringstream os;
    os << "traces are not comparable: " << what << " differs (" << roleA
       << ": '" << va << "', " << roleB << ": '" << vb << "'); " << why;
    error = os.str();
    return false;
  };
  // Format versions may differ: every version the reader accepts yields the
  // same records (version 2 only adds block frames), so a v1 trace from an
  // older GRETA compares with a new one.
  if (ma.modelDigest != mb.modelDigest)
    return refuse("model digest", ma.modelDigest, mb.modelDigest,
                  "they ran different model IR");
  if (ma.weightsDigest != mb.weightsDigest)
    return refuse("weights digest", ma.weightsDigest, mb.weightsDigest,
                  "they ran different weights");
  bool sameLength = ma.tokenCount == mb.tokenCount;
  if (!sameLength && !allowDifferentLengths) {
    std::ostringstream os;
    os << "traces have different lengths (" << roleA << ": " << ma.tokenCount
       << " tokens, " << roleB << ": " << mb.tokenCount
       << " tokens); pass --allow-different-lengths to compare their shared "
          "positions 0.."
       << std::min(ma.tokenCount, mb.tokenCount) - 1;
    error = os.str();
    return false;
  }
  // The digest covers every token id, so it necessarily differs when the
  // lengths do; then the shared prefix cannot be checked here.
  if (sameLength && ma.promptDigest != mb.promptDigest)
    return refuse("prompt digest", ma.promptDigest, mb.promptDigest,
                  "they ran different prompts");
  (void)isReference;
  return true;
}

//===----------------------------------------------------------------------===//
// Alignment
//===----------------------------------------------------------------------===//

namespace {

struct Key {
  int64_t order, position;
  Stage stage;
  int64_t layer;
  bool operator<(const Key &o) const {
    return std::tie(order, position) < std::tie(o.order, o.position);
  }
  bool operator==(const Key &o) const {
    return order == o.order && position == o.position;
  }
};

Key keyOf(const Record &r) {
  return {rt::executionOrderKey(r.stage, r.layer), r.position, r.stage,
          r.layer};
}

struct KeyHash {
  size_t operator()(const std::pair<int64_t, int64_t> &k) const {
    return std::hash<int64_t>()(k.first * 1000003 + k.second);
  }
};

std::string describe(const Key &k) {
  std::ostringstream os;
  os << rt::stageName(k.stage) << " layer " << k.layer << " position "
     << k.position;
  return os.str();
}

/// Record indices sorted by execution order; fails on duplicates and on
/// records past `maxPosition` (which are counted, not returned).
bool sortedIndex(const TraceContents &t, const char *role, int64_t maxPosition,
                 std::vector<std::pair<Key, const Record *>> &out,
                 int64_t &beyond, std::string &error) {
  out.clear();
  out.reserve(t.records.size());
  for (const Record &r : t.records) {
    if (static_cast<unsigned>(r.stage) >= rt::kNumStages) {
      error = std::string(role) + " trace has a record with unknown stage id " +
              std::to_string(static_cast<unsigned>(r.stage));
      return false;
    }
    if (r.position >= maxPosition) {
      ++beyond;
      continue;
    }
    out.push_back({keyOf(r), &r});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto &x, const auto &y) { return x.first < y.first; });
  for (size_t i = 1; i < out.size(); ++i)
    if (out[i].first == out[i - 1].first) {
      error = std::string(role) + " trace holds two records for " +
              describe(out[i].first) + " (a trace must record each once)";
      return false;
    }
  return true;
}

int64_t elementsOf(const Record &r) {
  int64_t n = 1;
  for (int64_t d : r.shape)
    n *= d;
  return n;
}

bool hasValues(const Record &r) {
  return r.payload == rt::Payload::Full &&
         r.values.size() ==
             static_cast<size_t>(elementsOf(r)) * rt::dtypeSize(r.dtype);
}

bool hasFingerprint(const Record &r) {
  return r.payload == rt::Payload::Stats || r.payload == rt::Payload::Full;
}

Precision coarser(Precision a, Precision b) { return a > b ? a : b; }

Precision manifestPrecision(const rt::Manifest &m) {
  return parsePrecision(m.precision).value_or(Precision::F64);
}

bool fingerprintClose(const rt::Fingerprint &a, const rt::Fingerprint &b,
                      const Tolerance &t) {
  auto close = [&](double x, double y) {
    return std::fabs(y - x) <= t.atol + t.rtol * std::fabs(x);
  };
  return close(a.min, b.min) && close(a.max, b.max) && close(a.mean, b.mean) &&
         close(a.l2, b.l2);
}

/// The work of one aligned row; filled in by judge().
struct Pending {
  const Record *base, *test, *ref;
};

/// Unit roundoff (half an ulp at 1) of each precision.
double unitRoundoff(Precision p) {
  switch (p) {
  case Precision::F64:
    return 0x1p-53;
  case Precision::F32:
    return 0x1p-24;
  case Precision::F16:
    return 0x1p-11;
  case Precision::BF16:
    return 0x1p-8;
  }
  return 0;
}

class Judge {
public:
  Judge(const Options &o, const rt::Manifest &mb, const rt::Manifest &mt)
      : opts(o), basePrec(manifestPrecision(mb)),
        testPrec(manifestPrecision(mt)) {}

  void judge(const Pending &p, RowResult &row, uint64_t &bytes) const {
    const Record &b = *p.base, &t = *p.test;
    row.precision = coarser(coarser(precisionOf(b.dtype), precisionOf(t.dtype)),
                            coarser(basePrec, testPrec));
    row.tolerance = tolerance(row.precision);
    if (row.hashMatch) {
      row.basis = Basis::HashEqual;
      return;
    }
    if (elementsOf(b) != elementsOf(t)) {
      row.basis = Basis::Shape;
      row.diverges = true;
      row.note = "element counts differ: BASE " +
                 std::to_string(elementsOf(b)) + ", TEST " +
                 std::to_string(elementsOf(t));
      return;
    }
    bool values = hasValues(b) && hasValues(t);
    if (values) {
      double atol = row.tolerance.atol, rtol = row.tolerance.rtol;
      if (opts.policy == Policy::Reference)
        atol = rtol = 10 * opts.floor; // PyTorch's allclose(tol) pre-check.
      RowAccum acc = accumulateRow(b.dtype, b.values.data(), t.dtype,
                                   t.values.data(), row.elements, atol, rtol);
      bytes += b.values.size() + t.values.size();
      row.hasMetrics = true;
      row.metrics = metricsOf(acc);
    }
    switch (opts.policy) {
    case Policy::Exact:
      row.basis = Basis::Hash;
      row.diverges = true;
      return;
    case Policy::Tolerance:
      judgeTolerance(b, t, values, row);
      return;
    case Policy::Reference:
      if (values && p.ref && hasValues(*p.ref) &&
          elementsOf(*p.ref) == row.elements) {
        judgeReference(b, t, *p.ref, row);
        return;
      }
      row.note = !values ? "no values in BASE/TEST: judged by tolerance"
                 : !p.ref ? "record absent from REF: judged by tolerance"
                          : "REF record has no values: judged by tolerance";
      if (values) { // The metrics above used the reference pre-check bounds.
        RowAccum acc = accumulateRow(b.dtype, b.values.data(), t.dtype,
                                     t.values.data(), row.elements,
                                     row.tolerance.atol, row.tolerance.rtol);
        row.metrics = metricsOf(acc);
      }
      judgeTolerance(b, t, values, row);
      return;
    }
  }

private:
  Tolerance tolerance(Precision p) const {
    Tolerance t = defaultTolerance(p);
    if (opts.atol)
      t.atol = *opts.atol;
    if (opts.rtol)
      t.rtol = *opts.rtol;
    if (opts.mae)
      t.mae = *opts.mae;
    return t;
  }

  void judgeTolerance(const Record &b, const Record &t, bool values,
                      RowResult &row) const {
    if (values) {
      row.basis = Basis::Values;
      // NaN MAE with every NaN matched (notClose == 0) is not a divergence.
      row.diverges =
          row.metrics.notClose > 0 || row.metrics.mae > row.tolerance.mae;
      return;
    }
    if (hasFingerprint(b) && hasFingerprint(t)) {
      row.basis = Basis::Fingerprint;
      row.diverges = b.nanCount != t.nanCount || b.infCount != t.infCount ||
                     !fingerprintClose(b.fingerprint, t.fingerprint,
                                       row.tolerance);
      return;
    }
    row.basis = Basis::Hash;
    row.diverges = true;
    if (row.note.empty())
      row.note = "hash-only payload: judged bit-exactly";
  }

  void judgeReference(const Record &b, const Record &t, const Record &r,
                      RowResult &row) const {
    row.basis = Basis::Reference;
    row.hasReference = true;
    Precision testP = coarser(precisionOf(t.dtype), testPrec);
    Precision baseP = coarser(precisionOf(b.dtype), basePrec);
    // Like PyTorch's `ref.to(res.dtype)`: a baseline finer than TEST is
    // rounded to TEST's precision, so f16 rounding alone is never blamed.
    Precision roundBase = coarser(testP, baseP);
    row.k = opts.k ? *opts.k
                   : (testP >= Precision::F16 || row.elements < 1000 ? 3.0
                                                                     : 2.0);
    if (row.metrics.notClose == 0) { // allclose(BASE, TEST, tol): passes.
      row.note = "allclose to BASE within 10*floor";
      return;
    }
    row.errTest = rmseRounded(t.dtype, t.values.data(), r.dtype,
                              r.values.data(), row.elements, Precision::F64);
    row.errBase = rmseRounded(b.dtype, b.values.data(), r.dtype,
                              r.values.data(), row.elements, roundBase);
    if (testP > baseP) { // BASE finer than TEST: allow accumulated rounding.
      std::vector<double> ref = r.valuesAsDouble();
      double sq = 0;
      for (double v : ref)
        sq += v * v;
      double rms = ref.empty() ? 0 : std::sqrt(sq / ref.size());
      // Independent roundings add up like a random walk (the error of n
      // of them grows as sqrt(n)): past the first kAccumulationLayers
      // layers the allowance grows with the square root of the depth.
      double depth = std::max(1.0, (row.layer + 1.0) / kAccumulationLayers);
      row.allowance =
          opts.accumulation * unitRoundoff(testP) * rms * std::sqrt(depth);
    }
    bool bothNaN = std::isnan(row.errTest) && std::isnan(row.errBase);
    row.diverges =
        !(row.errTest <= std::max(row.k * row.errBase, row.allowance) +
                             opts.floor) &&
        !bothNaN;
  }

  const Options &opts;
  Precision basePrec, testPrec;
};

} // namespace

//===----------------------------------------------------------------------===//
// diffTraces
//===----------------------------------------------------------------------===//

std::optional<DiffResult> greta::diff::diffTraces(const TraceContents &base,
                                                  const TraceContents &test,
                                                  const TraceContents *ref,
                                                  const Options &opts,
                                                  std::string &error) {
  if (opts.policy == Policy::Reference && !ref) {
    error = "the reference policy needs a third trace: --ref REF";
    return std::nullopt;
  }
  if (opts.policy != Policy::Reference)
    ref = nullptr;
  for (auto [t, role] : {std::pair{&base, "BASE"}, std::pair{&test, "TEST"},
                         std::pair{ref, "REF"}})
    if (t && t->records.empty()) {
      error = std::string(role) + " trace holds no records" +
              (t->stopReason.empty() ? "" : " (" + t->stopReason + ")");
      return std::nullopt;
    }
  if (!checkCompatible(base, "BASE", test, "TEST", opts.allowDifferentLengths,
                       false, error))
    return std::nullopt;
  if (ref && !checkCompatible(base, "BASE", *ref, "REF",
                              opts.allowDifferentLengths, true, error))
    return std::nullopt;

  DiffResult res;
  res.policy = opts.policy;
  res.base = base.manifest;
  res.test = test.manifest;
  if (ref)
    res.ref = ref->manifest;
  Counts &c = res.counts;
  c.baseRecords = base.records.size();
  c.testRecords = test.records.size();
  c.refRecords = ref ? ref->records.size() : 0;

  int64_t shared = std::min(base.manifest.tokenCount, test.manifest.tokenCount);
  // A manifest without a token count must not drop every record.
  int64_t maxPos = shared > 0 && base.manifest.tokenCount !=
                                     test.manifest.tokenCount
                       ? shared
                       : INT64_MAX;
  std::vector<std::pair<Key, const Record *>> bi, ti, ri;
  if (!sortedIndex(base, "BASE", maxPos, bi, c.beyondSharedLength, error) ||
      !sortedIndex(test, "TEST", maxPos, ti, c.beyondSharedLength, error))
    return std::nullopt;
  int64_t ignored = 0;
  if (ref && !sortedIndex(*ref, "REF", maxPos, ri, ignored, error))
    return std::nullopt;
  if (maxPos != INT64_MAX)
    res.notes.push_back(
        "lengths differ (BASE " + std::to_string(base.manifest.tokenCount) +
        " tokens, TEST " + std::to_string(test.manifest.tokenCount) +
        " tokens): compared shared positions 0.." + std::to_string(shared - 1) +
        "; " + std::to_string(c.beyondSharedLength) +
        " records past them skipped; the prompt digests differ by "
        "construction, so the shared prefix is assumed, not checked");

  // Merge-join in execution order.
  std::vector<Pending> work;
  size_t i = 0, j = 0, r = 0;
  int64_t onlyB = 0, onlyT = 0;
  while (i < bi.size() || j < ti.size()) {
    if (j == ti.size() || (i < bi.size() && bi[i].first < ti[j].first)) {
      ++onlyB, ++i;
      continue;
    }
    if (i == bi.size() || ti[j].first < bi[i].first) {
      ++onlyT, ++j;
      continue;
    }
    const Key &k = bi[i].first;
    while (r < ri.size() && ri[r].first < k)
      ++r;
    const Record *rr = r < ri.size() && ri[r].first == k ? ri[r].second : nullptr;
    RowResult row;
    row.stage = k.stage;
    row.layer = k.layer;
    row.position = k.position;
    row.baseDType = bi[i].second->dtype;
    row.testDType = ti[j].second->dtype;
    row.elements = elementsOf(*ti[j].second);
    row.hashMatch = bi[i].second->sha256 == ti[j].second->sha256;
    res.rows.push_back(row);
    work.push_back({bi[i].second, ti[j].second, rr});
    ++i, ++j;
  }
  c.aligned = res.rows.size();
  bool baseTrunc = isTruncated(base), testTrunc = isTruncated(test);
  // Records missing because the other run stopped early are not "only in".
  (testTrunc ? c.afterTruncation : c.onlyInBase) += onlyB;
  (baseTrunc ? c.afterTruncation : c.onlyInTest) += onlyT;
  for (auto [t, role] : {std::pair{&base, "BASE"}, std::pair{&test, "TEST"},
                         std::pair{ref, "REF"}}) {
    if (!t || !isTruncated(*t))
      continue;
    std::string why = t->stopReason.empty() ? "the run did not finish"
                                            : t->stopReason;
    res.notes.push_back(std::string(role) + " trace is truncated (" + why +
                        "): compared up to where it stops (" +
                        std::to_string(t->records.size()) + " records read)");
  }
  if (res.rows.empty()) {
    error = "BASE and TEST share no (stage, layer, position) record: " +
            std::to_string(bi.size()) + " BASE and " +
            std::to_string(ti.size()) +
            " TEST records, none in common (different runtime filters?)";
    return std::nullopt;
  }

  // Judge every row; only hash-differing rows cost anything, and they are
  // spread over worker threads (each writes its own row).
  Judge judge(opts, base.manifest, test.manifest);
  unsigned jobs = opts.jobs ? opts.jobs : std::thread::hardware_concurrency();
  jobs = std::max(1u, std::min(jobs, 64u));
  std::atomic<size_t> next{0};
  std::vector<uint64_t> bytes(jobs, 0);
  auto worker = [&](unsigned w) {
    for (size_t n; (n = next.fetch_add(64)) < work.size();)
      for (size_t x = n; x < std::min(n + 64, work.size()); ++x)
        judge.judge(work[x], res.rows[x], bytes[w]);
  };
  if (jobs == 1 || work.size() < 256) {
    worker(0);
  } else {
    std::vector<std::thread> threads;
    for (unsigned w = 1; w < jobs; ++w)
      threads.emplace_back(worker, w);
    worker(0);
    for (auto &t : threads)
      t.join();
  }
  for (uint64_t b : bytes)
    c.bytesCompared += b;

  for (size_t x = 0; x < res.rows.size(); ++x) {
    const RowResult &row = res.rows[x];
    switch (row.basis) {
    case Basis::HashEqual:
      ++c.hashEqual;
      break;
    case Basis::Values:
    case Basis::Reference:
      ++c.comparedValues;
      break;
    case Basis::Fingerprint:
      ++c.comparedFingerprint;
      break;
    case Basis::Hash:
    case Basis::Shape:
      if (row.hasMetrics)
        ++c.comparedValues;
      else
        ++c.comparedHashOnly;
      break;
    }
    if (opts.policy == Policy::Reference && !row.hasReference &&
        row.basis != Basis::HashEqual)
      ++c.referenceFallback;
    if (!row.diverges)
      continue;
    ++c.diverging;
    ++res.categoryCounts[static_cast<unsigned>(row.category())];
    if (!res.firstFail)
      res.firstFail = x;
  }
  if (opts.policy == Policy::Tolerance && c.comparedFingerprint)
    res.notes.push_back(std::to_string(c.comparedFingerprint) +
                        " rows had no values: judged by fingerprint "
                        "(min/max/mean/l2 within atol/rtol, equal nan/inf "
                        "counts)");
  if (opts.policy != Policy::Exact && c.comparedHashOnly)
    res.notes.push_back(std::to_string(c.comparedHashOnly) +
                        " rows had hash-only payload on a side: a differing "
                        "hash counts as a divergence");
  if (c.referenceFallback)
    res.notes.push_back(std::to_string(c.referenceFallback) +
                        " rows lacked a REF (or BASE/TEST) payload: judged by "
                        "the tolerance policy instead");
  res.hypothesis = selectHypothesis(res);
  return res;
}

//===----------------------------------------------------------------------===//
// Hypotheses (seed 6.2)
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
  std::unordered_map<std::pair<int64_t, int64_t>, const RowResult *, KeyHash>
      byKey;
  std::vector<int64_t> allPos, divPos;
  for (const RowResult &r : res.rows) {
    byKey[{rt::executionOrderKey(r.stage, r.layer), r.position}] = &r;
    allPos.push_back(r.position);
    if (r.diverges)
      divPos.push_back(r.position);
  }
  auto uniq = [](std::vector<int64_t> &v) {
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
  };
  uniq(allPos);
  uniq(divPos);
  auto find = [&](Stage s, int64_t layer, int64_t pos) -> const RowResult * {
    auto it = byKey.find({rt::executionOrderKey(s, layer), pos});
    return it == byKey.end() ? nullptr : it->second;
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
  for (const RowResult &r : res.rows) {
    if (!r.diverges || !r.hasMetrics)
      continue;
    anyMetrics = true;
    maxRel = std::max(maxRel, r.metrics.relL2);
    if (r.metrics.nanTest != r.metrics.nanBase ||
        r.metrics.infTest != r.metrics.infBase)
      nanInf = true;
  }
  bool small = anyMetrics && maxRel < 1e-2 && !nanInf;
  // MAE of FIRST_FAIL's stage at its position, layer by layer.
  std::vector<double> maeByLayer;
  for (const RowResult &r : res.rows)
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
        std::to_string(divPos.size()) + " of " +
        std::to_string(allPos.size()) + " compared positions diverge, with "
        "matching positions after the first divergent one");
  else
    say("only position " + std::to_string(p0) +
        " was compared: the position pattern cannot be judged (trace more "
        "positions, e.g. a range ending at " + std::to_string(p0) + ")");

  // 1. RoPE: post-RoPE diverges while its pre-RoPE input matches.
  if (ff->stage == Stage::QPostRope || ff->stage == Stage::KPostRope) {
    Stage pre = ff->stage == Stage::QPostRope ? Stage::QPreRope
                                              : Stage::KPreRope;
    const RowResult *p = find(pre, ff->layer, ff->position);
    h.kind = HypothesisKind::PositionEncoding;
    if (p)
      say(std::string(rt::stageName(ff->stage)) + " diverges at " + at +
          " while its input " + std::string(rt::stageName(pre)) +
          " matches: RoPE itself changes the values");
    else
      say(std::string(rt::stageName(ff->stage)) + " is the first divergent "
          "record; " + std::string(rt::stageName(pre)) +
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
                  : q ? "q_post_rope matches" : "k_post_rope matches") +
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
    // (seed 6.1 reads that as position encoding).
    uint64_t offset = static_cast<uint64_t>(p0) * ff->elements *
                      rt::dtypeSize(ff->testDType);
    if ((ff->stage == Stage::EmbedOut || ff->stage == Stage::ResidualPreAttn) &&
        ff->layer == 0) {
      h.kind = HypothesisKind::PositionEncoding;
      say("the first divergent record is the layer-0 input, before any "
          "attention: seed 6.1 reads this as position encoding of the "
          "embedding in extended contexts");
      h.alternatives.push_back(HypothesisKind::MemoryLayout);
    } else {
      h.kind = HypothesisKind::MemoryLayout;
      h.alternatives.push_back(HypothesisKind::KVCache);
    }
    say(std::string(rt::stageName(ff->stage)) +
        " is computed per token, without reading the position; the row of "
        "position " + std::to_string(p0) + " starts at byte offset " +
        std::to_string(offset) + " of a [tokens, " +
        std::to_string(ff->elements) + "] buffer: check strides and buffer "
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

//===- Diff.cpp - Policies, manifests, FIRST_FAIL ---------------*- C++ -*-===//
#include "greta/diff/Diff.h"
#include "Align.h"
#include "Judge.h"
#include "Routing.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <sstream>
#include <thread>
#include <tuple>

using namespace greta;
using namespace greta::diff;
using namespace greta::diff::detail;
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

std::string_view greta::diff::verdictName(Verdict v) {
  switch (v) {
  case Verdict::Divergence:
    return "divergence";
  case Verdict::NoDivergence:
    return "no_divergence";
  case Verdict::Undecided:
    return "undecided";
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
  // atol and mae are relative to the row's scale (its RMS). The bounds sit
  // half a decade above the worst clean-pair noise measured by
  // bench/diff/policy_sweep.py and half a decade below the fault size they
  // must catch (docs/DIFF.md, "Detection floors").
  switch (p) {
  case Precision::F64:
    return {1e-9, 1e-9, 3e-10};
  case Precision::F32:
    return {1e-4, 1e-4, 3e-5};
  case Precision::F16:
    return {3e-2, 1e-2, 1e-2};
  case Precision::BF16:
    return {2e-1, 5e-2, 8e-2};
  }
  return {1e-4, 1e-4, 3e-5};
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
  case Basis::Selection:
    return "expert ids";
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
  case HypothesisKind::Routing:
    return "routing";
  }
  return "?";
}

//===----------------------------------------------------------------------===//
// RowResults
//===----------------------------------------------------------------------===//

namespace {
/// A row that a kind prototype plus its position rebuilds exactly.
bool isCompactible(const RowResult &r) {
  const Metrics &m = r.metrics, d;
  const Tolerance &t = r.tolerance;
  return r.basis == Basis::HashEqual && r.hashMatch && !r.diverges &&
         !r.hasMetrics && !r.hasReference && r.note.empty() && m.mae == d.mae &&
         m.maxAbs == d.maxAbs && m.relL2 == d.relL2 && m.cosine == d.cosine &&
         m.rmse == d.rmse && m.notClose == d.notClose &&
         m.nanBase == d.nanBase && m.nanTest == d.nanTest &&
         m.infBase == d.infBase && m.infTest == d.infTest && r.errTest == 0 &&
         r.errBase == 0 && r.k == 0 && r.allowance == 0 && t.atol == t.atol &&
         t.rtol == t.rtol && t.mae == t.mae; // no NaN tolerance
}

bool sameKind(const RowResult &a, const RowResult &b) {
  return a.stage == b.stage && a.layer == b.layer &&
         a.baseDType == b.baseDType && a.testDType == b.testDType &&
         a.elements == b.elements && a.precision == b.precision &&
         a.tolerance.atol == b.tolerance.atol &&
         a.tolerance.rtol == b.tolerance.rtol &&
         a.tolerance.mae == b.tolerance.mae;
}
} // namespace

uint32_t RowResults::kindOf(const RowResult &r) {
  if (lastKind_ != kStored && sameKind(kinds_[lastKind_], r))
    return lastKind_;
  // Rows come tensor by tensor: a miss is rare, a scan from the end cheap.
  for (size_t k = kinds_.size(); k-- > 0;)
    if (sameKind(kinds_[k], r))
      return lastKind_ = static_cast<uint32_t>(k);
  RowResult proto;
  proto.stage = r.stage;
  proto.layer = r.layer;
  proto.baseDType = r.baseDType;
  proto.testDType = r.testDType;
  proto.elements = r.elements;
  proto.hashMatch = true;
  proto.basis = Basis::HashEqual;
  proto.precision = r.precision;
  proto.tolerance = r.tolerance;
  kinds_.push_back(proto);
  return lastKind_ = static_cast<uint32_t>(kinds_.size() - 1);
}

void RowResults::push_back(const RowResult &r) {
  if (!isCompactible(r) || kinds_.size() >= kStored - 1) {
    pushStored(r);
    return;
  }
  slots_.push_back({r.position, kindOf(r), kStored});
}

RowResult &RowResults::pushStored(const RowResult &r) {
  slots_.push_back(
      {r.position, kStored, static_cast<uint32_t>(stored_.size())});
  storedAt_.push_back(slots_.size() - 1);
  stored_.push_back(r);
  return stored_.back();
}

RowResult RowResults::operator[](size_t i) const {
  const Slot &s = slots_[i];
  if (s.index != kStored)
    return stored_[s.index];
  RowResult r = kinds_[s.kind];
  r.position = s.position;
  return r;
}

const RowResult *RowResults::stored(size_t i) const {
  const Slot &s = slots_[i];
  return s.index == kStored ? nullptr : &stored_[s.index];
}

RowResult *RowResults::stored(size_t i) {
  const Slot &s = slots_[i];
  return s.index == kStored ? nullptr : &stored_[s.index];
}

Stage RowResults::stage(size_t i) const {
  const Slot &s = slots_[i];
  return s.index == kStored ? kinds_[s.kind].stage : stored_[s.index].stage;
}

int64_t RowResults::layer(size_t i) const {
  const Slot &s = slots_[i];
  return s.index == kStored ? kinds_[s.kind].layer : stored_[s.index].layer;
}

bool RowResults::diverges(size_t i) const {
  const Slot &s = slots_[i];
  return s.index != kStored && stored_[s.index].diverges;
}

void RowResults::resize(size_t n) {
  while (slots_.size() > n) {
    if (slots_.back().index != kStored) {
      stored_.pop_back();
      storedAt_.pop_back();
    }
    slots_.pop_back();
  }
  while (slots_.size() < n)
    pushStored(RowResult());
}

void RowResults::clear() {
  slots_.clear();
  kinds_.clear();
  stored_.clear();
  storedAt_.clear();
  lastKind_ = kStored;
}

//===----------------------------------------------------------------------===//
// Manifests
//===----------------------------------------------------------------------===//

/// A model for the "different graphs" line: its name and digest prefix.
static std::string graphName(const rt::Manifest &m) {
  std::string digest = m.modelDigest.substr(0, 12);
  if (m.model.empty())
    return "model " + digest;
  return m.model + " (" + digest + ")";
}

static bool isTruncated(const TraceContents &t) {
  return !t.complete || !t.stopReason.empty();
}

/// "No divergence" is a claim about every row of both runs: it needs both
/// runs finished and every row of one present in the other. Otherwise the
/// reasons go to `undecided` (a divergence found is still one). `onlyB` and
/// `onlyT` are the rows of BASE and TEST without a counterpart.
static void settleVerdict(const TraceContents &base, const TraceContents &test,
                          int64_t onlyB, int64_t onlyT, const Options &opts,
                          DiffResult &res) {
  bool diverged = res.diverged();
  bool stopped = false;
  for (auto [t, role, other, unmatched] :
       {std::tuple{&base, "BASE", "TEST", onlyT},
        std::tuple{&test, "TEST", "BASE", onlyB}}) {
    if (!isTruncated(*t))
      continue;
    stopped = true;
    if (diverged)
      continue; // the truncation note says what was compared
    std::string why = t->stopReason.empty()
                          ? "its manifest says the run did not finish"
                          : "the run did not finish: " + t->stopReason;
    res.undecided.push_back(
        std::string(role) + " trace stopped after " +
        std::to_string(t->rowCount()) + " records (" + why +
        "): no divergence in the " + std::to_string(res.rows.size()) +
        " records compared, but nothing can be said about the rest of the "
        "run (" +
        std::to_string(unmatched) + " " + other +
        " records have no counterpart in it)");
  }
  if (stopped || (onlyB == 0 && onlyT == 0))
    return;
  std::string what =
      std::to_string(onlyB) + " records only in BASE and " +
      std::to_string(onlyT) + " only in TEST (runtime filter: " + "BASE '" +
      base.manifest.filter + "', TEST '" + test.manifest.filter + "')";
  if (opts.sharedRowsOnly)
    res.notes.push_back("compared only the records both runs wrote "
                        "(--shared-rows-only): " +
                        what + " not compared");
  else if (diverged)
    res.notes.push_back("FIRST_FAIL is the first divergence among the records "
                        "both runs wrote: " +
                        what + " not compared");
  else
    res.undecided.push_back(
        "both runs finished, but " + what +
        " were not compared, and a divergence may lie there; "
        "--shared-rows-only limits the verdict to the records both wrote");
}

namespace {
/// The work of one aligned row whose hashes differ; judge() fills in its
/// stored RowResult (row index `row`).
struct Pending {
  RowRef base, test, ref;
  bool hasRef;
  size_t row;
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
  return diffTracesWith(base, test, ref, opts, error, nullptr);
}

std::optional<DiffResult> greta::diff::detail::diffTracesWith(
    const TraceContents &base, const TraceContents &test,
    const TraceContents *ref, const Options &opts, std::string &error,
    const Prejudged *pre) {
  if (opts.policy == Policy::Reference && !ref) {
    error = "the reference policy needs a third trace: --ref REF";
    return std::nullopt;
  }
  if (opts.policy != Policy::Reference)
    ref = nullptr;
  for (auto [t, role] : {std::pair{&base, "BASE"}, std::pair{&test, "TEST"},
                         std::pair{ref, "REF"}})
    if (t && t->rowCount() == 0) {
      error = std::string(role) + " trace holds no records" +
              (t->stopReason.empty() ? "" : " (" + t->stopReason + ")");
      return std::nullopt;
    }
  // Comparable or not is decided in one place. Format versions may differ:
  // every version the reader accepts yields the same records.
  std::vector<rt::TraceIdentity> ids = {rt::identityOf(base, "BASE"),
                                        rt::identityOf(test, "TEST")};
  if (ref)
    ids.push_back(rt::identityOf(*ref, "REF"));
  rt::IdentityOptions idOpts;
  idOpts.allowDifferentLengths = opts.allowDifferentLengths;
  idOpts.allowUnidentified = opts.allowUnidentified;
  rt::IdentityVerdict identity = rt::checkIdentity(ids, idOpts);
  if (!identity.comparable) {
    error = identity.refusal;
    return std::nullopt;
  }

  DiffResult res;
  res.identity = std::move(identity);
  bool twoGraphs = base.manifest.modelDigest != test.manifest.modelDigest;
  if (twoGraphs)
    res.differentGraphs =
        graphName(base.manifest) + " vs " + graphName(test.manifest);
  res.policy = opts.policy;
  res.base = base.manifest;
  res.test = test.manifest;
  if (ref)
    res.ref = ref->manifest;
  Counts &c = res.counts;
  c.baseRecords = base.rowCount();
  c.testRecords = test.rowCount();
  c.refRecords = ref ? ref->rowCount() : 0;

  int64_t shared = std::min(base.manifest.tokenCount, test.manifest.tokenCount);
  // A manifest without a token count must not drop every record.
  int64_t maxPos =
      shared > 0 && base.manifest.tokenCount != test.manifest.tokenCount
          ? shared
          : INT64_MAX;
  // Different generated tokens: rows after the position whose logits chose
  // them were fed different tokens, so they explain nothing.
  res.generation = compareGeneration(base.manifest, test.manifest);
  int64_t lengthMax = maxPos;
  if (res.generation)
    maxPos = std::min(maxPos, res.generation->position + 1);
  TraceRows baseRows(base), testRows(test);
  std::optional<TraceRows> refRows;
  if (ref)
    refRows.emplace(*ref);
  RowCursor bi, ti, ri;
  if (!bi.init(baseRows, "BASE", maxPos, c.beyondSharedLength, error) ||
      !ti.init(testRows, "TEST", maxPos, c.beyondSharedLength, error))
    return std::nullopt;
  int64_t ignored = 0;
  if (ref && !ri.init(*refRows, "REF", maxPos, ignored, error))
    return std::nullopt;
  if (res.generation)
    res.notes.push_back(describe(*res.generation) + ": compared positions 0.." +
                        std::to_string(res.generation->position) + " (" +
                        std::to_string(c.beyondSharedLength) +
                        " records past them, fed different tokens, skipped)");
  else if (lengthMax != INT64_MAX)
    res.notes.push_back(
        "lengths differ (BASE " + std::to_string(base.manifest.tokenCount) +
        " tokens, TEST " + std::to_string(test.manifest.tokenCount) +
        " tokens): compared shared positions 0.." + std::to_string(shared - 1) +
        "; " + std::to_string(c.beyondSharedLength) +
        " records past them skipped; the prompt digests differ by "
        "construction, so the shared prefix is assumed, not checked");

  // Merge-join in execution order. Rows whose hashes match are settled here
  // (and stored compactly); the others are judged below.
  Judge judge(opts, base.manifest, test.manifest);
  std::vector<Pending> work;
  // Reserved, not touched: pages only for the rows that differ.
  size_t most = std::min(bi.size(), ti.size());
  res.rows.reserve(most);
  res.rows.reserveStored(most);
  work.reserve(most);
  int64_t onlyB = 0, onlyT = 0;
  std::optional<std::pair<Key, const char *>> firstOnly;
  while (!bi.done() || !ti.done()) {
    if (ti.done() || (!bi.done() && bi.key() < ti.key())) {
      if (!firstOnly)
        firstOnly = {bi.key(), "BASE"};
      ++onlyB, bi.next();
      continue;
    }
    if (bi.done() || ti.key() < bi.key()) {
      if (!firstOnly)
        firstOnly = {ti.key(), "TEST"};
      ++onlyT, ti.next();
      continue;
    }
    const Key &k = bi.key();
    bool hasRef = false;
    if (ref) {
      while (!ri.done() && ri.key() < k)
        ri.next();
      hasRef = !ri.done() && ri.key() == k;
    }
    RowRef br = bi.ref(), tr = ti.ref();
    if (twoGraphs && baseRows.elements(br) != testRows.elements(tr)) {
      error = "traces are not comparable: different configs (" +
              res.differentGraphs + "): " + describe(k) + " has " +
              std::to_string(baseRows.elements(br)) + " elements in BASE, " +
              std::to_string(testRows.elements(tr)) +
              " in TEST (hidden size, head layout or vocabulary differ)";
      return std::nullopt;
    }
    RowResult row;
    row.stage = k.stage;
    row.layer = k.layer;
    row.position = k.position;
    row.baseDType = baseRows.dtype(br);
    row.testDType = testRows.dtype(tr);
    row.elements = testRows.elements(tr);
    row.hashMatch =
        std::memcmp(baseRows.sha256(br), testRows.sha256(tr), 32) == 0;
    judge.prepare(row);
    if (row.hashMatch) {
      res.rows.push_back(row);
    } else {
      res.rows.pushStored(row);
      work.push_back(
          {br, tr, hasRef ? ri.ref() : RowRef{}, hasRef, res.rows.size() - 1});
    }
    bi.next(), ti.next();
  }
  c.aligned = res.rows.size();
  bool baseTrunc = isTruncated(base), testTrunc = isTruncated(test);
  // Two graphs of one config record the same (stage, layer, position)
  // keys under one filter; a key in one only means another layer count or
  // stage set (or another runtime filter).
  if (twoGraphs && firstOnly && !baseTrunc && !testTrunc) {
    error = "traces are not comparable: different configs (" +
            res.differentGraphs + "): " + describe(firstOnly->first) +
            " is only in " + firstOnly->second +
            " (the layer count or the traced stages differ, or the runtime "
            "filters do)";
    return std::nullopt;
  }
  // Records missing because the other run stopped early are not "only in".
  (testTrunc ? c.afterTruncation : c.onlyInBase) += onlyB;
  (baseTrunc ? c.afterTruncation : c.onlyInTest) += onlyT;
  for (auto [t, role] : {std::pair{&base, "BASE"}, std::pair{&test, "TEST"},
                         std::pair{ref, "REF"}}) {
    if (!t || !isTruncated(*t))
      continue;
    std::string why =
        t->stopReason.empty() ? "the run did not finish" : t->stopReason;
    res.notes.push_back(std::string(role) + " trace is truncated (" + why +
                        "): compared up to where it stops (" +
                        std::to_string(t->rowCount()) + " records read)");
  }
  if (res.rows.empty()) {
    error = "BASE and TEST share no (stage, layer, position) record: " +
            std::to_string(bi.size()) + " BASE and " +
            std::to_string(ti.size()) +
            " TEST records, none in common (different runtime filters?)";
    return std::nullopt;
  }

  // Judge the rows whose hashes differ; only they cost anything, and they
  // are spread over worker threads (each writes its own row). A block row's
  // Record is built here, for these rows only, its values read back from
  // the file; rows judged while the traces were read (`pre`) are taken as
  // they were judged.
  unsigned jobs = opts.jobs ? opts.jobs : std::thread::hardware_concurrency();
  jobs = std::max(1u, std::min(jobs, 64u));
  std::atomic<size_t> next{0};
  std::vector<uint64_t> bytes(jobs, 0);
  std::vector<std::string> errors(jobs);
  auto worker = [&](unsigned w) {
    Record sb, st, sr;
    for (size_t n; (n = next.fetch_add(64)) < work.size();)
      for (size_t x = n; x < std::min(n + 64, work.size()); ++x) {
        const Pending &p = work[x];
        if (const Prejudged::Row *done =
                pre ? pre->find(p.base, p.test) : nullptr) {
          *res.rows.stored(p.row) = done->row;
          bytes[w] += done->bytes;
          continue;
        }
        const Record *b = baseRows.record(p.base, sb, errors[w]);
        const Record *t = b ? testRows.record(p.test, st, errors[w]) : nullptr;
        const Record *r =
            t && p.hasRef ? refRows->record(p.ref, sr, errors[w]) : nullptr;
        if (!t || (p.hasRef && !r)) {
          next = work.size(); // a read failed: no verdict from the rest
          return;
        }
        judge.judge(*b, *t, r, *res.rows.stored(p.row), bytes[w]);
      }
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
  for (const std::string &e : errors)
    if (!e.empty())
      return error = e, std::nullopt;
  for (uint64_t b : bytes)
    c.bytesCompared += b;

  for (size_t x = 0; x < res.rows.size(); ++x) {
    const RowResult *stored = res.rows.stored(x);
    if (!stored) { // compact: hash-equal, never diverges
      ++c.hashEqual;
      continue;
    }
    const RowResult &row = *stored;
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
    case Basis::Selection:
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
  settleVerdict(base, test, onlyB, onlyT, opts, res);
  if (const RowResult *ff = res.first())
    res.routing = findRoutingFlip(baseRows, testRows, *ff);
  res.cells = summarizeCells(res.rows);
  res.hypothesis = selectHypothesis(res);
  return res;
}

std::vector<CellSummary> greta::diff::summarizeCells(const RowResults &rows) {
  std::vector<CellSummary> cells;
  for (size_t x = 0; x < rows.size(); ++x) {
    Stage stage = rows.stage(x);
    int64_t layer = rows.layer(x);
    // Rows come in execution order: a (stage, layer) is one run of rows.
    if (cells.empty() || cells.back().stage != stage ||
        cells.back().layer != layer) {
      cells.emplace_back();
      cells.back().stage = stage;
      cells.back().layer = layer;
    }
    CellSummary &cell = cells.back();
    ++cell.rows;
    const RowResult *row = rows.stored(x); // null: hash-equal, error 0
    if (!row)
      continue;
    if (row->diverges && cell.diverging++ == 0)
      cell.firstDivergingPosition = row->position;
    if (!row->hasMetrics)
      continue;
    ++cell.withValues;
    // MAE covers the elements finite on both sides: a row whose non-finite
    // positions differ has a non-finite error all the same.
    double mae = row->metrics.nonFiniteDiffer ? std::nan("") : row->metrics.mae;
    if (std::isnan(mae) || std::isnan(cell.maxMae))
      cell.maxMae = std::nan("");
    else
      cell.maxMae = std::max(cell.maxMae, mae);
  }
  return cells;
}

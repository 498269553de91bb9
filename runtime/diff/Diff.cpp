//===- Diff.cpp - Alignment, policies, FIRST_FAIL --------------------------===//
#include "greta/diff/Diff.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <sstream>
#include <thread>
#include <tuple>

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
// RowResults
//===----------------------------------------------------------------------===//

namespace {
/// A row that a kind prototype plus its position rebuilds exactly.
bool isCompactible(const RowResult &r) {
  const Metrics &m = r.metrics, d;
  const Tolerance &t = r.tolerance;
  return r.basis == Basis::HashEqual && r.hashMatch && !r.diverges &&
         !r.hasMetrics && !r.hasReference && r.note.empty() &&
         m.mae == d.mae && m.maxAbs == d.maxAbs && m.relL2 == d.relL2 &&
         m.cosine == d.cosine && m.rmse == d.rmse && m.notClose == d.notClose &&
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
  slots_.push_back({r.position, kStored, static_cast<uint32_t>(stored_.size())});
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
  bool diverged = res.firstFail.has_value();
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

std::string describe(const Key &k) {
  std::ostringstream os;
  os << rt::stageName(k.stage) << " layer " << k.layer << " position "
     << k.position;
  return os.str();
}

/// Where one row of a trace lies: segment `seg` < blocks.size() is block
/// `seg` (row j of it); segment blocks.size() is TraceContents::records (j is
/// the index). A row never needs a Record until it is judged.
struct RowRef {
  uint32_t seg = 0, j = 0;
};

int64_t elementsOf(const Record &r);

/// A trace's rows through RowRefs: block rows stay in the file's mapping.
class TraceRows {
public:
  explicit TraceRows(const TraceContents &t)
      : t_(t), nb_(static_cast<uint32_t>(t.blocks.size())) {}
  uint32_t segments() const { return nb_ + 1; }
  size_t segRows(uint32_t s) const {
    return s < nb_ ? t_.blocks[s].n : t_.records.size();
  }
  Stage stage(RowRef r) const {
    return r.seg < nb_ ? t_.blocks[r.seg].stage : t_.records[r.j].stage;
  }
  int64_t layer(RowRef r) const {
    return r.seg < nb_ ? t_.blocks[r.seg].layer : t_.records[r.j].layer;
  }
  int64_t position(RowRef r) const {
    return r.seg < nb_ ? t_.blocks[r.seg].position(r.j)
                       : t_.records[r.j].position;
  }
  Key key(RowRef r) const {
    Stage s = stage(r);
    int64_t l = layer(r);
    return {rt::executionOrderKey(s, l), position(r), s, l};
  }
  const uint8_t *sha256(RowRef r) const {
    return r.seg < nb_ ? t_.blocks[r.seg].sha256(r.j)
                       : t_.records[r.j].sha256.data();
  }
  rt::DType dtype(RowRef r) const {
    return r.seg < nb_ ? t_.blocks[r.seg].dtype : t_.records[r.j].dtype;
  }
  int64_t elements(RowRef r) const {
    return r.seg < nb_ ? t_.blocks[r.seg].elements
                       : elementsOf(t_.records[r.j]);
  }
  /// The row's Record: the trace's own, or built into `scratch`.
  const Record &record(RowRef r, Record &scratch) const {
    if (r.seg < nb_) {
      t_.blocks[r.seg].recordTo(r.j, scratch);
      return scratch;
    }
    return t_.records[r.j];
  }

private:
  const TraceContents &t_;
  uint32_t nb_;
};

/// The rows of a trace below `maxPosition`, visited in execution order:
/// either segment by segment (when every segment is in order and they do not
/// overlap, the usual case: no index at all) or through a sorted index.
class RowCursor {
public:
  /// Fails on unknown stages and duplicate rows; counts rows at or past
  /// `maxPosition` in `beyond` (they are skipped).
  bool init(const TraceRows &rows, const char *role, int64_t maxPosition,
            int64_t &beyond, std::string &error) {
    rows_ = &rows;
    maxPos_ = maxPosition;
    int64_t skipped = 0;
    // Segment order by first key; each must be strictly ascending inside,
    // and end before the next begins.
    for (uint32_t s = 0; s < rows.segments(); ++s) {
      size_t n = rows.segRows(s);
      for (size_t j = 0; j < n; ++j) {
        RowRef r{s, static_cast<uint32_t>(j)};
        if (static_cast<unsigned>(rows.stage(r)) >= rt::kNumStages) {
          error = std::string(role) +
                  " trace has a record with unknown stage id " +
                  std::to_string(static_cast<unsigned>(rows.stage(r)));
          return false;
        }
        if (maxPos_ != INT64_MAX && rows.position(r) >= maxPos_)
          ++skipped;
      }
      if (n)
        segs_.push_back(s);
    }
    beyond += skipped;
    std::stable_sort(segs_.begin(), segs_.end(), [&](uint32_t a, uint32_t b) {
      return rows.key({a, 0}) < rows.key({b, 0});
    });
    bool ordered = true;
    Key prev{};
    bool first = true;
    for (size_t x = 0; x < segs_.size() && ordered; ++x) {
      uint32_t s = segs_[x];
      size_t n = rows.segRows(s);
      for (size_t j = 0; j < n; ++j) {
        Key k = rows.key({s, static_cast<uint32_t>(j)});
        if (!first && !(prev < k)) {
          ordered = false;
          break;
        }
        prev = k;
        first = false;
      }
    }
    if (!ordered) {
      // Out of order (or a duplicate): the index, sorted like the rows.
      segs_.clear();
      index_.reserve(static_cast<size_t>(
          std::max<int64_t>(0, static_cast<int64_t>(total(rows)) - skipped)));
      for (uint32_t s = 0; s < rows.segments(); ++s)
        for (size_t j = 0, n = rows.segRows(s); j < n; ++j) {
          RowRef r{s, static_cast<uint32_t>(j)};
          Key k = rows.key(r);
          if (k.position >= maxPos_)
            continue;
          index_.push_back({k, r});
        }
      std::stable_sort(index_.begin(), index_.end(),
                       [](const auto &x, const auto &y) {
                         return x.first < y.first;
                       });
      for (size_t i = 1; i < index_.size(); ++i)
        if (index_[i].first == index_[i - 1].first) {
          error = std::string(role) + " trace holds two records for " +
                  describe(index_[i].first) +
                  " (a trace must record each once)";
          return false;
        }
      indexed_ = true;
    }
    size_ = total(rows) - static_cast<size_t>(skipped);
    settle();
    return true;
  }

  bool done() const { return done_; }
  const Key &key() const { return key_; }
  RowRef ref() const { return ref_; }
  /// Rows visited in all (those below maxPosition).
  size_t size() const { return size_; }
  void next() {
    if (indexed_)
      ++i_;
    else
      ++j_;
    settle();
  }

private:
  static size_t total(const TraceRows &rows) {
    size_t n = 0;
    for (uint32_t s = 0; s < rows.segments(); ++s)
      n += rows.segRows(s);
    return n;
  }
  /// Moves to the current row, or past rows at or beyond maxPos_.
  void settle() {
    if (indexed_) {
      done_ = i_ >= index_.size();
      if (!done_) {
        key_ = index_[i_].first;
        ref_ = index_[i_].second;
      }
      return;
    }
    for (; si_ < segs_.size(); ++si_, j_ = 0) {
      uint32_t s = segs_[si_];
      for (size_t n = rows_->segRows(s); j_ < n; ++j_) {
        RowRef r{s, j_};
        int64_t pos = rows_->position(r);
        if (pos >= maxPos_)
          continue;
        ref_ = r;
        key_ = rows_->key(r);
        done_ = false;
        return;
      }
    }
    done_ = true;
  }

  const TraceRows *rows_ = nullptr;
  int64_t maxPos_ = INT64_MAX;
  bool indexed_ = false, done_ = true;
  std::vector<std::pair<Key, RowRef>> index_;
  size_t i_ = 0;
  std::vector<uint32_t> segs_;
  size_t si_ = 0;
  uint32_t j_ = 0;
  size_t size_ = 0;
  Key key_{};
  RowRef ref_{};
};

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

/// The work of one aligned row whose hashes differ; judge() fills in its
/// stored RowResult (row index `row`).
struct Pending {
  RowRef base, test, ref;
  bool hasRef;
  size_t row;
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

  /// Precision and tolerance from the row's dtypes; a hash-equal row is
  /// then judged.
  void prepare(RowResult &row) const {
    row.precision =
        coarser(coarser(precisionOf(row.baseDType), precisionOf(row.testDType)),
                coarser(basePrec, testPrec));
    row.tolerance = tolerance(row.precision);
    if (row.hashMatch)
      row.basis = Basis::HashEqual;
  }

  /// A row whose hashes differ (prepare() was called).
  void judge(const Record &b, const Record &t, const Record *ref,
             RowResult &row, uint64_t &bytes) const {
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
      // Bounds relative to the BASE row's scale: elements near zero are
      // judged against the row's RMS, not against themselves.
      row.scale = scaleOf(rowRms(b.dtype, b.values.data(), row.elements),
                          row.precision);
      RowAccum acc = accumulateRow(
          b.dtype, b.values.data(), t.dtype, t.values.data(), row.elements,
          row.tolerance.atol * row.scale, row.tolerance.rtol);
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
      if (values && ref && hasValues(*ref) &&
          elementsOf(*ref) == row.elements && judgeReference(b, t, *ref, row))
        return;
      if (row.note.empty())
        row.note = !values ? "no values in BASE/TEST: judged by tolerance"
                   : !ref  ? "record absent from REF: judged by tolerance"
                           : "REF record has no values: judged by tolerance";
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

  /// A row's scale: its RMS, at least the precision's unit roundoff (so an
  /// all-zero row still tolerates nothing but rounding). A NaN RMS (a NaN in
  /// the row) falls back to the floor too.
  static double scaleOf(double rms, Precision p) {
    double floor = unitRoundoff(p);
    return rms > floor && std::isfinite(rms) ? rms : floor;
  }

  void judgeTolerance(const Record &b, const Record &t, bool values,
                      RowResult &row) const {
    if (values) {
      row.basis = Basis::Values;
      // notClose counts non-finite elements that differ; the MAE covers the
      // finite ones (undefined, NaN, when there are none: no bound to pass).
      row.diverges = row.metrics.notClose > 0 ||
                     row.metrics.mae > row.tolerance.mae * row.scale;
      if (row.metrics.nonFiniteDiffer > 0 && row.note.empty())
        row.note = nonFiniteNote(row.metrics);
      return;
    }
    if (hasFingerprint(b) && hasFingerprint(t)) {
      row.basis = Basis::Fingerprint;
      // The fingerprint's own scale: RMS = l2 / sqrt(n).
      double n = row.elements > 0 ? static_cast<double>(row.elements) : 1.0;
      row.scale = scaleOf(b.fingerprint.l2 / std::sqrt(n), row.precision);
      Tolerance tol = row.tolerance;
      tol.atol *= row.scale;
      row.diverges = b.nanCount != t.nanCount || b.infCount != t.infCount ||
                     !fingerprintClose(b.fingerprint, t.fingerprint, tol);
      return;
    }
    row.basis = Basis::Hash;
    row.diverges = true;
    if (row.note.empty())
      row.note = "hash-only payload: judged bit-exactly";
  }

  static std::string nonFiniteNote(const Metrics &m) {
    return std::to_string(m.nonFiniteDiffer) +
           " non-finite elements differ between BASE and TEST (NaN or inf "
           "on one side only, or of another kind)";
  }

  /// The three-way rule on the elements finite in all three rows (a shared
  /// NaN or inf never makes TEST pass). False, with a note, when REF cannot
  /// judge the row: it is non-finite where BASE and TEST are finite.
  bool judgeReference(const Record &b, const Record &t, const Record &r,
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
    if (row.metrics.nonFiniteDiffer > 0) { // NaN/inf moved: no error bound
      row.diverges = true;
      row.note = nonFiniteNote(row.metrics);
      return true;
    }
    // PyTorch's rule made relative: every term is a multiple of the REF
    // row's RMS, so the floor means the same before and after a norm.
    double refRms = rowRms(r.dtype, r.values.data(), row.elements);
    row.scale = scaleOf(refRms, testP);
    double slack = opts.floor * row.scale;
    // TEST within the slack of BASE passes: by the triangle inequality the
    // rule below would pass it too (err(TEST) <= err(BASE) + RMSE(TEST,
    // BASE)), so this only skips work. Not when REF has a NaN or inf: the
    // rule below then decides whether REF can judge the row at all.
    if (std::isfinite(refRms) && row.metrics.rmse <= slack) {
      row.note = "within floor x RMS(REF) of BASE";
      return true;
    }
    int64_t refOnly = 0;
    row.errTest =
        rmseRounded(t.dtype, t.values.data(), r.dtype, r.values.data(),
                    row.elements, Precision::F64, &refOnly);
    if (refOnly > 0) {
      row.hasReference = false;
      row.errTest = 0;
      row.note = "REF has " + std::to_string(refOnly) +
                 " non-finite elements where BASE and TEST are finite: "
                 "judged by tolerance";
      return false;
    }
    row.errBase = rmseRounded(b.dtype, b.values.data(), r.dtype,
                              r.values.data(), row.elements, roundBase);
    if (testP > baseP) { // BASE finer than TEST: allow accumulated rounding.
      // Independent roundings add up like a random walk (the error of n
      // of them grows as sqrt(n)): past the first kAccumulationLayers
      // layers the allowance grows with the square root of the depth.
      double depth = std::max(1.0, (row.layer + 1.0) / kAccumulationLayers);
      row.allowance = opts.accumulation * unitRoundoff(testP) * row.scale *
                      std::sqrt(depth);
    }
    // NaN (nothing finite to measure) fails the comparison: a divergence.
    row.diverges = !(row.errTest <=
                     std::max(row.k * row.errBase, row.allowance) + slack);
    return true;
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
  int64_t maxPos = shared > 0 && base.manifest.tokenCount !=
                                     test.manifest.tokenCount
                       ? shared
                       : INT64_MAX;
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
  if (maxPos != INT64_MAX)
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
      work.push_back({br, tr, hasRef ? ri.ref() : RowRef{}, hasRef,
                      res.rows.size() - 1});
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
    std::string why = t->stopReason.empty() ? "the run did not finish"
                                            : t->stopReason;
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
  // Record is built here, for these rows only.
  unsigned jobs = opts.jobs ? opts.jobs : std::thread::hardware_concurrency();
  jobs = std::max(1u, std::min(jobs, 64u));
  std::atomic<size_t> next{0};
  std::vector<uint64_t> bytes(jobs, 0);
  auto worker = [&](unsigned w) {
    Record sb, st, sr;
    for (size_t n; (n = next.fetch_add(64)) < work.size();)
      for (size_t x = n; x < std::min(n + 64, work.size()); ++x) {
        const Pending &p = work[x];
        const Record &b = baseRows.record(p.base, sb);
        const Record &t = testRows.record(p.test, st);
        const Record *r = p.hasRef ? &refRows->record(p.ref, sr) : nullptr;
        judge.judge(b, t, r, *res.rows.stored(p.row), bytes[w]);
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
    // (then read as position encoding).
    uint64_t offset = static_cast<uint64_t>(p0) * ff->elements *
                      rt::dtypeSize(ff->testDType);
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

//===- Diff.h - Compare two (or three) traces, find FIRST_FAIL --*- C++ -*-===//
//
// The comparison engine behind greta-diff (and, later, greta-bisect). It works
// on in-memory rt::TraceContents, so it is tested without files and reused by
// the bisection driver. No LLVM: it builds in the runtime-only configuration.
// Semantics (policies, defaults, fallbacks) are documented in docs/DIFF.md.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_DIFF_DIFF_H
#define GRETA_DIFF_DIFF_H

#include "greta/diff/Generation.h"
#include "greta/rt/HugePageAllocator.h"
#include "greta/rt/Identity.h"
#include "greta/rt/Stages.h"
#include "greta/rt/Trace.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace greta::diff {

enum class Policy { Exact, Tolerance, Reference };
std::string_view policyName(Policy p);
std::optional<Policy> parsePolicy(std::string_view name);

/// The precision a row is judged at: the coarsest of the two records' dtypes
/// and the two manifests' `precision` fields (an f16-emulated run may store
/// f32 bytes). Ordered from finest to coarsest.
enum class Precision { F64 = 0, F32, F16, BF16 };
std::string_view precisionName(Precision p);
std::optional<Precision> parsePrecision(std::string_view name);
Precision precisionOf(rt::DType d);

/// allclose(atol, rtol) per element plus a bound on the row's MAE. atol and
/// mae are relative to the row's scale (RowResult::scale, the RMS of the
/// BASE row, at least the precision's unit roundoff): one bound means the
/// same on the residual stream (RMS ~0.1) and after a norm (RMS ~1).
struct Tolerance {
  double atol = 0, rtol = 0, mae = 0;
};
/// Per-precision defaults of the tolerance policy (docs/DIFF.md says why).
Tolerance defaultTolerance(Precision p);

/// Layers covered by the plain accumulation allowance (see Options).
inline constexpr double kAccumulationLayers = 8;
/// The reference policy's relative floor (docs/DIFF.md, "Detection floors").
inline constexpr double kDefaultFloor = 3e-5;

struct Options {
  Policy policy = Policy::Exact;
  /// Overrides of the per-precision tolerance defaults.
  std::optional<double> atol, rtol, mae;
  /// Reference policy: TEST diverges where err(TEST,REF) > k*err(BASE,REF) +
  /// floor. k defaults to PyTorch's multiplier (2, or 3 for f16/bf16 or rows
  /// under 1000 elements); floor to 1e-5 (PyTorch's tol/10 with tol = 1e-4).
  std::optional<double> k;
  /// Relative: the slack is floor x the row's scale (RMS of the REF row).
  double floor = kDefaultFloor;
  /// Reference policy, when TEST is coarser than BASE (f16 TEST, f32 BASE):
  /// BASE rounded once to TEST's precision underestimates a healthy
  /// TEST-precision pipeline, which rounds at every op and accumulates. TEST
  /// may then also reach `accumulation` x TEST's unit roundoff x RMS(REF).
  /// 8 covers the measured clean f16 llama-tiny (worst 4.8 u, docs/DIFF.md)
  /// while a 1e-2 relative fault (20 u in f16) still stands out. Deeper
  /// than kAccumulationLayers layers it grows as sqrt(depth / that): the
  /// 22-layer TinyLlama-1.1B shape reaches 8.1 u at layer 18.
  double accumulation = 8;
  bool allowDifferentLengths = false;
  /// Compare traces whose identity is incomplete (rt::IdentityOptions).
  bool allowUnidentified = false;
  /// The user narrows the comparison to the rows both traces recorded
  /// (different runtime filters): rows recorded by only one of two finished
  /// traces then no longer forbid a "no divergence" verdict.
  bool sharedRowsOnly = false;
  /// Worker threads for the numeric comparison; 0 = hardware concurrency.
  unsigned jobs = 0;
};

/// Sums over one row, accumulated in f64. `a` is BASE (or REF), `b` is TEST.
/// The sums cover the elements finite on both sides only: a non-finite value
/// never enters them (it would make them NaN or inf, and two such rows look
/// alike); the non-finite positions are counted instead.
struct RowAccum {
  int64_t n = 0;      // elements
  int64_t finite = 0; // elements finite on both sides (the sums' domain)
  double sumAbs = 0, maxAbs = 0, sumSq = 0;
  double sumA2 = 0, sumB2 = 0, sumAB = 0;
  int64_t notClose = 0;        // elements failing |b-a| <= atol + rtol*|a| (a
                               // non-finite difference included)
  int64_t nonFiniteDiffer = 0; // a or b non-finite, not the same value class
                               // (NaN vs NaN and equal infinities agree)
  int64_t nanA = 0, nanB = 0, infA = 0, infB = 0;
};

/// The per-element kernel: one pass, no allocation, vectorized for f32 and
/// f64 (f16/bf16 are widened through a small stack buffer). `a` and `b` hold
/// `n` elements of their dtypes. Both-NaN elements and equal infinities
/// count as close (numpy's equal_nan) so that a NaN reproduced bit-for-bit
/// is not a divergence; any other non-finite element is not close.
RowAccum accumulateRow(rt::DType da, const uint8_t *a, rt::DType db,
                       const uint8_t *b, int64_t n, double atol, double rtol);

/// Root-mean-square of (x - ref) over the elements where both are finite,
/// with x first rounded to `roundTo` (the way PyTorch casts the baseline to
/// the tested dtype before its fp64 check); NaN when there is none.
/// `refOnly` (optional) counts elements where x is finite and ref is not.
double rmseRounded(rt::DType dx, const uint8_t *x, rt::DType dref,
                   const uint8_t *ref, int64_t n, Precision roundTo,
                   int64_t *refOnly = nullptr);

/// Root-mean-square of a row's finite values (the scale rows are judged
/// against); 0 when none is finite. `nonFinite` (optional) counts the others.
double rowRms(rt::DType d, const uint8_t *x, int64_t n,
              int64_t *nonFinite = nullptr);

/// Metrics derived from a RowAccum, over the elements finite on both sides.
/// Undefined ones are NaN (null in JSON, n/a in text), never 0: MAE, max-abs
/// and RMSE with no finite element; relative L2 and cosine also then, and
/// cosine when a side is all zeros.
struct Metrics {
  double mae = 0, maxAbs = 0, relL2 = 0, cosine = 1, rmse = 0;
  int64_t notClose = 0, nonFiniteDiffer = 0, finite = 0;
  int64_t nanBase = 0, nanTest = 0, infBase = 0, infTest = 0;
};
Metrics metricsOf(const RowAccum &acc);

/// How a row's verdict was reached.
enum class Basis {
  HashEqual,   // identical SHA-256: never compared numerically
  Hash,        // hash differs, judged bit-exactly (exact policy, or no data)
  Values,      // full payload on both sides
  Fingerprint, // tolerance policy without values: min/max/mean/l2, nan/inf
  Reference,   // reference policy, three-way on values
  Shape,       // element counts differ: always a divergence
  Selection,   // expert_selection: the chosen expert ids differ (any policy)
};
std::string_view basisName(Basis b);

/// One aligned (stage, layer, position) and its verdict.
struct RowResult {
  rt::Stage stage = rt::Stage::EmbedOut;
  int64_t layer = 0, position = 0;
  rt::DType baseDType = rt::DType::F32, testDType = rt::DType::F32;
  int64_t elements = 0;
  bool hashMatch = false;
  bool hasMetrics = false; // Metrics were computed (both had values)
  Metrics metrics;
  Basis basis = Basis::Hash;
  Precision precision = Precision::F32;
  Tolerance tolerance;    // the bounds used (tolerance policy / fallbacks)
  /// The row's scale: RMS of BASE (of REF under the reference policy), at
  /// least the unit roundoff of its precision; atol, mae and floor are
  /// multiples of it. 0 until the row is judged on values.
  double scale = 0;
  bool diverges = false;
  // Reference policy only.
  bool hasReference = false;
  double errTest = 0, errBase = 0, k = 0;
  double allowance = 0; // accumulation allowance (0 when BASE is not finer)
  std::string note; // why a fallback happened, etc.

  rt::Category category() const { return rt::stageCategory(stage); }
};

/// Every aligned row's RowResult, in execution order, stored compactly: a
/// row that matches by hash carries nothing of its own beyond its position
/// (16 bytes; its other fields are shared by every such row of its tensor),
/// the others are stored in full. Reads give a RowResult by value (equal to
/// what was pushed); stored(i) gives the stored row, or nullptr for a
/// compact one. A two-trace diff of millions of rows holds a few bytes per
/// row instead of a RowResult each.
class RowResults {
public:
  size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }
  RowResult operator[](size_t i) const;
  RowResult front() const { return (*this)[0]; }
  RowResult back() const { return (*this)[size() - 1]; }
  /// Stores `r` compactly when it can be rebuilt exactly (a hash-equal,
  /// non-diverging row without metrics or note), else in full.
  void push_back(const RowResult &r);
  /// Stores `r` in full and returns it (for filling it in place).
  RowResult &pushStored(const RowResult &r);
  void resize(size_t n);
  void reserve(size_t n) { slots_.reserve(n); }
  /// Room for n rows stored in full (reserved, not touched).
  void reserveStored(size_t n) {
    stored_.reserve(n);
    storedAt_.reserve(n);
  }
  void clear();
  const RowResult *stored(size_t i) const;
  RowResult *stored(size_t i);
  /// The stored (non-compact) rows, in row order, and their row indices.
  const rt::HugePageVector<RowResult> &storedRows() const { return stored_; }
  size_t storedIndex(size_t s) const { return storedAt_[s]; }
  /// Cheap fields of row i (no RowResult built).
  rt::Stage stage(size_t i) const;
  int64_t layer(size_t i) const;
  int64_t position(size_t i) const { return slots_[i].position; }
  bool diverges(size_t i) const;

  class const_iterator {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = RowResult;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = RowResult;
    const_iterator(const RowResults *t, size_t i) : t_(t), i_(i) {}
    RowResult operator*() const { return (*t_)[i_]; }
    const_iterator &operator++() {
      ++i_;
      return *this;
    }
    bool operator==(const const_iterator &o) const { return i_ == o.i_; }
    bool operator!=(const const_iterator &o) const { return i_ != o.i_; }

  private:
    const RowResults *t_;
    size_t i_;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, size()}; }

private:
  static constexpr uint32_t kStored = UINT32_MAX;
  struct Slot {
    int64_t position;
    uint32_t kind;  // index into kinds_ (compact rows)
    uint32_t index; // index into stored_, or kStored for compact rows
  };
  uint32_t kindOf(const RowResult &r);
  std::vector<Slot> slots_;
  std::vector<RowResult> kinds_;  // prototypes of compact rows (position 0)
  rt::HugePageVector<RowResult> stored_; // rows stored in full, row order
  std::vector<size_t> storedAt_;  // their row indices
  uint32_t lastKind_ = kStored;
};

enum class HypothesisKind {
  None,
  PositionEncoding,
  KVCache,
  NumericPrecision,
  MemoryLayout,
  Inconclusive,
  Routing, // a mixture-of-experts router chose other experts
};
std::string_view hypothesisName(HypothesisKind h);

/// Which hypothesis (docs/DIFF.md, "Hypotheses") the evidence points to,
/// and why.
struct Hypothesis {
  HypothesisKind kind = HypothesisKind::None;
  std::vector<std::string> evidence;     // facts behind the choice
  std::vector<HypothesisKind> alternatives; // also compatible, weaker
};

/// FIRST_FAIL is an expert_selection whose expert ids differ: the tokens
/// went to other experts (runtime/diff/Routing.cpp, docs/DIFF.md
/// "Routing"). Margins are the gap between the k-th and (k+1)-th router
/// logit of each run (NaN when router_logits has no values there).
struct RoutingFlip {
  enum class Cause { Fragile, RouterBug, Unknown };
  int64_t layer = 0, position = 0;
  std::vector<int32_t> baseExperts, testExperts; // rank order
  double baseMargin = 0, testMargin = 0;
  /// Largest change of one router logit between the runs (NaN: unknown).
  double logitChange = 0;
  Cause cause = Cause::Unknown;
};
std::string_view routingCauseName(RoutingFlip::Cause c);
/// "layer 7, position 913: experts [2, 6] -> [5, 6]".
std::string routingFlipLine(const RoutingFlip &f);
/// What to audit for this flip (the recommendation).
std::string routingAdvice(const RoutingFlip &f);

struct Counts {
  int64_t baseRecords = 0, testRecords = 0, refRecords = 0;
  int64_t aligned = 0;       // keys present in BASE and TEST
  int64_t hashEqual = 0;     // aligned, identical hash: skipped numerically
  int64_t comparedValues = 0;      // numeric comparison on full payloads
  int64_t comparedFingerprint = 0; // fingerprint fallback
  int64_t comparedHashOnly = 0;    // differing hash, no data to judge by
  int64_t referenceFallback = 0;   // reference policy fell back to tolerance
  int64_t onlyInBase = 0, onlyInTest = 0;
  int64_t beyondSharedLength = 0;  // positions past the shorter prompt
  int64_t afterTruncation = 0;     // missing because a trace stopped early
  int64_t diverging = 0;
  uint64_t bytesCompared = 0;      // payload bytes read by the kernel (both)
};

/// One (stage, layer) over all its aligned positions: a cell of the HTML
/// report's heatmap. A hash-equal row's error is exactly 0.
struct CellSummary {
  rt::Stage stage = rt::Stage::EmbedOut;
  int64_t layer = 0;
  int64_t rows = 0, diverging = 0;
  int64_t withValues = 0; // rows with metrics (values on both sides)
  double maxMae = 0;      // largest MAE of those rows; NaN if a row's error
                          // is not finite (non-finite positions differ)
  int64_t firstDivergingPosition = -1;
};

/// What a comparison may claim. NoDivergence needs both traces finished and
/// every row of one present in the other (docs/DIFF.md "Verdicts").
enum class Verdict { Divergence, NoDivergence, Undecided };
std::string_view verdictName(Verdict v);

struct DiffResult {
  Policy policy = Policy::Exact;
  rt::Manifest base, test;
  std::optional<rt::Manifest> ref;
  rt::IdentityVerdict identity;     // what was checked (comparable)
  RowResults rows;                  // every aligned row, execution order
  std::optional<size_t> firstFail;  // index into rows
  std::array<int64_t, rt::kNumCategories> categoryCounts{};
  Counts counts;
  Hypothesis hypothesis;
  std::vector<std::string> notes;   // truncation, length mismatch, fallbacks
  /// "A vs B" when BASE and TEST ran different model IR of one config (same
  /// stages, layers and row shapes); empty when they ran the same graph.
  std::string differentGraphs;
  std::vector<CellSummary> cells;   // one per (stage, layer), execution order
  /// FIRST_FAIL is a change of the chosen experts (Routing.cpp).
  std::optional<RoutingFlip> routing;
  /// Why no divergence among the compared rows says nothing about the
  /// traces (a run stopped early, rows only one trace recorded). Only
  /// filled when no row diverges.
  std::vector<std::string> undecided;
  /// The first generated token the runs disagree on (--generate): a
  /// divergence even when no compared tensor explains it; tensors are then
  /// compared up to its position.
  std::optional<GenerationDivergence> generation;

  bool diverged() const { return firstFail.has_value() || generation; }
  Verdict verdict() const {
    return diverged()          ? Verdict::Divergence
           : undecided.empty() ? Verdict::NoDivergence
                               : Verdict::Undecided;
  }
  /// A diverging row is always stored in full (RowResults::stored).
  const RowResult *first() const {
    return firstFail ? rows.stored(*firstFail) : nullptr;
  }
};

/// The whole comparison. `ref` is required by Policy::Reference and ignored
/// otherwise. Comparability is rt::checkIdentity's alone (Identity.h): its
/// refusal is the error. Errors (traces not comparable, empty traces,
/// duplicate records, no common record) return nullopt with `error` set.
std::optional<DiffResult> diffTraces(const rt::TraceContents &base,
                                     const rt::TraceContents &test,
                                     const rt::TraceContents *ref,
                                     const Options &opts, std::string &error);

/// Where diffTraceDirs spent its time: reading the traces (with the rows of
/// traces in the same order compared as they are read), then diffTraces.
struct DiffTiming {
  double readSeconds = 0, compareSeconds = 0;
};

/// Reads BASE and TEST (and REF, for Policy::Reference) and compares them:
/// the result of readTrace (keepBlocks) and diffTraces, with the rows of
/// two traces written in the same order judged while both files are read
/// (rt::readTracePair), so their values are read once. Errors name the role
/// and path ("TEST trace 'D': ..."); BASE's is given first.
std::optional<DiffResult> diffTraceDirs(const std::string &basePath,
                                        const std::string &testPath,
                                        const std::string &refPath,
                                        const Options &opts, std::string &error,
                                        DiffTiming *timing = nullptr);

/// The per-(stage, layer) summary of finished rows (diffTraces calls it).
std::vector<CellSummary> summarizeCells(const RowResults &rows);

/// Chooses the hypothesis from a finished result (diffTraces calls it).
Hypothesis selectHypothesis(const DiffResult &result);

} // namespace greta::diff

#endif // GRETA_DIFF_DIFF_H

//===- Judge.cpp - One aligned row judged under a policy --------*- C++ -*-===//
//
// The exact, tolerance and reference policies (docs/DIFF.md) on one row:
// its metrics from the row kernel, then its basis, verdict and note.
//
//===----------------------------------------------------------------------===//
#include "Judge.h"
#include "Align.h"
#include "Routing.h"

#include <algorithm>
#include <cmath>

using namespace greta;
using namespace greta::diff;
using namespace greta::diff::detail;

bool greta::diff::detail::hasValues(const Record &r) {
  return r.payload == rt::Payload::Full &&
         r.values.size() ==
             static_cast<size_t>(elementsOf(r)) * rt::dtypeSize(r.dtype);
}

namespace {

bool hasFingerprint(const Record &r) {
  return r.payload == rt::Payload::Stats || r.payload == rt::Payload::Full;
}

Precision coarser(Precision a, Precision b) { return a > b ? a : b; }

bool fingerprintClose(const rt::Fingerprint &a, const rt::Fingerprint &b,
                      const Tolerance &t) {
  auto close = [&](double x, double y) {
    return std::fabs(y - x) <= t.atol + t.rtol * std::fabs(x);
  };
  return close(a.min, b.min) && close(a.max, b.max) && close(a.mean, b.mean) &&
         close(a.l2, b.l2);
}

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

} // namespace

Precision greta::diff::detail::manifestPrecision(const rt::Manifest &m) {
  return parsePrecision(m.precision).value_or(Precision::F64);
}

/// Precision and tolerance from the row's dtypes; a hash-equal row is
/// then judged.
void Judge::prepare(RowResult &row) const {
  row.precision =
      coarser(coarser(precisionOf(row.baseDType), precisionOf(row.testDType)),
              coarser(basePrec, testPrec));
  row.tolerance = tolerance(row.precision);
  if (row.hashMatch)
    row.basis = Basis::HashEqual;
}

/// A row whose hashes differ (prepare() was called).
void Judge::judge(const Record &b, const Record &t, const Record *ref,
                  RowResult &row, uint64_t &bytes) const {
  if (elementsOf(b) != elementsOf(t)) {
    row.basis = Basis::Shape;
    row.diverges = true;
    row.note = "element counts differ: BASE " + std::to_string(elementsOf(b)) +
               ", TEST " + std::to_string(elementsOf(t));
    return;
  }
  bool values = hasValues(b) && hasValues(t);
  if (values) {
    // Bounds relative to the BASE row's scale: elements near zero are
    // judged against the row's RMS, not against themselves.
    row.scale =
        scaleOf(rowRms(b.dtype, b.values.data(), row.elements), row.precision);
    RowAccum acc = accumulateRow(
        b.dtype, b.values.data(), t.dtype, t.values.data(), row.elements,
        row.tolerance.atol * row.scale, row.tolerance.rtol);
    bytes += b.values.size() + t.values.size();
    row.hasMetrics = true;
    row.metrics = metricsOf(acc);
  }
  // The experts a token went to are discrete: never within a tolerance.
  if (row.stage == rt::Stage::ExpertSelection && judgeSelection(b, t, row))
    return;
  switch (opts.policy) {
  case Policy::Exact:
    row.basis = Basis::Hash;
    row.diverges = true;
    return;
  case Policy::Tolerance:
    judgeTolerance(b, t, values, row);
    return;
  case Policy::Reference:
    if (values && ref && hasValues(*ref) && elementsOf(*ref) == row.elements &&
        judgeReference(b, t, *ref, row))
      return;
    if (row.note.empty())
      row.note = !values ? "no values in BASE/TEST: judged by tolerance"
                 : !ref  ? "record absent from REF: judged by tolerance"
                         : "REF record has no values: judged by tolerance";
    judgeTolerance(b, t, values, row);
    return;
  }
}

Tolerance Judge::tolerance(Precision p) const {
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
/// all-zero row still tolerates nothing but rounding).
double Judge::scaleOf(double rms, Precision p) {
  double floor = unitRoundoff(p);
  return rms > floor && std::isfinite(rms) ? rms : floor;
}

void Judge::judgeTolerance(const Record &b, const Record &t, bool values,
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

std::string Judge::nonFiniteNote(const Metrics &m) {
  return std::to_string(m.nonFiniteDiffer) +
         " non-finite elements differ between BASE and TEST (NaN or inf "
         "on one side only, or of another kind)";
}

/// The three-way rule on the elements finite in all three rows (a shared
/// NaN or inf never makes TEST pass). False, with a note, when REF cannot
/// judge the row: it is non-finite where BASE and TEST are finite.
bool Judge::judgeReference(const Record &b, const Record &t, const Record &r,
                           RowResult &row) const {
  row.basis = Basis::Reference;
  row.hasReference = true;
  Precision testP = coarser(precisionOf(t.dtype), testPrec);
  Precision baseP = coarser(precisionOf(b.dtype), basePrec);
  // Like PyTorch's `ref.to(res.dtype)`: a baseline finer than TEST is
  // rounded to TEST's precision, so f16 rounding alone is never blamed.
  Precision roundBase = coarser(testP, baseP);
  row.k = opts.k ? *opts.k
                 : (testP >= Precision::F16 || row.elements < 1000 ? 3.0 : 2.0);
  if (row.metrics.nonFiniteDiffer > 0) { // NaN/inf moved: no error bound
    row.diverges = true;
    row.note = nonFiniteNote(row.metrics);
    return true;
  }
  // PyTorch's rule made relative: every term is a multiple of the REF
  // row's RMS, so the floor means the same before and after a norm.
  int64_t refNonFinite = 0;
  double refRms =
      rowRms(r.dtype, r.values.data(), row.elements, &refNonFinite);
  row.scale = scaleOf(refRms, testP);
  double slack = opts.floor * row.scale;
  // TEST within the slack of BASE passes: by the triangle inequality the
  // rule below would pass it too (err(TEST) <= err(BASE) + RMSE(TEST,
  // BASE)), so this only skips work. Not when REF has a NaN or inf: the
  // rule below then decides whether REF can judge the row at all.
  if (refNonFinite == 0 && row.metrics.rmse <= slack) {
    row.note = "within floor x RMS(REF) of BASE";
    return true;
  }
  int64_t refOnly = 0;
  row.errTest = rmseRounded(t.dtype, t.values.data(), r.dtype, r.values.data(),
                            row.elements, Precision::F64, &refOnly);
  if (refOnly > 0) {
    row.hasReference = false;
    row.errTest = 0;
    row.note = "REF has " + std::to_string(refOnly) +
               " non-finite elements where BASE and TEST are finite: "
               "judged by tolerance";
    return false;
  }
  row.errBase = rmseRounded(b.dtype, b.values.data(), r.dtype, r.values.data(),
                            row.elements, roundBase);
  if (testP > baseP) { // BASE finer than TEST: allow accumulated rounding.
    // Independent roundings add up like a random walk (the error of n
    // of them grows as sqrt(n)): past the first kAccumulationLayers
    // layers the allowance grows with the square root of the depth.
    double depth = std::max(1.0, (row.layer + 1.0) / kAccumulationLayers);
    row.allowance =
        opts.accumulation * unitRoundoff(testP) * row.scale * std::sqrt(depth);
  }
  // NaN (nothing finite to measure) fails the comparison: a divergence.
  row.diverges =
      !(row.errTest <= std::max(row.k * row.errBase, row.allowance) + slack);
  return true;
}

//===- Judge.h - One aligned row judged under a policy ----------*- C++ -*-===//
//
// Private to runtime/diff: the judge diffTraces asks about every row whose
// hashes differ (Judge.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RUNTIME_DIFF_JUDGE_H
#define GRETA_RUNTIME_DIFF_JUDGE_H

#include "greta/diff/Diff.h"
#include "greta/rt/Trace.h"

#include <cstdint>
#include <string>

namespace greta::diff::detail {

using rt::Record;

/// The precision a manifest declares (f64 when it declares none).
Precision manifestPrecision(const rt::Manifest &m);

class Judge {
public:
  Judge(const Options &o, const rt::Manifest &mb, const rt::Manifest &mt)
      : opts(o), basePrec(manifestPrecision(mb)),
        testPrec(manifestPrecision(mt)) {}

  /// Precision and tolerance from the row's dtypes; a hash-equal row is
  /// then judged.
  void prepare(RowResult &row) const;

  /// A row whose hashes differ (prepare() was called).
  void judge(const Record &b, const Record &t, const Record *ref,
             RowResult &row, uint64_t &bytes) const;

private:
  Tolerance tolerance(Precision p) const;

  /// A row's scale: its RMS, at least the precision's unit roundoff (so an
  /// all-zero row still tolerates nothing but rounding). A NaN RMS (a NaN in
  /// the row) falls back to the floor too.
  static double scaleOf(double rms, Precision p);

  void judgeTolerance(const Record &b, const Record &t, bool values,
                      RowResult &row) const;

  static std::string nonFiniteNote(const Metrics &m);

  /// The three-way rule on the elements finite in all three rows (a shared
  /// NaN or inf never makes TEST pass). False, with a note, when REF cannot
  /// judge the row: it is non-finite where BASE and TEST are finite.
  bool judgeReference(const Record &b, const Record &t, const Record &r,
                      RowResult &row) const;

  const Options &opts;
  Precision basePrec, testPrec;
};

} // namespace greta::diff::detail

#endif // GRETA_RUNTIME_DIFF_JUDGE_H

//===- Judge.h - One aligned row judged under a policy ----------*- C++ -*-===//
//
// Private to runtime/diff: the judge diffTraces asks about every row whose
// hashes differ (Judge.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RUNTIME_DIFF_JUDGE_H
#define GRETA_RUNTIME_DIFF_JUDGE_H

#include "Align.h"
#include "greta/diff/Diff.h"
#include "greta/rt/Trace.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace greta::diff::detail {

using rt::Record;

/// The row carries all its values (payload full, the right byte count).
bool hasValues(const Record &r);

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

/// Rows judged while the traces were read (rt::readTracePair, Stream.cpp),
/// by BASE block and row: diffTracesWith takes their results instead of
/// reading the values again. Each was judged exactly as diffTraces judges an
/// aligned row (prepare, then judge, with no REF).
struct Prejudged {
  struct Row {
    uint64_t key = 0; // BASE segment << 32 | row
    uint32_t testSeg = 0, j = 0;
    RowResult row;
    uint64_t bytes = 0;
  };
  /// One per reading thread; read through byBase once filled.
  rt::HugePageVector<Row> rows[2];
  /// (key, row), sorted by key: built by index().
  std::vector<std::pair<uint64_t, const Row *>> byBase;
  void index() {
    byBase.clear();
    byBase.reserve(rows[0].size() + rows[1].size());
    for (const auto &d : rows)
      for (const Row &r : d)
        byBase.emplace_back(r.key, &r);
    std::sort(byBase.begin(), byBase.end(),
              [](const auto &a, const auto &b) { return a.first < b.first; });
  }
  const Row *find(RowRef b, RowRef t) const {
    uint64_t key = uint64_t(b.seg) << 32 | b.j;
    auto it =
        std::lower_bound(byBase.begin(), byBase.end(), key,
                         [](const auto &e, uint64_t k) { return e.first < k; });
    if (it == byBase.end() || it->first != key ||
        it->second->testSeg != t.seg || it->second->j != t.j)
      return nullptr;
    return it->second;
  }
};

/// diffTraces, taking the rows in `pre` (may be null) as judged.
std::optional<DiffResult>
diffTracesWith(const TraceContents &base, const TraceContents &test,
               const TraceContents *ref, const Options &opts,
               std::string &error, const Prejudged *pre);

} // namespace greta::diff::detail

#endif // GRETA_RUNTIME_DIFF_JUDGE_H

//===- Align.h - Rows of two traces in execution order ----------*- C++ -*-===//
//
// Private to runtime/diff: the alignment that diffTraces walks (Align.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RUNTIME_DIFF_ALIGN_H
#define GRETA_RUNTIME_DIFF_ALIGN_H

#include "greta/diff/Diff.h"
#include "greta/rt/Trace.h"

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace greta::diff::detail {

using rt::Record;
using rt::Stage;
using rt::TraceContents;

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

/// "<stage> layer <l> position <p>", for error messages.
std::string describe(const Key &k);

/// Where one row of a trace lies: segment `seg` < blocks.size() is block
/// `seg` (row j of it); segment blocks.size() is TraceContents::records (j is
/// the index). A row never needs a Record until it is judged.
struct RowRef {
  uint32_t seg = 0, j = 0;
};

/// The element count of a record's shape.
int64_t elementsOf(const Record &r);

/// A trace's rows through RowRefs: block rows stay as read (BlockRows).
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
  /// The row's Record: the trace's own, or built into `scratch` (its
  /// values read back from the file); nullptr and `error` when that read
  /// fails.
  const Record *record(RowRef r, Record &scratch, std::string &error) const {
    if (r.seg < nb_)
      return t_.blocks[r.seg].readRecord(r.j, scratch, error) ? &scratch
                                                              : nullptr;
    return &t_.records[r.j];
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
            int64_t &beyond, std::string &error);

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
  static size_t total(const TraceRows &rows);
  /// Moves to the current row, or past rows at or beyond maxPos_.
  void settle();

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

} // namespace greta::diff::detail

#endif // GRETA_RUNTIME_DIFF_ALIGN_H

//===- Align.cpp - Rows of two traces in execution order --------*- C++ -*-===//
//
// A trace's rows are visited in execution order (stage order, then
// position), segment by segment when the file is in order, else through
// a sorted index; diffTraces walks BASE, TEST and REF together.
//
//===----------------------------------------------------------------------===//
#include "Align.h"

#include <algorithm>
#include <sstream>

using namespace greta;
using namespace greta::diff::detail;

std::string greta::diff::detail::describe(const Key &k) {
  std::ostringstream os;
  os << rt::stageName(k.stage) << " layer " << k.layer << " position "
     << k.position;
  return os.str();
}

int64_t greta::diff::detail::elementsOf(const Record &r) {
  int64_t n = 1;
  for (int64_t d : r.shape)
    n *= d;
  return n;
}

/// Fails on unknown stages and duplicate rows; counts rows at or past
/// `maxPosition` in `beyond` (they are skipped).
bool RowCursor::init(const TraceRows &rows, const char *role,
                     int64_t maxPosition, int64_t &beyond, std::string &error) {
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
    std::stable_sort(
        index_.begin(), index_.end(),
        [](const auto &x, const auto &y) { return x.first < y.first; });
    for (size_t i = 1; i < index_.size(); ++i)
      if (index_[i].first == index_[i - 1].first) {
        error = std::string(role) + " trace holds two records for " +
                describe(index_[i].first) + " (a trace must record each once)";
        return false;
      }
    indexed_ = true;
  }
  size_ = total(rows) - static_cast<size_t>(skipped);
  settle();
  return true;
}

size_t RowCursor::total(const TraceRows &rows) {
  size_t n = 0;
  for (uint32_t s = 0; s < rows.segments(); ++s)
    n += rows.segRows(s);
  return n;
}

/// Moves to the current row, or past rows at or beyond maxPos_.
void RowCursor::settle() {
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

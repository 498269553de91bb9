//===- MoERouting.h - Rows of a call grouped by expert ----------*- C++ -*-===//
//
// The host side of the GPU's grouped experts (runtime/gpu/GpuMoEExperts.cpp):
// from the expert ids of a call's selection (SelectionIds.h: k per row, -1
// where a value is not an id), the rows routed to each expert, in row
// order, with the column of the selection that holds the row's weight.
// moe_accumulate's rule (CpuMoEKernels.cpp weightOf): a row that lists an
// expert twice takes the later weight, and counts once.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_MOEROUTING_H
#define GRETA_RT_MOEROUTING_H

#include <cstdint>
#include <string>
#include <vector>

namespace greta::rt {

struct ExpertRows {
  /// Experts 0 .. offsets.size() - 2: expert e's rows are
  /// rows[offsets[e] .. offsets[e + 1]).
  std::vector<int32_t> offsets;
  /// Row indices, ascending within each expert.
  std::vector<int32_t> rows;
  /// For each entry of rows, j in [0, k): its weight is selection column
  /// k + j of that row.
  std::vector<int32_t> slots;

  int64_t experts() const {
    return offsets.empty() ? 0 : static_cast<int64_t>(offsets.size()) - 1;
  }
  int64_t count(int64_t e) const {
    return e < 0 || e >= experts() ? 0 : offsets[e + 1] - offsets[e];
  }
};

/// Groups `rows` rows of k ids each (row after row). False, with `err`
/// naming the row and column, when an id is -1 (not a whole number) or k is
/// not positive.
inline bool groupRowsByExpert(const std::vector<int32_t> &ids, int64_t rows,
                              int64_t k, ExpertRows &out, std::string &err) {
  out = ExpertRows();
  if (k < 1 || static_cast<int64_t>(ids.size()) != rows * k) {
    err = "moe routing: " + std::to_string(ids.size()) + " ids for " +
          std::to_string(rows) + " rows of top_k " + std::to_string(k);
    return false;
  }
  int32_t maxId = -1;
  for (int64_t i = 0; i < rows * k; ++i) {
    if (ids[i] < 0) {
      err = "moe routing: selection row " + std::to_string(i / k) +
            " column " + std::to_string(i % k) +
            " is not an expert id (not a whole number >= 0)";
      return false;
    }
    maxId = ids[i] > maxId ? ids[i] : maxId;
  }
  int64_t experts = maxId + 1;
  // The slot of each (row, expert): the later column wins; -1 when absent.
  // Counting sort by expert keeps rows ascending within each expert.
  std::vector<int32_t> counts(experts + 1, 0);
  auto later = [&](int64_t r, int64_t j) { // a later column has this id
    for (int64_t t = j + 1; t < k; ++t)
      if (ids[r * k + t] == ids[r * k + j])
        return true;
    return false;
  };
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j)
      if (!later(r, j))
        ++counts[ids[r * k + j] + 1];
  out.offsets.assign(experts + 1, 0);
  for (int64_t e = 0; e < experts; ++e)
    out.offsets[e + 1] = out.offsets[e] + counts[e + 1];
  out.rows.resize(out.offsets.back());
  out.slots.resize(out.offsets.back());
  std::vector<int32_t> next(out.offsets.begin(), out.offsets.end() - 1);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j)
      if (!later(r, j)) {
        int32_t at = next[ids[r * k + j]]++;
        out.rows[at] = static_cast<int32_t>(r);
        out.slots[at] = static_cast<int32_t>(j);
      }
  return true;
}

} // namespace greta::rt

#endif // GRETA_RT_MOEROUTING_H

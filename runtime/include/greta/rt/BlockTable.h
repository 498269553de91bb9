//===- BlockTable.h - A paged KV cache's pages of one slot ------*- C++ -*-===//
//
// The host bookkeeping of the GPU's paged KV cache (GpuSession): a slot's
// pool holds `pages` pages of `blockSize` positions; its block table maps
// the sequence's logical page p / blockSize to a physical page, taken from
// the free list as the sequence grows. A reset returns the pages the most
// recently taken first, so the next run's first page is the previous run's
// last: a page that is reused holds another position's rows (what a stale
// read would see). LLVM-free and device-free: unit-tested on the CPU.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_BLOCKTABLE_H
#define GRETA_RT_BLOCKTABLE_H

#include <cstdint>
#include <string>
#include <vector>

namespace greta::rt {

class BlockTable {
public:
  /// `blockSize` > 0 positions a page, `pages` >= 0 pages in the pool.
  BlockTable(int64_t blockSize, int64_t pages);
  BlockTable() : BlockTable(1, 0) {}
  /// Pages for ceil(positions / blockSize) pages = enough for positions.
  static int64_t pagesFor(int64_t positions, int64_t blockSize) {
    return (positions + blockSize - 1) / blockSize;
  }
  int64_t blockSize() const { return blockSize_; }
  /// Positions [0, covered()) have a page.
  int64_t covered() const {
    return static_cast<int64_t>(table_.size()) * blockSize_;
  }
  /// Takes pages until positions [0, end) are covered; false (error names
  /// the numbers, nothing taken) when the pool has too few free pages.
  bool grow(int64_t end, std::string &error);
  /// Logical page -> physical page.
  const std::vector<int32_t> &table() const { return table_; }
  /// The physical row of `position` (< covered()) in the pool.
  int64_t row(int64_t position) const {
    return static_cast<int64_t>(table_[position / blockSize_]) * blockSize_ +
           position % blockSize_;
  }
  /// Every page back to the free list (the last taken is the next given).
  void reset();

private:
  int64_t blockSize_, pages_;
  std::vector<int32_t> table_;
  std::vector<int32_t> free_; // a stack: back() is the next page given
};

} // namespace greta::rt

#endif // GRETA_RT_BLOCKTABLE_H

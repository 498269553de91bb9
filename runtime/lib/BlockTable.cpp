//===- BlockTable.cpp - A paged KV cache's pages of one slot --------------===//
#include "greta/rt/BlockTable.h"

using namespace greta::rt;

BlockTable::BlockTable(int64_t blockSize, int64_t pages)
    : blockSize_(blockSize > 0 ? blockSize : 1),
      pages_(pages > 0 ? pages : 0) {
  // Page 0 is given first on a fresh pool.
  for (int64_t p = pages_ - 1; p >= 0; --p)
    free_.push_back(static_cast<int32_t>(p));
}

bool BlockTable::grow(int64_t end, std::string &error) {
  int64_t need = pagesFor(end, blockSize_) - static_cast<int64_t>(table_.size());
  if (need <= 0)
    return true;
  if (need > static_cast<int64_t>(free_.size())) {
    error = "the paged KV cache has " + std::to_string(free_.size()) +
            " free pages of " + std::to_string(blockSize_) +
            " positions, position " + std::to_string(end - 1) + " needs " +
            std::to_string(need) + " more (pool of " + std::to_string(pages_) +
            " pages)";
    return false;
  }
  for (int64_t i = 0; i < need; ++i) {
    table_.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void BlockTable::reset() {
  for (int32_t page : table_)
    free_.push_back(page);
  table_.clear();
}

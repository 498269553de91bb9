//===- HostAlloc.cpp - Buffers of the compiled CPU model --------*- C++ -*-===//
//
// A forward allocates the same few buffer sizes layer after layer; fresh
// memory from the OS is page-faulted in 4 KiB at a time, which in a VM cost
// a quarter of the CPU forward (827 tokens of llama-tiny: ~38k faults).
// So freed blocks are kept by exact size and handed out again, and blocks of
// 2 MiB or more are 2 MiB-aligned and advised as transparent huge pages
// (where the kernel's THP mode is `madvise`, as on Debian: one fault per
// 2 MiB). Blocks come from posix_memalign, so plain free() releases one too.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/CInterface.h"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

constexpr uint64_t kHuge = uint64_t(2) << 20;
// Freed blocks kept at most (beyond it they go back to malloc).
constexpr uint64_t kKeepBytes = uint64_t(2) << 30;

struct Blocks {
  std::mutex m;
  std::unordered_map<void *, uint64_t> size; // every live or kept block
  std::unordered_map<uint64_t, std::vector<void *>> kept;
  uint64_t keptBytes = 0;
};
Blocks &blocks() {
  static Blocks *b = new Blocks; // never destroyed: frees may come late
  return *b;
}

void *allocate(uint64_t alignment, uint64_t size) {
  size = (size + 63) / 64 * 64;
  Blocks &b = blocks();
  {
    std::lock_guard<std::mutex> lk(b.m);
    auto it = b.kept.find(size);
    if (it != b.kept.end() && !it->second.empty()) {
      void *p = it->second.back();
      if (reinterpret_cast<uintptr_t>(p) % alignment == 0) {
        it->second.pop_back();
        b.keptBytes -= size;
        return p;
      }
    }
  }
  const bool huge = size >= kHuge;
  void *p = nullptr;
  size_t align = huge ? kHuge : (alignment < 64 ? 64 : alignment);
  if (posix_memalign(&p, align, size) != 0)
    return nullptr;
  if (huge)
    madvise(p, size / kHuge * kHuge, MADV_HUGEPAGE); // advice only
  std::lock_guard<std::mutex> lk(b.m);
  b.size[p] = size;
  return p;
}

} // namespace

void *greta_rt_alloc(uint64_t size) { return allocate(64, size); }

void *greta_rt_aligned_alloc(uint64_t alignment, uint64_t size) {
  return allocate(alignment ? alignment : 64, size);
}

void greta_rt_free(void *p) {
  if (!p)
    return;
  Blocks &b = blocks();
  std::unique_lock<std::mutex> lk(b.m);
  auto it = b.size.find(p);
  if (it != b.size.end() && b.keptBytes + it->second <= kKeepBytes) {
    b.kept[it->second].push_back(p);
    b.keptBytes += it->second;
    return;
  }
  if (it != b.size.end())
    b.size.erase(it);
  lk.unlock();
  std::free(p);
}

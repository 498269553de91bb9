//===- HugePageAllocator.h - Big containers on transparent huge pages -----===//
//
// A std allocator for the few containers that grow to tens of MB (greta-diff
// keeps a RowResult per differing row). Fresh memory is page-faulted 4 KiB
// at a time; in a VM each fault is a trip to the hypervisor, and those
// faults were much of greta-diff's compare phase on the build machine
// (docs/PERFORMANCE.md, "greta-diff: read and compare"). Blocks of 2 MiB or
// more are 2 MiB-aligned and advised as huge pages (one fault per 2 MiB
// where the kernel's THP mode is `madvise`, as on Debian); smaller ones are
// plain malloc. The same idea as the compiled model's buffers
// (runtime/lib/HostAlloc.cpp), for C++ code.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_HUGEPAGEALLOCATOR_H
#define GRETA_RT_HUGEPAGEALLOCATOR_H

#include <cstdlib>
#include <new>
#include <vector>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace greta::rt {

template <typename T> struct HugePageAllocator {
  using value_type = T;
  static constexpr size_t kHuge = size_t(2) << 20;

  HugePageAllocator() = default;
  template <typename U> HugePageAllocator(const HugePageAllocator<U> &) {}

  T *allocate(size_t n) {
    size_t bytes = n * sizeof(T);
    void *p = nullptr;
    if (bytes < kHuge) {
      p = std::malloc(bytes ? bytes : 1);
    } else if (posix_memalign(&p, kHuge, bytes) == 0) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
      madvise(p, bytes / kHuge * kHuge, MADV_HUGEPAGE); // advice only
#endif
    }
    if (!p)
      throw std::bad_alloc();
    return static_cast<T *>(p);
  }
  void deallocate(T *p, size_t) { std::free(p); }

  template <typename U> bool operator==(const HugePageAllocator<U> &) const {
    return true;
  }
  template <typename U> bool operator!=(const HugePageAllocator<U> &) const {
    return false;
  }
};

/// A vector whose big buffers sit on huge pages.
template <typename T>
using HugePageVector = std::vector<T, HugePageAllocator<T>>;

} // namespace greta::rt

#endif // GRETA_RT_HUGEPAGEALLOCATOR_H

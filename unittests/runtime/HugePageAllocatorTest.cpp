//===- HugePageAllocatorTest.cpp - rt::HugePageAllocator ------------------===//
#include "greta/rt/HugePageAllocator.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

using greta::rt::HugePageVector;

namespace {
constexpr uintptr_t kHuge = uintptr_t(2) << 20;

TEST(HugePageAllocator, BigBuffersAreHugePageAligned) {
  HugePageVector<double> v;
  v.reserve(kHuge / sizeof(double) + 1); // a little over 2 MiB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHuge, 0u);
}

TEST(HugePageAllocator, SmallBuffersAndGrowthKeepTheElements) {
  HugePageVector<std::string> v; // grows from malloc'd to huge-page blocks
  const size_t n = 3 * kHuge / sizeof(std::string);
  for (size_t i = 0; i < n; ++i)
    v.push_back(std::to_string(i));
  ASSERT_EQ(v.size(), n);
  for (size_t i : {size_t(0), size_t(1), n / 2, n - 1})
    EXPECT_EQ(v[i], std::to_string(i));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHuge, 0u);
  HugePageVector<std::string> small(3, "x");
  EXPECT_EQ(small[2], "x");
}
} // namespace

//===- SelectionIdsTest.cpp - expert_selection ids on CPU and GPU rows ----===//
//
// greta/rt/SelectionIds.h: the ids the CPU session and the GPU trace writer
// put in an expert_selection record's top ids. The same selection stored in
// f32, f64, f16 and bf16 gives the same ids in the same layout (k per row,
// row after row); values that are not whole numbers give -1.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Half.h"
#include "greta/rt/SelectionIds.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

using namespace greta::rt;

namespace {

/// n rows of [k ids, k weights] in `dtype`, as bytes.
std::vector<uint8_t> encode(const std::vector<double> &vals, DType dtype) {
  std::vector<uint8_t> out(vals.size() * dtypeSize(dtype));
  for (size_t i = 0; i < vals.size(); ++i) {
    double v = vals[i];
    switch (dtype) {
    case DType::F32: {
      float f = static_cast<float>(v);
      std::memcpy(&out[i * 4], &f, 4);
      break;
    }
    case DType::F64:
      std::memcpy(&out[i * 8], &v, 8);
      break;
    case DType::F16: {
      uint16_t h = doubleToHalfBits(v);
      std::memcpy(&out[i * 2], &h, 2);
      break;
    }
    case DType::BF16: {
      uint16_t h = doubleToBF16Bits(v);
      std::memcpy(&out[i * 2], &h, 2);
      break;
    }
    }
  }
  return out;
}

TEST(SelectionIds, SameIdsInEveryStorageType) {
  // 3 rows, top-2: ids then weights; ids up to 127 (Qwen3-MoE's 128).
  std::vector<double> sel = {3, 0, 0.75, 0.25, //
                             127, 64, 0.5, 0.5, //
                             1, 2, 0.9, 0.1};
  std::vector<int32_t> want = {3, 0, 127, 64, 1, 2};
  for (DType d : {DType::F32, DType::F64, DType::F16, DType::BF16}) {
    std::vector<uint8_t> bytes = encode(sel, d);
    std::vector<int32_t> ids;
    selectionIds(bytes.data(), d, 3, 4, ids);
    EXPECT_EQ(ids, want) << dtypeName(d);
  }
}

TEST(SelectionIds, NotWholeNumbersAreMinusOne) {
  std::vector<double> sel = {1.5, -1, 0.5, 0.5, NAN, INFINITY, 0.5, 0.5};
  for (DType d : {DType::F32, DType::F16, DType::BF16}) {
    std::vector<uint8_t> bytes = encode(sel, d);
    std::vector<int32_t> ids;
    selectionIds(bytes.data(), d, 2, 4, ids);
    EXPECT_EQ(ids, (std::vector<int32_t>{-1, -1, -1, -1})) << dtypeName(d);
  }
}

TEST(SelectionIds, TopOneAndEmpty) {
  std::vector<double> sel = {7, 1.0, 0, 1.0};
  std::vector<uint8_t> bytes = encode(sel, DType::BF16);
  std::vector<int32_t> ids;
  selectionIds(bytes.data(), DType::BF16, 2, 2, ids);
  EXPECT_EQ(ids, (std::vector<int32_t>{7, 0}));
  selectionIds(bytes.data(), DType::BF16, 0, 2, ids);
  EXPECT_TRUE(ids.empty());
}

} // namespace

// greta/rt/MoERouting.h: the rows of a call grouped by expert for the
// GPU's grouped experts.
#include "greta/rt/MoERouting.h"

namespace {

TEST(MoERouting, RowsAscendingPerExpertWithTheirSlots) {
  // 4 rows, top-2; expert 2 gets no token, expert 4 only row 3.
  std::vector<int32_t> ids = {1, 0, //
                              0, 3, //
                              3, 1, //
                              4, 0};
  ExpertRows g;
  std::string err;
  ASSERT_TRUE(groupRowsByExpert(ids, 4, 2, g, err)) << err;
  EXPECT_EQ(g.experts(), 5);
  EXPECT_EQ(g.offsets, (std::vector<int32_t>{0, 3, 5, 5, 7, 8}));
  EXPECT_EQ(g.rows, (std::vector<int32_t>{0, 1, 3, 0, 2, 1, 2, 3}));
  EXPECT_EQ(g.slots, (std::vector<int32_t>{1, 0, 1, 0, 1, 1, 0, 0}));
  EXPECT_EQ(g.count(2), 0);
  EXPECT_EQ(g.count(9), 0);
}

TEST(MoERouting, TopOneAndATwiceListedExpertTakesTheLaterColumn) {
  ExpertRows g;
  std::string err;
  ASSERT_TRUE(groupRowsByExpert({2, 2, 0}, 3, 1, g, err)) << err;
  EXPECT_EQ(g.rows, (std::vector<int32_t>{2, 0, 1}));
  // moe_accumulate's weightOf: the later of two equal ids.
  ASSERT_TRUE(groupRowsByExpert({1, 1}, 1, 2, g, err)) << err;
  EXPECT_EQ(g.rows, (std::vector<int32_t>{0}));
  EXPECT_EQ(g.slots, (std::vector<int32_t>{1}));
}

TEST(MoERouting, ABadIdIsNamed) {
  ExpertRows g;
  std::string err;
  EXPECT_FALSE(groupRowsByExpert({0, 1, -1, 2}, 2, 2, g, err));
  EXPECT_EQ(err, "moe routing: selection row 1 column 0 is not an expert id "
                 "(not a whole number >= 0)");
  EXPECT_FALSE(groupRowsByExpert({0, 1, 2}, 2, 2, g, err));
  EXPECT_FALSE(groupRowsByExpert({}, 0, 0, g, err));
  ASSERT_TRUE(groupRowsByExpert({}, 0, 2, g, err));
  EXPECT_EQ(g.experts(), 0);
}

} // namespace

//===- TraceFrontTest.cpp - What a trace call means, CPU and GPU -*- C++
//-*-===//
#include "greta/rt/TraceFront.h"
#include "greta/rt/Half.h"

#include <gtest/gtest.h>

#include <cstring>

using namespace greta::rt;

namespace {

TEST(TraceFront, DecodeRecordIdInvertsRecordId) {
  for (unsigned s = 0; s < kNumStages; ++s)
    for (int64_t layer : {0, 1, 47}) {
      auto key = decodeRecordId(recordId(static_cast<Stage>(s), layer));
      ASSERT_TRUE(key);
      EXPECT_EQ(key->stage, static_cast<Stage>(s));
      EXPECT_EQ(key->layer, layer);
    }
  EXPECT_FALSE(decodeRecordId(-1));
  // Stages from 16 on live on page 1 (above 2^40); the ids of the first 16
  // are layer * 16 + stage, as they always were.
  EXPECT_EQ(recordId(Stage::VProj, 2), 2 * 16 + 13);
  EXPECT_EQ(recordId(Stage::MoeOut, 2),
            (int64_t(1) << kRecordIdPageShift) + 2 * 16 + 0);
  static_assert(kNumStages < 2 * kRecordIdStride);
  EXPECT_FALSE(decodeRecordId((int64_t(1) << kRecordIdPageShift) +
                              kNumStages - kRecordIdStride)); // no such stage
  EXPECT_FALSE(decodeRecordId(int64_t(2) << kRecordIdPageShift));
}

TEST(TraceFront, AdmitFiltersChecksRowsAndResolvesThePayload) {
  TraceFront front;
  Filter filter;
  std::string err;
  ASSERT_TRUE(Filter::parseLayers("1", filter, err));
  ASSERT_TRUE(Filter::parsePositions("last", filter, err));
  front.setFilter(filter, /*tokenCount=*/4);
  front.setPositions({2, 3});
  EXPECT_EQ(front.selectedRows(), (std::vector<int64_t>{1}));
  // Another layer: not recorded, no error.
  EXPECT_FALSE(front.admit(recordId(Stage::AttnOut, 0), 0, 2, err));
  EXPECT_TRUE(err.empty());
  const int64_t noStage = (int64_t(1) << kRecordIdPageShift) + 15;
  EXPECT_FALSE(front.admit(noStage, 0, 2, err));
  EXPECT_EQ(err, "trace: invalid record id " + std::to_string(noStage));
  EXPECT_FALSE(front.admit(recordId(Stage::AttnOut, 1), 0, 3, err));
  EXPECT_EQ(err, "trace of attn_out layer 1: 3 rows but the session has 2 "
                 "positions for this call");
  EXPECT_FALSE(front.admit(recordId(Stage::AttnOut, 1), 7, 2, err));
  EXPECT_EQ(err, "trace: invalid payload 7");
  auto call = front.admit(recordId(Stage::AttnOut, 1), 1, 2, err);
  ASSERT_TRUE(call) << err;
  EXPECT_EQ(call->payload, Payload::Stats); // the compiled one
  ASSERT_TRUE(Filter::parsePayload("full", filter, err));
  front.setFilter(filter, 4);
  call = front.admit(recordId(Stage::AttnOut, 1), 1, 2, err);
  ASSERT_TRUE(call) << err;
  EXPECT_EQ(call->payload, Payload::Full); // the filter's wins
}

TEST(TraceFront, RepeatsOnlyTheSameTensorAndNeverLogits) {
  float buf[4] = {};
  TraceFront::Tensor t{buf, DType::F32, 2, 2, 2, Payload::Hash};
  EXPECT_TRUE(TraceFront::repeats(true, Stage::ResidualPreAttn, t, t));
  EXPECT_FALSE(TraceFront::repeats(false, Stage::ResidualPreAttn, t, t));
  EXPECT_FALSE(
      TraceFront::repeats(true, Stage::ResidualPreAttn, std::nullopt, t));
  EXPECT_FALSE(TraceFront::repeats(true, Stage::Logits, t, t));
  TraceFront::Tensor other = t;
  other.payload = Payload::Full;
  EXPECT_FALSE(TraceFront::repeats(true, Stage::ResidualPreAttn, t, other));
  other = t;
  other.rowStride = 3;
  EXPECT_FALSE(TraceFront::repeats(true, Stage::ResidualPreAttn, t, other));
}

TEST(TraceFront, PatchConvertsToTheBuffersType) {
  TraceFront front;
  front.setPositions({5, 6});
  int64_t id = recordId(Stage::MlpOut, 2);
  front.setPatch(id, {{6, {1.5, -2.0}}});
  std::string err;
  std::vector<std::pair<int64_t, std::vector<uint8_t>>> got;
  auto write = [&](int64_t row, std::vector<uint8_t> bytes) {
    got.push_back({row, std::move(bytes)});
    return true;
  };
  EXPECT_EQ(front.patch(id + 1, DType::F32, 2, 2, write, err), 0);
  EXPECT_EQ(front.patch(id, DType::BF16, 2, 2, write, err), 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, 1); // the row of position 6
  uint16_t h[2];
  std::memcpy(h, got[0].second.data(), 4);
  EXPECT_EQ(h[0], doubleToBF16Bits(1.5));
  EXPECT_EQ(h[1], doubleToBF16Bits(-2.0));
  EXPECT_EQ(front.rowsPatched(), 1);
  EXPECT_EQ(front.patch(id, DType::F32, 2, 3, write, err), 0);
  EXPECT_EQ(err, "patch of record 42 at position 6 has 2 values, the tensor "
                 "row 3");
}

} // namespace

//===- CTraceWriterTest.cpp - The C API greta_trace_writer_* --------------===//
//
// Bad input is refused with a message naming the argument or field; a good
// trace reads back with the rows' digests; the weights digest follows its
// definition and depends on values, not storage.
//
//===----------------------------------------------------------------------===//
#include "greta/trace_writer.h"

#include "greta/rt/Sha256.h"
#include "TestUtil.h"
#include "greta/rt/Trace.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace {

const int64_t kIds[4] = {1, 2, 3, 4};

greta_trace_info goodInfo() {
  greta_trace_info info;
  std::memset(&info, 0, sizeof info);
  info.engine = "unit";
  info.prompt_ids = kIds;
  info.token_count = 4;
  info.dtype = "f32";
  return info;
}

/// Opening fails and the message holds `expected`.
void expectOpenFails(const std::string &dir, const greta_trace_info *info,
                     const std::string &expected) {
  greta_trace_writer *w = greta_trace_writer_open(dir.c_str(), info);
  EXPECT_EQ(w, nullptr);
  if (w)
    greta_trace_writer_abandon(w);
  EXPECT_NE(std::string(greta_trace_last_error()).find(expected),
            std::string::npos)
      << greta_trace_last_error();
}

TEST(CTraceWriter, OpenRejectsBadInfo) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  greta_trace_info info = goodInfo();
  EXPECT_EQ(greta_trace_writer_open(nullptr, &info), nullptr);
  EXPECT_NE(std::string(greta_trace_last_error()).find("dir is NULL"),
            std::string::npos);
  expectOpenFails(dir, nullptr, "info is NULL");
  info.engine = "";
  expectOpenFails(dir, &info, "info.engine is required");
  info = goodInfo();
  info.token_count = 0;
  expectOpenFails(dir, &info, "info.token_count is 0");
  info = goodInfo();
  info.prompt_ids = nullptr;
  expectOpenFails(dir, &info, "info.prompt_ids is NULL");
  info = goodInfo();
  info.weights_digest = "ABC";
  expectOpenFails(dir, &info,
                  "info.weights_digest 'ABC' is not 64 lowercase hex digits");
  info = goodInfo();
  info.dtype = "fp8";
  expectOpenFails(dir, &info, "info.dtype 'fp8': expected f32, f64, f16");
  info = goodInfo();
  info.payload = "everything";
  expectOpenFails(dir, &info, "info.payload");
  info = goodInfo();
  setenv("GRETA_TRACE_STAGES", "attn_out,nope", 1);
  expectOpenFails(dir, &info, "GRETA_TRACE_STAGES='attn_out,nope'");
  unsetenv("GRETA_TRACE_STAGES");
  // A trace already there is refused unless overwrite.
  greta_trace_writer *w = greta_trace_writer_open(dir.c_str(), &info);
  ASSERT_NE(w, nullptr) << greta_trace_last_error();
  ASSERT_EQ(greta_trace_writer_close(w), 0);
  expectOpenFails(dir, &info, "already holds a trace");
  info.overwrite = 1;
  w = greta_trace_writer_open(dir.c_str(), &info);
  ASSERT_NE(w, nullptr) << greta_trace_last_error();
  EXPECT_EQ(greta_trace_writer_close(w), 0);
}

TEST(CTraceWriter, WriteRejectsBadRows) {
  TempDir tmp;
  greta_trace_info info = goodInfo();
  greta_trace_writer *w =
      greta_trace_writer_open((tmp.path() + "/t").c_str(), &info);
  ASSERT_NE(w, nullptr) << greta_trace_last_error();
  float rows[4 * 3] = {};
  auto expectFails = [&](int64_t got, const std::string &expected) {
    EXPECT_EQ(got, -1);
    EXPECT_NE(std::string(greta_trace_last_error()).find(expected),
              std::string::npos)
        << greta_trace_last_error();
  };
  expectFails(greta_trace_writer_write(nullptr, "mlp_out", 0, nullptr, 4, 3,
                                       GRETA_TRACE_F32, rows),
              "the writer is NULL");
  expectFails(greta_trace_writer_write(w, "mlp_output", 0, nullptr, 4, 3,
                                       GRETA_TRACE_F32, rows),
              "unknown stage 'mlp_output'");
  expectFails(greta_trace_writer_write(w, nullptr, 0, nullptr, 4, 3,
                                       GRETA_TRACE_F32, rows),
              "unknown stage ''");
  expectFails(greta_trace_writer_write(w, "mlp_out", -1, nullptr, 4, 3,
                                       GRETA_TRACE_F32, rows),
              "mlp_out layer -1: negative layer");
  expectFails(greta_trace_writer_write(w, "mlp_out", 0, nullptr, 4, 3,
                                       static_cast<greta_trace_dtype>(7), rows),
              "unknown dtype code 7");
  expectFails(greta_trace_writer_write(w, "mlp_out", 0, nullptr, 4, 0,
                                       GRETA_TRACE_F32, rows),
              "4 rows of 0 elements");
  expectFails(greta_trace_writer_write(w, "mlp_out", 0, nullptr, 4, 3,
                                       GRETA_TRACE_F32, nullptr),
              "data is NULL");
  const int64_t badPositions[4] = {0, 1, -5, 3};
  expectFails(greta_trace_writer_write(w, "mlp_out", 0, badPositions, 4, 3,
                                       GRETA_TRACE_F32, rows),
              "row 2 has position -5");
  // Nothing bad was written: the writer still works.
  EXPECT_EQ(greta_trace_writer_write(w, "mlp_out", 0, nullptr, 4, 3,
                                     GRETA_TRACE_F32, rows),
            4);
  EXPECT_EQ(greta_trace_writer_close(w), 0);
  EXPECT_EQ(greta_trace_writer_close(nullptr), -1);
}

TEST(CTraceWriter, RoundTripAndFilter) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  greta_trace_info info = goodInfo();
  info.engine_version = "2.0";
  info.device = "mi300x";
  info.payload = "full";
  setenv("GRETA_TRACE_LAYERS", "1", 1);
  setenv("GRETA_TRACE_POSITIONS", "2,last", 1);
  greta_trace_writer *w = greta_trace_writer_open(dir.c_str(), &info);
  unsetenv("GRETA_TRACE_LAYERS");
  unsetenv("GRETA_TRACE_POSITIONS");
  ASSERT_NE(w, nullptr) << greta_trace_last_error();
  double rows[4 * 2] = {0, 1, 2, 3, 4, 5, -0.0, NAN};
  EXPECT_EQ(greta_trace_writer_write(w, "attn_out", 0, nullptr, 4, 2,
                                     GRETA_TRACE_F64, rows),
            0); // layer 0 is filtered out
  EXPECT_EQ(greta_trace_writer_write(w, "attn_out", 1, nullptr, 4, 2,
                                     GRETA_TRACE_F64, rows),
            2);
  ASSERT_EQ(greta_trace_writer_close(w), 0) << greta_trace_last_error();

  std::string error;
  auto t = greta::rt::readTrace(dir, error);
  ASSERT_TRUE(t) << error;
  EXPECT_TRUE(t->complete);
  EXPECT_EQ(t->manifest.backend, "unit/mi300x");
  EXPECT_EQ(t->manifest.toolVersion, "unit 2.0");
  EXPECT_EQ(t->manifest.filter,
            "layers=1 stages=all positions=2,last payload=compiled");
  std::vector<uint8_t> idBytes(sizeof kIds);
  std::memcpy(idBytes.data(), kIds, sizeof kIds); // little-endian host
  EXPECT_EQ(t->manifest.promptDigest,
            greta::rt::sha256Hex(idBytes.data(), idBytes.size()));
  EXPECT_EQ(t->manifest.promptIds, std::vector<int64_t>(kIds, kIds + 4));
  ASSERT_EQ(t->records.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const greta::rt::Record &r = t->records[i];
    int64_t p = i == 0 ? 2 : 3;
    EXPECT_EQ(r.position, p);
    EXPECT_EQ(r.layer, 1);
    EXPECT_EQ(r.payload, greta::rt::Payload::Full);
    std::vector<uint8_t> bytes(reinterpret_cast<uint8_t *>(rows + 2 * p),
                               reinterpret_cast<uint8_t *>(rows + 2 * p + 2));
    EXPECT_EQ(r.values.toVector(), bytes);
    EXPECT_EQ(r.sha256Hex(), greta::rt::sha256Hex(bytes.data(), 16));
  }
  EXPECT_EQ(t->records[1].nanCount, 1);
  EXPECT_EQ(t->records[1].nzCount, 1); // -0 is zero, NaN is not
}

TEST(CTraceWriter, AbandonLeavesAnIncompleteTrace) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  greta_trace_info info = goodInfo();
  greta_trace_writer *w = greta_trace_writer_open(dir.c_str(), &info);
  ASSERT_NE(w, nullptr);
  float rows[4] = {1, 2, 3, 4};
  EXPECT_EQ(greta_trace_writer_write(w, "embed_out", 0, nullptr, 4, 1,
                                     GRETA_TRACE_F32, rows),
            4);
  greta_trace_writer_abandon(w);
  std::string error;
  auto t = greta::rt::readTrace(dir, error);
  ASSERT_TRUE(t) << error;
  EXPECT_FALSE(t->complete);
  EXPECT_EQ(t->records.size(), 4u);
}

/// The definition of docs/TRACE_FORMAT.md, written out for one tensor.
std::string definedDigest(const std::string &name,
                          const std::vector<int64_t> &shape,
                          const std::vector<double> &values) {
  std::vector<uint8_t> b;
  auto u64 = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i)
      b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  u64(name.size());
  b.insert(b.end(), name.begin(), name.end());
  u64(shape.size());
  for (int64_t d : shape)
    u64(static_cast<uint64_t>(d));
  const auto *v = reinterpret_cast<const uint8_t *>(values.data());
  b.insert(b.end(), v, v + values.size() * 8);
  std::array<uint8_t, 32> tensor = greta::rt::sha256(b.data(), b.size());
  b.clear();
  u64(name.size());
  b.insert(b.end(), name.begin(), name.end());
  b.insert(b.end(), tensor.begin(), tensor.end());
  return greta::rt::sha256Hex(b.data(), b.size());
}

TEST(CTraceWriter, WeightsDigest) {
  float f32[6] = {1.5f, -2.0f, 0.0f, 3.25f, 1e-3f, 7.0f};
  double f64[6];
  for (int i = 0; i < 6; ++i)
    f64[i] = f32[i];
  int64_t shape[2] = {2, 3};
  greta_trace_tensor t = {"w", GRETA_TRACE_F32, 2, shape, f32};
  char a[65], b[65];
  ASSERT_EQ(greta_trace_weights_digest(&t, 1, a), 0)
      << greta_trace_last_error();
  EXPECT_EQ(std::string(a), definedDigest("w", {2, 3}, {f64, f64 + 6}));
  // By value, not storage: the f64 copy has the same digest.
  greta_trace_tensor t64 = {"w", GRETA_TRACE_F64, 2, shape, f64};
  ASSERT_EQ(greta_trace_weights_digest(&t64, 1, b), 0);
  EXPECT_STREQ(a, b);
  f64[4] = 2e-3;
  ASSERT_EQ(greta_trace_weights_digest(&t64, 1, b), 0);
  EXPECT_STRNE(a, b);
  // Order of the tensors does not matter (sorted by name).
  greta_trace_tensor two[2] = {{"z", GRETA_TRACE_F32, 2, shape, f32},
                               {"a", GRETA_TRACE_F32, 2, shape, f32}};
  greta_trace_tensor swapped[2] = {two[1], two[0]};
  ASSERT_EQ(greta_trace_weights_digest(two, 2, a), 0);
  ASSERT_EQ(greta_trace_weights_digest(swapped, 2, b), 0);
  EXPECT_STREQ(a, b);

  auto expectFails = [&](const greta_trace_tensor *ts, size_t n,
                         const std::string &expected) {
    char out[65];
    EXPECT_EQ(greta_trace_weights_digest(ts, n, out), -1);
    EXPECT_NE(std::string(greta_trace_last_error()).find(expected),
              std::string::npos)
        << greta_trace_last_error();
  };
  greta_trace_tensor dup[2] = {two[0], two[0]};
  expectFails(dup, 2, "tensor 1 'z' is given twice");
  greta_trace_tensor noName = {"", GRETA_TRACE_F32, 2, shape, f32};
  expectFails(&noName, 1, "tensor 0 has no name");
  greta_trace_tensor badRank = {"w", GRETA_TRACE_F32, 9, shape, f32};
  expectFails(&badRank, 1, "tensor 0 'w': rank 9 (0 to 8)");
  int64_t negative[2] = {2, -3};
  greta_trace_tensor badDim = {"w", GRETA_TRACE_F32, 2, negative, f32};
  expectFails(&badDim, 1, "dimension 1 is -3");
  greta_trace_tensor noData = {"w", GRETA_TRACE_F32, 2, shape, nullptr};
  expectFails(&noData, 1, "'w': data is NULL");
  expectFails(nullptr, 1, "tensors is NULL");
}

} // namespace

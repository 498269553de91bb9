//===- WeightsTest.cpp - safetensors reader/writer, f16/bf16 ----*- C++ -*-===//
#include "greta/rt/Weights.h"
#include "greta/rt/Half.h"

#include "TestUtil.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

using namespace greta::rt;

namespace {

std::vector<TensorToWrite> sampleTensors() {
  return {
      {"model.embed_tokens.weight",
       {3, 4},
       {0, 1, -2, 3.5f, 1e-3f, -1e-3f, 65504, 1e-8f, 0.1f, 0.2f, 0.3f, -0.0f}},
      {"model.norm.weight", {4}, {1, 1, 1, 1}},
      {"empty", {0, 4}, {}}};
}

TEST(Weights, RoundTripF32) {
  TempDir dir;
  std::string path = dir.path() + "/w.safetensors";
  std::string err;
  auto tensors = sampleTensors();
  ASSERT_TRUE(writeSafeTensors(path, tensors, DType::F32, err)) << err;
  auto st = SafeTensors::open(path, err);
  ASSERT_TRUE(st) << err;
  EXPECT_EQ(st->tensors().size(), 3u);
  const TensorInfo *t = st->find("model.embed_tokens.weight");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->dtype, DType::F32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{3, 4}));
  std::vector<float> f(12);
  convertTensor(*t, f.data());
  for (size_t i = 0; i < 12; ++i)
    EXPECT_EQ(std::memcmp(&f[i], &tensors[0].values[i], 4), 0) << i;
  std::vector<double> d(12);
  convertTensor(*t, d.data());
  EXPECT_EQ(d[3], 3.5);
  EXPECT_EQ(st->find("nope"), nullptr);
  EXPECT_EQ(st->identity().size, readFile(path).size());
  EXPECT_NE(st->identity().inode, 0u);
}

TEST(Weights, RoundTripHalfAndBF16) {
  TempDir dir;
  std::string err;
  auto tensors = sampleTensors();
  for (DType dt : {DType::F16, DType::BF16, DType::F64}) {
    std::string path = dir.path() + "/w" + std::string(dtypeName(dt));
    ASSERT_TRUE(writeSafeTensors(path, tensors, dt, err)) << err;
    auto st = SafeTensors::open(path, err);
    ASSERT_TRUE(st) << err;
    const TensorInfo *t = st->find("model.embed_tokens.weight");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->dtype, dt);
    EXPECT_EQ(t->bytes, 12 * dtypeSize(dt));
    std::vector<float> f(12);
    convertTensor(*t, f.data());
    for (size_t i = 0; i < 12; ++i) {
      double x = tensors[0].values[i];
      double want = dt == DType::F16    ? roundToHalf(x)
                    : dt == DType::BF16 ? roundToBF16(x)
                                        : x;
      EXPECT_EQ(f[i], static_cast<float>(want)) << dtypeName(dt) << " " << i;
    }
  }
}

TEST(Weights, WriterRejectsBadInput) {
  TempDir dir;
  std::string err;
  std::string path = dir.path() + "/w.safetensors";
  EXPECT_FALSE(
      writeSafeTensors(path, {{"a", {2, 2}, {1, 2, 3}}}, DType::F32, err));
  EXPECT_NE(err.find("'a'"), std::string::npos) << err;
  EXPECT_FALSE(writeSafeTensors(path, {{"a", {1}, {1}}, {"a", {1}, {1}}},
                                DType::F32, err));
  EXPECT_NE(err.find("twice"), std::string::npos) << err;
  EXPECT_FALSE(
      writeSafeTensors(dir.path() + "/no/such/dir/w", {}, DType::F32, err));
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
}

/// Writes a safetensors file with a hand-made header and `dataBytes` bytes.
std::string writeRaw(const std::string &path, const std::string &header,
                     size_t dataBytes) {
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    out.put(static_cast<char>(n >> (8 * i)));
  out << header << std::string(dataBytes, '\0');
  return path;
}

std::string openError(const std::string &path) {
  std::string err;
  auto st = SafeTensors::open(path, err);
  EXPECT_FALSE(st) << path;
  return err;
}

TEST(Weights, ValidationErrors) {
  TempDir dir;
  std::string p = dir.path() + "/bad.safetensors";
  auto expectError = [&](const std::string &header, size_t data,
                         const std::vector<std::string> &needles) {
    std::string err = openError(writeRaw(p, header, data));
    EXPECT_NE(err.find(p), std::string::npos) << err;
    for (const auto &n : needles)
      EXPECT_NE(err.find(n), std::string::npos)
          << "'" << n << "' not in: " << err;
  };
  expectError("{not json", 0, {"not valid JSON"});
  {
    std::string h = "{}";
    std::string raw(8, '\0');
    raw[0] = 100; // claims a 100-byte header
    writeFile(p, raw + h);
    std::string err = openError(p);
    EXPECT_NE(err.find("header length 100 exceeds"), std::string::npos) << err;
  }
  expectError("[1,2]", 0, {"not a JSON object"});
  expectError(
      R"({"w": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", 8,
      {"'w'", "unsupported dtype 'I64'"});
  expectError(R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", 4,
              {"'w'", "dtype"});
  expectError(R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", 4,
              {"'w'", "shape"});
  expectError(
      R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4,
      {"'w'", "non-negative"});
  expectError(R"({"w": {"dtype": "F32", "shape": [1]}})", 4,
              {"'w'", "data_offsets"});
  expectError(
      R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 4,
      {"'w'", "outside the data section"});
  expectError(
      R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8,
      {"'w'", "reversed"});
  expectError(
      R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", 8,
      {"'w'", "needs 12"});
  expectError(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
              12, {"'b'", "overlaps", "'a'"});
}

TEST(Weights, TruncatedAndMissingFiles) {
  TempDir dir;
  std::string err;
  EXPECT_FALSE(SafeTensors::open(dir.path() + "/missing.safetensors", err));
  EXPECT_NE(err.find("missing.safetensors"), std::string::npos);
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
  // A directory is an HF checkpoint; this one holds no weights.
  EXPECT_FALSE(SafeTensors::open(dir.path(), err));
  EXPECT_NE(err.find("found neither"), std::string::npos) << err;

  std::string path = dir.path() + "/w.safetensors";
  ASSERT_TRUE(writeSafeTensors(path, sampleTensors(), DType::F32, err)) << err;
  std::string bytes = readFile(path);
  // Every truncation is an error, none crashes.
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::string cut = dir.path() + "/cut.safetensors";
    writeFile(cut, bytes.substr(0, n));
    std::string e = openError(cut);
    EXPECT_FALSE(e.empty()) << n;
  }
  std::string e = openError(writeFile(dir.path() + "/tiny", "abc"));
  EXPECT_NE(e.find("too small"), std::string::npos) << e;
  // An empty header is a valid file without tensors.
  auto empty = SafeTensors::open(writeRaw(dir.path() + "/empty", "{}", 0), err);
  ASSERT_TRUE(empty) << err;
  EXPECT_TRUE(empty->tensors().empty());
  e = openError(writeRaw(dir.path() + "/long", "{}", 0) + "x");
  EXPECT_NE(e.find("No such file"), std::string::npos) << e;
}

TEST(Half, KnownValues) {
  // f16
  EXPECT_EQ(doubleToHalfBits(0.0), 0x0000);
  EXPECT_EQ(doubleToHalfBits(-0.0), 0x8000);
  EXPECT_EQ(doubleToHalfBits(1.0), 0x3c00);
  EXPECT_EQ(doubleToHalfBits(-2.0), 0xc000);
  EXPECT_EQ(doubleToHalfBits(65504.0), 0x7bff);
  EXPECT_EQ(doubleToHalfBits(65519.99), 0x7bff);
  EXPECT_EQ(doubleToHalfBits(65520.0), 0x7c00); // tie rounds to even: inf
  EXPECT_EQ(doubleToHalfBits(1e6), 0x7c00);
  EXPECT_EQ(doubleToHalfBits(std::numeric_limits<double>::infinity()), 0x7c00);
  EXPECT_EQ(doubleToHalfBits(-std::numeric_limits<double>::infinity()), 0xfc00);
  uint16_t nan = doubleToHalfBits(std::nan(""));
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x3ff, 0);
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1.0, -24)), 0x0001); // min subnormal
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1.0, -25)), 0x0000); // tie to even 0
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1.5, -25)), 0x0001);
  EXPECT_EQ(doubleToHalfBits(std::ldexp(3.0, -25)), 0x0002); // 1.5 units: even
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1.0, -14)), 0x0400); // min normal
  EXPECT_EQ(doubleToHalfBits(std::ldexp(1023.5, -24)), 0x0400); // carry
  // 1 + 2^-11 is a tie between 1 and 1+2^-10: to even (1).
  EXPECT_EQ(doubleToHalfBits(1.0 + std::ldexp(1.0, -11)), 0x3c00);
  EXPECT_EQ(doubleToHalfBits(1.0 + 3 * std::ldexp(1.0, -11)), 0x3c02);
  EXPECT_EQ(doubleToHalfBits(1.0 + std::ldexp(1.0, -11) + 1e-12), 0x3c01);
  EXPECT_EQ(doubleToHalfBits(0.1), 0x2e66);
  // bf16
  EXPECT_EQ(doubleToBF16Bits(1.0), 0x3f80);
  EXPECT_EQ(doubleToBF16Bits(-1.0), 0xbf80);
  EXPECT_EQ(doubleToBF16Bits(0.1), 0x3dcd);
  EXPECT_EQ(doubleToBF16Bits(1.0 + std::ldexp(1.0, -8)), 0x3f80); // tie even
  EXPECT_EQ(doubleToBF16Bits(1.0 + 3 * std::ldexp(1.0, -8)), 0x3f82);
  EXPECT_EQ(doubleToBF16Bits(3.4e38), 0x7f80); // above max bf16: inf
  EXPECT_EQ(doubleToBF16Bits(std::ldexp(1.0, -133)), 0x0001);
  // Decoding
  EXPECT_EQ(halfBitsToFloat(0x3c00), 1.0f);
  EXPECT_EQ(halfBitsToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(halfBitsToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(halfBitsToFloat(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(halfBitsToFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(halfBitsToFloat(0x7e00)));
  EXPECT_EQ(bf16BitsToFloat(0x3f80), 1.0f);
}

TEST(Half, AllHalfValuesRoundTrip) {
  // Every finite f16 decodes and re-encodes to itself, including from f32.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00)
      continue;
    float f = halfBitsToFloat(static_cast<uint16_t>(h));
    EXPECT_EQ(doubleToHalfBits(f), h) << std::hex << h;
  }
  for (uint32_t b = 0; b < 0x10000; ++b) {
    if ((b & 0x7f80) == 0x7f80)
      continue;
    float f = bf16BitsToFloat(static_cast<uint16_t>(b));
    EXPECT_EQ(doubleToBF16Bits(f), b) << std::hex << b;
  }
}

TEST(Half, MatchesFloatRoundingOnRandomFloats) {
  // bf16 from f32 by integer RNE (the well-known formulation) vs ours.
  Rng rng(7);
  for (int i = 0; i < 200000; ++i) {
    uint32_t bits = rng.u32();
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isnan(f))
      continue;
    uint32_t lsb = (bits >> 16) & 1;
    uint32_t want = (bits + 0x7fff + lsb) >> 16;
    EXPECT_EQ(doubleToBF16Bits(f), want) << std::hex << bits;
  }
}

} // namespace

namespace {
// Random damage to a safetensors file: open() either fails with a message
// naming the file or yields tensors that all lie inside the file.
TEST(Weights, RandomCorruptionNeverCrashes) {
  TempDir dir;
  std::string err, path = dir.path() + "/w.safetensors";
  ASSERT_TRUE(writeSafeTensors(path, sampleTensors(), DType::F32, err)) << err;
  std::string full = readFile(path);
  Rng rng(12);
  std::string bad_path = dir.path() + "/bad.safetensors";
  for (int iter = 0; iter < 400; ++iter) {
    std::string bad = full;
    // Mostly the header: that is where the parsing is.
    size_t span = iter % 2 ? 200 : bad.size();
    for (int f = 0; f < 3; ++f)
      bad[rng.u64() % std::min(span, bad.size())] =
          static_cast<char>(rng.u32());
    writeFile(bad_path, bad);
    auto st = SafeTensors::open(bad_path, err);
    if (!st) {
      EXPECT_NE(err.find(bad_path), std::string::npos) << err;
      continue;
    }
    for (const auto &[name, t] : st->tensors()) {
      std::vector<double> v(t.bytes / dtypeSize(t.dtype));
      convertTensor(t, v.data()); // reads every byte: ASan checks bounds
    }
  }
}
} // namespace

namespace {
void writeText(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

/// A checkpoint of two shards (bf16 and f32) and its index.
std::string writeSharded(const TempDir &dir, const std::string &index) {
  std::string err;
  auto t = sampleTensors();
  EXPECT_TRUE(writeSafeTensors(dir.path() + "/model-00001-of-00002.safetensors",
                               {t[0]}, DType::BF16, err))
      << err;
  EXPECT_TRUE(writeSafeTensors(dir.path() + "/model-00002-of-00002.safetensors",
                               {t[1], t[2]}, DType::F32, err))
      << err;
  writeText(dir.path() + "/model.safetensors.index.json", index);
  return dir.path();
}

const char *kIndex = R"({"metadata": {"total_size": 40},
 "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                "model.norm.weight": "model-00002-of-00002.safetensors",
                "empty": "model-00002-of-00002.safetensors"}})";
} // namespace

TEST(Weights, ShardedCheckpoint) {
  TempDir dir;
  std::string err;
  writeSharded(dir, kIndex);
  // The directory, and the index named directly, open the same tensors.
  for (std::string path :
       {dir.path(), dir.path() + "/model.safetensors.index.json"}) {
    auto st = SafeTensors::open(path, err);
    ASSERT_TRUE(st) << err;
    EXPECT_EQ(st->tensors().size(), 3u);
    const TensorInfo *e = st->find("model.embed_tokens.weight");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->dtype, DType::BF16);
    std::vector<float> f(12);
    convertTensor(*e, f.data());
    EXPECT_EQ(f[3], 3.5f);
    EXPECT_EQ(st->find("model.norm.weight")->dtype, DType::F32);
    EXPECT_EQ(st->storedDTypes(), "bf16+f32");
    EXPECT_NE(st->identity().str().find("model.safetensors.index.json"), std::string::npos);
  }
}

TEST(Weights, SingleFileCheckpointDirectory) {
  TempDir dir;
  std::string err;
  ASSERT_TRUE(writeSafeTensors(dir.path() + "/model.safetensors",
                               sampleTensors(), DType::F16, err))
      << err;
  auto st = SafeTensors::open(dir.path(), err);
  ASSERT_TRUE(st) << err;
  EXPECT_EQ(st->tensors().size(), 3u);
  EXPECT_EQ(st->storedDTypes(), "f16");
}

TEST(Weights, ShardedCheckpointErrorsNameTheFile) {
  std::string err;
  {
    TempDir dir;
    writeSharded(dir, kIndex);
    std::remove((dir.path() + "/model-00002-of-00002.safetensors").c_str());
    EXPECT_FALSE(SafeTensors::open(dir.path(), err));
    EXPECT_NE(err.find("model.safetensors.index.json"), std::string::npos);
    EXPECT_NE(err.find("shard 'model-00002-of-00002.safetensors'"),
              std::string::npos)
        << err;
    EXPECT_NE(err.find("No such file"), std::string::npos) << err;
  }
  {
    TempDir dir;
    std::string index = kIndex;
    index.replace(index.find("\"empty\""), 7, "\"absent\"");
    writeSharded(dir, index);
    EXPECT_FALSE(SafeTensors::open(dir.path(), err));
    EXPECT_NE(err.find("tensor 'absent' is listed in shard "
                       "'model-00002-of-00002.safetensors', which does not "
                       "hold it"),
              std::string::npos)
        << err;
  }
  {
    TempDir dir;
    writeSharded(dir, R"({"weight_map": {
      "model.norm.weight": "model-00002-of-00002.safetensors",
      "model.norm.weight": "model-00001-of-00002.safetensors"}})");
    EXPECT_FALSE(SafeTensors::open(dir.path(), err));
    EXPECT_NE(err.find("model.safetensors.index.json: 'weight_map' names "
                       "tensor 'model.norm.weight' twice"),
              std::string::npos)
        << err;
  }
  {
    TempDir dir;
    writeSharded(dir, R"({"weight_map": {"a": "../model.safetensors"}})");
    EXPECT_FALSE(SafeTensors::open(dir.path(), err));
    EXPECT_NE(err.find("not a file of the checkpoint directory"),
              std::string::npos)
        << err;
  }
  {
    TempDir dir;
    writeSharded(dir, R"({"metadata": {}})");
    EXPECT_FALSE(SafeTensors::open(dir.path(), err));
    EXPECT_NE(err.find("no 'weight_map' object"), std::string::npos) << err;
  }
}

//===- TraceTestUtil.h - Traces written and damaged by the tests --*- C++ -*-===//
#ifndef GRETA_UNITTESTS_RUNTIME_TRACETESTUTIL_H
#define GRETA_UNITTESTS_RUNTIME_TRACETESTUTIL_H

#include "greta/rt/Sha256.h"
#include "greta/rt/Trace.h"

#include "TestUtil.h"
#include "common/ExpectSameRecord.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <sys/resource.h>
#include <sys/wait.h>

using namespace greta::rt;

// Every test file includes this once: helpers stay file-local.
namespace {


Manifest sampleManifest() {
  Manifest m;
  m.model = "llama-tiny";
  m.weightsDigest = std::string(64, 'a');
  m.promptName = "p0_short";
  m.tokenCount = 5;
  m.backend = "cpu";
  m.precision = "f32";
  m.toolVersion = "test";
  m.filter = "layers=all";
  return m;
}

Record sampleRecord(int i) {
  Record r;
  r.stage = static_cast<Stage>(i % kNumStages);
  r.layer = i / 3;
  r.position = i;
  r.dtype = DType::F32;
  r.shape = {4};
  for (int b = 0; b < 32; ++b)
    r.sha256[b] = static_cast<uint8_t>(i * 7 + b);
  r.nzCount = i;
  if (i % 2) {
    r.payload = Payload::Full;
    r.nanCount = 1;
    r.infCount = 2;
    r.fingerprint = {-1.5, 2.5, 0.25, 3.0};
    float vals[4] = {1.0f * i, -2.0f, 0.5f, 0.0f};
    r.values.assign(reinterpret_cast<uint8_t *>(vals),
                    reinterpret_cast<uint8_t *>(vals) + 16);
  }
  if (r.stage == Stage::Logits)
    r.top5 = {5, 4, 3, 2, 1};
  return r;
}

using greta::test::expectSameRecord;

/// A record block with its storage, and the records it must read back as.
struct TestBlock {
  std::vector<int64_t> positions;
  std::vector<uint8_t> rows; // entries, rowStride apart
  std::vector<int32_t> ids;
  std::vector<uint8_t> values;
  RecordBlock block;
  std::vector<Record> expected;
  TestBlock() = default;
  TestBlock(const TestBlock &) = delete; // `block` points into the vectors
};

/// Rows at `positions` of a (stage, layer) tensor. Row j of a top-k block
/// has j % (topK + 1) real ids (the rest -1 padding). Entries are BlockRow
/// (stride 88) unless `stride` says otherwise; a hash block's entries carry
/// non-zero statistics that the writer must not copy. With `realDigests`,
/// sha256 and nz_count are those of the values (payload full).
std::unique_ptr<TestBlock>
makeBlock(Stage stage, int64_t layer, DType dtype, Payload payload,
          std::vector<int64_t> shape, std::vector<int64_t> positions, int topK,
          uint64_t seed, size_t stride = sizeof(BlockRow),
          bool realDigests = false) {
  auto t = std::make_unique<TestBlock>();
  Rng rng(seed);
  size_t n = positions.size();
  t->positions = std::move(positions);
  int64_t elements = 1;
  for (int64_t d : shape)
    elements *= d;
  size_t rowBytes = payload == Payload::Full
                        ? static_cast<size_t>(elements) * dtypeSize(dtype)
                        : 0;
  t->rows.assign(n * stride, 0);
  // Finite values (JSON, as the Python reader prints them, has no NaN),
  // every 7th element 0.
  t->values.resize(n * rowBytes);
  size_t es = dtypeSize(dtype);
  for (size_t i = 0; i * es < t->values.size(); ++i) {
    uint8_t *p = t->values.data() + i * es;
    double d = i % 7 ? rng.uniform() : 0.0;
    if (dtype == DType::F32) {
      float f = static_cast<float>(d);
      std::memcpy(p, &f, 4);
    } else if (dtype == DType::F64) {
      std::memcpy(p, &d, 8);
    } else { // f16/bf16 bits with the top exponent bit clear: finite
      uint16_t h = i % 7 ? static_cast<uint16_t>(rng.u32() & 0xbfff) : 0;
      std::memcpy(p, &h, 2);
    }
  }
  for (size_t j = 0; j < n; ++j) {
    Record r;
    r.stage = stage;
    r.layer = layer;
    r.position = t->positions[j];
    r.dtype = dtype;
    r.shape = shape;
    r.payload = payload;
    const uint8_t *v = t->values.data() + j * rowBytes;
    BlockRow e{};
    if (realDigests) {
      auto md = sha256(v, rowBytes);
      std::memcpy(e.sha256, md.data(), 32);
      for (int64_t i = 0; i < elements; ++i) {
        float f;
        std::memcpy(&f, v + 4 * i, 4);
        e.nzCount += f != 0;
      }
    } else {
      for (auto &b : e.sha256)
        b = static_cast<uint8_t>(rng.u32());
      e.nzCount = static_cast<int64_t>(rng.u32() % 1000);
    }
    e.nanCount = 1 + static_cast<int64_t>(j);
    e.infCount = 2 * static_cast<int64_t>(j);
    e.min = rng.uniform();
    e.max = e.min + 1;
    e.mean = rng.uniform();
    e.l2 = 3.5 + static_cast<double>(j);
    std::memcpy(t->rows.data() + j * stride, &e, std::min(stride, sizeof e));
    std::memcpy(r.sha256.data(), e.sha256, 32);
    r.nzCount = e.nzCount;
    if (payload != Payload::Hash) {
      r.nanCount = e.nanCount;
      r.infCount = e.infCount;
      r.fingerprint = {e.min, e.max, e.mean, e.l2};
    }
    size_t real = topK ? j % (topK + 1) : 0;
    for (int i = 0; i < topK; ++i) {
      int32_t id = i < static_cast<int>(real)
                       ? static_cast<int32_t>(rng.u32() % 32000)
                       : -1;
      t->ids.push_back(id);
      if (id >= 0)
        r.top5.push_back(id);
    }
    if (rowBytes)
      r.values = std::vector<uint8_t>(v, v + rowBytes);
    t->expected.push_back(std::move(r));
  }
  RecordBlock &b = t->block;
  b.stage = stage;
  b.layer = layer;
  b.dtype = dtype;
  b.payload = payload;
  b.rowShape = shape;
  b.n = static_cast<int64_t>(n);
  b.positions = t->positions.data();
  b.rows = t->rows.data();
  b.rowStride = stride;
  b.topIds = topK ? t->ids.data() : nullptr;
  b.topK = topK;
  b.values = rowBytes ? t->values.data() : nullptr;
  return t;
}

std::vector<int64_t> iota(int64_t first, size_t n, int64_t step = 1) {
  std::vector<int64_t> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = first + static_cast<int64_t>(i) * step;
  return v;
}

/// Frames of a records.bin: (offset, magic, body length).
struct Frame {
  size_t offset;
  uint32_t magic, length;
};
std::vector<Frame> framesOf(const std::string &file) {
  std::vector<Frame> out;
  size_t off = kTraceFileHeaderSize;
  while (off + 12 <= file.size()) {
    Frame f{off, 0, 0};
    std::memcpy(&f.magic, file.data() + off, 4);
    std::memcpy(&f.length, file.data() + off + 4, 4);
    if (file.size() - off - 12 < f.length)
      break;
    out.push_back(f);
    off += 12 + f.length;
  }
  return out;
}

/// Rewrites the CRC of the frame at `offset` after its body was edited.
void fixCrc(std::string &file, size_t offset) {
  uint32_t len;
  std::memcpy(&len, file.data() + offset + 4, 4);
  uint32_t crc =
      crc32(0, reinterpret_cast<const Bytef *>(file.data() + offset + 8), len);
  std::memcpy(&file[offset + 8 + len], &crc, 4);
}

/// Replaces a file the way GRETA's writer does (a new inode, never an
/// in-place truncation): records read earlier keep viewing the old bytes.
std::string replaceFile(const std::string &path, const std::string &data) {
  writeFile(path + ".new", data);
  EXPECT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0) << path;
  return path;
}

/// Rewrites the trace in `dir` as a GRETA of format `version` (1 or 2) wrote
/// it: a 16-byte header (no run id) of that version, the manifest's version,
/// no run id and no records digest.
void asOlderVersion(const std::string &dir, uint32_t version) {
  std::string records = readFile(dir + "/records.bin");
  std::string header = records.substr(0, kTraceFileHeaderSizeV2);
  std::memcpy(&header[8], &version, 4);
  std::memcpy(&header[12], &kTraceFileHeaderSizeV2, 4);
  replaceFile(dir + "/records.bin",
              header + records.substr(kTraceFileHeaderSize));
  nlohmann::json m = nlohmann::json::parse(readFile(dir + "/manifest.json"));
  m["format_version"] = version;
  m.erase("run_id");
  m.erase("records_digest");
  writeFile(dir + "/manifest.json", m.dump(2));
}

std::string writeTrace(const std::string &dir, int n, bool finish = true) {
  std::string err;
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  EXPECT_TRUE(w) << err;
  for (int i = 0; i < n; ++i)
    EXPECT_TRUE(w->append(sampleRecord(i), err)) << err;
  if (finish)
    EXPECT_TRUE(w->finish(err)) << err;
  return dir;
}

// In a child process under RLIMIT_FSIZE = `limit` bytes (it stands in for
// a full disk: write(2) fails with EFBIG), appends with `appendOne` and
// flushes until that fails; the child exits 0 when the error names the
// trace directory.
void writeUntilFileSizeLimit(
    const std::string &dir, rlim_t limit,
    const std::function<bool(TraceWriter &, int, std::string &)> &appendOne) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit lim = {limit, limit};
    setrlimit(RLIMIT_FSIZE, &lim);
    std::string err;
    auto w = TraceWriter::create(dir, sampleManifest(), false, err);
    if (!w)
      _exit(3);
    for (int i = 0; i < 1000; ++i) {
      if (!appendOne(*w, i, err) || !w->flush(err)) {
        bool named = err.find("File too large") != std::string::npos &&
                     err.find(dir) != std::string::npos;
        _exit(named ? 0 : 4);
      }
    }
    _exit(5);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  ASSERT_EQ(WEXITSTATUS(status), 0);
}

/// Every kind of block: payloads, contiguous or not, rank 1 and 2, top-k
/// with padding, every dtype, a stride of 40 for hash; between record
/// frames.
std::vector<std::unique_ptr<TestBlock>> sampleBlocks() {
  std::vector<std::unique_ptr<TestBlock>> v;
  v.push_back(makeBlock(Stage::AttnOut, 3, DType::F32, Payload::Hash, {16},
                        iota(0, 37), 0, 1));
  v.push_back(makeBlock(Stage::QPreRope, 2, DType::F16, Payload::Stats, {4, 8},
                        {826, 5, 900, 901}, 0, 2));
  v.push_back(makeBlock(Stage::Logits, 11, DType::F32, Payload::Full, {7},
                        iota(10, 13), 5, 3));
  v.push_back(makeBlock(Stage::MlpOut, 0, DType::BF16, Payload::Full, {2, 3},
                        iota(100, 6, 7), 0, 4));
  v.push_back(
      makeBlock(Stage::Logits, 1, DType::F64, Payload::Stats, {3}, {7}, 5, 5));
  v.push_back(makeBlock(Stage::KPostRope, 9, DType::F32, Payload::Hash, {8},
                        {4, 2, 9}, 3, 6, /*stride=*/40));
  return v;
}

/// Writes records 0..2, the sample blocks with a record frame after each,
/// and returns the records expected back, in order.
std::vector<Record>
writeMixed(TraceWriter &w, const std::vector<std::unique_ptr<TestBlock>> &bs) {
  std::vector<Record> want;
  std::string err;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(w.append(sampleRecord(i), err)) << err;
    want.push_back(sampleRecord(i));
  }
  int i = 3;
  for (const auto &b : bs) {
    EXPECT_TRUE(w.appendBlock(b->block, err)) << err;
    for (const Record &r : b->expected)
      want.push_back(r);
    EXPECT_TRUE(w.append(sampleRecord(i), err)) << err;
    want.push_back(sampleRecord(i++));
  }
  return want;
}

} // namespace

#endif // GRETA_UNITTESTS_RUNTIME_TRACETESTUTIL_H

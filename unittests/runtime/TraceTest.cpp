//===- TraceTest.cpp - Trace writer/reader, crash safety, lock --*- C++ -*-===//
#include "greta/rt/Trace.h"

#include "TestUtil.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <sys/resource.h>
#include <sys/wait.h>

using namespace greta::rt;

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

void expectSame(const Record &a, const Record &b) {
  EXPECT_EQ(a.stage, b.stage);
  EXPECT_EQ(a.layer, b.layer);
  EXPECT_EQ(a.position, b.position);
  EXPECT_EQ(a.dtype, b.dtype);
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.nzCount, b.nzCount);
  EXPECT_EQ(a.nanCount, b.nanCount);
  EXPECT_EQ(a.infCount, b.infCount);
  EXPECT_EQ(a.fingerprint.min, b.fingerprint.min);
  EXPECT_EQ(a.fingerprint.max, b.fingerprint.max);
  EXPECT_EQ(a.fingerprint.mean, b.fingerprint.mean);
  EXPECT_EQ(a.fingerprint.l2, b.fingerprint.l2);
  EXPECT_EQ(a.top5, b.top5);
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(a.values, b.values);
}

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

std::array<uint8_t, 32> sha256Of(const uint8_t *p, size_t n) {
  std::array<uint8_t, 32> md{};
  unsigned len = 0;
  EVP_Digest(p, n, md.data(), &len, EVP_sha256(), nullptr);
  return md;
}

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
      auto md = sha256Of(v, rowBytes);
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

TEST(Trace, RoundTrip) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 20);
  std::string err;
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_TRUE(tc->complete);
  EXPECT_TRUE(tc->stopReason.empty()) << tc->stopReason;
  ASSERT_EQ(tc->records.size(), 20u);
  for (int i = 0; i < 20; ++i)
    expectSame(tc->records[i], sampleRecord(i));
  EXPECT_EQ(tc->manifest.model, "llama-tiny");
  EXPECT_EQ(tc->manifest.tokenCount, 5);
  EXPECT_EQ(tc->manifest.formatVersion, kTraceFormatVersion);
  EXPECT_EQ(tc->validBytes, readFile(dir + "/records.bin").size());
  std::vector<double> v = tc->records[1].valuesAsDouble();
  EXPECT_EQ(v, (std::vector<double>{1.0, -2.0, 0.5, 0.0}));
  EXPECT_TRUE(tc->records[0].valuesAsDouble().empty());
  EXPECT_EQ(tc->records[0].sha256Hex().substr(0, 4), "0001");
}

TEST(Trace, UnfinishedTraceIsReadableAfterFlush) {
  TempDir tmp;
  std::string err;
  std::string dir = tmp.path() + "/t";
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(w->append(sampleRecord(i), err));
  ASSERT_TRUE(w->flush(err)) << err;
  // Read while the writer still holds the directory.
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_FALSE(tc->complete);
  EXPECT_EQ(tc->records.size(), 3u);
}

TEST(Trace, SigkillLeavesFlushedRecords) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string err;
    auto w = TraceWriter::create(dir, sampleManifest(), false, err);
    for (int i = 0; i < 7; ++i)
      w->append(sampleRecord(i), err);
    w->flush(err);
    w->append(sampleRecord(7), err); // buffered, lost with the process
    raise(SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  std::string err;
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_FALSE(tc->complete);
  EXPECT_EQ(tc->records.size(), 7u);
  // The lock died with the process: a new writer may take the directory.
  std::string err2;
  EXPECT_TRUE(TraceWriter::create(dir, sampleManifest(), true, err2)) << err2;
}

// A run that did not finish, cut at any byte: the records of the whole
// frames before the cut.
TEST(Trace, TruncationAtEveryByteKeepsAPrefix) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 6, /*finish=*/false);
  std::string full = readFile(dir + "/records.bin");
  std::string err;
  auto whole = readTrace(dir, err);
  ASSERT_TRUE(whole);
  // Offsets where each record ends.
  std::vector<size_t> ends;
  size_t off = kTraceFileHeaderSize;
  while (off < full.size()) {
    uint32_t len;
    std::memcpy(&len, full.data() + off + 4, 4);
    off += 12 + len;
    ends.push_back(off);
  }
  ASSERT_EQ(ends.size(), 6u);
  for (size_t n = 0; n < full.size(); ++n) {
    replaceFile(dir + "/records.bin", full.substr(0, n));
    auto tc = readTrace(dir, err);
    size_t complete =
        std::upper_bound(ends.begin(), ends.end(), n) - ends.begin();
    if (complete == 0) {
      EXPECT_FALSE(tc) << n;
      EXPECT_FALSE(err.empty());
      continue;
    }
    ASSERT_TRUE(tc) << n << ": " << err;
    EXPECT_EQ(tc->records.size(), complete) << n;
    EXPECT_EQ(tc->validBytes, ends[complete - 1]);
    if (n != ends[complete - 1]) {
      EXPECT_NE(tc->stopReason.find("record " + std::to_string(complete) +
                                    " at byte " +
                                    std::to_string(ends[complete - 1])),
                std::string::npos)
          << tc->stopReason;
    } else {
      EXPECT_TRUE(tc->stopReason.empty()) << tc->stopReason;
    }
    for (size_t i = 0; i < tc->records.size(); ++i)
      expectSame(tc->records[i], whole->records[i]);
  }
}

// The same cut in a run that finished is corruption: an error naming the
// file, the record and the byte, never a shorter trace.
TEST(Trace, CutOfAFinishedRunIsCorruption) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 6);
  std::string full = readFile(dir + "/records.bin");
  std::vector<Frame> frames = framesOf(full);
  ASSERT_EQ(frames.size(), 6u);
  replaceFile(dir + "/records.bin", full.substr(0, frames[4].offset + 7));
  std::string err;
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_EQ(err, "'" + dir + "/records.bin' is corrupt: record 4 at byte " +
                     std::to_string(frames[4].offset) +
                     ": truncated frame (7 bytes left), in a run that "
                     "finished (its manifest says 6 records)");
}

// Damage in a frame: in a run that finished, or with a valid frame after
// it, corruption (an error); only in the last frame of a run that did not
// finish, truncation (the records before it, and where it stopped).
TEST(Trace, CorruptionIsDetected) {
  TempDir tmp;
  std::string done = writeTrace(tmp.path() + "/done", 4);
  std::string dir = writeTrace(tmp.path() + "/t", 4, /*finish=*/false);
  std::string full = readFile(dir + "/records.bin");
  // The same frames; the headers differ in their run id.
  std::string doneHeader =
      readFile(done + "/records.bin").substr(0, kTraceFileHeaderSize);
  ASSERT_EQ(full.substr(kTraceFileHeaderSize),
            readFile(done + "/records.bin").substr(kTraceFileHeaderSize));
  std::vector<Frame> frames = framesOf(full);
  ASSERT_EQ(frames.size(), 4u);
  size_t second = frames[1].offset, third = frames[2].offset;
  std::string path = dir + "/records.bin", err;
  // Reads `bad` as the records of `dir`, then with only its first `frames`
  // frames: the damaged one is then the last.
  auto expectStop = [&](const std::string &bad, size_t keep, size_t records,
                        const std::string &why) {
    SCOPED_TRACE(why);
    replaceFile(path, bad);
    EXPECT_FALSE(readTrace(dir, err));
    EXPECT_EQ(err, "'" + path + "' is corrupt: " + why +
                       ", and a valid frame follows at byte " +
                       std::to_string(third) +
                       " (a run cut short ends at its first bad frame)");
    replaceFile(done + "/records.bin",
                doneHeader + bad.substr(kTraceFileHeaderSize));
    EXPECT_FALSE(readTrace(done, err));
    EXPECT_EQ(err, "'" + done + "/records.bin' is corrupt: " + why +
                       ", in a run that finished (its manifest says 4 "
                       "records)");
    replaceFile(path, bad.substr(0, frames[keep].offset));
    auto tc = readTrace(dir, err);
    ASSERT_TRUE(tc) << err;
    EXPECT_EQ(tc->records.size(), records);
    EXPECT_EQ(tc->stopReason, why);
  };
  // A flipped byte inside record 1's body: checksum mismatch, record 0 kept.
  std::string bad = full;
  bad[second + 8 + 20] ^= 0x40;
  std::string at1 = "record 1 at byte " + std::to_string(second) + ": ";
  expectStop(bad, 2, 1, at1 + "checksum mismatch");
  // A bad frame magic.
  bad = full;
  bad[second] = 'X';
  expectStop(bad, 2, 1, at1 + "bad record magic");
  // A valid checksum over a malformed body (unknown stage) is still refused.
  bad = full;
  bad[second + 8] = 99;
  fixCrc(bad, second);
  expectStop(bad, 2, 1, at1 + "malformed body: unknown stage 99");
  // A corrupt length: the frame's end is lost, the next frame is found by
  // its magic and checksum.
  bad = full;
  bad[second + 4] ^= 0x01;
  replaceFile(path, bad);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(
      err.find("and a valid frame follows at byte " + std::to_string(third)),
      std::string::npos)
      << err;
  // A corrupt first record of a run that did not finish, frames after it:
  // corruption; alone: nothing readable, an error.
  bad = full;
  bad[kTraceFileHeaderSize + 8 + 3] ^= 1;
  replaceFile(path, bad);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("is corrupt: record 0 at byte " +
                     std::to_string(kTraceFileHeaderSize) +
                     ": checksum mismatch, and a valid frame follows"),
            std::string::npos)
      << err;
  replaceFile(path, bad.substr(0, second));
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("no readable record"), std::string::npos) << err;
  EXPECT_NE(err.find("checksum"), std::string::npos) << err;
  // Zeros after the last good frame (a file extended but never written)
  // hold no valid frame: truncation.
  replaceFile(path, full + std::string(4096, '\0'));
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_EQ(tc->records.size(), 4u);
  EXPECT_NE(tc->stopReason.find("record 4 at byte " +
                                std::to_string(full.size()) +
                                ": bad record magic"),
            std::string::npos)
      << tc->stopReason;
}

// A finished run's manifest names the record count and the records digest;
// records.bin must hold exactly those (issue 18 item 7).
TEST(Trace, FinishedRunCountAndDigestAreChecked) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 6), err;
  std::string path = dir + "/records.bin";
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_TRUE(tc->integrity.countVerified);
  EXPECT_TRUE(tc->integrity.digestVerified);
  nlohmann::json m = nlohmann::json::parse(readFile(dir + "/manifest.json"));
  EXPECT_EQ(m["records"], 6);
  EXPECT_EQ(m["records_digest"], tc->integrity.recordsDigest);
  EXPECT_EQ(tc->integrity.recordsDigest.size(), 64u);

  std::string full = readFile(path);
  std::vector<Frame> frames = framesOf(full);
  ASSERT_EQ(frames.size(), 6u);
  // Cut at a frame boundary: every frame left is valid, the count is not.
  replaceFile(path, full.substr(0, frames[4].offset));
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_EQ(err, "'" + path +
                     "' holds 4 records but its manifest says the run "
                     "finished with 6: the file was cut or altered");
  // Two frames exchanged: the count matches, the digest does not.
  std::string swapped =
      full.substr(0, frames[1].offset) +
      full.substr(frames[2].offset, frames[3].offset - frames[2].offset) +
      full.substr(frames[1].offset, frames[2].offset - frames[1].offset) +
      full.substr(frames[3].offset);
  ASSERT_EQ(swapped.size(), full.size());
  replaceFile(path, swapped);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("' does not match the records_digest of its manifest (" +
                     m["records_digest"].get<std::string>() + "; read "),
            std::string::npos)
      << err;
  // A manifest without a digest (an older or foreign writer): the count is
  // still checked, the digest is unknown, never taken as verified.
  replaceFile(path, full);
  nlohmann::json old = m;
  old.erase("records_digest");
  writeFile(dir + "/manifest.json", old.dump(2));
  tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_TRUE(tc->integrity.countVerified);
  EXPECT_FALSE(tc->integrity.digestVerified);
  // A run that did not finish names neither: nothing is verified.
  old["complete"] = false;
  old["records"] = 0;
  writeFile(dir + "/manifest.json", old.dump(2));
  tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_FALSE(tc->integrity.countVerified);
  EXPECT_FALSE(tc->integrity.digestVerified);
  // Malformed values are errors naming the field.
  nlohmann::json bad = m;
  bad["records_digest"] = "xyz";
  writeFile(dir + "/manifest.json", bad.dump(2));
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("'records_digest' must be 64 lowercase hex digits, got "
                     "\"xyz\""),
            std::string::npos)
      << err;
  bad = m;
  bad["records"] = -1;
  writeFile(dir + "/manifest.json", bad.dump(2));
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("'records' must be a non-negative integer, got -1"),
            std::string::npos)
      << err;
}

// A run id (format 3) ties records.bin to its manifest (issue 18 item 8).
TEST(Trace, RunIdTiesRecordsToManifest) {
  TempDir tmp;
  std::string a = writeTrace(tmp.path() + "/a", 3);
  std::string b = writeTrace(tmp.path() + "/b", 3), err;
  auto ta = readTrace(a, err), tb = readTrace(b, err);
  ASSERT_TRUE(ta && tb) << err;
  EXPECT_TRUE(ta->integrity.runIdTied);
  EXPECT_EQ(ta->manifest.runId.size(), 32u);
  EXPECT_NE(ta->manifest.runId, tb->manifest.runId); // 128 random bits
  std::string records = readFile(a + "/records.bin");
  uint32_t headerSize;
  std::memcpy(&headerSize, records.data() + 12, 4);
  EXPECT_EQ(headerSize, kTraceFileHeaderSize);
  std::string hex;
  for (size_t i = 0; i < kRunIdBytes; ++i) {
    char h[3];
    std::snprintf(h, sizeof h, "%02x",
                  static_cast<uint8_t>(records[kTraceRunIdOffset + i]));
    hex += h;
  }
  EXPECT_EQ(hex, ta->manifest.runId);
  // b's records under a's manifest: the same rows, another run.
  replaceFile(a + "/records.bin", readFile(b + "/records.bin"));
  EXPECT_FALSE(readTrace(a, err));
  EXPECT_EQ(err, "'" + a + "/manifest.json' names run " + ta->manifest.runId +
                     " but '" + a + "/records.bin' holds run " +
                     tb->manifest.runId +
                     ": the two files come from different runs");
  replaceFile(a + "/records.bin", records);
  // A format-3 manifest without run_id (a foreign writer): unknown.
  nlohmann::json m = nlohmann::json::parse(readFile(a + "/manifest.json"));
  nlohmann::json edited = m;
  edited.erase("run_id");
  writeFile(a + "/manifest.json", edited.dump(2));
  auto tc = readTrace(a, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_FALSE(tc->integrity.runIdTied);
  edited = m;
  edited["run_id"] = "ABC";
  writeFile(a + "/manifest.json", edited.dump(2));
  EXPECT_FALSE(readTrace(a, err));
  EXPECT_NE(err.find("'run_id' must be 32 lowercase hex digits, got \"ABC\""),
            std::string::npos)
      << err;
  // A format-3 header shorter than the run id.
  writeFile(a + "/manifest.json", m.dump(2));
  std::string shortHeader = records;
  uint32_t sixteen = kTraceFileHeaderSizeV2;
  std::memcpy(&shortHeader[12], &sixteen, 4);
  replaceFile(a + "/records.bin", shortHeader);
  EXPECT_FALSE(readTrace(a, err));
  EXPECT_NE(err.find("bad header size 16"), std::string::npos) << err;
}

TEST(Trace, NewerVersionAndBadDirectoriesAreErrors) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 2);
  std::string err;
  std::string records = readFile(dir + "/records.bin");
  std::string bumped = records;
  bumped[8] = 4;
  replaceFile(dir + "/records.bin", bumped);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("version 4 is newer than this reader supports "
                     "(version 3)"),
            std::string::npos)
      << err;
  replaceFile(dir + "/records.bin", records);

  std::string manifest = readFile(dir + "/manifest.json");
  size_t at = manifest.find("\"format_version\": 3");
  ASSERT_NE(at, std::string::npos) << manifest;
  std::string newer = manifest;
  newer.replace(at, 19, "\"format_version\": 7");
  writeFile(dir + "/manifest.json", newer);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("version 7 is newer"), std::string::npos) << err;
  newer.replace(at, 19, "\"format_version\": 4");
  writeFile(dir + "/manifest.json", newer);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("trace format version 4 is newer than this reader "
                     "supports (version 3)"),
            std::string::npos)
      << err;
  writeFile(dir + "/manifest.json", "{oops");
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
  writeFile(dir + "/manifest.json", manifest);

  replaceFile(dir + "/records.bin", "");
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("empty trace"), std::string::npos) << err;
  replaceFile(dir + "/records.bin", records.substr(0, kTraceFileHeaderSize));
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("holds 0 records but its manifest says the run finished "
                     "with 2"),
            std::string::npos)
      << err;

  EXPECT_FALSE(readTrace(tmp.path() + "/missing", err));
  EXPECT_NE(err.find("missing"), std::string::npos) << err;
  EXPECT_FALSE(readTrace(tmp.path(), err));
  EXPECT_NE(err.find("no manifest.json"), std::string::npos) << err;
}

TEST(Trace, LockRefusesASecondWriter) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  std::string err;
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  auto w2 = TraceWriter::create(dir, sampleManifest(), true, err);
  EXPECT_FALSE(w2);
  EXPECT_NE(err.find("'" + dir + "' is locked by another writer (pid " +
                     std::to_string(getpid()) + ")"),
            std::string::npos)
      << err;
  ASSERT_TRUE(w->finish(err)) << err;
  w.reset();
  // Unlocked now, but it holds a trace: only with overwrite.
  EXPECT_FALSE(TraceWriter::create(dir, sampleManifest(), false, err));
  EXPECT_NE(err.find("already holds a trace"), std::string::npos) << err;
  EXPECT_TRUE(TraceWriter::create(dir, sampleManifest(), true, err)) << err;
}

TEST(Trace, UnwritableDirectory) {
  TempDir tmp;
  std::string err;
  // Root ignores permission bits; /proc refuses even root.
  std::string dir = tmp.path() + "/t";
  if (geteuid() == 0)
    dir = "/proc/greta-unwritable/t";
  else
    chmod(tmp.path().c_str(), 0500);
  EXPECT_FALSE(TraceWriter::create(dir, sampleManifest(), false, err));
  EXPECT_NE(err.find("cannot create trace directory"), std::string::npos)
      << err;
  EXPECT_TRUE(err.find("Permission denied") != std::string::npos ||
              err.find("No such file") != std::string::npos)
      << err;
}

TEST(Trace, DirectoryIsAFile) {
  TempDir tmp;
  std::string err;
  writeFile(tmp.path() + "/f", "x");
  EXPECT_FALSE(
      TraceWriter::create(tmp.path() + "/f/t", sampleManifest(), false, err));
  EXPECT_NE(err.find(tmp.path() + "/f"), std::string::npos) << err;
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

TEST(Trace, FileSizeLimitIsAnErrorAndKeepsThePrefix) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  ASSERT_NO_FATAL_FAILURE(writeUntilFileSizeLimit(
      dir, 4096, [](TraceWriter &w, int i, std::string &err) {
        return w.append(sampleRecord(i), err);
      }));
  std::string err;
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_GT(tc->records.size(), 10u);
  EXPECT_LE(tc->validBytes, 4096u);
  for (size_t i = 0; i < tc->records.size(); ++i)
    expectSame(tc->records[i], sampleRecord(static_cast<int>(i)));
}

// The reader's CRC (folded with PCLMULQDQ/VPCLMULQDQ where the CPU has
// them) is zlib's: every length around the kernels' block sizes (16, 64,
// 256 bytes) and every misalignment, plus a large buffer.
TEST(Trace, FrameChecksumIsZlibCrc32) {
  Rng rng(3);
  std::vector<uint8_t> buf((1 << 20) + 64);
  for (auto &b : buf)
    b = static_cast<uint8_t>(rng.u32());
  for (size_t offset = 0; offset < 16; ++offset)
    for (size_t n = 0; n <= 1100; ++n)
      ASSERT_EQ(frameChecksum(buf.data() + offset, n),
                crc32(0, buf.data() + offset, static_cast<uInt>(n)))
          << "offset " << offset << " length " << n;
  for (size_t n : {size_t(1) << 20, (size_t(1) << 20) + 63, size_t(4097) * 16})
    EXPECT_EQ(frameChecksum(buf.data() + 1, n),
              crc32(0, buf.data() + 1, static_cast<uInt>(n)))
        << n;
  // A single flipped bit anywhere changes it.
  uint32_t clean = frameChecksum(buf.data(), 5000);
  for (size_t bit : {0, 7, 8 * 255 + 3, 8 * 256, 8 * 4999 + 7}) {
    buf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    EXPECT_NE(frameChecksum(buf.data(), 5000), clean) << bit;
    buf[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
  }
}

TEST(Trace, ValueBytesOwnedAndViewed) {
  std::vector<uint8_t> bytes = {1, 2, 3, 4};
  ValueBytes owned(bytes);
  EXPECT_FALSE(owned.isView());
  EXPECT_EQ(owned.size(), 4u);
  EXPECT_EQ(owned.toVector(), bytes);
  auto keep = std::make_shared<std::vector<uint8_t>>(bytes);
  ValueBytes view = ValueBytes::view(keep->data(), keep->size(), keep);
  EXPECT_TRUE(view.isView());
  EXPECT_EQ(view.data(), keep->data()); // Not copied...
  EXPECT_EQ(view, owned);               // ...but equal byte for byte.
  ValueBytes copy = view;
  EXPECT_EQ(copy.data(), keep->data());
  keep.reset(); // The views hold the bytes alive.
  EXPECT_EQ(copy[3], 4);
  EXPECT_NE(copy, ValueBytes(std::vector<uint8_t>{1, 2, 3}));
  EXPECT_NE(copy, ValueBytes(std::vector<uint8_t>{1, 2, 3, 5}));
  // assign() copies into owned storage; clear() drops the view.
  uint8_t more[2] = {9, 8};
  copy.assign(more, more + 2);
  EXPECT_FALSE(copy.isView());
  EXPECT_EQ(copy.toVector(), (std::vector<uint8_t>{9, 8}));
  view.clear();
  EXPECT_FALSE(view.isView());
  EXPECT_TRUE(view.empty());
  EXPECT_EQ(view, ValueBytes());
}

TEST(Trace, DecodeCopiesUnlessGivenAnOwner) {
  Record r = sampleRecord(3); // payload full
  std::vector<uint8_t> body;
  encodeRecordBody(r, body);
  Record copied, viewed;
  std::string err;
  ASSERT_TRUE(decodeRecordBody(body.data(), body.size(), copied, err)) << err;
  EXPECT_FALSE(copied.values.isView());
  auto keep = std::make_shared<std::vector<uint8_t>>(body);
  ASSERT_TRUE(decodeRecordBody(keep->data(), keep->size(), viewed, err, keep))
      << err;
  ASSERT_TRUE(viewed.values.isView());
  EXPECT_EQ(viewed.values.data(), keep->data() + keep->size() - 16);
  expectSame(copied, r);
  expectSame(viewed, r);
}

// readTrace maps records.bin: values are views that outlive the
// TraceContents, and the writer overwriting the trace (unlink + new file)
// does not change what an earlier reader sees.
TEST(Trace, ReadValuesAreViewsThatSurviveAnOverwrite) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 6);
  std::string err;
  std::vector<Record> kept;
  {
    auto tc = readTrace(dir, err);
    ASSERT_TRUE(tc) << err;
    for (const Record &r : tc->records)
      EXPECT_EQ(r.values.isView(), r.payload == Payload::Full) << r.position;
    kept = tc->records;
  }
  auto w = TraceWriter::create(dir, sampleManifest(), /*overwrite=*/true, err);
  ASSERT_TRUE(w) << err;
  for (int i = 10; i < 16; ++i)
    ASSERT_TRUE(w->append(sampleRecord(i), err)) << err;
  ASSERT_TRUE(w->finish(err)) << err;
  ASSERT_EQ(kept.size(), 6u);
  for (int i = 0; i < 6; ++i)
    expectSame(kept[i], sampleRecord(i));
  auto now = readTrace(dir, err);
  ASSERT_TRUE(now) << err;
  ASSERT_EQ(now->records.size(), 6u);
  expectSame(now->records[1], sampleRecord(11));
}

//===----------------------------------------------------------------------===//
// Block frames (format version 2)
//===----------------------------------------------------------------------===//

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

TEST(TraceBlock, RoundTripMixedWithRecordFrames) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t", err;
  auto bs = sampleBlocks();
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  std::vector<Record> want = writeMixed(*w, bs);
  EXPECT_EQ(w->recordsWritten(), want.size()); // rows, not frames
  ASSERT_TRUE(w->finish(err)) << err;

  std::string file = readFile(dir + "/records.bin");
  uint32_t version;
  std::memcpy(&version, file.data() + 8, 4);
  EXPECT_EQ(version, kTraceFormatVersion);
  std::vector<Frame> frames = framesOf(file);
  ASSERT_EQ(frames.size(), 3 + 2 * bs.size());
  for (size_t f = 0; f < frames.size(); ++f)
    EXPECT_EQ(frames[f].magic,
              f >= 3 && (f - 3) % 2 == 0 ? kBlockMagic : kRecordMagic)
        << f;
  // The hash block of 37 contiguous rank-1 rows: 24 + 8 header bytes, one
  // position, 40 bytes a row.
  EXPECT_EQ(frames[3].length, 24u + 8 + 8 + 37 * 40);
  // Contiguity is detected: flags bit 0.
  EXPECT_EQ(file[frames[3].offset + 8 + 3], 1);
  EXPECT_EQ(file[frames[5].offset + 8 + 3], 0); // 826, 5, 900, 901

  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_TRUE(tc->stopReason.empty()) << tc->stopReason;
  EXPECT_EQ(tc->manifest.formatVersion, kTraceFormatVersion);
  EXPECT_NE(readFile(dir + "/manifest.json").find("\"format_version\": 3"),
            std::string::npos);
  ASSERT_EQ(tc->records.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    expectSame(tc->records[i], want[i]);
    EXPECT_EQ(tc->records[i].values.isView(), !want[i].values.empty());
  }
  EXPECT_EQ(tc->validBytes, file.size());
}

// A body over the limit is split into frames of whole rows; the reader
// gives the same records. Also frames larger than the 1 MiB buffer (one
// writev of the head and the caller's values).
TEST(TraceBlock, SplitAcrossFrames) {
  TempDir tmp;
  std::string err;
  auto b = makeBlock(Stage::ResidualPostMlp, 4, DType::F32, Payload::Full, {5},
                     iota(0, 50), 5, 7);
  // Positions contiguous in the first frames, then not.
  b->positions[40] = b->expected[40].position = 1000;
  auto big = makeBlock(Stage::Logits, 11, DType::F16, Payload::Full, {300000},
                       iota(3, 9), 5, 8); // 600 KB a row
  auto one = makeBlock(Stage::AttnIn, 1, DType::F32, Payload::Stats, {4},
                       iota(0, 3), 0, 9);
  std::string dir = tmp.path() + "/t";
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  size_t limit = 600; // 4 rows a frame
  w->setMaxBlockBodyBytes(limit);
  ASSERT_TRUE(w->appendBlock(b->block, err)) << err;
  w->setMaxBlockBodyBytes(1); // still one row a frame
  ASSERT_TRUE(w->appendBlock(one->block, err)) << err;
  w->setMaxBlockBodyBytes(kMaxBlockBodyBytes);
  ASSERT_TRUE(w->append(sampleRecord(1), err)) << err; // buffered first
  ASSERT_TRUE(w->appendBlock(big->block, err)) << err;
  EXPECT_EQ(w->recordsWritten(), 50u + 3 + 1 + 9);
  ASSERT_TRUE(w->finish(err)) << err;

  std::string file = readFile(dir + "/records.bin");
  std::vector<Frame> frames = framesOf(file);
  size_t splitFrames = 0;
  for (const Frame &f : frames)
    if (f.magic == kBlockMagic && f.length <= limit)
      ++splitFrames;
  EXPECT_GT(splitFrames, 5u);
  // 9 rows of 600 KB: one frame of 5.4 MB under the 64 MiB limit.
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().magic, kBlockMagic);
  EXPECT_GT(frames.back().length, 9u * 600000);
  EXPECT_EQ(frames.back().offset + 12 + frames.back().length, file.size());

  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_TRUE(tc->stopReason.empty()) << tc->stopReason;
  std::vector<Record> want = b->expected;
  want.insert(want.end(), one->expected.begin(), one->expected.end());
  want.push_back(sampleRecord(1));
  want.insert(want.end(), big->expected.begin(), big->expected.end());
  ASSERT_EQ(tc->records.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    expectSame(tc->records[i], want[i]);
  }
}

// A cut anywhere: the records of every whole frame before it, nothing of a
// cut block (all or nothing), and the stop names the first record the cut
// frame would have produced.
TEST(TraceBlock, TruncationInsideABlockKeepsTheRecordsBefore) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t", err;
  auto b = makeBlock(Stage::Logits, 2, DType::F32, Payload::Full, {3},
                     {4, 6, 7}, 5, 10);
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  ASSERT_TRUE(w->append(sampleRecord(0), err));
  ASSERT_TRUE(w->append(sampleRecord(1), err));
  ASSERT_TRUE(w->appendBlock(b->block, err)) << err;
  ASSERT_TRUE(w->append(sampleRecord(2), err));
  ASSERT_TRUE(w->flush(err)) << err; // a run that did not finish
  std::string full = readFile(dir + "/records.bin");
  std::vector<Frame> frames = framesOf(full);
  ASSERT_EQ(frames.size(), 4u);
  // Records complete at each frame end.
  std::vector<std::pair<size_t, size_t>> ends = {
      {frames[0].offset + 12 + frames[0].length, 1},
      {frames[1].offset + 12 + frames[1].length, 2},
      {frames[2].offset + 12 + frames[2].length, 5},
      {full.size(), 6}};
  for (size_t n = kTraceFileHeaderSize; n < full.size(); ++n) {
    replaceFile(dir + "/records.bin", full.substr(0, n));
    auto tc = readTrace(dir, err);
    size_t end = kTraceFileHeaderSize, have = 0;
    for (auto [e, c] : ends)
      if (e <= n)
        end = e, have = c;
    if (have == 0) {
      EXPECT_FALSE(tc) << n;
      continue;
    }
    ASSERT_TRUE(tc) << n << ": " << err;
    ASSERT_EQ(tc->records.size(), have) << n;
    EXPECT_EQ(tc->validBytes, end) << n;
    if (n == end)
      EXPECT_TRUE(tc->stopReason.empty()) << n << ": " << tc->stopReason;
    else
      EXPECT_EQ(tc->stopReason.rfind("record " + std::to_string(have) +
                                         " at byte " + std::to_string(end) +
                                         ": truncated",
                                     0),
                0u)
          << n << ": " << tc->stopReason;
  }
}

TEST(TraceBlock, CorruptOrMalformedBlockStopsBeforeIt) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t", err;
  auto b = makeBlock(Stage::AttnOut, 2, DType::F32, Payload::Stats, {4},
                     iota(0, 4), 0, 11);
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  ASSERT_TRUE(w->append(sampleRecord(0), err));
  ASSERT_TRUE(w->appendBlock(b->block, err)) << err;
  ASSERT_TRUE(w->append(sampleRecord(1), err));
  ASSERT_TRUE(w->flush(err)) << err; // a run that did not finish
  std::string full = readFile(dir + "/records.bin");
  std::vector<Frame> frames = framesOf(full);
  ASSERT_EQ(frames.size(), 3u);
  size_t at = frames[1].offset, body = at + 8;
  std::string where = "record 1 at byte " + std::to_string(at) + ": ";
  // The damaged block is the last frame (a torn tail); with the frame after
  // it kept, the same damage is corruption.
  auto expectStop = [&](const std::string &bad, const std::string &why) {
    replaceFile(dir + "/records.bin", bad);
    EXPECT_FALSE(readTrace(dir, err));
    EXPECT_NE(err.find("is corrupt: " + where + why +
                       ", and a valid frame follows at byte " +
                       std::to_string(frames[2].offset)),
              std::string::npos)
        << err;
    replaceFile(dir + "/records.bin", bad.substr(0, frames[2].offset));
    auto tc = readTrace(dir, err);
    ASSERT_TRUE(tc) << err;
    EXPECT_EQ(tc->records.size(), 1u) << why;
    EXPECT_EQ(tc->validBytes, at);
    EXPECT_EQ(tc->stopReason, where + why);
  };
  // Every byte of the body flipped: the CRC catches it.
  for (size_t i = 0; i < frames[1].length; ++i) {
    std::string bad = full;
    bad[body + i] ^= 0x10;
    expectStop(bad, "checksum mismatch");
  }
  // Malformed bodies behind a valid CRC.
  auto patched = [&](size_t off, uint8_t v) {
    std::string bad = full;
    bad[body + off] = static_cast<char>(v);
    fixCrc(bad, at);
    return bad;
  };
  expectStop(patched(0, 14), "malformed block body: unknown stage 14");
  expectStop(patched(1, 4), "malformed block body: unknown dtype 4");
  expectStop(patched(2, 3), "malformed block body: unknown payload 3");
  expectStop(patched(3, 3), "malformed block body: unknown block flags 3");
  expectStop(patched(12, 9), "malformed block body: rank 9 too large");
  expectStop(patched(23, 0x80),
             "malformed block body: negative dimension " +
                 std::to_string(int64_t(0x8000000000000004ull)));
  // n (after a rank-1 shape at 16..24) = 0, then 5 (the length disagrees).
  expectStop(patched(24, 0), "malformed block body: block of 0 rows");
  expectStop(patched(24, 5),
             "malformed block body: body ends inside the row entries");
  // Not contiguous: 4 positions instead of 1 leave too few bytes.
  expectStop(patched(3, 0),
             "malformed block body: body ends inside the row entries");
  // Payload stats -> full: values missing.
  expectStop(patched(2, 2), "malformed block body: block of 4 rows: top-k ids "
                            "and values need 64 bytes, 0 remain");
  // A block frame in a version-1 file (header and manifest say 1).
  std::string v1 = full;
  v1[8] = 1;
  std::string manifest = readFile(dir + "/manifest.json");
  std::string m1 = manifest;
  m1.replace(m1.find("\"format_version\": 3"), 19, "\"format_version\": 1");
  writeFile(dir + "/manifest.json", m1);
  expectStop(v1, "block frame in a version-1 trace");
  writeFile(dir + "/manifest.json", manifest);
}

// A version-1 trace (record frames only, header and manifest version 1)
// reads as before.
TEST(TraceBlock, VersionOneTraceIsStillRead) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 7);
  std::string err;
  asOlderVersion(dir, 1);
  std::string records = readFile(dir + "/records.bin");
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_EQ(tc->manifest.formatVersion, 1u);
  ASSERT_EQ(tc->records.size(), 7u);
  for (int i = 0; i < 7; ++i)
    expectSame(tc->records[i], sampleRecord(i));
  // No run id, no digest: unknown, never verified; the count still is.
  EXPECT_FALSE(tc->integrity.runIdTied);
  EXPECT_FALSE(tc->integrity.digestVerified);
  EXPECT_TRUE(tc->integrity.countVerified);
  // Header and manifest must still agree.
  records[8] = 2;
  replaceFile(dir + "/records.bin", records);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("format version 2 disagrees with the manifest (1)"),
            std::string::npos)
      << err;
}

TEST(TraceBlock, InvalidBlocksAreRefusedAndTheWriterGoesOn) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t", err;
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  auto good = makeBlock(Stage::AttnOut, 1, DType::F32, Payload::Full, {2, 2},
                        iota(0, 3), 2, 12);
  auto refused = [&](auto edit, const std::string &why) {
    RecordBlock b = good->block;
    edit(b);
    std::string e;
    EXPECT_FALSE(w->appendBlock(b, e)) << why;
    EXPECT_EQ(e, "invalid record block: " + why);
    std::vector<uint8_t> body;
    EXPECT_FALSE(encodeBlockBody(b, body, e)) << why;
    EXPECT_TRUE(body.empty());
  };
  refused([](RecordBlock &b) { b.stage = static_cast<Stage>(14); },
          "unknown stage 14");
  refused([](RecordBlock &b) { b.dtype = static_cast<DType>(9); },
          "unknown dtype 9");
  refused([](RecordBlock &b) { b.payload = static_cast<Payload>(3); },
          "unknown payload 3");
  refused([](RecordBlock &b) { b.rowShape.assign(9, 1); }, "rank 9 too large");
  refused(
      [](RecordBlock &b) {
        b.rowShape = {2, -2};
      },
      "negative dimension -2");
  refused(
      [](RecordBlock &b) {
        b.rowShape = {int64_t(1) << 40, 1 << 9};
      },
      "shape too large (more than 2^48 elements)");
  refused([](RecordBlock &b) { b.n = -1; }, "negative row count -1");
  refused([](RecordBlock &b) { b.topK = 65; }, "top-k count 65 out of [0, 64]");
  refused([](RecordBlock &b) { b.positions = nullptr; },
          "positions and rows are required");
  refused([](RecordBlock &b) { b.topIds = nullptr; },
          "topK is 2 but topIds is null");
  refused([](RecordBlock &b) { b.values = nullptr; },
          "payload full without values");
  refused([](RecordBlock &b) { b.rowStride = 40; },
          "row stride 40 is below the 88-byte row entry");
  refused([](RecordBlock &b) { b.rowShape = {int64_t(1) << 28}; },
          "a frame of one row needs " +
              std::to_string(24 + 8 + 8 + 88 + 8 + (uint64_t(1) << 30)) +
              " bytes, more than the 2^30 a frame may hold");
  // Zero rows: nothing written.
  RecordBlock none = good->block;
  none.n = 0;
  EXPECT_TRUE(w->appendBlock(none, err)) << err;
  EXPECT_EQ(w->recordsWritten(), 0u);
  ASSERT_TRUE(w->appendBlock(good->block, err)) << err;
  ASSERT_TRUE(w->finish(err)) << err;
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  ASSERT_EQ(tc->records.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    expectSame(tc->records[i], good->expected[i]);
}

// decodeBlockBody is all or nothing: any shorter or longer body is refused
// and leaves `out` as it was.
TEST(TraceBlock, DecodeIsAllOrNothing) {
  for (auto &t : sampleBlocks()) {
    std::vector<uint8_t> body;
    std::string err;
    ASSERT_TRUE(encodeBlockBody(t->block, body, err)) << err;
    std::vector<Record> out(1);
    for (size_t n = 0; n < body.size(); ++n) {
      EXPECT_FALSE(decodeBlockBody(body.data(), n, out, err)) << n;
      ASSERT_EQ(out.size(), 1u);
    }
    std::vector<uint8_t> longer = body;
    longer.push_back(0);
    EXPECT_FALSE(decodeBlockBody(longer.data(), longer.size(), out, err));
    ASSERT_TRUE(decodeBlockBody(body.data(), body.size(), out, err)) << err;
    ASSERT_EQ(out.size(), 1 + t->expected.size());
    for (size_t i = 0; i < t->expected.size(); ++i) {
      expectSame(out[1 + i], t->expected[i]);
      EXPECT_FALSE(out[1 + i].values.isView());
    }
  }
  // Contiguous positions that overflow int64.
  auto b = makeBlock(Stage::EmbedOut, 0, DType::F32, Payload::Hash, {1},
                     iota(INT64_MAX - 1, 2), 0, 13);
  std::vector<uint8_t> body;
  std::string err;
  ASSERT_TRUE(encodeBlockBody(b->block, body, err)) << err;
  EXPECT_EQ(body[3], 1);          // contiguous
  body[4 + 8 + 4 + 8 + 4] = 0xff; // first position INT64_MAX
  std::vector<Record> out;
  EXPECT_FALSE(decodeBlockBody(body.data(), body.size(), out, err));
  EXPECT_EQ(err, "positions 9223372036854775807 + 1 overflow int64");
  EXPECT_TRUE(out.empty());
}

// The writer's block path under EFBIG: an error naming the file, and every
// frame before it readable.
TEST(TraceBlock, FileSizeLimitKeepsWholeFrames) {
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  auto b = makeBlock(Stage::MlpOut, 0, DType::F32, Payload::Full, {100},
                     iota(0, 8), 0, 14);
  ASSERT_NO_FATAL_FAILURE(writeUntilFileSizeLimit(
      dir, 20000, [&](TraceWriter &w, int, std::string &err) {
        return w.appendBlock(b->block, err);
      }));
  std::string err;
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_GE(tc->records.size(), 8u);
  EXPECT_EQ(tc->records.size() % 8, 0u); // whole blocks (one frame each)
  for (size_t i = 0; i < tc->records.size(); ++i)
    expectSame(tc->records[i], b->expected[i % 8]);
}

TEST(Trace, DTypeNames) {
  EXPECT_EQ(dtypeName(DType::BF16), "bf16");
  EXPECT_EQ(dtypeSize(DType::F64), 8u);
  EXPECT_EQ(dtypeSize(DType::F16), 2u);
}

} // namespace

#ifdef GRETA_SOURCE_DIR
#include <nlohmann/json.hpp>
namespace {
/// The numbers of a nested JSON array, in order (numpy's tolist of a row).
void flattenInto(const nlohmann::json &x, std::vector<double> &out) {
  if (!x.is_array())
    return out.push_back(x.get<double>());
  for (const auto &e : x)
    flattenInto(e, out);
}

// The Python package (python/greta_trace) reads what the C++ writer wrote,
// tail included.
TEST(Trace, PythonReaderAgrees) {
  // The first python3 with numpy (pyenv's may lack it; Debian's has it).
  std::string py;
  for (const char *cand : {"python3", "/usr/bin/python3"})
    if (std::system((std::string(cand) + " -c 'import numpy' >/dev/null 2>&1")
                        .c_str()) == 0) {
      py = cand;
      break;
    }
  if (py.empty())
    GTEST_SKIP() << "no python3 with numpy";
  TempDir tmp;
  std::string script = "PYTHONPATH='" + std::string(GRETA_SOURCE_DIR) +
                       "/python' " + py + " -m greta_trace ";
  // Both readers on `dir`: the same records, field for field, and the same
  // stop reason.
  auto agree = [&](const std::string &dir, size_t expected) {
    std::string err;
    auto tc = readTrace(dir, err);
    ASSERT_TRUE(tc) << err;
    std::string out = tmp.path() + "/out.jsonl";
    std::string cmd = script + "--json '" + dir + "' > '" + out + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::istringstream lines(readFile(out));
    std::string line;
    ASSERT_TRUE(std::getline(lines, line));
    auto head = nlohmann::json::parse(line);
    EXPECT_EQ(head["stop_reason"], tc->stopReason);
    EXPECT_EQ(head["valid_bytes"], tc->validBytes);
    EXPECT_EQ(head["manifest"]["model"], "llama-tiny");
    size_t i = 0;
    while (std::getline(lines, line)) {
      ASSERT_LT(i, tc->records.size());
      SCOPED_TRACE(i);
      auto j = nlohmann::json::parse(line);
      const Record &r = tc->records[i++];
      EXPECT_EQ(j["stage"], std::string(stageName(r.stage)));
      EXPECT_EQ(j["layer"], r.layer);
      EXPECT_EQ(j["position"], r.position);
      EXPECT_EQ(j["dtype"], std::string(dtypeName(r.dtype)));
      EXPECT_EQ(j["shape"].get<std::vector<int64_t>>(), r.shape);
      EXPECT_EQ(j["payload"],
                std::string(r.payload == Payload::Hash    ? "hash"
                            : r.payload == Payload::Stats ? "stats"
                                                          : "full"));
      EXPECT_EQ(j["sha256"], r.sha256Hex());
      EXPECT_EQ(j["nz_count"], r.nzCount);
      EXPECT_EQ(j["nan_count"], r.nanCount);
      EXPECT_EQ(j["inf_count"], r.infCount);
      EXPECT_EQ(j["min"].get<double>(), r.fingerprint.min);
      EXPECT_EQ(j["max"].get<double>(), r.fingerprint.max);
      EXPECT_EQ(j["mean"].get<double>(), r.fingerprint.mean);
      EXPECT_EQ(j["l2"].get<double>(), r.fingerprint.l2);
      EXPECT_EQ(j["top5"].get<std::vector<int32_t>>(), r.top5);
      if (r.payload == Payload::Full && !r.values.empty()) {
        std::vector<double> v;
        flattenInto(j["values"], v);
        EXPECT_EQ(v, r.valuesAsDouble());
      } else {
        EXPECT_TRUE(j["values"].is_null());
      }
    }
    EXPECT_EQ(i, tc->records.size());
    EXPECT_EQ(i, expected);
  };

  // Record frames only, a cut tail (of a run that did not finish: a cut
  // finished run is corrupt, an error for both readers).
  std::string dir = writeTrace(tmp.path() + "/t", 9, /*finish=*/false);
  std::string full = readFile(dir + "/records.bin");
  replaceFile(dir + "/records.bin", full.substr(0, full.size() - 5));
  agree(dir, 8);

  // Record and block frames (every kind of block), a block split over
  // frames, and a cut inside the last block.
  std::string err, mixed = tmp.path() + "/mixed";
  auto bs = sampleBlocks();
  auto last = makeBlock(Stage::Logits, 11, DType::F32, Payload::Full, {6},
                        iota(0, 4), 5, 21);
  size_t n;
  {
    auto w = TraceWriter::create(mixed, sampleManifest(), false, err);
    ASSERT_TRUE(w) << err;
    n = writeMixed(*w, bs).size();
    w->setMaxBlockBodyBytes(500);
    ASSERT_TRUE(w->appendBlock(bs[2]->block, err)) << err;
    n += bs[2]->expected.size();
    w->setMaxBlockBodyBytes(kMaxBlockBodyBytes);
    ASSERT_TRUE(w->appendBlock(last->block, err)) << err;
    ASSERT_TRUE(w->flush(err)) << err; // not finished: its tail may be torn
  }
  agree(mixed, n + last->expected.size());
  full = readFile(mixed + "/records.bin");
  replaceFile(mixed + "/records.bin", full.substr(0, full.size() - 5));
  agree(mixed, n);
  replaceFile(mixed + "/records.bin", full);
  // A malformed block behind a valid CRC: the same stop reason.
  std::vector<Frame> frames = framesOf(full);
  std::string bad = full;
  bad[frames.back().offset + 8 + 3] = 2; // unknown flag
  fixCrc(bad, frames.back().offset);
  replaceFile(mixed + "/records.bin", bad);
  agree(mixed, n);
  replaceFile(mixed + "/records.bin", full);

  // --verify recomputes the digests of blocks' values too.
  std::string vdir = tmp.path() + "/verify";
  auto real = makeBlock(Stage::MlpOut, 2, DType::F32, Payload::Full, {33},
                        iota(5, 7), 0, 22, sizeof(BlockRow),
                        /*realDigests=*/true);
  {
    auto w = TraceWriter::create(vdir, sampleManifest(), false, err);
    ASSERT_TRUE(w) << err;
    ASSERT_TRUE(w->appendBlock(real->block, err)) << err;
    ASSERT_TRUE(w->finish(err)) << err;
  }
  std::string vout = tmp.path() + "/verify.txt";
  std::string cmd = script + "--verify '" + vdir + "' > '" + vout + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << readFile(vout);
  EXPECT_NE(readFile(vout).find("verified 7 records with values: 0 mismatches"),
            std::string::npos)
      << readFile(vout);
  std::string vfile = readFile(vdir + "/records.bin");
  // Row 4's sha256: after 28 bytes of tags, layer, rank 1, shape and n, and
  // one position.
  size_t entry4 = kTraceFileHeaderSize + 8 + 28 + 8 + 4 * 88;
  vfile[entry4] ^= 1;
  fixCrc(vfile, kTraceFileHeaderSize);
  replaceFile(vdir + "/records.bin", vfile);
  // Without its records digest (which would catch the edit first: the
  // reader checks it), the row's own digest is what --verify catches.
  std::string vman = readFile(vdir + "/manifest.json");
  size_t at = vman.find("  \"records_digest\"");
  ASSERT_NE(at, std::string::npos) << vman;
  vman.erase(at, vman.find('\n', at) + 1 - at);
  replaceFile(vdir + "/manifest.json", vman);
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << rc;
  EXPECT_NE(readFile(vout).find("MISMATCH mlp_out[L2, p9]"), std::string::npos)
      << readFile(vout);

  // Errors are reported, not raised as tracebacks: exit code 2.
  cmd = script + "'" + tmp.path() + "' 2>/dev/null";
  rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << rc;
}
} // namespace
#endif

namespace {
// Random damage anywhere after the file header: the reader never crashes
// and what it returns is always a prefix of what was written.
TEST(Trace, RandomCorruptionYieldsAPrefix) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 12, /*finish=*/false);
  std::string full = readFile(dir + "/records.bin");
  std::string err;
  auto whole = readTrace(dir, err);
  ASSERT_TRUE(whole) << err;
  Rng rng(11);
  for (int iter = 0; iter < 400; ++iter) {
    std::string bad = full;
    int flips = 1 + static_cast<int>(rng.u32() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t at = kTraceFileHeaderSize +
                  rng.u64() % (full.size() - kTraceFileHeaderSize);
      bad[at] = static_cast<char>(rng.u32());
    }
    if (iter % 3 == 0)
      bad.resize(kTraceFileHeaderSize +
                 rng.u64() % (bad.size() - kTraceFileHeaderSize));
    replaceFile(dir + "/records.bin", bad);
    auto tc = readTrace(dir, err);
    if (!tc) {
      EXPECT_TRUE(err.find("no readable record") != std::string::npos ||
                  err.find("is corrupt") != std::string::npos)
          << err;
      continue;
    }
    ASSERT_LE(tc->records.size(), whole->records.size());
    for (size_t i = 0; i < tc->records.size(); ++i)
      expectSame(tc->records[i], whole->records[i]);
    // A clean end (a cut on a record boundary) is one that used every byte.
    EXPECT_EQ(tc->stopReason.empty(), tc->validBytes == bad.size())
        << tc->stopReason;
  }
}
} // namespace

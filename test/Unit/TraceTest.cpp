//===- TraceTest.cpp - Trace writer/reader, crash safety, lock --*- C++ -*-===//
#include "greta/rt/Trace.h"

#include "TestUtil.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>
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

/// Replaces a file the way GRETA's writer does (a new inode, never an
/// in-place truncation): records read earlier keep viewing the old bytes.
std::string replaceFile(const std::string &path, const std::string &data) {
  writeFile(path + ".new", data);
  EXPECT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0) << path;
  return path;
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

TEST(Trace, TruncationAtEveryByteKeepsAPrefix) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 6);
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

TEST(Trace, CorruptionIsDetected) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 4);
  std::string full = readFile(dir + "/records.bin");
  uint32_t len0;
  std::memcpy(&len0, full.data() + kTraceFileHeaderSize + 4, 4);
  size_t second = kTraceFileHeaderSize + 12 + len0;
  std::string err;
  // A flipped byte inside record 1's body: checksum mismatch, record 0 kept.
  std::string bad = full;
  bad[second + 8 + 20] ^= 0x40;
  replaceFile(dir + "/records.bin", bad);
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_EQ(tc->records.size(), 1u);
  EXPECT_NE(tc->stopReason.find("record 1 at byte " + std::to_string(second) +
                                ": checksum mismatch"),
            std::string::npos)
      << tc->stopReason;
  // A bad frame magic.
  bad = full;
  bad[second] = 'X';
  replaceFile(dir + "/records.bin", bad);
  tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_NE(tc->stopReason.find("bad record magic"), std::string::npos);
  // A valid checksum over a malformed body (unknown stage) is still refused.
  bad = full;
  bad[second + 8] = 99;
  uint32_t len1;
  std::memcpy(&len1, full.data() + second + 4, 4);
  uint32_t crc =
      crc32(0, reinterpret_cast<const Bytef *>(bad.data() + second + 8), len1);
  std::memcpy(&bad[second + 8 + len1], &crc, 4);
  replaceFile(dir + "/records.bin", bad);
  tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  EXPECT_EQ(tc->records.size(), 1u);
  EXPECT_NE(tc->stopReason.find("unknown stage 99"), std::string::npos)
      << tc->stopReason;
  // A corrupt first record leaves nothing: an error.
  bad = full;
  bad[kTraceFileHeaderSize + 8 + 3] ^= 1;
  replaceFile(dir + "/records.bin", bad);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("no readable record"), std::string::npos) << err;
  EXPECT_NE(err.find("checksum"), std::string::npos) << err;
}

TEST(Trace, NewerVersionAndBadDirectoriesAreErrors) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 2);
  std::string err;
  std::string records = readFile(dir + "/records.bin");
  std::string bumped = records;
  bumped[8] = 2;
  replaceFile(dir + "/records.bin", bumped);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("version 2 is newer"), std::string::npos) << err;
  replaceFile(dir + "/records.bin", records);

  std::string manifest = readFile(dir + "/manifest.json");
  size_t at = manifest.find("\"format_version\": 1");
  ASSERT_NE(at, std::string::npos) << manifest;
  std::string newer = manifest;
  newer.replace(at, 19, "\"format_version\": 7");
  writeFile(dir + "/manifest.json", newer);
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("version 7 is newer"), std::string::npos) << err;
  writeFile(dir + "/manifest.json", "{oops");
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("not valid JSON"), std::string::npos) << err;
  writeFile(dir + "/manifest.json", manifest);

  replaceFile(dir + "/records.bin", "");
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("empty trace"), std::string::npos) << err;
  replaceFile(dir + "/records.bin", records.substr(0, kTraceFileHeaderSize));
  EXPECT_FALSE(readTrace(dir, err));
  EXPECT_NE(err.find("no readable record"), std::string::npos) << err;

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

TEST(Trace, FileSizeLimitIsAnErrorAndKeepsThePrefix) {
  // RLIMIT_FSIZE stands in for a full disk: write(2) fails with EFBIG.
  TempDir tmp;
  std::string dir = tmp.path() + "/t";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit lim = {4096, 4096};
    setrlimit(RLIMIT_FSIZE, &lim);
    std::string err;
    auto w = TraceWriter::create(dir, sampleManifest(), false, err);
    if (!w)
      _exit(3);
    for (int i = 0; i < 1000; ++i) {
      if (!w->append(sampleRecord(i), err) || !w->flush(err)) {
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

TEST(Trace, DTypeNames) {
  EXPECT_EQ(dtypeName(DType::BF16), "bf16");
  EXPECT_EQ(dtypeSize(DType::F64), 8u);
  EXPECT_EQ(dtypeSize(DType::F16), 2u);
}

} // namespace

#ifdef GRETA_SOURCE_DIR
#include <nlohmann/json.hpp>
namespace {
// python/greta_trace.py reads what the C++ writer wrote, tail included.
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
  std::string dir = writeTrace(tmp.path() + "/t", 9);
  std::string full = readFile(dir + "/records.bin");
  replaceFile(dir + "/records.bin", full.substr(0, full.size() - 5));
  std::string err;
  auto tc = readTrace(dir, err);
  ASSERT_TRUE(tc) << err;
  std::string out = tmp.path() + "/out.jsonl";
  std::string cmd = py + " " + GRETA_SOURCE_DIR +
                    "/python/greta_trace.py --json '" + dir + "' > '" + out +
                    "'";
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
    auto j = nlohmann::json::parse(line);
    const Record &r = tc->records[i++];
    EXPECT_EQ(j["stage"], std::string(stageName(r.stage)));
    EXPECT_EQ(j["layer"], r.layer);
    EXPECT_EQ(j["position"], r.position);
    EXPECT_EQ(j["sha256"], r.sha256Hex());
    EXPECT_EQ(j["nz_count"], r.nzCount);
    EXPECT_EQ(j["top5"].get<std::vector<int32_t>>(), r.top5);
    if (r.payload == Payload::Full)
      EXPECT_EQ(j["values"].get<std::vector<double>>(), r.valuesAsDouble());
    else
      EXPECT_TRUE(j["values"].is_null());
  }
  EXPECT_EQ(i, tc->records.size());
  EXPECT_EQ(i, 8u);
  // Errors are reported, not raised as tracebacks: exit code 2.
  cmd = py + " " + GRETA_SOURCE_DIR + "/python/greta_trace.py '" + tmp.path() +
        "' 2>/dev/null";
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << rc;
}
} // namespace
#endif

namespace {
// Random damage anywhere after the file header: the reader never crashes
// and what it returns is always a prefix of what was written.
TEST(Trace, RandomCorruptionYieldsAPrefix) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 12);
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
      EXPECT_NE(err.find("no readable record"), std::string::npos) << err;
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

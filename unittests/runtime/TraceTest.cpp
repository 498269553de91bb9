//===- TraceTest.cpp - Trace writer/reader, crash safety, lock --*- C++ -*-===//
#include "TraceTestUtil.h"

#include <gtest/gtest.h>

using namespace greta::rt;

namespace {

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
    expectSameRecord(tc->records[i], sampleRecord(i));
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
      expectSameRecord(tc->records[i], whole->records[i]);
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
    expectSameRecord(tc->records[i], sampleRecord(static_cast<int>(i)));
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
  expectSameRecord(copied, r);
  expectSameRecord(viewed, r);
}

// readTrace's records own their values; kept blocks read theirs back from
// the file they were read from, which the writer overwriting the trace
// (unlink + new file) leaves as it was: an earlier reader sees the old run.
TEST(Trace, ReadValuesSurviveAnOverwrite) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 6);
  std::string err;
  std::vector<Record> kept;
  ReadOptions ro;
  ro.keepBlocks = true;
  auto blocks = readTrace(dir, err, ro);
  ASSERT_TRUE(blocks) << err;
  ASSERT_EQ(blocks->blocks.size(), 6u);
  {
    auto tc = readTrace(dir, err);
    ASSERT_TRUE(tc) << err;
    for (const Record &r : tc->records)
      EXPECT_FALSE(r.values.isView()) << r.position;
    kept = tc->records;
  }
  auto w = TraceWriter::create(dir, sampleManifest(), /*overwrite=*/true, err);
  ASSERT_TRUE(w) << err;
  for (int i = 10; i < 16; ++i)
    ASSERT_TRUE(w->append(sampleRecord(i), err)) << err;
  ASSERT_TRUE(w->finish(err)) << err;
  ASSERT_EQ(kept.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    expectSameRecord(kept[i], sampleRecord(i));
    Record r;
    ASSERT_TRUE(blocks->blocks[i].readRecord(0, r, err)) << err;
    expectSameRecord(r, sampleRecord(i));
  }
  auto now = readTrace(dir, err);
  ASSERT_TRUE(now) << err;
  ASSERT_EQ(now->records.size(), 6u);
  expectSameRecord(now->records[1], sampleRecord(11));
}

TEST(Trace, DTypeNames) {
  EXPECT_EQ(dtypeName(DType::BF16), "bf16");
  EXPECT_EQ(dtypeSize(DType::F64), 8u);
  EXPECT_EQ(dtypeSize(DType::F16), 2u);
}

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
      expectSameRecord(tc->records[i], whole->records[i]);
    // A clean end (a cut on a record boundary) is one that used every byte.
    EXPECT_EQ(tc->stopReason.empty(), tc->validBytes == bad.size())
        << tc->stopReason;
  }
}
} // namespace

//===- TraceBlockTest.cpp - Block frames (format version 2) -----*- C++ -*-===//
#include "TraceTestUtil.h"

#include <gtest/gtest.h>

using namespace greta::rt;

namespace {


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
    expectSameRecord(tc->records[i], want[i]);
    // Read through a buffer, not a mapping: records own their values.
    EXPECT_FALSE(tc->records[i].values.isView());
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
    expectSameRecord(tc->records[i], want[i]);
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
  expectStop(patched(0, 60), "malformed block body: unknown stage 60");
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
    expectSameRecord(tc->records[i], sampleRecord(i));
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
  refused([](RecordBlock &b) { b.stage = static_cast<Stage>(60); },
          "unknown stage 60");
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
    expectSameRecord(tc->records[i], good->expected[i]);
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
      expectSameRecord(out[1 + i], t->expected[i]);
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
    expectSameRecord(tc->records[i], b->expected[i % 8]);
}

} // namespace

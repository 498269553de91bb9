//===- TraceStreamTest.cpp - The reader's buffer and its read-back path ---===//
//
// readTrace reads records.bin through one reused buffer, a batch of whole
// frames at a time (a frame larger than the buffer grows it); with
// keepBlocks the values stay in the file and are read back by offset. What
// is read must not depend on the buffer's size: frames straddle its end at
// every offset below, and files are smaller and larger than it.
//
//===----------------------------------------------------------------------===//
#include "TraceTestUtil.h"

#include <unistd.h>

namespace {

/// Buffer sizes from below the smallest frame to above the whole file.
std::vector<size_t> bufferSizes() {
  std::vector<size_t> v = {1, 64, 100, 333};
  for (size_t b = 500; b < 6000; b += 97)
    v.push_back(b);
  v.push_back(size_t(1) << 20);
  return v;
}

std::string writeMixedTrace(const std::string &dir, bool finish,
                            std::vector<Record> &want) {
  std::string err;
  auto w = TraceWriter::create(dir, sampleManifest(), false, err);
  EXPECT_TRUE(w) << err;
  auto bs = sampleBlocks();
  want = writeMixed(*w, bs);
  if (finish)
    EXPECT_TRUE(w->finish(err)) << err;
  else
    EXPECT_TRUE(w->flush(err)) << err;
  return dir;
}

TEST(TraceStream, EveryBufferSizeReadsTheSameRecords) {
  TempDir tmp;
  std::vector<Record> want;
  std::string dir = writeMixedTrace(tmp.path() + "/t", true, want);
  size_t fileSize = readFile(dir + "/records.bin").size();
  ASSERT_GT(fileSize, 6000u) << "larger than most buffers below";
  ASSERT_LT(fileSize, size_t(1) << 20) << "smaller than the last";
  for (size_t buffer : bufferSizes()) {
    SCOPED_TRACE(buffer);
    std::string err;
    ReadOptions ro;
    ro.bufferBytes = buffer;
    auto tc = readTrace(dir, err, ro);
    ASSERT_TRUE(tc) << err;
    EXPECT_TRUE(tc->stopReason.empty()) << tc->stopReason;
    EXPECT_EQ(tc->validBytes, fileSize);
    EXPECT_TRUE(tc->integrity.digestVerified);
    ASSERT_EQ(tc->records.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      expectSameRecord(tc->records[i], want[i]);
    // Kept blocks (a record frame is a block of one row): the values read
    // back from the file by offset.
    ro.keepBlocks = true;
    auto kept = readTrace(dir, err, ro);
    ASSERT_TRUE(kept) << err;
    EXPECT_TRUE(kept->records.empty());
    ASSERT_EQ(kept->rowCount(), want.size());
    EXPECT_EQ(kept->integrity.recordsDigest, tc->integrity.recordsDigest);
    size_t i = 0;
    for (const BlockRows &b : kept->blocks) {
      EXPECT_EQ(b.values, nullptr);
      EXPECT_EQ(static_cast<bool>(b.file), b.rowBytes > 0);
      for (size_t j = 0; j < b.n; ++j, ++i) {
        Record r;
        ASSERT_TRUE(b.readRecord(j, r, err)) << err;
        expectSameRecord(r, want[i]);
      }
    }
  }
}

// Corruption and truncation are found, and named, whatever the buffer: the
// same error, the same stop at the same record and byte.
TEST(TraceStream, DamageIsNamedTheSameWithEveryBuffer) {
  TempDir tmp;
  std::vector<Record> want;
  std::string dir = writeMixedTrace(tmp.path() + "/t", true, want);
  std::string path = dir + "/records.bin", good = readFile(path);
  std::vector<Frame> frames = framesOf(good);
  ASSERT_GT(frames.size(), 8u);
  const Frame &mid = frames[frames.size() / 2];
  auto expectSameEverywhere = [&](const std::string &why) {
    SCOPED_TRACE(why);
    std::string first;
    for (size_t buffer : bufferSizes()) {
      std::string err;
      ReadOptions ro;
      ro.bufferBytes = buffer;
      auto tc = readTrace(dir, err, ro);
      std::string got = tc ? "stop: " + tc->stopReason + " rows " +
                                 std::to_string(tc->records.size())
                           : "error: " + err;
      if (first.empty())
        first = got;
      EXPECT_EQ(got, first) << "buffer " << buffer;
    }
    return first;
  };
  // A flipped bit in a finished run: an error naming the file and the frame.
  std::string bad = good;
  bad[mid.offset + 20] ^= 1;
  replaceFile(path, bad);
  std::string e = expectSameEverywhere("checksum");
  EXPECT_NE(e.find("error: '" + path + "' is corrupt: record "),
            std::string::npos)
      << e;
  EXPECT_NE(
      e.find(" at byte " + std::to_string(mid.offset) + ": checksum mismatch"),
      std::string::npos)
      << e;
  // A length past the end of the file.
  bad = good;
  uint32_t huge = static_cast<uint32_t>(good.size());
  std::memcpy(&bad[mid.offset + 4], &huge, 4);
  replaceFile(path, bad);
  e = expectSameEverywhere("past the end");
  EXPECT_NE(e.find("truncated: needs"), std::string::npos) << e;
  // A cut inside a frame of a run that did not finish: the records before.
  writeMixedTrace(tmp.path() + "/u", false, want);
  path = tmp.path() + "/u/records.bin";
  good = readFile(path);
  frames = framesOf(good);
  replaceFile(path, good.substr(0, frames[5].offset + 7));
  dir = tmp.path() + "/u";
  e = expectSameEverywhere("cut");
  EXPECT_EQ(e.rfind("stop: record ", 0), 0u) << e;
  EXPECT_NE(e.find(" at byte " + std::to_string(frames[5].offset)),
            std::string::npos)
      << e;
}

// A frame larger than the buffer is read whole: the buffer grows to it.
TEST(TraceStream, AFrameLargerThanTheBufferGrowsIt) {
  TempDir tmp;
  std::string err;
  auto w = TraceWriter::create(tmp.path() + "/t", sampleManifest(), false, err);
  ASSERT_TRUE(w) << err;
  auto big = makeBlock(Stage::ResidualPostMlp, 4, DType::F32, Payload::Full,
                       {1000}, iota(0, 40), 0, 9); // 160 KB of values
  ASSERT_TRUE(w->append(sampleRecord(1), err)) << err;
  ASSERT_TRUE(w->appendBlock(big->block, err)) << err;
  ASSERT_TRUE(w->append(sampleRecord(3), err)) << err;
  ASSERT_TRUE(w->finish(err)) << err;
  ReadOptions ro;
  ro.bufferBytes = 4096;
  auto tc = readTrace(tmp.path() + "/t", err, ro);
  ASSERT_TRUE(tc) << err;
  ASSERT_EQ(tc->records.size(), 42u);
  expectSameRecord(tc->records[0], sampleRecord(1));
  for (size_t j = 0; j < 40; ++j)
    expectSameRecord(tc->records[1 + j], big->expected[j]);
  expectSameRecord(tc->records[41], sampleRecord(3));
}

// The read-back of a file cut since it was read is an error naming it.
TEST(TraceStream, ReadBackOfACutFileIsAnError) {
  TempDir tmp;
  std::string dir = writeTrace(tmp.path() + "/t", 8);
  std::string err;
  ReadOptions ro;
  ro.keepBlocks = true;
  auto tc = readTrace(dir, err, ro);
  ASSERT_TRUE(tc) << err;
  ASSERT_EQ(::truncate((dir + "/records.bin").c_str(), 40), 0);
  Record r;
  const BlockRows &last = tc->blocks.back();
  ASSERT_GT(last.rowBytes, 0u);
  EXPECT_FALSE(last.readRecord(0, r, err));
  EXPECT_NE(err.find("cannot read '" + dir + "/records.bin' at byte "),
            std::string::npos)
      << err;
  EXPECT_THROW(last.record(0), std::runtime_error);
}

} // namespace

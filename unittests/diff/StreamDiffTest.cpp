//===- StreamDiffTest.cpp - Traces compared while they are read -----------===//
//
// diffTraceDirs judges the rows of two traces in the same order while both
// files are read (rt::readTracePair), and leaves the rest to diffTraces,
// which reads their values back by offset. Whatever the path, the report
// must be the one of the general path: readTrace, then diffTraces.
//
//===----------------------------------------------------------------------===//
#include "DiskTraces.h"
#include "TestTraces.h"
#include "greta/diff/Diff.h"
#include "greta/diff/Report.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <sstream>
#include <unistd.h>

using namespace greta;
using namespace greta::diff;
using namespace greta::difftest;
using rt::Stage;

namespace {

/// Every format of the report of `r`, every row shown.
std::string render(const DiffResult &r) {
  ReportOptions ro;
  ro.format = Format::Json;
  ro.context = -1;
  std::string text = toJson(r, ro).dump(1);
  for (Format f : {Format::Table, Format::Markdown, Format::Csv}) {
    std::ostringstream os;
    ro.format = f;
    printReport(os, r, ro);
    text += os.str();
  }
  return text + "verdict " + std::string(verdictName(r.verdict()));
}

/// The general path: each trace read whole (records expanded), then
/// diffTraces.
std::string general(const std::string &base, const std::string &test,
                    const Options &o) {
  std::string err;
  auto b = rt::readTrace(base, err),
       t = b ? rt::readTrace(test, err) : std::nullopt;
  if (!b || !t)
    return "error: " + err;
  auto r = diffTraces(*b, *t, nullptr, o, err);
  return r ? render(*r) : "error: " + err;
}

std::string streamed(const std::string &base, const std::string &test,
                     const Options &o) {
  std::string err;
  auto r = diffTraceDirs(base, test, "", o, err);
  return r ? render(*r) : "error: " + err;
}

/// Counts the rows readTracePair hands over.
struct CountingSink : rt::RowPairSink {
  std::atomic<size_t> rows{0};
  bool start(const rt::Manifest &, const rt::Manifest &) override {
    return true;
  }
  void pair(unsigned, const rt::BlockRows &a, uint32_t, const rt::BlockRows &b,
            uint32_t, uint32_t j, const uint8_t *va,
            const uint8_t *vb) override {
    EXPECT_EQ(a.position(j), b.position(j));
    EXPECT_NE(std::memcmp(a.sha256(j), b.sha256(j), 32), 0);
    EXPECT_NE(std::memcmp(va, vb, a.rowBytes), 0);
    ++rows;
  }
};

size_t pairedRows(const std::string &a, const std::string &b,
                  size_t bufferBytes = size_t(4) << 20) {
  CountingSink sink;
  std::optional<rt::TraceContents> ta, tb;
  std::string ea, eb;
  rt::ReadOptions ro;
  ro.bufferBytes = bufferBytes;
  rt::readTracePair(a, b, ro, &sink, ta, ea, tb, eb);
  EXPECT_TRUE(ta && tb) << ea << eb;
  return sink.rows;
}

/// Noise on every row of every tensor (the "every row differs" case).
auto noise(double rel) {
  return [=](Stage s, int64_t l, int64_t p, std::vector<double> &v) {
    for (size_t i = 0; i < v.size(); ++i)
      v[i] *= 1 + rel * baseValue(s, l, p + 1000, static_cast<int64_t>(i));
  };
}

/// BASE (`s`) and TEST (`s` with `perturb`) written to `d` as record or
/// block frames; `rows` records each.
struct Pair {
  std::string base, test;
  size_t rows;
};
Pair writePair(const TempDir &d, TraceSpec s, decltype(s.perturb) perturb,
               bool blocks) {
  auto base = build(s);
  s.perturb = std::move(perturb);
  auto test = build(s);
  Pair p{d.path + "/base", d.path + "/test", test.records.size()};
  writeTrace(base, p.base, blocks);
  writeTrace(test, p.test, blocks);
  return p;
}

struct Case {
  const char *name;
  bool baseBlocks, testBlocks, reverseTensors, reverseRows;
  int paired; // rows judged while read: 1 every differing row, 0 none,
              // -1 some (the middle one of 9 reversed tensors)
};

TEST(StreamDiff, EveryLayoutGivesTheReportOfTheGeneralPath) {
  const Case cases[] = {
      {"record frames, same order", false, false, false, false, 1},
      {"block frames, same order", true, true, false, false, 1},
      {"blocks vs record frames", true, false, false, false, 0},
      {"TEST tensors reversed", true, true, true, false, -1},
      {"TEST rows reversed", true, true, false, true, 0},
  };
  TraceSpec s = spec();
  s.stages = {Stage::ResidualPreAttn, Stage::AttnOut, Stage::MlpOut};
  s.hidden = 40;
  auto base = build(s);
  for (auto [perturbName, perturb] :
       {std::pair<const char *, decltype(s.perturb)>{
            "planted fault", plant(Stage::AttnOut, 1, 5, 1.01)},
        {"every row differs", noise(1e-6)}}) {
    s.perturb = perturb;
    auto test = build(s);
    size_t differing = 0;
    for (size_t i = 0; i < base.records.size(); ++i)
      differing += base.records[i].sha256 != test.records[i].sha256;
    ASSERT_GT(differing, 0u);
    for (const Case &c : cases) {
      SCOPED_TRACE(std::string(perturbName) + ", " + c.name);
      TempDir d;
      std::string b = d.path + "/base", t = d.path + "/test";
      writeTrace(base, b, c.baseBlocks);
      writeTrace(test, t, c.testBlocks, c.reverseTensors, false, c.reverseRows);
      size_t paired = pairedRows(b, t);
      if (c.paired == 1)
        EXPECT_EQ(paired, differing);
      else if (c.paired == 0)
        EXPECT_EQ(paired, 0u);
      else
        EXPECT_LT(paired, differing);
      for (Policy p : {Policy::Exact, Policy::Tolerance}) {
        std::string want = general(b, t, opts(p));
        EXPECT_EQ(want.rfind("error", 0), std::string::npos) << want;
        EXPECT_EQ(streamed(b, t, opts(p)), want);
      }
    }
  }
}

// Frames straddle the read buffer at many offsets: the rows paired are the
// same whatever its size (each frame is read whole, the buffer growing to a
// frame larger than itself).
TEST(StreamDiff, PairingDoesNotDependOnTheBufferSize) {
  TraceSpec s = spec();
  s.stages = {Stage::AttnOut, Stage::MlpOut};
  s.hidden = 24;
  TempDir d;
  Pair p = writePair(d, s, noise(1e-5), false);
  size_t all = pairedRows(p.base, p.test);
  EXPECT_EQ(all, p.rows);
  for (size_t buffer : {64, 100, 333, 1000, 4096, 10007})
    EXPECT_EQ(pairedRows(p.base, p.test, buffer), all) << buffer;
}

// A truncated TEST (a run that did not finish) and a corrupt one (a run that
// finished): the same report or error as the general path, the error naming
// TEST, its file and the record.
TEST(StreamDiff, TruncationAndCorruptionAsTheGeneralPath) {
  TraceSpec s = spec();
  s.hidden = 32;
  TempDir d;
  Pair p = writePair(d, s, noise(1e-6), true);
  const std::string &b = p.base, &t = p.test;
  std::string records = t + "/records.bin";
  off_t size = 0;
  {
    std::ifstream f(records, std::ios::binary | std::ios::ate);
    size = f.tellg();
  }
  // Cut mid-frame, run unfinished: compared up to the cut, no verdict.
  ASSERT_EQ(::truncate(records.c_str(), size - 100), 0);
  markUnfinished(t);
  std::string want = general(b, t, opts(Policy::Tolerance));
  EXPECT_NE(want.find("undecided"), std::string::npos) << want;
  EXPECT_EQ(streamed(b, t, opts(Policy::Tolerance)), want);

  // A byte flipped in the middle of a finished run: corruption, exit 2.
  writePair(d, s, noise(1e-6), true);
  {
    std::fstream f(records, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(size / 2);
    char c;
    f.read(&c, 1);
    f.seekp(size / 2);
    c ^= 0x40;
    f.write(&c, 1);
  }
  std::string err = streamed(b, t, opts(Policy::Tolerance));
  EXPECT_EQ(err.rfind("error: TEST trace '" + t + "': '" + records +
                          "' is corrupt: record ",
                      0),
            0u)
      << err;
  EXPECT_NE(err.find("checksum mismatch, in a run that finished"),
            std::string::npos)
      << err;
  std::string rtErr;
  EXPECT_FALSE(rt::readTrace(t, rtErr));
  EXPECT_NE(err.find(rtErr), std::string::npos) << err << "\n" << rtErr;
}

// Values are read back by offset for rows judged after the read: a file
// cut in between is an error naming it, never a row without values.
TEST(StreamDiff, ValuesCutAfterTheReadAreAnError) {
  TraceSpec s = spec();
  s.hidden = 16;
  TempDir d;
  Pair p = writePair(d, s, plant(Stage::MlpOut, 0, 0, 1.5), true);
  const std::string &b = p.base, &t = p.test;
  rt::ReadOptions ro;
  ro.keepBlocks = true;
  std::string err;
  auto tb = rt::readTrace(b, err, ro), tt = rt::readTrace(t, err, ro);
  ASSERT_TRUE(tb && tt) << err;
  for (const rt::BlockRows &blk : tt->blocks) {
    EXPECT_EQ(blk.values, nullptr) << "values stay in the file";
    EXPECT_TRUE(blk.file);
  }
  ASSERT_TRUE(diffTraces(*tb, *tt, nullptr, opts(Policy::Tolerance), err))
      << err;
  ASSERT_EQ(::truncate((t + "/records.bin").c_str(), 64), 0);
  auto r = diffTraces(*tb, *tt, nullptr, opts(Policy::Tolerance), err);
  EXPECT_FALSE(r);
  EXPECT_NE(err.find("cannot read '" + t + "/records.bin' at byte "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("cut since it was read"), std::string::npos) << err;
}

} // namespace

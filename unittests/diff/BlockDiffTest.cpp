//===- BlockDiffTest.cpp - greta-diff on block frames kept compact --------===//
//
// readTrace(keepBlocks) keeps block frames compact (rt::BlockRows: the row
// entries, the values left in the file) and greta-diff builds a Record only
// for the rows it judges; every result must equal the one of the expanded
// read (a Record per row), and the report's RowResults, stored compactly,
// must read back as pushed.
//
//===----------------------------------------------------------------------===//
#include "DiskTraces.h"
#include "TestTraces.h"
#include "common/ExpectSameRecord.h"
#include "greta/diff/Diff.h"
#include "greta/diff/Report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

using namespace greta;
using namespace greta::diff;
using namespace greta::difftest;
using rt::Stage;

namespace {

rt::TraceContents readT(const std::string &dir, bool keepBlocks) {
  std::string err;
  rt::ReadOptions o;
  o.keepBlocks = keepBlocks;
  auto t = rt::readTrace(dir, err, o);
  EXPECT_TRUE(t.has_value()) << err;
  return t ? std::move(*t) : rt::TraceContents{};
}

std::string report(const rt::TraceContents &b, const rt::TraceContents &t,
                   const Options &o, const rt::TraceContents *ref = nullptr) {
  std::string err;
  auto r = diffTraces(b, t, ref, o, err);
  if (!r)
    return "error: " + err;
  ReportOptions ro;
  ro.format = Format::Json;
  ro.context = -1; // every row
  std::string text = toJson(*r, ro).dump(1);
  for (Format f : {Format::Table, Format::Markdown, Format::Csv}) {
    std::ostringstream os;
    ro.format = f;
    printReport(os, *r, ro);
    text += os.str();
  }
  return text;
}

using greta::test::expectSameRecord;

TraceSpec withLogits(TraceSpec s) {
  s.stages = allLayerStages();
  s.stages.push_back(Stage::Logits);
  return s;
}

TEST(BlockRows, KeptBlocksReadAsTheExpandedRecords) {
  for (rt::Payload pl :
       {rt::Payload::Hash, rt::Payload::Stats, rt::Payload::Full}) {
    TraceSpec s = withLogits({});
    s.payload = pl;
    s.positions = {0, 1, 2, 5, 6, 9}; // not contiguous: explicit positions
    auto t = build(s);
    for (auto &r : t.records)
      if (r.stage == Stage::Logits)
        r.top5 = {7, 3};
    TempDir d;
    writeTrace(t, d.path + "/t", true);
    auto full = readT(d.path + "/t", false), kept = readT(d.path + "/t", true);
    EXPECT_TRUE(kept.records.empty());
    ASSERT_EQ(kept.rowCount(), full.records.size());
    ASSERT_EQ(full.records.size(), t.records.size());
    size_t i = 0;
    for (const rt::BlockRows &b : kept.blocks) {
      EXPECT_TRUE(b.owner) << "kept rows hold their entries";
      for (size_t j = 0; j < b.n; ++j, ++i) {
        expectSameRecord(b.record(j), full.records[i]);
        EXPECT_EQ(b.position(j), t.records[i].position);
        EXPECT_EQ(std::memcmp(b.sha256(j), t.records[i].sha256.data(), 32), 0);
      }
    }
    EXPECT_EQ(i, t.records.size());
  }
}

TEST(BlockRows, DecodeBlockRowsFailsWhereDecodeBlockBodyFails) {
  rt::RecordBlock b;
  std::vector<int64_t> pos = {3, 4, 5};
  std::vector<rt::BlockRow> rows(3);
  b.stage = Stage::MlpOut;
  b.layer = 2;
  b.rowShape = {4};
  b.n = 3;
  b.positions = pos.data();
  b.rows = reinterpret_cast<const uint8_t *>(rows.data());
  std::vector<uint8_t> body;
  std::string err;
  ASSERT_TRUE(rt::encodeBlockBody(b, body, err)) << err;
  rt::BlockRows br;
  ASSERT_TRUE(rt::decodeBlockRows(body.data(), body.size(), br, err));
  EXPECT_EQ(br.n, 3u);
  EXPECT_EQ(br.position(2), 5);
  EXPECT_EQ(br.elements, 4);
  EXPECT_EQ(br.positions, nullptr); // contiguous
  for (size_t cut = 0; cut < body.size(); ++cut) {
    std::string e1, e2;
    std::vector<rt::Record> out;
    rt::BlockRows r2;
    bool ok1 = rt::decodeBlockBody(body.data(), cut, out, e1);
    bool ok2 = rt::decodeBlockRows(body.data(), cut, r2, e2);
    EXPECT_FALSE(ok1);
    EXPECT_EQ(ok1, ok2);
    EXPECT_EQ(e1, e2) << "cut at " << cut;
  }
}

TEST(BlockDiff, EveryPolicyGivesTheReportOfTheExpandedRead) {
  TraceSpec s = withLogits({});
  s.hidden = 48;
  auto base = build(s);
  s.perturb = plant(Stage::AttnOut, 1, 5, 1.01);
  auto test = build(s);
  s.perturb = nullptr;
  s.dtype = rt::DType::F64;
  auto ref = build(s);
  TempDir d;
  writeTrace(base, d.path + "/b", true);
  writeTrace(test, d.path + "/t", true);
  writeTrace(ref, d.path + "/r", true);
  writeTrace(base, d.path + "/b1", false); // record frames
  auto bk = readT(d.path + "/b", true), tk = readT(d.path + "/t", true),
       rk = readT(d.path + "/r", true);
  auto bx = readT(d.path + "/b", false), tx = readT(d.path + "/t", false),
       rx = readT(d.path + "/r", false);
  auto b1 = readT(d.path + "/b1", true);
  for (Policy p : {Policy::Exact, Policy::Tolerance, Policy::Reference}) {
    std::string expanded = report(bx, tx, opts(p), &rx);
    EXPECT_EQ(report(bk, tk, opts(p), &rk), expanded) << policyName(p);
    // Record frames on one side, block frames on the other.
    EXPECT_EQ(report(b1, tk, opts(p), &rk), expanded) << policyName(p);
    // In-memory records (as the unit tests build them).
    EXPECT_EQ(report(base, test, opts(p), &ref), expanded) << policyName(p);
  }
  std::string err;
  auto r = diffTraces(bk, tk, nullptr, opts(Policy::Exact), err);
  ASSERT_TRUE(r) << err;
  ASSERT_TRUE(r->first());
  EXPECT_EQ(r->first()->stage, Stage::AttnOut);
  EXPECT_EQ(r->first()->layer, 1);
  EXPECT_EQ(r->first()->position, 5);
  EXPECT_EQ(r->counts.aligned, static_cast<int64_t>(base.records.size()));
  // Hash-equal rows are compact; every diverging row is stored in full.
  EXPECT_LT(r->rows.storedRows().size(), r->rows.size());
  for (size_t i = 0; i < r->rows.size(); ++i) {
    if (r->rows.diverges(i)) {
      EXPECT_NE(r->rows.stored(i), nullptr);
    }
  }
}

TEST(BlockDiff, OutOfOrderBlocksAreSortedAndDuplicatesRefused) {
  auto base = build(spec());
  TraceSpec s = spec();
  s.perturb = plant(Stage::FfnNormIn, 2, 3, 1.5);
  auto test = build(s);
  TempDir d;
  writeTrace(base, d.path + "/b", true);
  // Tensors in reverse order: the blocks are visited sorted, no index.
  writeTrace(test, d.path + "/t", true, /*reverseTensors=*/true);
  // Rows in reverse position order: the sorted index.
  writeTrace(test, d.path + "/rows", true, true, false, /*reverseRows=*/true);
  writeTrace(test, d.path + "/dup", true, false, /*duplicateFirst=*/true);
  auto bk = readT(d.path + "/b", true), tk = readT(d.path + "/t", true);
  std::string expected = report(base, test, opts(Policy::Tolerance));
  EXPECT_NE(expected.find("\"stage\": \"ffn_norm_in\""), std::string::npos);
  EXPECT_EQ(report(bk, tk, opts(Policy::Tolerance)), expected);
  auto rows = readT(d.path + "/rows", true);
  EXPECT_NE(rows.blocks.front().positions, nullptr); // not contiguous
  EXPECT_EQ(report(rows, bk, opts(Policy::Tolerance)),
            report(test, base, opts(Policy::Tolerance)));
  auto dup = readT(d.path + "/dup", true);
  EXPECT_EQ(report(bk, dup, opts(Policy::Exact)),
            "error: TEST trace holds two records for residual_pre_attn layer "
            "0 position 0 (a trace must record each once)");
}

TEST(BlockDiff, DifferentLengthsSkipRowsPastTheSharedPositions) {
  TraceSpec s = spec();
  auto base = build(s);
  s.positions = {0, 1, 2, 3, 4, 5};
  s.manifest = manifest(6);
  s.perturb = plant(Stage::MlpOut, 1, 4, 2.0);
  auto test = build(s);
  TempDir d;
  writeTrace(base, d.path + "/b", true);
  writeTrace(test, d.path + "/t", true);
  Options o = opts(Policy::Tolerance);
  o.allowDifferentLengths = true;
  std::string text = report(readT(d.path + "/b", true),
                            readT(d.path + "/t", true), o);
  EXPECT_EQ(text, report(base, test, o));
  EXPECT_NE(text.find("records past them skipped"), std::string::npos) << text;
}

TEST(BlockDiff, CorruptBlockFrameStopsTheReadAtItsFirstRow) {
  auto base = build(spec());
  TempDir d;
  writeTrace(base, d.path + "/b", true);
  std::string path = d.path + "/b/records.bin";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Frame 3 (rows 24..31): flip a byte of its body, and drop the frames
  // after it, in a run that did not finish: a torn last frame. (A finished
  // run, or a valid frame after it, would make it corruption: an error.)
  size_t off = rt::kTraceFileHeaderSize;
  for (int f = 0; f < 3; ++f) {
    uint32_t len;
    std::memcpy(&len, bytes.data() + off + 4, 4);
    off += 12 + len;
  }
  uint32_t len3;
  std::memcpy(&len3, bytes.data() + off + 4, 4);
  bytes.resize(off + 12 + len3);
  bytes[off + 20] ^= 0x5a;
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << bytes;
  }
  markUnfinished(d.path + "/b");
  auto kept = readT(d.path + "/b", true), full = readT(d.path + "/b", false);
  EXPECT_EQ(kept.stopReason, "record 24 at byte " + std::to_string(off) +
                                 ": checksum mismatch");
  EXPECT_EQ(kept.stopReason, full.stopReason);
  EXPECT_EQ(kept.rowCount(), 24u);
  EXPECT_EQ(kept.validBytes, full.validBytes);
  std::string text = report(base, kept, opts(Policy::Exact));
  EXPECT_NE(text.find("TEST trace is truncated (record 24 at byte"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(24 records read)"), std::string::npos) << text;
}

TEST(RowResults, CompactRowsReadBackAsPushed) {
  RowResults rows;
  RowResult eq;
  eq.stage = Stage::AttnOut;
  eq.layer = 3;
  eq.elements = 64;
  eq.hashMatch = true;
  eq.basis = Basis::HashEqual;
  eq.precision = Precision::F16;
  eq.tolerance = defaultTolerance(Precision::F16);
  RowResult bad = eq;
  bad.hashMatch = false;
  bad.basis = Basis::Hash;
  bad.diverges = true;
  bad.note = "why";
  std::vector<RowResult> pushed;
  for (int64_t p = 0; p < 10; ++p) {
    RowResult r = p == 7 ? bad : eq;
    r.position = p;
    if (p >= 5)
      r.layer = 4; // another kind
    rows.push_back(r);
    pushed.push_back(r);
  }
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(rows.storedRows().size(), 1u);
  EXPECT_EQ(rows.storedIndex(0), 7u);
  for (size_t i = 0; i < 10; ++i) {
    RowResult r = rows[i];
    EXPECT_EQ(r.position, pushed[i].position);
    EXPECT_EQ(r.layer, pushed[i].layer);
    EXPECT_EQ(r.stage, pushed[i].stage);
    EXPECT_EQ(r.hashMatch, pushed[i].hashMatch);
    EXPECT_EQ(r.basis, pushed[i].basis);
    EXPECT_EQ(r.precision, pushed[i].precision);
    EXPECT_EQ(r.tolerance.rtol, pushed[i].tolerance.rtol);
    EXPECT_EQ(r.note, pushed[i].note);
    EXPECT_EQ(rows.diverges(i), i == 7);
    EXPECT_EQ(rows.stored(i) != nullptr, i == 7);
  }
  size_t n = 0;
  for (const RowResult &r : rows)
    EXPECT_EQ(r.position, static_cast<int64_t>(n++));
  EXPECT_EQ(n, 10u);
  rows.resize(6);
  EXPECT_EQ(rows.size(), 6u);
  EXPECT_TRUE(rows.storedRows().empty());
  rows.resize(8); // default rows, stored in full
  EXPECT_NE(rows.stored(7), nullptr);
  EXPECT_EQ(rows.back().position, 0);
}

} // namespace

//===- TracePythonTest.cpp - The Python reader agrees with the C++ one --*- C++ -*-===//
#include "TraceTestUtil.h"

#include <gtest/gtest.h>

using namespace greta::rt;

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

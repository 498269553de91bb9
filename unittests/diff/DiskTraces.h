//===- DiskTraces.h - Traces on disk for the greta-diff unit tests -*- C++
//-*-===//
//
// Writes in-memory traces (TestTraces.h) to trace directories as record or
// block frames, in order or not, and reads them back.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_TEST_UNIT_DIFF_DISKTRACES_H
#define GRETA_TEST_UNIT_DIFF_DISKTRACES_H

#include "greta/rt/Trace.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace greta::difftest {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/greta-blockdiff-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

/// Writes `t` to `dir`: consecutive records of one (stage, layer) as one
/// block (appendBlock), or one record frame each; blocks may be written in
/// reverse tensor order, with their rows in reverse position order, or with
/// the first tensor again at the end.
void writeTrace(const rt::TraceContents &t, const std::string &dir, bool blocks,
                bool reverseTensors = false, bool duplicateFirst = false,
                bool reverseRows = false) {
  std::string err;
  auto w = rt::TraceWriter::create(dir, t.manifest, true, err);
  ASSERT_TRUE(w) << err;
  if (!blocks) {
    for (const rt::Record &r : t.records)
      ASSERT_TRUE(w->append(r, err)) << err;
    ASSERT_TRUE(w->finish(err)) << err;
    return;
  }
  std::vector<std::pair<size_t, size_t>> groups; // [first, last)
  for (size_t i = 0; i < t.records.size();) {
    size_t j = i;
    while (j < t.records.size() && t.records[j].stage == t.records[i].stage &&
           t.records[j].layer == t.records[i].layer)
      ++j;
    groups.push_back({i, j});
    i = j;
  }
  if (reverseTensors)
    std::reverse(groups.begin(), groups.end());
  if (duplicateFirst)
    groups.push_back(groups.front());
  for (auto [a, b] : groups) {
    const rt::Record &r0 = t.records[a];
    std::vector<int64_t> pos;
    std::vector<rt::BlockRow> rows;
    std::vector<int32_t> ids;
    std::vector<uint8_t> values;
    for (size_t x = a; x < b; ++x) {
      size_t i = reverseRows ? b - 1 - (x - a) : x;
      const rt::Record &r = t.records[i];
      rows.push_back(rt::toBlockRow(r));
      pos.push_back(r.position);
      for (int k = 0; k < 5; ++k)
        ids.push_back(k < static_cast<int>(r.top5.size()) ? r.top5[k] : -1);
      values.insert(values.end(), r.values.begin(), r.values.end());
    }
    rt::RecordBlock blk;
    blk.stage = r0.stage;
    blk.layer = r0.layer;
    blk.dtype = r0.dtype;
    blk.payload = r0.payload;
    blk.rowShape = r0.shape;
    blk.n = static_cast<int64_t>(b - a);
    blk.positions = pos.data();
    blk.rows = reinterpret_cast<const uint8_t *>(rows.data());
    blk.topIds = ids.data();
    blk.topK = 5;
    blk.values = values.data();
    ASSERT_TRUE(w->appendBlock(blk, err)) << err;
  }
  ASSERT_TRUE(w->finish(err)) << err;
}

/// Rewrites `dir`'s manifest as a run that did not finish would leave it.
void markUnfinished(const std::string &dir) {
  std::string path = dir + "/manifest.json";
  std::ifstream in(path);
  nlohmann::json m = nlohmann::json::parse(in);
  m["complete"] = false;
  std::ofstream(path, std::ios::trunc) << m.dump(2);
}


} // namespace
} // namespace greta::difftest

#endif // GRETA_TEST_UNIT_DIFF_DISKTRACES_H

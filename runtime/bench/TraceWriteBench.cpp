//===- TraceWriteBench.cpp - Record frames against block frames -*- C++ -*-===//
//
// The trace writer's cost per row: TraceWriter::append (one record frame a
// row) against TraceWriter::appendBlock (block frames, 16384 rows a block:
// one traced tensor of a 16K-token run, entries 88 bytes apart as the GPU
// runtime passes them), for hash and stats payloads of rows of 2048
// elements. Times append/appendBlock plus the final flush (write(2) into
// the page cache), not finish()'s fsync: wall time, and the process's user
// and system CPU time (system: mostly write(2) copying into the page
// cache); then readTrace of each file. Rows are prepared beforehand: only
// the writer is timed.
//
//   greta-trace-bench [ROWS (default 1048576)] [REPEATS (default 5)] [DIR]
//
// Prints one line per case, the median of the repeats.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Trace.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace greta::rt;
using Clock = std::chrono::steady_clock;

namespace {
constexpr int64_t kBlockRows = 16384;
constexpr int64_t kHidden = 2048;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

Manifest manifest() {
  Manifest m;
  m.model = "trace-write-bench";
  m.tokenCount = kBlockRows;
  m.backend = "gpu";
  m.precision = "f16";
  return m;
}

void die(const std::string &what) {
  std::fprintf(stderr, "greta-trace-bench: %s\n", what.c_str());
  std::exit(1);
}

struct Result {
  double writeS = 0, userS = 0, sysS = 0, readS = 0;
  uint64_t bytes = 0;
};

/// User and system CPU seconds of this process so far.
std::pair<double, double> cpuTimes() {
  struct rusage u;
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval &t) { return t.tv_sec + 1e-6 * t.tv_usec; };
  return {s(u.ru_utime), s(u.ru_stime)};
}

/// Writes `rows` rows of `payload` with record frames or block frames.
Result run(const std::string &dir, int64_t rows, Payload payload, bool blocks,
           const std::vector<BlockRow> &entries,
           const std::vector<int64_t> &positions) {
  std::string err;
  auto w = TraceWriter::create(dir, manifest(), /*overwrite=*/true, err);
  if (!w)
    die(err);
  Record r;
  r.stage = Stage::AttnOut;
  r.dtype = DType::F16;
  r.payload = payload;
  r.shape = {kHidden};
  RecordBlock b;
  b.stage = Stage::AttnOut;
  b.dtype = DType::F16;
  b.payload = payload;
  b.rowShape = {kHidden};
  b.rowStride = sizeof(BlockRow);
  auto c0 = cpuTimes();
  auto t0 = Clock::now();
  for (int64_t first = 0; first < rows; first += kBlockRows) {
    int64_t n = std::min(kBlockRows, rows - first);
    int64_t layer = first / kBlockRows;
    if (blocks) {
      b.layer = layer;
      b.n = n;
      b.positions = positions.data();
      b.rows = reinterpret_cast<const uint8_t *>(entries.data() + first);
      if (!w->appendBlock(b, err))
        die(err);
      continue;
    }
    r.layer = layer;
    for (int64_t j = 0; j < n; ++j) {
      const BlockRow &e = entries[first + j];
      r.position = positions[j];
      std::memcpy(r.sha256.data(), e.sha256, 32);
      r.nzCount = e.nzCount;
      if (payload != Payload::Hash) {
        r.nanCount = e.nanCount;
        r.infCount = e.infCount;
        r.fingerprint = {e.min, e.max, e.mean, e.l2};
      }
      if (!w->append(r, err))
        die(err);
    }
  }
  if (!w->flush(err))
    die(err);
  auto t1 = Clock::now();
  auto c1 = cpuTimes();
  Result res;
  res.writeS = seconds(t0, t1);
  res.userS = c1.first - c0.first;
  res.sysS = c1.second - c0.second;
  if (!w->finish(err))
    die(err);
  res.bytes = w->bytesWritten();
  if (w->recordsWritten() != static_cast<uint64_t>(rows))
    die("recordsWritten disagrees");
  w.reset();
  auto t2 = Clock::now();
  auto tc = readTrace(dir, err);
  auto t3 = Clock::now();
  if (!tc || tc->records.size() != static_cast<size_t>(rows) ||
      !tc->stopReason.empty())
    die("read back: " + (tc ? tc->stopReason : err));
  res.readS = seconds(t2, t3);
  return res;
}
} // namespace

int main(int argc, char **argv) {
  int64_t rows = argc > 1 ? std::atoll(argv[1]) : int64_t(1) << 20;
  int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  std::string dir;
  if (argc > 3) {
    dir = argv[3];
  } else {
    char tmpl[] = "/tmp/greta-trace-bench-XXXXXX";
    if (!::mkdtemp(tmpl))
      die("mkdtemp failed");
    dir = tmpl;
  }
  if (rows <= 0 || repeats <= 0)
    die("usage: greta-trace-bench [ROWS] [REPEATS] [DIR]");

  // Distinct digests and statistics per row, as a GPU run produces them.
  std::vector<BlockRow> entries(static_cast<size_t>(rows));
  uint64_t s = 0x9e3779b97f4a7c15ull;
  for (int64_t i = 0; i < rows; ++i) {
    BlockRow &e = entries[i];
    for (int k = 0; k < 32; k += 8) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      std::memcpy(e.sha256 + k, &s, 8);
    }
    e.nzCount = kHidden - i % 7;
    e.nanCount = 0;
    e.infCount = i % 3 == 0;
    e.min = -1.0 - i % 5;
    e.max = 1.0 + i % 11;
    e.mean = 0.001 * (i % 13);
    e.l2 = 20.0 + i % 17;
  }
  std::vector<int64_t> positions(kBlockRows);
  for (int64_t j = 0; j < kBlockRows; ++j)
    positions[j] = j;

  std::printf("greta-trace-bench: %lld rows of %lld elements (f16), blocks of "
              "%lld rows, median of %d; dir %s\n",
              static_cast<long long>(rows), static_cast<long long>(kHidden),
              static_cast<long long>(kBlockRows), repeats, dir.c_str());
  std::printf("%-8s %-12s %13s %12s %12s %12s %12s %10s\n", "payload", "frames",
              "write ns/row", "(user", "sys)", "read ns/row", "file bytes",
              "bytes/row");
  for (Payload payload : {Payload::Hash, Payload::Stats}) {
    for (bool blocks : {false, true}) {
      std::vector<double> w, u, sy, r;
      uint64_t bytes = 0;
      for (int i = 0; i < repeats; ++i) {
        Result res = run(dir, rows, payload, blocks, entries, positions);
        w.push_back(res.writeS);
        u.push_back(res.userS);
        sy.push_back(res.sysS);
        r.push_back(res.readS);
        bytes = res.bytes;
      }
      for (auto *v : {&w, &u, &sy, &r})
        std::sort(v->begin(), v->end());
      double scale = 1e9 / static_cast<double>(rows);
      size_t mid = w.size() / 2;
      std::printf("%-8s %-12s %13.1f %12.1f %12.1f %12.1f %12llu %10.1f\n",
                  payload == Payload::Hash ? "hash" : "stats",
                  blocks ? "appendBlock" : "append", w[mid] * scale,
                  u[mid] * scale, sy[mid] * scale, r[mid] * scale,
                  static_cast<unsigned long long>(bytes),
                  static_cast<double>(bytes) / static_cast<double>(rows));
    }
  }
  std::string cleanup = "rm -rf '" + dir + "'";
  if (argc <= 3 && std::system(cleanup.c_str()) != 0)
    std::fprintf(stderr, "greta-trace-bench: could not remove %s\n",
                 dir.c_str());
  return 0;
}

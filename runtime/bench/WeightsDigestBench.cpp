//===- WeightsDigestBench.cpp - The weights digest's cost -------*- C++ -*-===//
//
// Times digestWeights (WeightsDigest.h: every value widened to f64 and
// hashed) on a safetensors file, on 1 thread and on every core (wall and
// process CPU time), against the peer measured in the same run: SHA-256 of
// the tensors' bytes as stored (what hashing the file would cost), one
// thread; then the cached lookup that later runs pay. The file is read once
// first, so the page cache holds it and the hashing is timed, not the disk.
//
//   greta-weights-digest-bench FILE [CACHE_DIR]
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Cache.h"
#include "greta/rt/Sha256.h"
#include "greta/rt/Weights.h"
#include "greta/rt/WeightsDigest.h"

#include <chrono>
#include <ctime>
#include <cstdio>
#include <string>
#include <thread>

using namespace greta::rt;

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [CACHE_DIR]\n", argv[0]);
    return 2;
  }
  std::string error;
  auto weights = SafeTensors::open(argv[1], error);
  if (!weights) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  size_t bytes = 0, values = 0;
  volatile uint8_t sink = 0;
  for (const auto &[name, t] : weights->tensors()) {
    bytes += t.bytes;
    values += t.bytes / dtypeSize(t.dtype);
    for (size_t i = 0; i < t.bytes; i += 4096) // into the page cache
      sink = sink + t.data[i];
  }
  std::printf("%s: %zu tensors, %.2f GB stored, %.2f GB as f64\n", argv[1],
              weights->tensors().size(), bytes / 1e9, values * 8 / 1e9);
  struct Timing {
    double wall, cpu;
  };
  auto timed = [](auto &&work) {
    auto start = std::chrono::steady_clock::now();
    std::clock_t cpuStart = std::clock();
    work();
    return Timing{std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - start)
                      .count(),
                  double(std::clock() - cpuStart) / CLOCKS_PER_SEC};
  };
  Timing peer = timed([&] {
    Sha256Stream sha;
    for (const auto &[name, t] : weights->tensors())
      sha.update(t.data, t.bytes);
    sha.finalHex();
  });
  unsigned cores = std::thread::hardware_concurrency();
  std::string whole;
  Timing one = timed([&] { whole = digestWeights(*weights, 1).whole; });
  Timing all = timed([&] { digestWeights(*weights, cores); });
  std::printf("| step | threads | wall s | CPU s | GB/s per CPU s | CPU / peer |\n"
              "|---|---|---|---|---|---|\n");
  auto row = [&](const char *what, unsigned threads, Timing t, double gb) {
    std::printf("| %s | %u | %.3f | %.3f | %.2f | %.2fx |\n", what, threads,
                t.wall, t.cpu, gb / t.cpu, t.cpu / peer.cpu);
  };
  row("SHA-256 of the stored bytes (peer)", 1, peer, bytes / 1e9);
  row("weights digest (f64 values)", 1, one, values * 8 / 1e9);
  row("weights digest (f64 values)", cores, all, values * 8 / 1e9);
  std::printf("digest %s\n", whole.c_str());
  if (argc > 2 && openCacheDir(argv[2], error)) {
    std::string warning;
    digestWeightsCached(*weights, argv[2], warning); // fills the cache
    auto start = std::chrono::steady_clock::now();
    digestWeightsCached(*weights, argv[2], warning);
    std::printf("cached lookup: %.4f s\n",
                std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count());
  }
  return 0;
}

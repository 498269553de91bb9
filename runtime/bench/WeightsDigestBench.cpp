//===- WeightsDigestBench.cpp - The weights digest's cost -------*- C++ -*-===//
//
// Times digestWeights (WeightsDigest.h: every value widened to f64 and
// hashed) on a safetensors file, on 1 thread and on every core (wall and
// process CPU time), and the cached lookup that later runs pay. The file is read once first, so the
// page cache holds it and the hashing is timed, not the disk.
//
//   greta-weights-digest-bench FILE [CACHE_DIR]
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Cache.h"
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
  auto time = [&](unsigned threads) {
    auto start = std::chrono::steady_clock::now();
    std::clock_t cpuStart = std::clock();
    WeightsDigest d = digestWeights(*weights, threads);
    double cpu = double(std::clock() - cpuStart) / CLOCKS_PER_SEC;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             start)
                   .count();
    std::printf("digest on %u thread(s): %.3f s wall, %.3f s CPU (%.2f GB/s "
                "of f64 per CPU second), %s\n",
                threads, s, cpu, values * 8 / 1e9 / cpu, d.whole.c_str());
  };
  time(1);
  time(std::thread::hardware_concurrency());
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

//===- TokenizerBench.cpp - Encode speed of a tokenizer on a corpus -*- C++
//-*-===//
//
//   greta-tokenizer-bench TOKENIZER CORPUS.jsonl [REPEATS]
// Encodes every text of the corpus (one JSON string a line): once from a
// fresh tokenizer (cold: every word merged for the first time), then
// REPEATS times (warm: the merge cache filled, as in a long run). Prints one
// JSON line: bytes, tokens, load_s, cold_s, warm_s (the best pass), each
// wall time, and cold_cpu_s/warm_cpu_s (this thread's CPU time). See
// bench/tokenizer/run.sh.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Tokenizer.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>

namespace {
double wall() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
double cpu() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}
} // namespace

int main(int argc, char **argv) {
  if (argc < 3) {
    std::cerr << "usage: greta-tokenizer-bench TOKENIZER CORPUS.jsonl "
                 "[REPEATS]\n";
    return 2;
  }
  int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  std::ifstream in(argv[2]);
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty())
      continue;
    texts.push_back(nlohmann::json::parse(line).get<std::string>());
    bytes += texts.back().size();
  }
  std::string error;
  double t0 = wall();
  auto tokenizer = greta::rt::Tokenizer::load(argv[1], error);
  if (!tokenizer) {
    std::cerr << "greta-tokenizer-bench: error: " << error << "\n";
    return 2;
  }
  double load = wall() - t0;
  std::vector<int64_t> ids;
  size_t tokens = 0;
  auto pass = [&](double &w, double &c) {
    double w0 = wall(), c0 = cpu();
    tokens = 0;
    for (const std::string &t : texts) {
      ids.clear();
      if (!tokenizer->encode(t, ids, error)) {
        std::cerr << "greta-tokenizer-bench: error: " << error << "\n";
        std::exit(2);
      }
      tokens += ids.size();
    }
    w = wall() - w0;
    c = cpu() - c0;
  };
  double coldW, coldC, warmW = 1e30, warmC = 1e30;
  pass(coldW, coldC);
  for (int r = 0; r < repeats; ++r) {
    double w, c;
    pass(w, c);
    warmW = std::min(warmW, w);
    warmC = std::min(warmC, c);
  }
  std::cout << nlohmann::json{{"bytes", bytes},      {"tokens", tokens},
                              {"load_s", load},      {"cold_s", coldW},
                              {"cold_cpu_s", coldC}, {"warm_s", warmW},
                              {"warm_cpu_s", warmC}}
                   .dump()
            << "\n";
  return 0;
}

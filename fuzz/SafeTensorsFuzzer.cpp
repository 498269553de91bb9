//===- SafeTensorsFuzzer.cpp - rt::SafeTensors::open on arbitrary bytes ---===//
//
// The input is the whole file. Every tensor open() accepts is then read the
// way greta-run reads it (convertTensor to f32 and f64, digest), so an
// accepted header whose offsets or sizes lie is caught by ASan.
//
//===----------------------------------------------------------------------===//
#include "FuzzUtil.h"
#include "greta/rt/Weights.h"
#include "greta/rt/WeightsDigest.h"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string path =
      greta::fuzz::scratchDir() + "/input.safetensors";
  greta::fuzz::writeFile(path, data, size);
  std::string error;
  auto st = greta::rt::SafeTensors::open(path, error);
  if (!st) {
    if (error.empty())
      __builtin_trap(); // a failure must always say why
    return 0;
  }
  for (const auto &[name, t] : st->tensors()) {
    if (st->find(name) != &t)
      __builtin_trap();
    size_t n = t.bytes / greta::rt::dtypeSize(t.dtype);
    if (n > (size_t(1) << 24))
      continue; // inputs are small; a lie would have been caught by open()
    std::vector<float> f(n);
    std::vector<double> d(n);
    greta::rt::convertTensor(t, f.data());
    greta::rt::convertTensor(t, d.data());
  }
  (void)greta::rt::digestWeights(*st, /*threads=*/1);
  return 0;
}

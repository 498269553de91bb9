//===- WeightsDigest.cpp - Weights identified by their values ---*- C++ -*-===//
#include "greta/rt/WeightsDigest.h"
#include "greta/rt/Sha256.h"
#include "greta/rt/Cache.h"
#include "greta/rt/Weights.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <thread>

using namespace greta::rt;
using json = nlohmann::json;

namespace {
static_assert(sizeof(double) == 8, "values are hashed as IEEE binary64");

std::array<uint8_t, 32> digestTensor(const TensorInfo &t) {
  Sha256Stream sha;
  sha.updateName(t.name);
  sha.updateU64(t.shape.size());
  for (int64_t d : t.shape)
    sha.updateU64(static_cast<uint64_t>(d));
  size_t count = t.bytes / dtypeSize(t.dtype);
  if (t.dtype == DType::F64) {
    // Already the hashed form (the runtime targets little-endian hosts).
    sha.update(t.data, t.bytes);
    return sha.finish();
  }
  // Widen a slice at a time: the f64 copy of a whole tensor would double
  // the memory of the largest one.
  constexpr size_t kSlice = 1 << 15;
  std::vector<double> wide(std::min(count, kSlice));
  size_t es = dtypeSize(t.dtype);
  for (size_t begin = 0; begin < count; begin += kSlice) {
    size_t n = std::min(kSlice, count - begin);
    TensorInfo slice = t;
    slice.data = t.data + begin * es;
    slice.bytes = n * es;
    convertTensor(slice, wide.data());
    sha.update(wide.data(), n * sizeof(double));
  }
  return sha.finish();
}
} // namespace

std::string greta::rt::digestTensorHex(const TensorInfo &t) {
  std::array<uint8_t, 32> d = digestTensor(t);
  return toHex(d.data(), d.size());
}

std::string greta::rt::combineTensorDigests(
    const std::vector<std::pair<std::string, std::string>> &tensors) {
  Sha256Stream sha;
  for (const auto &[name, hex] : tensors) {
    if (!isHexDigest(hex))
      return "";
    uint8_t raw[32];
    for (int i = 0; i < 32; ++i)
      raw[i] =
          static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
    sha.updateName(name);
    sha.update(raw, 32);
  }
  std::array<uint8_t, 32> d = sha.finish();
  return toHex(d.data(), d.size());
}

WeightsDigest greta::rt::digestWeights(const SafeTensors &weights,
                                       unsigned threads) {
  std::vector<const TensorInfo *> order; // by name
  for (const auto &[name, info] : weights.tensors())
    order.push_back(&info);
  // Largest first: the last tensor a thread takes is a small one.
  std::vector<size_t> bySize(order.size());
  std::iota(bySize.begin(), bySize.end(), 0);
  std::stable_sort(bySize.begin(), bySize.end(), [&](size_t a, size_t b) {
    return order[a]->bytes > order[b]->bytes;
  });
  std::vector<std::array<uint8_t, 32>> digests(order.size());
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min<unsigned>(threads, std::max<size_t>(1, order.size()));
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < bySize.size();)
      digests[bySize[k]] = digestTensor(*order[bySize[k]]);
  };
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i)
    pool.emplace_back(work);
  work();
  for (std::thread &t : pool)
    t.join();

  WeightsDigest result;
  for (size_t i = 0; i < order.size(); ++i)
    result.tensors.push_back(
        {order[i]->name, toHex(digests[i].data(), digests[i].size())});
  result.whole = combineTensorDigests(result.tensors);
  return result;
}

WeightsDigest greta::rt::digestWeightsCached(const SafeTensors &weights,
                                             const std::string &cacheDir,
                                             std::string &warning) {
  if (cacheDir.empty())
    return digestWeights(weights);
  std::string identity = weights.identity().str();
  std::string name = "weights-" +
                     sha256Hex(identity.data(), identity.size()).substr(0, 32) +
                     ".json";
  // An entry is used only if it names this very file state and its whole
  // digest is the one its tensor digests give.
  if (auto text = readCacheFile(cacheDir, name, 64 << 20)) {
    json j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.value("identity", "") == identity &&
        j.contains("tensors") && j["tensors"].is_array()) {
      WeightsDigest cached;
      cached.whole = j.value("whole", "");
      bool ok = true;
      for (const json &t : j["tensors"]) {
        if (!t.is_array() || t.size() != 2 || !t[0].is_string() ||
            !t[1].is_string()) {
          ok = false;
          break;
        }
        cached.tensors.push_back(
            {t[0].get<std::string>(), t[1].get<std::string>()});
      }
      if (ok && cached.tensors.size() == weights.tensors().size() &&
          std::is_sorted(cached.tensors.begin(), cached.tensors.end()) &&
          isHexDigest(cached.whole) &&
          combineTensorDigests(cached.tensors) == cached.whole)
        return cached;
    }
  }
  WeightsDigest digest = digestWeights(weights);
  json entry = {{"identity", identity}, {"whole", digest.whole}};
  entry["tensors"] = json::array();
  for (const auto &[tensor, hex] : digest.tensors)
    entry["tensors"].push_back({tensor, hex});
  std::string error;
  if (!writeCacheFile(cacheDir, name, entry.dump() + "\n", error))
    warning = "cannot cache the weights digest: " + error;
  return digest;
}

//===- AotObject.cpp - A model compiled ahead of time ---------------------===//
#include "greta/rt/AotObject.h"
#include "greta/rt/Sha256.h"

#include <nlohmann/json.hpp>

#include <dlfcn.h>
#include <fstream>
#include <sstream>

using namespace greta::rt;
using json = nlohmann::json;

namespace {
bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
std::string stem(const std::string &path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  size_t dot = base.find_last_of('.');
  return dot == std::string::npos ? base : base.substr(0, dot);
}
std::optional<int64_t> intField(const json &meta, const char *name) {
  if (meta.contains(name))
    return meta[name].get<int64_t>();
  return std::nullopt;
}
} // namespace

bool AotObject::load(const std::string &model, const std::string &so,
                     const RunOptions &o, bool gpuRuntime, std::string &error) {
  auto fail = [&](const std::string &message) {
    error = message;
    return false;
  };
  // The object: MODEL.so, or MODEL.mlir with --so.
  path = so.empty() ? model : so;
  if (so.empty() && !endsWith(model, ".so"))
    return fail("MODEL must be a shared object written by greta-compile, or "
                "give it with --so (got " +
                model + ")");
  // Lazy binding first, to read the metadata even when this runner lacks
  // the object's C ABI (a GPU object in a CPU-only build): the checks below
  // then say what is wrong. The object is bound fully afterwards.
  // dlopen looks a name without '/' up in the loader's search path, not in
  // the current directory: `greta-run-aot m.so` means ./m.so.
  std::string loadPath =
      path.find('/') == std::string::npos ? "./" + path : path;
  void *handle = dlopen(loadPath.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!handle)
    return fail("cannot load " + path + ": " + dlerror());
  auto *metaText =
      static_cast<const char *>(dlsym(handle, "greta_aot_metadata"));
  forward = dlsym(handle, "_mlir_ciface_forward");
  if (!metaText || !forward)
    return fail(path + " was not written by greta-compile (no "
                       "greta_aot_metadata or _mlir_ciface_forward)");
  json meta;
  try {
    meta = json::parse(metaText);
  } catch (const std::exception &e) {
    return fail(path + ": unreadable greta_aot_metadata: " + e.what());
  }
  backend = meta.value("backend", "");
  precision = meta.value("precision", "");
  modelName = meta.value("model", stem(path));
  modelDigest = meta.value("model_digest", "");
  pipeline = meta.value("pipeline", "");
  if (!so.empty()) {
    // The source model must be the one the object was compiled from.
    std::ifstream in(model, std::ios::binary);
    if (!in)
      return fail("cannot read model " + model);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    if (sha256Hex(text.data(), text.size()) != modelDigest)
      return fail(path + " was not compiled from " + model +
                  " (model digests differ): recompile it with greta-compile");
  }
  if (!o.precision.empty() && o.precision != precision)
    return fail("--precision " + o.precision + ": " + path +
                " was compiled for " + precision);
  if (!o.backend.empty() && o.backend != backend)
    return fail("--backend " + o.backend + ": " + path +
                " was compiled for the " + backend + " backend");
  bool isGpu = backend == "gpu";
  if (!isGpu && backend != "cpu")
    return fail(path + ": unknown backend '" + backend + "'");
  if (!isGpu && !o.kernels.empty())
    return fail("--kernel selects GPU kernel variants; " + path +
                " was compiled for the CPU");
  if (isGpu && !gpuRuntime)
    return fail(path + " was compiled for the GPU, but this greta-run-aot "
                       "was built without GPU support (configure with "
                       "-DGRETA_GPU=cuda)");
  dlclose(handle);
  handle = dlopen(loadPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle || !(forward = dlsym(handle, "_mlir_ciface_forward")))
    return fail("cannot load " + path + ": " + dlerror());

  for (const json &p : meta.value("params", json::array()))
    params.push_back({p.at("name").get<std::string>(),
                      p.at("shape").get<std::vector<int64_t>>()});
  limits.vocabSize = intField(meta, "vocab_size");
  limits.maxPositions = intField(meta, "max_position_embeddings");
  limits.numLayers = intField(meta, "num_layers");
  for (const json &from : meta.value("fault_from_positions", json::array()))
    if (from.is_number_integer())
      limits.faultFromPositions.push_back(from.get<int64_t>());
  limits.faultSource = path;
  limits.faultNote = " (its --pass-pipeline)";
  return true;
}

//===- greta-run-aot.cpp - Run a model compiled ahead of time ---*- C++ -*-===//
//
// greta-run without LLVM: loads a shared object written by greta-compile
// (dlopen), reads its `greta_aot_metadata` (parameters, backend, precision,
// vocabulary, ...), and drives `_mlir_ciface_forward` with the runtime's
// Session (CPU objects) or the GPU session of runtime/gpu (GPU objects).
// Flags and output are greta-run's where they apply, so greta-bisect can
// drive it (--greta-run greta-run-aot, RUN FLAGS "--so model.so").
//
//   greta-run-aot MODEL.so --weights W --prompt P [--trace-dir D] ...
//   greta-run-aot MODEL.mlir --so MODEL.so ...   (checks that MODEL.so was
//                                                  compiled from MODEL.mlir)
//
// Exit codes: 0 ok, 2 error.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/CInterface.h"
#include "greta/rt/Cache.h"
#include "greta/rt/Filter.h"
#include "greta/rt/Half.h"
#include "greta/rt/Prompt.h"
#include "greta/rt/RunStarted.h"
#include "greta/rt/Session.h"
#include "greta/rt/Tokenizer.h"
#include "greta/rt/Trace.h"
#include "greta/rt/Weights.h"
#include "greta/tools/CLI.h"
#include "greta/rt/WeightsDigest.h"
#ifdef GRETA_HAVE_GPU_RUNTIME
#include "greta/gpu/GpuSession.h"
#include "greta/gpu/Kernels.h"
#endif

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dlfcn.h>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#ifndef GRETA_VERSION
#define GRETA_VERSION "unknown"
#endif

namespace rt = ::greta::rt;
using json = nlohmann::json;

namespace {
struct Options {
  std::string model, so, weights, prompt, traceDir, layers, stages, positions,
      payload, precision, backend, patchFrom, patch, cacheDir, tokenizer;
  std::optional<std::string> promptText;
  bool overwrite = false, timing = false, jsonOut = false, printLogits = false,
       noCache = false, listKernels = false, dryRun = false;
  int64_t chunk = 0, repeat = 1;
  int device = 0;
  std::vector<std::string> kernels;
};

#ifndef GRETA_TOOL_NAME
#define GRETA_TOOL_NAME "greta-run-aot"
#endif
int fail(const std::string &message) {
  std::cerr << GRETA_TOOL_NAME ": error: " << message << "\n";
  return 2;
}

using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string hex(const unsigned char *d, size_t n) {
  static const char *digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s.push_back(digits[d[i] >> 4]);
    s.push_back(digits[d[i] & 15]);
  }
  return s;
}
std::string sha256Hex(const void *data, size_t n) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(static_cast<const unsigned char *>(data), n, d);
  return hex(d, sizeof d);
}
bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
std::string stem(const std::string &path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  size_t dot = base.find_last_of('.');
  return dot == std::string::npos ? base : base.substr(0, dot);
}

using IdsRef = GRETA_MEMREF(int64_t, 1);
template <typename T> using Logits = GRETA_MEMREF(T, 2);
template <typename T>
using ForwardFn = void (*)(Logits<T> *, IdsRef *, IdsRef *);

std::vector<std::pair<int64_t, double>> top5(const std::vector<double> &row) {
  int64_t n = static_cast<int64_t>(row.size());
  std::vector<int64_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  int64_t k = std::min<int64_t>(5, n);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int64_t a, int64_t b) {
                      return row[a] > row[b] || (row[a] == row[b] && a < b);
                    });
  std::vector<std::pair<int64_t, double>> out;
  for (int64_t i = 0; i < k; ++i)
    out.push_back({ids[i], row[ids[i]]});
  return out;
}

class Runner {
public:
  explicit Runner(Options o) : o(std::move(o)) {}
  int run();

private:
  template <typename T> int executeCpu();
  template <typename T> int executeGpu();
  int finishReport();

  Options o;
  json meta;
  void *forward = nullptr;
  std::vector<int64_t> tokens;
  std::optional<rt::Prompt> prompt;
  std::unique_ptr<rt::SafeTensors> weights;
  std::unique_ptr<rt::Session> session;
#ifdef GRETA_HAVE_GPU_RUNTIME
  std::unique_ptr<greta::gpu::GpuSession> gpu;
#endif
  std::unique_ptr<rt::TraceWriter> writer;
  rt::Filter filter;
  std::string backend, precision, modelName;
  double loadSeconds = 0, forwardSeconds = 0;
  std::vector<double> repeatSeconds; // --repeat: each forward, in order
  int64_t rowsPatched = 0;
  int64_t calls = 0;
  // The last position's logits, as stored, and as doubles.
  std::vector<uint8_t> lastBytes;
  std::vector<double> lastRow;
  rt::DType logitsType = rt::DType::F32;
};

template <typename T> int Runner::executeCpu() {
  auto fn = reinterpret_cast<ForwardFn<T>>(forward);
  int64_t n = static_cast<int64_t>(tokens.size());
  int64_t chunk = o.chunk > 0 ? o.chunk : n;
  std::vector<int64_t> positions(n);
  std::iota(positions.begin(), positions.end(), 0);
  auto start = Clock::now();
  for (int64_t begin = 0; begin < n; begin += chunk) {
    int64_t len = std::min(chunk, n - begin);
    IdsRef ids{tokens.data(), tokens.data() + begin, 0, {len}, {1}};
    IdsRef pos{positions.data(), positions.data() + begin, 0, {len}, {1}};
    session->setPositions(std::vector<int64_t>(
        positions.begin() + begin, positions.begin() + begin + len));
    Logits<T> out{};
    fn(&out, &ids, &pos);
    ++calls;
    bool flushed = session->endCall();
    if (out.sizes[0] == len && out.sizes[1] > 0) {
      int64_t vocab = out.sizes[1];
      const T *row = out.data + out.offset + (len - 1) * out.strides[0];
      lastBytes.assign(vocab * sizeof(T), 0);
      lastRow.assign(vocab, 0);
      for (int64_t j = 0; j < vocab; ++j) {
        T v = row[j * out.strides[1]];
        std::memcpy(lastBytes.data() + j * sizeof(T), &v, sizeof(T));
        lastRow[j] = static_cast<double>(v);
      }
    }
    free(out.basePtr);
    if (!session->error().empty() || !flushed)
      return fail("run stopped at positions [" + std::to_string(begin) + ", " +
                  std::to_string(begin + len) + "): " + session->error() +
                  (writer ? " (the records written before this error are "
                            "kept in " + o.traceDir + ")"
                          : ""));
  }
  forwardSeconds = secondsSince(start);
  logitsType = sizeof(T) == 8 ? rt::DType::F64 : rt::DType::F32;
  return 0;
}

#ifdef GRETA_HAVE_GPU_RUNTIME
template <typename T> int Runner::executeGpu() {
  // T: the storage word (uint16_t for f16/bf16, float for f32).
  auto fn = reinterpret_cast<ForwardFn<T>>(forward);
  int64_t n = static_cast<int64_t>(tokens.size());
  int64_t chunk = o.chunk > 0 ? o.chunk : n;
  std::vector<int64_t> positions(n);
  std::iota(positions.begin(), positions.end(), 0);
  auto start = Clock::now();
  for (int64_t begin = 0; begin < n; begin += chunk) {
    int64_t len = std::min(chunk, n - begin);
    Logits<T> out{};
    if (gpu->beginCall(tokens.data() + begin, positions.data() + begin, len)) {
      // Descriptors of the device copies: the host never reads them.
      auto *dIds = const_cast<int64_t *>(gpu->dTokens());
      auto *dPos = const_cast<int64_t *>(gpu->dPositions());
      IdsRef ids{dIds, dIds, 0, {len}, {1}};
      IdsRef pos{dPos, dPos, 0, {len}, {1}};
      fn(&out, &ids, &pos);
      ++calls;
    }
    bool ok = gpu->endCall();
    if (ok && out.data && out.sizes[0] == len && out.sizes[1] > 0 &&
        out.strides[1] == 1) {
      int64_t vocab = out.sizes[1];
      lastBytes.assign(vocab * sizeof(T), 0);
      gpu->copyToHost(lastBytes.data(),
                      out.data + out.offset + (len - 1) * out.strides[0], 1,
                      vocab, out.strides[0], sizeof(T));
      lastRow.assign(vocab, 0);
      for (int64_t j = 0; j < vocab; ++j) {
        const uint8_t *p = lastBytes.data() + j * sizeof(T);
        uint16_t h;
        float f;
        if (gpu->storage() == rt::DType::F16) {
          std::memcpy(&h, p, 2);
          lastRow[j] = rt::halfBitsToFloat(h);
        } else if (gpu->storage() == rt::DType::BF16) {
          std::memcpy(&h, p, 2);
          lastRow[j] = rt::bf16BitsToFloat(h);
        } else {
          std::memcpy(&f, p, 4);
          lastRow[j] = f;
        }
      }
    }
    greta_gpu_rt_free(out.basePtr);
    if (!gpu->error().empty())
      return fail("run stopped at positions [" + std::to_string(begin) + ", " +
                  std::to_string(begin + len) + "): " + gpu->error() +
                  (writer ? " (the records written before this error are "
                            "kept in " + o.traceDir + ")"
                          : ""));
  }
  forwardSeconds = secondsSince(start);
  logitsType = gpu->storage();
  return 0;
}
#endif

int Runner::run() {
  std::string error;
  // The object: MODEL.so, or MODEL.mlir with --so.
  std::string soPath = o.so.empty() ? o.model : o.so;
  if (o.so.empty() && !endsWith(o.model, ".so"))
    return fail("MODEL must be a shared object written by greta-compile, or "
                "give it with --so (got " + o.model + ")");
  if (o.chunk < 0)
    return fail("--chunk must be a positive number of tokens, got " +
                std::to_string(o.chunk));
  if (!o.layers.empty() && !rt::Filter::parseLayers(o.layers, filter, error))
    return fail("--layers: " + error);
  if (!o.stages.empty() && !rt::Filter::parseStages(o.stages, filter, error))
    return fail("--stages: " + error);
  if (!o.positions.empty() &&
      !rt::Filter::parsePositions(o.positions, filter, error))
    return fail("--positions: " + error);
  if (!o.payload.empty() && !rt::Filter::parsePayload(o.payload, filter, error))
    return fail("--payload: " + error);
  if (o.patchFrom.empty() != o.patch.empty())
    return fail("--patch-from and --patch go together");
  if (o.repeat < 1)
    return fail("--repeat must be at least 1, got " + std::to_string(o.repeat));
  std::optional<rt::Patch> patch;
  if (!o.patchFrom.empty() && !(patch = rt::readPatch(o.patchFrom, o.patch, error)))
    return fail(error);
  std::string cacheDir;
  if (!o.noCache) {
    cacheDir = o.cacheDir.empty() ? rt::defaultCacheDir() : o.cacheDir;
    if (!cacheDir.empty() && !rt::openCacheDir(cacheDir, error))
      return fail(error);
  }

  // Lazy binding first, to read the metadata even when this runner lacks
  // the object's C ABI (a GPU object in a CPU-only build): the checks below
  // then say what is wrong. The object is bound fully afterwards.
  // dlopen looks a name without '/' up in the loader's search path, not in
  // the current directory: `greta-run-aot m.so` means ./m.so.
  std::string loadPath =
      soPath.find('/') == std::string::npos ? "./" + soPath : soPath;
  void *handle = dlopen(loadPath.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (!handle)
    return fail("cannot load " + soPath + ": " + dlerror());
  auto *metaText =
      static_cast<const char *>(dlsym(handle, "greta_aot_metadata"));
  forward = dlsym(handle, "_mlir_ciface_forward");
  if (!metaText || !forward)
    return fail(soPath + " was not written by greta-compile (no "
                "greta_aot_metadata or _mlir_ciface_forward)");
  try {
    meta = json::parse(metaText);
  } catch (const std::exception &e) {
    return fail(soPath + ": unreadable greta_aot_metadata: " + e.what());
  }
  backend = meta.value("backend", "");
  precision = meta.value("precision", "");
  modelName = meta.value("model", stem(soPath));
  if (!o.so.empty()) {
    // The source model must be the one the object was compiled from.
    std::ifstream in(o.model, std::ios::binary);
    if (!in)
      return fail("cannot read model " + o.model);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    if (sha256Hex(text.data(), text.size()) != meta.value("model_digest", ""))
      return fail(soPath + " was not compiled from " + o.model +
                  " (model digests differ): recompile it with greta-compile");
  }
  if (!o.precision.empty() && o.precision != precision)
    return fail("--precision " + o.precision + ": " + soPath +
                " was compiled for " + precision);
  if (!o.backend.empty() && o.backend != backend)
    return fail("--backend " + o.backend + ": " + soPath +
                " was compiled for the " + backend + " backend");
  bool isGpu = backend == "gpu";
  if (!isGpu && backend != "cpu")
    return fail(soPath + ": unknown backend '" + backend + "'");
  if (!isGpu && !o.kernels.empty())
    return fail("--kernel selects GPU kernel variants; " + soPath +
                " was compiled for the CPU");
#ifndef GRETA_HAVE_GPU_RUNTIME
  if (isGpu)
    return fail(soPath + " was compiled for the GPU, but this greta-run-aot "
                "was built without GPU support (configure with "
                "-DGRETA_GPU=cuda)");
#else
  for (const std::string &spec : o.kernels)
    if (greta_gpu_set_variant(spec.c_str()) != GRETA_GPU_OK)
      return fail("--kernel " + spec + ": " + greta_gpu_last_error());
#endif
  dlclose(handle);
  handle = dlopen(loadPath.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle || !(forward = dlsym(handle, "_mlir_ciface_forward")))
    return fail("cannot load " + soPath + ": " + dlerror());

  std::vector<rt::ParamSpec> params;
  for (const json &p : meta.value("params", json::array()))
    params.push_back({p.at("name").get<std::string>(),
                      p.at("shape").get<std::vector<int64_t>>()});

  prompt = rt::loadPrompt({o.prompt, o.promptText, o.tokenizer}, error);
  if (!prompt)
    return fail(error);
  tokens = prompt->ids;
  std::string where = o.promptText ? "--prompt-text" : o.prompt;
  if (meta.contains("vocab_size"))
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] < 0 || tokens[i] >= meta["vocab_size"].get<int64_t>())
        return fail("prompt " + where + ": token id " +
                    std::to_string(tokens[i]) + " at position " +
                    std::to_string(i) +
                    " is outside the vocabulary (greta.vocab_size = " +
                    std::to_string(meta["vocab_size"].get<int64_t>()) + ")");
  if (meta.contains("max_position_embeddings")) {
    int64_t maxPos = meta["max_position_embeddings"].get<int64_t>();
    if (static_cast<int64_t>(tokens.size()) > maxPos)
      return fail("prompt " + where + " has " + std::to_string(tokens.size()) +
                  " tokens, more than the model's "
                  "greta.max_position_embeddings (" +
                  std::to_string(maxPos) + "): position " +
                  std::to_string(maxPos) + " is out of range");
  }
  for (const json &from : meta.value("fault_from_positions", json::array()))
    if (from.is_number_integer() &&
        from.get<int64_t>() >= static_cast<int64_t>(tokens.size()))
      return fail(soPath + " plants a fault from position " + from.dump() +
                  " (its --pass-pipeline), but prompt " + o.prompt + " has " +
                  std::to_string(tokens.size()) +
                  " tokens: the fault would perturb nothing");
  if (filter.layers && meta.contains("num_layers"))
    for (int64_t l : *filter.layers)
      if (l >= meta["num_layers"].get<int64_t>())
        return fail("--layers: layer " + std::to_string(l) +
                    " is out of range: the model has " +
                    std::to_string(meta["num_layers"].get<int64_t>()) +
                    " layers");

  auto loadStart = Clock::now();
  weights = rt::SafeTensors::open(o.weights, error);
  if (!weights)
    return fail(error);
  rt::DType storage = rt::DType::F32;
  if (isGpu) {
#ifdef GRETA_HAVE_GPU_RUNTIME
    storage = precision == "f16"    ? rt::DType::F16
              : precision == "bf16" ? rt::DType::BF16
                                    : rt::DType::F32;
    gpu = greta::gpu::GpuSession::create(
        o.device, *weights, params, storage,
        static_cast<int64_t>(tokens.size()), error);
    if (!gpu)
      return fail(error);
#endif
  } else {
    session = rt::Session::create(
        *weights, params, precision == "f64" ? rt::DType::F64 : rt::DType::F32,
        error);
    if (!session)
      return fail(error);
  }
  loadSeconds = secondsSince(loadStart);
  if (o.dryRun) {
    std::cout << GRETA_TOOL_NAME ": dry run: " << soPath << ", " << o.weights
              << " and " << o.prompt
              << " are valid with these options; the run would start\n";
    return 0;
  }

  if (!o.traceDir.empty()) {
    rt::Manifest m;
    m.model = modelName;
    m.modelDigest = meta.value("model_digest", "");
    std::string warning;
    rt::WeightsDigest digest =
        rt::digestWeightsCached(*weights, cacheDir, warning);
    if (!warning.empty())
      std::cerr << GRETA_TOOL_NAME ": warning: " << warning << "\n";
    m.weightsDigest = digest.whole;
    m.weightsTensorDigests = std::move(digest.tensors);
    m.weightsDType = weights->storedDTypes();
    std::vector<uint8_t> le;
    for (int64_t t : tokens)
      for (int b = 0; b < 8; ++b)
        le.push_back(static_cast<uint8_t>(static_cast<uint64_t>(t) >> (8 * b)));
    m.promptDigest = sha256Hex(le.data(), le.size());
    m.promptName = prompt->name;
    rt::recordPrompt(*prompt, m);
    m.tokenCount = static_cast<int64_t>(tokens.size());
    m.backend = backend;
    m.precision = precision;
    m.pipeline = meta.value("pipeline", "");
    m.toolVersion = greta::versionLine(GRETA_TOOL_NAME);
    m.filter = filter.str();
    writer = rt::TraceWriter::create(o.traceDir, m, o.overwrite, error);
    if (!writer)
      return fail("--trace-dir " + o.traceDir + ": " + error);
  }

  // Every input is checked and the trace is locked: from here on a failure
  // is the run's own (greta-bisect's evidence rule, RunStarted.h).
  if (!rt::reportForwardStarted(error))
    return fail(error);
  int rc = 0;
  if (isGpu) {
#ifdef GRETA_HAVE_GPU_RUNTIME
    if (patch)
      gpu->setPatch(patch->recordId, patch->rows);
    greta::gpu::GpuSession::setCurrent(gpu.get());
    // --repeat: the warm-up runs compute and copy the trace like the last
    // one, but do not write it (a trace holds one run).
    for (int64_t r = 0; r < o.repeat && rc == 0; ++r) {
      calls = 0;
      gpu->setTrace(writer.get(), filter, static_cast<int64_t>(tokens.size()),
                    /*dryRun=*/r + 1 < o.repeat);
      rc = storage == rt::DType::F32 ? executeGpu<float>()
                                     : executeGpu<uint16_t>();
      repeatSeconds.push_back(forwardSeconds);
    }
    rowsPatched = gpu->rowsPatched();
    greta::gpu::GpuSession::setCurrent(nullptr);
    // The last call's last batch is written by the session's writer thread
    // after endCall: wait for it before the trace file is finished.
    if (!gpu->finishTrace() && rc == 0)
      rc = fail("--trace-dir " + o.traceDir + ": " + gpu->error() +
                " (the records written before this error are kept)");
#endif
  } else {
    rt::DType compute = precision == "f64" ? rt::DType::F64 : rt::DType::F32;
    if (patch) {
      if (patch->dtype != compute)
        return fail("--patch-from " + o.patchFrom + ": record " + o.patch +
                    " is " + std::string(rt::dtypeName(patch->dtype)) +
                    ", this run computes in " +
                    std::string(rt::dtypeName(compute)));
      session->setPatch(patch->recordId, patch->rows);
    }
    rt::Session::setCurrent(session.get());
    // --repeat: the CPU warm-up runs trace nothing (the CPU session has no
    // dry-run trace); only the last one is traced.
    for (int64_t r = 0; r < o.repeat && rc == 0; ++r) {
      calls = 0;
      session->resetKVCache();
      session->setTrace(r + 1 < o.repeat ? nullptr : writer.get(), filter,
                        static_cast<int64_t>(tokens.size()));
      rc = precision == "f64" ? executeCpu<double>() : executeCpu<float>();
      repeatSeconds.push_back(forwardSeconds);
    }
    rowsPatched = session->rowsPatched();
    rt::Session::setCurrent(nullptr);
  }
  if (rc) {
    if (writer) // what was written stays readable; the manifest says so
      writer->flush(error);
    return rc;
  }
  if (writer && !writer->finish(error))
    return fail("--trace-dir " + o.traceDir + ": " + error);
  return finishReport();
}

int Runner::finishReport() {
  if (lastRow.empty())
    return fail("the model returned no logits for the last position");
  auto best = top5(lastRow);
  std::string digest = sha256Hex(lastBytes.data(), lastBytes.size());
  int64_t last = static_cast<int64_t>(tokens.size()) - 1;
  uint64_t records = writer ? writer->recordsWritten() : 0;
  std::vector<std::string> logitsHex;
  if (o.printLogits)
    for (double v : lastRow) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%a", v);
      logitsHex.push_back(buf);
    }
  std::string device;
#ifdef GRETA_HAVE_GPU_RUNTIME
  if (gpu)
    device = gpu->deviceDescription();
#endif
  if (o.jsonOut) {
    json top = json::array();
    for (auto [id, logit] : best) {
      top.push_back({{"token", id}, {"logit", logit}});
      if (prompt->tokenizer)
        top.back()["text"] = rt::quoteToken(prompt->tokenizer->tokenBytes(id));
    }
    json result{{"model", modelName},
                {"tokens", static_cast<int64_t>(tokens.size())},
                {"position", last},
                {"precision", precision},
                {"backend", backend},
                {"calls", calls},
                {"cache", "aot"},
                {"top5", top},
                {"last_logits_sha256", digest},
                {"records", records},
                {"trace_dir", o.traceDir.empty() ? json(nullptr)
                                                 : json(o.traceDir)}};
    if (!device.empty())
      result["device"] = device;
    if (o.timing) {
      result["timing"] = {{"compile_s", 0.0},
                          {"weight_load_s", loadSeconds},
                          {"forward_s", forwardSeconds}};
      if (o.repeat > 1)
        result["timing"]["forward_repeats_s"] = repeatSeconds;
    }
    if (!o.patchFrom.empty())
      result["rows_patched"] = rowsPatched;
    if (o.printLogits)
      result["last_logits_hex"] = logitsHex;
    std::cout << result.dump(2) << "\n";
  } else {
    std::cout << "greta-run: " << modelName << ", " << tokens.size()
              << " tokens, precision " << precision << ", " << calls
              << (calls == 1 ? " call" : " calls") << "\n";
    std::cout << "top-5 next tokens at position " << last << ":\n";
    for (size_t i = 0; i < best.size(); ++i) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "  %zu. token %-8lld logit %.6f", i + 1,
                    static_cast<long long>(best[i].first), best[i].second);
      std::cout << buf;
      if (prompt->tokenizer)
        std::cout << "  "
                  << rt::quoteToken(
                         prompt->tokenizer->tokenBytes(best[i].first));
      std::cout << "\n";
    }
    std::cout << "last logits sha256 " << digest << "\n";
    if (writer)
      std::cout << "trace: " << records << " records in " << o.traceDir
                << "\n";
    if (!o.patchFrom.empty())
      std::cout << "patched " << rowsPatched << " rows of " << o.patch
                << " from " << o.patchFrom << "\n";
    if (o.timing) {
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "timing: compile 0.000 s (ahead of time, %s%s%s), "
                    "weight-load %.3f s, forward %.3f s\n",
                    backend.c_str(), device.empty() ? "" : ", ",
                    device.c_str(), loadSeconds, forwardSeconds);
      std::cout << buf;
      if (o.repeat > 1) {
        std::cout << "timing: forward of each repeat (the last is traced"
                  << (writer ? " and written" : "") << "):";
        for (double t : repeatSeconds) {
          std::snprintf(buf, sizeof buf, " %.4f", t);
          std::cout << buf;
        }
        std::cout << " s\n";
      }
    }
    if (o.printLogits)
      for (auto &h : logitsHex)
        std::cout << h << "\n";
  }
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  std::signal(SIGXFSZ, SIG_IGN);
  Options o;
  CLI::App app{GRETA_TOOL_NAME ": run a model compiled ahead of time by "
               "greta-compile (no LLVM)\n\n"
               "  greta-run-aot MODEL.so --weights W --prompt P [--trace-dir "
               "D] [--layers ..] [--stages ..] [--positions ..] [--payload "
               "..] [--kernel op=variant]\n\nExit codes: 0 ok, 2 error."};
  app.add_option("model", o.model,
                 "MODEL.so, or the source MODEL.mlir together with --so")
      ->required();
  app.add_option("--so", o.so, "The shared object (when MODEL is the .mlir)");
  app.add_option("--weights", o.weights, "safetensors file")->required();
  auto *promptOpt = app.add_option(
      "--prompt", o.prompt,
      "token ids (JSON array or one per line), text (.txt, .md) or "
      "{\"text\": ...} (.json); text needs --tokenizer");
  app.add_option("--prompt-text", o.promptText,
                 "the prompt as text (instead of --prompt); needs --tokenizer")
      ->excludes(promptOpt);
  app.add_option("--tokenizer", o.tokenizer,
                 "tokenizer.json, tokenizer.model or the checkpoint "
                 "directory: tokenizes a text prompt; with ids, names their "
                 "tokens in the output");
  app.add_option("--trace-dir", o.traceDir, "write a trace here");
  app.add_flag("--overwrite", o.overwrite, "replace a trace in --trace-dir");
  app.add_option("--layers", o.layers, "layers to record");
  app.add_option("--stages", o.stages, "stages to record");
  app.add_option("--positions", o.positions, "positions to record");
  app.add_option("--payload", o.payload, "hash, stats or full");
  app.add_option("--precision", o.precision,
                 "must match the object's (it is compiled in)");
  app.add_option("--backend", o.backend,
                 "must match the object's (it is compiled in)");
  app.add_option("--chunk", o.chunk, "prefill in chunks of N tokens");
  app.add_option("--kernel", o.kernels,
                 "GPU kernel variant op=name (repeatable), e.g. "
                 "attention=partial_tile_bug or trace=split_schedule; an "
                 "unknown one lists the known");
  app.add_option("--device", o.device, "GPU index (default 0)");
  app.add_flag("--timing", o.timing, "print weight-load and forward times");
  app.add_flag("--json", o.jsonOut, "print the result as JSON");
  app.add_flag("--print-logits", o.printLogits,
               "print every logit of the last position as a hex float");
  app.add_option("--patch-from", o.patchFrom,
                 "Causal test (greta-bisect --confirm): replace the tensor "
                 "named by --patch with its values from this trace (written "
                 "with --payload full); on the GPU the values are converted "
                 "to the storage type");
  app.add_option("--patch", o.patch,
                 "The tensor --patch-from replaces: STAGE:LAYER, e.g. "
                 "mlp_out:6");
  app.add_option("--repeat", o.repeat,
                 "Run the prompt N times in this process (benchmarks: the "
                 "first N-1 are warm-ups; on the GPU they compute the trace "
                 "without writing it, on the CPU they trace nothing); "
                 "--timing prints each forward time");
  app.add_flag("--dry-run", o.dryRun,
               "check the object, weights, prompt and every option, then stop "
               "before the forward: exit 0 if the run would start");
  app.add_option("--cache-dir", o.cacheDir,
                 "where the weights digest is cached (default "
                 "$XDG_CACHE_HOME/greta or ~/.cache/greta; nothing is "
                 "compiled)");
  app.add_flag("--no-cache", o.noCache,
               "hash the weights again instead of using the cache");
  greta::addVersionFlag(app, GRETA_TOOL_NAME);
  try {
    greta::parseArgs(app, argc, argv);
  } catch (const CLI::ParseError &e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  Runner runner(std::move(o));
  int rc = runner.run();
  std::cout.flush();
  return rc;
}

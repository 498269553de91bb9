//===- Run.cpp - One model run: options, checks, forward, result ---------===//
#include "greta/rt/Run.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Cache.h"
#include "greta/rt/Generate.h"
#include "greta/rt/Half.h"
#include "greta/rt/Sha256.h"
#include "greta/rt/Tokenizer.h"
#include "greta/rt/WeightsDigest.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

using namespace greta::rt;

std::vector<std::string> greta::rt::toArgv(const RunOptions &o) {
  std::vector<std::string> args;
  auto add = [&](const char *flag, const std::string &value) {
    if (!value.empty())
      args.insert(args.end(), {flag, value});
  };
  auto flag = [&](const char *name, bool on) {
    if (on)
      args.push_back(name);
  };
  add("--weights", o.weights);
  add("--backend", o.backend);
  add("--precision", o.precision);
  add("--prompt", o.prompt);
  if (o.promptText)
    args.insert(args.end(), {"--prompt-text", *o.promptText});
  add("--tokenizer", o.tokenizer);
  add("--trace-dir", o.traceDir);
  add("--layers", o.layers);
  add("--stages", o.stages);
  add("--positions", o.positions);
  add("--payload", o.payload);
  add("--patch-from", o.patchFrom);
  add("--patch", o.patch);
  if (o.device)
    add("--device", std::to_string(*o.device));
  if (o.repeat > 1)
    add("--repeat", std::to_string(o.repeat));
  for (const std::string &k : o.kernels)
    args.insert(args.end(), {"--kernel", k});
  add("--cache-dir", o.cacheDir);
  flag("--no-cache", o.noCache);
  flag("--overwrite", o.overwrite);
  flag("--timing", o.timing);
  flag("--json", o.json);
  flag("--print-logits", o.printLogits);
  flag("--dry-run", o.dryRun);
  appendArgv(o.decode, args);
  return args;
}

bool greta::rt::parseRunFlags(const RunOptions &o, Filter &filter,
                              std::string &error) {
  auto fail = [&](const std::string &message) {
    error = message;
    return false;
  };
  std::vector<int64_t> schedule;
  Generation generation;
  Session::KVFault kvFault;
  if (!parseDecodeFlags(o.decode, schedule, generation, kvFault, error) ||
      (o.backend == "gpu" && !checkGpuDecodeFlags(o.decode, error)))
    return false;
  if (o.repeat < 1)
    return fail("--repeat must be at least 1, got " + std::to_string(o.repeat));
  struct {
    const char *flag;
    const std::string &value;
    bool (*parse)(const std::string &, Filter &, std::string &);
  } lists[] = {{"--layers", o.layers, Filter::parseLayers},
               {"--stages", o.stages, Filter::parseStages},
               {"--positions", o.positions, Filter::parsePositions},
               {"--payload", o.payload, Filter::parsePayload}};
  for (const auto &l : lists)
    if (!l.value.empty() && !l.parse(l.value, filter, error))
      return fail(std::string(l.flag) + ": " + error);
  if (o.patchFrom.empty() != o.patch.empty())
    return fail("--patch-from and --patch go together");
  return true;
}

bool greta::rt::resolveCacheDir(const RunOptions &o, std::string &dir,
                                std::string &error) {
  dir.clear();
  if (o.noCache)
    return true;
  dir = o.cacheDir.empty() ? defaultCacheDir() : o.cacheDir;
  return dir.empty() || openCacheDir(dir, error);
}

bool greta::rt::checkAgainstModel(const RunOptions &o, const Prompt &prompt,
                                  const ModelLimits &limits,
                                  const Filter &filter, std::string &error) {
  const std::vector<int64_t> &tokens = prompt.ids;
  std::string where = o.promptWhere(), n = std::to_string(tokens.size());
  if (limits.vocabSize)
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i] < 0 || tokens[i] >= *limits.vocabSize) {
        error = "prompt " + where + ": token id " + std::to_string(tokens[i]) +
                " at position " + std::to_string(i) +
                " is outside the vocabulary (greta.vocab_size = " +
                std::to_string(*limits.vocabSize) + ")";
        return false;
      }
  if (limits.maxPositions &&
      static_cast<int64_t>(tokens.size()) > *limits.maxPositions) {
    std::string maxPos = std::to_string(*limits.maxPositions);
    error = "prompt " + where + " has " + n +
            " tokens, more than the model's greta.max_position_embeddings (" +
            maxPos + "): position " + maxPos + " is out of range";
    return false;
  }
  // Decode steps reach past the prompt: the last generated token is
  // chosen, not fed.
  int64_t reach = static_cast<int64_t>(tokens.size()) +
                  std::max<int64_t>(o.decode.generate - 1, 0);
  for (int64_t from : limits.faultFromPositions)
    if (from >= reach) {
      error =
          limits.faultSource + " plants a fault from position " +
          std::to_string(from) + limits.faultNote + ", but prompt " + o.prompt +
          " has " + n + " tokens" +
          (reach > static_cast<int64_t>(tokens.size())
               ? " and --generate reaches position " + std::to_string(reach - 1)
               : "") +
          ": the fault would perturb nothing";
      return false;
    }
  if (filter.layers && limits.numLayers)
    for (int64_t l : *filter.layers)
      if (l >= *limits.numLayers) {
        error = "--layers: layer " + std::to_string(l) +
                " is out of range: the model has " +
                std::to_string(*limits.numLayers) + " layers";
        return false;
      }
  return true;
}

bool greta::rt::readRunPatch(const RunOptions &o, std::optional<DType> compute,
                             std::optional<Patch> &patch, std::string &error) {
  patch.reset();
  if (o.patchFrom.empty() && o.patch.empty())
    return true;
  if (o.patchFrom.empty() != o.patch.empty()) {
    error = "--patch-from and --patch go together";
    return false;
  }
  patch = readPatch(o.patchFrom, o.patch, error);
  if (!patch)
    return false;
  if (compute && patch->dtype != *compute) {
    error = "--patch-from " + o.patchFrom + ": record " + o.patch + " is " +
            std::string(dtypeName(patch->dtype)) + ", this run computes in " +
            std::string(dtypeName(*compute));
    patch.reset();
    return false;
  }
  return true;
}

Manifest greta::rt::buildManifest(const RunIdentity &id,
                                  const SafeTensors &weights,
                                  const std::string &cacheDir,
                                  const Prompt &prompt, const Filter &filter,
                                  std::string &warning) {
  Manifest m;
  m.model = id.model;
  m.modelDigest = id.modelDigest;
  WeightsDigest digest = digestWeightsCached(weights, cacheDir, warning);
  m.weightsDigest = digest.whole;
  m.weightsTensorDigests = std::move(digest.tensors);
  m.weightsDType = weights.storedDTypes();
  // The ids as int64 little-endian.
  std::vector<uint8_t> le;
  for (int64_t t : prompt.ids)
    for (int b = 0; b < 8; ++b)
      le.push_back(static_cast<uint8_t>(static_cast<uint64_t>(t) >> (8 * b)));
  m.promptDigest = sha256Hex(le.data(), le.size());
  m.promptName = prompt.name;
  recordPrompt(prompt, m);
  m.tokenCount = static_cast<int64_t>(prompt.ids.size());
  m.backend = id.backend;
  m.precision = id.precision;
  m.pipeline = id.pipeline;
  m.toolVersion = id.toolVersion;
  m.filter = filter.str();
  return m;
}

void LastLogits::set(DType storedAs, std::vector<uint8_t> row) {
  dtype = storedAs;
  bytes = std::move(row);
  size_t es = dtypeSize(dtype), n = bytes.size() / es;
  values.assign(n, 0);
  for (size_t j = 0; j < n; ++j) {
    const uint8_t *p = bytes.data() + j * es;
    float f;
    double d;
    uint16_t h;
    switch (dtype) {
    case DType::F32:
      std::memcpy(&f, p, 4);
      values[j] = f;
      break;
    case DType::F64:
      std::memcpy(&d, p, 8);
      values[j] = d;
      break;
    case DType::F16:
      std::memcpy(&h, p, 2);
      values[j] = halfBitsToFloat(h);
      break;
    case DType::BF16:
      std::memcpy(&h, p, 2);
      values[j] = bf16BitsToFloat(h);
      break;
    }
  }
}

std::string greta::rt::runStoppedError(int64_t begin, int64_t end,
                                       const std::string &error,
                                       const std::string &traceDir) {
  return "run stopped at positions [" + std::to_string(begin) + ", " +
         std::to_string(end) + "): " + error +
         (traceDir.empty() ? ""
                           : " (the records written before this error are "
                             "kept in " +
                                 traceDir + ")");
}

std::vector<std::pair<int64_t, double>>
greta::rt::topFive(const LastLogits &logits) {
  std::vector<std::pair<int64_t, double>> out;
  for (int32_t id : topFiveIds(logits.bytes.data(), logits.dtype,
                               static_cast<int64_t>(logits.values.size())))
    out.push_back({id, logits.values[id]});
  return out;
}

namespace {
std::string hexFloat(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%a", v);
  return buf;
}
} // namespace

bool greta::rt::printResult(std::ostream &os, const RunResult &r,
                            const RunOptions &o, std::string &error) {
  if (r.logits.values.empty()) {
    error = "the model returned no logits for the last position";
    return false;
  }
  auto best = topFive(r.logits);
  std::string digest = sha256Hex(r.logits.bytes.data(), r.logits.bytes.size());
  // The last call's logits: with --generate, those that chose the last
  // generated token.
  int64_t last = r.tokens - 1 +
                 (r.generated && !r.generated->empty()
                      ? static_cast<int64_t>(r.generated->size()) - 1
                      : 0);
  std::string generatedText;
  if (r.generated && r.tokenizer) {
    std::string err;
    if (!r.tokenizer->decode(*r.generated, generatedText, err))
      generatedText.clear();
  }
  std::vector<std::string> logitsHex;
  if (o.printLogits)
    for (double v : r.logits.values)
      logitsHex.push_back(hexFloat(v));
  if (o.json) {
    using json = nlohmann::json;
    json top = json::array();
    for (auto [id, logit] : best) {
      top.push_back({{"token", id}, {"logit", logit}});
      if (r.tokenizer)
        top.back()["text"] = quoteToken(r.tokenizer->tokenBytes(id));
    }
    json result{
        {"model", r.model},
        {"tokens", r.tokens},
        {"position", last},
        {"precision", r.precision},
        {"backend", r.backend},
        {"calls", r.calls},
        {"cache", r.cache},
        {"top5", top},
        {"last_logits_sha256", digest},
        {"records", r.records},
        {"trace_dir", o.traceDir.empty() ? json(nullptr) : json(o.traceDir)}};
    if (!r.device.empty())
      result["device"] = r.device;
    if (r.generated) {
      result["generated"] = *r.generated;
      result["generation"] = r.generation;
      result["stopped_at_eos"] = r.stoppedAtEos;
      if (r.tokenizer)
        result["generated_text"] = generatedText;
    }
    if (o.timing) {
      result["timing"] = {{"compile_s", r.compileSeconds},
                          {"weight_load_s", r.loadSeconds},
                          {"forward_s", r.forwardSeconds}};
      if (r.repeatSeconds.size() > 1)
        result["timing"]["forward_repeats_s"] = r.repeatSeconds;
    }
    if (!o.patchFrom.empty())
      result["rows_patched"] = r.rowsPatched;
    if (o.printLogits)
      result["last_logits_hex"] = logitsHex;
    os << result.dump(2) << "\n";
    return true;
  }
  char buf[256];
  os << "greta-run: " << r.model << ", " << r.tokens << " tokens, precision "
     << r.precision << ", " << r.calls << (r.calls == 1 ? " call" : " calls")
     << "\n";
  os << "top-5 next tokens at position " << last << ":\n";
  for (size_t i = 0; i < best.size(); ++i) {
    std::snprintf(buf, sizeof buf, "  %zu. token %-8lld logit %.6f", i + 1,
                  static_cast<long long>(best[i].first), best[i].second);
    os << buf;
    if (r.tokenizer)
      os << "  " << quoteToken(r.tokenizer->tokenBytes(best[i].first));
    os << "\n";
  }
  os << "last logits sha256 " << digest << "\n";
  if (r.generated) {
    os << "generated " << r.generated->size() << " tokens (" << r.generation
       << (r.stoppedAtEos ? ", stopped at EOS" : "") << "):";
    for (int64_t id : *r.generated)
      os << " " << id;
    os << "\n";
    if (r.tokenizer)
      os << "generated text: " << quoteToken(generatedText) << "\n";
  }
  if (!o.traceDir.empty())
    os << "trace: " << r.records << " records in " << o.traceDir << "\n";
  if (!o.patchFrom.empty())
    os << "patched " << r.rowsPatched << " rows of " << o.patch << " from "
       << o.patchFrom << "\n";
  if (o.timing) {
    std::snprintf(buf, sizeof buf,
                  "timing: compile %.3f s (%s), weight-load %.3f s, forward "
                  "%.3f s\n",
                  r.compileSeconds, r.compileNote.c_str(), r.loadSeconds,
                  r.forwardSeconds);
    os << buf;
    if (r.repeatSeconds.size() > 1) {
      os << "timing: forward of each repeat (the last is traced"
         << (o.traceDir.empty() ? "" : " and written") << "):";
      for (double t : r.repeatSeconds) {
        std::snprintf(buf, sizeof buf, " %.4f", t);
        os << buf;
      }
      os << " s\n";
    }
  }
  for (const std::string &h : logitsHex)
    os << h << "\n";
  return true;
}

std::string greta::rt::dryRunLine(const std::string &tool,
                                  const std::string &model,
                                  const RunOptions &o) {
  return tool + ": dry run: " + model + ", " + o.weights + " and " + o.prompt +
         " are valid with these options; the run would start\n";
}

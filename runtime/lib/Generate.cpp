//===- Generate.cpp - Chunk schedules, decode steps and token choice -----===//
#include "greta/rt/Generate.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>

using namespace greta::rt;

bool greta::rt::parseChunkSchedule(const std::string &spec,
                                   std::vector<int64_t> &sizes,
                                   std::string &error) {
  sizes.clear();
  if (spec.empty() || spec == "all" || spec == "0")
    return true;
  size_t i = 0;
  while (true) {
    size_t j = spec.find(',', i);
    std::string item = spec.substr(i, j == std::string::npos ? j : j - i);
    errno = 0;
    char *end = nullptr;
    long long v = item.empty() || item[0] < '0' || item[0] > '9'
                      ? 0
                      : std::strtoll(item.c_str(), &end, 10);
    if (v <= 0 || errno || (end && *end)) {
      error = "--chunk: bad chunk size '" + item + "' in '" + spec +
              "': expected all, N or a schedule N,M,... of positive sizes "
              "(the last repeats)";
      sizes.clear();
      return false;
    }
    sizes.push_back(v);
    if (j == std::string::npos)
      return true;
    i = j + 1;
  }
}

void greta::rt::appendArgv(const DecodeFlags &f,
                           std::vector<std::string> &args) {
  auto add = [&](const char *flag, const std::string &value) {
    args.insert(args.end(), {flag, value});
  };
  auto num = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  if (!f.chunk.empty())
    add("--chunk", f.chunk);
  if (f.generate)
    add("--generate", std::to_string(f.generate));
  if (f.generateFrom >= 0)
    add("--generate-from", std::to_string(f.generateFrom));
  if (f.ignoreEos)
    args.push_back("--ignore-eos");
  if (f.sample)
    args.push_back("--sample");
  if (f.seed)
    add("--seed", std::to_string(f.seed));
  if (f.temperature != 1.0)
    add("--temperature", num(f.temperature));
  if (f.topP != 1.0)
    add("--top-p", num(f.topP));
  if (f.traceCacheReads)
    args.push_back("--trace-cache-reads");
  if (!f.kvFault.empty())
    add("--kv-fault", f.kvFault);
  if (f.kvBlockSize != 16)
    add("--kv-block-size", std::to_string(f.kvBlockSize));
}

bool greta::rt::parseDecodeFlags(const DecodeFlags &f,
                                 std::vector<int64_t> &schedule, Generation &g,
                                 Session::KVFault &kvFault,
                                 std::string &error) {
  if (!parseChunkSchedule(f.chunk, schedule, error))
    return false;
  auto fail = [&](const std::string &message) {
    error = message;
    return false;
  };
  if (f.generate < 0)
    return fail("--generate must be a number of tokens (0 or more), got " +
                std::to_string(f.generate));
  if (f.kvBlockSize <= 0)
    return fail("--kv-block-size must be a positive number of positions per "
                "KV cache page, got " +
                std::to_string(f.kvBlockSize));
  if (f.generateFrom < -1)
    return fail("--generate-from must be a position (0 or more), got " +
                std::to_string(f.generateFrom));
  if (!(f.temperature > 0) || !std::isfinite(f.temperature))
    return fail("--temperature must be positive, got " +
                std::to_string(f.temperature));
  if (!(f.topP > 0 && f.topP <= 1))
    return fail("--top-p must be in (0, 1], got " + std::to_string(f.topP));
  if (!f.sample && (f.seed || f.temperature != 1.0 || f.topP != 1.0))
    return fail("--seed, --temperature and --top-p choose how --sample "
                "draws: add --sample (generation is greedy without it)");
  if ((f.sample || f.ignoreEos) && f.generate == 0)
    return fail(std::string(f.sample ? "--sample" : "--ignore-eos") +
                " applies to --generate N");
  g = Generation();
  g.maxNewTokens = f.generate;
  g.decodeFrom = f.generateFrom;
  g.ignoreEos = f.ignoreEos;
  g.sampling = {f.sample, f.seed, f.temperature, f.topP};
  kvFault = Session::KVFault();
  if (!f.kvFault.empty()) {
    long long layer = -1, from = -1;
    int used = 0;
    std::string kind;
    bool ok = std::sscanf(f.kvFault.c_str(), "%lld:%lld%n", &layer, &from,
                          &used) == 2 &&
              layer >= 0 && from >= 1;
    if (ok)
      kind = f.kvFault.substr(used);
    if (!ok || (kind != "" && kind != ":stale" && kind != ":overwrite"))
      return fail("--kv-fault: expected LAYER:FROM[:stale|:overwrite] (a "
                  "layer and a position >= 1), got '" +
                  f.kvFault + "'");
    kvFault = {layer, from,
               kind == ":overwrite" ? Session::KVFault::Overwrite
                                    : Session::KVFault::Stale};
  }
  return true;
}

bool greta::rt::checkGpuDecodeFlags(const DecodeFlags &f,
                                    std::string &error) {
  std::vector<int64_t> schedule;
  if (!parseChunkSchedule(f.chunk, schedule, error))
    return false;
  // --kv-fault plants the CPU's stale-row fault in the CPU cache; the GPU's
  // planted cache faults are kernel variants.
  if (!f.kvFault.empty()) {
    error = "--kv-fault plants a fault in the CPU's KV cache and runs on the "
            "CPU only; on the GPU plant --kernel "
            "paged_attention=page_boundary_bug or --kernel "
            "paged_kv_append=stale_page_bug";
    return false;
  }
  return true;
}

std::string greta::rt::generationText(const Sampling &s) {
  if (!s.sample)
    return "greedy";
  char buf[128];
  std::snprintf(buf, sizeof buf, "sample seed=%llu temperature=%g top_p=%g",
                static_cast<unsigned long long>(s.seed), s.temperature, s.topP);
  return buf;
}

std::vector<std::pair<int64_t, int64_t>>
greta::rt::chunkCalls(const std::vector<int64_t> &sizes, int64_t n,
                      int64_t decodeFrom) {
  std::vector<std::pair<int64_t, int64_t>> calls;
  int64_t prefillEnd = decodeFrom >= 0 ? std::min(decodeFrom, n) : n;
  for (int64_t b = 0, k = 0; b < prefillEnd; ++k) {
    int64_t size = sizes.empty() ? prefillEnd
                                 : sizes[std::min<size_t>(k, sizes.size() - 1)];
    int64_t e = std::min(prefillEnd, b + size);
    calls.push_back({b, e});
    b = e;
  }
  for (int64_t p = prefillEnd; p < n; ++p)
    calls.push_back({p, p + 1});
  return calls;
}

int64_t greta::rt::chooseToken(const std::vector<double> &logits,
                               const Sampling &s, std::mt19937_64 &rng) {
  int64_t n = static_cast<int64_t>(logits.size()), best = -1;
  for (int64_t j = 0; j < n; ++j)
    if (!std::isnan(logits[j]) && (best < 0 || logits[j] > logits[best]))
      best = j;
  if (!s.sample || best < 0)
    return std::max<int64_t>(best, 0);
  // softmax(logits / T) with the maximum subtracted, NaN as probability 0.
  std::vector<std::pair<double, int64_t>> p;
  p.reserve(n);
  double mx = logits[best] / s.temperature, sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    double e =
        std::isnan(logits[j]) ? 0 : std::exp(logits[j] / s.temperature - mx);
    p.push_back({e, j});
    sum += e;
  }
  // Most likely first, ties to the lower id: a fixed order to cut and draw.
  std::stable_sort(p.begin(), p.end(), [](const auto &a, const auto &b) {
    return a.first > b.first;
  });
  size_t keep = 0;
  double mass = 0;
  while (keep < p.size() && (keep == 0 || mass < s.topP * sum))
    mass += p[keep++].first;
  double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * mass;
  double acc = 0;
  for (size_t i = 0; i < keep; ++i) {
    acc += p[i].first;
    if (u < acc)
      return p[i].second;
  }
  return p[keep - 1].second;
}

namespace {
using IdsRef = GRETA_MEMREF(int64_t, 1);
template <typename T> using Logits = GRETA_MEMREF(T, 2);
template <typename T>
using ForwardFn = void (*)(Logits<T> *, IdsRef *, IdsRef *);

/// One forward call of `ids` at positions [begin, begin + ids.size()):
/// the last row's logits into `logits`; false with the error.
template <typename T>
bool callOnce(void *forward, Session &session, std::vector<int64_t> ids,
              int64_t begin, const std::string &traceDir, LastLogits &logits,
              int64_t &calls, std::string &error) {
  auto fn = reinterpret_cast<ForwardFn<T>>(forward);
  int64_t len = static_cast<int64_t>(ids.size());
  std::vector<int64_t> positions(len);
  std::iota(positions.begin(), positions.end(), begin);
  IdsRef idsRef{ids.data(), ids.data(), 0, {len}, {1}};
  IdsRef posRef{positions.data(), positions.data(), 0, {len}, {1}};
  session.setPositions(positions);
  Logits<T> out{};
  fn(&out, &idsRef, &posRef);
  ++calls;
  bool flushed = session.endCall();
  // The model returns its logits buffer to the caller (ownership-based
  // deallocation ABI): free it once the last row is copied.
  if (out.sizes[0] == len && out.sizes[1] > 0) {
    int64_t vocab = out.sizes[1];
    const T *row = out.data + out.offset + (len - 1) * out.strides[0];
    std::vector<uint8_t> bytes(vocab * sizeof(T));
    for (int64_t j = 0; j < vocab; ++j)
      std::memcpy(bytes.data() + j * sizeof(T), &row[j * out.strides[1]],
                  sizeof(T));
    logits.set(sizeof(T) == 8 ? DType::F64 : DType::F32, std::move(bytes));
  } else {
    logits = LastLogits();
  }
  free(out.basePtr);
  if (!session.error().empty() || !flushed) {
    error = runStoppedError(begin, begin + len, session.error(), traceDir);
    return false;
  }
  return true;
}

} // namespace

bool greta::rt::runDecode(
    const std::vector<int64_t> &prompt, const std::vector<int64_t> &schedule,
    const Generation &g, const std::function<void(int64_t, int64_t)> &beforeCall,
    const ForwardCall &call, LastLogits &logits, Generated &generated,
    std::string &error) {
  auto prefill =
      chunkCalls(schedule, static_cast<int64_t>(prompt.size()), g.decodeFrom);
  int64_t k = 0;
  for (auto [b, e] : prefill) {
    if (beforeCall)
      beforeCall(++k, static_cast<int64_t>(prefill.size()));
    if (!call(std::vector<int64_t>(prompt.begin() + b, prompt.begin() + e), b,
              logits, error))
      return false;
  }
  std::mt19937_64 rng(g.sampling.seed);
  int64_t position = static_cast<int64_t>(prompt.size());
  for (int64_t step = 0; step < g.maxNewTokens; ++step) {
    if (logits.values.empty()) {
      error = "the model returned no logits at position " +
              std::to_string(position - 1) + ": no token to generate";
      return false;
    }
    int64_t id = chooseToken(logits.values, g.sampling, rng);
    generated.ids.push_back(id);
    if (!g.ignoreEos &&
        std::find(g.eos.begin(), g.eos.end(), id) != g.eos.end()) {
      generated.stoppedAtEos = true;
      return true;
    }
    // The last token is chosen, not fed: N tokens take N - 1 decode calls.
    if (step + 1 == g.maxNewTokens)
      break;
    if (beforeCall)
      beforeCall(++k, static_cast<int64_t>(prefill.size()));
    if (!call({id}, position++, logits, error))
      return false;
  }
  return true;
}

bool greta::rt::runCpu(void *forward, Session &session,
                       const std::vector<int64_t> &prompt,
                       const std::vector<int64_t> &schedule,
                       const Generation &generation,
                       const std::string &traceDir,
                       const std::function<void(int64_t, int64_t)> &beforeCall,
                       LastLogits &logits, int64_t &calls, Generated &generated,
                       std::string &error) {
  bool f64 = session.computeDType() == DType::F64;
  ForwardCall call = [&](const std::vector<int64_t> &ids, int64_t begin,
                         LastLogits &out, std::string &err) {
    return f64 ? callOnce<double>(forward, session, ids, begin, traceDir, out,
                                  calls, err)
               : callOnce<float>(forward, session, ids, begin, traceDir, out,
                                 calls, err);
  };
  return runDecode(prompt, schedule, generation, beforeCall, call, logits,
                   generated, error);
}

bool greta::rt::planDecode(const RunOptions &o, const Prompt &prompt,
                           std::optional<int64_t> maxPositions,
                           DecodePlan &plan, std::string &error) {
  if (!parseDecodeFlags(o.decode, plan.schedule, plan.generation, plan.kvFault,
                        error))
    return false;
  int64_t n = static_cast<int64_t>(prompt.ids.size());
  if (plan.generation.decodeFrom >= n) {
    error = "--generate-from " + std::to_string(plan.generation.decodeFrom) +
            " is past the prompt's last position (" + std::to_string(n - 1) +
            ", prompt " + o.promptWhere() + ")";
    return false;
  }
  // The last generated token is chosen, not fed: n + N - 1 positions.
  int64_t end = n + std::max<int64_t>(plan.generation.maxNewTokens - 1, 0);
  if (maxPositions && end > *maxPositions) {
    error = "--generate " + std::to_string(plan.generation.maxNewTokens) +
            " after the " + std::to_string(n) + " tokens of prompt " +
            o.promptWhere() + " reaches position " + std::to_string(end - 1) +
            ", past the model's greta.max_position_embeddings (" +
            std::to_string(*maxPositions) + ")";
    return false;
  }
  if (prompt.tokenizer)
    plan.generation.eos = prompt.tokenizer->eosIds();
  return true;
}

void greta::rt::recordGeneration(const DecodePlan &plan, Manifest &m) {
  if (plan.generation.maxNewTokens == 0)
    return;
  m.generatedIds.emplace();
  m.generation = generationText(plan.generation.sampling);
}

bool greta::rt::runCpuPlan(
    void *forward, Session &session, const RunOptions &o,
    const std::vector<int64_t> &prompt, const DecodePlan &plan,
    const std::function<void(int64_t, int64_t)> &beforeCall, RunResult &result,
    TraceWriter *writer, std::string &error) {
  session.setTraceCacheReads(o.decode.traceCacheReads);
  session.setKVFault(plan.kvFault);
  Generated generated;
  bool ok = runCpu(forward, session, prompt, plan.schedule, plan.generation,
                   o.traceDir, beforeCall, result.logits, result.calls,
                   generated, error);
  if (plan.generation.maxNewTokens > 0) {
    result.generated = generated.ids;
    result.stoppedAtEos = generated.stoppedAtEos;
    result.generation = generationText(plan.generation.sampling);
    if (writer)
      writer->setGeneratedIds(generated.ids);
  }
  return ok;
}

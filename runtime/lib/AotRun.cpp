//===- AotRun.cpp - greta-run-aot's run of a compiled object ---*- C++ -*-===//
//
// The run of a shared object written by greta-compile, as greta-run-aot
// (and greta-bisect through it) drives it: the object and its metadata
// (AotObject), the prompt against the model's limits, the decode plan, the
// manifest, then the forward on the CPU session or on the DeviceRunner of
// a GPU object, and the result. The tool's main only parses the flags.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/AotObject.h"
#include "greta/rt/Generate.h"
#include "greta/rt/Run.h"
#include "greta/rt/RunStarted.h"
#include "greta/rt/Session.h"

#include <chrono>
#include <iostream>

using namespace greta::rt;

namespace {
double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}
} // namespace

int greta::rt::runAotObject(const std::string &model, const std::string &so,
                            RunOptions &o, const std::string &tool,
                            const std::string &version, DeviceRunner *gpu) {
  auto fail = [&](const std::string &message) {
    std::cerr << tool << ": error: " << message << "\n";
    return 2;
  };
  std::string error, cacheDir;
  Filter filter;
  std::optional<Patch> patch;
  if (!parseRunFlags(o, filter, error) ||
      !readRunPatch(o, std::nullopt, patch, error) ||
      !resolveCacheDir(o, cacheDir, error))
    return fail(error);
  AotObject object;
  if (!object.load(model, so, o, gpu != nullptr, error))
    return fail(error);
  std::optional<Prompt> prompt = loadPrompt(o.promptRequest(), error);
  DecodePlan decode;
  if (!prompt || !checkAgainstModel(o, *prompt, object.limits, filter, error) ||
      !planDecode(o, *prompt, object.limits.maxPositions, decode, error) ||
      (object.backend == "gpu" && !checkGpuDecodeFlags(o.decode, error)))
    return fail(error);
  const std::vector<int64_t> &tokens = prompt->ids;

  RunResult result;
  result.model = object.modelName;
  result.precision = object.precision;
  result.backend = object.backend;
  result.cache = "aot";
  result.tokens = static_cast<int64_t>(tokens.size());
  result.tokenizer = prompt->tokenizer.get();
  auto loadStart = std::chrono::steady_clock::now();
  auto weights = SafeTensors::open(o.weights, error);
  if (!weights)
    return fail(error);
  bool isGpu = object.backend == "gpu";
  std::unique_ptr<Session> session;
  if (isGpu &&
      !gpu->open(o, object, *weights,
                 decodePositions(result.tokens,
                                 decode.generation.maxNewTokens),
                 error))
    return fail(error);
  DType compute = object.precision == "f64" ? DType::F64 : DType::F32;
  if (!isGpu &&
      !(session = Session::create(*weights, object.params, compute, error)))
    return fail(error);
  result.loadSeconds = secondsSince(loadStart);
  if (o.dryRun) {
    std::cout << dryRunLine(tool, object.path, o);
    return 0;
  }

  std::unique_ptr<TraceWriter> writer;
  if (!o.traceDir.empty()) {
    std::string warning;
    Manifest m =
        buildManifest({object.modelName, object.modelDigest, object.backend,
                       object.precision, object.pipeline, version},
                      *weights, cacheDir, *prompt, filter, warning);
    if (!warning.empty())
      std::cerr << tool << ": warning: " << warning << "\n";
    recordGeneration(decode, m);
    writer = TraceWriter::create(o.traceDir, m, o.overwrite, error);
    if (!writer)
      return fail("--trace-dir " + o.traceDir + ": " + error);
  }

  // Every input is checked and the trace is locked: from here on a failure
  // is the run's own (greta-bisect's evidence rule, RunStarted.h).
  if (!reportForwardStarted(error))
    return fail(error);
  bool ok = true;
  if (isGpu) {
    ok = gpu->run(o, object.forward, tokens, decode, patch, filter,
                  writer.get(), result, error);
  } else {
    if (patch) {
      if (patch->dtype != compute)
        return fail("--patch-from " + o.patchFrom + ": record " + o.patch +
                    " is " + std::string(dtypeName(patch->dtype)) +
                    ", this run computes in " +
                    std::string(dtypeName(compute)));
      session->setPatch(patch->recordId, patch->rows);
    }
    Session::setCurrent(session.get());
    // --repeat: the CPU warm-up runs trace nothing (the CPU session has no
    // dry-run trace); only the last one is traced.
    for (int64_t r = 0; r < o.repeat && ok; ++r) {
      result.calls = 0;
      session->resetKVCache();
      session->setTrace(r + 1 < o.repeat ? nullptr : writer.get(), filter,
                        result.tokens);
      auto start = std::chrono::steady_clock::now();
      ok = runCpuPlan(object.forward, *session, o, tokens, decode, nullptr,
                      result, r + 1 < o.repeat ? nullptr : writer.get(), error);
      result.forwardSeconds = secondsSince(start);
      result.repeatSeconds.push_back(result.forwardSeconds);
    }
    result.rowsPatched = session->rowsPatched();
    Session::setCurrent(nullptr);
  }
  if (!ok) {
    std::string flushError;
    if (writer) // what was written stays readable; the manifest says so
      writer->flush(flushError);
    return fail(error);
  }
  if (writer && !writer->finish(error))
    return fail("--trace-dir " + o.traceDir + ": " + error);
  result.records = writer ? writer->recordsWritten() : 0;
  result.compileNote = "ahead of time, " + object.backend +
                       (result.device.empty() ? "" : ", " + result.device);
  if (!printResult(std::cout, result, o, error))
    return fail(error);
  return 0;
}

//===- greta-run-aot.cpp - Run a model compiled ahead of time ---*- C++ -*-===//
//
// greta-run without LLVM: loads a shared object written by greta-compile
// (dlopen), reads its `greta_aot_metadata` (parameters, backend, precision,
// vocabulary, ...), and drives `_mlir_ciface_forward` with the runtime's
// Session (CPU objects) or the GPU session of runtime/gpu (GPU objects). The
// run itself is the runtime's (greta/rt/Run.h), greta-run's too, so flags
// and output are greta-run's and greta-bisect can drive it (--greta-run
// greta-run-aot, RUN FLAGS "--so model.so").
//
//   greta-run-aot MODEL.so --weights W --prompt P [--trace-dir D] ...
//   greta-run-aot MODEL.mlir --so MODEL.so ...   (checks that MODEL.so was
//                                                  compiled from MODEL.mlir)
//
// Exit codes: 0 ok, 2 error.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/AotObject.h"
#include "greta/rt/Generate.h"
#include "greta/rt/Run.h"
#include "greta/rt/RunStarted.h"
#include "greta/rt/Session.h"
#include "greta/tools/CLI.h"
#include "greta/tools/RunCLI.h"
#include "greta/tools/Version.h"
#ifdef GRETA_HAVE_GPU_RUNTIME
#include "greta/gpu/GpuRun.h"
#endif

#include <chrono>
#include <csignal>
#include <iostream>

#ifndef GRETA_TOOL_NAME
#define GRETA_TOOL_NAME "greta-run-aot"
#endif

namespace rt = ::greta::rt;
#ifdef GRETA_HAVE_GPU_RUNTIME
constexpr bool kGpuRuntime = true;
#else
constexpr bool kGpuRuntime = false;
#endif

namespace {
int fail(const std::string &message) {
  std::cerr << GRETA_TOOL_NAME ": error: " << message << "\n";
  return 2;
}
double secondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

int run(const std::string &model, const std::string &so, rt::RunOptions &o) {
  std::string error, cacheDir;
  rt::Filter filter;
  std::optional<rt::Patch> patch;
  if (!rt::parseRunFlags(o, filter, error) ||
      !rt::readRunPatch(o, std::nullopt, patch, error) ||
      !rt::resolveCacheDir(o, cacheDir, error))
    return fail(error);
  rt::AotObject object;
  if (!object.load(model, so, o, kGpuRuntime, error))
    return fail(error);
  std::optional<rt::Prompt> prompt = rt::loadPrompt(o.promptRequest(), error);
  rt::DecodePlan decode;
  int64_t gpuChunkSize = 0; // GpuRun takes it again from the flags
  if (!prompt ||
      !rt::checkAgainstModel(o, *prompt, object.limits, filter, error) ||
      !rt::planDecode(o, *prompt, object.limits.maxPositions, decode, error) ||
      (object.backend == "gpu" && !rt::gpuChunk(o.decode, gpuChunkSize, error)))
    return fail(error);
  const std::vector<int64_t> &tokens = prompt->ids;

  rt::RunResult result;
  result.model = object.modelName;
  result.precision = object.precision;
  result.backend = object.backend;
  result.cache = "aot";
  result.tokens = static_cast<int64_t>(tokens.size());
  result.tokenizer = prompt->tokenizer.get();
  auto loadStart = std::chrono::steady_clock::now();
  auto weights = rt::SafeTensors::open(o.weights, error);
  if (!weights)
    return fail(error);
  bool isGpu = object.backend == "gpu";
  std::unique_ptr<rt::Session> session;
#ifdef GRETA_HAVE_GPU_RUNTIME
  greta::gpu::GpuRun gpu;
  if (isGpu && !gpu.open(o, object, *weights, result.tokens, error))
    return fail(error);
#endif
  rt::DType compute =
      object.precision == "f64" ? rt::DType::F64 : rt::DType::F32;
  if (!isGpu &&
      !(session = rt::Session::create(*weights, object.params, compute, error)))
    return fail(error);
  result.loadSeconds = secondsSince(loadStart);
  if (o.dryRun) {
    std::cout << rt::dryRunLine(GRETA_TOOL_NAME, object.path, o);
    return 0;
  }

  std::unique_ptr<rt::TraceWriter> writer;
  if (!o.traceDir.empty()) {
    std::string warning;
    rt::Manifest m = rt::buildManifest(
        {object.modelName, object.modelDigest, object.backend,
         object.precision, object.pipeline,
         greta::versionLine(GRETA_TOOL_NAME)},
        *weights, cacheDir, *prompt, filter, warning);
    if (!warning.empty())
      std::cerr << GRETA_TOOL_NAME ": warning: " << warning << "\n";
    rt::recordGeneration(decode, m);
    writer = rt::TraceWriter::create(o.traceDir, m, o.overwrite, error);
    if (!writer)
      return fail("--trace-dir " + o.traceDir + ": " + error);
  }

  // Every input is checked and the trace is locked: from here on a failure
  // is the run's own (greta-bisect's evidence rule, RunStarted.h).
  if (!rt::reportForwardStarted(error))
    return fail(error);
  bool ok = true;
  if (isGpu) {
#ifdef GRETA_HAVE_GPU_RUNTIME
    ok = gpu.run(o, object.forward, tokens, patch, filter, writer.get(),
                 result, error);
#endif
  } else {
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
    for (int64_t r = 0; r < o.repeat && ok; ++r) {
      result.calls = 0;
      session->resetKVCache();
      session->setTrace(r + 1 < o.repeat ? nullptr : writer.get(), filter,
                        result.tokens);
      auto start = std::chrono::steady_clock::now();
      ok = rt::runCpuPlan(object.forward, *session, o, tokens, decode, nullptr,
                          result, r + 1 < o.repeat ? nullptr : writer.get(),
                          error);
      result.forwardSeconds = secondsSince(start);
      result.repeatSeconds.push_back(result.forwardSeconds);
    }
    result.rowsPatched = session->rowsPatched();
    rt::Session::setCurrent(nullptr);
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
  if (!rt::printResult(std::cout, result, o, error))
    return fail(error);
  return 0;
}
} // namespace

int main(int argc, char **argv) {
  std::signal(SIGXFSZ, SIG_IGN);
  std::string model, so;
  rt::RunOptions o;
  CLI::App app{GRETA_TOOL_NAME ": run a model compiled ahead of time by "
               "greta-compile (no LLVM)\n\n"
               "  greta-run-aot MODEL.so --weights W --prompt P [--trace-dir "
               "D] [--layers ..] [--stages ..] [--positions ..] [--payload "
               "..] [--kernel op=variant]\n\nExit codes: 0 ok, 2 error."};
  app.add_option("model", model,
                 "MODEL.so, or the source MODEL.mlir together with --so")
      ->required();
  app.add_option("--so", so, "The shared object (when MODEL is the .mlir)");
  greta::addRunOptions(app, o);
  greta::addVersionFlag(app, GRETA_TOOL_NAME);
  try {
    greta::parseArgs(app, argc, argv);
  } catch (const CLI::ParseError &e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  int rc = run(model, so, o);
  std::cout.flush();
  return rc;
}

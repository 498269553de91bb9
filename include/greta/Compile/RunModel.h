//===- RunModel.h - greta-run's run on the CPU or the GPU ------*- C++ -*-===//
//
// What greta-run does once its flags are parsed. On the CPU: the model read
// and checked, every stage of every layer instrumented, JIT-compiled (or
// loaded from the object cache, CompileModel.h) and run by the runtime's run
// sequence (greta/rt/Run.h). With --backend gpu: the GPU host program
// compiled ahead of time by the sibling greta-compile (cached like the CPU
// objects) and run by the sibling greta-run-aot, which links the GPU runtime
// and kernels (docs/GPU_BACKEND.md).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_COMPILE_RUNMODEL_H
#define GRETA_COMPILE_RUNMODEL_H

#include "greta/rt/Run.h"

#include <string>

namespace greta {

/// greta-run's command line.
struct ModelRunRequest {
  const char *argv0 = nullptr; // finds the sibling tools, digests this one
  std::string model;           // MODEL.mlir or an HF checkpoint directory
  std::string pipeline;        // --pass-pipeline
  std::string dumpLLVM;        // --dump-llvm-ir (cache misses only)
  std::string version;         // GRETA's version: part of the cache key
  bool precisionGiven = false; // the GPU's default precision is f16
  bool repeatGiven = false;    // --repeat applies to --backend gpu only
  rt::RunOptions options;      // backend "cpu" or "gpu", precision set
};

/// Runs the request on its --backend; prints the result (or
/// `greta-run: error: ...`) and returns the exit code: 0 ok, 2 error (the
/// GPU runner's own code with --backend gpu).
int runModel(const ModelRunRequest &request);

} // namespace greta

#endif // GRETA_COMPILE_RUNMODEL_H

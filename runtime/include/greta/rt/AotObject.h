//===- AotObject.h - A model compiled ahead of time -------------*- C++ -*-===//
//
// A shared object written by greta-compile: `_mlir_ciface_forward` and
// `greta_aot_metadata`, a JSON string (parameters, backend, precision, the
// model's limits, name and digest; docs/GPU_BACKEND.md). greta-run-aot loads
// it with dlopen; no LLVM.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_AOTOBJECT_H
#define GRETA_RT_AOTOBJECT_H

#include "greta/rt/Run.h"
#include "greta/rt/Session.h"

#include <string>
#include <vector>

namespace greta::rt {

struct AotObject {
  std::string path; // the object as given
  std::string backend, precision, modelName, modelDigest, pipeline;
  std::vector<ParamSpec> params;
  ModelLimits limits;
  void *forward = nullptr; // _mlir_ciface_forward

  /// Loads `so` (or `model` when it is the .so) and checks it against the
  /// options: --precision and --backend must be the compiled ones, --kernel
  /// needs a GPU object, a GPU object needs `gpuRuntime`; with `so`, `model`
  /// must be the source it was compiled from. Errors name the object.
  bool load(const std::string &model, const std::string &so,
            const RunOptions &options, bool gpuRuntime, std::string &error);
};

} // namespace greta::rt

#endif // GRETA_RT_AOTOBJECT_H

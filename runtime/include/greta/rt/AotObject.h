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

#include "greta/rt/Generate.h"
#include "greta/rt/Run.h"
#include "greta/rt/Session.h"

#include <optional>
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

/// The forward of a GPU object: runtime/gpu's GpuRun implements it; the
/// runtime itself knows no GPU, so runAotObject takes one from the caller.
class DeviceRunner {
public:
  virtual ~DeviceRunner() = default;
  /// Prepares the device for a run that fills `positions` KV cache
  /// positions (decodePositions: the prompt and the fed generated tokens;
  /// --device, --kernel, --kv-block-size).
  virtual bool open(const RunOptions &options, const AotObject &object,
                    const SafeTensors &weights, int64_t positions,
                    std::string &error) = 0;
  /// Runs the prompt and its decode plan (--repeat times, the last traced)
  /// and fills `result`.
  virtual bool run(const RunOptions &options, void *forward,
                   const std::vector<int64_t> &tokens, const DecodePlan &plan,
                   const std::optional<Patch> &patch, const Filter &filter,
                   TraceWriter *writer, RunResult &result,
                   std::string &error) = 0;
};

/// greta-run-aot's whole run of `model` / `so` (AotObject::load): checks,
/// manifest, the forward on the CPU session or on `gpu` (null where the
/// tool was built without one), the result printed on stdout. Messages go
/// to stderr, prefixed with `tool`; `version` is the manifest's producer.
/// Returns the exit code: 0 ok, 2 error.
int runAotObject(const std::string &model, const std::string &so,
                 RunOptions &options, const std::string &tool,
                 const std::string &version, DeviceRunner *gpu);

} // namespace greta::rt

#endif // GRETA_RT_AOTOBJECT_H

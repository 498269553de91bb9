//===- LoadModel.h - Read a greta model the way the tools run it -*- C++ -*-===//
//
// greta-run (JIT) and greta-compile (ahead of time) start alike: read the
// model file, parse it (nesting-checked, ParseMLIR.h), require @forward,
// name it, apply the user's --pass-pipeline and list the parameters the
// compiled code will ask for. One implementation, so the two never disagree
// on what a model is.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_LOADMODEL_H
#define GRETA_LOADMODEL_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace greta {

struct LoadedModel {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::string text; // the file's bytes (its digest identifies the model)
  std::string name; // the greta.model attribute, else the file's stem
  /// Parameters (greta.param) by first use: name and shape, before any
  /// retyping by a later pipeline.
  std::vector<std::pair<std::string, std::vector<int64_t>>> params;
  /// The first perturbed position of every fault the pipeline planted
  /// (greta.perturb): a prompt that ends before it would run clean while
  /// the trace names the fault, so the runners refuse it.
  std::vector<int64_t> faultFromPositions;
};

/// Reads `path` into `sourceMgr` (the caller keeps it, and the diagnostic
/// handler it installed on `ctx`, alive as long as the module) and runs
/// `pipeline` (may be empty) on it. `path` may be an HF checkpoint directory:
/// its config.json is imported (through `cacheDir` when not empty,
/// greta/Target/HF/ImportCheckpoint.h). On failure returns std::nullopt and sets
/// `error` to a message naming the file ("cannot read model ...",
/// "cannot parse model ... (see above)", "... has no func.func @forward",
/// "--pass-pipeline '...': ...").
std::optional<LoadedModel> loadModel(const std::string &path,
                                     const std::string &pipeline,
                                     llvm::SourceMgr &sourceMgr,
                                     mlir::MLIRContext &ctx,
                                     std::string &error,
                                     const std::string &cacheDir = "");

} // namespace greta

#endif // GRETA_LOADMODEL_H

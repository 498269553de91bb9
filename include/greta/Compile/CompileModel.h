//===- CompileModel.h - Instrument, lower, codegen, cache -------*- C++ -*-===//
//
// How a greta model becomes code, for greta-run (JIT, with a cache of
// compiled objects) and greta-compile (a shared object for greta-run-aot):
// the precision (CPU), every stage of every layer instrumented (the runtime
// filter chooses what is recorded, so bisection steps never recompile), the
// lowering to the LLVM dialect for the CPU or the GPU, then O2 code.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_COMPILE_COMPILEMODEL_H
#define GRETA_COMPILE_COMPILEMODEL_H

#include "greta/LoadModel.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/Support/SourceMgr.h"

#include <functional>
#include <memory>
#include <string>

namespace greta {

/// Larger cache entries are not read (an object of the largest models
/// supported is a few MB).
constexpr size_t kMaxCachedObjectBytes = size_t(1) << 30;

/// The context a tool reads a model into: GRETA's dialects and the LLVM
/// translations; diagnostics carry their source locations, without a note
/// dumping the whole module (it would bury them).
class ModelContext {
public:
  ModelContext();
  mlir::MLIRContext &context() { return ctx; }
  llvm::SourceMgr &sourceMgr() { return sources; }

private:
  mlir::MLIRContext ctx;
  llvm::SourceMgr sources;
  mlir::SourceMgrDiagnosticHandler diagnostics;
};

/// What a model is compiled for.
struct CompileTarget {
  bool gpu = false;
  /// cpu: f32, f64, f16 or bf16 (emulated in f32); gpu: f16, bf16 or f32
  /// storage.
  std::string precision = "f32";
};

/// The precision (CPU: greta-convert-precision), then every stage of every
/// layer instrumented (greta-insert-trace). Diagnostics go to the context.
mlir::LogicalResult instrumentModel(mlir::ModuleOp module,
                                    const CompileTarget &target);
/// An instrumented module to the LLVM dialect (greta-lower-to-cpu or
/// greta-lower-to-gpu).
mlir::LogicalResult lowerModel(mlir::ModuleOp module,
                               const CompileTarget &target);

/// A model compiled in this process; one of engine and jit owns the code.
struct JitModel {
  std::unique_ptr<mlir::ExecutionEngine> engine;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  void *forward = nullptr; // _mlir_ciface_forward
  bool cacheHit = false;
  std::string cachePath; // "" without a cache
};

struct JitRequest {
  std::string model;       // how errors name it
  std::string irAfterUser; // the IR after the user's passes: the cache key
  std::string tool;        // the compiler's version and digest: the key too
  std::string cacheDir;    // "" for no cache
  std::string dumpLLVM;    // write the LLVM-dialect module here (misses)
};

/// JIT-compiles an instrumented module at O2 for this host, or loads the
/// object cached under the same key (the IR after the user's passes, the
/// precision, the tool, the host CPU). A damaged cache entry is compiled
/// again and an unwritable cache only warns (`warn`); nullptr with `error`
/// on a failure.
std::unique_ptr<JitModel>
compileForJit(mlir::ModuleOp module, const CompileTarget &target,
              const JitRequest &request,
              const std::function<void(const std::string &)> &warn,
              std::string &error);

struct SharedObjectRequest {
  std::string cpu = "x86-64"; // of the host code; "native" for this one
  std::string outPath;        // the shared object
  std::string cc = "cc";      // links it: cc -shared
  bool keepObject = false;    // keep <outPath>.o
};

/// greta_aot_metadata: what greta-run-aot (no LLVM) needs to drive the
/// object (format 1, docs/GPU_BACKEND.md): the parameters, backend,
/// precision, the user's pipeline, the model's limits, name and digest,
/// the planted faults. Read from `model` before it is lowered.
std::string aotMetadata(const LoadedModel &model, mlir::ModuleOp module,
                        const CompileTarget &target,
                        const std::string &pipeline, const std::string &tool);
/// Adds `metadata` to a lowered module as the exported NUL-terminated
/// string `greta_aot_metadata`.
void embedAotMetadata(mlir::ModuleOp module, const std::string &metadata);

/// A lowered module to O2 code for a portable CPU, an object file, then
/// `cc -shared` (greta-compile).
bool emitSharedObject(mlir::ModuleOp module, const SharedObjectRequest &request,
                      std::string &error);

/// greta-compile's run.
struct AotCompileRequest {
  std::string model;    // MODEL.mlir or an HF checkpoint directory
  std::string pipeline; // --pass-pipeline
  CompileTarget target;
  std::string tool;     // the compiler's version, in the metadata
  std::string dumpLLVM; // write the LLVM-dialect module here ("" for none)
  SharedObjectRequest object;
};
/// The model read with the user's passes, its metadata (aotMetadata),
/// instrumented, lowered, the metadata embedded, then emitSharedObject.
/// False with `error` naming the culprit.
bool compileSharedObject(const AotCompileRequest &request, std::string &error);

/// SHA-256 of this executable: a rebuilt tool (new lowering) never reuses
/// objects an older one compiled, whatever its version string says.
std::string executableDigest(const char *argv0);

} // namespace greta

#endif // GRETA_COMPILE_COMPILEMODEL_H

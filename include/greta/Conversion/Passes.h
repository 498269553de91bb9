//===- Passes.h - greta lowering passes and pipelines -----------*- C++ -*-===//
//
// The CPU lowering of greta IR: the two greta passes (greta-lower-to-kernels,
// greta-kernels-to-calls), the bufferization models of greta.kernel,
// greta.trace and greta.param, and the named pipeline greta-lower-to-cpu.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_CONVERSION_PASSES_H
#define GRETA_CONVERSION_PASSES_H

#include "greta/Dialect/Greta/IR/GretaOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir {
class DialectRegistry;
class OpPassManager;
} // namespace mlir

namespace mlir::greta {
#define GEN_PASS_DECL
#include "greta/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "greta/Conversion/Passes.h.inc"

/// Discardable attribute on a `memref.global` declaration that stands for
/// the model parameter of that (HF) name: the bufferized greta.param.
inline constexpr llvm::StringLiteral kParamGlobalAttr = "greta.param";

/// Discardable attribute holding the stage tags of a bufferized kernel (and
/// of its call): `greta.stages` tags a result, and memref-level kernels have
/// none, so the tags of the value now written to the kernel's out move here.
inline constexpr llvm::StringLiteral kBufferStagesAttr = "greta.buffer_stages";

/// Attaches BufferizableOpInterface models to greta.kernel (destination
/// style: outs in place, ins read), greta.trace (reads, writes nothing,
/// aliases nothing) and greta.param (a read-only parameter global).
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

/// Options of the greta-lower-to-cpu pipeline.
struct LowerToCPUOptions {
  /// Kernel library prefix (greta_<backend>_<op>_<dt>).
  std::string backend = "cpu";
};

/// The part every backend shares: greta-lower-to-kernels, One-Shot Bufferize
/// (function boundaries, identity layouts), buffer deallocation,
/// greta-kernels-to-calls with `calls`, then the conversions to the LLVM
/// dialect. `genericAllocation` makes memref allocations call
/// _mlir_memref_to_llvm_alloc/free (the GPU backend redirects them to the
/// device).
/// `privateDestinations`: every kernel writes a buffer of its own (no two
/// kernels share one through CSE'd tensor.empty destinations), so a traced
/// buffer is never overwritten before it is freed; the GPU's deferred trace
/// relies on it (docs/GPU_BACKEND.md).
/// `freeEarly`: each buffer is freed right after its last use instead of at
/// the end of the function (the CPU, whose kernels finish with a buffer
/// before they return).
void buildKernelCallsToLLVMPipeline(OpPassManager &pm,
                                    const KernelsToCallsOptions &calls,
                                    bool genericAllocation,
                                    bool privateDestinations = false,
                                    bool freeEarly = false);

/// greta (tensors) -> LLVM dialect: greta-lower-to-kernels, One-Shot
/// Bufferize (function boundaries, identity layouts), ownership-based buffer
/// deallocation, greta-kernels-to-calls, then the upstream conversions to
/// the LLVM dialect.
void buildLowerToCPUPipeline(OpPassManager &pm,
                             const LowerToCPUOptions &options = {});

/// Registers greta-lower-to-cpu as a named pipeline.
void registerLowerToCPUPipeline();

/// Options of the greta-lower-to-gpu pipeline (docs/GPU_BACKEND.md).
struct LowerToGPUOptions {
  /// Storage type of every activation and parameter: f16, bf16 or f32.
  std::string storage = "f16";
};

/// greta (f32 tensors) -> LLVM dialect calling the GPU glue layer
/// (runtime/gpu): greta-gpu-storage, greta-lower-to-kernels, One-Shot
/// Bufferize, ownership-based deallocation, greta-kernels-to-calls{backend=gpu
/// device=1}, the LLVM conversions with generic allocation functions, and
/// greta-gpu-device-allocator.
void buildLowerToGPUPipeline(OpPassManager &pm,
                             const LowerToGPUOptions &options = {});

/// Registers greta-lower-to-gpu as a named pipeline.
void registerLowerToGPUPipeline();

/// Registers the conversion passes and the pipelines.
inline void registerGretaConversionPassesAndPipelines() {
  registerGretaConversionPasses();
  registerLowerToCPUPipeline();
  registerLowerToGPUPipeline();
}
} // namespace mlir::greta

#endif // GRETA_CONVERSION_PASSES_H

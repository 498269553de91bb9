//===- LowerToCPU.cpp - The greta-lower-to-cpu pipeline ---------*- C++ -*-===//
//
// greta on tensors -> greta.kernel on tensors -> One-Shot Bufferize ->
// ownership-based deallocation -> C ABI calls -> LLVM dialect. Precision is
// not an option here: greta-convert-precision runs before, so one pipeline
// serves every precision.
//
//===----------------------------------------------------------------------===//
#include "greta/Conversion/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::greta::buildKernelCallsToLLVMPipeline(
    OpPassManager &pm, const KernelsToCallsOptions &calls,
    bool genericAllocation, bool privateDestinations) {
  pm.addPass(createLowerToKernels());
  // Before CSE merges the destinations: alloc_tensor is an allocation, so
  // each kernel keeps its own.
  if (privateDestinations)
    pm.addPass(bufferization::createEmptyTensorToAllocTensorPass());
  // Folds the tensor.dim chains the destinations read.
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  // Identity layouts at function boundaries: @forward's C interface then
  // takes and returns plain row-major descriptors.
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  // Frees every intermediate buffer; the returned logits go to the caller.
  bufferization::buildBufferDeallocationPipeline(pm);

  pm.addPass(createKernelsToCalls(calls));

  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  // Slices with dynamic offsets or sizes leave affine.apply behind.
  pm.addPass(createLowerAffinePass());
  FinalizeMemRefToLLVMConversionPassOptions memrefToLLVM;
  memrefToLLVM.useGenericFunctions = genericAllocation;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefToLLVM));
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
  // Anything not in the llvm dialect now would fail in codegen: say where.
  pm.addPass(createVerifyLowered());
}

void mlir::greta::buildLowerToCPUPipeline(OpPassManager &pm,
                                          const LowerToCPUOptions &options) {
  KernelsToCallsOptions calls;
  calls.backend = options.backend;
  buildKernelCallsToLLVMPipeline(pm, calls, /*genericAllocation=*/false);
}

namespace {
struct LowerToCPUPipelineOptions
    : public PassPipelineOptions<LowerToCPUPipelineOptions> {
  Option<std::string> backend{
      *this, "backend",
      llvm::cl::desc("Kernel library prefix (greta_<backend>_<op>_<dt>)"),
      llvm::cl::init("cpu")};
};
} // namespace

void mlir::greta::registerLowerToCPUPipeline() {
  PassPipelineRegistration<LowerToCPUPipelineOptions>(
      "greta-lower-to-cpu",
      "Lower greta IR to the LLVM dialect calling the CPU kernel library and "
      "the trace runtime (run greta-convert-precision before)",
      [](OpPassManager &pm, const LowerToCPUPipelineOptions &opts) {
        LowerToCPUOptions options;
        options.backend = opts.backend;
        buildLowerToCPUPipeline(pm, options);
      });
}

//===- LowerToCPU.cpp - The greta-lower-to-cpu pipeline ---------*- C++ -*-===//
//
// greta on tensors -> greta.kernel on tensors -> One-Shot Bufferize ->
// ownership-based deallocation -> C ABI calls -> LLVM dialect. Precision is
// not an option here: greta-convert-precision runs before, so one pipeline
// serves every precision.
//
//===----------------------------------------------------------------------===//
#include "RenameAllocators.h"
#include "greta/Conversion/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/BufferViewFlowAnalysis.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

namespace {
/// Ownership-based deallocation frees a block's buffers at its end, so a
/// forward held every intermediate buffer to the end: ~150 MB at 827
/// tokens of llama-tiny, each page faulted in fresh (a quarter of the CPU
/// forward's time), and a peak that grows with the layer count. This moves
/// each memref.dealloc to just after the last op of its block that uses the
/// buffer or a view of it, so the allocator hands the memory to the next
/// layer. Only for backends whose kernels are done with a buffer when they
/// return (the CPU; the GPU traces buffers later, on a side stream).
struct FreeAfterLastUse
    : PassWrapper<FreeAfterLastUse, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(FreeAfterLastUse)
  StringRef getArgument() const override { return "greta-free-after-last-use"; }
  void runOnOperation() override {
    getOperation().walk([](FunctionOpInterface func) {
      BufferViewFlowAnalysis aliases(func);
      SmallVector<memref::DeallocOp> deallocs;
      func.walk([&](memref::DeallocOp d) { deallocs.push_back(d); });
      for (memref::DeallocOp dealloc : deallocs) {
        Block *block = dealloc->getBlock();
        Operation *last = nullptr;
        for (Value alias : aliases.resolve(dealloc.getMemref())) {
          if (Operation *def = alias.getDefiningOp())
            if (Operation *a = block->findAncestorOpInBlock(*def))
              if (!last || last->isBeforeInBlock(a))
                last = a;
          for (Operation *user : alias.getUsers()) {
            if (user == dealloc)
              continue;
            Operation *a = block->findAncestorOpInBlock(*user);
            if (a && (!last || last->isBeforeInBlock(a)))
              last = a;
          }
        }
        if (last && last->isBeforeInBlock(dealloc))
          dealloc->moveAfter(last);
      }
    });
  }
};

/// The compiled model's buffers come from the runtime's allocator
/// (greta/rt/CInterface.h: kept by size for reuse, huge pages for big ones)
/// instead of malloc: memrefs are lowered with the generic allocation
/// functions, renamed here to the runtime's.
struct CpuHostAllocator
    : PassWrapper<CpuHostAllocator, OperationPass<ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(CpuHostAllocator)
  StringRef getArgument() const override { return "greta-cpu-host-allocator"; }
  void runOnOperation() override {
    ModuleOp module = getOperation();
    static const std::pair<StringRef, StringRef> kRenames[] = {
        {"_mlir_memref_to_llvm_alloc", "greta_rt_alloc"},
        {"_mlir_memref_to_llvm_aligned_alloc", "greta_rt_aligned_alloc"},
        {"_mlir_memref_to_llvm_free", "greta_rt_free"}};
    if (failed(mlir::greta::renameAllocators(module, "greta-cpu-host-allocator",
                                             kRenames)))
      signalPassFailure();
  }
};
} // namespace

void mlir::greta::buildKernelCallsToLLVMPipeline(
    OpPassManager &pm, const KernelsToCallsOptions &calls,
    bool genericAllocation, bool privateDestinations, bool freeEarly) {
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
  if (freeEarly)
    pm.addPass(std::make_unique<FreeAfterLastUse>());

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
  buildKernelCallsToLLVMPipeline(pm, calls, /*genericAllocation=*/true,
                                 /*privateDestinations=*/false,
                                 /*freeEarly=*/true);
  pm.addPass(std::make_unique<CpuHostAllocator>());
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

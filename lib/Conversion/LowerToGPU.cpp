//===- LowerToGPU.cpp - The greta-lower-to-gpu pipeline ---------*- C++ -*-===//
//
// greta on f32 tensors -> storage retyping (f16/bf16/f32) -> one grouped
// kernel per mixture-of-experts expert -> greta.kernel on
// tensors -> One-Shot Bufferize -> ownership-based deallocation -> calls to
// the GPU glue layer (greta_gpu_<op>_<dt>, runtime/gpu) -> LLVM dialect with
// every allocation routed to the device allocator. The host program only
// passes descriptors of device buffers around; it never dereferences them.
// docs/GPU_BACKEND.md walks through the levels.
//
//===----------------------------------------------------------------------===//
#include "RenameAllocators.h"
#include "greta/Conversion/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace mlir::greta {
#define GEN_PASS_DEF_GPUSTORAGE
#define GEN_PASS_DEF_GPUDEVICEALLOCATOR
#include "greta/Conversion/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
//===----------------------------------------------------------------------===//
// greta-gpu-storage
//===----------------------------------------------------------------------===//

struct GpuStorage : mlir::greta::impl::GpuStorageBase<GpuStorage> {
  using GpuStorageBase::GpuStorageBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    Type storage;
    if (dtype == "f16")
      storage = Float16Type::get(ctx);
    else if (dtype == "bf16")
      storage = BFloat16Type::get(ctx);
    else if (dtype == "f32")
      storage = Float32Type::get(ctx);
    else {
      module.emitError() << "greta-gpu-storage: unknown dtype '" << dtype
                         << "' (expected f16, bf16 or f32)";
      return signalPassFailure();
    }

    // Mixture of experts: a selection row holds its expert ids as values of
    // the storage type (greta/gpu/MoEKernels.h), exact only up to 2^(p+1)
    // for p mantissa bits: 256 experts in bf16, 2048 in f16.
    int64_t exactIds = dtype == "bf16" ? 256 : dtype == "f16" ? 2048 : 1 << 24;
    WalkResult moe = module.walk([&](MoERouterOp r) {
      int64_t experts =
          cast<RankedTensorType>(r.getLogits().getType()).getDimSize(1);
      if (experts <= exactIds)
        return WalkResult::advance();
      r.emitOpError() << "greta-gpu-storage: " << experts
                      << " experts, but expert ids above " << exactIds
                      << " are not exact in " << dtype
                      << " (the selection stores ids in the storage type); "
                         "use a wider storage type";
      return WalkResult::interrupt();
    });
    if (moe.wasInterrupted())
      return signalPassFailure();

    // f64 tensors: the GPU library has no f64 kernels.
    WalkResult f64 = module.walk([&](Operation *op) {
      for (Type t : op->getResultTypes())
        if (auto tensor = dyn_cast<RankedTensorType>(t))
          if (tensor.getElementType().isF64()) {
            op->emitOpError() << "greta-gpu-storage: f64 tensor " << t
                              << " (the GPU stores f16, bf16 or f32; do not "
                                 "run greta-convert-precision{precision=f64} "
                                 "before the GPU lowering)";
            return WalkResult::interrupt();
          }
      return WalkResult::advance();
    });
    if (f64.wasInterrupted())
      return signalPassFailure();

    // keep-f32 is a CPU emulation of a mixed engine; the GPU would silently
    // store those tensors in the half type too.
    if (auto kept = module->getAttr(
            GretaDialect::getEmulatedKeepF32AttrName())) {
      module.emitError() << "greta-gpu-storage: the module was emulated with "
                            "greta-convert-precision{keep-f32="
                         << kept << "}, but the GPU stores every tensor in "
                         << dtype << " (keep-f32 is CPU emulation only)";
      return signalPassFailure();
    }

    // CPU emulation rounds: one to the storage type is implied by storage.
    SmallVector<RoundOp> rounds;
    module.walk([&](RoundOp r) { rounds.push_back(r); });
    for (RoundOp r : rounds) {
      if (r.getTo() != dtype) {
        r.emitOpError() << "greta-gpu-storage: rounds to " << r.getTo()
                        << " but the GPU storage type is " << dtype;
        return signalPassFailure();
      }
      Operation *producer = r.getInput().getDefiningOp();
      if (producer && !getStageTags(r).empty())
        mergeStageTags(r, producer);
      r.getResult().replaceAllUsesWith(r.getInput());
      r.erase();
    }
    if (dtype == "f32")
      return;
    // A scale's factor is a tensor of the activation dtype in HF (Gemma's
    // normalizer): round it to the storage type.
    module.walk([&](ScaleOp s) {
      APFloat f = s.getFactor();
      bool lost;
      f.convert(cast<FloatType>(storage).getFloatSemantics(),
                APFloat::rmNearestTiesToEven, &lost);
      f.convert(APFloat::IEEEdouble(), APFloat::rmNearestTiesToEven, &lost);
      s.setFactorAttr(FloatAttr::get(s.getFactorAttr().getType(), f));
    });

    auto retype = [&](Type t) -> Type {
      auto tensor = dyn_cast<RankedTensorType>(t);
      if (!tensor || !tensor.getElementType().isF32())
        return t;
      return tensor.clone(storage);
    };
    const llvm::fltSemantics &sem =
        cast<FloatType>(storage).getFloatSemantics();
    module.walk([&](Operation *op) {
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            arg.setType(retype(arg.getType()));
      for (OpResult r : op->getResults())
        r.setType(retype(r.getType()));
      for (NamedAttribute attr : op->getAttrs()) {
        auto dense = dyn_cast<DenseFPElementsAttr>(attr.getValue());
        if (!dense || !dense.getElementType().isF32())
          continue;
        op->setAttr(attr.getName(),
                    dense.mapValues(storage, [&](const APFloat &v) {
                      bool lost;
                      APFloat d = v;
                      d.convert(sem, APFloat::rmNearestTiesToEven, &lost);
                      return d.bitcastToAPInt();
                    }));
      }
      if (auto func = dyn_cast<FunctionOpInterface>(op)) {
        SmallVector<Type> inputs, results;
        for (Type t : func.getArgumentTypes())
          inputs.push_back(retype(t));
        for (Type t : func.getResultTypes())
          results.push_back(retype(t));
        func.setType(FunctionType::get(ctx, inputs, results));
      }
    });
  }
};

//===----------------------------------------------------------------------===//
// greta-gpu-device-allocator
//===----------------------------------------------------------------------===//

struct GpuDeviceAllocator
    : mlir::greta::impl::GpuDeviceAllocatorBase<GpuDeviceAllocator> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    static const std::pair<StringRef, StringRef> kRenames[] = {
        {"_mlir_memref_to_llvm_alloc", "greta_gpu_rt_alloc"},
        {"_mlir_memref_to_llvm_aligned_alloc", "greta_gpu_rt_aligned_alloc"},
        {"_mlir_memref_to_llvm_free", "greta_gpu_rt_free"}};
    for (StringRef host : {"malloc", "free", "aligned_alloc"})
      if (auto f = module.lookupSymbol<LLVM::LLVMFuncOp>(host))
        if (!SymbolTable::symbolKnownUseEmpty(f, module)) {
          f.emitOpError()
              << "greta-gpu-device-allocator: host allocation function @"
              << host
              << " is used; lower memrefs with "
                 "finalize-memref-to-llvm{use-generic-functions=1} so every "
                 "buffer is a device buffer";
          return signalPassFailure();
        }
    if (failed(renameAllocators(module, "greta-gpu-device-allocator", kRenames)))
      signalPassFailure();
  }
};
} // namespace

//===----------------------------------------------------------------------===//
// The pipeline
//===----------------------------------------------------------------------===//

void mlir::greta::buildLowerToGPUPipeline(OpPassManager &pm,
                                          const LowerToGPUOptions &options) {
  GpuStorageOptions storage;
  storage.dtype = options.storage;
  pm.addPass(createGpuStorage(storage));
  pm.addPass(createGpuFuseMoEExperts());
  KernelsToCallsOptions calls;
  calls.backend = "gpu";
  calls.device = true;
  // The GPU traces a buffer after the kernels queued behind it (on a side
  // stream), so no later kernel may write it in place.
  buildKernelCallsToLLVMPipeline(pm, calls, /*genericAllocation=*/true,
                                 /*privateDestinations=*/true);
  pm.addPass(createGpuDeviceAllocator());
}

namespace {
struct LowerToGPUPipelineOptions
    : public PassPipelineOptions<LowerToGPUPipelineOptions> {
  Option<std::string> storage{
      *this, "storage",
      llvm::cl::desc("Storage type of activations and parameters: f16, bf16 "
                     "or f32"),
      llvm::cl::init("f16")};
};
} // namespace

void mlir::greta::registerLowerToGPUPipeline() {
  PassPipelineRegistration<LowerToGPUPipelineOptions>(
      "greta-lower-to-gpu",
      "Lower greta IR (f32) to the LLVM dialect calling the GPU glue layer "
      "on device buffers (storage=f16|bf16|f32)",
      [](OpPassManager &pm, const LowerToGPUPipelineOptions &opts) {
        LowerToGPUOptions options;
        options.storage = opts.storage;
        buildLowerToGPUPipeline(pm, options);
      });
}

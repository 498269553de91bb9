//===- VerifyLowered.cpp - Only LLVM-dialect ops are left -------*- C++ -*-===//
//
// The last step of both pipelines: the LLVM IR translation accepts the llvm
// dialect alone, so anything else is reported here, at its location, rather
// than as "cannot be translated" or a missing symbol in codegen.
//
//===----------------------------------------------------------------------===//
#include "greta/Conversion/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"

namespace mlir::greta {
#define GEN_PASS_DEF_VERIFYLOWERED
#include "greta/Conversion/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;

namespace {
struct VerifyLowered : mlir::greta::impl::VerifyLoweredBase<VerifyLowered> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    WalkResult result = module.walk([&](Operation *op) {
      if (op == module.getOperation() ||
          isa_and_nonnull<LLVM::LLVMDialect>(op->getDialect()))
        return WalkResult::advance();
      op->emitOpError()
          << "is left after lowering: the LLVM IR translation accepts the "
             "llvm dialect only, and no step of the pipeline lowers '"
          << op->getName() << "'";
      return WalkResult::interrupt();
    });
    if (result.wasInterrupted())
      signalPassFailure();
  }
};
} // namespace

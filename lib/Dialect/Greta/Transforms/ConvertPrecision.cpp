//===- ConvertPrecision.cpp - f64 reference and f16/bf16 emulation -*- C++ -*-===//
//
// precision=f64: every f32 tensor of the graph becomes f64 (the reference
// run; parameters are converted on load). precision=f16|bf16: a greta.round
// follows every op that produces a float tensor, so each stage holds values
// representable in the half type, as on a half-precision engine; the stage
// tags move to the round so traces see the rounded values.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::greta {
#define GEN_PASS_DEF_CONVERTPRECISION
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
Type toF64(Type t) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  if (!tensor || !tensor.getElementType().isF32())
    return t;
  return tensor.clone(Float64Type::get(t.getContext()));
}

struct ConvertPrecision
    : mlir::greta::impl::ConvertPrecisionBase<ConvertPrecision> {
  using ConvertPrecisionBase::ConvertPrecisionBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (precision == "f32")
      return;
    if (precision == "f64")
      return convertToF64(module);
    if (precision == "f16" || precision == "bf16")
      return emulateHalf(module);
    module.emitError() << "greta-convert-precision: unknown precision '"
                       << precision << "' (expected f32, f64, f16 or bf16)";
    signalPassFailure();
  }

  void convertToF64(ModuleOp module) {
    module.walk([](func::FuncOp func) {
      for (BlockArgument arg : func.getArguments())
        arg.setType(toF64(arg.getType()));
      func.walk([](Operation *op) {
        for (OpResult r : op->getResults())
          r.setType(toF64(r.getType()));
      });
      FunctionType type = func.getFunctionType();
      SmallVector<Type> inputs, results;
      for (Type t : type.getInputs())
        inputs.push_back(toF64(t));
      for (Type t : type.getResults())
        results.push_back(toF64(t));
      func.setFunctionType(
          FunctionType::get(func.getContext(), inputs, results));
    });
  }

  void emulateHalf(ModuleOp module) {
    SmallVector<Operation *> producers;
    module.walk([&](Operation *op) {
      if (op->getDialect() && isa<GretaDialect>(op->getDialect()) &&
          !isa<RoundOp, TraceOp, KernelOp>(op) && op->getNumResults() == 1 &&
          isa<RankedTensorType>(op->getResult(0).getType()) &&
          isa<FloatType>(
              cast<RankedTensorType>(op->getResult(0).getType())
                  .getElementType()))
        producers.push_back(op);
    });
    for (Operation *op : producers) {
      // Idempotent: an op already followed by a round of the same kind.
      Value value = op->getResult(0);
      if (value.hasOneUse())
        if (auto r = dyn_cast<RoundOp>(*value.getUsers().begin()))
          if (r.getTo() == precision)
            continue;
      OpBuilder builder(op->getContext());
      builder.setInsertionPointAfter(op);
      auto round = RoundOp::create(builder, op->getLoc(), value.getType(),
                                   value, precision);
      value.replaceAllUsesExcept(round.getResult(), round);
      mergeStageTags(op, round);
      op->removeAttr(GretaDialect::getStagesAttrName());
    }
  }
};
} // namespace

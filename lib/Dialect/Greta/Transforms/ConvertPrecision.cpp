//===- ConvertPrecision.cpp - f64 reference and f16/bf16 emulation -*- C++ -*-===//
//
// precision=f64: every f32 tensor type of the graph becomes f64 (the
// reference run; parameters are converted on load): function signatures,
// block arguments, op results and dense f32 constants. precision=f16|bf16: a
// greta.round follows every greta compute op and every tagged op that
// produces an f32 or f64 tensor, so each stage holds values representable in
// the half type, as on a half-precision engine; the stage tags move to the
// round so traces see the rounded values.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

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

/// A float tensor greta.round can round (f32 or f64 storage).
bool isRoundable(Type t) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  return tensor &&
         (tensor.getElementType().isF32() || tensor.getElementType().isF64());
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
                       << precision
                       << "' in option 'precision' (expected f32, f64, f16 "
                          "or bf16)";
    signalPassFailure();
  }

  void convertToF64(ModuleOp module) {
    auto f64 = Float64Type::get(module.getContext());
    module.walk([&](Operation *op) {
      // Every block argument, not only the entry block's.
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            arg.setType(toF64(arg.getType()));
      for (OpResult r : op->getResults())
        r.setType(toF64(r.getType()));
      // A dense f32 constant keeps its value, now in f64.
      for (NamedAttribute attr : op->getAttrs()) {
        auto dense = dyn_cast<DenseFPElementsAttr>(attr.getValue());
        if (!dense || !dense.getElementType().isF32())
          continue;
        op->setAttr(attr.getName(),
                    dense.mapValues(f64, [](const APFloat &v) {
                      bool lost;
                      APFloat d = v;
                      d.convert(APFloat::IEEEdouble(),
                                APFloat::rmNearestTiesToEven, &lost);
                      return d.bitcastToAPInt();
                    }));
      }
      if (auto func = dyn_cast<FunctionOpInterface>(op)) {
        SmallVector<Type> inputs, results;
        for (Type t : func.getArgumentTypes())
          inputs.push_back(toF64(t));
        for (Type t : func.getResultTypes())
          results.push_back(toF64(t));
        func.setType(FunctionType::get(op->getContext(), inputs, results));
      }
    });
  }

  /// Ops whose result a half-precision engine would round: greta's compute
  /// ops, and any tagged op (tags work on any op, and a traced stage must
  /// see the rounded value).
  bool producesRoundedValue(Operation *op) {
    if (op->getNumResults() != 1 || !isRoundable(op->getResult(0).getType()))
      return false;
    if (isa<RoundOp, TraceOp, KernelOp>(op))
      return false;
    return isa_and_nonnull<GretaDialect>(op->getDialect()) ||
           !getStageTags(op).empty();
  }

  void emulateHalf(ModuleOp module) {
    SmallVector<Operation *> producers;
    module.walk([&](Operation *op) {
      if (producesRoundedValue(op))
        producers.push_back(op);
    });
    for (Operation *op : producers) {
      // Idempotent: an op already rounded to this type is left alone.
      Value value = op->getResult(0);
      if (llvm::any_of(value.getUsers(), [&](Operation *user) {
            auto r = dyn_cast<RoundOp>(user);
            return r && r.getTo() == precision;
          }))
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

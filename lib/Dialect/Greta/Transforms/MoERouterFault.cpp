//===- MoERouterFault.cpp - A planted off-by-one expert index ---*- C++ -*-===//
//
// Validates GRETA's routing diagnosis: one layer's router sends the tokens
// from a position on to the expert next to the one it chose (id + 1 mod E),
// as a kernel with an off-by-one index would. greta-bisect must name
// expert_selection (ROUTING/SELECTION) at that layer and position.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/Dialect/Greta/Transforms/Utils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::greta {
#define GEN_PASS_DEF_MOEROUTERFAULT
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
struct MoERouterFault : mlir::greta::impl::MoERouterFaultBase<MoERouterFault> {
  using MoERouterFaultBase::MoERouterFaultBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t layer = this->layer, from = this->fromPosition;
    const char *p = "greta-moe-router-fault: ";
    if (layer < 0) {
      module.emitError() << p << "option 'layer' is required (>= 0), got "
                         << layer;
      return signalPassFailure();
    }
    if (auto n = module->getAttrOfType<IntegerAttr>("greta.num_layers"))
      if (layer >= n.getInt()) {
        module.emitError() << p << "layer " << layer
                           << " is out of range: the model has " << n.getInt()
                           << " layers (greta.num_layers)";
        return signalPassFailure();
      }
    if (from < 0) {
      module.emitError() << p << "option 'from-position' must be >= 0, got "
                         << from;
      return signalPassFailure();
    }
    MoERouterOp target;
    module.walk([&](MoERouterOp router) {
      for (StageAttr tag : getStageTags(router))
        if (tag.getLayer() == layer && tag.getStage() == "expert_selection")
          target = router;
    });
    if (!target) {
      module.emitError() << p << "no greta.moe_router is tagged "
                         << "expert_selection at layer " << layer
                         << " (a dense layer, or not a mixture-of-experts "
                            "model)";
      return signalPassFailure();
    }
    auto func = target->getParentOfType<func::FuncOp>();
    FailureOr<Value> positions =
        func ? getPositionsArgument(func) : FailureOr<Value>(failure());
    if (failed(positions)) {
      if (!func)
        target.emitError() << p << "the router is not inside a func.func";
      return signalPassFailure();
    }
    target.getPositionsMutable().assign(*positions);
    target.setFaultFromPositionAttr(
        OpBuilder(module.getContext()).getI64IntegerAttr(from));
  }
};
} // namespace

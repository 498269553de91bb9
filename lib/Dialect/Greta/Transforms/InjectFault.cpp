//===- InjectFault.cpp - Plant a fault at one stage, layer, position -*- C++ -*-===//
//
// How GRETA's detectors are validated: the value tagged (stage, layer) is
// replaced, for every use, by a greta.perturb of it that changes the rows at
// positions >= from-position. The tags move to the perturb op, so a trace of
// that stage records the faulty value, like a buggy kernel would produce.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/Dialect/Greta/Transforms/Utils.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"

namespace mlir::greta {
#define GEN_PASS_DEF_INJECTFAULT
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;
namespace rt = ::greta::rt;

namespace {
struct InjectFault : mlir::greta::impl::InjectFaultBase<InjectFault> {
  using InjectFaultBase::InjectFaultBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!rt::parseStage(stage)) {
      module.emitError() << "greta-inject-fault: unknown stage '" << stage
                         << "' in option 'stage'";
      return signalPassFailure();
    }
    if (layer < 0) {
      module.emitError()
          << "greta-inject-fault: option 'layer' is required (>= 0)";
      return signalPassFailure();
    }
    if (kind != "scale" && kind != "offset" && kind != "bitflip") {
      module.emitError() << "greta-inject-fault: unknown kind '" << kind
                         << "' (expected scale, offset or bitflip)";
      return signalPassFailure();
    }
    if (fromPosition < 0) {
      module.emitError() << "greta-inject-fault: from-position must be >= 0";
      return signalPassFailure();
    }

    Operation *target = nullptr;
    module.walk([&](Operation *op) {
      for (StageAttr tag : getStageTags(op))
        if (tag.getStage() == stage && tag.getLayer() == layer)
          target = op;
    });
    if (!target) {
      module.emitError() << "greta-inject-fault: no value is tagged stage '"
                         << stage << "' at layer " << layer;
      return signalPassFailure();
    }
    auto func = target->getParentOfType<func::FuncOp>();
    FailureOr<Value> positions = getPositionsArgument(func);
    if (failed(positions))
      return signalPassFailure();

    OpBuilder builder(target->getContext());
    builder.setInsertionPointAfter(target);
    Value value = target->getResult(0);
    auto perturb = PerturbOp::create(
        builder, target->getLoc(), value.getType(), value, *positions,
        builder.getI64IntegerAttr(fromPosition), builder.getStringAttr(kind),
        builder.getF64FloatAttr(magnitude));
    if (failed(mlir::verify(perturb))) // e.g. a bit index too large
      return signalPassFailure();
    value.replaceAllUsesExcept(perturb.getResult(), perturb);
    // The tags name the value the rest of the graph now sees.
    mergeStageTags(target, perturb);
    target->removeAttr(GretaDialect::getStagesAttrName());
  }
};
} // namespace

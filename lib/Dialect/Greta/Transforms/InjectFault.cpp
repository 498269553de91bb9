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
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

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

  /// Checks the options; emits an error on `module` and fails if one is bad.
  LogicalResult checkOptions(ModuleOp module) {
    int64_t layer = this->layer, fromPosition = this->fromPosition;
    double magnitude = this->magnitude;
    if (stage.empty())
      return module.emitError()
             << "greta-inject-fault: option 'stage' is required (one of "
             << getStageNamesList() << ")";
    if (!rt::parseStage(stage))
      return module.emitError()
             << "greta-inject-fault: unknown stage '" << stage
             << "' in option 'stage' (expected one of " << getStageNamesList()
             << ")";
    if (layer < 0)
      return module.emitError()
             << "greta-inject-fault: option 'layer' is required (>= 0), got "
             << layer;
    if (kind != "scale" && kind != "offset" && kind != "bitflip")
      return module.emitError() << "greta-inject-fault: unknown kind '"
                                << kind
                                << "' in option 'kind' (expected scale, "
                                   "offset or bitflip)";
    if (fromPosition < 0)
      return module.emitError()
             << "greta-inject-fault: option 'from-position' must be >= 0, got "
             << fromPosition;
    if (!std::isfinite(magnitude))
      return module.emitError()
             << "greta-inject-fault: option 'magnitude' must be finite";
    // A fault that can touch nothing would leave the run bit-identical to
    // a clean one while its manifest names the fault: out-of-range layers
    // and positions are errors, not no-ops.
    if (auto numLayers = module->getAttrOfType<IntegerAttr>("greta.num_layers"))
      if (layer >= numLayers.getInt())
        return module.emitError()
               << "greta-inject-fault: layer " << layer
               << " is out of range: the model has " << numLayers.getInt()
               << " layers (greta.num_layers), 0 to " << numLayers.getInt() - 1;
    if (auto maxPositions =
            module->getAttrOfType<IntegerAttr>("greta.max_position_embeddings"))
      if (fromPosition >= maxPositions.getInt())
        return module.emitError()
               << "greta-inject-fault: from-position " << fromPosition
               << " perturbs nothing: the model's positions end at "
               << maxPositions.getInt() - 1
               << " (greta.max_position_embeddings = " << maxPositions.getInt()
               << ")";
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkOptions(module)))
      return signalPassFailure();
    // Plain values: pass options do not stream into diagnostics as numbers.
    int64_t layer = this->layer, fromPosition = this->fromPosition;
    double magnitude = this->magnitude;

    SmallVector<Operation *> targets;
    module.walk([&](Operation *op) {
      for (StageAttr tag : getStageTags(op))
        if (tag.getStage() == stage && tag.getLayer() == layer)
          targets.push_back(op);
    });
    if (targets.empty()) {
      module.emitError() << "greta-inject-fault: no value is tagged stage '"
                         << stage << "' at layer " << layer;
      return signalPassFailure();
    }
    if (targets.size() > 1) {
      InFlightDiagnostic diag = targets[1]->emitError()
                                << "greta-inject-fault: stage '" << stage
                                << "' at layer " << layer
                                << " tags several values: which one to "
                                   "perturb is ambiguous";
      diag.attachNote(targets[0]->getLoc()) << "also tagged here";
      return signalPassFailure();
    }
    Operation *target = targets.front();
    Value value = target->getResult(0);
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || type.getRank() != 2) {
      target->emitError() << "greta-inject-fault: can perturb a rank-2 "
                             "tensor (one row per token), the value tagged '"
                          << stage << "' at layer " << layer << " is "
                          << value.getType();
      return signalPassFailure();
    }
    if (kind == "bitflip") {
      unsigned width = type.getElementType().getIntOrFloatBitWidth();
      if (magnitude < 0 || magnitude >= width ||
          magnitude != static_cast<double>(static_cast<int64_t>(magnitude))) {
        module.emitError() << "greta-inject-fault: bitflip magnitude must be "
                              "a bit index in [0, "
                           << width << ") for " << type.getElementType()
                           << ", got " << llvm::formatv("{0}", magnitude).str();
        return signalPassFailure();
      }
    }
    auto func = target->getParentOfType<func::FuncOp>();
    if (!func) {
      target->emitError() << "greta-inject-fault: the value tagged '" << stage
                          << "' at layer " << layer
                          << " is not inside a func.func";
      return signalPassFailure();
    }
    FailureOr<Value> positions = getPositionsArgument(func);
    if (failed(positions))
      return signalPassFailure();

    OpBuilder builder(target->getContext());
    builder.setInsertionPointAfter(target);
    auto perturb = PerturbOp::create(
        builder, target->getLoc(), value.getType(), value, *positions,
        builder.getI64IntegerAttr(fromPosition), builder.getStringAttr(kind),
        builder.getF64FloatAttr(magnitude));
    if (failed(mlir::verify(perturb))) {
      perturb->erase();
      return signalPassFailure();
    }
    // A value can name several stages (residual_post_mlp of layer L is
    // residual_pre_attn of L+1). The fault happens at the target stage: tags
    // earlier in execution order keep naming the clean value, the target and
    // later ones name the perturbed one, and so do all the other uses.
    int64_t targetOrder = rt::executionOrderKey(*rt::parseStage(stage), layer);
    auto orderOf = [](StringRef s, int64_t l) {
      return rt::executionOrderKey(
          *rt::parseStage(std::string_view(s.data(), s.size())), l);
    };
    SmallVector<StageAttr> before, after;
    for (StageAttr tag : getStageTags(target))
      (orderOf(tag.getStage(), tag.getLayer()) < targetOrder ? before : after)
          .push_back(tag);
    value.replaceUsesWithIf(perturb.getResult(), [&](OpOperand &use) {
      if (use.getOwner() == perturb)
        return false;
      auto trace = dyn_cast<TraceOp>(use.getOwner());
      return !trace || orderOf(trace.getStage(), trace.getLayer()) >= targetOrder;
    });
    target->removeAttr(GretaDialect::getStagesAttrName());
    addStageTags(target, before);
    addStageTags(perturb, after);
  }
};
} // namespace

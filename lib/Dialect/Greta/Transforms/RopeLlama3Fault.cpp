//===- RopeLlama3Fault.cpp - A planted llama3 RoPE scaling bug --*- C++ -*-===//
//
// Validates GRETA where long-context bugs live: one layer's q and k
// rotations get the llama3 table of other parameters (a wrong
// low_freq_factor moves the smoothing band), as a kernel reading the wrong
// config field would. Position 0 is never rotated, so the first divergent
// position is 1 (docs/MODELS.md, "Planted bug").
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/RopeLlama3.h"
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/Dialect/Greta/Transforms/Utils.h"

#include "mlir/IR/Builders.h"

#include <cstdio>
#include <string>

namespace mlir::greta {
#define GEN_PASS_DEF_ROPELLAMA3FAULT
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
/// %g: "4", "0.25" (diagnostics stream doubles as 4.000000e+00).
std::string shortNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

struct RopeLlama3Fault
    : mlir::greta::impl::RopeLlama3FaultBase<RopeLlama3Fault> {
  using RopeLlama3FaultBase::RopeLlama3FaultBase;

  LogicalResult checkOptions(ModuleOp module) {
    int64_t layer = this->layer, originalMax = this->originalMaxPosition;
    double factor = this->factor, low = this->lowFreqFactor,
           high = this->highFreqFactor;
    const char *p = "greta-rope-llama3-fault: ";
    if (layer < 0)
      return module.emitError()
             << p << "option 'layer' is required (>= 0), got " << layer;
    if (auto n = module->getAttrOfType<IntegerAttr>("greta.num_layers"))
      if (layer >= n.getInt())
        return module.emitError()
               << p << "layer " << layer << " is out of range: the model has "
               << n.getInt() << " layers (greta.num_layers)";
    if (!(factor > 0) || !(low > 0) || !(high > 0) || originalMax <= 0)
      return module.emitError()
             << p
             << "options 'factor', 'low-freq-factor', 'high-freq-factor' and "
                "'original-max-position' are required and positive";
    if (!(high > low))
      return module.emitError()
             << p << "'high-freq-factor' (" << shortNumber(high)
             << ") must exceed 'low-freq-factor' (" << shortNumber(low) << ")";
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkOptions(module)))
      return signalPassFailure();
    int64_t layer = this->layer;
    SmallVector<RoPEOp> targets;
    module.walk([&](RoPEOp rope) {
      for (StageAttr tag : getStageTags(rope))
        if (tag.getLayer() == layer && (tag.getStage() == "q_post_rope" ||
                                        tag.getStage() == "k_post_rope")) {
          targets.push_back(rope);
          return;
        }
    });
    if (targets.empty()) {
      module.emitError() << "greta-rope-llama3-fault: no greta.rope is "
                            "tagged q_post_rope or k_post_rope at layer "
                         << layer;
      return signalPassFailure();
    }
    for (RoPEOp rope : targets) {
      if (!rope.getInvFreq() || rope.getLongInvFreq() ||
          rope.getDynamicFactor()) {
        rope.emitError() << "greta-rope-llama3-fault: this RoPE has no "
                            "single frequency table (the model is not "
                            "llama3-scaled): the fault would replace its "
                            "RoPE, not plant a bug in the scaling";
        return signalPassFailure();
      }
      std::vector<double> faulty = ::greta::llama3InvFreq(
          rope.getTheta().convertToDouble(), rope.getHeadDim(), factor,
          lowFreqFactor, highFreqFactor, double(originalMaxPosition));
      ArrayRef<double> before = *rope.getInvFreq();
      if (ArrayRef<double>(faulty) == before) {
        rope.emitError() << "greta-rope-llama3-fault: the table comes out "
                            "unchanged (these are the model's own llama3 "
                            "parameters?): the fault would change nothing";
        return signalPassFailure();
      }
      rope.setInvFreqAttr(
          DenseF64ArrayAttr::get(rope.getContext(), ArrayRef<double>(faulty)));
    }
  }
};
} // namespace

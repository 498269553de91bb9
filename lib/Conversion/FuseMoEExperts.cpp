//===- FuseMoEExperts.cpp - greta-gpu-fuse-moe-experts ----------*- C++ -*-===//
//
// One grouped kernel per expert of a mixture-of-experts layer on the GPU:
// the importer's per-expert chain (three linears, a SwiGLU, the weighted
// add on the rows routed to the expert) runs every expert on every row;
// `moe_expert_swiglu` runs it on the routed rows only (Passes.td). Only the
// exact chain the importer builds is matched, so a tagged (traced)
// intermediate or a bias keeps the op-by-op form.
//
//===----------------------------------------------------------------------===//
#include "greta/Conversion/Passes.h"

#include "mlir/IR/Builders.h"

namespace mlir::greta {
#define GEN_PASS_DEF_GPUFUSEMOEEXPERTS
#include "greta/Conversion/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
/// The op defining `v` as an untagged T with one use, or null.
template <typename T> T soleUntagged(Value v) {
  auto op = v.getDefiningOp<T>();
  if (!op || !op->hasOneUse() || !getStageTags(op).empty())
    return nullptr;
  return op;
}

struct ExpertChain {
  LinearOp gate, up, down;
  SwiGLUOp act;
};

/// The chain of one expert feeding `a`, when it is the importer's.
std::optional<ExpertChain> matchExpert(MoEAccumulateOp a) {
  ExpertChain c;
  c.down = soleUntagged<LinearOp>(a.getExpertOut());
  if (!c.down || c.down.getBias())
    return std::nullopt;
  c.act = soleUntagged<SwiGLUOp>(c.down.getInput());
  if (!c.act)
    return std::nullopt;
  c.gate = soleUntagged<LinearOp>(c.act.getGate());
  c.up = soleUntagged<LinearOp>(c.act.getUp());
  if (!c.gate || !c.up || c.gate.getBias() || c.up.getBias() ||
      c.gate.getInput() != c.up.getInput())
    return std::nullopt;
  // The kernel takes every matrix in one element type, rank 2.
  auto rank2 = [](Value v) {
    return cast<RankedTensorType>(v.getType()).getRank() == 2;
  };
  if (!rank2(c.gate.getInput()) || !rank2(c.gate.getWeight()) ||
      !rank2(c.up.getWeight()) || !rank2(c.down.getWeight()))
    return std::nullopt;
  return c;
}

struct GpuFuseMoEExperts
    : mlir::greta::impl::GpuFuseMoEExpertsBase<GpuFuseMoEExperts> {
  void runOnOperation() override {
    SmallVector<MoEAccumulateOp> accs;
    getOperation().walk([&](MoEAccumulateOp a) { accs.push_back(a); });
    for (MoEAccumulateOp a : accs) {
      std::optional<ExpertChain> c = matchExpert(a);
      if (!c)
        continue;
      OpBuilder b(a);
      Location loc = a.getLoc();
      Value x = c->gate.getInput();
      auto type = cast<RankedTensorType>(a.getType());
      SmallVector<Value> dyn;
      if (type.isDynamicDim(0))
        dyn.push_back(tensor::DimOp::create(b, loc, x, 0));
      Value out = tensor::EmptyOp::create(b, loc, type.getShape(),
                                          type.getElementType(), dyn);
      SmallVector<Value> ins{x, a.getSelection()};
      if (Value acc = a.getAcc())
        ins.push_back(acc);
      ins.append({c->gate.getWeight(), c->up.getWeight(),
                  c->down.getWeight(),
                  arith::ConstantOp::create(
                      b, loc, b.getI64IntegerAttr(a.getExpert()))});
      auto kernel = KernelOp::create(
          b, loc, TypeRange{type},
          b.getStringAttr(a.getAcc() ? "moe_expert_swiglu"
                                     : "moe_expert_swiglu_first"),
          ins, ValueRange{out}, UnitAttr());
      mergeStageTags(a, kernel);
      a.getResult().replaceAllUsesWith(kernel.getResult(0));
      a.erase();
      c->down.erase();
      c->act.erase();
      c->gate.erase();
      c->up.erase();
    }
  }
};
} // namespace

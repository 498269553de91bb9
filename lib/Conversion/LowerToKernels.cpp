//===- LowerToKernels.cpp - greta compute ops to greta.kernel ---*- C++ -*-===//
//
// Every greta compute op becomes a destination (`tensor.empty`) plus a
// `greta.kernel` call on tensors, with its scalar attributes turned into
// `arith.constant` ins in the order of the C ABI (greta/rt/CInterface.h:
// ins, then outs). Callee names are backend-neutral; greta-kernels-to-calls
// adds the backend prefix and the dtype suffix after bufferization.
//
//===----------------------------------------------------------------------===//
#include "greta/Conversion/Passes.h"
#include "greta/Dialect/Greta/Transforms/Utils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>

namespace mlir::greta {
#define GEN_PASS_DEF_LOWERTOKERNELS
#include "greta/Conversion/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
/// Where each result dimension's size comes from when it is dynamic: dim
/// `dim` of `source`.
struct DimSource {
  Value source;
  int64_t dim;
};

/// Builds the kernel calls. One instance per rewritten op.
class KernelBuilder {
public:
  KernelBuilder(RewriterBase &rewriter, Operation *op)
      : rewriter(rewriter), op(op), loc(op->getLoc()) {
    rewriter.setInsertionPoint(op);
  }

  Value f64(double v) {
    return arith::ConstantOp::create(rewriter, loc, rewriter.getF64FloatAttr(v));
  }
  Value i64(int64_t v) {
    return arith::ConstantOp::create(rewriter, loc, rewriter.getI64IntegerAttr(v));
  }

  /// The destination of the op's result: `tensor.empty` whose dynamic sizes
  /// come from `sources` (one entry per result dim).
  Value empty(RankedTensorType type, ArrayRef<DimSource> sources) {
    SmallVector<Value> dynSizes;
    for (auto [i, size] : llvm::enumerate(type.getShape())) {
      if (!ShapedType::isDynamic(size))
        continue;
      dynSizes.push_back(
          tensor::DimOp::create(rewriter, loc, sources[i].source,
                                sources[i].dim));
    }
    return tensor::EmptyOp::create(rewriter, loc, type.getShape(),
                                   type.getElementType(), dynSizes);
  }

  /// Replaces the op by `greta.kernel callee ins(...) outs(empty)`, moving
  /// the op's stage tags (and nothing else discardable is lost).
  void replace(StringRef callee, ValueRange ins, ArrayRef<DimSource> sources,
               bool stateful = false) {
    auto type = cast<RankedTensorType>(op->getResult(0).getType());
    Value out = empty(type, sources);
    auto kernel = KernelOp::create(rewriter, loc, TypeRange{type},
                                   rewriter.getStringAttr(callee), ins,
                                   ValueRange{out},
                                   stateful ? rewriter.getUnitAttr()
                                            : UnitAttr());
    mergeStageTags(op, kernel);
    rewriter.replaceOp(op, kernel.getResults());
  }

  /// A rank-1 value through a rank-2 kernel: `input` expanded to [1, n],
  /// the kernel, then collapsed back. The tags go on the collapse, which
  /// produces the value they name.
  void replaceRank1(StringRef callee, Value input, ValueRange scalars) {
    auto type = cast<RankedTensorType>(op->getResult(0).getType());
    auto rowType = RankedTensorType::get({1, type.getDimSize(0)},
                                         type.getElementType());
    SmallVector<ReassociationIndices> reassoc{{0, 1}};
    SmallVector<OpFoldResult> rowShape{rewriter.getIndexAttr(1)};
    if (type.isDynamicDim(0))
      rowShape.push_back(
          tensor::DimOp::create(rewriter, loc, input, 0).getResult());
    else
      rowShape.push_back(rewriter.getIndexAttr(type.getDimSize(0)));
    Value row = tensor::ExpandShapeOp::create(rewriter, loc, rowType, input,
                                              reassoc, rowShape);
    Value out = empty(rowType, {{row, 0}, {row, 1}});
    SmallVector<Value> ins{row};
    ins.append(scalars.begin(), scalars.end());
    auto kernel = KernelOp::create(rewriter, loc, TypeRange{rowType},
                                   rewriter.getStringAttr(callee), ins,
                                   ValueRange{out}, UnitAttr());
    auto collapse = tensor::CollapseShapeOp::create(
        rewriter, loc, type, kernel.getResult(0), reassoc);
    mergeStageTags(op, collapse);
    rewriter.replaceOp(op, collapse.getResult());
  }

  /// A per-head kernel (Qwen3's q_norm/k_norm): [S, h*d] is viewed as
  /// [S*h, d] rows (expand_shape then collapse_shape: no copy), the kernel
  /// runs on them, and the result is viewed back as [S, h*d]. The tags go on
  /// the last collapse, which produces the tagged value.
  void replacePerHead(StringRef callee, Value input, int64_t headDim,
                      ValueRange rest) {
    auto type = cast<RankedTensorType>(op->getResult(0).getType());
    Type et = type.getElementType();
    int64_t heads = type.getDimSize(1) / headDim;
    auto split = RankedTensorType::get({type.getDimSize(0), heads, headDim}, et);
    auto rowsType =
        RankedTensorType::get({ShapedType::kDynamic, headDim}, et);
    SmallVector<OpFoldResult> splitShape{
        tensor::DimOp::create(rewriter, loc, input, 0).getResult(),
        rewriter.getIndexAttr(heads), rewriter.getIndexAttr(headDim)};
    if (!type.isDynamicDim(0))
      splitShape[0] = rewriter.getIndexAttr(type.getDimSize(0));
    SmallVector<ReassociationIndices> toSplit{{0}, {1, 2}};
    SmallVector<ReassociationIndices> toRows{{0, 1}, {2}};
    Value x3 = tensor::ExpandShapeOp::create(rewriter, loc, split, input,
                                             toSplit, splitShape);
    Value rows = tensor::CollapseShapeOp::create(rewriter, loc, rowsType, x3,
                                                 toRows);
    Value out = empty(rowsType, {{rows, 0}, {rows, 1}});
    SmallVector<Value> ins{rows};
    ins.append(rest.begin(), rest.end());
    auto kernel = KernelOp::create(rewriter, loc, TypeRange{rowsType},
                                   rewriter.getStringAttr(callee), ins,
                                   ValueRange{out}, UnitAttr());
    Value back = tensor::ExpandShapeOp::create(
        rewriter, loc, split, kernel.getResult(0), toRows, splitShape);
    auto collapse =
        tensor::CollapseShapeOp::create(rewriter, loc, type, back, toSplit);
    mergeStageTags(op, collapse);
    rewriter.replaceOp(op, collapse.getResult());
  }

  /// A constant f64 table [rows.size(), n] (RoPE frequencies): it bufferizes
  /// to a constant global the kernel reads.
  Value table(ArrayRef<ArrayRef<double>> rows) {
    int64_t n = rows.front().size();
    SmallVector<double> flat;
    for (ArrayRef<double> r : rows)
      flat.append(r.begin(), r.end());
    auto type = RankedTensorType::get({static_cast<int64_t>(rows.size()), n},
                                      rewriter.getF64Type());
    return arith::ConstantOp::create(
        rewriter, loc, DenseElementsAttr::get(type, ArrayRef<double>(flat)));
  }

private:
  RewriterBase &rewriter;
  Operation *op;
  Location loc;
};

/// The CPU kernels take int64 ids and positions (CInterface.h).
LogicalResult expectI64(Operation *op, StringRef what, Value v) {
  auto type = cast<ShapedType>(v.getType());
  if (!type.getElementType().isInteger(64))
    return op->emitOpError() << "greta-lower-to-kernels: " << what
                             << " must be i64 for the kernel library (the C "
                                "ABI takes int64 ids and positions), got "
                             << type;
  return success();
}

int64_t faultKindCode(StringRef kind) {
  return llvm::StringSwitch<int64_t>(kind)
      .Case("scale", 0)
      .Case("offset", 1)
      .Case("bitflip", 2)
      .Default(-1);
}

int64_t roundKindCode(StringRef to) {
  return llvm::StringSwitch<int64_t>(to).Case("f16", 0).Case("bf16", 1).Default(
      -1);
}

LogicalResult lower(RewriterBase &rewriter, Operation *op) {
  KernelBuilder kb(rewriter, op);
  return llvm::TypeSwitch<Operation *, LogicalResult>(op)
      .Case([&](EmbeddingOp e) {
        if (failed(expectI64(op, "ids", e.getIds())))
          return failure();
        kb.replace("embedding", {e.getTable(), e.getIds()},
                   {{e.getIds(), 0}, {e.getTable(), 1}});
        return success();
      })
      .Case([&](RMSNormOp n) {
        // Gemma's (offset + w): its own kernel, the offset after eps.
        SmallVector<Value> scalars{kb.f64(n.getEps().convertToDouble())};
        StringRef callee = "rms_norm";
        if (std::optional<APFloat> offset = n.getWeightOffset()) {
          scalars.push_back(kb.f64(offset->convertToDouble()));
          callee = "rms_norm_offset";
        }
        SmallVector<Value> rest{n.getWeight()};
        rest.append(scalars);
        if (n.getHeadDim()) {
          kb.replacePerHead(callee, n.getInput(), n.getHeadDimAttr().getInt(),
                            rest);
          return success();
        }
        SmallVector<Value> ins{n.getInput()};
        ins.append(rest);
        kb.replace(callee, ins, {{n.getInput(), 0}, {n.getInput(), 1}});
        return success();
      })
      .Case([&](LinearOp l) {
        SmallVector<Value> ins{l.getInput(), l.getWeight()};
        if (Value bias = l.getBias())
          ins.push_back(bias);
        kb.replace(l.getBias() ? "linear_bias" : "linear", ins,
                   {{l.getInput(), 0}, {l.getWeight(), 0}});
        return success();
      })
      .Case([&](RoPEOp r) {
        if (failed(expectI64(op, "positions", r.getPositions())))
          return failure();
        DimSource rows{r.getInput(), 0}, cols{r.getInput(), 1};
        double attentionFactor =
            r.getAttentionFactor() ? r.getAttentionFactor()->convertToDouble()
                                   : 1.0;
        if (r.getDynamicFactor()) {
          // Dynamic NTK: the kernel rescales theta for the call's positions.
          kb.replace("rope_dynamic",
                     {r.getInput(), r.getPositions(),
                      kb.f64(r.getTheta().convertToDouble()),
                      kb.f64(r.getDynamicFactor()->convertToDouble()),
                      kb.i64(r.getDynamicMaxPositionAttr().getInt()),
                      kb.i64(r.getHeadDim())},
                     {rows, cols});
          return success();
        }
        if (r.getInvFreq() || attentionFactor != 1.0) {
          // Frequencies from a table: one row, or longrope's short and long
          // rows and the position + 1 above which the long row applies.
          SmallVector<double> plain;
          ArrayRef<double> inv;
          if (r.getInvFreq()) {
            inv = *r.getInvFreq();
          } else {
            int64_t d = r.getHeadDim();
            for (int64_t i = 0; i < d / 2; ++i)
              plain.push_back(1.0 / std::pow(r.getTheta().convertToDouble(),
                                             double(2 * i) / double(d)));
            inv = plain;
          }
          SmallVector<ArrayRef<double>> tableRows{inv};
          int64_t longFrom = 0;
          if (r.getLongInvFreq()) {
            tableRows.push_back(*r.getLongInvFreq());
            longFrom = r.getLongFromAttr().getInt();
          }
          kb.replace("rope_table",
                     {r.getInput(), r.getPositions(), kb.table(tableRows),
                      kb.i64(longFrom), kb.f64(attentionFactor),
                      kb.i64(r.getHeadDim())},
                     {rows, cols});
          return success();
        }
        kb.replace("rope",
                   {r.getInput(), r.getPositions(),
                    kb.f64(r.getTheta().convertToDouble()),
                    kb.i64(r.getHeadDim())},
                   {rows, cols});
        return success();
      })
      .Case([&](AttentionOp a) {
        if (failed(expectI64(op, "positions", a.getPositions())))
          return failure();
        SmallVector<Value> ins{a.getQ(),
                               a.getK(),
                               a.getV(),
                               a.getPositions(),
                               kb.i64(a.getNumHeads()),
                               kb.i64(a.getNumKvHeads()),
                               kb.i64(a.getHeadDim()),
                               kb.f64(a.getScale().convertToDouble()),
                               kb.i64(a.getCacheSlot())};
        // A sliding window is its own entry point, the window last.
        StringRef callee = "attention";
        if (a.getSlidingWindow()) {
          ins.push_back(kb.i64(a.getSlidingWindowAttr().getInt()));
          callee = "attention_window";
        }
        kb.replace(callee, ins, {{a.getQ(), 0}, {a.getQ(), 1}},
                   /*stateful=*/true);
        return success();
      })
      .Case([&](SwiGLUOp s) {
        kb.replace("swiglu", {s.getGate(), s.getUp()},
                   {{s.getGate(), 0}, {s.getGate(), 1}});
        return success();
      })
      .Case([&](GeGLUOp g) {
        kb.replace("geglu", {g.getGate(), g.getUp()},
                   {{g.getGate(), 0}, {g.getGate(), 1}});
        return success();
      })
      .Case([&](ScaleOp s) {
        kb.replace("scale",
                   {s.getInput(), kb.f64(s.getFactor().convertToDouble())},
                   {{s.getInput(), 0}, {s.getInput(), 1}});
        return success();
      })
      .Case([&](MoERouterOp r) {
        int64_t experts =
            cast<RankedTensorType>(r.getLogits().getType()).getDimSize(1);
        DimSource rows{r.getLogits(), 0};
        // The columns are static (2k): no DimSource is read for them.
        if (Value pos = r.getPositions()) { // the planted off-by-one variant
          if (failed(expectI64(op, "positions", pos)))
            return failure();
          kb.replace("moe_router_fault",
                     {r.getLogits(), pos, kb.i64(r.getTopK()),
                      kb.i64(r.getNormalize()), kb.i64(experts),
                      kb.i64(r.getFaultFromPositionAttr().getInt())},
                     {rows, rows});
          return success();
        }
        kb.replace(
            "moe_router",
            {r.getLogits(), kb.i64(r.getTopK()), kb.i64(r.getNormalize())},
            {rows, rows});
        return success();
      })
      .Case([&](MoEAccumulateOp a) {
        DimSource rows{a.getExpertOut(), 0}, cols{a.getExpertOut(), 1};
        if (Value acc = a.getAcc()) {
          kb.replace(
              "moe_accumulate",
              {a.getExpertOut(), a.getSelection(), acc, kb.i64(a.getExpert())},
              {rows, cols});
          return success();
        }
        kb.replace("moe_accumulate_first",
                   {a.getExpertOut(), a.getSelection(), kb.i64(a.getExpert())},
                   {rows, cols});
        return success();
      })
      .Case([&](SigmoidGateAddOp g) {
        kb.replace("sigmoid_gate_add", {g.getX(), g.getY(), g.getGate()},
                   {{g.getX(), 0}, {g.getX(), 1}});
        return success();
      })
      .Case([&](AddOp a) {
        kb.replace("add", {a.getLhs(), a.getRhs()},
                   {{a.getLhs(), 0}, {a.getLhs(), 1}});
        return success();
      })
      .Case([&](RoundOp r) -> LogicalResult {
        auto type = cast<RankedTensorType>(r.getType());
        Value kind = kb.i64(roundKindCode(r.getTo()));
        if (type.getRank() == 2) {
          kb.replace("round", {r.getInput(), kind},
                     {{r.getInput(), 0}, {r.getInput(), 1}});
          return success();
        }
        if (type.getRank() != 1)
          return r.emitOpError() << "greta-lower-to-kernels: the round "
                                    "kernel takes rank 1 or 2 tensors, got "
                                 << type;
        // Rank 1 (norm weights under f16/bf16 emulation): round as one row.
        kb.replaceRank1("round", r.getInput(), {kind});
        return success();
      })
      .Case([&](PerturbOp p) {
        if (failed(expectI64(op, "positions", p.getPositions())))
          return failure();
        kb.replace("inject_fault",
                   {p.getInput(), p.getPositions(),
                    kb.i64(p.getFromPosition()),
                    kb.i64(faultKindCode(p.getKind())),
                    kb.f64(p.getMagnitude().convertToDouble())},
                   {{p.getInput(), 0}, {p.getInput(), 1}});
        return success();
      })
      .Default([](Operation *) { return success(); });
}

struct LowerToKernels
    : mlir::greta::impl::LowerToKernelsBase<LowerToKernels> {
  using LowerToKernelsBase::LowerToKernelsBase;

  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<EmbeddingOp, RMSNormOp, LinearOp, RoPEOp, AttentionOp, SwiGLUOp,
              GeGLUOp, ScaleOp, AddOp, RoundOp, PerturbOp, MoERouterOp,
              MoEAccumulateOp, SigmoidGateAddOp>(op))
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    bool failedAny = false;
    for (Operation *op : ops)
      if (failed(lower(rewriter, op)))
        failedAny = true;
    if (failedAny)
      return signalPassFailure();
    // The positions marker is consumed: the kernels now take the positions
    // as operands, and the marker (valid on tensors only) would not survive
    // bufferization and the LLVM lowering of the signature.
    getOperation().walk([](func::FuncOp func) {
      for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
        func.removeArgAttr(i, kPositionsArgAttr);
    });
  }
};
} // namespace

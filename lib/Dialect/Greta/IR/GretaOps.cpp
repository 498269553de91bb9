//===- GretaOps.cpp - greta op verifiers ------------------------*- C++ -*-===//
//
// Every verifier names the operand and the dimension that is wrong, so a
// malformed graph is fixed from the message alone.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/IR/GretaOps.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/Support/Format.h"

#include <cmath>

using namespace mlir;
using namespace mlir::greta;
namespace rt = ::greta::rt;

namespace {
/// Two dims are compatible when equal or when either is dynamic.
bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}
/// A double as a user wrote it: 1e-05, 32, 1.5, inf, nan.
std::string fmt(double v) {
  std::string s;
  llvm::raw_string_ostream(s) << llvm::format("%g", v);
  return s;
}
std::string dimStr(int64_t d) {
  return ShapedType::isDynamic(d) ? std::string("?") : std::to_string(d);
}
LogicalResult expectRank(Operation *op, StringRef what, ShapedType t,
                         int64_t rank) {
  if (t.getRank() != rank)
    return op->emitOpError() << what << " must have rank " << rank
                             << ", got " << t;
  return success();
}
LogicalResult expectSameElementType(Operation *op, StringRef what,
                                    ShapedType t, ShapedType ref) {
  if (t.getElementType() != ref.getElementType())
    return op->emitOpError() << what << " element type " << t.getElementType()
                             << " differs from " << ref.getElementType();
  return success();
}
LogicalResult expectDim(Operation *op, StringRef what, int64_t actual,
                        int64_t expected, StringRef because) {
  if (!dimsCompatible(actual, expected))
    return op->emitOpError() << what << " is " << dimStr(actual)
                             << ", expected " << dimStr(expected) << " ("
                             << because << ")";
  return success();
}
/// A positive, finite floating-point attribute (eps, theta, scale).
LogicalResult expectPositiveFinite(Operation *op, StringRef what,
                                   APFloat value) {
  double v = value.convertToDouble();
  if (!std::isfinite(v) || !(v > 0.0))
    return op->emitOpError() << what << " must be positive and finite, got "
                             << fmt(v);
  return success();
}
} // namespace

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError() << "parameter name must not be empty";
  if (!getType().hasStaticShape())
    return emitOpError() << "parameter '" << getName()
                         << "' must have a static shape, got " << getType();
  if (getType().getRank() < 1)
    return emitOpError() << "parameter '" << getName()
                         << "' must have rank >= 1, got " << getType();
  return success();
}

LogicalResult EmbeddingOp::verify() {
  auto table = getTable().getType(), result = getResult().getType();
  auto ids = getIds().getType();
  if (failed(expectRank(*this, "table", table, 2)) ||
      failed(expectRank(*this, "ids", ids, 1)) ||
      failed(expectRank(*this, "result", result, 2)) ||
      failed(expectSameElementType(*this, "result", result, table)))
    return failure();
  if (failed(expectDim(*this, "result dim 0", result.getDimSize(0),
                       ids.getDimSize(0), "one row per id")) ||
      failed(expectDim(*this, "result dim 1", result.getDimSize(1),
                       table.getDimSize(1), "the table's hidden size")))
    return failure();
  return success();
}

LogicalResult RMSNormOp::verify() {
  auto in = getInput().getType(), w = getWeight().getType(),
       result = getResult().getType();
  if (failed(expectRank(*this, "input", in, 2)) ||
      failed(expectRank(*this, "weight", w, 1)) ||
      failed(expectSameElementType(*this, "weight", w, in)))
    return failure();
  if (result != in)
    return emitOpError() << "result type " << result
                         << " must equal the input type " << in;
  if (std::optional<uint64_t> attr = getHeadDim()) {
    // ODS returns I64Attr values as uint64_t: read them signed.
    int64_t d = getHeadDimAttr().getInt();
    if (d <= 0)
      return emitOpError() << "head_dim must be positive, got " << d;
    if (ShapedType::isDynamic(in.getDimSize(1)) || in.getDimSize(1) % d)
      return emitOpError() << "input dim 1 must be a static multiple of "
                              "head_dim "
                           << d << " (one norm per head), got " << in;
    if (failed(expectDim(*this, "weight dim 0", w.getDimSize(0), d,
                         "head_dim: the norm is per head")))
      return failure();
  } else if (failed(expectDim(*this, "weight dim 0", w.getDimSize(0),
                              in.getDimSize(1), "the input's hidden size"))) {
    return failure();
  }
  if (std::optional<APFloat> offset = getWeightOffset())
    if (!std::isfinite(offset->convertToDouble()))
      return emitOpError() << "weight_offset must be finite, got "
                           << fmt(offset->convertToDouble());
  return expectPositiveFinite(*this, "eps", getEps());
}

LogicalResult LinearOp::verify() {
  auto in = getInput().getType(), w = getWeight().getType(),
       result = getResult().getType();
  if (failed(expectRank(*this, "input", in, 2)) ||
      failed(expectRank(*this, "weight", w, 2)) ||
      failed(expectRank(*this, "result", result, 2)) ||
      failed(expectSameElementType(*this, "weight", w, in)) ||
      failed(expectSameElementType(*this, "result", result, in)))
    return failure();
  if (failed(expectDim(*this, "weight dim 1", w.getDimSize(1),
                       in.getDimSize(1),
                       "weight is [out, in]: its in must match the input's "
                       "last dim")) ||
      failed(expectDim(*this, "result dim 0", result.getDimSize(0),
                       in.getDimSize(0), "one row per input row")) ||
      failed(expectDim(*this, "result dim 1", result.getDimSize(1),
                       w.getDimSize(0), "the weight's out dim")))
    return failure();
  if (Value bias = getBias()) {
    auto b = cast<RankedTensorType>(bias.getType());
    if (failed(expectRank(*this, "bias", b, 1)) ||
        failed(expectSameElementType(*this, "bias", b, in)) ||
        failed(expectDim(*this, "bias dim 0", b.getDimSize(0),
                         w.getDimSize(0), "the weight's out dim")))
      return failure();
  }
  return success();
}

LogicalResult RoPEOp::verify() {
  auto in = getInput().getType(), pos = getPositions().getType();
  if (failed(expectRank(*this, "input", in, 2)) ||
      failed(expectRank(*this, "positions", pos, 1)))
    return failure();
  if (getResult().getType() != in)
    return emitOpError() << "result type " << getResult().getType()
                         << " must equal the input type " << in;
  int64_t d = getHeadDimAttr().getInt();
  if (d <= 0 || d % 2)
    return emitOpError() << "head_dim must be positive and even (rotate-half "
                            "pairs column i with i + head_dim/2), got "
                         << d;
  // The op has no head count: a static width is the only way to know that
  // the rows hold a whole number of heads.
  if (ShapedType::isDynamic(in.getDimSize(1)))
    return emitOpError() << "input dim 1 must be static (a whole number of "
                            "heads of head_dim "
                         << d << " columns), got " << in;
  if (in.getDimSize(1) % d)
    return emitOpError() << "input dim 1 (" << in.getDimSize(1)
                         << ") is not a multiple of head_dim (" << d << ")";
  if (failed(expectDim(*this, "positions dim 0", pos.getDimSize(0),
                       in.getDimSize(0), "one position per row")))
    return failure();
  if (failed(expectPositiveFinite(*this, "theta", getTheta())))
    return failure();
  return verifyScaling();
}

LogicalResult RoPEOp::verifyScaling() {
  int64_t half = getHeadDimAttr().getInt() / 2;
  auto table = [&](StringRef what,
                   std::optional<ArrayRef<double>> values) -> LogicalResult {
    if (!values)
      return success();
    if (static_cast<int64_t>(values->size()) != half)
      return emitOpError() << what << " has " << values->size()
                           << " values, expected head_dim/2 = " << half;
    for (auto [i, v] : llvm::enumerate(*values))
      if (!std::isfinite(v) || !(v > 0))
        return emitOpError() << what << "[" << i
                             << "] must be positive and finite, got " << fmt(v);
    return success();
  };
  if (failed(table("inv_freq", getInvFreq())) ||
      failed(table("long_inv_freq", getLongInvFreq())))
    return failure();
  if (getLongInvFreq().has_value() != getLongFrom().has_value() ||
      (getLongInvFreq() && !getInvFreq()))
    return emitOpError() << "long_inv_freq and long_from go together, with "
                            "inv_freq (longrope's short and long tables)";
  if (getLongFrom() && getLongFromAttr().getInt() <= 0)
    return emitOpError() << "long_from must be positive, got "
                         << getLongFromAttr().getInt();
  if (getDynamicFactor().has_value() != getDynamicMaxPosition().has_value())
    return emitOpError() << "dynamic_factor and dynamic_max_position go "
                            "together (dynamic NTK)";
  if (getDynamicFactor()) {
    if (getInvFreq())
      return emitOpError() << "dynamic NTK derives its frequencies from theta: "
                              "it takes no inv_freq";
    if (failed(expectPositiveFinite(*this, "dynamic_factor",
                                    *getDynamicFactor())))
      return failure();
    if (getDynamicMaxPositionAttr().getInt() <= 0)
      return emitOpError() << "dynamic_max_position must be positive, got "
                           << getDynamicMaxPositionAttr().getInt();
  }
  if (std::optional<APFloat> f = getAttentionFactor())
    return expectPositiveFinite(*this, "attention_factor", *f);
  return success();
}

LogicalResult AttentionOp::verify() {
  auto q = getQ().getType(), k = getK().getType(), v = getV().getType();
  auto pos = getPositions().getType();
  if (failed(expectRank(*this, "q", q, 2)) ||
      failed(expectRank(*this, "k", k, 2)) ||
      failed(expectRank(*this, "v", v, 2)) ||
      failed(expectRank(*this, "positions", pos, 1)) ||
      failed(expectSameElementType(*this, "k", k, q)) ||
      failed(expectSameElementType(*this, "v", v, q)))
    return failure();
  int64_t h = getNumHeadsAttr().getInt(), kvh = getNumKvHeadsAttr().getInt(),
          d = getHeadDimAttr().getInt();
  if (h <= 0 || kvh <= 0 || d <= 0)
    return emitOpError() << "num_heads (" << h << "), num_kv_heads (" << kvh
                         << ") and head_dim (" << d << ") must be positive";
  if (h % kvh)
    return emitOpError() << "num_heads (" << h
                         << ") is not a multiple of num_kv_heads (" << kvh
                         << ")";
  if (failed(expectDim(*this, "q dim 1", q.getDimSize(1), h * d,
                       "num_heads * head_dim")) ||
      failed(expectDim(*this, "k dim 1", k.getDimSize(1), kvh * d,
                       "num_kv_heads * head_dim")) ||
      failed(expectDim(*this, "v dim 1", v.getDimSize(1), kvh * d,
                       "num_kv_heads * head_dim")) ||
      failed(expectDim(*this, "k dim 0", k.getDimSize(0), q.getDimSize(0),
                       "one key per query row")) ||
      failed(expectDim(*this, "v dim 0", v.getDimSize(0), q.getDimSize(0),
                       "one value per query row")) ||
      failed(expectDim(*this, "v dim 0", v.getDimSize(0), k.getDimSize(0),
                       "one value per key row")) ||
      failed(expectDim(*this, "positions dim 0", pos.getDimSize(0),
                       q.getDimSize(0), "one position per row")) ||
      failed(expectDim(*this, "positions dim 0", pos.getDimSize(0),
                       k.getDimSize(0), "one position per key row")))
    return failure();
  if (getResult().getType() != q)
    return emitOpError() << "result type " << getResult().getType()
                         << " must equal the q type " << q;
  if (failed(expectPositiveFinite(*this, "scale", getScale())))
    return failure();
  // ODS returns I64Attr values as uint64_t: read them signed.
  if (getCacheSlotAttr().getInt() < 0)
    return emitOpError() << "cache_slot must be non-negative, got "
                         << getCacheSlotAttr().getInt();
  if (getSlidingWindow() && getSlidingWindowAttr().getInt() <= 0)
    return emitOpError() << "sliding_window must be positive, got "
                         << getSlidingWindowAttr().getInt();
  return success();
}

LogicalResult ScaleOp::verify() {
  double f = getFactor().convertToDouble();
  if (!std::isfinite(f) || f == 0)
    return emitOpError() << "factor must be finite and non-zero, got "
                         << fmt(f);
  return success();
}

LogicalResult TraceOp::verify() {
  // ODS returns I64Attr values as uint64_t: read them signed.
  int64_t layer = getLayerAttr().getInt();
  int64_t recordId = getRecordIdAttr().getInt();
  if (failed(verifyStageAndLayer([&] { return emitOpError(); }, getStage(),
                                 layer, getNumLayers(*this))))
    return failure();
  std::optional<rt::Stage> stage = rt::parseStage(
      std::string_view(getStage().data(), getStage().size()));
  if (recordId != rt::recordId(*stage, layer))
    return emitOpError() << "record_id " << recordId
                         << " does not match stage '" << getStage()
                         << "' at layer " << layer << " (expected "
                         << rt::recordId(*stage, layer) << ")";
  auto type = cast<ShapedType>(getInput().getType());
  if (type.getRank() < 1)
    return emitOpError() << "traced value must have rank >= 1 (one record per "
                            "row), got "
                         << type;
  return success();
}

LogicalResult PerturbOp::verify() {
  auto in = getInput().getType(), pos = getPositions().getType();
  if (failed(expectRank(*this, "input", in, 2)) ||
      failed(expectRank(*this, "positions", pos, 1)) ||
      failed(expectDim(*this, "positions dim 0", pos.getDimSize(0),
                       in.getDimSize(0), "one position per row")))
    return failure();
  if (getResult().getType() != in)
    return emitOpError() << "result type " << getResult().getType()
                         << " must equal the input type " << in;
  if (getKind() != "scale" && getKind() != "offset" && getKind() != "bitflip")
    return emitOpError() << "unknown fault kind '" << getKind()
                         << "' (expected scale, offset or bitflip)";
  if (getFromPositionAttr().getInt() < 0)
    return emitOpError() << "from_position must be non-negative, got "
                         << getFromPositionAttr().getInt();
  if (!std::isfinite(getMagnitude().convertToDouble()))
    return emitOpError() << "magnitude must be finite, got "
                         << fmt(getMagnitude().convertToDouble());
  if (getKind() == "bitflip") {
    double bit = getMagnitude().convertToDouble();
    unsigned width = in.getElementType().getIntOrFloatBitWidth();
    if (bit < 0 || bit >= width || bit != static_cast<int64_t>(bit))
      return emitOpError() << "bitflip magnitude must be a bit index in [0, "
                           << width << "), got " << fmt(bit);
  }
  return success();
}

LogicalResult RoundOp::verify() {
  if (getTo() != "f16" && getTo() != "bf16")
    return emitOpError() << "can round to f16 or bf16, not '" << getTo()
                         << "'";
  Type element = getType().getElementType();
  if (!element.isF32() && !element.isF64())
    return emitOpError() << "rounds an f32 or f64 tensor (the storage type "
                            "is kept), got element type "
                         << element;
  return success();
}

//===----------------------------------------------------------------------===//
// KernelOp
//===----------------------------------------------------------------------===//

LogicalResult KernelOp::verify() {
  if (getCallee().empty())
    return emitOpError() << "callee must not be empty";
  for (auto [i, t] : llvm::enumerate(getOuts().getTypes()))
    if (!isa<RankedTensorType, MemRefType>(t))
      return emitOpError() << "out #" << i
                           << " must be a ranked tensor or a memref, got "
                           << t;
  bool onTensors = llvm::all_of(getOuts().getTypes(), [](Type t) {
    return isa<RankedTensorType>(t);
  });
  bool onBuffers = llvm::all_of(getOuts().getTypes(), [](Type t) {
    return isa<MemRefType>(t);
  });
  if (!onTensors && !onBuffers)
    return emitOpError() << "outs must be all tensors or all memrefs, got "
                         << getOuts().getTypes();
  if (onTensors) {
    if (getResults().size() != getOuts().size())
      return emitOpError() << "on tensors, needs one result per out ("
                           << getOuts().size() << "), has "
                           << getResults().size();
    for (auto [i, pair] :
         llvm::enumerate(llvm::zip(getOuts().getTypes(),
                                   getResults().getTypes())))
      if (std::get<0>(pair) != std::get<1>(pair))
        return emitOpError() << "result #" << i << " type "
                             << std::get<1>(pair) << " differs from out #"
                             << i << " type " << std::get<0>(pair);
  } else if (!getResults().empty()) {
    return emitOpError() << "on memrefs, must have no results, has "
                         << getResults().size();
  }
  return success();
}

void KernelOp::getEffects(
    SmallVectorImpl<SideEffects::EffectInstance<MemoryEffects::Effect>>
        &effects) {
  for (OpOperand &operand : getInsMutable())
    if (isa<MemRefType>(operand.get().getType()))
      effects.emplace_back(MemoryEffects::Read::get(), &operand,
                           SideEffects::DefaultResource::get());
  for (OpOperand &operand : getOutsMutable())
    if (isa<MemRefType>(operand.get().getType()))
      effects.emplace_back(MemoryEffects::Write::get(), &operand,
                           SideEffects::DefaultResource::get());
  if (getStateful()) {
    effects.emplace_back(MemoryEffects::Read::get(), KVCacheResource::get());
    effects.emplace_back(MemoryEffects::Write::get(), KVCacheResource::get());
  }
}

MutableOperandRange KernelOp::getDpsInitsMutable() { return getOutsMutable(); }

#define GET_OP_CLASSES
#include "greta/Dialect/Greta/IR/GretaOps.cpp.inc"

LogicalResult MoERouterOp::verify() {
  auto in = getLogits().getType(), result = getResult().getType();
  if (failed(expectRank(*this, "logits", in, 2)) ||
      failed(expectRank(*this, "result", result, 2)) ||
      failed(expectSameElementType(*this, "result", result, in)))
    return failure();
  int64_t experts = in.getDimSize(1), k = getTopKAttr().getInt();
  if (ShapedType::isDynamic(experts))
    return emitOpError() << "logits must have a static number of experts "
                            "(dim 1), got "
                         << in;
  if (k < 1 || k > experts)
    return emitOpError() << "top_k must be in [1, " << experts
                         << "] (the number of experts), got " << k;
  if (failed(expectDim(*this, "result dim 0", result.getDimSize(0),
                       in.getDimSize(0), "one row per token")) ||
      failed(expectDim(*this, "result dim 1", result.getDimSize(1), 2 * k,
                       "the top_k ids, then their top_k weights")))
    return failure();
  if (bool(getPositions()) != bool(getFaultFromPositionAttr()))
    return emitOpError() << "'positions' and 'fault_from_position' go "
                            "together (the planted off-by-one fault)";
  if (Value pos = getPositions()) {
    auto p = cast<RankedTensorType>(pos.getType());
    if (failed(expectRank(*this, "positions", p, 1)) ||
        failed(expectDim(*this, "positions dim 0", p.getDimSize(0),
                         in.getDimSize(0), "one position per token")))
      return failure();
    if (getFaultFromPositionAttr().getInt() < 0)
      return emitOpError() << "fault_from_position must be >= 0, got "
                           << getFaultFromPositionAttr().getInt();
  }
  return success();
}

LogicalResult MoEAccumulateOp::verify() {
  auto y = getExpertOut().getType(), sel = getSelection().getType(),
       result = getResult().getType();
  if (failed(expectRank(*this, "expert_out", y, 2)) ||
      failed(expectRank(*this, "selection", sel, 2)) ||
      failed(expectSameElementType(*this, "selection", sel, y)) ||
      failed(expectSameElementType(*this, "result", result, y)))
    return failure();
  if (getExpertAttr().getInt() < 0)
    return emitOpError() << "expert must be >= 0, got "
                         << getExpertAttr().getInt();
  if (!ShapedType::isDynamic(sel.getDimSize(1)) && sel.getDimSize(1) % 2)
    return emitOpError() << "selection dim 1 must be even (k ids, then k "
                            "weights), got "
                         << sel.getDimSize(1);
  if (failed(expectDim(*this, "selection dim 0", sel.getDimSize(0),
                       y.getDimSize(0), "one row per token")))
    return failure();
  if (result != y &&
      (failed(expectRank(*this, "result", result, 2)) ||
       failed(expectDim(*this, "result dim 1", result.getDimSize(1),
                        y.getDimSize(1), "expert_out's width"))))
    return failure();
  if (Value acc = getAcc())
    if (acc.getType() != y)
      return emitOpError() << "acc type " << acc.getType()
                           << " differs from expert_out's " << y;
  return success();
}

LogicalResult SigmoidGateAddOp::verify() {
  auto x = getX().getType(), y = getY().getType(), g = getGate().getType(),
       result = getResult().getType();
  if (failed(expectRank(*this, "x", x, 2)) ||
      failed(expectRank(*this, "gate", g, 2)) ||
      failed(expectSameElementType(*this, "gate", g, x)))
    return failure();
  if (y != x || result != x)
    return emitOpError() << "x, y and the result must have one type, got " << x
                         << ", " << y << " and " << result;
  if (failed(expectDim(*this, "gate dim 1", g.getDimSize(1), 1,
                       "one gate per token")) ||
      failed(expectDim(*this, "gate dim 0", g.getDimSize(0), x.getDimSize(0),
                       "one row per token")))
    return failure();
  return success();
}

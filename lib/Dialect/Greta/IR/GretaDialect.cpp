//===- GretaDialect.cpp - The greta dialect ---------------------*- C++ -*-===//
//
// Registration, the stage attribute and the verification of the dialect's
// discardable attributes (`greta.stages`, `greta.num_layers`) and of the
// `greta.positions` argument attribute.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Dialect/Greta/IR/GretaOps.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::greta;
namespace rt = ::greta::rt;

#include "greta/Dialect/Greta/IR/GretaDialect.cpp.inc"
#include "greta/Dialect/Greta/IR/GretaEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "greta/Dialect/Greta/IR/GretaAttrs.cpp.inc"

void GretaDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "greta/Dialect/Greta/IR/GretaOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "greta/Dialect/Greta/IR/GretaAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// Stages and layers
//===----------------------------------------------------------------------===//

std::string mlir::greta::getStageNamesList() {
  std::string list;
  for (rt::Stage s : rt::kExecutionOrder) {
    if (rt::isCacheStage(s))
      continue; // recorded by the runtime's attention, never in the IR
    if (!list.empty())
      list += ", ";
    list += rt::stageName(s);
  }
  return list;
}

LogicalResult
mlir::greta::verifyStageAndLayer(function_ref<InFlightDiagnostic()> emitError,
                                 StringRef stage, int64_t layer,
                                 std::optional<int64_t> numLayers) {
  std::optional<rt::Stage> s =
      rt::parseStage(std::string_view(stage.data(), stage.size()));
  if (!s)
    return emitError() << "unknown stage '" << stage << "' (expected one of "
                       << getStageNamesList() << ")";
  if (rt::isCacheStage(*s))
    return emitError() << "stage '" << stage
                       << "' is recorded by the runtime's KV cache, not by "
                          "a compiled value (expected one of "
                       << getStageNamesList() << ")";
  if (layer < 0)
    return emitError() << "stage '" << stage << "' has negative layer "
                       << layer;
  if (numLayers && layer >= *numLayers)
    return emitError() << "stage '" << stage << "' at layer " << layer
                       << " is out of range: the model has " << *numLayers
                       << " layers (greta.num_layers)";
  if (*s == rt::Stage::EmbedOut && layer != 0)
    return emitError() << "stage 'embed_out' happens once, before layer 0, "
                          "and must be tagged layer 0, got layer "
                       << layer;
  if (*s == rt::Stage::Logits && numLayers && layer != *numLayers - 1)
    return emitError() << "stage 'logits' happens once, after the last "
                          "layer, and must be tagged layer "
                       << *numLayers - 1 << ", got layer " << layer;
  return success();
}

LogicalResult
StageAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                  StringRef stage, int64_t layer) {
  // The layer bound needs the enclosing module: checked where the tag is used.
  return verifyStageAndLayer(emitError, stage, layer, std::nullopt);
}

//===----------------------------------------------------------------------===//
// Payload: `#greta<payload hash>`, with a specific error for a bad keyword
//===----------------------------------------------------------------------===//

Attribute PayloadAttr::parse(AsmParser &parser, Type) {
  llvm::SMLoc loc = parser.getCurrentLocation();
  StringRef keyword;
  if (failed(parser.parseKeyword(&keyword))) {
    parser.emitError(loc, "expected a payload kind: hash, stats or full");
    return {};
  }
  std::optional<Payload> value = symbolizePayload(keyword);
  if (!value) {
    parser.emitError(loc) << "unknown payload '" << keyword
                          << "' (expected hash, stats or full)";
    return {};
  }
  return PayloadAttr::get(parser.getContext(), *value);
}

void PayloadAttr::print(AsmPrinter &printer) const {
  printer << ' ' << stringifyPayload(getValue());
}

std::optional<int64_t> mlir::greta::getNumLayers(Operation *op) {
  for (Operation *p = op; p; p = p->getParentOp())
    if (auto attr = p->getAttrOfType<IntegerAttr>(
            GretaDialect::getNumLayersAttrName()))
      return attr.getInt();
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Discardable attributes
//===----------------------------------------------------------------------===//

/// A value one trace record per row can be taken of.
static bool isTraceableType(Type type) {
  auto shaped = dyn_cast<ShapedType>(type);
  return shaped && isa<RankedTensorType, MemRefType>(type) &&
         shaped.getRank() >= 1 && isa<FloatType>(shaped.getElementType());
}

static LogicalResult verifyStagesAttr(Operation *op, Attribute value) {
  StringRef name = GretaDialect::getStagesAttrName();
  auto array = dyn_cast<ArrayAttr>(value);
  if (!array)
    return op->emitOpError() << "'" << name
                           << "' must be an array of #greta.stage attributes, "
                              "got "
                           << value;
  if (array.empty())
    return op->emitOpError() << "'" << name
                           << "' must not be empty (remove the attribute "
                              "instead)";
  if (op->getNumResults() != 1)
    return op->emitOpError() << "'" << name
                           << "' tags a value: the op must have exactly one "
                              "result, it has "
                           << op->getNumResults();
  Type type = op->getResult(0).getType();
  if (!isTraceableType(type))
    return op->emitOpError() << "'" << name
                           << "' tags a traced value: the result must be a "
                              "ranked tensor or memref of floats with rank >= "
                              "1 (one record per row), got "
                           << type;
  std::optional<int64_t> numLayers = getNumLayers(op);
  for (auto [i, a] : llvm::enumerate(array)) {
    auto tag = dyn_cast<StageAttr>(a);
    if (!tag)
      return op->emitOpError() << "'" << name << "' element #" << i
                             << " must be a #greta.stage attribute, got " << a;
    auto emit = [&] { return op->emitOpError(); };
    if (failed(verifyStageAndLayer(emit, tag.getStage(), tag.getLayer(),
                                   numLayers)))
      return failure();
    for (Attribute earlier : array.getValue().take_front(i))
      if (earlier == a)
        return op->emitOpError() << "'" << name << "' holds " << a
                               << " twice";
  }
  return success();
}

LogicalResult GretaDialect::verifyOperationAttribute(Operation *op,
                                                     NamedAttribute attr) {
  if (attr.getName() == getNumLayersAttrName()) {
    auto n = dyn_cast<IntegerAttr>(attr.getValue());
    if (!n || n.getType().isInteger(1) || n.getInt() <= 0)
      return op->emitOpError() << "'" << getNumLayersAttrName()
                             << "' must be a positive integer, got "
                             << attr.getValue();
    return success();
  }
  if (attr.getName() == getStagesAttrName())
    return verifyStagesAttr(op, attr.getValue());
  if (attr.getName() == getPositionsAttrName())
    return op->emitOpError() << "'" << getPositionsAttrName()
                           << "' marks a function argument (the token "
                              "positions), not an op";
  // Other greta.* attributes are model metadata (greta.hidden_size, ...).
  return success();
}

LogicalResult GretaDialect::verifyRegionArgAttribute(Operation *op,
                                                     unsigned regionIndex,
                                                     unsigned argIndex,
                                                     NamedAttribute attr) {
  if (attr.getName() != getPositionsAttrName())
    return success();
  if (!isa<UnitAttr>(attr.getValue()))
    return op->emitOpError() << "'" << getPositionsAttrName()
                           << "' must be a unit attribute, got "
                           << attr.getValue();
  auto func = dyn_cast<FunctionOpInterface>(op);
  if (!func)
    return op->emitOpError() << "'" << getPositionsAttrName()
                           << "' marks an argument of a function";
  Type type = func.getArgumentTypes()[argIndex];
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || tensor.getRank() != 1 ||
      !(tensor.getElementType().isSignlessInteger(64) ||
        tensor.getElementType().isSignlessInteger(32)))
    return op->emitOpError() << "argument #" << argIndex << " marked '"
                           << getPositionsAttrName()
                           << "' must be a 1-D tensor of i64 or i32 (one "
                              "position per token), got "
                           << type;
  for (unsigned i = 0; i < argIndex; ++i)
    if (func.getArgAttr(i, getPositionsAttrName()))
      return op->emitOpError() << "arguments #" << i << " and #" << argIndex
                             << " are both marked '" << getPositionsAttrName()
                             << "': a function has one positions argument";
  return success();
}

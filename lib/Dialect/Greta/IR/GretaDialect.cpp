//===- GretaDialect.cpp - The greta dialect ---------------------*- C++ -*-===//
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Dialect/Greta/IR/GretaOps.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
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

LogicalResult
StageAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                  StringRef stage, int64_t layer) {
  if (!rt::parseStage(std::string_view(stage.data(), stage.size())))
    return emitError() << "unknown stage '" << stage
                       << "' (expected one of embed_out, residual_pre_attn, "
                          "attn_in, q_pre_rope, k_pre_rope, q_post_rope, "
                          "k_post_rope, attn_out, residual_post_attn, "
                          "ffn_norm_in, mlp_out, residual_post_mlp, logits)";
  if (layer < 0)
    return emitError() << "stage '" << stage << "' has negative layer "
                       << layer;
  return success();
}

/// Layer bound from the enclosing module's `greta.num_layers`, if any.
static std::optional<int64_t> getNumLayers(Operation *op) {
  for (Operation *p = op; p; p = p->getParentOp())
    if (auto attr = p->getAttrOfType<IntegerAttr>(
            GretaDialect::getNumLayersAttrName()))
      return attr.getInt();
  return std::nullopt;
}

LogicalResult GretaDialect::verifyOperationAttribute(Operation *op,
                                                     NamedAttribute attr) {
  if (attr.getName() == getNumLayersAttrName()) {
    auto n = dyn_cast<IntegerAttr>(attr.getValue());
    if (!n || n.getInt() <= 0)
      return op->emitError() << "'" << getNumLayersAttrName()
                             << "' must be a positive integer";
    return success();
  }
  if (attr.getName() != getStagesAttrName())
    return success();
  auto array = dyn_cast<ArrayAttr>(attr.getValue());
  if (!array)
    return op->emitError() << "'" << getStagesAttrName()
                           << "' must be an array of #greta.stage attributes";
  if (op->getNumResults() != 1)
    return op->emitError() << "'" << getStagesAttrName()
                           << "' tags a value: the op must have exactly one "
                              "result, it has "
                           << op->getNumResults();
  std::optional<int64_t> numLayers = getNumLayers(op);
  for (Attribute a : array) {
    auto tag = dyn_cast<StageAttr>(a);
    if (!tag)
      return op->emitError() << "'" << getStagesAttrName()
                             << "' must hold only #greta.stage attributes, got "
                             << a;
    if (numLayers && tag.getLayer() >= *numLayers)
      return op->emitError() << "stage '" << tag.getStage() << "' at layer "
                             << tag.getLayer() << " is out of range: the model has "
                             << *numLayers << " layers";
  }
  return success();
}

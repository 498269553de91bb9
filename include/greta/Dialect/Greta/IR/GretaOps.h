//===- GretaOps.h - greta ops, attributes and stage tags --------*- C++ -*-===//
#ifndef GRETA_DIALECT_GRETA_IR_GRETAOPS_H
#define GRETA_DIALECT_GRETA_IR_GRETAOPS_H

#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "greta/Dialect/Greta/IR/GretaEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "greta/Dialect/Greta/IR/GretaAttrs.h.inc"

#define GET_OP_CLASSES
#include "greta/Dialect/Greta/IR/GretaOps.h.inc"

namespace mlir::greta {

/// The stage tags of `op` (empty if it has none or the attribute is malformed).
SmallVector<StageAttr> getStageTags(Operation *op);
/// Adds `tags` to the tag set of `op`, skipping duplicates, keeping order.
void addStageTags(Operation *op, ArrayRef<StageAttr> tags);
/// Moves the tag set of `from` onto `to` (merging): lowering and fusion use
/// this so that no tag is ever dropped.
void mergeStageTags(Operation *from, Operation *to);

/// The layer count of the model `op` belongs to: `greta.num_layers` on the
/// closest ancestor (or `op` itself) that carries it; nullopt if none does.
std::optional<int64_t> getNumLayers(Operation *op);

/// Checks that (stage, layer) names a real record of a model with
/// `numLayers` layers (when known): a known stage, a non-negative layer below
/// `numLayers`, `embed_out` at layer 0 and `logits` at the last layer.
/// `what` introduces the pair in messages ("tag", "trace").
LogicalResult verifyStageAndLayer(function_ref<InFlightDiagnostic()> emitError,
                                  StringRef stage, int64_t layer,
                                  std::optional<int64_t> numLayers);

/// The list of every stage name, comma separated, for error messages.
std::string getStageNamesList();

} // namespace mlir::greta

#endif

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

} // namespace mlir::greta

#endif

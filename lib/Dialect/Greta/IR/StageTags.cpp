//===- StageTags.cpp - Reading and merging stage tags -----------*- C++ -*-===//
#include "greta/Dialect/Greta/IR/GretaOps.h"

using namespace mlir;
using namespace mlir::greta;

SmallVector<StageAttr> mlir::greta::getStageTags(Operation *op) {
  SmallVector<StageAttr> tags;
  auto array =
      op->getAttrOfType<ArrayAttr>(GretaDialect::getStagesAttrName());
  if (!array)
    return tags;
  for (Attribute a : array)
    if (auto tag = dyn_cast<StageAttr>(a))
      tags.push_back(tag);
  return tags;
}

void mlir::greta::addStageTags(Operation *op, ArrayRef<StageAttr> tags) {
  if (tags.empty())
    return;
  SmallVector<Attribute> merged;
  if (auto array =
          op->getAttrOfType<ArrayAttr>(GretaDialect::getStagesAttrName()))
    merged.append(array.begin(), array.end());
  for (StageAttr tag : tags)
    if (!llvm::is_contained(merged, tag))
      merged.push_back(tag);
  op->setAttr(GretaDialect::getStagesAttrName(),
              ArrayAttr::get(op->getContext(), merged));
}

void mlir::greta::mergeStageTags(Operation *from, Operation *to) {
  addStageTags(to, getStageTags(from));
}

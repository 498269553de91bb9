//===- MergeDuplicateStages.cpp - CSE that unites stage tag sets -*- C++ -*-===//
//
// MLIR's CSE compares discardable attributes, so two ops identical but for
// their tags both survive it. This pass merges ops that are equivalent when
// the `greta.stages` attribute is ignored and unites their tag sets: no tag
// is ever dropped.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"

#include "mlir/IR/Dominance.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseMap.h"

namespace mlir::greta {
#define GEN_PASS_DEF_MERGEDUPLICATESTAGES
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

//===----------------------------------------------------------------------===//
// greta-merge-duplicate-stages
//===----------------------------------------------------------------------===//

namespace {
/// The discardable attributes of `op` except its stage tags.
DictionaryAttr getAttrsButTags(Operation *op) {
  NamedAttrList attrs;
  for (NamedAttribute a : op->getDiscardableAttrs())
    if (a.getName() != GretaDialect::getStagesAttrName())
      attrs.push_back(a);
  return attrs.getDictionary(op->getContext());
}

/// An op CSE could merge: no memory effects, no regions, some result.
bool isMergeCandidate(Operation *op) {
  return op->getNumResults() > 0 && op->getNumRegions() == 0 &&
         op->getNumSuccessors() == 0 &&
         !op->hasTrait<OpTrait::IsTerminator>() && isMemoryEffectFree(op);
}

llvm::hash_code hashButTags(Operation *op) {
  return llvm::hash_combine(
      op->getName(), getAttrsButTags(op), op->hashProperties(),
      llvm::hash_combine_range(op->getOperands().begin(),
                               op->getOperands().end()),
      llvm::hash_combine_range(op->getResultTypes().begin(),
                               op->getResultTypes().end()));
}

bool equivalentButTags(Operation *a, Operation *b) {
  return a->getName() == b->getName() &&
         a->getOperands() == b->getOperands() &&
         a->getResultTypes() == b->getResultTypes() &&
         a->getName().compareOpProperties(a->getPropertiesStorage(),
                                          b->getPropertiesStorage()) &&
         getAttrsButTags(a) == getAttrsButTags(b);
}

struct MergeDuplicateStages
    : mlir::greta::impl::MergeDuplicateStagesBase<MergeDuplicateStages> {
  void runOnOperation() override {
    auto &dom = getAnalysis<DominanceInfo>();
    // Program order: post-order visits an op without regions after every op
    // that precedes it.
    SmallVector<Operation *> candidates;
    getOperation().walk([&](Operation *op) {
      if (isMergeCandidate(op))
        candidates.push_back(op);
    });

    llvm::DenseMap<llvm::hash_code, SmallVector<Operation *, 2>> seen;
    SmallVector<Operation *> merged;
    for (Operation *op : candidates) {
      // Hashed now: earlier merges may have rewritten the operands.
      auto &bucket = seen[hashButTags(op)];
      Operation *kept = nullptr;
      for (Operation *earlier : bucket)
        if (equivalentButTags(earlier, op) &&
            dom.properlyDominates(earlier, op)) {
          kept = earlier;
          break;
        }
      if (!kept) {
        bucket.push_back(op);
        continue;
      }
      addStageTags(kept, getStageTags(op));
      op->replaceAllUsesWith(kept);
      merged.push_back(op);
    }
    for (Operation *op : merged)
      op->erase();
    if (merged.empty())
      markAllAnalysesPreserved();
  }
};
} // namespace

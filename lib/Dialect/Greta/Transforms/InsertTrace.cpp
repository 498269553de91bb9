//===- InsertTrace.cpp - Insert greta.trace after tagged stages -*- C++ -*-===//
//
// greta-insert-trace walks ops carrying `greta.stages` tags and inserts one
// greta.trace per selected (stage, layer) tag right after the producer
// (IREE's InjectTensorTracing has the same shape). Runs early, so every later
// pass keeps the traces (they have a write effect on the trace resource).
//
// greta-merge-duplicate-stages, the tag-aware CSE that prepares a graph for
// tracing, lives here too: it is the other pass that reads tag sets as a
// whole. (It can move to its own file once Transforms/CMakeLists.txt lists
// one.)
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Dominance.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::greta {
#define GEN_PASS_DEF_INSERTTRACE
#define GEN_PASS_DEF_MERGEDUPLICATESTAGES
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;
namespace rt = ::greta::rt;

//===----------------------------------------------------------------------===//
// greta-insert-trace
//===----------------------------------------------------------------------===//

namespace {
struct InsertTrace : mlir::greta::impl::InsertTraceBase<InsertTrace> {
  using InsertTraceBase::InsertTraceBase;

  /// Checks the options; emits an error on `module` and fails if one is bad.
  LogicalResult checkOptions(ModuleOp module) {
    if (!symbolizePayload(payload))
      return module.emitError()
             << "greta-insert-trace: unknown payload '" << payload
             << "' in option 'payload' (expected hash, stats or full)";
    for (const std::string &s : stages)
      if (!rt::parseStage(s))
        return module.emitError()
               << "greta-insert-trace: unknown stage '" << s
               << "' in option 'stages' (expected one of "
               << getStageNamesList() << ")";
    std::optional<int64_t> numLayers = getNumLayers(module);
    for (int64_t l : layers) {
      if (l < 0)
        return module.emitError() << "greta-insert-trace: negative layer "
                                  << l << " in option 'layers'";
      if (numLayers && l >= *numLayers)
        return module.emitError()
               << "greta-insert-trace: layer " << l
               << " in option 'layers' is out of range: the model has "
               << *numLayers << " layers (greta.num_layers)";
    }
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkOptions(module)))
      return signalPassFailure();
    Payload payloadKind = *symbolizePayload(payload);
    llvm::StringSet<> stageSet;
    for (const std::string &s : stages)
      stageSet.insert(s);
    llvm::DenseSet<int64_t> layerSet(layers.begin(), layers.end());

    // (value, record id) pairs already traced: makes the pass idempotent.
    llvm::DenseSet<std::pair<Value, int64_t>> traced;
    module.walk([&](TraceOp trace) {
      traced.insert({trace.getInput(), trace.getRecordId()});
    });

    // Collect first: the rewrite below creates and reorders ops.
    SmallVector<Operation *> tagged;
    module.walk([&](Operation *op) {
      if (op->getNumResults() == 1 && !getStageTags(op).empty())
        tagged.push_back(op);
    });

    for (Operation *op : tagged) {
      SmallVector<StageAttr> tags = getStageTags(op);
      Value value = op->getResult(0);

      // The traces of this value that already follow the op, contiguously.
      SmallVector<TraceOp> run;
      for (Operation *next = op->getNextNode(); next;
           next = next->getNextNode()) {
        auto trace = dyn_cast<TraceOp>(next);
        if (!trace || trace.getInput() != value)
          break;
        run.push_back(trace);
      }

      OpBuilder builder(op->getContext());
      builder.setInsertionPointAfter(run.empty() ? op : run.back());
      bool created = false;
      for (StageAttr tag : tags) {
        if (!stageSet.empty() && !stageSet.contains(tag.getStage()))
          continue;
        if (!layerSet.empty() && !layerSet.contains(tag.getLayer()))
          continue;
        rt::Stage stage = *rt::parseStage(
            std::string_view(tag.getStage().data(), tag.getStage().size()));
        int64_t id = rt::recordId(stage, tag.getLayer());
        if (!traced.insert({value, id}).second)
          continue;
        auto trace = TraceOp::create(builder, op->getLoc(), value,
                                     tag.getStage(), tag.getLayer(), id,
                                     payloadKind);
        builder.setInsertionPointAfter(trace);
        run.push_back(trace);
        created = true;
      }
      if (!created)
        continue;

      // Traces of one value follow the op in tag order (the order the tags
      // list them, which is execution order), whichever run inserted them.
      auto tagIndex = [&](TraceOp t) -> size_t {
        for (auto [i, tag] : llvm::enumerate(tags))
          if (tag.getStage() == t.getStage() && tag.getLayer() == t.getLayer())
            return i;
        return tags.size();
      };
      llvm::stable_sort(run, [&](TraceOp a, TraceOp b) {
        return tagIndex(a) < tagIndex(b);
      });
      Operation *prev = op;
      for (TraceOp t : run) {
        t->moveAfter(prev);
        prev = t;
      }
    }
  }
};
} // namespace

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

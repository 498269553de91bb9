//===- InsertTrace.cpp - Insert greta.trace after tagged stages -*- C++ -*-===//
//
// greta-insert-trace walks ops carrying `greta.stages` tags and inserts one
// greta.trace per selected (stage, layer) tag right after the producer
// (IREE's InjectTensorTracing has the same shape). Runs early, so every later
// pass keeps the traces (they have a write effect on the trace resource).
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::greta {
#define GEN_PASS_DEF_INSERTTRACE
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
          if (tag.getStage() == t.getStage() &&
              tag.getLayer() == static_cast<int64_t>(t.getLayer()))
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

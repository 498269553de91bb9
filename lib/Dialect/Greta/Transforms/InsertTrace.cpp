//===- InsertTrace.cpp - Insert greta.trace after tagged stages -*- C++ -*-===//
//
// Walks ops carrying `greta.stages` tags and inserts one greta.trace per
// selected (stage, layer) tag right after the producer (IREE's
// InjectTensorTracing has the same shape). Runs early, so every later pass
// keeps the traces (they have a write effect on the trace resource).
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringSet.h"

namespace mlir::greta {
#define GEN_PASS_DEF_INSERTTRACE
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;
namespace rt = ::greta::rt;

namespace {
struct InsertTrace : mlir::greta::impl::InsertTraceBase<InsertTrace> {
  using InsertTraceBase::InsertTraceBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();

    std::optional<Payload> payloadKind = symbolizePayload(payload);
    if (!payloadKind) {
      module.emitError() << "greta-insert-trace: unknown payload '" << payload
                         << "' (expected hash, stats or full)";
      return signalPassFailure();
    }
    llvm::StringSet<> stageSet;
    for (const std::string &s : stages) {
      if (!rt::parseStage(s)) {
        module.emitError() << "greta-insert-trace: unknown stage '" << s
                           << "' in option 'stages'";
        return signalPassFailure();
      }
      stageSet.insert(s);
    }
    llvm::DenseSet<int64_t> layerSet(layers.begin(), layers.end());
    for (int64_t l : layers)
      if (l < 0) {
        module.emitError() << "greta-insert-trace: negative layer " << l
                           << " in option 'layers'";
        return signalPassFailure();
      }
    if (auto n = module->getAttrOfType<IntegerAttr>(
            GretaDialect::getNumLayersAttrName()))
      for (int64_t l : layers)
        if (l >= n.getInt()) {
          module.emitError() << "greta-insert-trace: layer " << l
                             << " in option 'layers' is out of range: the "
                                "model has "
                             << n.getInt() << " layers";
          return signalPassFailure();
        }

    // (value, record id) pairs already traced: makes the pass idempotent.
    llvm::DenseSet<std::pair<Value, int64_t>> traced;
    module.walk([&](TraceOp trace) {
      traced.insert({trace.getInput(), trace.getRecordId()});
    });

    module.walk([&](Operation *op) {
      SmallVector<StageAttr> tags = getStageTags(op);
      if (tags.empty() || op->getNumResults() != 1)
        return;
      Value value = op->getResult(0);
      OpBuilder builder(op->getContext());
      builder.setInsertionPointAfter(op);
      // Keep inserted traces in tag order after any traces already there.
      while (auto next = dyn_cast_or_null<TraceOp>(
                 builder.getInsertionPoint() != op->getBlock()->end()
                     ? &*builder.getInsertionPoint()
                     : nullptr))
        builder.setInsertionPointAfter(next);
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
        auto trace = TraceOp::create(
            builder, op->getLoc(), value, tag.getStage(), tag.getLayer(), id,
            *payloadKind);
        builder.setInsertionPointAfter(trace);
      }
    });
  }
};
} // namespace

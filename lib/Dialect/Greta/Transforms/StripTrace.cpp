//===- StripTrace.cpp - Remove every greta.trace ----------------*- C++ -*-===//
#include "greta/Dialect/Greta/Transforms/Passes.h"

namespace mlir::greta {
#define GEN_PASS_DEF_STRIPTRACE
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
struct StripTrace : mlir::greta::impl::StripTraceBase<StripTrace> {
  void runOnOperation() override {
    SmallVector<TraceOp> traces;
    getOperation().walk([&](TraceOp op) { traces.push_back(op); });
    for (TraceOp op : traces)
      op.erase();
  }
};
} // namespace

//===- BufferizableOpInterfaceImpl.cpp - Bufferizing greta ops --*- C++ -*-===//
//
// External BufferizableOpInterface models, so One-Shot Bufferize handles the
// three greta ops left after greta-lower-to-kernels:
//
// - greta.kernel: destination style, like linalg's ops. Outs bufferize in
//   place and alias the results; ins are only read. Outs are not read: every
//   kernel overwrites its whole destination, so an out-of-place out needs a
//   fresh buffer, not a copy.
// - greta.trace: reads its operand, writes no buffer, aliases nothing (like
//   tensor.extract); becomes greta.trace on the memref.
// - greta.param: a read-only parameter global. It bufferizes to a
//   `memref.get_global` of a private `memref.global` declaration tagged
//   `greta.param = "<name>"`, which greta-kernels-to-calls later turns into
//   the runtime call. Why not emit the call here: the ownership-based buffer
//   deallocation treats every memref returned by a call as owned by the
//   caller and would free the session's weights; a get_global result has no
//   memref operand and no allocation effect, so it is never owned.
//
//===----------------------------------------------------------------------===//
#include "greta/Conversion/Passes.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/IR/DstBufferizableOpInterfaceImpl.h"
#include "mlir/IR/DialectRegistry.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace mlir::bufferization;
using namespace mlir::greta;

namespace {

struct KernelOpInterface
    : public DstBufferizableOpInterfaceExternalModel<KernelOpInterface,
                                                     KernelOp> {
  bool bufferizesToMemoryRead(Operation *op, OpOperand &opOperand,
                              const AnalysisState &state) const {
    // Kernels overwrite all of every out: only ins are read.
    return !cast<KernelOp>(op).isDpsInit(&opOperand);
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto kernel = cast<KernelOp>(op);
    SmallVector<Value> ins, outs;
    for (Value in : kernel.getIns()) {
      if (!isa<TensorType>(in.getType())) {
        ins.push_back(in);
        continue;
      }
      FailureOr<Value> buffer = getBuffer(rewriter, in, options, state);
      if (failed(buffer))
        return failure();
      ins.push_back(*buffer);
    }
    for (Value out : kernel.getOuts()) {
      FailureOr<Value> buffer = getBuffer(rewriter, out, options, state);
      if (failed(buffer))
        return failure();
      outs.push_back(*buffer);
    }
    rewriter.setInsertionPoint(op);
    auto newOp = KernelOp::create(rewriter, op->getLoc(), TypeRange{},
                                  kernel.getCalleeAttr(), ins, outs,
                                  kernel.getStatefulAttr());
    // Discardable attributes travel along; the stage tags, which the
    // dialect lets tag results only, move to the buffer-level attribute.
    newOp->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    if (Attribute tags = newOp->removeAttr(GretaDialect::getStagesAttrName()))
      newOp->setAttr(kBufferStagesAttr, tags);
    replaceOpWithBufferizedValues(rewriter, op, outs);
    return success();
  }
};

struct TraceOpInterface
    : public BufferizableOpInterface::ExternalModel<TraceOpInterface,
                                                    TraceOp> {
  bool bufferizesToMemoryRead(Operation *op, OpOperand &opOperand,
                              const AnalysisState &state) const {
    return true;
  }
  bool bufferizesToMemoryWrite(Operation *op, OpOperand &opOperand,
                               const AnalysisState &state) const {
    return false;
  }
  AliasingValueList getAliasingValues(Operation *op, OpOperand &opOperand,
                                      const AnalysisState &state) const {
    return {};
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto trace = cast<TraceOp>(op);
    FailureOr<Value> buffer =
        getBuffer(rewriter, trace.getInput(), options, state);
    if (failed(buffer))
      return failure();
    rewriter.modifyOpInPlace(op,
                             [&] { trace.getInputMutable().assign(*buffer); });
    return success();
  }
};

struct ParamOpInterface
    : public BufferizableOpInterface::ExternalModel<ParamOpInterface,
                                                    ParamOp> {
  bool bufferizesToAllocation(Operation *op, Value value) const {
    return false;
  }
  /// The session's weights are shared by every call: never written in place
  /// (One-Shot copies before any write).
  bool isWritable(Operation *op, Value value,
                  const AnalysisState &state) const {
    return false;
  }

  FailureOr<BufferLikeType>
  getBufferType(Operation *op, Value value, const BufferizationOptions &options,
                const BufferizationState &state,
                SmallVector<Value> &invocationStack) const {
    auto type = cast<RankedTensorType>(value.getType());
    return cast<BufferLikeType>(getMemRefTypeWithStaticIdentityLayout(type));
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto param = cast<ParamOp>(op);
    auto module = op->getParentOfType<ModuleOp>();
    if (!module)
      return op->emitOpError() << "must be inside a module to bufferize (its "
                                  "buffer is a module-level global)";
    auto memrefType = cast<MemRefType>(
        getMemRefTypeWithStaticIdentityLayout(param.getType()));

    // One global per (name, type): several uses of a parameter share it.
    memref::GlobalOp global;
    for (auto g : module.getOps<memref::GlobalOp>()) {
      auto name = g->getAttrOfType<StringAttr>(kParamGlobalAttr);
      if (name && name.getValue() == param.getName() &&
          g.getType() == memrefType) {
        global = g;
        break;
      }
    }
    if (!global) {
      // Symbol names keep only [A-Za-z0-9_]; the HF name lives in the attr.
      std::string sym = "__greta_param_";
      for (char c : param.getName())
        sym.push_back(llvm::isAlnum(c) ? c : '_');
      OpBuilder detached(op->getContext());
      global = memref::GlobalOp::create(
          detached, op->getLoc(), sym, detached.getStringAttr("private"),
          memrefType, /*initial_value=*/Attribute(), /*constant=*/true,
          /*alignment=*/IntegerAttr());
      global->setAttr(kParamGlobalAttr, param.getNameAttr());
      // Inserting through the cached table renames on a clash and keeps the
      // cache One-Shot uses current.
      state.getSymbolTables().getSymbolTable(module).insert(
          global, module.getBody()->begin());
    }
    replaceOpWithNewBufferizedOp<memref::GetGlobalOp>(
        rewriter, op, memrefType, global.getSymName());
    return success();
  }
};

} // namespace

void mlir::greta::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, GretaDialect *) {
    ctx->loadDialect<memref::MemRefDialect>();
    KernelOp::attachInterface<KernelOpInterface>(*ctx);
    TraceOp::attachInterface<TraceOpInterface>(*ctx);
    ParamOp::attachInterface<ParamOpInterface>(*ctx);
  });
}

//===- ConvertPrecision.cpp - f64 reference and f16/bf16 emulation -*- C++ -*-===//
//
// precision=f64: every f32 tensor type of the graph becomes f64 (the
// reference run; parameters are converted on load): function signatures,
// block arguments, op results and dense f32 constants. precision=f16|bf16: a
// greta.round follows every greta compute op and every tagged op that
// produces an f32 or f64 tensor, so each stage holds values representable in
// the half type, as on a half-precision engine; the stage tags move to the
// round so traces see the rounded values. keep-f32 names stages or greta
// ops left unrounded; the module is stamped with the emulated precision so a
// second run (the user's pipeline, then greta-run --precision) is a no-op.
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/rt/Half.h"
#include "greta/rt/Stages.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/Interfaces/FunctionInterfaces.h"

namespace mlir::greta {
#define GEN_PASS_DEF_CONVERTPRECISION
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;
namespace rt = ::greta::rt;

namespace {
Type toF64(Type t) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  if (!tensor || !tensor.getElementType().isF32())
    return t;
  return tensor.clone(Float64Type::get(t.getContext()));
}

/// A float tensor greta.round can round (f32 or f64 storage).
bool isRoundable(Type t) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  return tensor &&
         (tensor.getElementType().isF32() || tensor.getElementType().isF64());
}

struct ConvertPrecision
    : mlir::greta::impl::ConvertPrecisionBase<ConvertPrecision> {
  using ConvertPrecisionBase::ConvertPrecisionBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (precision != "f32" && precision != "f64" && precision != "f16" &&
        precision != "bf16") {
      module.emitError() << "greta-convert-precision: unknown precision '"
                         << precision
                         << "' in option 'precision' (expected f32, f64, f16 "
                            "or bf16)";
      return signalPassFailure();
    }
    bool half = precision == "f16" || precision == "bf16";
    if (!keepF32.empty() && !half) {
      module.emitError() << "greta-convert-precision: option 'keep-f32' "
                            "applies to precision=f16 or bf16, not "
                         << precision;
      return signalPassFailure();
    }
    if (failed(checkKeepF32(module)))
      return signalPassFailure();
    if (auto stamp = module->getAttrOfType<StringAttr>(GretaDialect::getEmulatedPrecisionAttrName())) {
      if (stamp.getValue() == precision) {
        // Already emulated: a keep-f32 here could no longer be honoured.
        if (!keepF32.empty() &&
            keptList(module) !=
                std::vector<std::string>(keepF32.begin(), keepF32.end())) {
          module.emitError()
              << "greta-convert-precision: the module already emulates "
              << precision << " ('" << GretaDialect::getEmulatedPrecisionAttrName()
              << "'); give keep-f32 to the first conversion";
          return signalPassFailure();
        }
        return;
      }
      if (precision != "f32") {
        module.emitError() << "greta-convert-precision: the module already "
                              "emulates "
                           << stamp.getValue() << " ('" << GretaDialect::getEmulatedPrecisionAttrName()
                           << "'); cannot convert it to " << precision;
        return signalPassFailure();
      }
    }
    if (precision == "f32")
      return;
    if (precision == "f64")
      return convertToF64(module);
    if (failed(emulateHalf(module)))
      return signalPassFailure();
    module->setAttr(GretaDialect::getEmulatedPrecisionAttrName(), StringAttr::get(&getContext(), precision));
    if (!keepF32.empty()) {
      SmallVector<Attribute> kept;
      for (const std::string &item : keepF32)
        kept.push_back(StringAttr::get(&getContext(), item));
      module->setAttr(GretaDialect::getEmulatedKeepF32AttrName(),
                      ArrayAttr::get(&getContext(), kept));
    }
  }

  /// The keep-f32 list an earlier emulation recorded (empty if none).
  std::vector<std::string> keptList(ModuleOp module) {
    std::vector<std::string> list;
    if (auto kept = module->getAttrOfType<ArrayAttr>(
            GretaDialect::getEmulatedKeepF32AttrName()))
      for (Attribute a : kept)
        if (auto str = dyn_cast<StringAttr>(a))
          list.push_back(str.str());
    return list;
  }

  /// Every keep-f32 item is a stage name or a registered greta op.
  LogicalResult checkKeepF32(ModuleOp module) {
    for (const std::string &item : keepF32) {
      if (rt::parseStage(item) || isGretaOp(item))
        continue;
      SmallVector<StringRef> names;
      for (RegisteredOperationName name :
           getContext().getRegisteredOperations())
        if (name.getDialectNamespace() == GretaDialect::getDialectNamespace())
          names.push_back(name.getStringRef().drop_front(6)); // "greta."
      llvm::sort(names);
      std::string ops = llvm::join(names, ", ");
      return module.emitError()
             << "greta-convert-precision: '" << item
             << "' in option 'keep-f32' is neither a stage ("
             << getStageNamesList() << ") nor a greta op (" << ops << ")";
    }
    return success();
  }

  bool isGretaOp(StringRef item) {
    std::string name = item.starts_with("greta.") ? item.str()
                                                  : "greta." + item.str();
    return RegisteredOperationName::lookup(name, &getContext()).has_value();
  }

  /// An op keep-f32 leaves unrounded: named, or carrying a named stage tag.
  bool isKept(Operation *op) {
    StringRef opName = op->getName().getStringRef();
    for (const std::string &item : keepF32) {
      if (opName == item || opName == "greta." + item)
        return true;
      for (StageAttr tag : getStageTags(op))
        if (tag.getStage() == item)
          return true;
    }
    return false;
  }

  void convertToF64(ModuleOp module) {
    auto f64 = Float64Type::get(module.getContext());
    module.walk([&](Operation *op) {
      // Every block argument, not only the entry block's.
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            arg.setType(toF64(arg.getType()));
      for (OpResult r : op->getResults())
        r.setType(toF64(r.getType()));
      // A dense f32 constant keeps its value, now in f64.
      for (NamedAttribute attr : op->getAttrs()) {
        auto dense = dyn_cast<DenseFPElementsAttr>(attr.getValue());
        if (!dense || !dense.getElementType().isF32())
          continue;
        op->setAttr(attr.getName(),
                    dense.mapValues(f64, [](const APFloat &v) {
                      bool lost;
                      APFloat d = v;
                      d.convert(APFloat::IEEEdouble(),
                                APFloat::rmNearestTiesToEven, &lost);
                      return d.bitcastToAPInt();
                    }));
      }
      if (auto func = dyn_cast<FunctionOpInterface>(op)) {
        SmallVector<Type> inputs, results;
        for (Type t : func.getArgumentTypes())
          inputs.push_back(toF64(t));
        for (Type t : func.getResultTypes())
          results.push_back(toF64(t));
        func.setType(FunctionType::get(op->getContext(), inputs, results));
      }
    });
  }

  /// Ops whose result a half-precision engine would round: greta's compute
  /// ops, and any tagged op (tags work on any op, and a traced stage must
  /// see the rounded value).
  bool producesRoundedValue(Operation *op) {
    if (op->getNumResults() != 1 || !isRoundable(op->getResult(0).getType()))
      return false;
    if (isa<RoundOp, TraceOp, KernelOp>(op))
      return false;
    return isa_and_nonnull<GretaDialect>(op->getDialect()) ||
           !getStageTags(op).empty();
  }

  LogicalResult emulateHalf(ModuleOp module) {
    // An expert selection holds its ids as floats: rounded to the half type
    // they must stay whole numbers of their own (bf16: up to 256 experts).
    int64_t exact = precision == "f16" ? 2048 : 256;
    WalkResult ids = module.walk([&](MoERouterOp r) {
      int64_t experts =
          cast<RankedTensorType>(r.getLogits().getType()).getDimSize(1);
      if (experts <= exact)
        return WalkResult::advance();
      r.emitOpError() << "greta-convert-precision: " << experts
                      << " experts: expert ids above " << exact
                      << " are not exact in " << precision
                      << ", so the emulated selection would name other "
                         "experts";
      return WalkResult::interrupt();
    });
    if (ids.wasInterrupted())
      return failure();
    SmallVector<Operation *> producers;
    module.walk([&](Operation *op) {
      if (producesRoundedValue(op) && !isKept(op))
        producers.push_back(op);
    });
    // HF builds Gemma's sqrt(hidden) normalizer as a tensor of the half
    // dtype: the factor is rounded too.
    module.walk([&](ScaleOp s) {
      double f = s.getFactor().convertToDouble();
      s.setFactorAttr(FloatAttr::get(
          s.getFactorAttr().getType(),
          precision == "f16" ? rt::roundToHalf(f) : rt::roundToBF16(f)));
    });
    for (Operation *op : producers) {
      // Idempotent: an op already rounded to this type is left alone.
      Value value = op->getResult(0);
      if (llvm::any_of(value.getUsers(), [&](Operation *user) {
            auto r = dyn_cast<RoundOp>(user);
            return r && r.getTo() == precision;
          }))
        continue;
      OpBuilder builder(op->getContext());
      builder.setInsertionPointAfter(op);
      auto round = RoundOp::create(builder, op->getLoc(), value.getType(),
                                   value, precision);
      value.replaceAllUsesExcept(round.getResult(), round);
      mergeStageTags(op, round);
      op->removeAttr(GretaDialect::getStagesAttrName());
    }
    return success();
  }
};
} // namespace

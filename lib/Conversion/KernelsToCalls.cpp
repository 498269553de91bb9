//===- KernelsToCalls.cpp - greta memref ops to C ABI calls -----*- C++ -*-===//
//
// After bufferization and deallocation, every greta op left becomes a call
// into the kernel library or the runtime (greta/rt/CInterface.h), in the
// shape of Toy chapter 6's PrintOpLowering: declare the callee if missing,
// then emit the call. Callees carry `llvm.emit_c_interface`, so memrefs
// travel as pointers to their descriptors.
//
//===----------------------------------------------------------------------===//
#include "greta/Conversion/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::greta {
#define GEN_PASS_DEF_KERNELSTOCALLS
#include "greta/Conversion/Passes.h.inc"
} // namespace mlir::greta

using namespace mlir;
using namespace mlir::greta;

namespace {
constexpr StringLiteral kEmitCInterface = "llvm.emit_c_interface";

/// "f32" or "f64": the CPU computes in these (f16/bf16 are emulated by
/// rounding in f32, see greta-convert-precision).
FailureOr<StringRef> dtypeSuffix(Operation *op, Type elementType) {
  if (elementType.isF32())
    return StringRef("f32");
  if (elementType.isF64())
    return StringRef("f64");
  return op->emitOpError()
         << "greta-kernels-to-calls: the kernel library computes in f32 or "
            "f64, got element type "
         << elementType
         << " (f16/bf16 are emulated: greta-convert-precision keeps f32 "
            "storage)";
}

/// The ABI type of a parameter the runtime returns: same rank and element
/// type, every size dynamic, identity layout.
MemRefType abiType(MemRefType t) {
  return MemRefType::get(
      SmallVector<int64_t>(t.getRank(), ShapedType::kDynamic),
      t.getElementType());
}

/// The ABI type of a memref operand: every size, stride and the offset
/// dynamic, so a slice (tensor.extract_slice's subview: Phi-3's fused
/// projections) reaches the kernel as it is. The descriptor is the same
/// struct as an identity layout's; the kernels read its offset and strides.
MemRefType stridedAbiType(MemRefType t) {
  SmallVector<int64_t> dynamic(t.getRank(), ShapedType::kDynamic);
  return MemRefType::get(
      dynamic, t.getElementType(),
      StridedLayoutAttr::get(t.getContext(), ShapedType::kDynamic, dynamic));
}

/// Whether the kernels can read `t`: rows of contiguous elements, i.e. an
/// innermost stride of 1 (or unknown until run time, where they check it).
bool hasRowMajorRows(MemRefType t) {
  if (t.getLayout().isIdentity())
    return true;
  SmallVector<int64_t> strides;
  int64_t offset;
  if (failed(t.getStridesAndOffset(strides, offset)))
    return false;
  return strides.empty() || strides.back() == 1 ||
         ShapedType::isDynamic(strides.back());
}

/// Device backends (GPU) store f16, bf16 or f32; there is no f64 kernel.
FailureOr<StringRef> deviceDtypeSuffix(Operation *op, Type elementType) {
  if (elementType.isF16())
    return StringRef("f16");
  if (elementType.isBF16())
    return StringRef("bf16");
  if (elementType.isF32())
    return StringRef("f32");
  return op->emitOpError()
         << "greta-kernels-to-calls: the device kernel library stores f16, "
            "bf16 or f32, got element type "
         << elementType;
}

class Lowering {
public:
  Lowering(ModuleOp module, StringRef backend, bool device)
      : module(module), symbols(module), backend(backend), device(device),
        builder(module.getContext()) {}

  FailureOr<StringRef> suffix(Operation *op, Type elementType) {
    return device ? deviceDtypeSuffix(op, elementType)
                  : dtypeSuffix(op, elementType);
  }
  /// The runtime prefix of params and traces: the host runtime's on the CPU,
  /// the device backend's own otherwise (its buffers are device memory).
  std::string runtimePrefix() const {
    return device ? "greta_" + backend + "_" : std::string("greta_rt_");
  }

  /// `func.func private @name(...)` with llvm.emit_c_interface, declared
  /// once; an existing symbol of another type is an error.
  FailureOr<func::FuncOp> declare(Operation *user, StringRef name,
                                  FunctionType type) {
    if (Operation *existing = symbols.lookup(name)) {
      auto func = dyn_cast<func::FuncOp>(existing);
      if (!func || func.getFunctionType() != type)
        return user->emitOpError()
               << "greta-kernels-to-calls: symbol @" << name
               << " already exists with another type; expected " << type;
      return func;
    }
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(module.getBody());
    auto func = func::FuncOp::create(builder, module.getLoc(), name, type);
    func.setPrivate();
    func->setAttr(kEmitCInterface, builder.getUnitAttr());
    symbols.insert(func);
    return func;
  }

  /// Casts `value` to its ABI type (memrefs only; scalars pass as they are).
  FailureOr<Value> toABI(Operation *user, Value value) {
    auto type = dyn_cast<MemRefType>(value.getType());
    if (!type)
      return value;
    if (!hasRowMajorRows(type))
      return user->emitOpError()
             << "greta-kernels-to-calls: operand of type " << type
             << " does not hold its rows contiguously; the kernels read rows "
                "of consecutive elements (innermost stride 1)";
    MemRefType target = stridedAbiType(type);
    if (target == type)
      return value;
    return memref::CastOp::create(builder, user->getLoc(), target, value)
        .getResult();
  }

  LogicalResult lowerKernel(KernelOp kernel) {
    if (!kernel.getResults().empty() || kernel.getOuts().empty())
      return kernel.emitOpError()
             << "greta-kernels-to-calls: expected a bufferized kernel (outs "
                "on memrefs, no results); run one-shot-bufferize first";
    auto firstOut = cast<MemRefType>(kernel.getOuts().front().getType());
    FailureOr<StringRef> dt = suffix(kernel, firstOut.getElementType());
    if (failed(dt))
      return failure();
    builder.setInsertionPoint(kernel);
    SmallVector<Value> args;
    for (Value v : llvm::concat<Value>(kernel.getIns(), kernel.getOuts())) {
      FailureOr<Value> abi = toABI(kernel, v);
      if (failed(abi))
        return failure();
      args.push_back(*abi);
    }
    std::string name =
        ("greta_" + backend + "_" + kernel.getCallee() + "_" + *dt).str();
    auto type = builder.getFunctionType(ValueRange(args).getTypes(), {});
    FailureOr<func::FuncOp> callee = declare(kernel, name, type);
    if (failed(callee))
      return failure();
    auto call = func::CallOp::create(builder, kernel.getLoc(), *callee, args);
    // The stage tags stay visible in the lowered IR (for readers and tests).
    if (Attribute tags = kernel->getAttr(kBufferStagesAttr))
      call->setAttr(kBufferStagesAttr, tags);
    kernel.erase();
    return success();
  }

  /// A trace right after a trace of the same buffer, with nothing between
  /// them that may write memory (a value with several stage tags, e.g.
  /// residual_post_mlp of L and residual_pre_attn of L+1): its rows are
  /// that trace's bytes, so the runtime may reuse that trace's digests.
  static bool repeatsPreviousTrace(TraceOp trace) {
    for (Operation *prev = trace->getPrevNode(); prev;
         prev = prev->getPrevNode()) {
      if (auto previous = dyn_cast<TraceOp>(prev))
        return previous.getInput() == trace.getInput();
      if (!isMemoryEffectFree(prev))
        return false;
    }
    return false;
  }

  LogicalResult lowerTrace(TraceOp trace, bool repeat) {
    auto type = dyn_cast<MemRefType>(trace.getInput().getType());
    if (!type)
      return trace.emitOpError()
             << "greta-kernels-to-calls: expected a bufferized trace (memref "
                "operand); run one-shot-bufferize first";
    FailureOr<StringRef> dt = suffix(trace, type.getElementType());
    if (failed(dt))
      return failure();
    // A slice of rows (Phi-3's q of a fused qkv) is traced as it is; other
    // ranks are reshaped below, which needs an identity layout.
    if (!type.getLayout().isIdentity() &&
        (type.getRank() != 2 || !hasRowMajorRows(type)))
      return trace.emitOpError()
             << "greta-kernels-to-calls: traced buffer " << type
             << " has a layout the trace cannot read; rank-2 buffers with "
                "contiguous rows (innermost stride 1) and identity layouts "
                "are traced";
    Location loc = trace.getLoc();
    builder.setInsertionPoint(trace);
    Value value = trace.getInput();
    // Rows are dim 0 (token positions): rank 1 becomes [n, 1], higher ranks
    // fold everything after dim 0 into one row.
    if (type.getRank() == 1) {
      Value n = memref::DimOp::create(builder, loc, value, 0);
      auto expanded = MemRefType::get({type.getDimSize(0), 1},
                                      type.getElementType());
      value = memref::ExpandShapeOp::create(
          builder, loc, expanded, value, ArrayRef<ReassociationIndices>{{0, 1}},
          ArrayRef<OpFoldResult>{n, builder.getIndexAttr(1)});
    } else if (type.getRank() > 2) {
      ReassociationIndices rest;
      for (int64_t i = 1; i < type.getRank(); ++i)
        rest.push_back(i);
      value = memref::CollapseShapeOp::create(
          builder, loc, value, ArrayRef<ReassociationIndices>{{0}, rest});
    }
    FailureOr<Value> abi = toABI(trace, value);
    if (failed(abi))
      return failure();
    Value recordId = arith::ConstantOp::create(
        builder, loc, builder.getI64IntegerAttr(trace.getRecordId()));
    Value payload = arith::ConstantOp::create(
        builder, loc,
        builder.getI64IntegerAttr(static_cast<int64_t>(trace.getPayload())));
    SmallVector<Value> args{*abi, recordId, payload};
    std::string name =
        runtimePrefix() + (repeat ? "trace_repeat_" : "trace_") + dt->str();
    FailureOr<func::FuncOp> callee = declare(
        trace, name, builder.getFunctionType(ValueRange(args).getTypes(), {}));
    if (failed(callee))
      return failure();
    auto call = func::CallOp::create(builder, loc, *callee, args);
    // Keep what the trace was about readable in the lowered IR.
    call->setAttr("greta.stage", trace.getStageAttr());
    call->setAttr("greta.layer", trace.getLayerAttr());
    trace.erase();
    return success();
  }

  /// The NUL-terminated name of a parameter, as a private constant.
  Value nameConstant(Location loc, StringRef name) {
    std::string value = name.str();
    value.push_back('\0');
    std::string sym = "__greta_param_name_";
    for (char c : name)
      sym.push_back(llvm::isAlnum(c) ? c : '_');
    LLVM::GlobalOp global;
    auto it = nameGlobals.find(name);
    if (it != nameGlobals.end()) {
      global = it->second;
    } else {
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPointToStart(module.getBody());
      auto type = LLVM::LLVMArrayType::get(builder.getI8Type(), value.size());
      global = LLVM::GlobalOp::create(builder, loc, type, /*isConstant=*/true,
                                      LLVM::Linkage::Internal, sym,
                                      builder.getStringAttr(value),
                                      /*alignment=*/0);
      symbols.insert(global); // renames on a clash
      nameGlobals[name] = global;
    }
    return LLVM::AddressOfOp::create(builder, loc, global);
  }

  LogicalResult lowerParam(memref::GetGlobalOp get, memref::GlobalOp global) {
    auto name = global->getAttrOfType<StringAttr>(kParamGlobalAttr);
    MemRefType type = get.getType();
    if (type.getRank() != 1 && type.getRank() != 2)
      return get.emitOpError()
             << "greta-kernels-to-calls: parameter '" << name.getValue()
             << "' has rank " << type.getRank()
             << "; the runtime serves rank 1 and 2 parameters";
    FailureOr<StringRef> dt = suffix(get, type.getElementType());
    if (failed(dt))
      return failure();
    Location loc = get.getLoc();
    builder.setInsertionPoint(get);
    Value namePtr = nameConstant(loc, name.getValue());
    MemRefType resultType = abiType(type);
    std::string fn =
        (runtimePrefix() + "param_r" + Twine(type.getRank()) + "_" + *dt).str();
    FailureOr<func::FuncOp> callee =
        declare(get, fn,
                builder.getFunctionType({namePtr.getType()}, {resultType}));
    if (failed(callee))
      return failure();
    auto call = func::CallOp::create(builder, loc, *callee, namePtr);
    // Shapes were validated against the IR when the session loaded them.
    Value cast =
        memref::CastOp::create(builder, loc, type, call.getResult(0));
    get.replaceAllUsesWith(cast);
    get.erase();
    return success();
  }

  /// A copy between strided buffers: `greta_rt_copy_r<N>_<dt>(src, dst)`.
  LogicalResult lowerCopy(memref::CopyOp copy) {
    auto src = dyn_cast<MemRefType>(copy.getSource().getType());
    auto dst = dyn_cast<MemRefType>(copy.getTarget().getType());
    if (!src || !dst)
      return copy.emitOpError()
             << "greta-kernels-to-calls: a copy of an unranked memref";
    if (src.getRank() < 1 || src.getRank() > 2)
      return copy.emitOpError()
             << "greta-kernels-to-calls: a copy of rank " << src.getRank()
             << " between non-contiguous buffers; the runtime copies rank 1 "
                "and 2";
    FailureOr<StringRef> dt = suffix(copy, src.getElementType());
    if (failed(dt))
      return failure();
    if (!hasRowMajorRows(src) || !hasRowMajorRows(dst))
      return copy.emitOpError()
             << "greta-kernels-to-calls: copy from " << src << " to " << dst
             << ": the runtime copies buffers of contiguous rows";
    builder.setInsertionPoint(copy);
    SmallVector<Value> args;
    for (Value v : {copy.getSource(), copy.getTarget()}) {
      FailureOr<Value> abi = toABI(copy, v);
      if (failed(abi))
        return failure();
      args.push_back(*abi);
    }
    std::string name =
        ("greta_rt_copy_r" + Twine(src.getRank()) + "_" + *dt).str();
    FailureOr<func::FuncOp> callee = declare(
        copy, name, builder.getFunctionType(ValueRange(args).getTypes(), {}));
    if (failed(callee))
      return failure();
    func::CallOp::create(builder, copy.getLoc(), *callee, args);
    copy.erase();
    return success();
  }

  LogicalResult run() {
    SmallVector<Operation *> work;
    DenseSet<Operation *> repeats; // decided before any trace is lowered
    module.walk([&](Operation *op) {
      if (isa<KernelOp, TraceOp, memref::GetGlobalOp>(op))
        work.push_back(op);
      // Copies of identity layouts become memcpy in the LLVM lowering; a
      // slice's would call MLIR's memrefCopy, which GRETA does not link.
      if (auto copy = dyn_cast<memref::CopyOp>(op)) {
        auto identity = [](Value v) {
          auto t = dyn_cast<MemRefType>(v.getType());
          return t && t.getLayout().isIdentity();
        };
        if (!device && !(identity(copy.getSource()) &&
                         identity(copy.getTarget())))
          work.push_back(op);
      }
      if (auto trace = dyn_cast<TraceOp>(op);
          trace && repeatsPreviousTrace(trace))
        repeats.insert(op);
    });
    for (Operation *op : work) {
      LogicalResult result = success();
      if (auto kernel = dyn_cast<KernelOp>(op)) {
        result = lowerKernel(kernel);
      } else if (auto trace = dyn_cast<TraceOp>(op)) {
        result = lowerTrace(trace, repeats.contains(op));
      } else if (auto get = dyn_cast<memref::GetGlobalOp>(op)) {
        auto global = symbols.lookup<memref::GlobalOp>(get.getName());
        if (global && global->hasAttr(kParamGlobalAttr))
          result = lowerParam(get, global);
      } else if (auto copy = dyn_cast<memref::CopyOp>(op)) {
        result = lowerCopy(copy);
      }
      if (failed(result))
        return failure();
    }
    // Parameter declarations are now unused; anything greta left is a
    // pipeline ordering mistake, reported where it is.
    for (auto global :
         llvm::make_early_inc_range(module.getOps<memref::GlobalOp>()))
      if (global->hasAttr(kParamGlobalAttr) &&
          SymbolTable::symbolKnownUseEmpty(global, module)) {
        symbols.erase(global);
      }
    WalkResult leftover = module.walk([&](Operation *op) {
      if (op->getDialect() && isa<GretaDialect>(op->getDialect())) {
        op->emitOpError() << "greta-kernels-to-calls: not lowered; run "
                             "greta-lower-to-kernels and one-shot-bufferize "
                             "first";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (leftover.wasInterrupted())
      return failure();
    // A device program's host code never reads or writes its buffers.
    if (device) {
      WalkResult copies = module.walk([&](memref::CopyOp copy) {
        copy.emitOpError() << "greta-kernels-to-calls: a copy between "
                              "buffers would run on the host, but backend '"
                           << backend << "' keeps its buffers on the device";
        return WalkResult::interrupt();
      });
      if (copies.wasInterrupted())
        return failure();
    }
    // The host calls the model through its C interface
    // (_mlir_ciface_forward: result descriptor first, then the arguments).
    for (auto func : module.getOps<func::FuncOp>())
      if (func.isPublic() && !func.isExternal())
        func->setAttr(kEmitCInterface, builder.getUnitAttr());
    return success();
  }

private:
  ModuleOp module;
  SymbolTable symbols;
  std::string backend;
  bool device;
  OpBuilder builder;
  llvm::StringMap<LLVM::GlobalOp> nameGlobals;
};

struct KernelsToCalls
    : mlir::greta::impl::KernelsToCallsBase<KernelsToCalls> {
  using KernelsToCallsBase::KernelsToCallsBase;

  void runOnOperation() override {
    if (backend.empty() ||
        !llvm::all_of(backend, [](char c) { return llvm::isAlnum(c) || c == '_'; })) {
      getOperation().emitError()
          << "greta-kernels-to-calls: backend '" << backend
          << "' must be a non-empty identifier (kernels are called "
             "greta_<backend>_<op>_<dt>)";
      return signalPassFailure();
    }
    if (failed(Lowering(getOperation(), backend, device).run()))
      signalPassFailure();
  }
};
} // namespace

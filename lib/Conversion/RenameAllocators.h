//===- RenameAllocators.h - Memref allocation functions to a runtime's ---===//
//
// Internal to lib/Conversion. The CPU and GPU lowerings lower memrefs with
// the generic allocation functions (_mlir_memref_to_llvm_*), then give them
// their runtime's names: one renaming, for both.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_LIB_CONVERSION_RENAMEALLOCATORS_H
#define GRETA_LIB_CONVERSION_RENAMEALLOCATORS_H

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

#include <utility>

namespace mlir::greta {

/// Renames each `from` function of `module` to `to`, with every use. An
/// existing `to` is an error on `from`, prefixed with `pass`.
inline LogicalResult
renameAllocators(ModuleOp module, StringRef pass,
                 ArrayRef<std::pair<StringRef, StringRef>> renames) {
  for (auto [from, to] : renames) {
    auto f = module.lookupSymbol<LLVM::LLVMFuncOp>(from);
    if (!f)
      continue;
    if (module.lookupSymbol(to))
      return f.emitOpError() << pass << ": @" << to << " already exists";
    if (failed(SymbolTable::replaceAllSymbolUses(
            f, StringAttr::get(module.getContext(), to), module)))
      return failure();
    SymbolTable::setSymbolName(f, to);
  }
  return success();
}

} // namespace mlir::greta

#endif

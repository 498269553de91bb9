//===- Utils.h - Helpers shared by greta passes -----------------*- C++ -*-===//
#ifndef GRETA_DIALECT_GRETA_TRANSFORMS_UTILS_H
#define GRETA_DIALECT_GRETA_TRANSFORMS_UTILS_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::greta {
/// Name of the unit argument attribute that marks a model function's token
/// positions argument (`%positions: tensor<?xi64> {greta.positions}`).
inline constexpr llvm::StringLiteral kPositionsArgAttr = "greta.positions";

/// The argument of `func` marked `greta.positions`; emits an error on `func`
/// if there is none.
FailureOr<Value> getPositionsArgument(func::FuncOp func);
} // namespace mlir::greta

#endif

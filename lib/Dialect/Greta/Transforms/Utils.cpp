//===- Utils.cpp - Helpers shared by greta passes ---------------*- C++ -*-===//
#include "greta/Dialect/Greta/Transforms/Utils.h"

using namespace mlir;

FailureOr<Value> mlir::greta::getPositionsArgument(func::FuncOp func) {
  if (!func)
    return failure();
  for (unsigned i = 0, e = func.getNumArguments(); i < e; ++i)
    if (func.getArgAttr(i, kPositionsArgAttr))
      return Value(func.getArgument(i));
  func.emitError() << "function '" << func.getSymName()
                   << "' has no argument marked '" << kPositionsArgAttr
                   << "' (the token positions)";
  return failure();
}

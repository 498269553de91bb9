//===- Passes.h - greta passes ----------------------------------*- C++ -*-===//
#ifndef GRETA_DIALECT_GRETA_TRANSFORMS_PASSES_H
#define GRETA_DIALECT_GRETA_TRANSFORMS_PASSES_H

#include "greta/Dialect/Greta/IR/GretaOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::greta {
#define GEN_PASS_DECL
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "greta/Dialect/Greta/Transforms/Passes.h.inc"
} // namespace mlir::greta

#endif

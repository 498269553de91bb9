//===- InitAll.cpp - Register everything greta's tools use ------*- C++ -*-===//
#include "greta/InitAll.h"
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Dialect/Greta/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void greta::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::greta::GretaDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect>();
}

void greta::registerAllPasses() {
  mlir::greta::registerGretaPasses();
  mlir::registerTransformsPasses(); // canonicalize, cse, symbol-dce, ...
}

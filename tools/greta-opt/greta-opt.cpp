//===- greta-opt.cpp - greta's mlir-opt ---------------------------*- C++ -*-===//
//
// greta's passes and pipelines plus the upstream dialects and passes GRETA's
// pipelines use. Built on MlirOptMain, so every mlir-opt flag works
// (--mlir-print-ir-after-all, --split-input-file, --verify-diagnostics, ...).
//
//===----------------------------------------------------------------------===//
#include "greta/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  greta::registerAllDialects(registry);
  greta::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "GRETA optimizer driver: greta passes and pipelines\n",
      registry));
}

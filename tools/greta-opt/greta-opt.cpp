//===- greta-opt.cpp - greta's mlir-opt ---------------------------*- C++ -*-===//
//
// greta's passes and pipelines plus the upstream dialects and passes GRETA's
// pipelines use. Built on MlirOptMain, so every mlir-opt flag works
// (--mlir-print-ir-after-all, --split-input-file, --verify-diagnostics, ...).
// The input is read here, as MlirOptMain(argc, argv, ...) would, so that it
// can be refused when nested too deeply for MLIR's parser, printer and
// passes (greta/ParseMLIR.h).
//
//===----------------------------------------------------------------------===//
#include "greta/InitAll.h"
#include "greta/ParseMLIR.h"
#include "greta/tools/LLVMVersion.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdio>

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  greta::registerAllDialects(registry);
  greta::registerAllPasses();
  ::greta::setLLVMToolVersionPrinter("greta-opt");
  auto [inputFilename, outputFilename] = mlir::registerAndParseCLIOptions(
      argc, argv, "GRETA optimizer driver: greta passes and pipelines\n",
      registry);
  llvm::InitLLVM y(argc, argv);
  mlir::MlirOptMainConfig config =
      mlir::MlirOptMainConfig::createFromCLOptions();
  if (config.shouldShowDialects() || config.shouldListPasses())
    return mlir::asMainReturnCode(mlir::MlirOptMain(
        llvm::outs(), llvm::MemoryBuffer::getMemBuffer(""), registry, config));

  // As MlirOptMain: a terminal on stdin is often a mistake that looks stuck.
  if (inputFilename == "-" &&
      llvm::sys::Process::FileDescriptorIsDisplayed(fileno(stdin)))
    llvm::errs() << "(processing input from stdin now, hit ctrl-c/ctrl-d to "
                    "interrupt)\n";
  std::string error;
  std::unique_ptr<llvm::MemoryBuffer> input =
      mlir::openInputFile(inputFilename, &error);
  if (!input) {
    llvm::errs() << error << "\n";
    return 1;
  }
  if (mlir::failed(greta::checkMLIRNesting(*input, llvm::errs())))
    return 1;
  // Bytecode is measured once read (greta/ParseMLIR.h): read it here first,
  // in a context of its own, before MlirOptMain reads it again.
  if (greta::isMLIRBytecode(input->getBuffer())) {
    mlir::MLIRContext context(registry);
    llvm::SourceMgr sourceMgr;
    sourceMgr.AddNewSourceBuffer(
        llvm::MemoryBuffer::getMemBuffer(input->getMemBufferRef(),
                                         /*RequiresNullTerminator=*/false),
        llvm::SMLoc());
    mlir::SourceMgrDiagnosticHandler handler(sourceMgr, &context,
                                             llvm::errs());
    if (!greta::parseMLIRFile(sourceMgr, &context))
      return 1;
  }
  std::unique_ptr<llvm::ToolOutputFile> output =
      mlir::openOutputFile(outputFilename, &error);
  if (!output) {
    llvm::errs() << error << "\n";
    return 1;
  }
  if (mlir::failed(
          mlir::MlirOptMain(output->os(), std::move(input), registry, config)))
    return 1;
  output->keep();
  return 0;
}

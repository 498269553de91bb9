//===- InitAll.cpp - Register everything greta's tools use ------*- C++ -*-===//
//
// greta's dialect and passes, the CPU lowering (passes, pipeline, the
// bufferization models of greta ops) and the upstream dialects, interface
// models and passes those pipelines go through, so that greta-opt can parse
// and print every intermediate level and greta-run can run the pipeline.
//
//===----------------------------------------------------------------------===//
#include "greta/InitAll.h"
#include "greta/Conversion/Passes.h"
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Dialect/Greta/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/ControlFlow/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/AllocationOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"

void greta::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<mlir::greta::GretaDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect,
                  mlir::bufferization::BufferizationDialect,
                  mlir::memref::MemRefDialect, mlir::scf::SCFDialect,
                  mlir::cf::ControlFlowDialect, mlir::index::IndexDialect,
                  mlir::ub::UBDialect, mlir::LLVM::LLVMDialect>();

  // One-Shot Bufferize: greta.kernel/trace/param and the upstream ops the
  // lowering leaves at tensor level (func, arith.constant, tensor.empty/dim).
  mlir::greta::registerBufferizableOpInterfaceExternalModels(registry);
  mlir::arith::registerBufferizableOpInterfaceExternalModels(registry);
  mlir::bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(
      registry);
  mlir::tensor::registerBufferizableOpInterfaceExternalModels(registry);
  // Ownership-based deallocation.
  mlir::memref::registerAllocationOpInterfaceExternalModels(registry);
  mlir::arith::registerBufferDeallocationOpInterfaceExternalModels(registry);
  mlir::cf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  mlir::scf::registerBufferDeallocationOpInterfaceExternalModels(registry);
}

void greta::registerAllPasses() {
  mlir::greta::registerGretaPasses();
  mlir::greta::registerGretaConversionPassesAndPipelines();
  mlir::registerTransformsPasses(); // canonicalize, cse, symbol-dce, ...
  // What greta-lower-to-cpu is made of, so its steps run one by one too.
  mlir::bufferization::registerBufferizationPasses();
  mlir::bufferization::registerBufferizationPipelines();
  mlir::memref::registerMemRefPasses();
  mlir::registerSCFToControlFlowPass();
  mlir::registerFinalizeMemRefToLLVMConversionPass();
  mlir::registerArithToLLVMConversionPass();
  mlir::registerConvertIndexToLLVMPass();
  mlir::registerConvertControlFlowToLLVMPass();
  mlir::registerConvertFuncToLLVMPass();
  mlir::registerUBToLLVMConversionPass();
  mlir::registerReconcileUnrealizedCastsPass();
}

//===- ImportHFConfig.h - HF config.json to greta IR ------------*- C++ -*-===//
//
// Builds the whole decoder (layers unrolled, every residual-stream stage
// tagged, parameters named as in HF's safetensors) from a Llama config.
// docs/IMPORT.md describes the mapping.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_TARGET_HF_IMPORTHFCONFIG_H
#define GRETA_TARGET_HF_IMPORTHFCONFIG_H

#include "greta/Target/HF/LlamaConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace greta::hf {

/// The module for an already checked config. Never fails.
mlir::OwningOpRef<mlir::ModuleOp> buildLlamaModule(const LlamaConfig &config,
                                                   mlir::MLIRContext &context);

/// Parses `text` (the contents of config.json; `fileName` names it in
/// diagnostics) and builds the module. Returns null after emitting a
/// diagnostic on `context` that names the culprit.
mlir::OwningOpRef<mlir::ModuleOp> importHFConfig(llvm::StringRef text,
                                                 llvm::StringRef fileName,
                                                 mlir::MLIRContext &context,
                                                 llvm::StringRef name = "");

/// Same, reading the config from `path` (an unreadable file is an error).
mlir::OwningOpRef<mlir::ModuleOp> importHFConfigFile(llvm::StringRef path,
                                                     mlir::MLIRContext &context,
                                                     llvm::StringRef name = "");

} // namespace greta::hf

#endif // GRETA_TARGET_HF_IMPORTHFCONFIG_H

//===- GretaDialect.h - The greta dialect -----------------------*- C++ -*-===//
#ifndef GRETA_DIALECT_GRETA_IR_GRETADIALECT_H
#define GRETA_DIALECT_GRETA_IR_GRETADIALECT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::greta {
/// The resource greta.trace writes: keeps traces alive and ordered.
struct TraceResource : public SideEffects::Resource::Base<TraceResource> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(TraceResource)
  StringRef getName() final { return "greta::Trace"; }
};
/// The run's KV cache, read and written by greta.attention.
struct KVCacheResource : public SideEffects::Resource::Base<KVCacheResource> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(KVCacheResource)
  StringRef getName() final { return "greta::KVCache"; }
};
} // namespace mlir::greta

#include "greta/Dialect/Greta/IR/GretaDialect.h.inc"

#endif

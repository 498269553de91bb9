//===- HFConfigFuzzer.cpp - greta::hf::importHFConfig on arbitrary text ---===//
//
// The input is config.json. An accepted config is built into a module that
// must verify; the size is bounded first (the fuzzer would otherwise spend
// its time building 10^6-layer models, which is not a bug).
//
//===----------------------------------------------------------------------===//
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Target/HF/ImportHFConfig.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include <cstdint>
#include <string>

// libMLIR.so (Debian's, not instrumented) and this target's instrumented
// inline code share llvm::BumpPtrAllocator slabs: the instrumented inline
// AllocateSlow poisons a new slab, the uninstrumented library then hands out
// memory from it without unpoisoning, and the next instrumented access
// reports "use-after-poison" (a false positive of mixing, not a bug). Ignore
// the allocator's manual poisoning only; every other ASan check stays on.
extern "C" const char *__asan_default_options() {
  return "allow_user_poisoning=0";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mlir::MLIRContext *ctx = [] {
    mlir::DialectRegistry registry;
    registry.insert<mlir::greta::GretaDialect, mlir::func::FuncDialect>();
    auto *c = new mlir::MLIRContext(registry);
    c->loadAllAvailableDialects();
    c->disableMultithreading();
    return c;
  }();
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  bool diagnosed = false;
  mlir::ScopedDiagnosticHandler handler(ctx, [&](mlir::Diagnostic &d) {
    if (d.getSeverity() == mlir::DiagnosticSeverity::Error)
      diagnosed = true;
    return mlir::success();
  });
  auto config = greta::hf::parseLlamaConfig(text, "config.json", *ctx);
  if (mlir::failed(config)) {
    if (!diagnosed)
      __builtin_trap(); // a failure must always say why
    return 0;
  }
  // The parameter list (what --gen-random-weights allocates): element
  // counts must not overflow (UBSan checks the arithmetic).
  for (const auto &spec : greta::hf::getParamSpecs(*config)) {
    volatile int64_t n = spec.numElements();
    (void)n;
  }
  // Keep accepted models small enough to build quickly: building a
  // 10^5-layer model is slow, not a bug. Dimensions are free (types only).
  if (config->numLayers > 4)
    return 0;
  auto module = greta::hf::importHFConfig(text, "config.json", *ctx);
  if (!module)
    __builtin_trap(); // parse accepted it, the import must too
  if (mlir::failed(mlir::verify(*module)))
    __builtin_trap(); // the importer must build valid IR
  return 0;
}

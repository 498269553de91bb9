//===- InitAll.h - Register everything greta's tools use --------*- C++ -*-===//
//
// The one list of dialects, interfaces, passes and pipelines that greta-opt,
// greta-translate and greta-run register, so the three tools agree.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_INITALL_H
#define GRETA_INITALL_H

namespace mlir {
class DialectRegistry;
}

namespace greta {
void registerAllDialects(mlir::DialectRegistry &registry);
void registerAllPasses();
} // namespace greta

#endif

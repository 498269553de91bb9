//===- RunCLI.h - The run flags on a CLI11 command line ---------*- C++ -*-===//
#ifndef GRETA_TOOLS_RUNCLI_H
#define GRETA_TOOLS_RUNCLI_H

#include "greta/rt/Run.h"

#include <CLI/CLI.hpp>

namespace greta {

/// Declares the run flags of greta/rt/Run.h (--weights, --prompt, ...,
/// --no-cache) on `app`, parsed into `options`: the flags of the runners
/// without LLVM (greta-run-aot, and greta-run on a GPU host).
void addRunOptions(CLI::App &app, rt::RunOptions &options);

} // namespace greta

#endif // GRETA_TOOLS_RUNCLI_H

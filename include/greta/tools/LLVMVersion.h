//===- LLVMVersion.h - --version of the tools linked with LLVM --*- C++ -*-===//
#ifndef GRETA_TOOLS_LLVMVERSION_H
#define GRETA_TOOLS_LLVMVERSION_H

#include "greta/tools/Version.h"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

namespace greta {

/// Makes llvm::cl's --version print GRETA's version and commit, then the
/// LLVM version the tool was built with. Call before parsing.
inline void setLLVMToolVersionPrinter(const char *tool) {
  llvm::cl::SetVersionPrinter([tool](llvm::raw_ostream &os) {
    os << versionLine(tool) << "\nLLVM version " LLVM_VERSION_STRING "\n";
  });
}

} // namespace greta

#endif // GRETA_TOOLS_LLVMVERSION_H

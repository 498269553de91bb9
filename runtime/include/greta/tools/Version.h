//===- Version.h - GRETA's version and commit, for --version ----*- C++ -*-===//
//
// Every tool's --version starts with versionLine(); a tool linked with LLVM
// adds LLVM's version on the next line (LLVMVersion.h).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_TOOLS_VERSION_H
#define GRETA_TOOLS_VERSION_H

#include <string>
#include <string_view>

namespace greta {

/// GRETA's version, e.g. "0.1.0".
const char *versionString();
/// The git commit the tools were built from (12 hex digits, "-dirty" when
/// the checkout had uncommitted changes), or "unknown".
const char *gitCommit();
/// "TOOL (GRETA) 0.1.0, commit 0123456789ab": the first line of --version,
/// and what a trace's manifest records as tool_version.
std::string versionLine(std::string_view tool);

} // namespace greta

#endif // GRETA_TOOLS_VERSION_H

//===- Version.cpp - GRETA's version and commit ---------------------------===//
//
// The only file that includes the generated GretaVersionInfo.h, so that a
// new commit recompiles this file alone.
//
//===----------------------------------------------------------------------===//
#include "greta/tools/Version.h"

#include "GretaVersionInfo.h"

const char *greta::versionString() { return GRETA_VERSION_STRING; }

const char *greta::gitCommit() { return GRETA_GIT_COMMIT; }

std::string greta::versionLine(std::string_view tool) {
  return std::string(tool) + " (GRETA) " + GRETA_VERSION_STRING + ", commit " +
         GRETA_GIT_COMMIT;
}

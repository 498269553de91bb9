//===- RunEvidence.cpp - What a finished run proves -----------------------===//
#include "RunEvidence.h"

#include <cerrno>
#include <cstring>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace greta::bisect {

RunVerdict classifyRun(const ProcessResult &r, bool started,
                       double timeoutSeconds) {
  RunVerdict v;
  if (!r.timedOut && !r.signaled && r.exitCode == 0) {
    v.kind = RunClass::Finished;
    return v;
  }
  std::ostringstream how;
  if (r.timedOut) {
    how << "hung (no exit after the " << timeoutSeconds << " s --timeout"
        << (started ? ")" : ", before its forward began)");
  } else if (r.signaled) {
    how << "crashed (killed by signal " << r.signal << ", "
        << strsignal(r.signal) << ")";
  } else {
    how << (started ? "stopped with exit code " : "exit code ") << r.exitCode;
  }
  v.how = how.str();
  v.kind = started ? RunClass::Failed : RunClass::NeverStarted;
  return v;
}

std::string startedMarkerPath(const std::string &stepDir,
                              const std::string &config) {
  return stepDir + "/" + config + ".started";
}

bool clearStartedMarker(const std::string &path, std::string &error) {
  if (::unlink(path.c_str()) == 0 || errno == ENOENT)
    return true;
  error = "cannot remove " + path + ": " + std::strerror(errno);
  return false;
}

bool startedMarkerExists(const std::string &path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

} // namespace greta::bisect

//===- Process.h - Run a tool with a time limit, keep its output -*- C++ -*-===//
#ifndef GRETA_BISECT_PROCESS_H
#define GRETA_BISECT_PROCESS_H

#include <string>
#include <utility>
#include <vector>

namespace greta::bisect {

struct ProcessResult {
  int exitCode = -1;     // valid when !signaled && !timedOut
  bool signaled = false; // killed by a signal (crash)
  int signal = 0;
  bool timedOut = false; // killed by us after the time limit
  std::string outputTail; // last bytes of stdout+stderr
  std::string describe() const;
};

/// Environment variables set in the child, on top of greta-bisect's own.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

/// Runs argv[0] (a path, or a name looked up in PATH) with stderr (and
/// stdout unless `stdoutPath` is given) sent to `logPath` and `env` added to
/// its environment; kills the whole process group after `timeoutSeconds`
/// (0: no limit). No shell is involved.
ProcessResult runProcess(const std::vector<std::string> &argv,
                         const std::string &logPath, double timeoutSeconds,
                         const std::string &stdoutPath = "",
                         const EnvVars &env = {});

/// Splits a RUN FLAGS string like a POSIX shell would (quotes, escapes), with
/// no expansion of any kind. Returns false on unbalanced quotes.
bool splitFlags(const std::string &text, std::vector<std::string> &out,
                std::string &error);

/// Quotes one argument for display in a shell.
std::string shellQuote(const std::string &arg);

} // namespace greta::bisect

#endif

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
  /// The user interrupted greta-bisect (Ctrl-C, SIGTERM, SIGHUP) while it
  /// ran, or before it could start: its outcome proves nothing.
  bool interrupted = false;
  std::string outputTail; // last bytes of stdout+stderr
  std::string describe() const;
};

/// Environment variables set in the child, on top of greta-bisect's own.
using EnvVars = std::vector<std::pair<std::string, std::string>>;

/// Runs argv[0] (a path, or a name looked up in PATH) in a process group of
/// its own with stderr (and stdout unless `stdoutPath` is given) sent to
/// `logPath`, and `env` added to its environment; kills the whole group
/// after `timeoutSeconds` (0: no limit). No shell is involved. An interrupt
/// of greta-bisect is passed on to the group and the run waited for
/// (installInterruptForwarding).
ProcessResult runProcess(const std::vector<std::string> &argv,
                         const std::string &logPath, double timeoutSeconds,
                         const std::string &stdoutPath = "",
                         const EnvVars &env = {});

/// SIGINT, SIGTERM and SIGHUP no longer end greta-bisect: they are recorded
/// and sent on to the running child's process group (its own group, so a
/// terminal's Ctrl-C does not reach it otherwise). A second one sends
/// SIGKILL to the group. One that greta-bisect was started with ignored
/// (nohup) stays ignored. Call once, before the first runProcess.
void installInterruptForwarding();
/// The signal that interrupted greta-bisect, 0 if none.
int interruptSignal();

/// Splits a RUN FLAGS string like a POSIX shell would (quotes, escapes), with
/// no expansion of any kind. Returns false on unbalanced quotes.
bool splitFlags(const std::string &text, std::vector<std::string> &out,
                std::string &error);

/// Quotes one argument for display in a shell.
std::string shellQuote(const std::string &arg);
/// A command line for display: every argument shell-quoted.
std::string commandLine(const std::vector<std::string> &argv);

} // namespace greta::bisect

#endif

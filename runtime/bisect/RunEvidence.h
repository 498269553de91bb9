//===- RunEvidence.h - What a finished run proves ---------------*- C++ -*-===//
//
// The one rule for what a run counts as (docs/USER_GUIDE.md, "When a run
// fails"). Every run greta-bisect starts is classified here, and nowhere
// else:
//   never started  it stopped before its forward began: bad flags, a lock
//                  held by another run, a missing file, a model that does
//                  not compile, or a hang before the forward. An error: the
//                  bisection stops with exit 2 and the run's output. Nothing
//                  it did is evidence.
//   failed         it began its forward, then crashed (a signal), hung
//                  (--timeout) or stopped with an error. For the test
//                  configuration this is evidence: its records so far are
//                  compared and the report says which it was. For the base
//                  and the reference it is an error.
//   finished       exit code 0.
// "Began its forward" is what the run itself reports: greta-run and
// greta-run-aot create $GRETA_STARTED_FILE (greta/rt/RunStarted.h) when the
// forward begins, after their inputs are checked and the trace is locked.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_BISECT_RUNEVIDENCE_H
#define GRETA_BISECT_RUNEVIDENCE_H

#include "greta/bisect/Process.h"

#include <string>

namespace greta::bisect {

enum class RunClass { NeverStarted, Failed, Finished };

struct RunVerdict {
  RunClass kind = RunClass::NeverStarted;
  /// How it ended, for the report: "crashed (killed by signal 11,
  /// Segmentation fault)", "hung (no exit after the 30 s --timeout)",
  /// "stopped with exit code 2", "exit code 2"; "" when finished.
  std::string how;
};

/// Classifies a finished child: `started` says whether it reported that its
/// forward began (the marker file exists).
RunVerdict classifyRun(const ProcessResult &result, bool started,
                       double timeoutSeconds);

/// Where a run of `config` in `stepDir` reports its start, and the removal
/// of an old report before the run. Returns false with `error` set if an old
/// marker cannot be removed (a run could then not be classified).
std::string startedMarkerPath(const std::string &stepDir,
                              const std::string &config);
bool clearStartedMarker(const std::string &path, std::string &error);
bool startedMarkerExists(const std::string &path);

} // namespace greta::bisect

#endif

//===- RunStarted.h - A run reports that its forward began ------*- C++ -*-===//
//
// greta-bisect must tell a run that never started (bad flags, a lock held
// by another run, a missing file, a model that does not compile: an error)
// from one that started and then crashed or hung (evidence: its records so
// far are compared). Exit codes cannot say it: a crash and a refusal can
// both end in anything. So the run says it: when $GRETA_STARTED_FILE is set,
// greta-run and greta-run-aot create that file just before the forward
// begins, after every input is checked and the trace is open and locked.
// The driver removes it before the run and looks for it after.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_RUNSTARTED_H
#define GRETA_RT_RUNSTARTED_H

#include <string>

namespace greta::rt {

inline constexpr const char *kStartedFileEnv = "GRETA_STARTED_FILE";

/// Creates $GRETA_STARTED_FILE (a symlink is not followed) holding this
/// process's pid; nothing when the variable is unset. Returns false with
/// `error` set if it is set but cannot be written: the driver would then
/// take a crash for a refusal, so the run must not go on.
bool reportForwardStarted(std::string &error);

} // namespace greta::rt

#endif // GRETA_RT_RUNSTARTED_H

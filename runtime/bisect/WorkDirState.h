//===- WorkDirState.h - The resumable state of a bisection ------*- C++ -*-===//
//
// Private to runtime/bisect: state.json in the work dir holds the inputs a
// bisection was started with and the result of every finished step, so a
// killed run resumes (docs/USER_GUIDE.md, "Resuming").
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RUNTIME_BISECT_WORKDIRSTATE_H
#define GRETA_RUNTIME_BISECT_WORKDIRSTATE_H

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace greta::bisect {

/// The persistent state of a bisection: the inputs it was started with and
/// the result of every finished step, so a killed run resumes.
class WorkDirState {
public:
  WorkDirState(std::filesystem::path path, nlohmann::json inputs);
  /// Reads an earlier state at the path, if any. False and `error` when it
  /// is unreadable or holds another bisection (other inputs).
  bool load(std::string &error);
  /// The record of step `key` ("PROMPT/STEP"), or nullptr.
  const nlohmann::json *find(const std::string &key) const;
  /// Records step `key` and rewrites the file atomically.
  bool store(const std::string &key, nlohmann::json value, std::string &error);

private:
  std::filesystem::path path_;
  nlohmann::json state_;
};

} // namespace greta::bisect

#endif // GRETA_RUNTIME_BISECT_WORKDIRSTATE_H

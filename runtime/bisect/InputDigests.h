//===- InputDigests.h - What a step's result depends on ---------*- C++ -*-===//
//
// A step's result holds only while its inputs are the same: the model, the
// weights, the prompt and the two tools (greta-run with the libraries it
// loads, greta-diff). Their content digests are recorded with every step in
// the work dir's state; a resumed bisection redoes the steps whose inputs
// changed, and says which input did.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_BISECT_INPUTDIGESTS_H
#define GRETA_BISECT_INPUTDIGESTS_H

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace greta::bisect {

struct Options;

struct InputDigests {
  std::string model, weights, gretaRun, gretaDiff;
  std::map<std::string, std::string> prompts; // by prompt name

  /// Computes every digest (the weights by their values, cached like
  /// greta-run's: WeightsDigest.h). Returns false with `error` naming the
  /// file that cannot be read.
  bool compute(const Options &options, std::string &error);
  /// The inputs of one step of prompt `prompt`, as recorded in the state.
  nlohmann::json forStep(const std::string &prompt) const;
};

/// Why a step's `recorded` inputs are not the `current` ones, as "model,
/// greta-run changed since the work dir's run"; "" when they are the same.
/// A step recorded without inputs (an older greta-bisect) is never the same.
std::string changedInputs(const nlohmann::json &recorded,
                          const nlohmann::json &current);

/// SHA-256 (hex) of a file's bytes; "" with `error` set if unreadable.
std::string fileDigest(const std::string &path, std::string &error);

/// SHA-256 (hex) over an executable and every shared library the dynamic
/// loader resolves for it (LD_TRACE_LOADED_OBJECTS, as ldd does): a rebuilt
/// libGretaRuntime.so changes the digest of the greta-run that loads it.
std::string executableDigest(const std::string &path, std::string &error);

} // namespace greta::bisect

#endif

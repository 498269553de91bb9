//===- Filter.h - Which records a run writes, chosen at run time -*- C++ -*-===//
//
// Compile once with every stage instrumented, choose at run time: the filter
// selects layers, stages, positions and the payload, so bisection re-runs
// never recompile.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_FILTER_H
#define GRETA_RT_FILTER_H

#include "greta/rt/DType.h"
#include "greta/rt/Stages.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace greta::rt {

struct Filter {
  std::optional<std::set<int64_t>> layers;   // nullopt: all
  /// nullopt: all but the KV-cache stages (recorded only when named).
  std::optional<std::set<Stage>> stages;
  /// Position spec items; nullopt: all. `last` resolves against the prompt.
  std::optional<std::vector<std::pair<int64_t, int64_t>>> positionRanges;
  bool lastPosition = false;                 // `last` was given
  std::optional<Payload> payload;            // nullopt: as compiled

  bool selects(Stage s, int64_t layer) const;
  /// `tokenCount` resolves `last`.
  bool selectsPosition(int64_t position, int64_t tokenCount) const;
  std::string str() const;

  /// Parsers for the command-line forms; return false and set `error`
  /// naming the bad item. layers: "0,1,4-8,all"; stages: names, "all";
  /// positions: "826,700-826,last,all"; payload: hash|stats|full.
  static bool parseLayers(const std::string &spec, Filter &f, std::string &error);
  static bool parseStages(const std::string &spec, Filter &f, std::string &error);
  static bool parsePositions(const std::string &spec, Filter &f, std::string &error);
  static bool parsePayload(const std::string &spec, Filter &f, std::string &error);
};

} // namespace greta::rt

#endif // GRETA_RT_FILTER_H

//===- Filter.cpp - Runtime record filter and its text forms ----*- C++ -*-===//
#include "greta/rt/Filter.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

using namespace greta::rt;

namespace {
std::vector<std::string> splitItems(const std::string &spec) {
  std::vector<std::string> items;
  size_t i = 0;
  while (true) {
    size_t j = spec.find(',', i);
    std::string item = spec.substr(i, j == std::string::npos ? j : j - i);
    // Spaces around items are forgiven: "0, 1" is what people type.
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    items.push_back(b == std::string::npos ? "" : item.substr(b, e - b + 1));
    if (j == std::string::npos)
      break;
    i = j + 1;
  }
  return items;
}

bool parseNonNegative(const std::string &s, int64_t &out) {
  if (s.empty() || s[0] < '0' || s[0] > '9')
    return false;
  errno = 0;
  char *end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno || *end)
    return false;
  out = v;
  return true;
}

/// "N" or "A-B" (A <= B). Sets `error` naming the item.
bool parseRange(const std::string &item, const std::string &spec,
                const char *what, std::pair<int64_t, int64_t> &out,
                std::string &error) {
  size_t dash = item.find('-');
  int64_t a, b;
  bool ok = dash == std::string::npos
                ? parseNonNegative(item, a) && ((b = a), true)
                : parseNonNegative(item.substr(0, dash), a) &&
                      parseNonNegative(item.substr(dash + 1), b);
  if (!ok) {
    error = std::string("bad ") + what + " '" + item + "' in '" + spec +
            "': expected N, A-B, " +
            (std::string(what) == "position" ? "last or all" : "or all");
    return false;
  }
  if (a > b) {
    error = std::string("bad ") + what + " range '" + item + "' in '" + spec +
            "': start is after end";
    return false;
  }
  out = {a, b};
  return true;
}
} // namespace

bool Filter::selects(Stage s, int64_t layer) const {
  if (layers && !layers->count(layer))
    return false;
  // The KV-cache stages are recorded only when named: see isCacheStage.
  return stages ? stages->count(s) > 0 : !isCacheStage(s);
}

bool Filter::selectsPosition(int64_t position, int64_t tokenCount) const {
  if (!positionRanges && !lastPosition)
    return true;
  if (lastPosition && position == tokenCount - 1)
    return true;
  if (positionRanges)
    for (const auto &[a, b] : *positionRanges)
      if (position >= a && position <= b)
        return true;
  return false;
}

std::string Filter::str() const {
  std::string s = "layers=";
  if (!layers) {
    s += "all";
  } else {
    bool first = true;
    for (int64_t l : *layers)
      s += (first ? "" : ",") + std::to_string(l), first = false;
  }
  s += " stages=";
  if (!stages) {
    s += "all";
  } else {
    bool first = true;
    for (Stage st : *stages)
      s += (first ? "" : ",") + std::string(stageName(st)), first = false;
  }
  s += " positions=";
  if (!positionRanges && !lastPosition) {
    s += "all";
  } else {
    bool first = true;
    if (positionRanges)
      for (const auto &[a, b] : *positionRanges) {
        s += first ? "" : ",";
        s += a == b ? std::to_string(a)
                    : std::to_string(a) + "-" + std::to_string(b);
        first = false;
      }
    if (lastPosition)
      s += first ? "last" : ",last";
  }
  s += " payload=";
  if (!payload)
    s += "compiled";
  else
    s += *payload == Payload::Hash    ? "hash"
         : *payload == Payload::Stats ? "stats"
                                      : "full";
  return s;
}

bool Filter::parseLayers(const std::string &spec, Filter &f,
                         std::string &error) {
  std::set<int64_t> layers;
  bool all = false;
  for (const std::string &item : splitItems(spec)) {
    if (item == "all") {
      all = true;
      continue;
    }
    std::pair<int64_t, int64_t> r;
    if (!parseRange(item, spec, "layer", r, error))
      return false;
    if (r.second - r.first > 100000) {
      error = "layer range '" + item + "' is implausibly large";
      return false;
    }
    for (int64_t l = r.first; l <= r.second; ++l)
      layers.insert(l);
  }
  if (all)
    f.layers.reset();
  else
    f.layers = std::move(layers);
  return true;
}

bool Filter::parseStages(const std::string &spec, Filter &f,
                         std::string &error) {
  std::set<Stage> stages;
  bool all = false;
  for (const std::string &item : splitItems(spec)) {
    if (item == "all") {
      all = true;
      continue;
    }
    auto s = parseStage(item);
    if (!s) {
      error = "unknown stage '" + item + "' in '" + spec + "'; stages are:";
      for (const auto &info : kStageTable)
        error += " " + std::string(info.name);
      error += ", all";
      return false;
    }
    stages.insert(*s);
  }
  bool namesCacheStage =
      std::any_of(stages.begin(), stages.end(), isCacheStage);
  if (all && !namesCacheStage) {
    f.stages.reset();
    return true;
  }
  // `all,k_cache`: every stage a model traces, and the named cache stages.
  if (all)
    for (unsigned i = 0; i < kNumStages; ++i)
      if (!isCacheStage(static_cast<Stage>(i)))
        stages.insert(static_cast<Stage>(i));
  f.stages = std::move(stages);
  return true;
}

bool Filter::parsePositions(const std::string &spec, Filter &f,
                            std::string &error) {
  std::vector<std::pair<int64_t, int64_t>> ranges;
  bool all = false, last = false;
  for (const std::string &item : splitItems(spec)) {
    if (item == "all") {
      all = true;
      continue;
    }
    if (item == "last") {
      last = true;
      continue;
    }
    std::pair<int64_t, int64_t> r;
    if (!parseRange(item, spec, "position", r, error))
      return false;
    ranges.push_back(r);
  }
  if (all) {
    f.positionRanges.reset();
    f.lastPosition = false;
    return true;
  }
  f.lastPosition = last;
  if (ranges.empty())
    f.positionRanges.reset();
  else
    f.positionRanges = std::move(ranges);
  return true;
}

bool Filter::parsePayload(const std::string &spec, Filter &f,
                          std::string &error) {
  if (spec == "hash")
    f.payload = Payload::Hash;
  else if (spec == "stats")
    f.payload = Payload::Stats;
  else if (spec == "full")
    f.payload = Payload::Full;
  else {
    error = "unknown payload '" + spec + "': expected hash, stats or full";
    return false;
  }
  return true;
}

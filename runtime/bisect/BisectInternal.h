//===- BisectInternal.h - What the bisection driver's files share --*- C++
//-*-===//
//
// Private to runtime/bisect: helpers of Bisect.cpp, Config.cpp and
// Render.cpp.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RUNTIME_BISECT_BISECTINTERNAL_H
#define GRETA_RUNTIME_BISECT_BISECTINTERNAL_H

#include "greta/bisect/Bisect.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace greta::bisect {

/// "interrupted by signal N <where>".
std::string interruptedMessage(const std::string &where);
/// "1,2,3".
std::string joinInts(const std::vector<int64_t> &v);
/// A FIRST_FAIL as the JSON result writes it (null when none).
nlohmann::json firstFailJson(const std::optional<FirstFail> &ff);

} // namespace greta::bisect

#endif // GRETA_RUNTIME_BISECT_BISECTINTERNAL_H

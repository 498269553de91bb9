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
/// The most tokens BASE or TEST generates (greta-run --generate N); 0 when
/// neither does.
int64_t generatedTokens(const Options &o);
/// Every side is greta-run on the CPU (which records the KV-cache stages)
/// and one goes through the cache in several calls (--chunk, --generate,
/// --generate-from): the steps then trace k_cache and v_cache too.
bool tracesKVCache(const Options &o);
/// A FIRST_FAIL as the JSON result writes it (null when none).
nlohmann::json firstFailJson(const std::optional<FirstFail> &ff);

} // namespace greta::bisect

#endif // GRETA_RUNTIME_BISECT_BISECTINTERNAL_H

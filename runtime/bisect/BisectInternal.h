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
#include "greta/bisect/Process.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
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
/// Every side is greta-run on the CPU, or on the GPU or an --so object in
/// several calls (the GPU's paged cache records the KV-cache stages), and
/// one goes through the cache in several calls (--chunk, --generate,
/// --generate-from): the steps then trace k_cache and v_cache too.
bool tracesKVCache(const Options &o);
/// A FIRST_FAIL as the JSON result writes it (null when none).
nlohmann::json firstFailJson(const std::optional<FirstFail> &ff);

enum class EngineRun { Ok, Failed, Interrupted };
/// One step's run of engine `c` (Engine.cpp): its command with {prompt},
/// {prompt_path} and {trace} filled in, `env` (GRETA_TRACE_*) set, its
/// output in STEP_DIR/NAME.log. Ok only when it exited 0 and wrote a
/// complete trace; Failed sets `error` with the command and its output.
EngineRun runEngineCommand(const Config &c, const std::string &prompt,
                           const std::string &promptPath, const EnvVars &env,
                           const std::filesystem::path &traceDir,
                           const std::filesystem::path &stepDir,
                           int timeoutSeconds, std::string &error);

} // namespace greta::bisect

#endif // GRETA_RUNTIME_BISECT_BISECTINTERNAL_H

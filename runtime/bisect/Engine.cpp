//===- Engine.cpp - One step's run of an engine command -------*- C++ -*-===//
//
// greta-bisect --engine: a user's command (another engine, HF transformers)
// told what to trace through GRETA_TRACE_* and where ({trace}); its trace
// is evidence only when the run succeeded and its manifest says complete.
//
//===----------------------------------------------------------------------===//
#include "BisectInternal.h"
#include "greta/bisect/Process.h"

#include <filesystem>
#include <fstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace greta::bisect {

namespace {

/// An engine's trace is evidence only when its manifest says it is
/// complete; an exit code of 0 alone is not enough.
bool checkEngineTrace(const fs::path &traceDir, std::string &error) {
  fs::path manifest = traceDir / "manifest.json";
  std::ifstream in(manifest);
  if (!in)
    return error = "wrote no trace (no " + manifest.string() + ")", false;
  json m = json::parse(in, nullptr, false);
  if (m.is_discarded() || !m.is_object())
    return error = manifest.string() + " is not valid JSON", false;
  if (!m.value("complete", false))
    return error = "wrote an incomplete trace (" + manifest.string() +
                   " says complete: false; the writer was not finished)",
           false;
  if (!fs::exists(traceDir / "records.bin"))
    return error = "wrote no " + (traceDir / "records.bin").string(), false;
  return true;
}

} // namespace

EngineRun runEngineCommand(const Config &c, const std::string &prompt,
                           const std::string &promptPath, const EnvVars &env,
                           const fs::path &traceDir, const fs::path &stepDir,
                           int timeoutSeconds, std::string &error) {
  std::vector<std::string> argv =
      expandCommand(c.command, promptPath, prompt, traceDir.string());
  // A resumed step re-runs into a clean directory: an engine need not
  // know how to overwrite a trace.
  std::error_code ec;
  fs::remove_all(traceDir, ec);
  fs::path log = stepDir / (c.name + ".log");
  ProcessResult r = runProcess(argv, log.string(), timeoutSeconds, "", env);
  if (r.interrupted) // nothing is recorded: the same command redoes it
    return EngineRun::Interrupted;
  std::string why;
  if (r.exitCode == 0 && !r.signaled && !r.timedOut &&
      checkEngineTrace(traceDir, why))
    return EngineRun::Ok;
  if (why.empty())
    why = "failed (" + r.describe() + ")";
  std::string cmd;
  for (const std::string &a : argv)
    cmd += (cmd.empty() ? "" : " ") + shellQuote(a);
  // Never evidence, not even for the test engine: greta-bisect cannot tell
  // a bug under study from a broken command.
  error = "the " + c.name + " engine run " + why + ": " + cmd + "\n--- last " +
          "output (" + log.string() + ") ---\n" + r.outputTail;
  return EngineRun::Failed;
}

} // namespace greta::bisect

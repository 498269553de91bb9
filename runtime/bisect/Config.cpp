//===- Config.cpp - Run configurations and their checks ---------*- C++ -*-===//
//
// The BASE/TEST/REF configurations of a bisection: their model, the
// reference derived from BASE, the coarse layers, the engine command's
// placeholders, and the flag checks done before any step runs.
//
//===----------------------------------------------------------------------===//
#include "BisectInternal.h"
#include "greta/bisect/Process.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <unistd.h>

namespace fs = std::filesystem;

namespace greta::bisect {

const std::string &modelOf(const Options &o, const Config &c) {
  return c.model.empty() ? o.model : c.model;
}

namespace {
/// The value of greta-run flag `name` in `flags` ("--name=V" or "--name V"),
/// or `dflt`.
std::string flagValue(const std::vector<std::string> &flags,
                      const std::string &name, const std::string &dflt) {
  std::string value = dflt;
  for (size_t i = 0; i < flags.size(); ++i) {
    if (flags[i].rfind(name + "=", 0) == 0)
      value = flags[i].substr(name.size() + 1);
    else if (flags[i] == name && i + 1 < flags.size())
      value = flags[i + 1];
  }
  return value;
}
} // namespace

int64_t generatedTokens(const Options &o) {
  int64_t most = 0;
  for (const Config *c : {&o.base, &o.test})
    most = std::max<int64_t>(
        most, std::strtoll(flagValue(c->flags, "--generate", "0").c_str(),
                           nullptr, 10));
  return most;
}

bool tracesKVCache(const Options &o) {
  std::vector<const Config *> sides = {&o.base, &o.test};
  if (o.ref)
    sides.push_back(&*o.ref);
  bool several = false;
  for (const Config *c : sides) {
    std::string backend = flagValue(c->flags, "--backend", "cpu");
    bool object = !flagValue(c->flags, "--so", "").empty();
    if (!c->command.empty() || (backend != "cpu" && backend != "gpu"))
      return false;
    std::string chunk = flagValue(c->flags, "--chunk", "all");
    bool calls = (chunk != "all" && chunk != "0") ||
                 !flagValue(c->flags, "--generate-from", "").empty();
    std::string generate = flagValue(c->flags, "--generate", "");
    // The GPU writes k_cache/v_cache only on its paged path, a run of
    // several calls (GpuRun::run); a single-call side (or an object that
    // may be a GPU one) has none to compare.
    if ((backend == "gpu" || object) && !calls &&
        std::strtoll(generate.c_str(), nullptr, 10) < 2)
      return false;
    several |= calls || !generate.empty();
  }
  return several;
}

std::string precisionOrBackendDifference(const Config &base,
                                         const Config &test) {
  std::string why;
  for (auto [flag, dflt, what] :
       {std::tuple{"--precision", "f32", "precision"},
        std::tuple{"--backend", "cpu", "backend"},
        std::tuple{"--so", "", "compiled model (--so)"}}) {
    std::string b = flagValue(base.flags, flag, dflt),
                t = flagValue(test.flags, flag, dflt);
    if (b != t)
      why += (why.empty() ? "" : ", ") + std::string(what) + " " +
             (b.empty() ? "none" : b) + " vs " + (t.empty() ? "none" : t);
  }
  return why;
}

std::string diffPolicy(const Options &o) {
  if (!o.policy.empty())
    return o.policy;
  return o.ref ? "reference" : "exact";
}

Config autoReference(const Config &base) {
  Config ref;
  ref.name = "ref";
  for (size_t i = 0; i < base.flags.size(); ++i) {
    const std::string &f = base.flags[i];
    std::string key = f.substr(0, f.find('='));
    bool dropped = false;
    for (const char *d :
         {"--precision", "--backend", "--device", "--kernel", "--repeat"})
      if (key == d) {
        dropped = true;
        // "--flag VALUE": the value goes too.
        if (f.find('=') == std::string::npos && i + 1 < base.flags.size())
          ++i;
      }
    if (!dropped)
      ref.flags.push_back(f);
  }
  ref.flags.push_back("--precision=f64");
  for (const std::string &f : ref.flags)
    ref.flagsText += (ref.flagsText.empty() ? "" : " ") + shellQuote(f);
  return ref;
}

std::vector<int64_t> coarseLayers(int64_t numLayers) {
  std::set<int64_t> layers;
  for (int64_t l : {0, 1, 2, 4, 8})
    if (l < numLayers)
      layers.insert(l);
  layers.insert(numLayers - 1);
  return {layers.begin(), layers.end()};
}

static const char *const kPlaceholders[] = {"{prompt}", "{prompt_name}",
                                            "{trace_dir}"};

std::vector<std::string> expandCommand(const std::vector<std::string> &command,
                                       const std::string &promptPath,
                                       const std::string &promptName,
                                       const std::string &traceDir) {
  const std::string values[] = {promptPath, promptName, traceDir};
  std::vector<std::string> argv;
  for (std::string arg : command) {
    std::string out;
    for (size_t i = 0; i < arg.size();) {
      bool replaced = false;
      for (size_t k = 0; k < 3 && !replaced; ++k)
        if (arg.compare(i, std::string(kPlaceholders[k]).size(),
                        kPlaceholders[k]) == 0) {
          out += values[k];
          i += std::string(kPlaceholders[k]).size();
          replaced = true;
        }
      if (!replaced)
        out += arg[i++];
    }
    argv.push_back(out);
  }
  return argv;
}

bool checkCommand(const std::vector<std::string> &command, std::string &error) {
  if (command.empty())
    return error = "the command is empty", false;
  std::string all;
  for (const std::string &a : command)
    all += a + " ";
  for (const char *needed : {"{prompt}", "{trace_dir}"})
    if (all.find(needed) == std::string::npos)
      return error = std::string("the command has no ") + needed +
                     " (the engine must be told the prompt and where to "
                     "write its trace)",
             false;
  for (size_t open = all.find('{'); open != std::string::npos;
       open = all.find('{', open + 1)) {
    size_t close = all.find('}', open);
    std::string name =
        all.substr(open, close == std::string::npos ? std::string::npos
                                                    : close - open + 1);
    if (std::find(std::begin(kPlaceholders), std::end(kPlaceholders), name) ==
        std::end(kPlaceholders))
      return error = "unknown placeholder '" + name +
                     "' (known: {prompt}, {prompt_name}, {trace_dir})",
             false;
  }
  return true;
}

std::string interruptedMessage(const std::string &where) {
  return "interrupted by signal " + std::to_string(interruptSignal()) + " " +
         where;
}

bool checkConfigs(const Options &o, std::string &error) {
  std::vector<const Config *> configs = {&o.base, &o.test};
  if (o.ref)
    configs.push_back(&*o.ref);
  // The output goes to a private temporary file: nothing is written in the
  // work dir before the flags are known to be good.
  const char *tmpdir = std::getenv("TMPDIR");
  std::string log = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") +
                    "/greta-bisect-check-XXXXXX";
  int fd = mkstemp(log.data());
  if (fd < 0) {
    error = "cannot create a temporary file for the flag checks (" + log +
            "): " + std::strerror(errno);
    return false;
  }
  close(fd);
  bool ok = true;
  for (const auto &[name, path] : o.prompts) {
    for (const Config *c : configs) {
      if (!c->command.empty())
        continue; // an outside engine: its run is checked when it ends
      std::vector<std::string> argv = {
          o.gretaRun, c->model.empty() ? o.model : c->model,
          "--weights", o.weights, "--prompt", path, "--dry-run"};
      if (!o.tokenizer.empty())
        argv.insert(argv.end(), {"--tokenizer", o.tokenizer});
      argv.insert(argv.end(), c->flags.begin(), c->flags.end());
      ProcessResult r = runProcess(argv, log, 0);
      if (r.interrupted) {
        error = interruptedMessage("while checking the flags");
        ok = false;
      } else if (r.timedOut || r.signaled || r.exitCode != 0) {
        error = "--" + c->name + " \"" + c->flagsText +
                "\": greta-run refuses it for prompt " + name + " (" +
                r.describe() + "), before any run: " + commandLine(argv) +
                "\n" + r.outputTail;
        ok = false;
      }
      if (!ok)
        break;
    }
    if (!ok)
      break;
  }
  std::remove(log.c_str());
  return ok;
}

} // namespace greta::bisect

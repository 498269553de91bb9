//===- Bisect.cpp - Coarse-to-fine search for FIRST_FAIL --------*- C++ -*-===//
#include "Bisect.h"
#include "Process.h"

#include "greta/rt/Prompt.h"
#include "greta/rt/Stages.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace greta::bisect {

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

std::string joinInts(const std::vector<int64_t> &v) {
  std::string s;
  for (int64_t x : v)
    s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

std::optional<FirstFail> parseFirstFail(const json &j) {
  if (!j.contains("first_fail") || j["first_fail"].is_null())
    return std::nullopt;
  const json &f = j["first_fail"];
  FirstFail ff;
  ff.stage = f.value("stage", "");
  ff.category = f.value("category", "");
  ff.layer = f.value("layer", int64_t(0));
  ff.position = f.value("position", int64_t(0));
  ff.hashMatch = f.value("hash_match", false);
  if (f.contains("mae") && f["mae"].is_number())
    ff.mae = f["mae"].get<double>();
  return ff;
}

json firstFailJson(const std::optional<FirstFail> &ff) {
  if (!ff)
    return nullptr;
  json j = {{"stage", ff->stage},         {"layer", ff->layer},
            {"position", ff->position},   {"category", ff->category},
            {"hash_match", ff->hashMatch}};
  j["mae"] = ff->mae ? json(*ff->mae) : json(nullptr);
  return j;
}

uint64_t dirBytes(const fs::path &dir) {
  uint64_t total = 0;
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return 0;
  for (const auto &e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && e.path().extension() != ".log" &&
        e.path().filename() != ".lock")
      total += e.file_size(ec);
  return total;
}

/// The persistent state of a bisection: the inputs it was started with and
/// the result of every finished step, so a killed run resumes.
class State {
public:
  State(fs::path path, json inputs) : path_(std::move(path)) {
    state_ = {{"version", 1}, {"inputs", std::move(inputs)}, {"steps", json::object()}};
  }
  bool load(std::string &error) {
    std::ifstream in(path_);
    if (!in)
      return true; // a fresh work dir
    json old = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (old.is_discarded() || !old.contains("inputs") || !old.contains("steps")) {
      error = "work dir state " + path_.string() +
              " is unreadable; remove it or use another --work-dir";
      return false;
    }
    if (old["inputs"] != state_["inputs"]) {
      error = "work dir " + path_.parent_path().string() +
              " holds a different bisection (other model, weights, prompts "
              "or flags); use another --work-dir or --restart";
      return false;
    }
    state_ = std::move(old);
    return true;
  }
  const json *find(const std::string &key) const {
    auto it = state_["steps"].find(key);
    return it == state_["steps"].end() ? nullptr : &*it;
  }
  bool store(const std::string &key, json value, std::string &error) {
    state_["steps"][key] = std::move(value);
    fs::path tmp = path_;
    tmp += ".tmp";
    {
      std::ofstream out(tmp);
      out << state_.dump(2) << "\n";
      if (!out) {
        error = "cannot write " + tmp.string();
        return false;
      }
    }
    std::error_code ec;
    fs::rename(tmp, path_, ec);
    if (ec) {
      error = "cannot write " + path_.string() + ": " + ec.message();
      return false;
    }
    return true;
  }

private:
  fs::path path_;
  json state_;
};

struct StepSpec {
  std::string id, layers, stages = "all", positions, payload = "hash";
  std::vector<std::string> testExtraFlags; // e.g. --confirm's patch
};

struct StepOutcome {
  std::optional<FirstFail> firstFail;
  std::string testFailure;
  uint64_t bytes = 0;
  json diff;
  std::string markdown;
};

class Driver {
public:
  Driver(const Options &o, State &state) : o_(o), state_(state) {}

  bool runPrompt(const std::string &name, const std::string &promptPath,
                 PromptResult &result, std::string &error);
  bool stopped() const { return stopped_; }
  bool confirm(const std::string &name, const std::string &promptPath,
               const FirstFail &ff, const std::string &positions,
               const std::string &payload, int &stepNo, PromptResult &result,
               std::string &error);
  bool report(const std::string &name, const std::string &promptPath,
              const FirstFail &ff, const std::string &checkpoints, int &stepNo,
              PromptResult &result, std::string &error);

private:
  /// One outside engine run of a step (docs/ENGINES.md); false and `error`
  /// unless it exits 0 with a complete trace.
  bool runEngine(const Config &c, const std::string &prompt,
                 const std::string &promptPath, const StepSpec &spec,
                 const fs::path &traceDir, const fs::path &stepDir,
                 std::string &error);
  bool step(const std::string &prompt, const std::string &promptPath,
            const StepSpec &spec, bool wantMarkdown, StepOutcome &out,
            std::string &error);
  void progress(const std::string &prompt, const StepSpec &spec,
                int64_t runs, bool cached) {
    if (o_.quiet)
      return;
    std::cerr << "[greta-bisect] " << prompt << " step " << spec.id
              << " | layers " << spec.layers << " | stages " << spec.stages
              << " | positions " << spec.positions << " | payload "
              << spec.payload << " | runs so far " << runs << " per config"
              << (cached ? " (resumed from work dir)" : "") << "\n";
  }

  const Options &o_;
  State &state_;
  int64_t executed_ = 0; // steps run (not resumed) by this process
  bool stopped_ = false;
};

bool Driver::step(const std::string &prompt, const std::string &promptPath,
                  const StepSpec &spec, bool wantMarkdown, StepOutcome &out,
                  std::string &error) {
  std::string key = prompt + "/" + spec.id;
  if (const json *done = state_.find(key)) {
    out.firstFail = parseFirstFail((*done)["diff"]);
    out.testFailure = done->value("test_failure", "");
    out.bytes = done->value("bytes", uint64_t(0));
    out.diff = (*done)["diff"];
    out.markdown = done->value("markdown", "");
    return true;
  }
  fs::path stepDir = fs::path(o_.workDir) / prompt / spec.id;
  std::error_code ec;
  fs::create_directories(stepDir, ec);
  if (ec) {
    error = "cannot create " + stepDir.string() + ": " + ec.message();
    return false;
  }
  std::vector<const Config *> configs = {&o_.base, &o_.test};
  if (o_.ref)
    configs.push_back(&*o_.ref);
  for (const Config *c : configs) {
    fs::path traceDir = stepDir / c->name;
    if (!c->command.empty()) {
      if (!runEngine(*c, prompt, promptPath, spec, traceDir, stepDir, error))
        return false;
      continue;
    }
    std::vector<std::string> argv = {
        o_.gretaRun,  o_.model,          "--weights",    o_.weights,
        "--prompt",   promptPath,        "--trace-dir",  traceDir.string(),
        "--overwrite", "--layers",       spec.layers,    "--stages",
        spec.stages,  "--positions",     spec.positions, "--payload",
        spec.payload};
    argv.insert(argv.end(), c->flags.begin(), c->flags.end());
    bool isTest = c == &o_.test;
    if (isTest)
      argv.insert(argv.end(), spec.testExtraFlags.begin(),
                  spec.testExtraFlags.end());
    fs::path log = stepDir / (c->name + ".log");
    ProcessResult r =
        runProcess(argv, log.string(), isTest ? o_.timeoutSeconds : 0);
    if (r.exitCode == 0)
      continue;
    std::string cmd;
    for (const std::string &a : argv)
      cmd += (cmd.empty() ? "" : " ") + shellQuote(a);
    if (!isTest) {
      error = "the " + c->name + " run failed (" + r.describe() + "): " + cmd +
              "\n--- last output (" + log.string() + ") ---\n" + r.outputTail;
      return false;
    }
    // A crashing or hanging test run is evidence: compare what it wrote.
    out.testFailure = "test run " + r.describe() + " (log: " + log.string() + ")";
  }

  std::vector<std::string> diffArgv = {o_.gretaDiff, (stepDir / "base").string(),
                                       (stepDir / "test").string()};
  if (o_.ref) {
    diffArgv.insert(diffArgv.end(),
                    {"--ref", (stepDir / "ref").string(), "--policy", "reference"});
  } else {
    diffArgv.insert(diffArgv.end(), {"--policy", "exact"});
  }
  std::vector<std::string> jsonArgv = diffArgv;
  jsonArgv.insert(jsonArgv.end(), {"--format", "json"});
  fs::path jsonPath = stepDir / "diff.json";
  ProcessResult d = runProcess(jsonArgv, (stepDir / "diff.log").string(), 0,
                               jsonPath.string());
  if (d.exitCode != 0 && d.exitCode != 1) {
    std::ifstream errLog(stepDir / "diff.log");
    std::stringstream ss;
    ss << errLog.rdbuf();
    if (!out.testFailure.empty()) {
      // The test run died before writing a readable trace: nothing to compare.
      out.diff = {{"first_fail", nullptr}, {"error", ss.str()}};
    } else {
      error = "greta-diff failed (" + d.describe() + ") on step " + spec.id +
              ":\n" + ss.str();
      return false;
    }
  } else {
    std::ifstream in(jsonPath);
    out.diff = json::parse(in, nullptr, false);
    if (out.diff.is_discarded()) {
      error = "greta-diff wrote no valid JSON for step " + spec.id + " (" +
              jsonPath.string() + ")";
      return false;
    }
    out.firstFail = parseFirstFail(out.diff);
  }
  if (wantMarkdown) {
    std::vector<std::string> mdArgv = diffArgv;
    mdArgv.insert(mdArgv.end(), {"--format", "markdown"});
    fs::path mdPath = stepDir / "diff.md";
    ProcessResult m = runProcess(mdArgv, (stepDir / "diff-md.log").string(), 0,
                                 mdPath.string());
    if (m.exitCode == 0 || m.exitCode == 1) {
      std::ifstream in(mdPath);
      std::stringstream ss;
      ss << in.rdbuf();
      out.markdown = ss.str();
    }
  }
  out.bytes = dirBytes(stepDir);
  json record = {{"diff", out.diff},
                 {"bytes", out.bytes},
                 {"test_failure", out.testFailure},
                 {"markdown", out.markdown}};
  return state_.store(key, std::move(record), error);
}

bool Driver::runEngine(const Config &c, const std::string &prompt,
                       const std::string &promptPath, const StepSpec &spec,
                       const fs::path &traceDir, const fs::path &stepDir,
                       std::string &error) {
  std::vector<std::string> argv =
      expandCommand(c.command, promptPath, prompt, traceDir.string());
  // A resumed step re-runs into a clean directory: an engine need not
  // know how to overwrite a trace.
  std::error_code ec;
  fs::remove_all(traceDir, ec);
  fs::path log = stepDir / (c.name + ".log");
  EnvVars env = {{"GRETA_TRACE_LAYERS", spec.layers},
                 {"GRETA_TRACE_STAGES", spec.stages},
                 {"GRETA_TRACE_POSITIONS", spec.positions},
                 {"GRETA_TRACE_PAYLOAD", spec.payload}};
  ProcessResult r = runProcess(argv, log.string(),
                               &c == &o_.test ? o_.timeoutSeconds : 0, "", env);
  std::string why;
  if (r.exitCode == 0 && !r.signaled && !r.timedOut &&
      checkEngineTrace(traceDir, why))
    return true;
  if (why.empty())
    why = "failed (" + r.describe() + ")";
  std::string cmd;
  for (const std::string &a : argv)
    cmd += (cmd.empty() ? "" : " ") + shellQuote(a);
  // Never evidence, not even for the test engine: greta-bisect cannot tell
  // a bug under study from a broken command.
  error = "the " + c.name + " engine run " + why + ": " + cmd + "\n--- last " +
          "output (" + log.string() + ") ---\n" + r.outputTail;
  return false;
}

bool Driver::runPrompt(const std::string &name, const std::string &promptPath,
                       PromptResult &result, std::string &error) {
  result.prompt = name;
  std::string promptError;
  auto ids = rt::readPrompt(promptPath, promptError);
  if (!ids) {
    error = promptError;
    return false;
  }
  int64_t n = static_cast<int64_t>(ids->size());
  result.tokenCount = n;
  if (n == 0) {
    error = "prompt " + promptPath + " is empty";
    return false;
  }
  // The seed's checkpoints: 826 and 1652 where the prompt reaches them, and
  // the last token.
  std::string positions = o_.positions;
  if (positions.empty()) {
    std::set<int64_t> p = {n - 1};
    for (int64_t c : {826, 1652})
      if (c < n)
        p.insert(c);
    positions = joinInts({p.begin(), p.end()});
  }
  std::string payload = o_.ref ? "full" : "hash";
  int64_t runs = 0;
  auto doStep = [&](StepSpec spec, bool markdown, StepOutcome &out) {
    spec.payload = spec.payload.empty() ? payload : spec.payload;
    bool cached = state_.find(name + "/" + spec.id) != nullptr;
    if (!cached && o_.maxSteps > 0 && executed_ >= o_.maxSteps) {
      stopped_ = true;
      error = "stopped after " + std::to_string(executed_) +
              " steps (--max-steps); run the same command again to resume "
              "from " + o_.workDir;
      return false;
    }
    executed_ += cached ? 0 : 1;
    progress(name, spec, runs, cached);
    if (!step(name, promptPath, spec, markdown, out, error))
      return false;
    ++runs;
    result.bytesWritten += out.bytes;
    StepLog log{spec.id, spec.layers, spec.stages, spec.positions,
                spec.payload, out.firstFail, out.testFailure};
    result.steps.push_back(log);
    if (!out.testFailure.empty())
      result.testFailure = out.testFailure;
    return true;
  };

  // 1. Coarse layers, every stage, the checkpoint positions.
  std::vector<int64_t> coarse = coarseLayers(o_.numLayers);
  StepOutcome out;
  if (!doStep({"1-coarse", joinInts(coarse), "all", positions, payload}, true,
              out))
    return false;
  result.runsPerConfig = runs;
  if (!out.firstFail) {
    result.diffJson = out.diff;
    result.diffMarkdown = out.markdown;
    result.reportDir = (fs::path(o_.workDir) / name / "1-coarse").string();
    return true; // no divergence at the checkpoints
  }
  // 2. Binary search between the last agreeing and first diverging layer.
  int64_t bad = out.firstFail->layer, good = -1;
  for (int64_t l : coarse)
    if (l < bad)
      good = l;
  int stepNo = 2;
  while (bad - good > 1) {
    int64_t mid = good + (bad - good) / 2;
    StepOutcome o;
    if (!doStep({std::to_string(stepNo++) + "-layer" + std::to_string(mid),
                 std::to_string(mid), "all", positions, payload},
                false, o))
      return false;
    if (o.firstFail)
      bad = mid;
    else
      good = mid;
  }
  // 3. Every stage and position of the first diverging layer. A divergence
  // that enters the layer through its input (residual_pre_attn) started in
  // the layer below, at positions the checkpoints did not cover: go down.
  // Digests suffice between runs meant to agree bit for bit; with a
  // reference (different precisions or backends) digests always differ,
  // so the scan compares values too.
  std::optional<FirstFail> found;
  int64_t layer = bad;
  while (true) {
    StepOutcome o;
    if (!doStep({std::to_string(stepNo++) + "-scan-layer" + std::to_string(layer),
                 std::to_string(layer), "all", "all", payload},
                false, o))
      return false;
    if (!o.firstFail) {
      if (found)
        break; // the layer below is clean: the input of `layer + 1` diverged
      error = "the divergence seen at layer " + std::to_string(layer) +
              " vanished when every position was traced: the runs are not "
              "deterministic (see " + o_.workDir + ")";
      return false;
    }
    found = o.firstFail;
    if (found->stage != "residual_pre_attn" || layer == 0)
      break;
    --layer;
  }
  // 4. Values for the FIRST_FAIL record and the checkpoints after it: MAE.
  // Positions before it show where agreement ends (the first row and the
  // one just before FIRST_FAIL); the checkpoints after it show the spread.
  std::set<int64_t> finalPositions = {0, found->position};
  if (found->position > 0)
    finalPositions.insert(found->position - 1);
  std::stringstream ps(positions);
  for (std::string item; std::getline(ps, item, ',');)
    if (std::stoll(item) > found->position)
      finalPositions.insert(std::stoll(item));
  StepOutcome last;
  if (!doStep({std::to_string(stepNo++) + "-values",
               std::to_string(found->layer), found->stage,
               joinInts({finalPositions.begin(), finalPositions.end()}),
               "full"},
              true, last))
    return false;
  result.firstFail = last.firstFail ? last.firstFail : found;
  if (result.firstFail && found && result.firstFail->position != found->position)
    result.firstFail = found; // hash-level finding is authoritative
  if (result.firstFail && !result.firstFail->mae && last.firstFail)
    result.firstFail->mae = last.firstFail->mae;
  result.diffJson = last.diff;
  result.diffMarkdown = last.markdown;
  result.runsPerConfig = runs;
  if (o_.confirm && result.firstFail &&
      !confirm(name, promptPath, *result.firstFail, positions, payload, stepNo,
               result, error))
    return false;
  if (o_.reportValues && result.firstFail)
    return report(name, promptPath, *result.firstFail, positions, stepNo,
                  result, error);
  return true;
}

bool Driver::confirm(const std::string &name, const std::string &promptPath,
                     const FirstFail &ff, const std::string &positions,
                     const std::string &payload, int &stepNo,
                     PromptResult &result, std::string &error) {
  // The base's values of the FIRST_FAIL tensor at every position...
  StepSpec source{std::to_string(stepNo++) + "-confirm-source",
                  std::to_string(ff.layer), ff.stage, "all", "full"};
  StepOutcome s;
  progress(name, source, result.runsPerConfig, state_.find(name + "/" + source.id));
  if (!step(name, promptPath, source, false, s, error))
    return false;
  result.bytesWritten += s.bytes;
  // ...patched into the test run; then everything after it is compared.
  fs::path patch = fs::path(o_.workDir) / name / source.id / "base";
  StepSpec check{std::to_string(stepNo++) + "-confirm",
                 std::to_string(o_.numLayers - 1), "all", positions, payload};
  check.testExtraFlags = {"--patch-from", patch.string(), "--patch",
                          ff.stage + ":" + std::to_string(ff.layer)};
  StepOutcome c;
  progress(name, check, result.runsPerConfig, state_.find(name + "/" + check.id));
  if (!step(name, promptPath, check, false, c, error))
    return false;
  result.bytesWritten += c.bytes;
  result.steps.push_back({source.id, source.layers, source.stages,
                          source.positions, source.payload, s.firstFail,
                          "values of the FIRST_FAIL tensor for the patch"});
  result.steps.push_back({check.id, check.layers, check.stages,
                          check.positions, check.payload, c.firstFail,
                          "test run with the base's " + ff.stage + " layer " +
                              std::to_string(ff.layer) + " patched in"});
  if (!c.firstFail) {
    result.confirmation =
        "confirmed: with the base's " + ff.stage + " (layer " +
        std::to_string(ff.layer) + ") patched into the test run, the last "
        "layer and the logits agree with the base at positions " + positions;
  } else {
    result.confirmation =
        "not confirmed: with the base's " + ff.stage + " (layer " +
        std::to_string(ff.layer) + ") patched in, the test run still "
        "diverges at " + c.firstFail->stage + " layer " +
        std::to_string(c.firstFail->layer) + " position " +
        std::to_string(c.firstFail->position) +
        ": the divergence has another cause downstream too (or is spread "
        "over many tensors, like a precision change)";
  }
  return true;
}

bool Driver::report(const std::string &name, const std::string &promptPath,
                    const FirstFail &ff, const std::string &checkpoints,
                    int &stepNo, PromptResult &result, std::string &error) {
  // Values at every layer and stage, for the page's heatmap and chart; not
  // part of the search, so not counted in runsPerConfig (like --confirm).
  StepSpec spec{std::to_string(stepNo++) + "-report", "all", "all",
                reportPositions(result.tokenCount, ff.position, checkpoints),
                "full"};
  StepOutcome out;
  progress(name, spec, result.runsPerConfig, state_.find(name + "/" + spec.id));
  if (!step(name, promptPath, spec, false, out, error))
    return false;
  result.bytesWritten += out.bytes;
  result.steps.push_back({spec.id, spec.layers, spec.stages, spec.positions,
                          spec.payload, out.firstFail,
                          "values at every layer for the HTML report"});
  result.reportDir = (fs::path(o_.workDir) / name / spec.id).string();
  return true;
}

} // namespace

std::string reportPositions(int64_t tokens, int64_t firstFailPosition,
                            const std::string &checkpoints) {
  std::set<int64_t> p;
  for (int64_t i = 0; i < 64; ++i)
    p.insert(i * (tokens - 1) / 63);
  for (int64_t d = -2; d <= 2; ++d)
    if (firstFailPosition + d >= 0 && firstFailPosition + d < tokens)
      p.insert(firstFailPosition + d);
  std::stringstream ss(checkpoints);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item == "last")
      p.insert(tokens - 1);
    else if (!item.empty() &&
             item.find_first_not_of("0123456789") == std::string::npos &&
             std::stoll(item) < tokens)
      p.insert(std::stoll(item));
  }
  return joinInts({p.begin(), p.end()});
}

bool runBisection(const Options &options, std::vector<PromptResult> &results,
                  std::string &error, bool &stopped) {
  stopped = false;
  json inputs = {{"model", options.model},
                 {"weights", options.weights},
                 {"base", options.base.flagsText},
                 {"test", options.test.flagsText},
                 {"ref", options.ref ? json(options.ref->flagsText) : json(nullptr)},
                 {"positions", options.positions}};
  for (const auto &[name, path] : options.prompts)
    inputs["prompts"].push_back({name, path});
  std::error_code ec;
  fs::create_directories(options.workDir, ec);
  if (ec) {
    error = "cannot create work dir " + options.workDir + ": " + ec.message();
    return false;
  }
  State state(fs::path(options.workDir) / "state.json", inputs);
  if (!state.load(error))
    return false;
  Driver driver(options, state);
  for (const auto &[name, path] : options.prompts) {
    PromptResult r;
    if (!driver.runPrompt(name, path, r, error)) {
      stopped = driver.stopped();
      return false;
    }
    results.push_back(std::move(r));
  }
  return true;
}

std::string renderMarkdown(const Options &options,
                           const std::vector<PromptResult> &results) {
  std::ostringstream os;
  os << "# GRETA bisection\n\n"
     << "- model: `" << options.model << "` (" << options.numLayers
     << " layers), weights: `" << options.weights << "`\n"
     << "- base: `" << options.base.flagsText << "`\n"
     << "- test: `" << options.test.flagsText << "`\n";
  if (options.ref)
    os << "- reference: `" << options.ref->flagsText << "`\n";
  os << "\n## FIRST_FAIL\n\n"
     << "| Prompt | Position | Layer | Tensor | Category | Hash match | MAE | "
        "Runs/config | Bytes written |\n"
     << "|---|---|---|---|---|---|---|---|---|\n";
  for (const PromptResult &r : results) {
    os << "| " << r.prompt << " (" << r.tokenCount << " tokens) | ";
    if (r.firstFail) {
      char mae[32] = "n/a";
      if (r.firstFail->mae)
        snprintf(mae, sizeof mae, "%.6g", *r.firstFail->mae);
      os << r.firstFail->position << " | " << r.firstFail->layer << " | "
         << r.firstFail->stage << " | " << r.firstFail->category << " | "
         << (r.firstFail->hashMatch ? "YES" : "NO") << " | " << mae << " | ";
    } else {
      os << "- | - | no divergence | - | - | - | ";
    }
    os << r.runsPerConfig << " | " << r.bytesWritten << " |\n";
  }
  for (const PromptResult &r : results) {
    os << "\n## " << r.prompt << "\n\nSteps:\n\n";
    for (const StepLog &s : r.steps) {
      os << "- `" << s.id << "` layers " << s.layers << ", stages " << s.stages
         << ", positions " << s.positions << ", payload " << s.payload
         << ": ";
      if (s.firstFail)
        os << "first divergence " << s.firstFail->stage << " layer "
           << s.firstFail->layer << " position " << s.firstFail->position;
      else
        os << "no divergence";
      if (!s.note.empty())
        os << " (" << s.note << ")";
      os << "\n";
    }
    if (!r.confirmation.empty())
      os << "\nCausal confirmation: " << r.confirmation << ".\n";
    if (!r.testFailure.empty())
      os << "\nThe test run failed: " << r.testFailure
         << ". Its records up to the failure were compared.\n";
    if (!r.diffMarkdown.empty())
      os << "\n" << r.diffMarkdown << "\n";
  }
  return os.str();
}

nlohmann::json renderJson(const Options &options,
                          const std::vector<PromptResult> &results) {
  json j;
  j["model"] = options.model;
  j["weights"] = options.weights;
  j["base"] = options.base.flagsText;
  j["test"] = options.test.flagsText;
  j["ref"] = options.ref ? json(options.ref->flagsText) : json(nullptr);
  int64_t runs = 0;
  uint64_t bytes = 0;
  j["prompts"] = json::array();
  for (const PromptResult &r : results) {
    json p = {{"prompt", r.prompt},
              {"token_count", r.tokenCount},
              {"first_fail", firstFailJson(r.firstFail)},
              {"runs", r.runsPerConfig},
              {"bytes_written", r.bytesWritten},
              {"test_failure", r.testFailure.empty() ? json(nullptr)
                                                     : json(r.testFailure)},
              {"confirmation", r.confirmation.empty() ? json(nullptr)
                                                      : json(r.confirmation)}};
    for (const StepLog &s : r.steps)
      p["steps"].push_back({{"id", s.id},
                            {"layers", s.layers},
                            {"stages", s.stages},
                            {"positions", s.positions},
                            {"payload", s.payload},
                            {"first_fail", firstFailJson(s.firstFail)}});
    p["diff"] = r.diffJson;
    j["prompts"].push_back(p);
    runs += r.runsPerConfig;
    bytes += r.bytesWritten;
  }
  j["first_fail"] = nullptr;
  for (const PromptResult &r : results)
    if (r.firstFail) {
      j["first_fail"] = firstFailJson(r.firstFail);
      break;
    }
  j["runs"] = runs;
  j["bytes_written"] = bytes;
  return j;
}

} // namespace greta::bisect

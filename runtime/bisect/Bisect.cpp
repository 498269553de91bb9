//===- Bisect.cpp - Coarse-to-fine search for FIRST_FAIL --------*- C++ -*-===//
#include "greta/bisect/Bisect.h"
#include "BisectInternal.h"
#include "InputDigests.h"
#include "greta/bisect/Process.h"
#include "RunEvidence.h"
#include "WorkDirState.h"

#include "greta/rt/Prompt.h"
#include "greta/rt/RunStarted.h"
#include "greta/rt/Stages.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <tuple>

namespace fs = std::filesystem;
using nlohmann::json;

namespace greta::bisect {

namespace {

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
  ff.token = f.value("token", "");
  return ff;
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

struct StepSpec {
  std::string id, layers, stages = "all", positions, payload = "hash";
  std::vector<std::string> testExtraFlags = {}; // e.g. --confirm's patch
  /// The routing sweep: BASE and TEST only, judged by routingSweepDiffFlags.
  bool routingSweep = false;
};

struct StepOutcome {
  std::optional<FirstFail> firstFail;
  std::string testFailure;
  uint64_t bytes = 0;
  json diff;
  std::string markdown;
  std::string redone; // the inputs that changed since the work dir's run
};

class Driver {
public:
  Driver(const Options &o, WorkDirState &state, const InputDigests &digests,
         std::vector<int64_t> routed)
      : o_(o), state_(state), digests_(digests), routed_(std::move(routed)) {}

  bool runPrompt(const std::string &name, const std::string &promptPath,
                 PromptResult &result, std::string &error);
  StopReason stopReason() const { return stop_; }
  /// Prompts still to bisect after the current one (for the estimate).
  void setPromptsAfter(int64_t n) { promptsAfter_ = n; }
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
                 std::string &error) {
    EnvVars env = {{"GRETA_TRACE_LAYERS", spec.layers},
                   {"GRETA_TRACE_STAGES", spec.stages},
                   {"GRETA_TRACE_POSITIONS", spec.positions},
                   {"GRETA_TRACE_PAYLOAD", spec.payload}};
    int timeout = &c == &o_.test ? o_.timeoutSeconds : 0;
    switch (runEngineCommand(c, prompt, promptPath, env, traceDir, stepDir,
                             timeout, error)) {
    case EngineRun::Ok:
      return true;
    case EngineRun::Interrupted:
      return interrupted("during the " + c.name + " engine run", error);
    case EngineRun::Failed:
      break;
    }
    return false;
  }
  bool step(const std::string &prompt, const std::string &promptPath,
            const StepSpec &spec, bool wantMarkdown, StepOutcome &out,
            std::string &error);
  /// The state's record of step `spec` of `prompt` if its inputs are the
  /// current ones, else nullptr with `changed` naming what changed ("" when
  /// the step never ran).
  const json *finished(const std::string &prompt, const StepSpec &spec,
                       std::string &changed) const {
    changed.clear();
    const json *done = state_.find(prompt + "/" + spec.id);
    if (!done)
      return nullptr;
    changed =
        changedInputs(done->value("inputs", json()), digests_.forStep(prompt));
    return changed.empty() ? done : nullptr;
  }
  void progress(const std::string &prompt, const StepSpec &spec, int64_t runs) {
    if (o_.quiet)
      return;
    std::string changed;
    bool cached = finished(prompt, spec, changed) != nullptr;
    std::cerr << "[greta-bisect] " << prompt << " step " << spec.id
              << " | layers " << spec.layers << " | stages " << spec.stages
              << " | positions " << spec.positions << " | payload "
              << spec.payload << " | runs so far " << runs << " per config"
              << (cached ? " (resumed from work dir)" : "")
              << (changed.empty() ? "" : " (redone: " + changed + ")") << "\n";
  }
  bool interrupted(const std::string &where, std::string &error) {
    stop_ = StopReason::Interrupted;
    error = interruptedMessage(where);
    return false;
  }
  /// A failed run that is not evidence: the bisection stops with its output.
  bool runError(const std::string &what, const std::vector<std::string> &argv,
                const std::string &log, const ProcessResult &r,
                std::string &error) const {
    error = what + ": " + commandLine(argv) + "\n--- last output (" + log +
            ") ---\n" + r.outputTail;
    return false;
  }

  /// Runs step(), timing it; `cached` says it was resumed from the work dir.
  bool timedStep(const std::string &prompt, const std::string &promptPath,
                 const StepSpec &spec, bool wantMarkdown, StepOutcome &out,
                 std::string &error, double &seconds, bool &cached);
  /// "step X done in T s; about N steps left (~S s)": `left` counts this
  /// prompt's remaining steps; the prompts after it are added as whole
  /// bisections, at the mean time of the steps run so far.
  void stepDone(const std::string &prompt, const std::string &id,
                double seconds, bool cached, int64_t left);
  /// Steps of a bisection of one prompt whose divergence is found between
  /// layers `good` and `bad` (binary search, scan, values, --confirm).
  int64_t stepsAfterCoarse(int64_t good, int64_t bad) const;

  const Options &o_;
  WorkDirState &state_;
  const InputDigests &digests_;
  std::vector<int64_t> routed_; // mixture-of-experts layers (routedLayers)
  int64_t executed_ = 0; // steps run (not resumed) by this process
  StopReason stop_ = StopReason::None;
  int64_t promptsAfter_ = 0;
  double executedSeconds_ = 0; // time of the steps run by this process
};

bool Driver::timedStep(const std::string &prompt, const std::string &promptPath,
                       const StepSpec &spec, bool wantMarkdown,
                       StepOutcome &out, std::string &error, double &seconds,
                       bool &cached) {
  std::string changed;
  cached = finished(prompt, spec, changed) != nullptr;
  auto start = std::chrono::steady_clock::now();
  bool ok = step(prompt, promptPath, spec, wantMarkdown, out, error);
  seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  if (!cached)
    executedSeconds_ += seconds;
  return ok;
}

int64_t Driver::stepsAfterCoarse(int64_t good, int64_t bad) const {
  int64_t search = 0;
  while ((int64_t(1) << search) < bad - good)
    ++search;
  return search + 2 + (o_.confirm ? 2 : 0); // + scan, values, confirm
}

void Driver::stepDone(const std::string &prompt, const std::string &id,
                      double seconds, bool cached, int64_t left) {
  if (o_.quiet)
    return;
  // A later prompt: coarse step, then a search over the widest gap between
  // coarse layers.
  std::vector<int64_t> coarse = coarseLayers(o_.numLayers);
  int64_t widest = coarse.front() + 1;
  for (size_t i = 1; i < coarse.size(); ++i)
    widest = std::max(widest, coarse[i] - coarse[i - 1]);
  left += promptsAfter_ * (1 + !routed_.empty() + stepsAfterCoarse(0, widest));
  char text[160];
  if (cached)
    snprintf(text, sizeof text, ": from the work dir");
  else
    snprintf(text, sizeof text, " done in %.1f s", seconds);
  std::cerr << "[greta-bisect] " << prompt << " step " << id << text;
  if (left == 0) {
    std::cerr << "; no steps left\n";
    return;
  }
  std::cerr << "; about " << left << (left == 1 ? " step" : " steps")
            << " left";
  if (executed_ > 0) {
    snprintf(text, sizeof text, " (~%.0f s)",
             executedSeconds_ / executed_ * left);
    std::cerr << text;
  }
  std::cerr << "\n";
}

bool Driver::step(const std::string &prompt, const std::string &promptPath,
                  const StepSpec &spec, bool wantMarkdown, StepOutcome &out,
                  std::string &error) {
  std::string key = prompt + "/" + spec.id;
  if (const json *done = finished(prompt, spec, out.redone)) {
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
  if (o_.ref && !spec.routingSweep)
    configs.push_back(&*o_.ref);
  for (const Config *c : configs) {
    fs::path traceDir = stepDir / c->name;
    if (!c->command.empty()) {
      if (!runEngine(*c, prompt, promptPath, spec, traceDir, stepDir, error))
        return false;
      continue;
    }
    std::vector<std::string> argv = {
        o_.gretaRun,   modelOf(o_, *c), "--weights",    o_.weights,
        "--prompt",    promptPath,      "--trace-dir",  traceDir.string(),
        "--overwrite", "--layers",      spec.layers,    "--stages",
        spec.stages,   "--positions",   spec.positions, "--payload",
        spec.payload};
    if (!o_.tokenizer.empty())
      argv.insert(argv.end(), {"--tokenizer", o_.tokenizer});
    argv.insert(argv.end(), c->flags.begin(), c->flags.end());
    bool isTest = c == &o_.test;
    if (isTest)
      argv.insert(argv.end(), spec.testExtraFlags.begin(),
                  spec.testExtraFlags.end());
    fs::path log = stepDir / (c->name + ".log");
    std::string marker = startedMarkerPath(stepDir.string(), c->name);
    if (!clearStartedMarker(marker, error))
      return false;
    double timeout = isTest ? o_.timeoutSeconds : 0;
    ProcessResult r =
        runProcess(argv, log.string(), timeout, "",
                   {{rt::kStartedFileEnv, marker}});
    if (r.interrupted) // nothing is recorded: the same command redoes it
      return interrupted("during step " + spec.id + " of " + prompt, error);
    RunVerdict verdict = classifyRun(r, startedMarkerExists(marker), timeout);
    if (verdict.kind == RunClass::Finished)
      continue;
    if (verdict.kind == RunClass::NeverStarted)
      return runError("the " + c->name + " run did not start (" + verdict.how +
                          "): nothing was compared",
                      argv, log.string(), r, error);
    if (!isTest)
      return runError("the " + c->name + " run " + verdict.how +
                          " after its forward began",
                      argv, log.string(), r, error);
    // A test run that began and then crashed or hung is evidence: compare
    // what it wrote.
    out.testFailure = "the test run " + verdict.how +
                      " after its forward began (log: " + log.string() + ")";
  }

  std::vector<std::string> diffArgv = {o_.gretaDiff, (stepDir / "base").string(),
                                       (stepDir / "test").string()};
  std::string policy = diffPolicy(o_);
  if (spec.routingSweep) {
    std::vector<std::string> flags = routingSweepDiffFlags();
    diffArgv.insert(diffArgv.end(), flags.begin(), flags.end());
  } else if (policy == "reference") {
    diffArgv.insert(diffArgv.end(),
                    {"--ref", (stepDir / "ref").string(), "--policy", "reference"});
  } else {
    diffArgv.insert(diffArgv.end(), {"--policy", policy});
  }
  std::vector<std::string> jsonArgv = diffArgv;
  jsonArgv.insert(jsonArgv.end(), {"--format", "json"});
  fs::path jsonPath = stepDir / "diff.json";
  ProcessResult d = runProcess(jsonArgv, (stepDir / "diff.log").string(), 0,
                               jsonPath.string());
  // The trace of a test run that crashed stops early: greta-diff compares
  // its records and, without a divergence there, gives no verdict (exit 2,
  // verdict "undecided" in its JSON). That is still a comparison.
  bool compared = d.exitCode == 0 || d.exitCode == 1;
  if (d.exitCode == 2 && !out.testFailure.empty() && !d.signaled) {
    std::ifstream in(jsonPath);
    json j = json::parse(in, nullptr, false);
    compared = j.is_object() && j.value("verdict", "") == "undecided";
  }
  if (!compared) {
    std::ifstream errLog(stepDir / "diff.log");
    std::stringstream ss;
    ss << errLog.rdbuf();
    if (!out.testFailure.empty()) {
      // The test run died before writing a readable trace: nothing to compare.
      out.diff = {{"first_fail", nullptr}, {"error", ss.str()}};
      out.testFailure += ". It left no trace greta-diff can read: nothing was "
                         "compared";
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
    if (!out.testFailure.empty())
      out.testFailure += ". The records it wrote before that were compared";
  }
  if (wantMarkdown) {
    std::vector<std::string> mdArgv = diffArgv;
    mdArgv.insert(mdArgv.end(), {"--format", "markdown"});
    fs::path mdPath = stepDir / "diff.md";
    ProcessResult m = runProcess(mdArgv, (stepDir / "diff-md.log").string(), 0,
                                 mdPath.string());
    if (m.exitCode == 0 || m.exitCode == 1 ||
        (m.exitCode == 2 && d.exitCode == 2 && compared)) {
      std::ifstream in(mdPath);
      std::stringstream ss;
      ss << in.rdbuf();
      out.markdown = ss.str();
    }
  }
  if (interruptSignal())
    return interrupted("during step " + spec.id + " of " + prompt, error);
  out.bytes = dirBytes(stepDir);
  json record = {{"diff", out.diff},
                 {"bytes", out.bytes},
                 {"test_failure", out.testFailure},
                 {"markdown", out.markdown},
                 {"inputs", digests_.forStep(prompt)}};
  return state_.store(key, std::move(record), error);
}

bool Driver::runPrompt(const std::string &name, const std::string &promptPath,
                       PromptResult &result, std::string &error) {
  result.prompt = name;
  std::string promptError;
  auto prompt =
      rt::loadPrompt({promptPath, std::nullopt, o_.tokenizer}, promptError);
  if (!prompt) {
    error = promptError;
    return false;
  }
  int64_t n = static_cast<int64_t>(prompt->ids.size());
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
  // Digests suffice to compare bit for bit; the other policies judge values.
  std::string payload = diffPolicy(o_) == "exact" ? "hash" : "full";
  // Runs through the KV cache in several calls also trace its rows, where
  // only greta-run (which records them) runs every side.
  std::string all = tracesKVCache(o_) ? "all,k_cache,v_cache" : "all";
  int64_t runs = 0;
  double lastSeconds = 0; // of the step doStep ran last
  bool lastCached = false;
  auto done = [&](const std::string &id, int64_t left) {
    stepDone(name, id, lastSeconds, lastCached, left);
  };
  auto doStep = [&](StepSpec spec, bool markdown, StepOutcome &out) {
    spec.payload = spec.payload.empty() ? payload : spec.payload;
    std::string changed;
    bool cached = finished(name, spec, changed) != nullptr;
    if (!cached && o_.maxSteps > 0 && executed_ >= o_.maxSteps) {
      stop_ = StopReason::MaxSteps;
      error = "stopped after " + std::to_string(executed_) +
              " steps (--max-steps); run the same command again to resume "
              "from " + o_.workDir;
      return false;
    }
    executed_ += cached ? 0 : 1;
    progress(name, spec, runs);
    if (!timedStep(name, promptPath, spec, markdown, out, error, lastSeconds,
                   lastCached))
      return false;
    ++runs;
    result.bytesWritten += out.bytes;
    std::string note = out.testFailure;
    if (!out.redone.empty())
      note += (note.empty() ? "" : "; ") + std::string("redone: ") + out.redone;
    StepLog log{spec.id,      spec.layers,   spec.stages, spec.positions,
                spec.payload, out.firstFail, note};
    result.steps.push_back(log);
    if (!out.testFailure.empty())
      result.testFailure = out.testFailure;
    return true;
  };

  // 0. Generating runs: the logits of every position, prompt and decode
  // steps, in one run per side. Their first divergence is the first step
  // whose logits differ: the search below looks there (and before it).
  // Every run decodes every step, so this one run replaces a binary search
  // over the steps (ceil(log2 steps) runs, at least 1 from 2 steps on); one
  // generated token has no decode step: its logits are at the checkpoint
  // `last`.
  if (generatedTokens(o_) > 1) {
    StepOutcome gen;
    if (!doStep({"0-logits", std::to_string(o_.numLayers - 1), "logits", "all",
                 payload},
                false, gen))
      return false;
    if (gen.diff.contains("generation") && !gen.diff["generation"].is_null())
      result.generation = gen.diff["generation"].value("text", "");
    if (gen.firstFail)
      positions = std::to_string(gen.firstFail->position);
    done("0-logits", 1);
  }
  // 0. Mixture-of-experts models: every token's experts in every routed
  // layer, one run of BASE and TEST (RoutingSweep.cpp). Other experts are a
  // divergence under every policy, wherever the checkpoints are: the first
  // flip (layer L, position p) joins the checkpoints, and the search below
  // looks at L and the layers before it, so what it names is the flip or
  // a divergence that came before it.
  std::optional<FirstFail> flip;
  if (!routed_.empty()) {
    StepSpec sweep{"0-routing", joinInts(routed_),
                   "router_logits,expert_selection", "all", "full"};
    sweep.routingSweep = true;
    StepOutcome s;
    if (!doStep(sweep, false, s))
      return false;
    flip = s.firstFail;
    if (flip)
      positions = withPosition(positions, flip->position);
    done("0-routing", 1);
  }
  // 1. Coarse layers, every stage, the checkpoint positions.
  std::vector<int64_t> coarse = coarseLayers(o_.numLayers);
  if (flip)
    coarse = layersThrough(coarse, flip->layer);
  StepOutcome out;
  if (!doStep({"1-coarse", joinInts(coarse), all, positions, payload}, true,
              out))
    return false;
  if (!out.firstFail && flip) {
    error = "the routing flip the sweep saw at layer " +
            std::to_string(flip->layer) + " position " +
            std::to_string(flip->position) +
            " vanished in the coarse step: the runs are not deterministic "
            "(see " +
            o_.workDir + ")";
    return false;
  }
  // 1b. No divergence at the checkpoints is not yet none: a fault confined
  // to other positions of the last layer, or outside a sliding window's
  // reach, never shows there. The model's outputs at every position (the
  // last layer's residual, and the logits where digests suffice: their
  // values at every position of a long prompt would be gigabytes) back the
  // verdict, or name the position the coarse step looks at again. Skipped
  // where the user chose --positions, and for generating runs, whose step
  // 0 compared every position's logits already.
  if (!out.firstFail && o_.positions.empty() && generatedTokens(o_) <= 1) {
    done("1-coarse", 1);
    StepOutcome every;
    std::string outputs =
        payload == "hash" ? "residual_post_mlp,logits" : "residual_post_mlp";
    if (!doStep({"1-outputs", std::to_string(o_.numLayers - 1), outputs,
                 "all", payload},
                false, every))
      return false;
    if (every.firstFail) {
      positions = withPosition(positions, every.firstFail->position);
      done("1-outputs", 1 + stepsAfterCoarse(-1, coarse.back()));
      if (!doStep({"1-coarse-again", joinInts(coarse), all, positions,
                   payload},
                  true, out))
        return false;
      if (!out.firstFail) {
        error = "the outputs diverged at position " +
                std::to_string(every.firstFail->position) +
                " but the coarse step saw no divergence there: the runs are "
                "not deterministic (see " + o_.workDir + ")";
        return false;
      }
    }
  }
  result.runsPerConfig = runs;
  if (!out.firstFail) {
    done(result.steps.back().id, 0);
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
  done(result.steps.back().id, stepsAfterCoarse(good, bad));
  int stepNo = 2;
  while (bad - good > 1) {
    int64_t mid = good + (bad - good) / 2;
    StepOutcome o;
    if (!doStep({std::to_string(stepNo++) + "-layer" + std::to_string(mid),
                 std::to_string(mid), all, positions, payload},
                false, o))
      return false;
    if (o.firstFail)
      bad = mid;
    else
      good = mid;
    done(result.steps.back().id, stepsAfterCoarse(good, bad));
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
    if (!doStep(
            {std::to_string(stepNo++) + "-scan-layer" + std::to_string(layer),
             std::to_string(layer), all, "all", payload},
            false, o))
      return false;
    int64_t tail = 1 + (o_.confirm ? 2 : 0); // values, confirm
    if (!o.firstFail) {
      done(result.steps.back().id, tail);
      if (found)
        break; // the layer below is clean: the input of `layer + 1` diverged
      error = "the divergence seen at layer " + std::to_string(layer) +
              " vanished when every position was traced: the runs are not "
              "deterministic (see " + o_.workDir + ")";
      return false;
    }
    found = o.firstFail;
    bool final = found->stage != "residual_pre_attn" || layer == 0;
    done(result.steps.back().id, final ? tail : 1 + tail);
    if (final)
      break;
    --layer;
  }
  // 4. Values for the FIRST_FAIL record and the checkpoints after it: MAE.
  // Positions before it show where agreement ends (the first row and the
  // one just before FIRST_FAIL); the checkpoints after it show the spread.
  std::set<int64_t> finalPositions = {0, found->position};
  if (found->position > 0)
    finalPositions.insert(found->position - 1);
  // The checkpoints are a runtime filter's positions (826,700-826,last or
  // all): a range contributes its ends, all and last the last token.
  std::stringstream ps(positions);
  for (std::string item; std::getline(ps, item, ',');) {
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    std::vector<int64_t> ends;
    if (item == "all" || item == "last") {
      ends.push_back(result.tokenCount - 1);
    } else {
      std::stringstream rs(item);
      for (std::string end; std::getline(rs, end, '-');) {
        char *stop = nullptr;
        long long v = std::strtoll(end.c_str(), &stop, 10);
        if (!end.empty() && stop && *stop == '\0')
          ends.push_back(v);
      }
    }
    for (int64_t v : ends)
      if (v > found->position && v < result.tokenCount)
        finalPositions.insert(v);
  }
  StepOutcome last;
  // A routing flip is explained by the router scores of both runs
  // (docs/DIFF.md, "Routing"): their values come along.
  std::string valueStages = found->stage == "expert_selection"
                                ? "router_logits,expert_selection"
                                : found->stage;
  if (!doStep({std::to_string(stepNo++) + "-values",
               std::to_string(found->layer), valueStages,
               joinInts({finalPositions.begin(), finalPositions.end()}),
               "full"},
              true, last))
    return false;
  done(result.steps.back().id, o_.confirm ? 2 : 0);
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
  double seconds = 0;
  bool cached = false;
  progress(name, source, result.runsPerConfig);
  if (!timedStep(name, promptPath, source, false, s, error, seconds, cached))
    return false;
  executed_ += cached ? 0 : 1;
  stepDone(name, source.id, seconds, cached, 1);
  result.bytesWritten += s.bytes;
  // ...patched into the test run; then everything after it is compared.
  fs::path patch = fs::path(o_.workDir) / name / source.id / "base";
  StepSpec check{std::to_string(stepNo++) + "-confirm",
                 std::to_string(o_.numLayers - 1), "all", positions, payload};
  check.testExtraFlags = {"--patch-from", patch.string(), "--patch",
                          ff.stage + ":" + std::to_string(ff.layer)};
  StepOutcome c;
  progress(name, check, result.runsPerConfig);
  if (!timedStep(name, promptPath, check, false, c, error, seconds, cached))
    return false;
  executed_ += cached ? 0 : 1;
  stepDone(name, check.id, seconds, cached, 0);
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
  progress(name, spec, result.runsPerConfig);
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

bool runBisection(const Options &options, std::vector<PromptResult> &results,
                  std::string &error, StopReason &stop) {
  stop = StopReason::None;
  InputDigests digests;
  if (!digests.compute(options, error))
    return false;
  json inputs = {
      {"model", options.model},
      {"test_model", options.test.model},
      {"ref_model", options.ref ? json(options.ref->model) : json(nullptr)},
      {"weights", options.weights},
      {"base", options.base.flagsText},
      {"test", options.test.flagsText},
      {"ref", options.ref ? json(options.ref->flagsText) : json(nullptr)},
      {"positions", options.positions}};
  if (!options.policy.empty())
    inputs["policy"] = options.policy;
  for (const auto &[name, path] : options.prompts)
    inputs["prompts"].push_back({name, path});
  if (!options.tokenizer.empty())
    inputs["tokenizer"] = options.tokenizer;
  if (!options.promptText.empty())
    inputs["prompt_text"] = options.promptText;
  std::error_code ec;
  fs::create_directories(options.workDir, ec);
  if (ec) {
    error = "cannot create work dir " + options.workDir + ": " + ec.message();
    return false;
  }
  WorkDirState state(fs::path(options.workDir) / "state.json", inputs);
  if (!state.load(error))
    return false;
  std::vector<int64_t> routed;
  if (!options.model.empty() && !routedLayers(options.model, routed, error))
    return false;
  Driver driver(options, state, digests, std::move(routed));
  int64_t promptsLeft = static_cast<int64_t>(options.prompts.size());
  for (const auto &[name, path] : options.prompts) {
    driver.setPromptsAfter(--promptsLeft);
    PromptResult r;
    if (!driver.runPrompt(name, path, r, error)) {
      stop = driver.stopReason();
      return false;
    }
    results.push_back(std::move(r));
  }
  return true;
}

} // namespace greta::bisect

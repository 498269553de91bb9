//===- Bisect.h - Coarse-to-fine search for FIRST_FAIL ----------*- C++ -*-===//
//
// The driver runs the base and test configurations (and a reference, if
// given) through greta-run with a runtime filter, compares them with
// greta-diff, and narrows down where the divergence starts: coarse layers,
// binary search between the last agreeing and the first diverging layer,
// every stage and position of that layer, then one run with values for the
// FIRST_FAIL record. Each configuration is compiled once (greta-run's cache);
// every step only changes the filter. On a mixture-of-experts model a sweep
// of every token's expert selection comes first (RoutingSweep.cpp): a flip
// is a divergence under every policy, and the search looks there.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_BISECT_BISECT_H
#define GRETA_BISECT_BISECT_H

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace greta::bisect {

struct Config {
  std::string name;               // base | test | ref
  std::string flagsText;          // as given on the command line
  std::vector<std::string> flags; // greta-run flags
  std::string model;              // its own IR (--test-model); "": --model
  /// An outside engine (--base-cmd/--test-cmd/--ref-cmd, docs/ENGINES.md):
  /// its argv with {prompt}, {prompt_name} and {trace_dir} placeholders,
  /// run instead of greta-run with the step's filter in GRETA_TRACE_*.
  std::vector<std::string> command;
};

/// The argv of an outside engine's run: `command` with its placeholders
/// replaced (anywhere inside an argument).
std::vector<std::string> expandCommand(const std::vector<std::string> &command,
                                       const std::string &promptPath,
                                       const std::string &promptName,
                                       const std::string &traceDir);
/// Checks an engine command: it names {prompt} and {trace_dir}, and no other
/// placeholder than those and {prompt_name}. False and `error` otherwise.
bool checkCommand(const std::vector<std::string> &command, std::string &error);

struct Options {
  std::string model, weights;
  std::vector<std::pair<std::string, std::string>> prompts; // (name, path)
  std::string tokenizer;  // --tokenizer: text prompts; token text in reports
  std::string promptText; // --prompt-text (also written to the work dir)
  Config base, test;
  std::optional<Config> ref;
  /// Why greta-bisect added the reference itself ("" when --ref was given
  /// or none is needed): the sides differ in precision or backend.
  std::string autoRefReason;
  std::string workDir;
  std::string gretaRun, gretaDiff;
  std::string positions;   // user override of the checkpoint positions
  int64_t numLayers = 0;
  double timeoutSeconds = 0; // per test run; 0: none
  int64_t maxSteps = 0;      // stop after this many new steps; 0: no limit
  bool quiet = false;
  bool confirm = false; // patch the base's FIRST_FAIL tensor into the test run
  /// --policy as given: "exact", "tolerance", "reference", or "" (exact,
  /// or reference when there is a reference). diffPolicy() resolves it.
  std::string policy;
  /// --format html: after the search, one more run per configuration traces
  /// values at every layer and stage (reportPositions) for the page's charts.
  bool reportValues = false;
};

/// The FIRST_FAIL record as greta-diff reports it.
struct FirstFail {
  std::string stage, category;
  int64_t layer = 0, position = 0;
  bool hashMatch = false;
  std::optional<double> mae;
  std::string token; // the prompt's token there, quoted; "" if unknown
};

struct StepLog {
  std::string id, layers, stages, positions, payload;
  std::optional<FirstFail> firstFail;
  std::string note;
};

struct PromptResult {
  std::string prompt;
  int64_t tokenCount = 0;
  std::optional<FirstFail> firstFail;
  std::string testFailure; // the test run crashed or hung: what and where
  std::vector<StepLog> steps;
  int64_t runsPerConfig = 0;
  uint64_t bytesWritten = 0;
  /// --confirm: "confirmed" when patching the base's FIRST_FAIL tensor into
  /// the test run removes every divergence downstream, else why not.
  std::string confirmation;
  /// Generating runs (--generate) that chose different tokens: greta-diff's
  /// "generation diverges at step s (position p): token A vs token B".
  std::string generation;
  std::string diffMarkdown; // greta-diff's report of the final step
  nlohmann::json diffJson;
  /// The step directory whose base/test(/ref) traces the HTML page draws:
  /// the report step's, or the coarse step's when nothing diverged.
  std::string reportDir;
};

/// Why a bisection ended before its report.
enum class StopReason {
  None,       // it did not stop early (an error, if it failed)
  MaxSteps,   // --max-steps reached
  Interrupted // SIGINT/SIGTERM/SIGHUP: the step under way is not recorded
};

/// Runs every configuration once per prompt with greta-run --dry-run: bad
/// flags, a pipeline that does not parse or plants nothing, a prompt or
/// weights that do not fit the model, fail here, before any run. Returns
/// false with `error` holding the run's output.
bool checkConfigs(const Options &options, std::string &error);

/// Runs the whole bisection for every prompt. Returns false with `error` set
/// when a run that is not evidence fails (RunEvidence.h) or greta-diff
/// fails, or with `stop` set when --max-steps or an interrupt ended it early
/// (the work dir resumes it).
bool runBisection(const Options &options, std::vector<PromptResult> &results,
                  std::string &error, StopReason &stop);

/// The report's sentence about a test run that failed after it started
/// (PromptResult::testFailure): how it failed and what was compared.
std::string testFailureSentence(const std::string &testFailure);

std::string renderMarkdown(const Options &options,
                           const std::vector<PromptResult> &results);
nlohmann::json renderJson(const Options &options,
                          const std::vector<PromptResult> &results);
/// One self-contained page (BisectHtml.cpp): the FIRST_FAIL table, each
/// prompt's steps as a timeline, and greta-diff's HTML sections over the
/// traces of PromptResult::reportDir, compared in-process.
std::string renderHtml(const Options &options,
                       const std::vector<PromptResult> &results);

/// Where the HTML report's extra step traces values in a prompt of `tokens`
/// tokens: the checkpoints, FIRST_FAIL and its neighbours, and 64 positions
/// spread evenly, so its cost stays bounded on long prompts.
std::string reportPositions(int64_t tokens, int64_t firstFailPosition,
                            const std::string &checkpoints);

/// The IR a configuration runs: its own (--test-model, --ref-model) or
/// --model.
const std::string &modelOf(const Options &o, const Config &c);

/// When BASE and TEST differ in precision or backend (greta-run's
/// --precision, --backend, --so) digests always differ and the exact policy
/// would flag every row: returns the difference ("precision f32 vs f16"),
/// or "" when they agree on both.
std::string precisionOrBackendDifference(const Config &base,
                                         const Config &test);

/// The policy greta-diff judges the steps with: Options::policy, else
/// "reference" with a reference and "exact" without.
std::string diffPolicy(const Options &o);

/// The f64 CPU reference greta-bisect runs itself: BASE's flags without
/// precision, backend and device flags, plus --precision=f64.
Config autoReference(const Config &base);

/// Coarse layers of the seed: 0, 1, 2, 4, 8 and the last, within the model.
std::vector<int64_t> coarseLayers(int64_t numLayers);

/// The mixture-of-experts layers of `model` (RoutingSweep.cpp): those whose
/// router greta IR tags expert_selection, or for an HF checkpoint directory
/// those its config.json routes, as GRETA's importer reads it; empty for a
/// dense model. False and `error` when the model cannot be read.
bool routedLayers(const std::string &model, std::vector<int64_t> &layers,
                  std::string &error);
/// greta-diff's flags for the routing sweep: a change of expert ids (or of
/// non-finite values) is the only divergence.
std::vector<std::string> routingSweepDiffFlags();
/// A runtime filter's positions with `position` added (unchanged when it
/// already names it or "all").
std::string withPosition(const std::string &positions, int64_t position);
/// The layers of `layers` below `last`, and `last`.
std::vector<int64_t> layersThrough(const std::vector<int64_t> &layers,
                                   int64_t last);

} // namespace greta::bisect

#endif

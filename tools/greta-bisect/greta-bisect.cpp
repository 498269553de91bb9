//===- greta-bisect.cpp - Find FIRST_FAIL with as few runs as possible -*- C++ -*-===//
//
// Drives greta-run and greta-diff: coarse layers first, then a binary search,
// then every stage and position of the first diverging layer, then values
// for the FIRST_FAIL record; on a mixture-of-experts model a sweep of every
// token's experts first. Needs no LLVM: it runs on a GPU host too.
//
//===----------------------------------------------------------------------===//
#include "greta/bisect/Bisect.h"
#include "greta/bisect/Process.h"
#include "greta/tools/CLI.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace greta::bisect;

namespace {
/// Flags greta-bisect sets itself at every step: a RUN FLAGS string may not.
const char *const kReservedFlags[] = {
    "--trace-dir", "--layers",  "--stages",    "--positions", "--payload",
    "--prompt",    "--weights", "--overwrite", "--tokenizer", "--prompt-text"};

bool parseConfig(const std::string &name, const std::string &text, Config &c,
                 std::string &error) {
  c.name = name;
  c.flagsText = text;
  std::string splitError;
  if (!splitFlags(text, c.flags, splitError)) {
    error = "--" + name + " \"" + text + "\": " + splitError;
    return false;
  }
  for (size_t i = 0; i < c.flags.size(); ++i) {
    const std::string &f = c.flags[i];
    // A value may follow its flag as a word of its own (--precision f16),
    // as greta-run reads it.
    bool isValue = i > 0 && c.flags[i - 1].rfind("-", 0) == 0 &&
                   c.flags[i - 1].find('=') == std::string::npos;
    if (isValue)
      continue;
    if (f.rfind("-", 0) != 0) {
      error = "--" + name + " \"" + text + "\": '" + f +
              "' is not a greta-run flag (RUN FLAGS are greta-run options "
              "such as --precision=f16; the model, weights and prompt are "
              "greta-bisect's own options; a value with spaces must be "
              "quoted inside RUN FLAGS: \"--pass-pipeline='a{x=1 y=2}'\")";
      return false;
    }
    std::string key = f.substr(0, f.find('='));
    for (const char *r : kReservedFlags)
      if (key == r) {
        error = "--" + name + " \"" + text + "\": " + key +
                " is set by greta-bisect at every step and cannot be given "
                "in RUN FLAGS";
        return false;
      }
  }
  return true;
}

/// Where --prompts names are looked up: --prompts-dir alone when given;
/// else models/prompts beside the model's directory (models/M/model.mlir),
/// of the current directory (a GRETA checkout), and of the source tree this
/// greta-bisect was built from: the prompts GRETA ships.
std::vector<fs::path> promptDirs(const std::string &promptsDir,
                                 const std::string &model) {
  if (!promptsDir.empty())
    return {promptsDir};
  std::vector<fs::path> dirs = {fs::path(model).parent_path().parent_path() /
                                    "prompts",
                                fs::path("models") / "prompts"};
#ifdef GRETA_SOURCE_DIR
  dirs.push_back(fs::path(GRETA_SOURCE_DIR) / "models" / "prompts");
#endif
  std::vector<fs::path> unique;
  for (const fs::path &d : dirs) {
    std::error_code ec;
    fs::path canonical = fs::weakly_canonical(d, ec);
    bool seen = false;
    for (const fs::path &u : unique)
      seen |= fs::weakly_canonical(u, ec) == canonical;
    if (!seen)
      unique.push_back(d);
  }
  return unique;
}

/// NAME.json in the first of `dirs` that has it, else "".
std::string findPrompt(const std::string &name,
                       const std::vector<fs::path> &dirs) {
  // A name with its extension is taken as is; a bare name is NAME.json,
  // else NAME.txt, else NAME.md (a text prompt), in the first directory
  // that has one.
  std::string ext = fs::path(name).extension().string();
  bool hasExt = ext == ".json" || ext == ".txt" || ext == ".md";
  for (const fs::path &d : dirs) {
    if (hasExt) {
      if (fs::exists(d / name))
        return (d / name).string();
      continue;
    }
    for (const char *e : {".json", ".txt", ".md"})
      if (fs::exists(d / (name + e)))
        return (d / (name + e)).string();
  }
  return "";
}

std::string selfDir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

/// The layer count from the model's `greta.num_layers` module attribute.
/// For an HF checkpoint directory: num_hidden_layers of its config.json.
bool readNumLayers(const std::string &model, int64_t &n, std::string &error) {
  bool checkpoint = fs::is_directory(model);
  std::string file = checkpoint ? model + "/config.json" : model;
  std::ifstream in(file);
  if (!in) {
    error = "cannot read model " + file;
    return false;
  }
  std::string line;
  std::regex re(checkpoint ? "\"num_hidden_layers\"\\s*:\\s*([0-9]+)"
                           : "greta\\.num_layers\\s*=\\s*([0-9]+)");
  int lineNo = 0;
  while (std::getline(in, line) && ++lineNo < 200) {
    std::smatch m;
    if (std::regex_search(line, m, re)) {
      n = std::stoll(m[1]);
      return true;
    }
  }
  error = file + (checkpoint ? ": no 'num_hidden_layers' in its first 200 "
                               "lines (give --num-layers)"
                             : ": no 'greta.num_layers' module attribute in "
                               "its first 200 lines (give --num-layers)");
  return false;
}
} // namespace

int main(int argc, char **argv) {
  CLI::App app{
      "greta-bisect: find the first divergent tensor (FIRST_FAIL) between a "
      "base and a test configuration of the same model.\n"
      "Runs greta-run with a runtime filter (each configuration is compiled "
      "once), compares with greta-diff: coarse layers (0, 1, 2, "
      "4, 8, last) first, then a binary search between the last agreeing and "
      "the first diverging layer, then every stage and position of that "
      "layer, then values (MAE) for the FIRST_FAIL record. Before it says "
      "no divergence it compares the outputs (the last layer's residual and "
      "the logits) at every position. On a "
      "mixture-of-experts model every token's expert selection is compared "
      "first (one run of base and test): a routing flip is a divergence "
      "under every policy, and the search looks there.\n"
      "Exit codes: 0 no divergence, 1 divergence found, 2 error, 3 stopped "
      "by --max-steps (resumable), 130 interrupted (Ctrl-C, SIGTERM; "
      "resumable)."};
  Options o;
  std::string prompt, promptList, promptsDir, base, test, ref, format = "markdown";
  std::string outPath, testModel, refModel;
  bool restart = false, listRouted = false;
  app.add_option("--model", o.model,
                 "greta IR of the model (model.mlir), or an HF checkpoint "
                 "directory; the base runs it, and the test and reference "
                 "unless they have their own; needed unless every "
                 "configuration is an engine command");
  app.add_option("--test-model", testModel,
                 "greta IR the test configuration runs instead of --model "
                 "(an edited graph, a pass pipeline's output): two graphs of "
                 "one config (same layers, stages and shapes) compare "
                 "directly");
  app.add_option("--ref-model", refModel,
                 "greta IR the reference runs instead of --model (needs "
                 "--ref)");
  app.add_option("--weights", o.weights,
                 "safetensors weights (default for a checkpoint directory: "
                 "its own)");
  std::string &promptText = o.promptText;
  app.add_option("--prompt", prompt,
                 "prompt file: token ids (JSON array or one per line), text "
                 "(.txt, .md) or {\"text\": ...} (.json); text needs "
                 "--tokenizer");
  app.add_option("--prompt-text", promptText,
                 "the prompt as text (kept as prompt-text.txt in --work-dir); "
                 "needs --tokenizer");
  app.add_option("--prompts", promptList,
                 "comma-separated prompt names resolved in --prompts-dir "
                 "(e.g. p0_short,p6_len_16,p6_len_32: the full study)");
  app.add_option("--prompts-dir", promptsDir,
                 "where --prompts names are looked up (NAME.json, else "
                 "NAME.txt, else NAME.md; a name with its extension is taken "
                 "as is); default: models/prompts beside the model's "
                 "directory, in the current directory, then in GRETA's "
                 "source tree");
  app.add_option("--tokenizer", o.tokenizer,
                 "tokenizer.json, tokenizer.model or the checkpoint directory: "
                 "tokenizes text prompts, names the FIRST_FAIL token; passed "
                 "to every greta-run");
  app.add_option(
      "--base", base,
      "greta-run flags of the good configuration, e.g. \"--precision=f32\"");
  app.add_option("--test", test,
                 "greta-run flags of the configuration under test");
  app.add_option("--ref", ref,
                 "greta-run flags of a reference (e.g. \"--precision=f64\"): "
                 "verdicts then use greta-diff's reference policy. Without it, "
                 "when base and test differ in --precision or --backend, "
                 "greta-bisect adds the f64 CPU reference itself (base's "
                 "flags with --precision=f64); with --so on a side it "
                 "refuses and asks for --ref");
  app.add_option("--policy", o.policy,
                 "how greta-diff judges each step: exact (digests), "
                 "tolerance (greta-diff's per-precision tolerances, no "
                 "reference) or reference (needs a reference: --ref, or the "
                 "one added when precisions differ); default: reference "
                 "with a reference, else exact. On a mixture-of-experts "
                 "model other experts are a divergence under every policy")
      ->check(CLI::IsMember({"exact", "tolerance", "reference"}));
  app.add_option("--work-dir", o.workDir,
                 "where traces, logs and the resumable state live (default: "
                 "greta-bisect.work)");
  app.add_option("--positions", o.positions,
                 "checkpoint positions (default: 826 and 1652 where the prompt "
                 "reaches them, and the last token)");
  app.add_option("--num-layers", o.numLayers,
                 "layer count (default: the model's greta.num_layers)");
  app.add_option("--timeout", o.timeoutSeconds,
                 "seconds after which a test run counts as hung (its records "
                 "so far are compared); default: none");
  app.add_option("--format", format,
                 "report format: markdown | json | html (one self-contained "
                 "page; one more run per configuration traces values at "
                 "every layer for its charts)")
      ->check(CLI::IsMember({"markdown", "table", "json", "html"}));
  app.add_option("-o,--output", outPath, "write the report here instead of stdout");
  app.add_option("--max-steps", o.maxSteps,
                 "run at most this many new steps, then stop with exit code 3; "
                 "the same command resumes from --work-dir");
  app.add_flag("--confirm", o.confirm,
               "causal confirmation: re-run the test configuration with the "
               "base's FIRST_FAIL tensor patched in (greta-run --patch-from) "
               "and report whether the divergence downstream disappears");
  // Outside engines (docs/ENGINES.md): a command instead of greta-run flags.
  std::string baseCmd, testCmd, refCmd;
  const char *cmdHelp = " run by an outside engine instead of greta-run: "
                        "'python my_engine.py --prompt {prompt} --trace-dir "
                        "{trace_dir}' (no shell; {prompt_name} too); the "
                        "step's filter is in GRETA_TRACE_LAYERS, _STAGES, "
                        "_POSITIONS, _PAYLOAD; a run that fails or leaves no "
                        "complete trace is an error (docs/ENGINES.md)";
  app.add_option("--base-cmd", baseCmd, std::string("the base,") + cmdHelp)
      ->excludes("--base");
  app.add_option("--test-cmd", testCmd, std::string("the test,") + cmdHelp)
      ->excludes("--test");
  app.add_option("--ref-cmd", refCmd, std::string("the reference,") + cmdHelp)
      ->excludes("--ref");
  app.add_flag("--list-routed-layers", listRouted,
               "print the layers --model's routing sweep traces (its routed "
               "layers; none for a dense model) and exit");
  app.add_flag("--restart", restart, "discard the state of an earlier bisection in --work-dir");
  app.add_flag("-q,--quiet", o.quiet, "no progress lines on stderr");
  app.add_option("--greta-run", o.gretaRun, "greta-run executable (default: next to greta-bisect)");
  app.add_option("--greta-diff", o.gretaDiff, "greta-diff executable (default: next to greta-bisect)");
  greta::addVersionFlag(app, "greta-bisect");
  try {
    greta::parseArgs(app, argc, argv);
  } catch (const CLI::ParseError &e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  auto fail = [](const std::string &msg) {
    std::cerr << "greta-bisect: error: " << msg << "\n";
    return 2;
  };
  std::string error;
  if (listRouted) {
    if (o.model.empty())
      return fail("--list-routed-layers needs --model");
    std::vector<int64_t> layers;
    if (!greta::bisect::routedLayers(o.model, layers, error))
      return fail(error);
    std::cout << "routed layers:";
    for (int64_t l : layers)
      std::cout << " " << l;
    std::cout << (layers.empty() ? " none\n" : "\n");
    return 0;
  }
  bool ranByGreta = false; // a configuration runs greta-run
  auto config = [&](const char *name, const std::string &flags,
                    const std::string &cmd, Config &c) {
    if (cmd.empty()) {
      ranByGreta = true;
      return parseConfig(name, flags, c, error);
    }
    c.name = name;
    c.flagsText = cmd;
    std::string why;
    if (!splitFlags(cmd, c.command, why) || !checkCommand(c.command, why))
      return error = std::string("--") + name + "-cmd \"" + cmd + "\": " + why,
             false;
    return true;
  };
  if (!app.count("--base") && baseCmd.empty())
    return fail("give --base FLAGS or --base-cmd COMMAND");
  if (!app.count("--test") && testCmd.empty())
    return fail("give --test FLAGS or --test-cmd COMMAND");
  if (!config("base", base, baseCmd, o.base) ||
      !config("test", test, testCmd, o.test))
    return fail(error);
  o.test.model = testModel;
  bool noReference = o.policy == "exact" || o.policy == "tolerance";
  if (noReference && (!ref.empty() || !refCmd.empty()))
    return fail("--ref is only used by --policy reference (got --policy " +
                o.policy + ")");
  if (!ref.empty() || !refCmd.empty()) {
    Config r;
    if (!config("ref", ref, refCmd, r))
      return fail(error);
    r.model = refModel;
    o.ref = r;
  } else if (!refModel.empty()) {
    return fail("--ref-model needs --ref (the reference's greta-run flags, "
                "e.g. --ref \"--precision=f64\")");
  } else if (std::string why = precisionOrBackendDifference(o.base, o.test);
             !why.empty() && !noReference) {
    // Digests of runs at different precisions or on different backends
    // always differ: the exact policy would flag the first row.
    bool aot = why.find("--so") != std::string::npos;
    if (aot)
      return fail("base and test differ in " + why +
                  ": their digests always differ, so a bisection needs a "
                  "reference; give --ref with the f64 build, e.g. --ref "
                  "\"--so=cpu_f64.so\"");
    o.ref = autoReference(o.base);
    o.autoRefReason = why;
    if (!o.quiet)
      std::cerr << "greta-bisect: base and test differ in " << why
                << ": adding the f64 CPU reference --ref \"" << o.ref->flagsText
                << "\"\n";
  } else if (o.policy == "reference") {
    return fail("--policy reference needs a reference: --ref FLAGS (e.g. "
                "--ref \"--precision=f64\") or --ref-cmd COMMAND");
  }
  if (o.confirm && !o.test.command.empty())
    return fail("--confirm patches greta-run's test run: not with --test-cmd");
  if (ranByGreta && (o.model.empty() || o.weights.empty()))
    return fail("--model and --weights are needed to run greta-run (only "
                "engine commands can go without them)");
  if (o.model.empty() && o.numLayers == 0)
    return fail("give --num-layers (or --model) with engine commands");
  if (!prompt.empty() + !promptList.empty() + !promptText.empty() != 1)
    return fail("give exactly one of --prompt FILE, --prompt-text TEXT or "
                "--prompts NAMES");
  if (!prompt.empty()) {
    o.prompts.push_back({fs::path(prompt).stem().string(), prompt});
  } else if (!promptText.empty()) {
    // Written once --work-dir is known (below), after --restart.
    o.prompts.push_back({"prompt-text", ""});
  } else {
    std::vector<fs::path> dirs = promptDirs(promptsDir, o.model);
    std::stringstream ss(promptList);
    for (std::string name; std::getline(ss, name, ',');) {
      if (name.empty())
        continue;
      std::string path = findPrompt(name, dirs);
      if (path.empty()) {
        std::string tried;
        for (const fs::path &d : dirs)
          tried += (tried.empty() ? "" : ", ") +
                   (d / (fs::path(name).has_extension() ? name : name + ".json"))
                       .string();
        return fail("prompt '" + name + "' not found: " + tried);
      }
      o.prompts.push_back({fs::path(path).stem().string(), path});
    }
  }
  if (o.weights.empty() && !o.model.empty()) {
    if (!fs::is_directory(o.model))
      return fail("--weights is required (unless --model is an HF checkpoint "
                  "directory)");
    o.weights = o.model;
  }
  for (const std::string &f : {o.model, o.weights, testModel, refModel})
    if (!f.empty() && !fs::exists(f))
      return fail("no such file: " + f);
  if (o.numLayers == 0 && !readNumLayers(o.model, o.numLayers, error))
    return fail(error);
  // Two graphs compare only when their configs agree: a different layer
  // count is refused before anything runs.
  for (const std::string &m : {testModel, refModel}) {
    int64_t n = 0;
    if (m.empty() || m == o.model)
      continue;
    if (!readNumLayers(m, n, error))
      return fail(error);
    if (n != o.numLayers)
      return fail("different configs: " + m + " has " + std::to_string(n) +
                  " layers, " + o.model + " has " +
                  std::to_string(o.numLayers) +
                  " (two graphs compare only when layers, stages and shapes "
                  "agree)");
  }
  if (o.numLayers <= 0)
    return fail("--num-layers must be positive");
  if (o.workDir.empty())
    o.workDir = "greta-bisect.work";
  // A --prompt-text prompt is a file in the work dir, written before the
  // configurations are checked and again after --restart empties the dir.
  auto writePromptText = [&]() -> bool {
    if (promptText.empty())
      return true;
    std::error_code ec;
    fs::create_directories(o.workDir, ec);
    fs::path p = fs::path(o.workDir) / "prompt-text.txt";
    std::ofstream out(p, std::ios::binary);
    out << promptText;
    o.prompts[0].second = p.string();
    return static_cast<bool>(out);
  };
  if (!writePromptText())
    return fail("cannot write the --prompt-text prompt in " + o.workDir);
  std::string dir = selfDir();
  if (o.gretaRun.empty())
    o.gretaRun = dir + "/greta-run";
  if (o.gretaDiff.empty())
    o.gretaDiff = dir + "/greta-diff";
  for (const std::string &t : {o.gretaRun, o.gretaDiff})
    if (access(t.c_str(), X_OK) != 0)
      return fail("cannot execute " + t + " (give --greta-run/--greta-diff)");

  o.reportValues = format == "html";
  // From here on an interrupt stops the running greta-run too, and the work
  // dir keeps every finished step.
  installInterruptForwarding();
  // Every configuration's flags, checked by greta-run itself before any run
  // (and before --restart discards anything).
  if (!checkConfigs(o, error)) {
    if (!interruptSignal())
      return fail(error);
    std::cerr << "greta-bisect: " << error << "\n";
    return 130;
  }
  if (restart) {
    std::error_code ec;
    fs::remove_all(o.workDir, ec);
    if (!writePromptText())
      return fail("cannot write the --prompt-text prompt in " + o.workDir);
  }
  std::vector<PromptResult> results;
  StopReason stop = StopReason::None;
  if (!runBisection(o, results, error, stop)) {
    if (stop == StopReason::MaxSteps) {
      std::cerr << "greta-bisect: " << error << "\n";
      return 3;
    }
    if (stop == StopReason::Interrupted) {
      std::cerr << "greta-bisect: " << error
                << "; the steps finished before it are kept in " << o.workDir
                << ": run the same command again to resume\n";
      return 130;
    }
    return fail(error);
  }

  std::string report = format == "json" ? renderJson(o, results).dump(2) + "\n"
                       : format == "html" ? renderHtml(o, results)
                                          : renderMarkdown(o, results);
  if (outPath.empty()) {
    std::cout << report;
  } else {
    std::ofstream out(outPath);
    out << report;
    if (!out)
      return fail("cannot write " + outPath);
  }
  for (const PromptResult &r : results)
    if (r.firstFail || !r.testFailure.empty() || !r.generation.empty())
      return 1;
  return 0;
}

//===- greta-bisect.cpp - Find FIRST_FAIL with as few runs as possible -*- C++ -*-===//
//
// Drives greta-run and greta-diff: coarse layers first, then a binary search,
// then every stage and position of the first diverging layer, then values
// for the FIRST_FAIL record. Needs no LLVM: it runs on a GPU host too.
//
//===----------------------------------------------------------------------===//
#include "Bisect.h"
#include "Process.h"

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
const char *const kReservedFlags[] = {"--trace-dir", "--layers", "--stages",
                                      "--positions", "--payload", "--prompt",
                                      "--weights",   "--overwrite"};

bool parseConfig(const std::string &name, const std::string &text, Config &c,
                 std::string &error) {
  c.name = name;
  c.flagsText = text;
  std::string splitError;
  if (!splitFlags(text, c.flags, splitError)) {
    error = "--" + name + " \"" + text + "\": " + splitError;
    return false;
  }
  for (const std::string &f : c.flags) {
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

std::string selfDir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

/// The layer count from the model's `greta.num_layers` module attribute.
bool readNumLayers(const std::string &model, int64_t &n, std::string &error) {
  std::ifstream in(model);
  if (!in) {
    error = "cannot read model " + model;
    return false;
  }
  std::string line;
  std::regex re("greta\\.num_layers\\s*=\\s*([0-9]+)");
  int lineNo = 0;
  while (std::getline(in, line) && ++lineNo < 200) {
    std::smatch m;
    if (std::regex_search(line, m, re)) {
      n = std::stoll(m[1]);
      return true;
    }
  }
  error = model + ": no 'greta.num_layers' module attribute in its first "
                  "200 lines (give --num-layers)";
  return false;
}
} // namespace

int main(int argc, char **argv) {
  CLI::App app{
      "greta-bisect: find the first divergent tensor (FIRST_FAIL) between a "
      "base and a test configuration of the same model.\n"
      "Runs greta-run with a runtime filter (each configuration is compiled "
      "once), compares with greta-diff: the seed's coarse layers (0, 1, 2, "
      "4, 8, last) first, then a binary search between the last agreeing and "
      "the first diverging layer, then every stage and position of that "
      "layer, then values (MAE) for the FIRST_FAIL record.\n"
      "Exit codes: 0 no divergence, 1 divergence found, 2 error, 3 stopped "
      "by --max-steps (resumable)."};
  Options o;
  std::string prompt, promptList, promptsDir, base, test, ref, format = "markdown";
  std::string outPath;
  bool restart = false;
  app.add_option("--model", o.model,
                 "greta IR of the model (model.mlir); "
                 "needed unless every configuration is an engine command");
  app.add_option("--weights", o.weights, "safetensors weights (as --model)");
  app.add_option("--prompt", prompt, "prompt file (JSON array of token ids or one per line)");
  app.add_option("--prompts", promptList,
                 "comma-separated prompt names resolved in --prompts-dir "
                 "(e.g. p0_short,p6_len_16,p6_len_32: the seed's study)");
  app.add_option("--prompts-dir", promptsDir,
                 "where --prompts names are looked up (NAME.json); default: "
                 "models/prompts next to the model's directory");
  app.add_option(
      "--base", base,
      "greta-run flags of the good configuration, e.g. \"--precision=f32\"");
  app.add_option("--test", test,
                 "greta-run flags of the configuration under test");
  app.add_option("--ref", ref,
                 "greta-run flags of a reference (e.g. \"--precision=f64\"): "
                 "verdicts then use greta-diff's reference policy");
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
  app.add_flag("--restart", restart, "discard the state of an earlier bisection in --work-dir");
  app.add_flag("-q,--quiet", o.quiet, "no progress lines on stderr");
  app.add_option("--greta-run", o.gretaRun, "greta-run executable (default: next to greta-bisect)");
  app.add_option("--greta-diff", o.gretaDiff, "greta-diff executable (default: next to greta-bisect)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError &e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  auto fail = [](const std::string &msg) {
    std::cerr << "greta-bisect: error: " << msg << "\n";
    return 2;
  };
  std::string error;
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
  if (!ref.empty() || !refCmd.empty()) {
    Config r;
    if (!config("ref", ref, refCmd, r))
      return fail(error);
    o.ref = r;
  }
  if (o.confirm && !o.test.command.empty())
    return fail("--confirm patches greta-run's test run: not with --test-cmd");
  if (ranByGreta && (o.model.empty() || o.weights.empty()))
    return fail("--model and --weights are needed to run greta-run (only "
                "engine commands can go without them)");
  if (o.model.empty() && o.numLayers == 0)
    return fail("give --num-layers (or --model) with engine commands");
  if (prompt.empty() == promptList.empty())
    return fail("give exactly one of --prompt FILE or --prompts NAMES");
  if (!prompt.empty()) {
    o.prompts.push_back({fs::path(prompt).stem().string(), prompt});
  } else {
    if (promptsDir.empty())
      promptsDir = (fs::path(o.model).parent_path().parent_path() / "prompts").string();
    std::stringstream ss(promptList);
    for (std::string name; std::getline(ss, name, ',');) {
      if (name.empty())
        continue;
      fs::path p = fs::path(promptsDir) / (name + ".json");
      if (!fs::exists(p))
        return fail("prompt '" + name + "' not found: " + p.string());
      o.prompts.push_back({name, p.string()});
    }
  }
  for (const std::string &f : {o.model, o.weights})
    if (!f.empty() && !fs::exists(f))
      return fail("no such file: " + f);
  if (o.numLayers == 0 && !readNumLayers(o.model, o.numLayers, error))
    return fail(error);
  if (o.numLayers <= 0)
    return fail("--num-layers must be positive");
  if (o.workDir.empty())
    o.workDir = "greta-bisect.work";
  if (restart) {
    std::error_code ec;
    fs::remove_all(o.workDir, ec);
  }
  std::string dir = selfDir();
  if (o.gretaRun.empty())
    o.gretaRun = dir + "/greta-run";
  if (o.gretaDiff.empty())
    o.gretaDiff = dir + "/greta-diff";
  for (const std::string &t : {o.gretaRun, o.gretaDiff})
    if (access(t.c_str(), X_OK) != 0)
      return fail("cannot execute " + t + " (give --greta-run/--greta-diff)");

  o.reportValues = format == "html";
  std::vector<PromptResult> results;
  bool stopped = false;
  if (!runBisection(o, results, error, stopped)) {
    if (stopped) {
      std::cerr << "greta-bisect: " << error << "\n";
      return 3;
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
    if (r.firstFail || !r.testFailure.empty())
      return 1;
  return 0;
}

//===- Render.cpp - The result of a bisection as text and JSON --*- C++ -*-===//
//
// The Markdown and JSON results of greta-bisect (docs/USER_GUIDE.md) and
// the positions its report step traces.
//
//===----------------------------------------------------------------------===//
#include "BisectInternal.h"

#include <set>
#include <sstream>

using nlohmann::json;

namespace greta::bisect {

std::string joinInts(const std::vector<int64_t> &v) {
  std::string s;
  for (int64_t x : v)
    s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

json firstFailJson(const std::optional<FirstFail> &ff) {
  if (!ff)
    return nullptr;
  json j = {{"stage", ff->stage},         {"layer", ff->layer},
            {"position", ff->position},   {"category", ff->category},
            {"hash_match", ff->hashMatch}};
  j["mae"] = ff->mae ? json(*ff->mae) : json(nullptr);
  if (!ff->token.empty())
    j["token"] = ff->token;
  return j;
}

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

std::string testFailureSentence(const std::string &testFailure) {
  std::string sentence = testFailure + ".";
  sentence[0] = static_cast<char>(std::toupper(sentence[0]));
  return sentence;
}

std::string renderMarkdown(const Options &options,
                           const std::vector<PromptResult> &results) {
  std::ostringstream os;
  os << "# GRETA bisection\n\n";
  if (!options.test.model.empty() && options.test.model != options.model)
    os << "- different graphs: base `" << options.model << "` vs test `"
       << options.test.model << "` (" << options.numLayers
       << " layers), weights: `" << options.weights << "`\n";
  else
    os << "- model: `" << options.model << "` (" << options.numLayers
       << " layers), weights: `" << options.weights << "`\n";
  os << "- base: `" << options.base.flagsText << "`\n"
     << "- test: `" << options.test.flagsText << "`\n";
  if (options.ref) {
    os << "- reference: `" << options.ref->flagsText << "`";
    if (!options.ref->model.empty())
      os << " on `" << options.ref->model << "`";
    os << "\n";
  }
  if (!options.policy.empty())
    os << "- policy: " << options.policy << " (greta-diff --policy)\n";
  if (!options.autoRefReason.empty())
    os << "- the reference was added by greta-bisect: base and test differ "
          "in "
       << options.autoRefReason
       << ", so their digests always differ; the verdicts use greta-diff's "
          "reference policy against it\n";
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
      os << r.firstFail->position
         << (r.firstFail->token.empty() ? "" : " (" + r.firstFail->token + ")")
         << " | " << r.firstFail->layer << " | " << r.firstFail->stage << " | "
         << r.firstFail->category << " | "
         << (r.firstFail->hashMatch ? "YES" : "NO") << " | " << mae << " | ";
    } else if (!r.generation.empty()) {
      os << "- | - | " << r.generation
         << "; no tensor diverges at or before it | - | - | - | ";
    } else if (!r.testFailure.empty()) {
      os << "- | - | none before the test run stopped | - | - | - | ";
    } else {
      os << "- | - | no divergence | - | - | - | ";
    }
    os << r.runsPerConfig << " | " << r.bytesWritten << " |\n";
  }
  for (const PromptResult &r : results) {
    os << "\n## " << r.prompt << "\n\n";
    if (!r.generation.empty())
      os << "FIRST_FAIL: " << r.generation
         << (r.firstFail ? "; the first tensor divergence at or before it is "
                           "in the table above"
                         : "")
         << ".\n\n";
    os << "Steps:\n\n";
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
      os << "\n" << testFailureSentence(r.testFailure) << "\n";
    if (!r.diffMarkdown.empty())
      os << "\n" << r.diffMarkdown << "\n";
  }
  return os.str();
}

nlohmann::json renderJson(const Options &options,
                          const std::vector<PromptResult> &results) {
  json j;
  j["model"] = options.model;
  j["test_model"] = modelOf(options, options.test);
  j["ref_model"] =
      options.ref ? json(modelOf(options, *options.ref)) : json(nullptr);
  j["auto_ref"] = options.autoRefReason.empty() ? json(nullptr)
                                                : json(options.autoRefReason);
  j["weights"] = options.weights;
  j["base"] = options.base.flagsText;
  j["test"] = options.test.flagsText;
  j["ref"] = options.ref ? json(options.ref->flagsText) : json(nullptr);
  j["policy"] = diffPolicy(options);
  int64_t runs = 0;
  uint64_t bytes = 0;
  j["prompts"] = json::array();
  for (const PromptResult &r : results) {
    json p = {{"prompt", r.prompt},
              {"token_count", r.tokenCount},
              {"first_fail", firstFailJson(r.firstFail)},
              {"generation",
               r.generation.empty() ? json(nullptr) : json(r.generation)},
              {"runs", r.runsPerConfig},
              {"bytes_written", r.bytesWritten},
              {"test_failure",
               r.testFailure.empty() ? json(nullptr) : json(r.testFailure)},
              {"confirmation",
               r.confirmation.empty() ? json(nullptr) : json(r.confirmation)}};
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

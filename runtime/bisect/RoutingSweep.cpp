//===- RoutingSweep.cpp - Every token's experts, first ----------*- C++ -*-===//
//
// A mixture-of-experts router can flip its top-k on a near-tie at a token
// the checkpoints never trace: from there on the runs differ by far more
// than rounding, yet the checkpoints may agree within a tolerance. So on a
// model with routed layers greta-bisect first traces router_logits and
// expert_selection of every routed layer at every position, one run of
// BASE and TEST (the rows are a few numbers each), and compares them so
// that only a change of expert ids diverges (docs/USER_GUIDE.md, "Mixture
// of experts"). Its first flip anchors the search that follows.
//
//===----------------------------------------------------------------------===//
#include "BisectInternal.h"

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using nlohmann::json;

namespace greta::bisect {

namespace {
/// The expert_selection tags of greta IR: `#greta.stage<"expert_selection",
/// L>` on each router (or on an attribute alias).
void routedLayersOfIR(const std::string &text, std::set<int64_t> &layers) {
  const std::string tag = "#greta.stage<\"expert_selection\",";
  for (size_t at = text.find(tag); at != std::string::npos;
       at = text.find(tag, at + 1)) {
    size_t i = at + tag.size();
    while (i < text.size() && text[i] == ' ')
      ++i;
    size_t digits = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
      ++i;
    if (i > digits)
      layers.insert(std::strtoll(text.c_str() + digits, nullptr, 10));
  }
}

/// An integer key of an HF config, or `dflt` when absent or not one (the
/// importer names a bad key when greta-run reads the config).
int64_t intKey(const json &config, const char *key, int64_t dflt) {
  auto it = config.find(key);
  return it != config.end() && it->is_number_integer() ? it->get<int64_t>()
                                                       : dflt;
}

/// The routed layers of an HF config, as GRETA's importer builds them
/// (lib/Target/HF/MoEConfig.cpp): every layer of Mixtral; for Qwen2-MoE and
/// Qwen3-MoE the layers l with (l + 1) % decoder_sparse_step == 0 that are
/// not in mlp_only_layers.
void routedLayersOfConfig(const json &config, std::set<int64_t> &layers) {
  auto typeKey = config.find("model_type");
  std::string type = typeKey != config.end() && typeKey->is_string()
                         ? typeKey->get<std::string>()
                         : "";
  int64_t n = intKey(config, "num_hidden_layers", 0);
  if (type != "mixtral" && type != "qwen2_moe" && type != "qwen3_moe") {
    // A family with experts that this list does not know yet (the importer
    // may learn it first): sweep every layer rather than none, so a flip is
    // never missed for want of a rule here.
    for (const char *key :
         {"num_local_experts", "num_experts", "n_routed_experts"})
      if (intKey(config, key, 0) > 1) {
        for (int64_t l = 0; l < n; ++l)
          layers.insert(l);
        return;
      }
    return;
  }
  int64_t step =
      type == "mixtral" ? 1 : intKey(config, "decoder_sparse_step", 1);
  for (int64_t l = 0; l < n; ++l)
    if (step > 0 && (l + 1) % step == 0)
      layers.insert(l);
  auto only = config.find("mlp_only_layers");
  if (type != "mixtral" && only != config.end() && only->is_array())
    for (const json &l : *only)
      if (l.is_number_integer())
        layers.erase(l.get<int64_t>());
}
} // namespace

bool routedLayers(const std::string &model, std::vector<int64_t> &layers,
                  std::string &error) {
  layers.clear();
  bool checkpoint = fs::is_directory(model);
  std::string file = checkpoint ? model + "/config.json" : model;
  std::ifstream in(file, std::ios::binary);
  if (!in.is_open()) {
    error = "cannot read model " + file;
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::set<int64_t> found;
  if (checkpoint) {
    json config = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      error = file + " is not a JSON object (an HF config.json)";
      return false;
    }
    routedLayersOfConfig(config, found);
  } else {
    routedLayersOfIR(text.str(), found);
  }
  layers.assign(found.begin(), found.end());
  return true;
}

std::vector<std::string> routingSweepDiffFlags() {
  // The tolerance policy with bounds no row can exceed: an expert_selection
  // row is judged by its ids under every policy (runtime/diff/Routing.cpp),
  // so a flip is the only divergence, besides non-finite values that
  // differ. router_logits are there for the flip's margins.
  return {"--policy", "tolerance", "--atol", "1e300",
          "--rtol",   "1e300",     "--mae",  "1e300"};
}

std::string withPosition(const std::string &positions, int64_t position) {
  std::string p = std::to_string(position);
  std::stringstream ss(positions);
  for (std::string item; std::getline(ss, item, ',');)
    if (item == p || item == "all")
      return positions;
  return positions.empty() ? p : positions + "," + p;
}

std::vector<int64_t> layersThrough(const std::vector<int64_t> &layers,
                                   int64_t last) {
  std::set<int64_t> kept = {last};
  for (int64_t l : layers)
    if (l < last)
      kept.insert(l);
  return {kept.begin(), kept.end()};
}

} // namespace greta::bisect

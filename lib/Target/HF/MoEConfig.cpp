//===- MoEConfig.cpp - The mixture-of-experts keys of a config --*- C++ -*-===//
//
// Mixtral (num_local_experts, experts under block_sparse_moe), Qwen2-MoE and
// Qwen3-MoE (num_experts, moe_intermediate_size, norm_topk_prob,
// decoder_sparse_step, mlp_only_layers; Qwen2-MoE's gated shared expert), as
// HF's config classes read them. docs/IMPORT.md lists the keys.
//
//===----------------------------------------------------------------------===//
#include "ConfigReader.h"

#include "llvm/Support/JSON.h"

using namespace greta::hf;
using greta::hf::detail::ConfigReader;
namespace json = llvm::json;

mlir::LogicalResult greta::hf::detail::parseMoE(const ConfigReader &r,
                                                LlamaConfig &c) {
  MoEConfig &m = c.moe;
  bool mixtral = c.family == Family::Mixtral;
  if (!mixtral && c.family != Family::Qwen2Moe && c.family != Family::Qwen3Moe)
    return mlir::success();
  // HF maps num_experts and num_local_experts onto one attribute (Qwen3-MoE
  // in transformers 5 writes num_local_experts): either spelling, not two
  // different values.
  const json::Value *a = r.get("num_local_experts"), *b = r.get("num_experts");
  StringRef key = a ? "num_local_experts" : "num_experts";
  auto experts = r.getInt(key, mixtral ? std::optional<int64_t>(8)
                                       : std::optional<int64_t>(60));
  if (mlir::failed(experts))
    return mlir::failure();
  if (a && b) {
    auto other = r.getInt("num_experts");
    if (mlir::failed(other))
      return mlir::failure();
    if (*other != *experts) {
      r.error("num_experts")
          << "key 'num_experts' (" << *other
          << ") disagrees with 'num_local_experts' (" << *experts << ")";
      return mlir::failure();
    }
  }
  m.numExperts = *experts;
  auto k = r.getInt("num_experts_per_tok", mixtral ? 2 : 4);
  if (mlir::failed(k))
    return mlir::failure();
  if (*k > m.numExperts) {
    r.error("num_experts_per_tok")
        << "key 'num_experts_per_tok' (" << *k << ") exceeds the number of "
        << "experts (" << m.numExperts << ")";
    return mlir::failure();
  }
  m.expertsPerToken = *k;
  m.sparseLayers.assign(c.numLayers, true);
  if (mixtral) {
    // Mixtral renormalises always; its experts are intermediate_size wide.
    m.mixtralNames = true;
    m.normalize = true;
    m.expertSize = c.intermediateSize;
    return mlir::success();
  }
  auto expertSize = r.getInt("moe_intermediate_size");
  auto normalize =
      r.getBool("norm_topk_prob", c.family == Family::Qwen3Moe ? true : false);
  auto step = r.getInt("decoder_sparse_step", 1);
  if (mlir::failed(expertSize) || mlir::failed(normalize) || mlir::failed(step))
    return mlir::failure();
  m.expertSize = *expertSize;
  m.normalize = *normalize;
  if (c.family == Family::Qwen2Moe) {
    auto shared = r.getInt("shared_expert_intermediate_size");
    if (mlir::failed(shared))
      return mlir::failure();
    m.sharedExpertSize = *shared;
  }
  // HF: layer l is sparse when it is not in mlp_only_layers, there are
  // experts, and (l + 1) % decoder_sparse_step == 0.
  for (int64_t l = 0; l < c.numLayers; ++l)
    m.sparseLayers[l] = (l + 1) % *step == 0;
  if (const json::Value *only = r.get("mlp_only_layers")) {
    const json::Array *list = only->getAsArray();
    if (!list)
      return r.wrongType("mlp_only_layers", "an array of layer indices", *only);
    for (const json::Value &v : *list) {
      std::optional<int64_t> l = v.getAsInteger();
      if (!l || *l < 0 || *l >= c.numLayers) {
        std::string shown;
        llvm::raw_string_ostream(shown) << v;
        r.error("mlp_only_layers")
            << "key 'mlp_only_layers' holds " << shown
            << ", not a layer index in [0, " << c.numLayers << ")";
        return mlir::failure();
      }
      m.sparseLayers[*l] = false;
    }
  }
  return mlir::success();
}

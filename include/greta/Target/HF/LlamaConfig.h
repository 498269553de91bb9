//===- LlamaConfig.h - An HF Llama config.json, checked ---------*- C++ -*-===//
//
// The subset of Hugging Face's configs (Llama and the dense families built
// the same way: Mistral, Qwen2, Qwen3, Gemma, Phi-3) that decides the graph,
// read from config.json with every key type-checked; a key that would change
// the model and that GRETA does not implement is an error naming it. The
// parameter list (HF safetensors names and shapes) is derived here, once: the
// importer and the random-weight generator both read it, so they cannot
// disagree.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_TARGET_HF_LLAMACONFIG_H
#define GRETA_TARGET_HF_LLAMACONFIG_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace greta::hf {

/// The model types the importer accepts (printed in errors).
inline constexpr llvm::StringLiteral kSupportedModelTypes =
    "llama, mistral, qwen2, qwen3, gemma, phi3, mixtral, qwen2_moe, "
    "qwen3_moe";

/// The decoder families. They share one graph (docs/MODELS.md); a family
/// only decides which keys config.json may hold, their defaults and which
/// variant of a block the importer builds. Mixtral, Qwen2-MoE and Qwen3-MoE
/// are Mistral, Qwen2 and Qwen3 with a mixture of experts as the MLP.
enum class Family {
  Llama,
  Mistral,
  Qwen2,
  Qwen3,
  Gemma,
  Phi3,
  Mixtral,
  Qwen2Moe,
  Qwen3Moe
};

/// A mixture-of-experts MLP (MoEConfig.cpp): the router's softmax, top-k
/// and renormalisation, the experts and Qwen2-MoE's gated shared expert.
struct MoEConfig {
  int64_t numExperts = 0;       // 0: no layer has experts
  int64_t expertsPerToken = 0;  // num_experts_per_tok
  int64_t expertSize = 0;       // an expert's intermediate size
  int64_t sharedExpertSize = 0; // 0: no shared expert
  bool normalize = true;        // renormalise the top-k weights
  bool mixtralNames = false;    // block_sparse_moe.experts.e.w1/w3/w2
  /// Per layer: true where the MLP is the mixture (decoder_sparse_step,
  /// mlp_only_layers); the others are dense with intermediate_size.
  std::vector<bool> sparseLayers;
  bool isSparse(int64_t layer) const {
    return numExperts > 0 && sparseLayers[layer];
  }
};

/// RoPE scaling as HF's modeling_rope_utils defines it (`rope_scaling`, or
/// `rope_parameters` as transformers 5 writes it).
struct RopeScaling {
  enum class Kind { None, Linear, Dynamic, Llama3, Yarn, LongRope };
  Kind kind = Kind::None;
  std::string type; // as written: "linear", "dynamic", ...
  double factor = 1.0;
  int64_t originalMaxPositionEmbeddings = 0; // llama3, yarn, longrope
  double lowFreqFactor = 0, highFreqFactor = 0; // llama3
  double betaFast = 32, betaSlow = 1;           // yarn
  bool truncate = true;                         // yarn
  std::optional<double> mscale, mscaleAllDim;   // yarn
  std::optional<double> attentionFactor;        // yarn, longrope
  std::vector<double> shortFactor, longFactor;  // longrope (head_dim/2 each)
};

/// What the kernels need of a RoPE scaling, computed once from the config
/// (RopeScaling.cpp, in f64; HF's formulas, docs/MODELS.md).
struct RopeTables {
  /// Empty for plain RoPE (the kernel derives theta^(-2i/d) itself).
  std::vector<double> invFreq;
  /// longrope: the frequencies of a call whose last position + 1 exceeds
  /// `longFrom` (HF picks them by max(position_ids) + 1).
  std::vector<double> longInvFreq;
  int64_t longFrom = 0;
  /// dynamic NTK: the base is rescaled for max(position) + 1 of the call
  /// when it exceeds `dynamicMaxPosition` (max_position_embeddings).
  double dynamicFactor = 0;
  int64_t dynamicMaxPosition = 0;
  /// cos and sin are multiplied by this (yarn's mscale, longrope's factor).
  double attentionFactor = 1.0;
};

struct LlamaConfig {
  Family family = Family::Llama;
  std::string modelType; // as written: "llama", "qwen2", ...
  std::string name;      // module attribute greta.model
  int64_t hiddenSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0; // default: numHeads
  int64_t headDim = 0;    // default: the family's (hiddenSize / numHeads)
  int64_t intermediateSize = 0;
  int64_t vocabSize = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 0;
  double ropeTheta = 10000.0;
  RopeScaling rope;
  bool tieWordEmbeddings = false;
  bool attentionBias = false; // q/k/v_proj carry a bias
  bool oProjBias = false;     // o_proj carries a bias (llama: attention_bias)
  bool mlpBias = false;       // gate/up/down_proj carry a bias
  /// Sliding-window attention: a query at position p sees keys at positions
  /// > p - slidingWindow. 0: none. Per layer (Qwen2/3 apply it from
  /// max_window_layers on); empty: no layer has one.
  std::vector<int64_t> slidingWindow;
  bool qkNorm = false;          // Qwen3: per-head RMSNorm of q and k before RoPE
  bool normAddsOne = false;     // Gemma: RMSNorm scales by (1 + w)
  bool geluTanh = false;        // Gemma: GeGLU with tanh-GELU, not SwiGLU
  bool scaleEmbedding = false;  // Gemma: embedding times sqrt(hidden_size)
  bool fusedProjections = false; // Phi-3: qkv_proj and gate_up_proj
  MoEConfig moe;

  int64_t windowOf(int64_t layer) const {
    return slidingWindow.empty() ? 0 : slidingWindow[layer];
  }
};

/// The RoPE tables of `config` (its `rope` and `ropeTheta`, `headDim`).
RopeTables computeRopeTables(const LlamaConfig &config);

/// Parses and checks `text`, the contents of an HF config.json.
/// `fileName` only names the file in diagnostics, which are emitted on
/// `context` at `fileName:line:col` of the offending key. `name` becomes the
/// model name (module attribute `greta.model`); empty picks the config's
/// `_name_or_path`, else the name of the directory holding `fileName`.
mlir::FailureOr<LlamaConfig> parseLlamaConfig(llvm::StringRef text,
                                              llvm::StringRef fileName,
                                              mlir::MLIRContext &context,
                                              llvm::StringRef name = "");

/// How a parameter is initialised by `--gen-random-weights`.
enum class ParamInit { Normal, Ones, Zeros };

/// One model parameter: its HF safetensors name, static shape and init.
struct ParamSpec {
  std::string name;
  llvm::SmallVector<int64_t, 2> shape;
  ParamInit init;
  int64_t numElements() const;
};

/// Every parameter of the model in execution order of first use, each once
/// (with tied embeddings there is no lm_head.weight).
std::vector<ParamSpec> getParamSpecs(const LlamaConfig &config);

/// Deterministic values for `spec`: normal(0, 0.02) (Box-Muller over
/// std::mt19937_64, so no standard-library distribution is involved), ones or
/// zeros. Each tensor has its own stream seeded from `seed` and the tensor's
/// name, so adding a tensor never changes the others.
std::vector<float> generateParamValues(const ParamSpec &spec, uint64_t seed);

/// A deterministic prompt: token 1 (BOS) then `length - 1` ids drawn
/// uniformly from [3, vocab) (no pad/BOS/EOS inside the prompt).
std::vector<int64_t> generatePrompt(int64_t length, int64_t vocab,
                                    uint64_t seed);

} // namespace greta::hf

#endif // GRETA_TARGET_HF_LLAMACONFIG_H

//===- LlamaConfig.h - An HF Llama config.json, checked ---------*- C++ -*-===//
//
// The subset of Hugging Face's LlamaConfig that decides the graph, read from
// config.json with every key type-checked. The parameter list (HF safetensors
// names and shapes) is derived here, once: the importer and the random-weight
// generator both read it, so they cannot disagree.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_TARGET_HF_LLAMACONFIG_H
#define GRETA_TARGET_HF_LLAMACONFIG_H

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace greta::hf {

/// The model types the importer accepts (printed in errors).
inline constexpr llvm::StringLiteral kSupportedModelTypes =
    "llama, mistral (without sliding window)";

struct LlamaConfig {
  std::string modelType; // "llama" or "mistral"
  std::string name;      // module attribute greta.model
  int64_t hiddenSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKVHeads = 0; // default: numHeads
  int64_t headDim = 0;    // default: hiddenSize / numHeads
  int64_t intermediateSize = 0;
  int64_t vocabSize = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 0;
  double ropeTheta = 10000.0;
  bool tieWordEmbeddings = false;
  bool attentionBias = false; // q/k/v/o_proj carry a bias
  bool mlpBias = false;       // gate/up/down_proj carry a bias
};

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

//===- LlamaConfig.cpp - Read and check an HF config.json -------*- C++ -*-===//
//
// llvm::json gives the line and column of syntax errors; for a key that is
// present but wrong we find its line and column in the text, so every
// diagnostic points at the culprit: `config.json:4:3: error: key ...`.
//
//===----------------------------------------------------------------------===//
#include "greta/Target/HF/LlamaConfig.h"
#include "ConfigReader.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

#include <cmath>
#include <random>

using namespace greta::hf;
using greta::hf::detail::ConfigReader;
using greta::hf::detail::parseRope;
using llvm::StringRef;
namespace json = llvm::json;

namespace {

std::optional<Family> familyOf(StringRef modelType) {
  return llvm::StringSwitch<std::optional<Family>>(modelType)
      .Case("llama", Family::Llama)
      .Case("mistral", Family::Mistral)
      .Case("qwen2", Family::Qwen2)
      .Case("qwen3", Family::Qwen3)
      .Case("gemma", Family::Gemma)
      .Case("phi3", Family::Phi3)
      .Case("mixtral", Family::Mixtral)
      .Case("qwen2_moe", Family::Qwen2Moe)
      .Case("qwen3_moe", Family::Qwen3Moe)
      .Default(std::nullopt);
}

/// Model types whose MLP is a mixture of experts GRETA does not import yet:
/// refused with a reason.
bool isMixtureOfExperts(StringRef modelType) {
  return llvm::is_contained({"deepseek_v2", "deepseek_v3", "phimoe", "dbrx",
                             "olmoe", "granitemoe", "jamba"},
                            modelType);
}

/// The sliding window of every layer. Mistral and Phi-3: `sliding_window`
/// (an integer, or null for none; Mistral's HF default is 4096) on every
/// layer. Qwen2/Qwen3: only with `use_sliding_window`, on the layers
/// `layer_types` marks "sliding_attention", by default those from
/// `max_window_layers` on (HF's Qwen2Config).
mlir::LogicalResult parseSlidingWindow(const ConfigReader &r, LlamaConfig &c,
                                       bool qwen) {
  if (c.family == Family::Llama || c.family == Family::Gemma)
    return mlir::success();
  if (qwen) { // without use_sliding_window the window key is not read
    auto use = r.getBool("use_sliding_window", false);
    if (mlir::failed(use))
      return mlir::failure();
    if (!*use)
      return mlir::success();
  }
  int64_t window = 0;
  const json::Value *raw = r.raw("sliding_window");
  if (!raw) {
    // Mixtral's HF default is no window.
    if (c.family == Family::Mistral || qwen)
      window = 4096;
  } else if (raw->kind() != json::Value::Null) {
    std::optional<int64_t> w = raw->getAsInteger();
    if (!w)
      return r.wrongType("sliding_window", "an integer or null", *raw);
    if (*w <= 0) {
      r.error("sliding_window")
          << "key 'sliding_window' must be positive, got " << *w;
      return mlir::failure();
    }
    window = *w;
  }
  if (qwen) {
    auto use = r.getBool("use_sliding_window", false);
    if (mlir::failed(use))
      return mlir::failure();
    if (!*use || window == 0)
      return mlir::success();
    std::vector<bool> sliding(c.numLayers, false);
    if (const json::Value *types = r.get("layer_types")) {
      const json::Array *a = types->getAsArray();
      if (!a)
        return r.wrongType("layer_types", "an array of strings", *types);
      if (static_cast<int64_t>(a->size()) != c.numLayers) {
        r.error("layer_types") << "key 'layer_types' has " << a->size()
                               << " entries for " << c.numLayers << " layers";
        return mlir::failure();
      }
      for (size_t i = 0; i < a->size(); ++i) {
        std::optional<StringRef> t = (*a)[i].getAsString();
        if (!t || (*t != "full_attention" && *t != "sliding_attention")) {
          r.error("layer_types")
              << "key 'layer_types' entry " << i
              << " must be \"full_attention\" or \"sliding_attention\"";
          return mlir::failure();
        }
        sliding[i] = *t == "sliding_attention";
      }
    } else {
      auto from = r.getNonNegativeInt("max_window_layers", 28);
      if (mlir::failed(from))
        return mlir::failure();
      for (int64_t l = *from; l < c.numLayers; ++l)
        sliding[l] = true;
    }
    c.slidingWindow.assign(c.numLayers, 0);
    for (int64_t l = 0; l < c.numLayers; ++l)
      if (sliding[l])
        c.slidingWindow[l] = window;
    return mlir::success();
  }
  if (window)
    c.slidingWindow.assign(c.numLayers, window);
  return mlir::success();
}

/// Model name: explicit, else `_name_or_path`, else the config's directory.
std::string pickName(StringRef explicitName, StringRef nameOrPath,
                     StringRef fileName) {
  if (!explicitName.empty())
    return explicitName.str();
  if (!nameOrPath.empty())
    return nameOrPath.str();
  llvm::SmallString<256> abs(fileName);
  llvm::SmallString<256> cwd;
  if (!llvm::sys::fs::current_path(cwd))
    llvm::sys::path::make_absolute(cwd, abs);
  StringRef dir = llvm::sys::path::filename(llvm::sys::path::parent_path(abs));
  return dir.empty() ? "model" : dir.str();
}

} // namespace

mlir::FailureOr<LlamaConfig> greta::hf::parseLlamaConfig(StringRef text,
                                                         StringRef fileName,
                                                         mlir::MLIRContext &ctx,
                                                         StringRef name) {
  // llvm::json parses, prints and destroys values recursively: deep nesting
  // ("[[[[...") would overflow the stack. No config.json nests deeply.
  {
    constexpr int kMaxDepth = 256;
    int depth = 0;
    unsigned line = 1, col = 0;
    bool inString = false;
    for (size_t i = 0; i < text.size(); ++i) {
      char ch = text[i];
      ++col;
      if (ch == '\n') {
        ++line;
        col = 0;
      }
      if (inString) {
        if (ch == '\\')
          ++i, ++col;
        else if (ch == '"')
          inString = false;
      } else if (ch == '"') {
        inString = true;
      } else if (ch == '[' || ch == '{') {
        if (++depth > kMaxDepth) {
          mlir::emitError(mlir::FileLineColLoc::get(&ctx, fileName, line, col))
              << "invalid JSON: nested deeper than " << kMaxDepth << " levels";
          return mlir::failure();
        }
      } else if (ch == ']' || ch == '}') {
        --depth;
      }
    }
  }
  llvm::Expected<json::Value> parsed = json::parse(text);
  if (!parsed) {
    // llvm::json reports "[line:col, byte=N]: message".
    std::string msg = llvm::toString(parsed.takeError());
    llvm::SmallVector<StringRef, 4> m;
    unsigned line = 1, col = 1;
    if (llvm::Regex("^\\[([0-9]+):([0-9]+), byte=[0-9]+\\]: (.*)$")
            .match(msg, &m)) {
      (void)m[1].getAsInteger(10, line);
      (void)m[2].getAsInteger(10, col);
      msg = m[3].str();
    }
    mlir::emitError(mlir::FileLineColLoc::get(&ctx, fileName, line, col))
        << "invalid JSON: " << msg;
    return mlir::failure();
  }
  const json::Object *obj = parsed->getAsObject();
  if (!obj) {
    mlir::emitError(mlir::FileLineColLoc::get(&ctx, fileName, 1, 1))
        << "expected a JSON object (an HF config.json), got "
        << ConfigReader::kindName(*parsed);
    return mlir::failure();
  }
  ConfigReader r(text, fileName, ctx, *obj, text.find('{'));
  LlamaConfig c;

  // model_type first: it decides which keys are read and their defaults.
  const json::Value *mt = obj->get("model_type");
  if (!mt) {
    (void)r.missing("model_type", "a string, e.g. \"llama\"");
    return mlir::failure();
  }
  if (!mt->getAsString()) {
    (void)r.wrongType("model_type", "a string", *mt);
    return mlir::failure();
  }
  c.modelType = mt->getAsString()->str();
  std::optional<Family> family = familyOf(c.modelType);
  if (!family) {
    auto diag = r.error("model_type");
    diag << "unsupported model_type '" << c.modelType << "'";
    if (isMixtureOfExperts(c.modelType))
      diag << ": a mixture-of-experts model GRETA does not import yet (its "
              "router and experts differ from Mixtral's and Qwen-MoE's)";
    diag << " (supported: " << kSupportedModelTypes << ")";
    return mlir::failure();
  }
  c.family = *family;
  const bool qwen = c.family == Family::Qwen2 || c.family == Family::Qwen3 ||
                    c.family == Family::Qwen2Moe ||
                    c.family == Family::Qwen3Moe;

#define READ(field, expr)                                                      \
  {                                                                            \
    auto v = (expr);                                                           \
    if (mlir::failed(v))                                                       \
      return mlir::failure();                                                  \
    c.field = *v;                                                              \
  }
  READ(hiddenSize, r.getInt("hidden_size"));
  READ(numLayers, r.getInt("num_hidden_layers"));
  READ(numHeads, r.getInt("num_attention_heads"));
  READ(numKVHeads, r.getInt("num_key_value_heads", c.numHeads));
  READ(intermediateSize, r.getInt("intermediate_size"));
  READ(vocabSize, r.getInt("vocab_size"));
  READ(maxPositionEmbeddings, r.getInt("max_position_embeddings"));
  // HF's defaults where the family's config class has one.
  std::optional<double> epsDefault;
  if (c.family == Family::Gemma)
    epsDefault = 1e-6;
  READ(rmsNormEps, r.getNumber("rms_norm_eps", epsDefault));
  READ(tieWordEmbeddings,
       r.getBool("tie_word_embeddings", c.family == Family::Gemma));

  // Biases: Llama's attention_bias covers q/k/v/o, Qwen2 has q/k/v biases
  // and none on o, Mistral and Phi-3 have none.
  switch (c.family) {
  case Family::Llama:
  case Family::Qwen3:
  case Family::Qwen3Moe:
  case Family::Gemma:
    READ(attentionBias, r.getBool("attention_bias", false));
    c.oProjBias = c.attentionBias;
    break;
  case Family::Qwen2:
    c.attentionBias = true;
    break;
  case Family::Qwen2Moe:
    READ(attentionBias, r.getBool("qkv_bias", true));
    break;
  case Family::Mistral:
  case Family::Phi3:
  case Family::Mixtral:
    break;
  }
  if (c.family == Family::Llama)
    READ(mlpBias, r.getBool("mlp_bias", false));
  c.qkNorm = c.family == Family::Qwen3 || c.family == Family::Qwen3Moe;
  c.normAddsOne = c.scaleEmbedding = c.geluTanh = c.family == Family::Gemma;
  c.fusedProjections = c.family == Family::Phi3;

  // head_dim: an explicit value need not be hidden/heads; Qwen3 and Gemma
  // default to 128 and 256 as their HF config classes do.
  bool explicitHeadDim = r.get("head_dim") != nullptr;
  if (explicitHeadDim) {
    READ(headDim, r.getInt("head_dim"));
  } else if (c.qkNorm || c.family == Family::Gemma) {
    c.headDim = c.qkNorm ? 128 : 256;
  } else {
    if (c.hiddenSize % c.numHeads) {
      r.error("num_attention_heads")
          << "key 'num_attention_heads' (" << c.numHeads
          << ") does not divide 'hidden_size' (" << c.hiddenSize
          << ") and there is no 'head_dim'";
      return mlir::failure();
    }
    c.headDim = c.hiddenSize / c.numHeads;
  }
  if (c.numHeads % c.numKVHeads) {
    r.error("num_key_value_heads")
        << "key 'num_key_value_heads' (" << c.numKVHeads
        << ") does not divide 'num_attention_heads' (" << c.numHeads << ")";
    return mlir::failure();
  }
  if (c.headDim % 2) {
    auto diag = r.error(explicitHeadDim ? "head_dim" : "num_attention_heads");
    diag << "head_dim (" << c.headDim;
    if (!explicitHeadDim)
      diag << " = hidden_size / num_attention_heads";
    diag << ") must be even: RoPE rotates pairs of columns";
    return mlir::failure();
  }

  // The activation. What the graph cannot express is an error, never
  // silently dropped.
  if (c.family == Family::Gemma) {
    // Gemma's MLP is GeGLU with PyTorch's tanh GELU: hidden_activation when
    // given (older configs also carry "hidden_act": "gelu", which HF then
    // ignores), else hidden_act; both default to gelu_pytorch_tanh.
    StringRef key =
        r.get("hidden_activation") ? "hidden_activation" : "hidden_act";
    auto act = r.getString(key);
    if (mlir::failed(act))
      return mlir::failure();
    if (!act->empty() && *act != "gelu_pytorch_tanh") {
      r.error(key) << "unsupported " << key << " '" << *act
                   << "' for gemma (supported: gelu_pytorch_tanh, as GeGLU)";
      return mlir::failure();
    }
  } else {
    auto act = r.getString("hidden_act");
    if (mlir::failed(act))
      return mlir::failure();
    if (!act->empty() && *act != "silu") {
      r.error("hidden_act") << "unsupported hidden_act '" << *act
                            << "' (supported: silu, as SwiGLU)";
      return mlir::failure();
    }
  }
  if (const json::Value *p = r.get("partial_rotary_factor")) {
    std::optional<double> f = p->getAsNumber();
    if (!f || *f != 1.0) {
      std::string shown;
      llvm::raw_string_ostream(shown) << *p;
      r.error("partial_rotary_factor")
          << "unsupported: key 'partial_rotary_factor' is " << shown
          << " (greta.rope rotates whole heads: 1.0 only)";
      return mlir::failure();
    }
  }
  if (mlir::failed(parseRope(r, c)))
    return mlir::failure();
  if (mlir::failed(parseSlidingWindow(r, c, qwen)))
    return mlir::failure();
  if (mlir::failed(parseMoE(r, c)))
    return mlir::failure();
#undef READ

  // Every parameter's element count must fit in int64: the weight generator
  // and the runtime multiply the dimensions (getParamSpecs' shapes).
  {
    int64_t qDim, kvDim, qkvDim, ffn2, n;
    auto mul = [](int64_t a, int64_t b, int64_t &out) {
      return __builtin_mul_overflow(a, b, &out);
    };
    if (mul(c.numHeads, c.headDim, qDim) ||
        mul(c.numKVHeads, c.headDim, kvDim) ||
        __builtin_add_overflow(qDim, 2 * kvDim, &qkvDim) ||
        mul(c.intermediateSize, 2, ffn2) ||
        mul(c.vocabSize, c.hiddenSize, n) || mul(qkvDim, c.hiddenSize, n) ||
        mul(ffn2, c.hiddenSize, n)) {
      r.error("hidden_size")
          << "the model is too large: a parameter's element count overflows "
             "a 64-bit integer (hidden_size "
          << c.hiddenSize << ", intermediate_size " << c.intermediateSize
          << ", vocab_size " << c.vocabSize << ", heads " << c.numHeads
          << " x head_dim " << c.headDim << ")";
      return mlir::failure();
    }
  }

  auto nameOrPath = r.getString("_name_or_path");
  if (mlir::failed(nameOrPath))
    return mlir::failure();
  c.name = pickName(name, *nameOrPath, fileName);
  return c;
}

//===----------------------------------------------------------------------===//
// Parameters
//===----------------------------------------------------------------------===//

int64_t ParamSpec::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::vector<ParamSpec> greta::hf::getParamSpecs(const LlamaConfig &c) {
  std::vector<ParamSpec> specs;
  auto add = [&](std::string name, llvm::ArrayRef<int64_t> shape,
                 ParamInit init) {
    specs.push_back({std::move(name),
                     llvm::SmallVector<int64_t, 2>(shape.begin(), shape.end()),
                     init});
  };
  int64_t h = c.hiddenSize, qDim = c.numHeads * c.headDim,
          kvDim = c.numKVHeads * c.headDim, ffn = c.intermediateSize;
  // HF initialises norm weights to ones, Gemma's (1 + w) ones to zeros.
  ParamInit norm = c.normAddsOne ? ParamInit::Zeros : ParamInit::Ones;
  add("model.embed_tokens.weight", {c.vocabSize, h}, ParamInit::Normal);
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    auto linear = [&](const std::string &mod, int64_t out, int64_t in,
                      bool bias) {
      add(p + mod + ".weight", {out, in}, ParamInit::Normal);
      if (bias) // HF initialises linear biases to zero.
        add(p + mod + ".bias", {out}, ParamInit::Zeros);
    };
    add(p + "input_layernorm.weight", {h}, norm);
    if (c.fusedProjections) {
      linear("self_attn.qkv_proj", qDim + 2 * kvDim, h, c.attentionBias);
    } else {
      linear("self_attn.q_proj", qDim, h, c.attentionBias);
      if (c.qkNorm)
        add(p + "self_attn.q_norm.weight", {c.headDim}, ParamInit::Ones);
      linear("self_attn.k_proj", kvDim, h, c.attentionBias);
      if (c.qkNorm)
        add(p + "self_attn.k_norm.weight", {c.headDim}, ParamInit::Ones);
      linear("self_attn.v_proj", kvDim, h, c.attentionBias);
    }
    linear("self_attn.o_proj", h, qDim, c.oProjBias);
    add(p + "post_attention_layernorm.weight", {h}, norm);
    if (c.moe.isSparse(l)) {
      // The router, then each expert's gate, up and down projections, then
      // Qwen2-MoE's shared expert and its gate: HF's order of first use.
      const MoEConfig &m = c.moe;
      std::string block = m.mixtralNames ? "block_sparse_moe." : "mlp.";
      linear(block + "gate", m.numExperts, h, false);
      for (int64_t e = 0; e < m.numExperts; ++e) {
        std::string ex = block + "experts." + std::to_string(e) + ".";
        linear(ex + (m.mixtralNames ? "w1" : "gate_proj"), m.expertSize, h,
               false);
        linear(ex + (m.mixtralNames ? "w3" : "up_proj"), m.expertSize, h,
               false);
        linear(ex + (m.mixtralNames ? "w2" : "down_proj"), h, m.expertSize,
               false);
      }
      if (m.sharedExpertSize) {
        linear("mlp.shared_expert.gate_proj", m.sharedExpertSize, h, false);
        linear("mlp.shared_expert.up_proj", m.sharedExpertSize, h, false);
        linear("mlp.shared_expert.down_proj", h, m.sharedExpertSize, false);
        linear("mlp.shared_expert_gate", 1, h, false);
      }
      continue;
    }
    if (c.fusedProjections) {
      linear("mlp.gate_up_proj", 2 * ffn, h, c.mlpBias);
    } else {
      linear("mlp.gate_proj", ffn, h, c.mlpBias);
      linear("mlp.up_proj", ffn, h, c.mlpBias);
    }
    linear("mlp.down_proj", h, ffn, c.mlpBias);
  }
  add("model.norm.weight", {h}, norm);
  if (!c.tieWordEmbeddings)
    add("lm_head.weight", {c.vocabSize, h}, ParamInit::Normal);
  return specs;
}

//===----------------------------------------------------------------------===//
// Deterministic weights and prompts
//===----------------------------------------------------------------------===//

namespace {
/// FNV-1a, then splitmix64: a per-tensor seed stable across platforms.
uint64_t mixSeed(uint64_t seed, StringRef name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : name)
    h = (h ^ ch) * 0x100000001b3ULL;
  uint64_t z = seed + h + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
} // namespace

std::vector<float> greta::hf::generateParamValues(const ParamSpec &spec,
                                                  uint64_t seed) {
  size_t n = spec.numElements();
  switch (spec.init) {
  case ParamInit::Ones:
    return std::vector<float>(n, 1.0f);
  case ParamInit::Zeros:
    return std::vector<float>(n, 0.0f);
  case ParamInit::Normal:
    break;
  }
  constexpr double kStd = 0.02, kTwoPi = 6.283185307179586476925286766559;
  // mt19937_64's output sequence is fixed by the C++ standard; the normal
  // transform is ours (Box-Muller), not std::normal_distribution's.
  std::mt19937_64 rng(mixSeed(seed, spec.name));
  auto uniform01 = [&] { // in (0, 1]: log() below never sees 0
    return static_cast<double>((rng() >> 11) + 1) * 0x1.0p-53;
  };
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i += 2) {
    double r = std::sqrt(-2.0 * std::log(uniform01()));
    double theta = kTwoPi * uniform01();
    v[i] = static_cast<float>(kStd * r * std::cos(theta));
    if (i + 1 < n)
      v[i + 1] = static_cast<float>(kStd * r * std::sin(theta));
  }
  return v;
}

std::vector<int64_t> greta::hf::generatePrompt(int64_t length, int64_t vocab,
                                               uint64_t seed) {
  std::vector<int64_t> ids;
  if (length <= 0 || vocab <= 3)
    return ids;
  ids.reserve(length);
  ids.push_back(1);
  std::mt19937_64 rng(mixSeed(seed, "greta.prompt"));
  uint64_t span = static_cast<uint64_t>(vocab - 3);
  for (int64_t i = 1; i < length; ++i) {
    // Multiply-shift maps 64 random bits onto [0, span) without a modulo.
    unsigned __int128 wide = static_cast<unsigned __int128>(rng()) * span;
    ids.push_back(3 + static_cast<int64_t>(wide >> 64));
  }
  return ids;
}

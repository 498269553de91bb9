//===- LlamaConfig.cpp - Read and check an HF config.json -------*- C++ -*-===//
//
// llvm::json gives the line and column of syntax errors; for a key that is
// present but wrong we find its line and column in the text, so every
// diagnostic points at the culprit: `config.json:4:3: error: key ...`.
//
//===----------------------------------------------------------------------===//
#include "greta/Target/HF/LlamaConfig.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

#include <cmath>
#include <random>

using namespace greta::hf;
using llvm::StringRef;
namespace json = llvm::json;

namespace {

/// Reads typed keys of the top-level object, emitting located errors.
class ConfigReader {
public:
  /// `objBegin` is the offset of the object's '{' in `text`.
  ConfigReader(StringRef text, StringRef fileName, mlir::MLIRContext &ctx,
               const json::Object &obj, size_t objBegin)
      : text(text), fileName(fileName), ctx(ctx), obj(obj), objBegin(objBegin) {
  }

  /// Offset of the last `"key":` directly inside this object (the one
  /// json::parse keeps, as Python's json does), or npos. Keys of nested
  /// objects and strings that merely contain the key do not count.
  size_t keyOffset(StringRef key) const {
    size_t found = StringRef::npos;
    int depth = 0;
    for (size_t i = objBegin; i < text.size(); ++i) {
      char ch = text[i];
      if (ch == '"') {
        size_t start = i++;
        while (i < text.size() && text[i] != '"')
          i += text[i] == '\\' ? 2 : 1;
        if (depth != 1 || text.slice(start + 1, i) != key)
          continue;
        size_t after = text.find_first_not_of(" \t\r\n", i + 1);
        if (after != StringRef::npos && text[after] == ':')
          found = start;
      } else if (ch == '{' || ch == '[') {
        ++depth;
      } else if ((ch == '}' || ch == ']') && --depth == 0) {
        break;
      }
    }
    return found;
  }

  /// Offset of the value of `key` (npos when absent).
  size_t valueOffset(StringRef key) const {
    size_t k = keyOffset(key);
    if (k == StringRef::npos)
      return k;
    size_t colon = text.find(':', k + key.size() + 2);
    return text.find_first_not_of(" \t\r\n", colon + 1);
  }

  /// Location of `"key":` in the text (the object's start when absent).
  mlir::Location locOf(StringRef key) const {
    size_t k = keyOffset(key);
    return locAtOffset(k == StringRef::npos ? objBegin : k);
  }

  mlir::InFlightDiagnostic error(StringRef key) const {
    return mlir::emitError(locOf(key));
  }

  /// The value of `key`, or null when absent or JSON null.
  const json::Value *get(StringRef key) const {
    const json::Value *v = obj.get(key);
    if (!v || v->kind() == json::Value::Null)
      return nullptr;
    return v;
  }

  mlir::FailureOr<int64_t> getInt(StringRef key,
                                  std::optional<int64_t> dflt = {}) const {
    const json::Value *v = get(key);
    if (!v) {
      if (dflt)
        return *dflt;
      return missing(key, "a positive integer");
    }
    std::optional<int64_t> i = v->getAsInteger();
    if (!i)
      return wrongType(key, "an integer", *v);
    if (*i <= 0) {
      error(key) << "key '" << key << "' must be positive, got " << *i;
      return mlir::failure();
    }
    return *i;
  }

  mlir::FailureOr<double> getNumber(StringRef key,
                                    std::optional<double> dflt = {}) const {
    const json::Value *v = get(key);
    if (!v) {
      if (dflt)
        return *dflt;
      return missing(key, "a positive number");
    }
    std::optional<double> d = v->getAsNumber();
    if (!d)
      return wrongType(key, "a number", *v);
    if (!(*d > 0) || !std::isfinite(*d)) {
      error(key) << "key '" << key << "' must be a positive number, got " << *d;
      return mlir::failure();
    }
    return *d;
  }

  mlir::FailureOr<bool> getBool(StringRef key, bool dflt) const {
    const json::Value *v = get(key);
    if (!v)
      return dflt;
    std::optional<bool> b = v->getAsBoolean();
    if (!b)
      return wrongType(key, "a boolean", *v);
    return *b;
  }

  /// An optional string key; "" when absent.
  mlir::FailureOr<std::string> getString(StringRef key) const {
    const json::Value *v = get(key);
    if (!v)
      return std::string();
    std::optional<StringRef> s = v->getAsString();
    if (!s)
      return wrongType(key, "a string", *v);
    return s->str();
  }

  mlir::LogicalResult missing(StringRef key, StringRef expected) const {
    mlir::emitError(locAtOffset(objBegin))
        << "missing required key '" << key << "' (" << expected << ")";
    return mlir::failure();
  }

  mlir::LogicalResult wrongType(StringRef key, StringRef expected,
                                const json::Value &got) const {
    std::string shown;
    llvm::raw_string_ostream os(shown);
    os << got;
    if (shown.size() > 40)
      shown = shown.substr(0, 37) + "...";
    error(key) << "key '" << key << "' must be " << expected << ", got "
               << kindName(got) << " " << shown;
    return mlir::failure();
  }

  static StringRef kindName(const json::Value &v) {
    switch (v.kind()) {
    case json::Value::Null:
      return "null";
    case json::Value::Boolean:
      return "boolean";
    case json::Value::Number:
      return "number";
    case json::Value::String:
      return "string";
    case json::Value::Array:
      return "array";
    case json::Value::Object:
      return "object";
    }
    return "value";
  }

  mlir::Location locAtOffset(size_t offset) const {
    StringRef before = text.take_front(offset);
    unsigned line = 1 + before.count('\n');
    size_t lineStart = before.rfind('\n');
    unsigned col =
        offset - (lineStart == StringRef::npos ? 0 : lineStart + 1) + 1;
    return mlir::FileLineColLoc::get(&ctx, fileName, line, col);
  }

private:
  StringRef text, fileName;
  mlir::MLIRContext &ctx;
  const json::Object &obj;
  size_t objBegin;
};

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

  // model_type first: everything else is read the Llama way.
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
  if (c.modelType != "llama" && c.modelType != "mistral") {
    r.error("model_type") << "unsupported model_type '" << c.modelType
                          << "' (supported: " << kSupportedModelTypes << ")";
    return mlir::failure();
  }

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
  READ(rmsNormEps, r.getNumber("rms_norm_eps"));
  READ(ropeTheta, r.getNumber("rope_theta", 10000.0));
  READ(tieWordEmbeddings, r.getBool("tie_word_embeddings", false));
  READ(attentionBias, r.getBool("attention_bias", false));
  READ(mlpBias, r.getBool("mlp_bias", false));

  bool explicitHeadDim = r.get("head_dim") != nullptr;
  if (explicitHeadDim) {
    READ(headDim, r.getInt("head_dim"));
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

  // What the graph cannot express is an error, never silently dropped.
  auto act = r.getString("hidden_act");
  if (mlir::failed(act))
    return mlir::failure();
  if (!act->empty() && *act != "silu") {
    r.error("hidden_act") << "unsupported hidden_act '" << *act
                          << "' (supported: silu, as SwiGLU)";
    return mlir::failure();
  }
  if (const json::Value *scaling = r.get("rope_scaling")) {
    std::string shown;
    llvm::raw_string_ostream(shown) << *scaling;
    r.error("rope_scaling") << "unsupported: key 'rope_scaling' must be null "
                               "or absent (plain RoPE only), got "
                            << shown;
    return mlir::failure();
  }
  // transformers >= 4.56 may write rope_parameters instead of rope_theta.
  if (const json::Value *params = r.get("rope_parameters")) {
    const json::Object *p = params->getAsObject();
    if (!p) {
      (void)r.wrongType("rope_parameters", "an object", *params);
      return mlir::failure();
    }
    ConfigReader pr(text, fileName, ctx, *p, r.valueOffset("rope_parameters"));
    auto type = pr.getString("rope_type");
    if (mlir::failed(type))
      return mlir::failure();
    if (!type->empty() && *type != "default") {
      pr.error("rope_type") << "unsupported: 'rope_parameters' has rope_type '"
                            << *type << "' (plain RoPE, 'default', only)";
      return mlir::failure();
    }
    if (pr.get("rope_theta"))
      READ(ropeTheta, pr.getNumber("rope_theta"));
  }
  if (c.modelType == "mistral") {
    // Mistral is Llama plus a sliding window; without one it is the same graph.
    if (const json::Value *w = r.get("sliding_window")) {
      std::optional<int64_t> win = w->getAsInteger();
      if (!win) {
        (void)r.wrongType("sliding_window", "an integer or null", *w);
        return mlir::failure();
      }
      if (*win < c.maxPositionEmbeddings) {
        r.error("sliding_window")
            << "unsupported: model_type 'mistral' with 'sliding_window' ("
            << *win << ") below 'max_position_embeddings' ("
            << c.maxPositionEmbeddings
            << "): greta.attention has no sliding window";
        return mlir::failure();
      }
    }
  }
#undef READ

  // Every parameter's element count must fit in int64: the weight generator
  // and the runtime multiply the dimensions (getParamSpecs' shapes).
  {
    int64_t qDim, kvDim, n;
    auto mul = [](int64_t a, int64_t b, int64_t &out) {
      return __builtin_mul_overflow(a, b, &out);
    };
    if (mul(c.numHeads, c.headDim, qDim) ||
        mul(c.numKVHeads, c.headDim, kvDim) ||
        mul(c.vocabSize, c.hiddenSize, n) || mul(qDim, c.hiddenSize, n) ||
        mul(kvDim, c.hiddenSize, n) ||
        mul(c.intermediateSize, c.hiddenSize, n)) {
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
  add("model.embed_tokens.weight", {c.vocabSize, h}, ParamInit::Normal);
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    auto linear = [&](const std::string &mod, int64_t out, int64_t in,
                      bool bias) {
      add(p + mod + ".weight", {out, in}, ParamInit::Normal);
      if (bias) // HF initialises linear biases to zero.
        add(p + mod + ".bias", {out}, ParamInit::Zeros);
    };
    add(p + "input_layernorm.weight", {h}, ParamInit::Ones);
    linear("self_attn.q_proj", qDim, h, c.attentionBias);
    linear("self_attn.k_proj", kvDim, h, c.attentionBias);
    linear("self_attn.v_proj", kvDim, h, c.attentionBias);
    linear("self_attn.o_proj", h, qDim, c.attentionBias);
    add(p + "post_attention_layernorm.weight", {h}, ParamInit::Ones);
    linear("mlp.gate_proj", ffn, h, c.mlpBias);
    linear("mlp.up_proj", ffn, h, c.mlpBias);
    linear("mlp.down_proj", h, ffn, c.mlpBias);
  }
  add("model.norm.weight", {h}, ParamInit::Ones);
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

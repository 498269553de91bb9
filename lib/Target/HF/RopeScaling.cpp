//===- RopeScaling.cpp - RoPE scaling: config keys and tables ---*- C++ -*-===//
//
// HF transformers' modeling_rope_utils, as the importer needs it: which keys
// each rope_type reads (anything else is an error naming it), and the
// inverse frequencies and attention factor each type computes. HF computes
// the tables in fp32 from Python floats; GRETA computes them in f64 and the
// kernels round them to the compute dtype once (docs/MODELS.md).
//
//===----------------------------------------------------------------------===//
#include "ConfigReader.h"
#include "greta/Dialect/Greta/RopeLlama3.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSwitch.h"

#include <algorithm>
#include <cmath>

using namespace greta::hf;
using greta::hf::detail::ConfigReader;
using llvm::StringRef;
namespace json = llvm::json;

namespace {
using Kind = RopeScaling::Kind;

std::optional<Kind> kindOf(StringRef type) {
  return llvm::StringSwitch<std::optional<Kind>>(type)
      .Case("default", Kind::None)
      .Case("linear", Kind::Linear)
      .Case("dynamic", Kind::Dynamic)
      .Case("llama3", Kind::Llama3)
      .Case("yarn", Kind::Yarn)
      .Case("longrope", Kind::LongRope)
      .Default(std::nullopt);
}

/// The keys a rope_type reads (besides rope_type/type, rope_theta and
/// partial_rotary_factor, read for every type).
llvm::ArrayRef<StringRef> keysOf(Kind kind) {
  static const StringRef none[] = {"original_max_position_embeddings"};
  static const StringRef linear[] = {"factor",
                                     "original_max_position_embeddings"};
  static const StringRef llama3[] = {"factor", "low_freq_factor",
                                     "high_freq_factor",
                                     "original_max_position_embeddings"};
  static const StringRef yarn[] = {
      "factor",    "original_max_position_embeddings",
      "beta_fast", "beta_slow",
      "mscale",    "mscale_all_dim",
      "truncate",  "attention_factor"};
  static const StringRef longrope[] = {"factor", "short_factor", "long_factor",
                                       "attention_factor",
                                       "original_max_position_embeddings"};
  switch (kind) {
  case Kind::None:
    return none;
  case Kind::Linear:
  case Kind::Dynamic:
    return linear;
  case Kind::Llama3:
    return llama3;
  case Kind::Yarn:
    return yarn;
  case Kind::LongRope:
    return longrope;
  }
  return {};
}

/// original_max_position_embeddings: in the RoPE object, else at the top
/// level (Phi-3 writes it there), else `fallback` (0: required).
mlir::FailureOr<int64_t> originalMax(const ConfigReader &rope,
                                     const ConfigReader &top,
                                     int64_t fallback, StringRef objectKey) {
  if (rope.get("original_max_position_embeddings"))
    return rope.getInt("original_max_position_embeddings");
  if (top.get("original_max_position_embeddings"))
    return top.getInt("original_max_position_embeddings");
  if (fallback)
    return fallback;
  top.error(objectKey) << "'" << objectKey
                       << "' needs 'original_max_position_embeddings' (the "
                          "context length the model was trained with)";
  return mlir::failure();
}
} // namespace

mlir::LogicalResult greta::hf::detail::parseRope(const ConfigReader &r,
                                                 LlamaConfig &c) {
  auto theta = r.getNumber("rope_theta", 10000.0);
  if (mlir::failed(theta))
    return mlir::failure();
  c.ropeTheta = *theta;
  const json::Value *scaling = r.get("rope_scaling");
  const json::Value *params = r.get("rope_parameters");
  if (scaling && params) {
    r.error("rope_parameters")
        << "both 'rope_scaling' and 'rope_parameters' are given; keep one "
           "(transformers 5 writes 'rope_parameters')";
    return mlir::failure();
  }
  StringRef key = params ? "rope_parameters" : "rope_scaling";
  const json::Value *value = params ? params : scaling;
  if (!value)
    return mlir::success();
  const json::Object *obj = value->getAsObject();
  if (!obj)
    return r.wrongType(key, "an object", *value);
  ConfigReader p = r.nested(key, *obj);

  // rope_type, or `type` as older configs spell it.
  StringRef typeKey = p.get("rope_type") ? "rope_type" : "type";
  auto type = p.getString(typeKey);
  if (mlir::failed(type))
    return mlir::failure();
  if (type->empty())
    type = std::string("default");
  std::optional<Kind> kind = kindOf(*type);
  if (!kind) {
    p.error(typeKey) << "unsupported rope_type '" << *type << "' in '" << key
                     << "' (supported: default, linear, dynamic, llama3, "
                        "yarn, longrope)";
    return mlir::failure();
  }
  RopeScaling &rs = c.rope;
  rs.kind = *kind;
  rs.type = *type;
  for (const std::string &k : p.keys()) {
    if (k == "rope_type" || k == "type" || k == "rope_theta" ||
        k == "partial_rotary_factor" || llvm::is_contained(keysOf(*kind), k))
      continue;
    p.error(k) << "unsupported key '" << k << "' in '" << key
               << "' for rope_type '" << *type << "'";
    return mlir::failure();
  }
  if (p.get("rope_theta")) {
    auto t = p.getNumber("rope_theta");
    if (mlir::failed(t))
      return mlir::failure();
    c.ropeTheta = *t;
  }
  if (const json::Value *f = p.get("partial_rotary_factor")) {
    std::optional<double> v = f->getAsNumber();
    if (!v || *v != 1.0) {
      p.error("partial_rotary_factor")
          << "unsupported: 'partial_rotary_factor' must be 1.0 (greta.rope "
             "rotates whole heads)";
      return mlir::failure();
    }
  }

  auto number = [&](StringRef k, double &out) -> mlir::LogicalResult {
    auto v = p.getNumber(k);
    if (mlir::failed(v))
      return mlir::failure();
    out = *v;
    return mlir::success();
  };
  auto optional = [&](StringRef k,
                      std::optional<double> &out) -> mlir::LogicalResult {
    auto v = p.getOptionalNumber(k);
    if (mlir::failed(v))
      return mlir::failure();
    out = *v;
    return mlir::success();
  };
  switch (rs.kind) {
  case Kind::None:
    return mlir::success();
  case Kind::Linear:
  case Kind::Dynamic:
    return number("factor", rs.factor);
  case Kind::Llama3: {
    if (mlir::failed(number("factor", rs.factor)) ||
        mlir::failed(number("low_freq_factor", rs.lowFreqFactor)) ||
        mlir::failed(number("high_freq_factor", rs.highFreqFactor)))
      return mlir::failure();
    if (rs.highFreqFactor <= rs.lowFreqFactor) {
      p.error("high_freq_factor")
          << "'high_freq_factor' (" << rs.highFreqFactor
          << ") must exceed 'low_freq_factor' (" << rs.lowFreqFactor << ")";
      return mlir::failure();
    }
    auto orig = originalMax(p, r, 0, key);
    if (mlir::failed(orig))
      return mlir::failure();
    rs.originalMaxPositionEmbeddings = *orig;
    return mlir::success();
  }
  case Kind::Yarn: {
    auto orig = originalMax(p, r, 0, key);
    if (mlir::failed(orig))
      return mlir::failure();
    rs.originalMaxPositionEmbeddings = *orig;
    std::optional<double> factor, betaFast, betaSlow;
    if (mlir::failed(optional("factor", factor)) ||
        mlir::failed(optional("beta_fast", betaFast)) ||
        mlir::failed(optional("beta_slow", betaSlow)) ||
        mlir::failed(optional("mscale", rs.mscale)) ||
        mlir::failed(optional("mscale_all_dim", rs.mscaleAllDim)) ||
        mlir::failed(optional("attention_factor", rs.attentionFactor)))
      return mlir::failure();
    // HF: factor None -> max_position_embeddings / original; `or 32`.
    rs.factor = factor ? *factor
                       : double(c.maxPositionEmbeddings) /
                             double(rs.originalMaxPositionEmbeddings);
    rs.betaFast = betaFast && *betaFast != 0 ? *betaFast : 32;
    rs.betaSlow = betaSlow && *betaSlow != 0 ? *betaSlow : 1;
    auto truncate = p.getBool("truncate", true);
    if (mlir::failed(truncate))
      return mlir::failure();
    rs.truncate = *truncate;
    if (!(rs.factor > 0)) {
      p.error("factor") << "yarn 'factor' must be positive, got " << rs.factor;
      return mlir::failure();
    }
    return mlir::success();
  }
  case Kind::LongRope: {
    auto orig = originalMax(p, r, c.maxPositionEmbeddings, key);
    if (mlir::failed(orig))
      return mlir::failure();
    rs.originalMaxPositionEmbeddings = *orig;
    size_t half = static_cast<size_t>(c.headDim / 2);
    auto shortF = p.getNumberArray("short_factor", half);
    if (mlir::failed(shortF))
      return mlir::failure();
    auto longF = p.getNumberArray("long_factor", half);
    if (mlir::failed(longF))
      return mlir::failure();
    rs.shortFactor = std::move(*shortF);
    rs.longFactor = std::move(*longF);
    std::optional<double> factor;
    if (mlir::failed(optional("factor", factor)) ||
        mlir::failed(optional("attention_factor", rs.attentionFactor)))
      return mlir::failure();
    rs.factor = factor ? *factor
                       : double(c.maxPositionEmbeddings) /
                             double(rs.originalMaxPositionEmbeddings);
    return mlir::success();
  }
  }
  return mlir::success();
}

RopeTables greta::hf::computeRopeTables(const LlamaConfig &c) {
  const RopeScaling &rs = c.rope;
  RopeTables t;
  int64_t dim = c.headDim, half = dim / 2;
  double base = c.ropeTheta;
  // theta^(2i/d): HF's base ** (arange(0, d, 2) / d).
  auto posFreq = [&](int64_t i) {
    return std::pow(base, double(2 * i) / double(dim));
  };
  switch (rs.kind) {
  case Kind::None:
    break;
  case Kind::Linear:
    for (int64_t i = 0; i < half; ++i)
      t.invFreq.push_back(1.0 / posFreq(i) / rs.factor);
    break;
  case Kind::Dynamic:
    t.dynamicFactor = rs.factor;
    t.dynamicMaxPosition = c.maxPositionEmbeddings;
    break;
  case Kind::Llama3:
    t.invFreq = greta::llama3InvFreq(base, dim, rs.factor, rs.lowFreqFactor,
                                     rs.highFreqFactor,
                                     double(rs.originalMaxPositionEmbeddings));
    break;
  case Kind::Yarn: {
    auto mscale = [](double scale, double m) {
      return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
    };
    if (rs.attentionFactor)
      t.attentionFactor = *rs.attentionFactor;
    else if (rs.mscale && *rs.mscale != 0 && rs.mscaleAllDim &&
             *rs.mscaleAllDim != 0)
      t.attentionFactor =
          mscale(rs.factor, *rs.mscale) / mscale(rs.factor, *rs.mscaleAllDim);
    else
      t.attentionFactor = mscale(rs.factor, 1);
    double orig = double(rs.originalMaxPositionEmbeddings);
    auto correctionDim = [&](double rotations) {
      return (dim * std::log(orig / (rotations * 2 * M_PI))) /
             (2 * std::log(base));
    };
    double low = correctionDim(rs.betaFast), high = correctionDim(rs.betaSlow);
    if (rs.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, double(dim - 1));
    if (low == high)
      high += 0.001; // HF: prevent a singular ramp
    for (int64_t i = 0; i < half; ++i) {
      double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
      double extrapolation = 1 - ramp;
      double pf = posFreq(i);
      t.invFreq.push_back(1.0 / (rs.factor * pf) * (1 - extrapolation) +
                          1.0 / pf * extrapolation);
    }
    break;
  }
  case Kind::LongRope: {
    double orig = double(rs.originalMaxPositionEmbeddings);
    if (rs.attentionFactor)
      t.attentionFactor = *rs.attentionFactor;
    else if (rs.factor > 1.0)
      t.attentionFactor = std::sqrt(1 + std::log(rs.factor) / std::log(orig));
    for (int64_t i = 0; i < half; ++i) {
      t.invFreq.push_back(1.0 / (rs.shortFactor[i] * posFreq(i)));
      t.longInvFreq.push_back(1.0 / (rs.longFactor[i] * posFreq(i)));
    }
    t.longFrom = rs.originalMaxPositionEmbeddings;
    break;
  }
  }
  return t;
}

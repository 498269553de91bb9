//===- ImportHFConfig.cpp - HF Llama config to greta IR ---------*- C++ -*-===//
//
// One function @forward(tokens, positions) -> logits with the layers
// unrolled. Every op gets a NameLoc naming the HF module it stands for
// (model.layers.3.self_attn.q_proj), so diagnostics and trace reports speak
// HF's language. Each greta.param is created right before its first use:
// the IR then reads top to bottom like HF's forward(), and a parameter's
// definition sits next to the op that consumes it.
//
//===----------------------------------------------------------------------===//
#include "greta/Target/HF/ImportHFConfig.h"
#include "greta/Dialect/Greta/IR/GretaOps.h"
#include "greta/Dialect/Greta/Transforms/Utils.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

using namespace mlir;
using namespace ::greta::hf;

namespace {

class LlamaModuleBuilder {
public:
  LlamaModuleBuilder(const LlamaConfig &config, MLIRContext &ctx)
      : c(config), ctx(ctx), b(&ctx), f32(b.getF32Type()) {
    for (size_t i = 0, e = specStorage.size(); i < e; ++i)
      specs.try_emplace(specStorage[i].name, i);
  }

  OwningOpRef<ModuleOp> build();

private:
  Location loc(const Twine &hfName) {
    return NameLoc::get(StringAttr::get(&ctx, hfName));
  }
  /// [?, dim] f32: every activation is a sequence of rows.
  RankedTensorType act(int64_t dim) {
    return RankedTensorType::get({ShapedType::kDynamic, dim}, f32);
  }
  void tag(Operation *op, StringRef stage, int64_t layer) {
    mlir::greta::addStageTags(op,
                              mlir::greta::StageAttr::get(&ctx, stage, layer));
  }

  /// The parameter `name`, created at the current point on first use. The
  /// name must be one of getParamSpecs(): the one list the weight generator
  /// also reads.
  Value param(const std::string &name) {
    auto cached = params.find(name);
    if (cached != params.end())
      return cached->second;
    auto it = specs.find(name);
    if (it == specs.end())
      llvm::report_fatal_error(llvm::Twine("importer uses parameter '") + name +
                               "' that getParamSpecs() does not list");
    const ParamSpec &spec = specStorage[it->second];
    auto type = RankedTensorType::get(spec.shape, f32);
    Value v = mlir::greta::ParamOp::create(b, loc(name), type, name);
    params[name] = v;
    return v;
  }

  /// x . W^T (+ bias) for the HF Linear module `module`.
  Value linear(Value x, const std::string &module, bool bias) {
    Value w = param(module + ".weight");
    Value bv = bias ? param(module + ".bias") : Value();
    int64_t out = cast<RankedTensorType>(w.getType()).getDimSize(0);
    return mlir::greta::LinearOp::create(b, loc(module), act(out), x, w, bv);
  }

  /// RMSNorm of the HF module `module`: over whole rows, or per head of
  /// `headDim` columns (Qwen3's q_norm/k_norm); Gemma scales by (1 + w).
  Value rmsNorm(Value x, const std::string &module, int64_t headDim = 0) {
    Value w = param(module + ".weight");
    auto norm = mlir::greta::RMSNormOp::create(
        b, loc(module), x.getType(), x, w, b.getF64FloatAttr(c.rmsNormEps),
        /*head_dim=*/nullptr, /*weight_offset=*/nullptr);
    if (headDim)
      norm.setHeadDimAttr(b.getI64IntegerAttr(headDim));
    if (c.normAddsOne)
      norm.setWeightOffsetAttr(b.getF64FloatAttr(1.0));
    return norm;
  }

  /// Columns [offset, offset + width) of every row: how HF splits Phi-3's
  /// fused projections (qkv[..., :q], gate_up.chunk(2, -1)).
  Value columns(Value x, int64_t offset, int64_t width, const Twine &name) {
    Value rows = tensor::DimOp::create(b, loc(name), x, 0);
    SmallVector<OpFoldResult> offsets{b.getIndexAttr(0),
                                      b.getIndexAttr(offset)};
    SmallVector<OpFoldResult> sizes{rows, b.getIndexAttr(width)};
    SmallVector<OpFoldResult> strides{b.getIndexAttr(1), b.getIndexAttr(1)};
    return tensor::ExtractSliceOp::create(b, loc(name), act(width), x, offsets,
                                          sizes, strides);
  }

  /// RoPE with the config's scaling (tables computed once, RopeScaling.cpp).
  Value rope(Value x, Value positions, const Twine &name) {
    auto type = cast<RankedTensorType>(x.getType());
    auto op = mlir::greta::RoPEOp::create(b, loc(name), type, x, positions,
                                          b.getF64FloatAttr(c.ropeTheta),
                                          b.getI64IntegerAttr(c.headDim),
                                          nullptr, nullptr, nullptr, nullptr,
                                          nullptr, nullptr);
    if (!rt.invFreq.empty())
      op.setInvFreqAttr(b.getDenseF64ArrayAttr(rt.invFreq));
    if (!rt.longInvFreq.empty()) {
      op.setLongInvFreqAttr(b.getDenseF64ArrayAttr(rt.longInvFreq));
      op.setLongFromAttr(b.getI64IntegerAttr(rt.longFrom));
    }
    if (rt.dynamicFactor) {
      op.setDynamicFactorAttr(b.getF64FloatAttr(rt.dynamicFactor));
      op.setDynamicMaxPositionAttr(b.getI64IntegerAttr(rt.dynamicMaxPosition));
    }
    if (rt.attentionFactor != 1.0)
      op.setAttentionFactorAttr(b.getF64FloatAttr(rt.attentionFactor));
    return op;
  }

  Value layer(Value x, int64_t l, Value positions);
  Value mixtureOfExperts(Value x, int64_t l, const std::string &p);

  const LlamaConfig &c;
  const RopeTables rt = computeRopeTables(c);
  MLIRContext &ctx;
  OpBuilder b;
  Type f32;
  std::vector<ParamSpec> specStorage = getParamSpecs(c);
  llvm::StringMap<size_t> specs;
  llvm::StringMap<Value> params;
};

Value LlamaModuleBuilder::layer(Value x, int64_t l, Value positions) {
  std::string p = "model.layers." + std::to_string(l) + ".";
  int64_t qDim = c.numHeads * c.headDim, kvDim = c.numKVHeads * c.headDim;

  Value h = rmsNorm(x, p + "input_layernorm");
  tag(h.getDefiningOp(), "attn_in", l);

  // Execution order q, k, v, rope(q), rope(k): the trace order of the seed.
  // q/k_pre_rope are what RoPE receives (Qwen3: after q_norm/k_norm).
  Value q, k, v;
  if (c.fusedProjections) {
    Value qkv = linear(h, p + "self_attn.qkv_proj", c.attentionBias);
    q = columns(qkv, 0, qDim, p + "self_attn.query_states");
    k = columns(qkv, qDim, kvDim, p + "self_attn.key_states");
    v = columns(qkv, qDim + kvDim, kvDim, p + "self_attn.value_states");
  } else {
    q = linear(h, p + "self_attn.q_proj", c.attentionBias);
    if (c.qkNorm)
      q = rmsNorm(q, p + "self_attn.q_norm", c.headDim);
    k = linear(h, p + "self_attn.k_proj", c.attentionBias);
    if (c.qkNorm)
      k = rmsNorm(k, p + "self_attn.k_norm", c.headDim);
    v = linear(h, p + "self_attn.v_proj", c.attentionBias);
  }
  tag(q.getDefiningOp(), "q_pre_rope", l);
  tag(k.getDefiningOp(), "k_pre_rope", l);
  tag(v.getDefiningOp(), "v_proj", l);

  Value qr = rope(q, positions, p + "self_attn.rope_q");
  tag(qr.getDefiningOp(), "q_post_rope", l);
  Value kr = rope(k, positions, p + "self_attn.rope_k");
  tag(kr.getDefiningOp(), "k_post_rope", l);

  auto attn = mlir::greta::AttentionOp::create(
      b, loc(p + "self_attn.attn"), act(qDim), qr, kr, v, positions,
      b.getI64IntegerAttr(c.numHeads), b.getI64IntegerAttr(c.numKVHeads),
      b.getI64IntegerAttr(c.headDim),
      b.getF64FloatAttr(1.0 / std::sqrt(double(c.headDim))),
      b.getI64IntegerAttr(l), /*sliding_window=*/nullptr);
  if (int64_t window = c.windowOf(l))
    attn.setSlidingWindowAttr(b.getI64IntegerAttr(window));
  Value o = linear(attn, p + "self_attn.o_proj", c.oProjBias);
  tag(o.getDefiningOp(), "attn_out", l);
  Value r1 = mlir::greta::AddOp::create(b, loc(p + "residual_attn"), x, o);
  tag(r1.getDefiningOp(), "residual_post_attn", l);

  Value f = rmsNorm(r1, p + "post_attention_layernorm");
  tag(f.getDefiningOp(), "ffn_norm_in", l);
  if (c.moe.isSparse(l)) {
    Value m = mixtureOfExperts(f, l, p);
    Value r2 = mlir::greta::AddOp::create(b, loc(p + "residual_mlp"), r1, m);
    tag(r2.getDefiningOp(), "residual_post_mlp", l);
    if (l + 1 < c.numLayers)
      tag(r2.getDefiningOp(), "residual_pre_attn", l + 1);
    return r2;
  }
  Value g, u;
  int64_t ffn = c.intermediateSize;
  if (c.fusedProjections) {
    // Phi-3: gate, up = gate_up_proj(x).chunk(2, dim=-1).
    Value gu = linear(f, p + "mlp.gate_up_proj", c.mlpBias);
    g = columns(gu, 0, ffn, p + "mlp.gate");
    u = columns(gu, ffn, ffn, p + "mlp.up_states");
  } else {
    g = linear(f, p + "mlp.gate_proj", c.mlpBias);
    u = linear(f, p + "mlp.up_proj", c.mlpBias);
  }
  Value s = c.geluTanh
                ? Value(mlir::greta::GeGLUOp::create(b, loc(p + "mlp.act_fn"),
                                                     g, u))
                : Value(mlir::greta::SwiGLUOp::create(
                      b, loc(p + "mlp.act_fn"), g, u));
  Value m = linear(s, p + "mlp.down_proj", c.mlpBias);
  tag(m.getDefiningOp(), "mlp_out", l);
  Value r2 = mlir::greta::AddOp::create(b, loc(p + "residual_mlp"), r1, m);
  tag(r2.getDefiningOp(), "residual_post_mlp", l);
  // The next layer's input is this value: one op, two tags.
  if (l + 1 < c.numLayers)
    tag(r2.getDefiningOp(), "residual_pre_attn", l + 1);
  return r2;
}

/// HF's sparse MoE block: router logits, softmax then top-k (renormalised
/// when the config says so), each expert's SwiGLU MLP added in expert-id
/// order with its routing weight on the rows routed to it (the experts run
/// on every row; the rows not routed to an expert are not added), then
/// Qwen2-MoE's shared expert times sigmoid(its gate).
Value LlamaModuleBuilder::mixtureOfExperts(Value f, int64_t l,
                                           const std::string &p) {
  const MoEConfig &m = c.moe;
  std::string block = p + (m.mixtralNames ? "block_sparse_moe." : "mlp.");
  Value logits = linear(f, block + "gate", false);
  tag(logits.getDefiningOp(), "router_logits", l);
  Value selection = mlir::greta::MoERouterOp::create(
      b, loc(block + "router"), act(2 * m.expertsPerToken), logits,
      b.getI64IntegerAttr(m.expertsPerToken), b.getBoolAttr(m.normalize),
      Value(), IntegerAttr());
  tag(selection.getDefiningOp(), "expert_selection", l);
  auto swigluMlp = [&](const std::string &mod, StringRef gate, StringRef up,
                       StringRef down) {
    Value g = linear(f, mod + gate.str(), false);
    Value u = linear(f, mod + up.str(), false);
    Value s = mlir::greta::SwiGLUOp::create(b, loc(mod + "act_fn"), g, u);
    return linear(s, mod + down.str(), false);
  };
  Value acc;
  for (int64_t e = 0; e < m.numExperts; ++e) {
    std::string ex = block + "experts." + std::to_string(e) + ".";
    Value y = m.mixtralNames
                  ? swigluMlp(ex, "w1", "w3", "w2")
                  : swigluMlp(ex, "gate_proj", "up_proj", "down_proj");
    acc = mlir::greta::MoEAccumulateOp::create(
        b, loc(block + "experts." + std::to_string(e)), act(c.hiddenSize), y,
        selection, acc, b.getI64IntegerAttr(e));
  }
  tag(acc.getDefiningOp(), "moe_out", l);
  if (!m.sharedExpertSize) {
    tag(acc.getDefiningOp(), "mlp_out", l);
    return acc;
  }
  std::string shared = p + "mlp.shared_expert.";
  Value s = swigluMlp(shared, "gate_proj", "up_proj", "down_proj");
  Value gate = linear(f, p + "mlp.shared_expert_gate", false);
  Value out = mlir::greta::SigmoidGateAddOp::create(
      b, loc(p + "mlp.shared_expert_add"), act(c.hiddenSize), acc, s, gate);
  tag(out.getDefiningOp(), "mlp_out", l);
  return out;
}

OwningOpRef<ModuleOp> LlamaModuleBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc(c.name));
  ModuleOp m = *module;
  auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
  // The config travels with the IR so greta-run can check prompts and
  // weights against it without the config.json.
  m->setAttr("greta.model", b.getStringAttr(c.name));
  m->setAttr("greta.model_type", b.getStringAttr(c.modelType));
  m->setAttr(mlir::greta::GretaDialect::getNumLayersAttrName(),
             i64(c.numLayers));
  m->setAttr("greta.hidden_size", i64(c.hiddenSize));
  m->setAttr("greta.num_attention_heads", i64(c.numHeads));
  m->setAttr("greta.num_key_value_heads", i64(c.numKVHeads));
  m->setAttr("greta.head_dim", i64(c.headDim));
  m->setAttr("greta.intermediate_size", i64(c.intermediateSize));
  m->setAttr("greta.vocab_size", i64(c.vocabSize));
  // greta-run refuses prompts longer than this, except under dynamic NTK
  // scaling, which defines RoPE past max_position_embeddings (it rescales
  // the base there): that is the range it exists for.
  if (c.rope.kind != RopeScaling::Kind::Dynamic)
    m->setAttr("greta.max_position_embeddings", i64(c.maxPositionEmbeddings));
  m->setAttr("greta.rms_norm_eps", b.getF64FloatAttr(c.rmsNormEps));
  m->setAttr("greta.rope_theta", b.getF64FloatAttr(c.ropeTheta));
  m->setAttr("greta.tie_word_embeddings", b.getBoolAttr(c.tieWordEmbeddings));
  if (c.rope.kind != RopeScaling::Kind::None)
    m->setAttr("greta.rope_type", b.getStringAttr(c.rope.type));
  if (c.moe.numExperts) {
    m->setAttr("greta.num_experts", i64(c.moe.numExperts));
    m->setAttr("greta.num_experts_per_tok", i64(c.moe.expertsPerToken));
  }

  auto ids = RankedTensorType::get({ShapedType::kDynamic}, b.getI64Type());
  auto logitsType = act(c.vocabSize);
  b.setInsertionPointToEnd(m.getBody());
  auto func = func::FuncOp::create(b, loc(c.name + ".forward"), "forward",
                                   b.getFunctionType({ids, ids}, logitsType));
  func.setArgAttr(1, mlir::greta::kPositionsArgAttr, b.getUnitAttr());
  Block *entry = func.addEntryBlock();
  entry->getArgument(0).setLoc(loc("input_ids"));
  entry->getArgument(1).setLoc(loc("position_ids"));
  b.setInsertionPointToStart(entry);
  Value tokens = entry->getArgument(0), positions = entry->getArgument(1);

  Value table = param("model.embed_tokens.weight");
  Value x = mlir::greta::EmbeddingOp::create(b, loc("model.embed_tokens"),
                                             act(c.hiddenSize), table, tokens);
  // Gemma: the embedding times sqrt(hidden_size) enters the residual stream.
  if (c.scaleEmbedding)
    x = mlir::greta::ScaleOp::create(
        b, loc("model.embed_tokens.normalizer"), x,
        b.getF64FloatAttr(std::sqrt(double(c.hiddenSize))));
  tag(x.getDefiningOp(), "embed_out", 0);
  tag(x.getDefiningOp(), "residual_pre_attn", 0);
  for (int64_t l = 0; l < c.numLayers; ++l)
    x = layer(x, l, positions);

  Value n = rmsNorm(x, "model.norm");
  // Tied embeddings: the LM head is the embedding table itself.
  Value head = c.tieWordEmbeddings ? param("model.embed_tokens.weight")
                                   : param("lm_head.weight");
  Value logits = mlir::greta::LinearOp::create(b, loc("lm_head"), logitsType, n,
                                               head, Value());
  tag(logits.getDefiningOp(), "logits", c.numLayers - 1);
  func::ReturnOp::create(b, loc("lm_head"), logits);

  if (params.size() != specs.size())
    llvm::report_fatal_error("getParamSpecs() lists a parameter the importer "
                             "never uses");
  return module;
}

} // namespace

namespace greta::hf {

OwningOpRef<ModuleOp> buildLlamaModule(const LlamaConfig &config,
                                       MLIRContext &context) {
  context.loadDialect<mlir::greta::GretaDialect, func::FuncDialect,
                      tensor::TensorDialect>();
  return LlamaModuleBuilder(config, context).build();
}

OwningOpRef<ModuleOp> importHFConfig(llvm::StringRef text,
                                     llvm::StringRef fileName,
                                     MLIRContext &context,
                                     llvm::StringRef name) {
  FailureOr<LlamaConfig> config =
      parseLlamaConfig(text, fileName, context, name);
  if (failed(config))
    return nullptr;
  OwningOpRef<ModuleOp> module = buildLlamaModule(*config, context);
  // A failure here is an importer bug; the verifier says where.
  if (failed(verify(*module)))
    return nullptr;
  return module;
}

OwningOpRef<ModuleOp> importHFConfigFile(llvm::StringRef path,
                                         MLIRContext &context,
                                         llvm::StringRef name) {
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (std::error_code ec = buffer.getError()) {
    emitError(UnknownLoc::get(&context))
        << "cannot read '" << path << "': " << ec.message();
    return nullptr;
  }
  return importHFConfig((*buffer)->getBuffer(), path, context, name);
}

} // namespace greta::hf

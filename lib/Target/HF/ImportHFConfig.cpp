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

  Value rmsNorm(Value x, const std::string &module) {
    Value w = param(module + ".weight");
    return mlir::greta::RMSNormOp::create(b, loc(module), x.getType(), x, w,
                                          b.getF64FloatAttr(c.rmsNormEps));
  }

  Value layer(Value x, int64_t l, Value positions);

  const LlamaConfig &c;
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
  Value q = linear(h, p + "self_attn.q_proj", c.attentionBias);
  tag(q.getDefiningOp(), "q_pre_rope", l);
  Value k = linear(h, p + "self_attn.k_proj", c.attentionBias);
  tag(k.getDefiningOp(), "k_pre_rope", l);
  Value v = linear(h, p + "self_attn.v_proj", c.attentionBias);

  auto theta = b.getF64FloatAttr(c.ropeTheta);
  auto headDim = b.getI64IntegerAttr(c.headDim);
  Value qr = mlir::greta::RoPEOp::create(
      b, loc(p + "self_attn.rope_q"), act(qDim), q, positions, theta, headDim);
  tag(qr.getDefiningOp(), "q_post_rope", l);
  Value kr = mlir::greta::RoPEOp::create(
      b, loc(p + "self_attn.rope_k"), act(kvDim), k, positions, theta, headDim);
  tag(kr.getDefiningOp(), "k_post_rope", l);

  Value a = mlir::greta::AttentionOp::create(
      b, loc(p + "self_attn.attn"), act(qDim), qr, kr, v, positions,
      b.getI64IntegerAttr(c.numHeads), b.getI64IntegerAttr(c.numKVHeads),
      headDim, b.getF64FloatAttr(1.0 / std::sqrt(double(c.headDim))),
      b.getI64IntegerAttr(l));
  Value o = linear(a, p + "self_attn.o_proj", c.attentionBias);
  tag(o.getDefiningOp(), "attn_out", l);
  Value r1 = mlir::greta::AddOp::create(b, loc(p + "residual_attn"), x, o);
  tag(r1.getDefiningOp(), "residual_post_attn", l);

  Value f = rmsNorm(r1, p + "post_attention_layernorm");
  tag(f.getDefiningOp(), "ffn_norm_in", l);
  Value g = linear(f, p + "mlp.gate_proj", c.mlpBias);
  Value u = linear(f, p + "mlp.up_proj", c.mlpBias);
  Value s = mlir::greta::SwiGLUOp::create(b, loc(p + "mlp.act_fn"), g, u);
  Value m = linear(s, p + "mlp.down_proj", c.mlpBias);
  tag(m.getDefiningOp(), "mlp_out", l);
  Value r2 = mlir::greta::AddOp::create(b, loc(p + "residual_mlp"), r1, m);
  tag(r2.getDefiningOp(), "residual_post_mlp", l);
  // The next layer's input is this value: one op, two tags.
  if (l + 1 < c.numLayers)
    tag(r2.getDefiningOp(), "residual_pre_attn", l + 1);
  return r2;
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
  m->setAttr("greta.max_position_embeddings", i64(c.maxPositionEmbeddings));
  m->setAttr("greta.rms_norm_eps", b.getF64FloatAttr(c.rmsNormEps));
  m->setAttr("greta.rope_theta", b.getF64FloatAttr(c.ropeTheta));
  m->setAttr("greta.tie_word_embeddings", b.getBoolAttr(c.tieWordEmbeddings));

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
  context.loadDialect<mlir::greta::GretaDialect, func::FuncDialect>();
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

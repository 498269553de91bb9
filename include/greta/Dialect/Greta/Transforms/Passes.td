//===- Passes.td - greta passes ----------------------------*- tablegen -*-===//
#ifndef GRETA_TRANSFORMS_PASSES_TD
#define GRETA_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def InsertTrace : Pass<"greta-insert-trace", "::mlir::ModuleOp"> {
  let summary = "Insert a greta.trace after every selected tagged stage";
  let description = [{
    For every op carrying `greta.stages` tags, inserts one `greta.trace` per
    selected (stage, layer) tag right after the op, in tag order. Each trace
    carries the stage, the layer, the stable record id
    (`layer * 16 + stage index`, greta/rt/Stages.h), the payload kind and the
    location of the producing op. Idempotent: a (stage, layer) already traced
    is not traced again, and the traces that follow an op stay in tag order.

    Options are checked before anything changes: an unknown stage or payload,
    a negative layer, or a layer at or above the module's `greta.num_layers`
    fail the pass with an error on the module.

    ```mlir
    // --greta-insert-trace="stages=attn_out layers=0"
    %o = greta.linear %a, %w {greta.stages = [#greta.stage<"attn_out", 0>]} : ...
    greta.trace %o {layer = 0 : i64, payload = #greta<payload hash>,
                    record_id = 7 : i64, stage = "attn_out"} : tensor<?x256xf32>
    ```
  }];
  let options = [
    ListOption<"stages", "stages", "std::string",
               "Stages to trace (default: all 13 of the seed)">,
    ListOption<"layers", "layers", "int64_t",
               "Layers to trace (default: all)">,
    Option<"payload", "payload", "std::string", /*default=*/"\"hash\"",
           "What each record carries: hash | stats | full">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

def StripTrace : Pass<"greta-strip-trace", "::mlir::ModuleOp"> {
  let summary = "Remove every greta.trace";
  let description = [{
    Erases every `greta.trace` of the module; the stage tags stay, so
    `greta-insert-trace` can instrument the graph again with other options.
  }];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

def InjectFault : Pass<"greta-inject-fault", "::mlir::ModuleOp"> {
  let summary = "Perturb one tagged stage at one layer from a token position on";
  let description = [{
    Validates GRETA's own detectors and lets users rehearse a study: the
    value tagged (stage, layer) is replaced by a perturbed copy for every row
    whose position is >= from-position. The target tag, the value's tags later
    in execution order and every use move to the `greta.perturb`, so traces of
    that stage (inserted before or after this pass) record the fault; tags
    earlier in execution order (residual_post_mlp of layer L when the target
    is residual_pre_attn of L+1) keep naming the clean value. The model function needs an argument marked
    `greta.positions`. Exactly one op may carry the (stage, layer) tag.

    Errors (on the module or on the tagged op): unknown stage, missing or
    negative layer, unknown kind, negative from-position, a bitflip index not
    below the element width, no value or several values tagged (stage, layer),
    no positions argument. A fault that would perturb nothing is an error,
    never a silent no-op: a layer not below the module's `greta.num_layers`,
    a from-position not below its `greta.max_position_embeddings`.
  }];
  let options = [
    Option<"stage", "stage", "std::string", "\"\"", "Stage to perturb">,
    Option<"layer", "layer", "int64_t", "-1", "Layer to perturb">,
    Option<"fromPosition", "from-position", "int64_t", "0",
           "First token position perturbed">,
    Option<"kind", "kind", "std::string", "\"scale\"",
           "scale | offset | bitflip">,
    Option<"magnitude", "magnitude", "double", "1.01",
           "Factor (scale), addend (offset) or bit index (bitflip)">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def RopeLlama3Fault : Pass<"greta-rope-llama3-fault", "::mlir::ModuleOp"> {
  let summary = "Plant a wrong llama3 RoPE table (a smoothing-band bug) at one layer";
  let description = [{
    A planted bug for validating GRETA on RoPE scaling (docs/MODELS.md):
    the `greta.rope` ops tagged q_post_rope and k_post_rope at `layer` get
    the llama3 frequencies computed with the options instead of the model's
    (HF's _compute_llama3_parameters; `theta` and `head_dim` are the op's).
    Give the model's own factor, high-freq-factor and
    original-max-position and a wrong low-freq-factor to move the smoothing
    band's low edge, as a kernel that read the wrong config field would.

    Errors: a missing or out-of-range layer, a non-positive option,
    high-freq-factor not above low-freq-factor, no RoPE op tagged at that
    layer, a RoPE op without a frequency table (not RoPE-scaled: the fault
    would replace plain RoPE, not plant a bug in the scaling), and a table
    that comes out unchanged (the options are the model's own: the fault
    would be a silent no-op).
  }];
  let options = [
    Option<"layer", "layer", "int64_t", "-1", "Layer whose q/k RoPE is faulty">,
    Option<"factor", "factor", "double", "0", "llama3 factor">,
    Option<"lowFreqFactor", "low-freq-factor", "double", "0",
           "llama3 low_freq_factor (the planted, wrong value)">,
    Option<"highFreqFactor", "high-freq-factor", "double", "0",
           "llama3 high_freq_factor">,
    Option<"originalMaxPosition", "original-max-position", "int64_t", "0",
           "llama3 original_max_position_embeddings">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

def MoERouterFault : Pass<"greta-moe-router-fault", "::mlir::ModuleOp"> {
  let summary = "Plant an off-by-one expert index in one layer's router";
  let description = [{
    A planted bug for validating GRETA on mixture-of-experts models
    (docs/MODELS.md): the `greta.moe_router` tagged expert_selection at
    `layer` reports, on rows at a position >= `from-position`, every chosen
    expert id one too high (id + 1 mod the number of experts), as a router
    kernel with an off-by-one index would. The weights are unchanged, so
    the tokens are sent to the wrong experts with the right weights.

    Errors: a missing or out-of-range layer, a negative from-position, and
    no router tagged expert_selection at that layer (a dense layer).
  }];
  let options = [
    Option<"layer", "layer", "int64_t", "-1", "Layer whose router is faulty">,
    Option<"fromPosition", "from-position", "int64_t", "0",
           "First token position whose expert ids are shifted">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

def ConvertPrecision : Pass<"greta-convert-precision", "::mlir::ModuleOp"> {
  let summary = "Run the graph in f64 (reference) or emulate f16/bf16";
  let description = [{
    `precision=f64` rewrites every f32 tensor type of the graph to f64:
    function signatures, block arguments, op results and dense f32 constants
    (parameters are converted on load). `precision=f16|bf16` keeps f32 storage
    and inserts a `greta.round` after every greta compute op and every tagged
    op that produces an f32/f64 tensor, emulating a half-precision engine on
    the CPU; the stage tags move to the round so traces see rounded values.
    `precision=f32` changes nothing.

    `keep-f32` (half modes only) names what is *not* rounded: stage names
    (`residual_post_attn`, `logits`, ...: an op carrying that tag) and greta
    op names (`rms_norm` or `greta.rms_norm`). It answers "which roundings
    does the error come from?" and models engines that keep, say, the
    residual stream in f32:

    ```
    greta-run ... --precision bf16 --pass-pipeline \
      'greta-convert-precision{precision=bf16 keep-f32=residual_post_attn,residual_post_mlp}'
    ```

    A half mode stamps the module with `greta.emulated_precision`. Running
    the pass again with the same precision changes nothing (so the pipeline
    above composes with `--precision bf16`), unless it asks for another
    `keep-f32`; another precision, a late `keep-f32` and an unknown stage or
    op are errors.
  }];
  let options = [
    Option<"precision", "precision", "std::string", "\"f32\"",
           "f32 | f64 | f16 | bf16">,
    ListOption<"keepF32", "keep-f32", "std::string",
               "f16/bf16: stages or greta ops whose results are not rounded">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

def MergeDuplicateStages
    : Pass<"greta-merge-duplicate-stages", "::mlir::ModuleOp"> {
  let summary = "CSE of two tagged ops merges their tags";
  let description = [{
    MLIR's `--cse` compares discardable attributes, so two ops identical but
    for their `greta.stages` tags are both kept. This pass merges ops that are
    equivalent when `greta.stages` is ignored (same name, operands, result
    types, properties and other attributes; no memory effects; no regions):
    the later op is replaced by the earlier one when the earlier dominates it,
    and the tag sets are united (the kept op's tags first, then the new ones;
    never dropping one). Locations are ignored, the kept op keeps its own.

    ```mlir
    %a = greta.add %x, %y {greta.stages = [#greta.stage<"mlp_out", 0>]} : ...
    %b = greta.add %x, %y {greta.stages = [#greta.stage<"residual_post_mlp", 0>]} : ...
    // becomes
    %a = greta.add %x, %y {greta.stages = [#greta.stage<"mlp_out", 0>,
                                           #greta.stage<"residual_post_mlp", 0>]} : ...
    ```
  }];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

#endif // GRETA_TRANSFORMS_PASSES_TD

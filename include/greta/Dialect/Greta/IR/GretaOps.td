//===- GretaOps.td - greta ops -----------------------------*- tablegen -*-===//
#ifndef GRETA_OPS_TD
#define GRETA_OPS_TD

include "greta/Dialect/Greta/IR/GretaDialect.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"

def Greta_FloatTensor : RankedTensorOf<[F16, BF16, F32, F64]>;
def Greta_IndexTensor : RankedTensorOf<[I32, I64]>;
def Greta_FloatTensorOrMemRef : AnyTypeOf<[Greta_FloatTensor, MemRefOf<[F16, BF16, F32, F64]>]>;

def Greta_ParamOp : Greta_Op<"param", [Pure]> {
  let summary = "A named model parameter (weight) by its HF safetensors name";
  let description = [{
    `%w = greta.param "model.layers.0.self_attn.q_proj.weight" : tensor<256x256xf32>`
    binds a weight of the checkpoint. The shape is static; the runtime checks
    the checkpoint against it at load time.
  }];
  let arguments = (ins StrAttr:$name);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Greta_EmbeddingOp : Greta_Op<"embedding", [Pure]> {
  let summary = "Embedding gather: row ids[i] of the table";
  let description = [{
    `result[i, :] = table[ids[i], :]`. The table is [vocab, hidden], ids a
    1-D tensor of i32 or i64, the result [len(ids), hidden] with the table's
    element type.
  }];
  let arguments = (ins Greta_FloatTensor:$table, Greta_IndexTensor:$ids);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$table `,` $ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_RMSNormOp : Greta_Op<"rms_norm", [Pure]> {
  let summary = "RMSNorm over the last dimension: x / sqrt(mean(x^2) + eps) * w";
  let description = [{
    Input [seq, hidden], weight [hidden] of the same element type; the
    result has the input's type. `eps` must be positive and finite.

    With `head_dim` (Qwen3's q_norm/k_norm) each group of head_dim columns is
    normalised on its own and the weight is [head_dim]; the input's width
    must be a static multiple of it. With `weight_offset` (Gemma: 1.0) the
    normalised row is scaled by (weight_offset + w) instead of w.
  }];
  let arguments = (ins Greta_FloatTensor:$input, Greta_FloatTensor:$weight, F64Attr:$eps,
                       OptionalAttr<I64Attr>:$head_dim, OptionalAttr<F64Attr>:$weight_offset);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_LinearOp : Greta_Op<"linear", [Pure]> {
  let summary = "x . W^T (+ bias), W in the HF [out, in] layout";
  let description = [{
    Input [seq, in], weight [out, in], optional bias [out], result
    [seq, out], all of one element type. Written
    `greta.linear %x, %w bias %b : (...) -> ...` with a bias.
  }];
  let arguments = (ins Greta_FloatTensor:$input, Greta_FloatTensor:$weight,
                       Optional<Greta_FloatTensor>:$bias);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$input `,` $weight (`bias` $bias^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_RoPEOp : Greta_Op<"rope", [Pure]> {
  let summary = "Rotary position embedding, rotate-half (HF transformers' convention)";
  let description = [{
    For each head of `head_dim` columns and each pair i < head_dim/2:
    inv_freq_i = theta^(-2i/head_dim), angle = positions[row] * inv_freq_i,
    out[i] = x[i]*cos - x[i+d/2]*sin, out[i+d/2] = x[i+d/2]*cos + x[i]*sin.
    The input is [seq, heads*head_dim] with a static width that head_dim
    (positive, even) divides; positions is [seq] of i32 or i64; theta is
    positive and finite; the result has the input's type.

    RoPE scaling (HF's rope_scaling, docs/MODELS.md) replaces inv_freq:
    - `inv_freq` (head_dim/2 positive values): the frequencies (linear,
      llama3, yarn, and longrope's short factors);
    - `long_inv_freq` and `long_from` (longrope): a call whose largest
      position + 1 exceeds long_from uses long_inv_freq instead;
    - `dynamic_factor` and `dynamic_max_position` (dynamic NTK): the base
      theta is rescaled to theta * (f*L/m - (f-1))^(d/(d-2)), L = max(largest
      position of the call + 1, m);
    - `attention_factor`: cos and sin are multiplied by it (yarn, longrope).
  }];
  let arguments = (ins Greta_FloatTensor:$input, Greta_IndexTensor:$positions,
                       F64Attr:$theta, I64Attr:$head_dim,
                       OptionalAttr<DenseF64ArrayAttr>:$inv_freq,
                       OptionalAttr<DenseF64ArrayAttr>:$long_inv_freq,
                       OptionalAttr<I64Attr>:$long_from,
                       OptionalAttr<F64Attr>:$dynamic_factor,
                       OptionalAttr<I64Attr>:$dynamic_max_position,
                       OptionalAttr<F64Attr>:$attention_factor);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The RoPE scaling attributes are consistent (GretaOps.cpp).
    ::mlir::LogicalResult verifyScaling();
  }];
}

def Greta_AttentionOp : Greta_Op<"attention", [
    MemoryEffects<[MemRead<Greta_KVCacheResource>, MemWrite<Greta_KVCacheResource>]>]> {
  let summary = "Causal grouped-query attention (softmax(QK^T * scale) V)";
  let description = [{
    q is [seq, num_heads*head_dim], k and v are [seq, num_kv_heads*head_dim].
    A query at position p attends to every key at a position <= p: the keys of
    this call and those written to the run's KV cache (slot `cache_slot`) by
    earlier calls, so a prompt prefilled in chunks computes the same function.
    With `sliding_window` W (Mistral, Qwen2, Phi-3) it sees only the keys at
    positions > p - W (HF's sliding-window mask: W keys, itself included).
    num_heads must be a multiple of num_kv_heads (GQA); q, k, v, positions
    and the result have one row per token; scale is positive and finite,
    cache_slot non-negative. The result has q's type.
  }];
  let arguments = (ins Greta_FloatTensor:$q, Greta_FloatTensor:$k, Greta_FloatTensor:$v,
                       Greta_IndexTensor:$positions,
                       I64Attr:$num_heads, I64Attr:$num_kv_heads, I64Attr:$head_dim,
                       F64Attr:$scale, I64Attr:$cache_slot,
                       OptionalAttr<I64Attr>:$sliding_window);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$q `,` $k `,` $v `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_SwiGLUOp : Greta_Op<"swiglu", [Pure, SameOperandsAndResultType]> {
  let summary = "silu(gate) * up";
  let description = [{
    Elementwise `gate * sigmoid(gate) * up`; operands and result have one
    type.
  }];
  let arguments = (ins Greta_FloatTensor:$gate, Greta_FloatTensor:$up);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Greta_GeGLUOp : Greta_Op<"geglu", [Pure, SameOperandsAndResultType]> {
  let summary = "gelu_tanh(gate) * up (Gemma's MLP)";
  let description = [{
    Elementwise `0.5 * gate * (1 + tanh(sqrt(2/pi) * (gate + 0.044715 *
    gate^3))) * up`: PyTorch's GELU with approximate='tanh' (HF's
    gelu_pytorch_tanh). Operands and result have one type.
  }];
  let arguments = (ins Greta_FloatTensor:$gate, Greta_FloatTensor:$up);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def Greta_ScaleOp : Greta_Op<"scale", [Pure, SameOperandsAndResultType]> {
  let summary = "x * factor (Gemma's embedding times sqrt(hidden_size))";
  let description = [{
    Every element times `factor` (finite, non-zero), rounded to the element
    type first: HF builds the factor as a tensor of the activation dtype.
  }];
  let arguments = (ins Greta_FloatTensor:$input, F64Attr:$factor);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Greta_MoERouterOp : Greta_Op<"moe_router", [Pure]> {
  let summary = "Mixture-of-experts routing: softmax, top-k, renormalised";
  let description = [{
    Per row of router logits [seq, E]: p = softmax(logits) (computed in the
    element type), the `top_k` largest p in rank order (ties to the lower
    expert id), their weights p (divided by their sum when `normalize`: Mixtral
    always, Qwen's norm_topk_prob). The result is [seq, 2*top_k]: the k expert
    ids as floats, then their k weights (the `expert_selection` stage).
    1 <= top_k <= E; E static; the result has the logits' element type.

    A planted bug (`greta-moe-router-fault`): with `positions` and
    `fault_from_position`, rows at a position >= it report every chosen id
    shifted by one (id + 1 mod E), an off-by-one expert index.
  }];
  let arguments = (ins Greta_FloatTensor:$logits, I64Attr:$top_k, BoolAttr:$normalize,
                       Optional<Greta_IndexTensor>:$positions,
                       OptionalAttr<I64Attr>:$fault_from_position);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$logits (`positions` $positions^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_MoEAccumulateOp : Greta_Op<"moe_accumulate", [Pure]> {
  let summary = "acc + w * expert_out on the rows routed to `expert`";
  let description = [{
    One expert's share of a mixture-of-experts output, as HF adds it
    (index_add of expert_out * w, experts in id order): on each row whose
    selection [seq, 2k] (greta.moe_router) lists `expert` with weight w,
    result = acc + expert_out * w; on the other rows result = acc. Without
    `acc` the sum starts from zeros. expert_out, acc and the result are
    [seq, hidden] of one type; 0 <= expert.
  }];
  let arguments = (ins Greta_FloatTensor:$expert_out, Greta_FloatTensor:$selection,
                       Optional<Greta_FloatTensor>:$acc, I64Attr:$expert);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$expert_out `,` $selection (`into` $acc^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_SigmoidGateAddOp : Greta_Op<"sigmoid_gate_add", [Pure]> {
  let summary = "x + sigmoid(gate) * y (Qwen2-MoE's gated shared expert)";
  let description = [{
    x and y are [seq, hidden] of one type, gate [seq, 1] of that element
    type; every element of row i is x + sigmoid(gate[i]) * y.
  }];
  let arguments = (ins Greta_FloatTensor:$x, Greta_FloatTensor:$y, Greta_FloatTensor:$gate);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$x `,` $y `,` $gate attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_AddOp : Greta_Op<"add", [Pure, SameOperandsAndResultType, Commutative]> {
  let summary = "Elementwise add (the residual connection)";
  let description = [{
    Operands and result have one type.
  }];
  let arguments = (ins Greta_FloatTensor:$lhs, Greta_FloatTensor:$rhs);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Greta_TraceOp : Greta_Op<"trace", [MemoryEffects<[MemWrite<Greta_TraceResource>]>]> {
  let summary = "Record a traced tensor: one record per row (token position)";
  let description = [{
    Has no results; its write on the trace resource keeps it alive through
    DCE, canonicalize and CSE. Bufferizable: it reads its operand and writes
    no buffer. `record_id` is stable across builds (`layer * 16 + stage
    index`, see greta/rt/Stages.h) and must match (stage, layer); the layer
    is below the module's `greta.num_layers`. The op's location is the
    location of the op that produced the value. The operand is a ranked
    float tensor or memref of rank >= 1 (one record per row).
  }];
  let arguments = (ins Greta_FloatTensorOrMemRef:$input, StrAttr:$stage, I64Attr:$layer,
                       I64Attr:$record_id, Greta_PayloadAttr:$payload);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasVerifier = 1;
}

def Greta_PerturbOp : Greta_Op<"perturb", [Pure]> {
  let summary = "A planted fault: perturb rows whose position is >= from_position";
  let description = [{
    Inserted by `greta-inject-fault` to validate GRETA's detectors. `kind` is
    scale (x * magnitude), offset (x + magnitude) or bitflip (flip bit
    `magnitude` of each element's bit pattern). Rows before `from_position`
    pass through unchanged.
  }];
  let arguments = (ins Greta_FloatTensor:$input, Greta_IndexTensor:$positions,
                       I64Attr:$from_position, StrAttr:$kind, F64Attr:$magnitude);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Greta_RoundOp : Greta_Op<"round", [Pure, SameOperandsAndResultType]> {
  let summary = "Round every element to f16 or bf16, keeping the storage type";
  let description = [{
    Inserted by `greta-convert-precision precision=f16|bf16` after every op
    so a half-precision engine is emulated on the CPU (round to nearest even).
  }];
  let arguments = (ins Greta_FloatTensor:$input, StrAttr:$to);
  let results = (outs Greta_FloatTensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Greta_KernelOp : Greta_Op<"kernel", [AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>,
    DeclareOpInterfaceMethods<DestinationStyleOpInterface>]> {
  let summary = "A call into the kernel library in destination-passing style";
  let description = [{
    The lowering target of every greta compute op: `callee` names a function
    of the backend's kernel library (`greta_cpu_rms_norm_f32`, ...). On
    tensors it returns the `outs` tensors it fills; after bufferization it
    works on memrefs, has no results, reads `ins` and writes `outs`. Scalar
    operands (eps, theta, head counts) travel in `ins`. `stateful` marks a
    kernel that reads and writes the run's state (the KV cache), which keeps it
    in order.
  }];
  let arguments = (ins StrAttr:$callee, Variadic<AnyType>:$ins, Variadic<AnyShaped>:$outs,
                       UnitAttr:$stateful);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = [{
    $callee (`ins` `(` $ins^ `:` type($ins) `)`)? `outs` `(` $outs `:` type($outs) `)`
    attr-dict (`->` type($results)^)?
  }];
  let hasVerifier = 1;
}

#endif // GRETA_OPS_TD

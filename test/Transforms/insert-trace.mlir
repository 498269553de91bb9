// RUN: greta-opt %s -split-input-file --greta-insert-trace | FileCheck %s --check-prefix=DEFAULT
// Idempotent: a second run adds nothing, whatever its options.
// RUN: greta-opt %s -split-input-file --greta-insert-trace --greta-insert-trace | FileCheck %s --check-prefix=DEFAULT
// RUN: greta-opt %s -split-input-file --greta-insert-trace --greta-insert-trace="payload=full layers=0" | FileCheck %s --check-prefix=DEFAULT
// A partial run then a full one: the traces after an op stay in tag order.
// RUN: greta-opt %s -split-input-file --greta-insert-trace="stages=residual_pre_attn,logits payload=stats" --greta-insert-trace | FileCheck %s --check-prefix=PARTIAL
// RUN: greta-opt %s -split-input-file --greta-insert-trace="stages=attn_out,residual_pre_attn" | FileCheck %s --check-prefix=STAGES
// RUN: greta-opt %s -split-input-file --greta-insert-trace="layers=1" | FileCheck %s --check-prefix=LAYERS
// RUN: greta-opt %s -split-input-file --greta-insert-trace="stages=residual_pre_attn layers=1 payload=full" | FileCheck %s --check-prefix=FULL
// RUN: greta-opt %s -split-input-file --greta-insert-trace="payload=stats" | FileCheck %s --check-prefix=STATS
// RUN: greta-opt %s -split-input-file --greta-insert-trace -mlir-print-debuginfo -mlir-print-local-scope | FileCheck %s --check-prefix=LOC
// Bad options: a located, specific error and a non-zero exit.
// RUN: not greta-opt %s -split-input-file --greta-insert-trace="stages=attn_in,attn_output" 2>&1 | FileCheck %s --check-prefix=BAD-STAGE
// RUN: not greta-opt %s -split-input-file --greta-insert-trace="payload=sha1" 2>&1 | FileCheck %s --check-prefix=BAD-PAYLOAD
// RUN: not greta-opt %s -split-input-file --greta-insert-trace="layers=0,2" 2>&1 | FileCheck %s --check-prefix=BAD-RANGE
// RUN: not greta-opt %s -split-input-file --greta-insert-trace="layers=-1" 2>&1 | FileCheck %s --check-prefix=BAD-NEGATIVE

// A two-layer model reduced to its tagged values: the embedding is also
// layer 0's input, layer 0's output is also layer 1's input.

// BAD-STAGE: insert-trace.mlir:[[@LINE+5]]:1: error: greta-insert-trace: unknown stage 'attn_output' in option 'stages' (expected one of embed_out, residual_pre_attn, attn_in, q_pre_rope, k_pre_rope, v_proj, q_post_rope, k_post_rope, attn_out, residual_post_attn, ffn_norm_in, router_logits, expert_selection, moe_out, mlp_out, residual_post_mlp, logits)
// BAD-PAYLOAD: insert-trace.mlir:[[@LINE+4]]:1: error: greta-insert-trace: unknown payload 'sha1' in option 'payload' (expected hash, stats or full)
// BAD-RANGE: insert-trace.mlir:[[@LINE+3]]:1: error: greta-insert-trace: layer 2 in option 'layers' is out of range: the model has 2 layers (greta.num_layers)
// BAD-NEGATIVE: insert-trace.mlir:[[@LINE+2]]:1: error: greta-insert-trace: negative layer -1 in option 'layers'
// DEFAULT-LABEL: module attributes {greta.num_layers = 2 : i64}
module attributes {greta.num_layers = 2 : i64} {
  // DEFAULT-LABEL: func.func @forward
  // DEFAULT-NEXT: %[[E:.+]] = greta.embedding
  // DEFAULT-NEXT: greta.trace %[[E]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 0 : i64, stage = "embed_out"} : tensor<?x8xf32>
  // DEFAULT-NEXT: greta.trace %[[E]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 1 : i64, stage = "residual_pre_attn"} : tensor<?x8xf32>
  // DEFAULT-NEXT: %[[N:.+]] = greta.rms_norm %[[E]]
  // DEFAULT-NEXT: greta.trace %[[N]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 2 : i64, stage = "attn_in"} : tensor<?x8xf32>
  // DEFAULT-NEXT: %[[O:.+]] = greta.linear %[[N]]
  // DEFAULT-NEXT: greta.trace %[[O]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  // DEFAULT-NEXT: %[[R:.+]] = greta.add %[[E]], %[[O]]
  // DEFAULT-NEXT: greta.trace %[[R]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 11 : i64, stage = "residual_post_mlp"} : tensor<?x8xf32>
  // DEFAULT-NEXT: greta.trace %[[R]] {layer = 1 : i64, payload = #greta<payload hash>, record_id = 17 : i64, stage = "residual_pre_attn"} : tensor<?x8xf32>
  // DEFAULT-NEXT: %[[U:.+]] = greta.linear %[[R]]
  // DEFAULT-NEXT: %[[L:.+]] = greta.linear %[[U]]
  // DEFAULT-NEXT: greta.trace %[[L]] {layer = 1 : i64, payload = #greta<payload hash>, record_id = 28 : i64, stage = "logits"} : tensor<?x16xf32>
  // DEFAULT-NEXT: return %[[L]]

  // PARTIAL-LABEL: func.func @forward
  // PARTIAL-NEXT: %[[E:.+]] = greta.embedding
  // PARTIAL-NEXT: greta.trace %[[E]] {{{.*}}payload = #greta<payload hash>, record_id = 0 : i64, stage = "embed_out"}
  // PARTIAL-NEXT: greta.trace %[[E]] {{{.*}}payload = #greta<payload stats>, record_id = 1 : i64, stage = "residual_pre_attn"}
  // PARTIAL-NEXT: greta.rms_norm
  // PARTIAL-NEXT: greta.trace {{.*}}stage = "attn_in"
  // PARTIAL-NEXT: greta.linear
  // PARTIAL-NEXT: greta.trace {{.*}}stage = "attn_out"
  // PARTIAL-NEXT: %[[R:.+]] = greta.add
  // PARTIAL-NEXT: greta.trace %[[R]] {{{.*}}payload = #greta<payload hash>, record_id = 11 : i64, stage = "residual_post_mlp"}
  // PARTIAL-NEXT: greta.trace %[[R]] {{{.*}}payload = #greta<payload stats>, record_id = 17 : i64, stage = "residual_pre_attn"}
  // PARTIAL-NEXT: greta.linear
  // PARTIAL-NEXT: greta.linear
  // PARTIAL-NEXT: greta.trace {{.*}}payload = #greta<payload stats>, record_id = 28 : i64, stage = "logits"
  // PARTIAL-NEXT: return

  // STAGES-LABEL: func.func @forward
  // STAGES-NEXT: %[[E:.+]] = greta.embedding
  // STAGES-NEXT: greta.trace %[[E]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 1 : i64, stage = "residual_pre_attn"}
  // STAGES-NEXT: greta.rms_norm
  // STAGES-NEXT: %[[O:.+]] = greta.linear
  // STAGES-NEXT: greta.trace %[[O]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"}
  // STAGES-NEXT: %[[R:.+]] = greta.add
  // STAGES-NEXT: greta.trace %[[R]] {layer = 1 : i64, payload = #greta<payload hash>, record_id = 17 : i64, stage = "residual_pre_attn"}
  // STAGES-NEXT: greta.linear
  // STAGES-NEXT: greta.linear
  // STAGES-NEXT: return

  // LAYERS-LABEL: func.func @forward
  // LAYERS-NEXT: greta.embedding
  // LAYERS-NEXT: greta.rms_norm
  // LAYERS-NEXT: greta.linear
  // LAYERS-NEXT: %[[R:.+]] = greta.add
  // LAYERS-NEXT: greta.trace %[[R]] {layer = 1 : i64, payload = #greta<payload hash>, record_id = 17 : i64, stage = "residual_pre_attn"}
  // LAYERS-NEXT: greta.linear
  // LAYERS-NEXT: %[[L:.+]] = greta.linear
  // LAYERS-NEXT: greta.trace %[[L]] {layer = 1 : i64, payload = #greta<payload hash>, record_id = 28 : i64, stage = "logits"}
  // LAYERS-NEXT: return

  // FULL-LABEL: func.func @forward
  // FULL-NOT: greta.trace
  // FULL: greta.trace %{{.+}} {layer = 1 : i64, payload = #greta<payload full>, record_id = 17 : i64, stage = "residual_pre_attn"}
  // FULL-NOT: greta.trace
  // FULL: return

  // STATS-LABEL: func.func @forward
  // STATS-COUNT-7: greta.trace {{.*}}payload = #greta<payload stats>
  // STATS-NOT: greta.trace
  // STATS: return

  // The trace carries the location of the op that produced the value.
  // LOC-LABEL: func.func @forward
  // LOC-NEXT: greta.embedding {{.*}} loc("model.embed_tokens")
  // LOC-NEXT: greta.trace {{.*}}stage = "embed_out"} : tensor<?x8xf32> loc("model.embed_tokens")
  // LOC-NEXT: greta.trace {{.*}}stage = "residual_pre_attn"} : tensor<?x8xf32> loc("model.embed_tokens")
  // LOC-NEXT: greta.rms_norm {{.*}} loc("model.layers.0.input_layernorm")
  // LOC-NEXT: greta.trace {{.*}}stage = "attn_in"} : tensor<?x8xf32> loc("model.layers.0.input_layernorm")
  // LOC-NEXT: greta.linear {{.*}} loc("model.layers.0.self_attn.o_proj")
  // LOC-NEXT: greta.trace {{.*}}stage = "attn_out"} : tensor<?x8xf32> loc("model.layers.0.self_attn.o_proj")
  // LOC-NEXT: greta.add {{.*}} loc("model.layers.0.residual_mlp")
  // LOC-NEXT: greta.trace {{.*}}stage = "residual_post_mlp"} : tensor<?x8xf32> loc("model.layers.0.residual_mlp")
  // LOC-NEXT: greta.trace {{.*}}stage = "residual_pre_attn"} : tensor<?x8xf32> loc("model.layers.0.residual_mlp")
  func.func @forward(%tokens: tensor<?xi64>, %positions: tensor<?xi64> {greta.positions},
                     %table: tensor<16x8xf32>, %wn: tensor<8xf32>, %wo: tensor<8x8xf32>,
                     %head: tensor<16x8xf32>) -> tensor<?x16xf32> {
    %e = greta.embedding %table, %tokens {greta.stages = [#greta.stage<"embed_out", 0>, #greta.stage<"residual_pre_attn", 0>]} : (tensor<16x8xf32>, tensor<?xi64>) -> tensor<?x8xf32> loc("model.embed_tokens")
    %n = greta.rms_norm %e, %wn {eps = 1.0e-5 : f64, greta.stages = [#greta.stage<"attn_in", 0>]} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32> loc("model.layers.0.input_layernorm")
    %o = greta.linear %n, %wo {greta.stages = [#greta.stage<"attn_out", 0>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32> loc("model.layers.0.self_attn.o_proj")
    %r = greta.add %e, %o {greta.stages = [#greta.stage<"residual_post_mlp", 0>, #greta.stage<"residual_pre_attn", 1>]} : tensor<?x8xf32> loc("model.layers.0.residual_mlp")
    // An untagged op gets no trace.
    %u = greta.linear %r, %wo : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %l = greta.linear %u, %head {greta.stages = [#greta.stage<"logits", 1>]} : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32> loc("lm_head")
    return %l : tensor<?x16xf32>
  }
}

// -----

// Tags on a foreign op and on a memref-producing op are traced too; without
// greta.num_layers any non-negative layer is accepted.
// DEFAULT-LABEL: func.func @any_op
// DEFAULT-NEXT: %[[A:.+]] = arith.mulf
// DEFAULT-NEXT: greta.trace %[[A]] {layer = 5 : i64, payload = #greta<payload hash>, record_id = 90 : i64, stage = "mlp_out"} : tensor<?x8xf32>
// DEFAULT-NEXT: %[[M:.+]] = memref.alloc
// DEFAULT-NEXT: greta.trace %[[M]] {layer = 5 : i64, payload = #greta<payload hash>, record_id = 91 : i64, stage = "residual_post_mlp"} : memref<4x8xf32>
// DEFAULT-NEXT: return
func.func @any_op(%x: tensor<?x8xf32>) -> (tensor<?x8xf32>, memref<4x8xf32>) {
  %a = arith.mulf %x, %x {greta.stages = [#greta.stage<"mlp_out", 5>]} : tensor<?x8xf32>
  %m = memref.alloc() {greta.stages = [#greta.stage<"residual_post_mlp", 5>]} : memref<4x8xf32>
  return %a, %m : tensor<?x8xf32>, memref<4x8xf32>
}

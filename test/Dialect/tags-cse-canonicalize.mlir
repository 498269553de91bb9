// RUN: greta-opt %s -split-input-file --canonicalize | FileCheck %s --check-prefix=CANON
// RUN: greta-opt %s -split-input-file --cse | FileCheck %s --check-prefix=CSE
// RUN: greta-opt %s -split-input-file --greta-merge-duplicate-stages | FileCheck %s --check-prefix=MERGE
// RUN: greta-opt %s -split-input-file --greta-merge-duplicate-stages --greta-insert-trace | FileCheck %s --check-prefix=TRACE

// Stage tags are discardable attributes: canonicalize and CSE keep the ops
// that carry them (and so the tags); CSE merges two ops only when their tags
// are identical too; greta-merge-duplicate-stages merges ops that differ only
// in their tags and unites the tag sets.

// Tags survive canonicalize and CSE on ops that stay.
// CANON-LABEL: func.func @kept
// CANON-NEXT: greta.rms_norm {{.*}}greta.stages = [#greta.stage<"attn_in", 0>]
// CANON-NEXT: greta.add {{.*}}{greta.stages = [#greta.stage<"residual_post_attn", 0>, #greta.stage<"residual_pre_attn", 1>]}
// CSE-LABEL: func.func @kept
// CSE-NEXT: greta.rms_norm {{.*}}greta.stages = [#greta.stage<"attn_in", 0>]
// CSE-NEXT: greta.add {{.*}}{greta.stages = [#greta.stage<"residual_post_attn", 0>, #greta.stage<"residual_pre_attn", 1>]}
func.func @kept(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<?x8xf32> {
  %n = greta.rms_norm %x, %w {eps = 1.0e-5 : f64, greta.stages = [#greta.stage<"attn_in", 0>]} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %a = greta.add %n, %x {greta.stages = [#greta.stage<"residual_post_attn", 0>, #greta.stage<"residual_pre_attn", 1>]} : tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

// Two identical ops with identical tags: CSE keeps one, with its tags.
// CSE-LABEL: func.func @same_tags
// CSE-NEXT: %[[A:.+]] = greta.add %{{.+}}, %{{.+}} {greta.stages = [#greta.stage<"mlp_out", 0>]}
// CSE-NOT: greta.add
// CSE: greta.swiglu %[[A]], %[[A]]
// MERGE-LABEL: func.func @same_tags
// MERGE-NEXT: %[[A:.+]] = greta.add %{{.+}}, %{{.+}} {greta.stages = [#greta.stage<"mlp_out", 0>]}
// MERGE-NEXT: greta.swiglu %[[A]], %[[A]]
func.func @same_tags(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %a = greta.add %x, %y {greta.stages = [#greta.stage<"mlp_out", 0>]} : tensor<?x8xf32>
  %b = greta.add %x, %y {greta.stages = [#greta.stage<"mlp_out", 0>]} : tensor<?x8xf32>
  %s = greta.swiglu %a, %b : tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

// -----

// Identical but for their tags: MLIR's CSE compares discardable attributes
// and keeps both; greta-merge-duplicate-stages merges them and unites the
// tags (the kept op's first), and the ops that became identical through the
// merge (the two linears) merge too.
// CSE-LABEL: func.func @different_tags
// CSE-NEXT: %[[A:.+]] = greta.add {{.*}}[#greta.stage<"residual_post_attn", 0>]
// CSE-NEXT: %[[B:.+]] = greta.add {{.*}}[#greta.stage<"attn_out", 0>, #greta.stage<"residual_post_attn", 0>]
// CSE-NEXT: greta.linear %[[A]]
// CSE-NEXT: greta.linear %[[B]]
// MERGE-LABEL: func.func @different_tags
// MERGE-NEXT: %[[A:.+]] = greta.add %{{.+}}, %{{.+}} {greta.stages = [#greta.stage<"residual_post_attn", 0>, #greta.stage<"attn_out", 0>]}
// MERGE-NEXT: %[[L:.+]] = greta.linear %[[A]], %{{.+}} :
// MERGE-NEXT: %[[S:.+]] = greta.swiglu %[[L]], %[[L]]
// MERGE-NEXT: return %[[S]]
// TRACE-LABEL: func.func @different_tags
// TRACE-NEXT: %[[A:.+]] = greta.add
// TRACE-NEXT: greta.trace %[[A]] {{.*}}stage = "residual_post_attn"
// TRACE-NEXT: greta.trace %[[A]] {{.*}}stage = "attn_out"
// TRACE-NEXT: greta.linear
// TRACE-NEXT: greta.swiglu
// TRACE-NEXT: return
func.func @different_tags(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
  %a = greta.add %x, %y {greta.stages = [#greta.stage<"residual_post_attn", 0>]} : tensor<?x8xf32>
  %b = greta.add %x, %y {greta.stages = [#greta.stage<"attn_out", 0>, #greta.stage<"residual_post_attn", 0>]} : tensor<?x8xf32>
  %la = greta.linear %a, %w : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %lb = greta.linear %b, %w : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %s = greta.swiglu %la, %lb : tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

// -----

// An untagged twin merges into a tagged op and the other way round: the
// kept (earlier) op ends with every tag.
// MERGE-LABEL: func.func @untagged_twin
// MERGE-NEXT: %[[A:.+]] = greta.add %{{.+}}, %{{.+}} : tensor<?x8xf32>
// MERGE-NEXT: %[[B:.+]] = greta.add %[[A]], %{{.+}} {greta.stages = [#greta.stage<"mlp_out", 1>]}
// MERGE-NEXT: greta.swiglu %[[A]], %[[A]]
// MERGE-NEXT: greta.swiglu %[[B]], %[[B]]
// CSE keeps the untagged %b next to its tagged twin.
// CSE-LABEL: func.func @untagged_twin
// CSE-NEXT: %[[A:.+]] = greta.add %{{.+}}, %{{.+}} : tensor<?x8xf32>
// CSE-NEXT: %[[B:.+]] = greta.add %[[A]], %{{.+}} : tensor<?x8xf32>
// CSE-NEXT: %[[B2:.+]] = greta.add %[[A]], %{{.+}} {greta.stages = [#greta.stage<"mlp_out", 1>]}
// CSE-NEXT: greta.swiglu %[[A]], %[[A]]
// CSE-NEXT: greta.swiglu %[[B]], %[[B2]]
func.func @untagged_twin(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %a = greta.add %x, %y : tensor<?x8xf32>
  %a2 = greta.add %x, %y : tensor<?x8xf32>
  %b = greta.add %a, %y : tensor<?x8xf32>
  %b2 = greta.add %a2, %y {greta.stages = [#greta.stage<"mlp_out", 1>]} : tensor<?x8xf32>
  %s = greta.swiglu %a, %a2 : tensor<?x8xf32>
  %t = greta.swiglu %b, %b2 : tensor<?x8xf32>
  return %s, %t : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Not merged: other operands, other inherent attributes, memory effects, or
// ops in different functions (neither dominates the other).
// MERGE-LABEL: func.func @not_merged
// MERGE-NEXT: greta.add
// MERGE-NEXT: greta.add
// MERGE-NEXT: greta.rms_norm
// MERGE-NEXT: greta.rms_norm
// MERGE-NEXT: greta.attention
// MERGE-NEXT: greta.attention
// MERGE-NEXT: return
func.func @not_merged(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>, %w: tensor<8xf32>, %p: tensor<?xi64>) -> (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) {
  %a = greta.add %x, %y {greta.stages = [#greta.stage<"mlp_out", 0>]} : tensor<?x8xf32>
  %b = greta.add %x, %x {greta.stages = [#greta.stage<"mlp_out", 1>]} : tensor<?x8xf32>
  %n = greta.rms_norm %x, %w {eps = 1.0e-5 : f64, greta.stages = [#greta.stage<"attn_in", 0>]} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %m = greta.rms_norm %x, %w {eps = 1.0e-6 : f64, greta.stages = [#greta.stage<"attn_in", 1>]} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %o1 = greta.attention %x, %x, %x, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 2 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  %o2 = greta.attention %x, %x, %x, %p {cache_slot = 0 : i64, head_dim = 4 : i64, num_heads = 2 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  return %a, %b, %n, %m, %o1, %o2 : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>
}
// MERGE-LABEL: func.func @other_function
// MERGE-NEXT: greta.add {{.*}}#greta.stage<"mlp_out", 2>
func.func @other_function(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %a = greta.add %x, %y {greta.stages = [#greta.stage<"mlp_out", 2>]} : tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

// Tags work on any op: a tagged arith.addf is traced by greta-insert-trace,
// and canonicalize/CSE keep the tag and the trace. Two identical traces are
// both kept (they write the trace resource).
// CANON-LABEL: func.func @foreign_op
// CANON-NEXT: arith.addf {{.*}}{greta.stages = [#greta.stage<"mlp_out", 0>]}
// CSE-LABEL: func.func @foreign_op
// CSE-NEXT: arith.addf {{.*}}{greta.stages = [#greta.stage<"mlp_out", 0>]}
// TRACE-LABEL: func.func @foreign_op
// TRACE-NEXT: %[[S:.+]] = arith.addf {{.*}}{greta.stages = [#greta.stage<"mlp_out", 0>]}
// TRACE-NEXT: greta.trace %[[S]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 10 : i64, stage = "mlp_out"} : tensor<?x8xf32>
// TRACE-NEXT: return %[[S]]
func.func @foreign_op(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %s = arith.addf %x, %y {greta.stages = [#greta.stage<"mlp_out", 0>]} : tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

// -----

// Traces keep a dead tagged value alive and are never merged or erased.
// CANON-LABEL: func.func @traced_dead_value
// CANON-NEXT: %[[L:.+]] = greta.linear {{.*}}#greta.stage<"attn_out", 0>
// CANON-NEXT: greta.trace %[[L]]
// CANON-NEXT: greta.trace %[[L]]
// CANON-NEXT: return
// CSE-LABEL: func.func @traced_dead_value
// CSE-NEXT: %[[L:.+]] = greta.linear
// CSE-NEXT: greta.trace %[[L]]
// CSE-NEXT: greta.trace %[[L]]
// CSE-NEXT: return
func.func @traced_dead_value(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>) {
  %l = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 0>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  greta.trace %l {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  greta.trace %l {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  return
}

// -----

// A fold that erases a tagged foreign op (x + -0.0 is x) drops its tag; a
// trace inserted before canonicalize follows the folded value, so the record
// survives: run greta-insert-trace before canonicalize (docs/DESIGN.md).
// CANON-LABEL: func.func @folded
// CANON-SAME: (%[[X:[^:]+]]: tensor<2x8xf32>)
// CANON-NEXT: greta.trace %[[X]] {{.*}}stage = "mlp_out"
// CANON-NEXT: return %[[X]]
func.func @folded(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %z = arith.constant dense<-0.0> : tensor<2x8xf32>
  %s = arith.addf %x, %z {greta.stages = [#greta.stage<"mlp_out", 0>]} : tensor<2x8xf32>
  greta.trace %s {layer = 0 : i64, payload = #greta<payload hash>, record_id = 10 : i64, stage = "mlp_out"} : tensor<2x8xf32>
  return %s : tensor<2x8xf32>
}

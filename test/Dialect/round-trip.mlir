// RUN: greta-opt %s | greta-opt | FileCheck %s
// RUN: greta-opt %s --mlir-print-op-generic | greta-opt | FileCheck %s

// Every greta op, printed, parsed again and printed again.

// CHECK-LABEL: func.func @param
func.func @param() -> tensor<4x8xf32> {
  // CHECK-NEXT: %[[W:.+]] = greta.param "model.layers.0.mlp.up_proj.weight" : tensor<4x8xf32>
  // CHECK-NEXT: return %[[W]]
  %w = greta.param "model.layers.0.mlp.up_proj.weight" : tensor<4x8xf32>
  return %w : tensor<4x8xf32>
}

// CHECK-LABEL: func.func @embedding
// CHECK-SAME: (%[[T:.+]]: tensor<16x8xf32>, %[[IDS:.+]]: tensor<?xi64>, %[[IDS32:.+]]: tensor<3xi32>)
func.func @embedding(%table: tensor<16x8xf32>, %ids: tensor<?xi64>, %ids32: tensor<3xi32>) -> (tensor<?x8xf32>, tensor<3x8xf32>) {
  // CHECK-NEXT: %[[E:.+]] = greta.embedding %[[T]], %[[IDS]] : (tensor<16x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  // CHECK-NEXT: %[[E32:.+]] = greta.embedding %[[T]], %[[IDS32]] : (tensor<16x8xf32>, tensor<3xi32>) -> tensor<3x8xf32>
  %e = greta.embedding %table, %ids : (tensor<16x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  %e32 = greta.embedding %table, %ids32 : (tensor<16x8xf32>, tensor<3xi32>) -> tensor<3x8xf32>
  return %e, %e32 : tensor<?x8xf32>, tensor<3x8xf32>
}

// CHECK-LABEL: func.func @rms_norm
func.func @rms_norm(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<?x8xf32> {
  // CHECK-NEXT: greta.rms_norm %{{.+}}, %{{.+}} {eps = 1.000000e-05 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %y = greta.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>, %[[W:.+]]: tensor<4x8xf32>, %[[B:.+]]: tensor<4xf32>)
func.func @linear(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %b: tensor<4xf32>) -> (tensor<?x4xf32>, tensor<?x4xf32>) {
  // CHECK-NEXT: greta.linear %[[X]], %[[W]] : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  // CHECK-NEXT: greta.linear %[[X]], %[[W]] bias %[[B]] : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %y = greta.linear %x, %w : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %z = greta.linear %x, %w bias %b : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  return %y, %z : tensor<?x4xf32>, tensor<?x4xf32>
}

// CHECK-LABEL: func.func @rope
func.func @rope(%x: tensor<?x16xbf16>, %pos: tensor<?xi64>) -> tensor<?x16xbf16> {
  // CHECK-NEXT: greta.rope %{{.+}}, %{{.+}} {head_dim = 8 : i64, theta = 1.000000e+04 : f64} : (tensor<?x16xbf16>, tensor<?xi64>) -> tensor<?x16xbf16>
  %y = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64} : (tensor<?x16xbf16>, tensor<?xi64>) -> tensor<?x16xbf16>
  return %y : tensor<?x16xbf16>
}

// CHECK-LABEL: func.func @attention
func.func @attention(%q: tensor<?x16xf16>, %k: tensor<?x8xf16>, %v: tensor<?x8xf16>, %pos: tensor<?xi32>) -> tensor<?x16xf16> {
  // CHECK-NEXT: greta.attention %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} {cache_slot = 3 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 5.000000e-01 : f64} : (tensor<?x16xf16>, tensor<?x8xf16>, tensor<?x8xf16>, tensor<?xi32>) -> tensor<?x16xf16>
  %o = greta.attention %q, %k, %v, %pos {cache_slot = 3 : i64, head_dim = 4 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, scale = 0.5 : f64} : (tensor<?x16xf16>, tensor<?x8xf16>, tensor<?x8xf16>, tensor<?xi32>) -> tensor<?x16xf16>
  return %o : tensor<?x16xf16>
}

// CHECK-LABEL: func.func @swiglu_add
func.func @swiglu_add(%g: tensor<?x8xf64>, %u: tensor<?x8xf64>) -> tensor<?x8xf64> {
  // CHECK-NEXT: %[[S:.+]] = greta.swiglu %{{.+}}, %{{.+}} : tensor<?x8xf64>
  // CHECK-NEXT: greta.add %[[S]], %{{.+}} : tensor<?x8xf64>
  %s = greta.swiglu %g, %u : tensor<?x8xf64>
  %a = greta.add %s, %u : tensor<?x8xf64>
  return %a : tensor<?x8xf64>
}

// CHECK-LABEL: func.func @trace
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>, %[[M:.+]]: memref<?x8xf32>)
func.func @trace(%x: tensor<?x8xf32>, %m: memref<?x8xf32>) {
  // CHECK-NEXT: greta.trace %[[X]] {layer = 1 : i64, payload = #greta<payload hash>, record_id = 23 : i64, stage = "attn_out"} : tensor<?x8xf32>
  // CHECK-NEXT: greta.trace %[[M]] {layer = 0 : i64, payload = #greta<payload full>, record_id = 0 : i64, stage = "embed_out"} : memref<?x8xf32>
  // CHECK-NEXT: greta.trace %[[X]] {layer = 2 : i64, payload = #greta<payload stats>, record_id = 44 : i64, stage = "logits"} : tensor<?x8xf32>
  greta.trace %x {layer = 1 : i64, payload = #greta<payload hash>, record_id = 23 : i64, stage = "attn_out"} : tensor<?x8xf32>
  greta.trace %m {layer = 0 : i64, payload = #greta<payload full>, record_id = 0 : i64, stage = "embed_out"} : memref<?x8xf32>
  greta.trace %x {layer = 2 : i64, payload = #greta<payload stats>, record_id = 44 : i64, stage = "logits"} : tensor<?x8xf32>
  return
}

// CHECK-LABEL: func.func @perturb_round
func.func @perturb_round(%x: tensor<?x8xf32>, %pos: tensor<?xi64>) -> tensor<?x8xf32> {
  // CHECK-NEXT: %[[P:.+]] = greta.perturb %{{.+}}, %{{.+}} {from_position = 3 : i64, kind = "scale", magnitude = 1.010000e+00 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  // CHECK-NEXT: %[[F:.+]] = greta.perturb %[[P]], %{{.+}} {from_position = 0 : i64, kind = "bitflip", magnitude = 3.100000e+01 : f64}
  // CHECK-NEXT: %[[R:.+]] = greta.round %[[F]] {to = "bf16"} : tensor<?x8xf32>
  // CHECK-NEXT: greta.round %[[R]] {to = "f16"} : tensor<?x8xf32>
  %p = greta.perturb %x, %pos {from_position = 3 : i64, kind = "scale", magnitude = 1.01 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  %f = greta.perturb %p, %pos {from_position = 0 : i64, kind = "bitflip", magnitude = 31.0 : f64} : (tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x8xf32>
  %r = greta.round %f {to = "bf16"} : tensor<?x8xf32>
  %h = greta.round %r {to = "f16"} : tensor<?x8xf32>
  return %h : tensor<?x8xf32>
}

// CHECK-LABEL: func.func @kernel_tensors
// CHECK-SAME: (%[[X:.+]]: tensor<?x8xf32>, %[[W:.+]]: tensor<8xf32>, %[[O:.+]]: tensor<?x8xf32>, %[[EPS:.+]]: f64)
func.func @kernel_tensors(%x: tensor<?x8xf32>, %w: tensor<8xf32>, %out: tensor<?x8xf32>, %eps: f64) -> tensor<?x8xf32> {
  // CHECK-NEXT: %[[K:.+]] = greta.kernel "greta_cpu_rms_norm_f32" ins(%[[X]], %[[W]], %[[EPS]] : tensor<?x8xf32>, tensor<8xf32>, f64) outs(%[[O]] : tensor<?x8xf32>) -> tensor<?x8xf32>
  // CHECK-NEXT: %[[S:.+]] = greta.kernel "greta_cpu_attention_f32" outs(%[[K]] : tensor<?x8xf32>) {stateful} -> tensor<?x8xf32>
  // CHECK-NEXT: return %[[S]]
  %k = greta.kernel "greta_cpu_rms_norm_f32" ins(%x, %w, %eps : tensor<?x8xf32>, tensor<8xf32>, f64) outs(%out : tensor<?x8xf32>) -> tensor<?x8xf32>
  %s = greta.kernel "greta_cpu_attention_f32" outs(%k : tensor<?x8xf32>) {stateful} -> tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

// CHECK-LABEL: func.func @kernel_memrefs
// CHECK-SAME: (%[[X:.+]]: memref<?x8xf32>, %[[O:.+]]: memref<?x8xf32>)
func.func @kernel_memrefs(%x: memref<?x8xf32>, %out: memref<?x8xf32>) {
  // CHECK-NEXT: greta.kernel "greta_cpu_swiglu_f32" ins(%[[X]], %[[X]] : memref<?x8xf32>, memref<?x8xf32>) outs(%[[O]] : memref<?x8xf32>)
  // CHECK-NOT: ->
  // CHECK-NEXT: return
  greta.kernel "greta_cpu_swiglu_f32" ins(%x, %x : memref<?x8xf32>, memref<?x8xf32>) outs(%out : memref<?x8xf32>)
  return
}

// Stage tags: several on one op, on a greta op and on a foreign op, under a
// module that bounds the layers.
// CHECK-LABEL: module attributes {greta.num_layers = 2 : i64}
module attributes {greta.num_layers = 2 : i64} {
  // CHECK-LABEL: func.func @tags
  // CHECK-SAME: %{{.+}}: tensor<?xi64> {greta.positions}
  func.func @tags(%x: tensor<?x8xf32>, %y: tensor<?x8xf32>, %pos: tensor<?xi64> {greta.positions}) -> tensor<?x8xf32> {
    // CHECK-NEXT: greta.add %{{.+}}, %{{.+}} {greta.stages = [#greta.stage<"residual_post_mlp", 0>, #greta.stage<"residual_pre_attn", 1>]} : tensor<?x8xf32>
    // CHECK-NEXT: arith.addf %{{.+}}, %{{.+}} {greta.stages = [#greta.stage<"logits", 1>]} : tensor<?x8xf32>
    %a = greta.add %x, %y {greta.stages = [#greta.stage<"residual_post_mlp", 0>, #greta.stage<"residual_pre_attn", 1>]} : tensor<?x8xf32>
    %b = arith.addf %a, %y {greta.stages = [#greta.stage<"logits", 1>]} : tensor<?x8xf32>
    return %b : tensor<?x8xf32>
  }
}

// RUN: greta-opt %s --greta-lower-to-kernels --split-input-file | FileCheck %s

// Every compute op becomes tensor.empty + greta.kernel; scalar attributes
// become constants in the C ABI's order; tags move to the kernel; the
// positions marker is consumed; params and traces stay.

// CHECK-LABEL: func.func @block(
// CHECK-SAME: %[[IDS:[^:]+]]: tensor<?xi64>, %[[POS:[^:]+]]: tensor<?xi64>)
func.func @block(%ids: tensor<?xi64>, %pos: tensor<?xi64> {greta.positions}) -> tensor<?x64xf32> {
  // CHECK: %[[TABLE:.+]] = greta.param "emb" : tensor<64x16xf32>
  %table = greta.param "emb" : tensor<64x16xf32>
  // CHECK: %[[C0:.+]] = arith.constant 0 : index
  // CHECK: %[[N:.+]] = tensor.dim %[[IDS]], %[[C0]]
  // CHECK: %[[E0:.+]] = tensor.empty(%[[N]]) : tensor<?x16xf32>
  // CHECK: %[[X:.+]] = greta.kernel "embedding" ins(%[[TABLE]], %[[IDS]] : tensor<64x16xf32>, tensor<?xi64>) outs(%[[E0]] : tensor<?x16xf32>) {greta.stages = [#greta.stage<"embed_out", 0>, #greta.stage<"residual_pre_attn", 0>]} -> tensor<?x16xf32>
  %x = greta.embedding %table, %ids {greta.stages = [#greta.stage<"embed_out", 0>, #greta.stage<"residual_pre_attn", 0>]} : (tensor<64x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // CHECK: greta.trace %[[X]]
  greta.trace %x {layer = 0 : i64, payload = #greta<payload hash>, record_id = 0 : i64, stage = "embed_out"} : tensor<?x16xf32>
  %w = greta.param "norm" : tensor<16xf32>
  // CHECK: %[[EPS:.+]] = arith.constant 1.000000e-05 : f64
  // CHECK: %[[N1:.+]] = tensor.dim %[[X]]
  // CHECK: %[[H:.+]] = greta.kernel "rms_norm" ins(%[[X]], %{{.+}}, %[[EPS]] : tensor<?x16xf32>, tensor<16xf32>, f64) outs(%{{.+}} : tensor<?x16xf32>) {greta.stages = [#greta.stage<"attn_in", 0>]}
  %h = greta.rms_norm %x, %w {eps = 1.0e-05 : f64, greta.stages = [#greta.stage<"attn_in", 0>]} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  %wq = greta.param "q" : tensor<16x16xf32>
  // CHECK: %[[Q:.+]] = greta.kernel "linear" ins(%[[H]], %{{.+}} : tensor<?x16xf32>, tensor<16x16xf32>)
  %q = greta.linear %h, %wq : (tensor<?x16xf32>, tensor<16x16xf32>) -> tensor<?x16xf32>
  %wk = greta.param "k" : tensor<8x16xf32>
  %bk = greta.param "k.bias" : tensor<8xf32>
  // CHECK: %[[K:.+]] = greta.kernel "linear_bias" ins(%[[H]], %{{.+}}, %{{.+}} : tensor<?x16xf32>, tensor<8x16xf32>, tensor<8xf32>) outs(%{{.+}} : tensor<?x8xf32>)
  %k = greta.linear %h, %wk bias %bk : (tensor<?x16xf32>, tensor<8x16xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  // CHECK: %[[THETA:.+]] = arith.constant 1.000000e+04 : f64
  // CHECK: %[[HD:.+]] = arith.constant 4 : i64
  // CHECK: %[[QR:.+]] = greta.kernel "rope" ins(%[[Q]], %[[POS]], %[[THETA]], %[[HD]] : tensor<?x16xf32>, tensor<?xi64>, f64, i64)
  %qr = greta.rope %q, %pos {theta = 1.0e+04 : f64, head_dim = 4 : i64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // CHECK: %[[NH:.+]] = arith.constant 4 : i64
  // CHECK: %[[NKV:.+]] = arith.constant 2 : i64
  // CHECK: %[[HD2:.+]] = arith.constant 4 : i64
  // CHECK: %[[SCALE:.+]] = arith.constant 5.000000e-01 : f64
  // CHECK: %[[SLOT:.+]] = arith.constant 3 : i64
  // CHECK: %[[A:.+]] = greta.kernel "attention" ins(%[[QR]], %[[K]], %[[K]], %[[POS]], %[[NH]], %[[NKV]], %[[HD2]], %[[SCALE]], %[[SLOT]] : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>, i64, i64, i64, f64, i64) outs(%{{.+}} : tensor<?x16xf32>) {stateful} -> tensor<?x16xf32>
  %a = greta.attention %qr, %k, %k, %pos {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, scale = 0.5 : f64, cache_slot = 3 : i64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // CHECK: %[[S:.+]] = greta.kernel "swiglu" ins(%[[A]], %[[Q]] : tensor<?x16xf32>, tensor<?x16xf32>)
  %s = greta.swiglu %a, %q : tensor<?x16xf32>
  // CHECK: %[[R:.+]] = greta.kernel "add" ins(%[[X]], %[[S]] : tensor<?x16xf32>, tensor<?x16xf32>) outs(%{{.+}} : tensor<?x16xf32>) {greta.stages = [#greta.stage<"residual_post_attn", 0>]}
  %r = greta.add %x, %s {greta.stages = [#greta.stage<"residual_post_attn", 0>]} : tensor<?x16xf32>
  // CHECK: %[[FROM:.+]] = arith.constant 7 : i64
  // CHECK: %[[KIND:.+]] = arith.constant 2 : i64
  // CHECK: %[[MAG:.+]] = arith.constant 3.000000e+00 : f64
  // CHECK: %[[P:.+]] = greta.kernel "inject_fault" ins(%[[R]], %[[POS]], %[[FROM]], %[[KIND]], %[[MAG]] : tensor<?x16xf32>, tensor<?xi64>, i64, i64, f64)
  %p = greta.perturb %r, %pos {from_position = 7 : i64, kind = "bitflip", magnitude = 3.0 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // CHECK: %[[BF16:.+]] = arith.constant 1 : i64
  // CHECK: %[[RD:.+]] = greta.kernel "round" ins(%[[P]], %[[BF16]] : tensor<?x16xf32>, i64)
  %rd = greta.round %p {to = "bf16"} : tensor<?x16xf32>
  %wo = greta.param "lm_head" : tensor<64x16xf32>
  // CHECK: %[[L:.+]] = greta.kernel "linear" ins(%[[RD]], %{{.+}} : tensor<?x16xf32>, tensor<64x16xf32>) outs(%{{.+}} : tensor<?x64xf32>) {greta.stages = [#greta.stage<"logits", 0>]}
  %logits = greta.linear %rd, %wo {greta.stages = [#greta.stage<"logits", 0>]} : (tensor<?x16xf32>, tensor<64x16xf32>) -> tensor<?x64xf32>
  // CHECK-NOT: greta.{{(embedding|rms_norm|linear|rope|attention|swiglu|add|perturb|round) }}
  // CHECK: return %[[L]]
  return %logits : tensor<?x64xf32>
}

// -----

// A rank-1 round (f16/bf16 emulation of a norm weight) goes through the
// rank-2 kernel as one row; its tags land on the value's producer.

// CHECK-LABEL: func.func @round_rank1
func.func @round_rank1() -> tensor<16xf32> {
  %w = greta.param "norm" : tensor<16xf32>
  // CHECK: %[[W:.+]] = greta.param "norm"
  // CHECK: %[[F16:.+]] = arith.constant 0 : i64
  // CHECK: %[[ROW:.+]] = tensor.expand_shape %[[W]] {{\[\[}}0, 1]] output_shape [1, 16] : tensor<16xf32> into tensor<1x16xf32>
  // CHECK: %[[E:.+]] = tensor.empty() : tensor<1x16xf32>
  // CHECK: %[[K:.+]] = greta.kernel "round" ins(%[[ROW]], %[[F16]] : tensor<1x16xf32>, i64) outs(%[[E]] : tensor<1x16xf32>) -> tensor<1x16xf32>
  // CHECK: %[[C:.+]] = tensor.collapse_shape %[[K]] {{\[\[}}0, 1]] {greta.stages = [#greta.stage<"embed_out", 0>]} : tensor<1x16xf32> into tensor<16xf32>
  // CHECK: return %[[C]]
  %r = greta.round %w {to = "f16", greta.stages = [#greta.stage<"embed_out", 0>]} : tensor<16xf32>
  return %r : tensor<16xf32>
}

// -----

// Static result dims need no tensor.dim.

// CHECK-LABEL: func.func @static_shapes
// CHECK-NOT: tensor.dim
// CHECK: tensor.empty() : tensor<4x8xf32>
// CHECK: greta.kernel "add"
func.func @static_shapes(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %r = greta.add %a, %b : tensor<4x8xf32>
  return %r : tensor<4x8xf32>
}

// RUN: greta-opt %s --greta-lower-to-kernels --split-input-file | FileCheck %s

// The ops of the other dense families (docs/MODELS.md) become kernel calls:
// per-head norms through a [S*h, d] view, Gemma's (1 + w) norm, GeGLU and
// scale, RoPE from a frequency table or with a dynamic base, and
// sliding-window attention. Tags land on what produces the tagged value.

// CHECK-LABEL: func.func @per_head_norm(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x64xf32>, %[[W:[^:]+]]: tensor<16xf32>)
func.func @per_head_norm(%x: tensor<?x64xf32>, %w: tensor<16xf32>) -> tensor<?x64xf32> {
  // CHECK: %[[EPS:.+]] = arith.constant 9.9999999999999995E-7 : f64
  // CHECK: %[[S:.+]] = tensor.dim %[[X]]
  // CHECK: %[[X3:.+]] = tensor.expand_shape %[[X]] {{\[\[}}0], [1, 2]] output_shape [%[[S]], 4, 16] : tensor<?x64xf32> into tensor<?x4x16xf32>
  // CHECK: %[[ROWS:.+]] = tensor.collapse_shape %[[X3]] {{\[\[}}0, 1], [2]] : tensor<?x4x16xf32> into tensor<?x16xf32>
  // CHECK: %[[N:.+]] = greta.kernel "rms_norm" ins(%[[ROWS]], %[[W]], %[[EPS]] : tensor<?x16xf32>, tensor<16xf32>, f64) outs(%{{.+}} : tensor<?x16xf32>) -> tensor<?x16xf32>
  // CHECK: %[[B3:.+]] = tensor.expand_shape %[[N]] {{\[\[}}0, 1], [2]] output_shape [%[[S]], 4, 16] : tensor<?x16xf32> into tensor<?x4x16xf32>
  // CHECK: %[[R:.+]] = tensor.collapse_shape %[[B3]] {{\[\[}}0], [1, 2]] {greta.stages = [#greta.stage<"q_pre_rope", 0>]} : tensor<?x4x16xf32> into tensor<?x64xf32>
  // CHECK: return %[[R]]
  %y = greta.rms_norm %x, %w {eps = 1.0e-6 : f64, head_dim = 16 : i64, greta.stages = [#greta.stage<"q_pre_rope", 0>]} : (tensor<?x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// CHECK-LABEL: func.func @gemma(
func.func @gemma(%x: tensor<?x32xf32>, %w: tensor<32xf32>) -> tensor<?x32xf32> {
  // CHECK: %[[EPS:.+]] = arith.constant 9.9999999999999995E-7 : f64
  // CHECK: %[[ONE:.+]] = arith.constant 1.000000e+00 : f64
  // CHECK: %[[N:.+]] = greta.kernel "rms_norm_offset" ins(%{{.+}}, %{{.+}}, %[[EPS]], %[[ONE]] : tensor<?x32xf32>, tensor<32xf32>, f64, f64)
  %n = greta.rms_norm %x, %w {eps = 1.0e-6 : f64, weight_offset = 1.0 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  // CHECK: %[[G:.+]] = greta.kernel "geglu" ins(%[[N]], %[[N]] : tensor<?x32xf32>, tensor<?x32xf32>)
  %g = greta.geglu %n, %n : tensor<?x32xf32>
  // CHECK: %[[F:.+]] = arith.constant 5.6568542494923806 : f64
  // CHECK: greta.kernel "scale" ins(%[[G]], %[[F]] : tensor<?x32xf32>, f64) outs(%{{.+}} : tensor<?x32xf32>) {greta.stages = [#greta.stage<"embed_out", 0>]}
  %s = greta.scale %g {factor = 5.6568542494923806 : f64, greta.stages = [#greta.stage<"embed_out", 0>]} : tensor<?x32xf32>
  return %s : tensor<?x32xf32>
}

// -----

// CHECK-LABEL: func.func @rope_scaled(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x16xf32>, %[[POS:[^:]+]]: tensor<?xi64>)
func.func @rope_scaled(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>) {
  // A table of one row, no long row (0), the attention factor.
  // CHECK: %[[T:.+]] = arith.constant dense<{{\[\[}}1.000000e+00, 1.000000e-01, 1.000000e-02, 1.000000e-03]]> : tensor<1x4xf64>
  // CHECK: %[[L0:.+]] = arith.constant 0 : i64
  // CHECK: %[[AF:.+]] = arith.constant 1.2079441541679836 : f64
  // CHECK: %[[HD:.+]] = arith.constant 8 : i64
  // CHECK: greta.kernel "rope_table" ins(%[[X]], %[[POS]], %[[T]], %[[L0]], %[[AF]], %[[HD]] : tensor<?x16xf32>, tensor<?xi64>, tensor<1x4xf64>, i64, f64, i64)
  %a = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, 0.01, 0.001>, attention_factor = 1.2079441541679836 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // longrope: short then long rows, and the length above which the long row applies.
  // CHECK: %[[T2:.+]] = arith.constant dense<{{\[\[}}1.000000e+00, 1.000000e-01, 1.000000e-02, 1.000000e-03], [5.000000e-01, 5.000000e-02, 5.000000e-03, 5.000000e-04]]> : tensor<2x4xf64>
  // CHECK: %[[L32:.+]] = arith.constant 32 : i64
  // CHECK: %[[AF1:.+]] = arith.constant 1.000000e+00 : f64
  // CHECK: greta.kernel "rope_table" ins(%[[X]], %[[POS]], %[[T2]], %[[L32]], %[[AF1]], %{{.+}} : tensor<?x16xf32>, tensor<?xi64>, tensor<2x4xf64>, i64, f64, i64)
  %b = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, 0.01, 0.001>, long_inv_freq = array<f64: 0.5, 0.05, 0.005, 0.0005>, long_from = 32 : i64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // CHECK: %[[TH:.+]] = arith.constant 1.000000e+04 : f64
  // CHECK: %[[FA:.+]] = arith.constant 4.000000e+00 : f64
  // CHECK: %[[MP:.+]] = arith.constant 32 : i64
  // CHECK: greta.kernel "rope_dynamic" ins(%[[X]], %[[POS]], %[[TH]], %[[FA]], %[[MP]], %{{.+}} : tensor<?x16xf32>, tensor<?xi64>, f64, f64, i64, i64)
  %c = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, dynamic_factor = 4.0 : f64, dynamic_max_position = 32 : i64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %a, %b, %c : tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// CHECK-LABEL: func.func @sliding_window(
func.func @sliding_window(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // CHECK: %[[W:.+]] = arith.constant 16 : i64
  // CHECK: greta.kernel "attention_window" ins(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[W]] : tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>, i64, i64, i64, f64, i64, i64) outs(%{{.+}} : tensor<?x16xf32>) {stateful}
  %a = greta.attention %q, %k, %k, %pos {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327379 : f64, cache_slot = 0 : i64, sliding_window = 16 : i64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

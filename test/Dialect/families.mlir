// RUN: greta-opt %s -split-input-file | greta-opt | FileCheck %s
// RUN: greta-opt %s -split-input-file -verify-diagnostics --mlir-print-op-generic > /dev/null

// The ops and attributes the other dense families add (docs/MODELS.md)
// round-trip; the verifier accepts them.

// CHECK-LABEL: func.func @per_head_norm
func.func @per_head_norm(%x: tensor<?x64xf32>, %w: tensor<16xf32>) -> tensor<?x64xf32> {
  // CHECK-NEXT: greta.rms_norm %{{.+}}, %{{.+}} {eps = 9.9999999999999995E-7 : f64, head_dim = 16 : i64}
  %y = greta.rms_norm %x, %w {eps = 1.0e-6 : f64, head_dim = 16 : i64} : (tensor<?x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// CHECK-LABEL: func.func @gemma_norm_geglu_scale
func.func @gemma_norm_geglu_scale(%x: tensor<?x32xf32>, %w: tensor<32xf32>) -> tensor<?x32xf32> {
  // CHECK-NEXT: greta.rms_norm {{.*}}weight_offset = 1.000000e+00 : f64
  %n = greta.rms_norm %x, %w {eps = 1.0e-6 : f64, weight_offset = 1.0 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  // CHECK-NEXT: greta.geglu %{{.+}}, %{{.+}} : tensor<?x32xf32>
  %g = greta.geglu %n, %n : tensor<?x32xf32>
  // CHECK-NEXT: greta.scale %{{.+}} {factor = 5.6568542494923806 : f64} : tensor<?x32xf32>
  %s = greta.scale %g {factor = 5.6568542494923806 : f64} : tensor<?x32xf32>
  return %s : tensor<?x32xf32>
}

// -----

// CHECK-LABEL: func.func @rope_scaled
func.func @rope_scaled(%x: tensor<?x16xf32>, %pos: tensor<?xi64>) -> (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>) {
  // CHECK-NEXT: greta.rope {{.*}}attention_factor = 1.2079441541679836 : f64{{.*}}inv_freq = array<f64: 1.000000e+00, 1.000000e-01, 1.000000e-02, 1.000000e-03>
  %a = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, 0.01, 0.001>, attention_factor = 1.2079441541679836 : f64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // CHECK-NEXT: greta.rope {{.*}}long_from = 32 : i64, long_inv_freq = array<f64: 5.000000e-01
  %b = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, inv_freq = array<f64: 1.0, 0.1, 0.01, 0.001>, long_inv_freq = array<f64: 0.5, 0.05, 0.005, 0.0005>, long_from = 32 : i64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  // CHECK-NEXT: greta.rope {{.*}}dynamic_factor = 4.000000e+00 : f64, dynamic_max_position = 32 : i64
  %c = greta.rope %x, %pos {head_dim = 8 : i64, theta = 10000.0 : f64, dynamic_factor = 4.0 : f64, dynamic_max_position = 32 : i64} : (tensor<?x16xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %a, %b, %c : tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>
}

// -----

// CHECK-LABEL: func.func @sliding_window
func.func @sliding_window(%q: tensor<?x16xf32>, %k: tensor<?x8xf32>, %pos: tensor<?xi64>) -> tensor<?x16xf32> {
  // CHECK-NEXT: greta.attention {{.*}}sliding_window = 16 : i64
  %a = greta.attention %q, %k, %k, %pos {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 8 : i64, scale = 0.35355339059327379 : f64, cache_slot = 0 : i64, sliding_window = 16 : i64} : (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?xi64>) -> tensor<?x16xf32>
  return %a : tensor<?x16xf32>
}

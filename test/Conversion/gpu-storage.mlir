// greta-gpu-storage: f32 tensors become the storage type everywhere
// (signature, params, results); a CPU-emulation round to the storage type
// is dropped with its tags kept; other rounds and f64 are errors.
// RUN: greta-opt %s --greta-gpu-storage=dtype=f16 --split-input-file --verify-diagnostics | FileCheck %s

// CHECK-LABEL: func.func @forward(%{{.+}}: tensor<?x4xf16>) -> tensor<?x4xf16>
// CHECK: %[[W:.+]] = greta.param "model.norm.weight" : tensor<4xf16>
// CHECK: %[[N:.+]] = greta.rms_norm %{{.+}}, %[[W]] {{.*}}greta.stages = [#greta.stage<"attn_in", 0>]{{.*}} -> tensor<?x4xf16>
// CHECK-NOT: greta.round
// CHECK: return %[[N]] : tensor<?x4xf16>
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %w = greta.param "model.norm.weight" : tensor<4xf32>
  %n = greta.rms_norm %x, %w {eps = 1.0e-05 : f64} : (tensor<?x4xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %r = greta.round %n {to = "f16", greta.stages = [#greta.stage<"attn_in", 0>]} : tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}

// -----

func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{greta-gpu-storage: rounds to bf16 but the GPU storage type is}}
  %r = greta.round %x {to = "bf16"} : tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}

// -----

func.func @forward(%x: tensor<?x4xf64>) -> tensor<?x4xf64> {
  // expected-error @+1 {{greta-gpu-storage: f64 tensor}}
  %a = greta.add %x, %x : tensor<?x4xf64>
  return %a : tensor<?x4xf64>
}

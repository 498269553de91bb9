// RUN: greta-opt %s --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" --split-input-file | FileCheck %s

// greta.kernel bufferizes like a linalg op (outs in place), greta.trace
// reads its buffer and writes none, greta.param becomes a read-only
// parameter global. Without the greta models One-Shot Bufferize stops with
// "op was not bufferized".

// CHECK: memref.global "private" constant @__greta_param_w : memref<4x4xf32> {greta.param = "w"}
// CHECK-NOT: memref.global
// CHECK-LABEL: func.func @f(
// CHECK-SAME: %[[X:.+]]: memref<?x4xf32>) -> memref<?x4xf32>
func.func @f(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %c0 = arith.constant 0 : index
  // CHECK: %[[W:.+]] = memref.get_global @__greta_param_w : memref<4x4xf32>
  %w = greta.param "w" : tensor<4x4xf32>
  %n = tensor.dim %x, %c0 : tensor<?x4xf32>
  // CHECK: %[[N:.+]] = memref.dim %[[X]]
  // CHECK: %[[OUT:.+]] = memref.alloc(%[[N]]) {{.*}}: memref<?x4xf32>
  %e = tensor.empty(%n) : tensor<?x4xf32>
  // CHECK: greta.kernel "linear" ins(%[[X]], %[[W]] : memref<?x4xf32>, memref<4x4xf32>) outs(%[[OUT]] : memref<?x4xf32>) {greta.buffer_stages = [#greta.stage<"attn_out", 0>]}
  // CHECK-NOT: ->
  %y = greta.kernel "linear" ins(%x, %w : tensor<?x4xf32>, tensor<4x4xf32>) outs(%e : tensor<?x4xf32>) {greta.stages = [#greta.stage<"attn_out", 0>]} -> tensor<?x4xf32>
  // CHECK: greta.trace %[[OUT]] {{.*}} : memref<?x4xf32>
  greta.trace %y {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x4xf32>
  // A second use of the same parameter shares its global.
  // CHECK: memref.get_global @__greta_param_w
  %w2 = greta.param "w" : tensor<4x4xf32>
  // CHECK: %[[OUT2:.+]] = memref.alloc
  %e2 = tensor.empty(%n) : tensor<?x4xf32>
  // CHECK: greta.kernel "linear" ins(%[[OUT]], %{{.+}} : memref<?x4xf32>, memref<4x4xf32>) outs(%[[OUT2]] : memref<?x4xf32>)
  %z = greta.kernel "linear" ins(%y, %w2 : tensor<?x4xf32>, tensor<4x4xf32>) outs(%e2 : tensor<?x4xf32>) -> tensor<?x4xf32>
  // CHECK: return %[[OUT2]]
  return %z : tensor<?x4xf32>
}

// -----

// An out that is still read later cannot be overwritten in place: One-Shot
// allocates a fresh buffer (no copy: kernels overwrite all of their outs),
// and the kernel reads its ins through their own buffers.

// CHECK-LABEL: func.func @out_of_place(
// CHECK-SAME: %[[A:[^:]+]]: memref<2x4xf32>, %[[B:[^:]+]]: memref<2x4xf32>)
func.func @out_of_place(%a: tensor<2x4xf32>, %b: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  // CHECK: %[[NEW:.+]] = memref.alloc() {{.*}}: memref<2x4xf32>
  // CHECK-NOT: memref.copy
  // CHECK: greta.kernel "add" ins(%[[A]], %[[A]] : memref<2x4xf32>, memref<2x4xf32>) outs(%[[NEW]] : memref<2x4xf32>)
  %r = greta.kernel "add" ins(%a, %a : tensor<2x4xf32>, tensor<2x4xf32>) outs(%b : tensor<2x4xf32>) -> tensor<2x4xf32>
  greta.trace %b {layer = 0 : i64, payload = #greta<payload hash>, record_id = 8 : i64, stage = "residual_post_attn"} : tensor<2x4xf32>
  return %r, %b : tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// Writing into a parameter (never done by the lowering, but legal IR) goes
// to a fresh buffer: parameters are read-only, and kernels do not read their
// outs, so nothing is copied.

// CHECK-LABEL: func.func @param_not_writable
// CHECK: %[[W:.+]] = memref.get_global @__greta_param_w
// CHECK: %[[FRESH:.+]] = memref.alloc
// CHECK-NOT: memref.copy
// CHECK: greta.kernel "round" {{.*}} outs(%[[FRESH]]
// CHECK: return %[[FRESH]]
func.func @param_not_writable() -> tensor<2x4xf32> {
  %w = greta.param "w" : tensor<2x4xf32>
  %c = arith.constant 0 : i64
  %r = greta.kernel "round" ins(%c : i64) outs(%w : tensor<2x4xf32>) -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}

// RUN: greta-opt %s --greta-gpu-fuse-moe-experts --split-input-file | FileCheck %s
// RUN: greta-opt %s --greta-lower-to-gpu --split-input-file | FileCheck %s --check-prefix=CALLS

// greta-gpu-fuse-moe-experts: each expert's chain (gate and up linears, a
// SwiGLU, the down linear, the weighted add) becomes one grouped kernel;
// the first expert's add (from zeros) its `_first` form; the accumulate's
// tags move to the kernel. A shared expert (no accumulate) is left alone.

// CHECK-LABEL: func.func @experts(
// CHECK-SAME: %[[X:[^:]+]]: tensor<?x8xf32>, %[[SEL:[^:]+]]: tensor<?x4xf32>
func.func @experts(%x: tensor<?x8xf32>, %sel: tensor<?x4xf32>,
                   %g0: tensor<16x8xf32>, %u0: tensor<16x8xf32>, %d0: tensor<8x16xf32>,
                   %g1: tensor<16x8xf32>, %u1: tensor<16x8xf32>, %d1: tensor<8x16xf32>) -> tensor<?x8xf32> {
  // CHECK-NOT: greta.linear
  // CHECK: %[[E0:.+]] = arith.constant 0 : i64
  // CHECK: %[[A:.+]] = greta.kernel "moe_expert_swiglu_first" ins(%[[X]], %[[SEL]], %{{.+}}, %{{.+}}, %{{.+}}, %[[E0]] : tensor<?x8xf32>, tensor<?x4xf32>, tensor<16x8xf32>, tensor<16x8xf32>, tensor<8x16xf32>, i64) outs(%{{.+}} : tensor<?x8xf32>) -> tensor<?x8xf32>
  %a0 = greta.linear %x, %g0 : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %b0 = greta.linear %x, %u0 : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %s0 = greta.swiglu %a0, %b0 : tensor<?x16xf32>
  %y0 = greta.linear %s0, %d0 : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %acc0 = greta.moe_accumulate %y0, %sel {expert = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  // CHECK: %[[E1:.+]] = arith.constant 1 : i64
  // CHECK: greta.kernel "moe_expert_swiglu" ins(%[[X]], %[[SEL]], %[[A]], %{{.+}}, %{{.+}}, %{{.+}}, %[[E1]] : {{.*}}) outs(%{{.+}} : tensor<?x8xf32>) {greta.stages = [#greta.stage<"moe_out", 0>]}
  %a1 = greta.linear %x, %g1 : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %b1 = greta.linear %x, %u1 : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %s1 = greta.swiglu %a1, %b1 : tensor<?x16xf32>
  %y1 = greta.linear %s1, %d1 : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %acc1 = greta.moe_accumulate %y1, %sel into %acc0 {expert = 1 : i64, greta.stages = [#greta.stage<"moe_out", 0>]} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  // CHECK-NOT: greta.moe_accumulate
  // CHECK-NOT: greta.swiglu
  return %acc1 : tensor<?x8xf32>
}
// CALLS-LABEL: llvm.func @experts(
// CALLS: llvm.call @greta_gpu_moe_expert_swiglu_first_f16(
// CALLS: llvm.call @greta_gpu_moe_expert_swiglu_f16(
// CALLS-NOT: llvm.call @greta_gpu_linear_f16(

// -----

// Not the importer's chain: a tagged (traced) intermediate, a bias, an
// intermediate with a second use. Each keeps its op-by-op form.
// CHECK-LABEL: func.func @left_alone(
// CALLS-LABEL: llvm.func @left_alone(
// CHECK-NOT: greta.kernel
// CHECK-COUNT-3: greta.moe_accumulate
func.func @left_alone(%x: tensor<?x8xf32>, %sel: tensor<?x4xf32>,
                      %g: tensor<16x8xf32>, %u: tensor<16x8xf32>, %d: tensor<8x16xf32>,
                      %bias: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<?x16xf32>) {
  %a0 = greta.linear %x, %g : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %b0 = greta.linear %x, %u : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %s0 = greta.swiglu %a0, %b0 {greta.stages = [#greta.stage<"mlp_out", 0>]} : tensor<?x16xf32>
  %y0 = greta.linear %s0, %d : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %acc0 = greta.moe_accumulate %y0, %sel {expert = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  %a1 = greta.linear %x, %g : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %b1 = greta.linear %x, %u : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %s1 = greta.swiglu %a1, %b1 : tensor<?x16xf32>
  %y1 = greta.linear %s1, %d bias %bias : (tensor<?x16xf32>, tensor<8x16xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %acc1 = greta.moe_accumulate %y1, %sel into %acc0 {expert = 1 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %a2 = greta.linear %x, %g : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %b2 = greta.linear %x, %u : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  %s2 = greta.swiglu %a2, %b2 : tensor<?x16xf32>
  %y2 = greta.linear %s2, %d : (tensor<?x16xf32>, tensor<8x16xf32>) -> tensor<?x8xf32>
  %acc2 = greta.moe_accumulate %y2, %sel into %acc1 {expert = 2 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %acc2, %s2 : tensor<?x8xf32>, tensor<?x16xf32>
}

// RUN: greta-opt %s --greta-lower-to-kernels --split-input-file | FileCheck %s
// RUN: greta-opt %s --greta-lower-to-gpu=storage=f16 --split-input-file | FileCheck %s --check-prefix=GPU
// RUN: greta-opt %s --greta-lower-to-gpu=storage=bf16 --split-input-file | FileCheck %s --check-prefix=GPUBF

// The mixture-of-experts ops (docs/MODELS.md) become kernel calls on the
// CPU: the router (its planted off-by-one variant with the positions), the
// first expert's add from zeros, the others' into the running sum, and the
// gated shared expert; tags land on the kernels. The GPU lowering calls
// the same kernels in the storage type (greta/gpu/MoEKernels.h).

// CHECK-LABEL: func.func @moe(
func.func @moe(%logits: tensor<?x4xf32>, %y0: tensor<?x8xf32>, %y1: tensor<?x8xf32>, %gate: tensor<?x1xf32>) -> tensor<?x8xf32> {
  // CHECK: %[[K:.+]] = arith.constant 2 : i64
  // CHECK: %[[NORM:.+]] = arith.constant 1 : i64
  // CHECK: %[[SEL:.+]] = greta.kernel "moe_router" ins(%{{.+}}, %[[K]], %[[NORM]] : tensor<?x4xf32>, i64, i64) outs(%{{.+}} : tensor<?x4xf32>) {greta.stages = [#greta.stage<"expert_selection", 0>]} -> tensor<?x4xf32>
  // GPU-LABEL: llvm.func @moe(
  // GPU: llvm.call @greta_gpu_moe_router_f16(
  // GPU: llvm.call @greta_gpu_moe_accumulate_first_f16(
  // GPU: llvm.call @greta_gpu_moe_accumulate_f16(
  // GPU: llvm.call @greta_gpu_sigmoid_gate_add_f16(
  // GPUBF-LABEL: llvm.func @moe(
  // GPUBF: llvm.call @greta_gpu_moe_router_bf16(
  // GPUBF: llvm.call @greta_gpu_sigmoid_gate_add_bf16(
  %sel = greta.moe_router %logits {top_k = 2 : i64, normalize = true, greta.stages = [#greta.stage<"expert_selection", 0>]} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  // CHECK: %[[E0:.+]] = arith.constant 0 : i64
  // CHECK: %[[A:.+]] = greta.kernel "moe_accumulate_first" ins(%{{.+}}, %[[SEL]], %[[E0]] : tensor<?x8xf32>, tensor<?x4xf32>, i64)
  %a = greta.moe_accumulate %y0, %sel {expert = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  // CHECK: %[[E1:.+]] = arith.constant 1 : i64
  // CHECK: %[[B:.+]] = greta.kernel "moe_accumulate" ins(%{{.+}}, %[[SEL]], %[[A]], %[[E1]] : tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x8xf32>, i64) outs(%{{.+}} : tensor<?x8xf32>) {greta.stages = [#greta.stage<"moe_out", 0>]}
  %b = greta.moe_accumulate %y1, %sel into %a {expert = 1 : i64, greta.stages = [#greta.stage<"moe_out", 0>]} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  // CHECK: greta.kernel "sigmoid_gate_add" ins(%[[B]], %{{.+}}, %{{.+}} : tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x1xf32>)
  %c = greta.sigmoid_gate_add %b, %y0, %gate : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x1xf32>) -> tensor<?x8xf32>
  return %c : tensor<?x8xf32>
}

// -----

// CHECK-LABEL: func.func @planted(
func.func @planted(%logits: tensor<?x4xf32>, %pos: tensor<?xi64>) -> tensor<?x2xf32> {
  // CHECK: greta.kernel "moe_router_fault" ins(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}} : tensor<?x4xf32>, tensor<?xi64>, i64, i64, i64, i64)
  // GPU-LABEL: llvm.func @planted(
  // GPU: llvm.call @greta_gpu_moe_router_fault_f16(
  %sel = greta.moe_router %logits positions %pos {top_k = 1 : i64, normalize = false, fault_from_position = 5 : i64} : (tensor<?x4xf32>, tensor<?xi64>) -> tensor<?x2xf32>
  return %sel : tensor<?x2xf32>
}

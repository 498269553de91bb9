// RUN: greta-opt %s -split-input-file --greta-convert-precision="precision=f64" | FileCheck %s --check-prefix=F64
// RUN: greta-opt %s -split-input-file --greta-convert-precision="precision=f64" --greta-convert-precision="precision=f64" | FileCheck %s --check-prefix=F64
// RUN: greta-opt %s -split-input-file --greta-convert-precision="precision=f16" | FileCheck %s --check-prefix=F16
// RUN: greta-opt %s -split-input-file --greta-convert-precision="precision=f16" --greta-convert-precision="precision=f16" | FileCheck %s --check-prefix=F16
// RUN: greta-opt %s -split-input-file --greta-convert-precision="precision=bf16" --greta-insert-trace | FileCheck %s --check-prefix=BF16
// RUN: greta-opt %s -split-input-file --greta-convert-precision="precision=f32" | FileCheck %s --check-prefix=F32
// RUN: not greta-opt %s -split-input-file --greta-convert-precision="precision=fp8" 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: convert-precision.mlir:[[@LINE+2]]:1: error: greta-convert-precision: unknown precision 'fp8' in option 'precision' (expected f32, f64, f16 or bf16)
// F64-LABEL: module attributes {greta.num_layers = 1 : i64}
module attributes {greta.num_layers = 1 : i64} {
  // f64: every f32 tensor type, the signature included; integer tensors and
  // f32 scalars stay; dense f32 constants keep their values.
  // F64-LABEL: func.func @forward
  // F64-SAME: (%{{.+}}: tensor<?xi64>, %{{.+}}: tensor<?xi64> {greta.positions}, %[[X:.+]]: tensor<?x8xf64>, %{{.+}}: f32) -> (tensor<?x8xf64>, tensor<2x8xf64>)
  // F64-NEXT: %[[W:.+]] = greta.param "w" : tensor<8x8xf64>
  // F64-NEXT: %[[N:.+]] = greta.param "n" : tensor<8xf64>
  // F64-NEXT: %[[L:.+]] = greta.linear %[[X]], %[[W]] {greta.stages = [#greta.stage<"attn_out", 0>]} : (tensor<?x8xf64>, tensor<8x8xf64>) -> tensor<?x8xf64>
  // F64-NEXT: %[[R:.+]] = greta.rms_norm %[[L]], %[[N]] {{.*}}: (tensor<?x8xf64>, tensor<8xf64>) -> tensor<?x8xf64>
  // F64-NEXT: %[[A:.+]] = arith.addf %[[R]], %[[X]] {greta.stages = [#greta.stage<"residual_post_attn", 0>]} : tensor<?x8xf64>
  // F64-NEXT: %[[C:.+]] = arith.constant dense<1.500000e+00> : tensor<2x8xf64>
  // F64-NEXT: return %[[A]], %[[C]] : tensor<?x8xf64>, tensor<2x8xf64>

  // f16: a round after each greta op and each tagged op; the tags move to
  // the round and every use reads the rounded value.
  // F16-LABEL: func.func @forward
  // F16-SAME: %[[X:[^:]+]]: tensor<?x8xf32>
  // F16-NEXT: %[[W:.+]] = greta.param "w" : tensor<8x8xf32>
  // F16-NEXT: %[[WR:.+]] = greta.round %[[W]] {to = "f16"} : tensor<8x8xf32>
  // F16-NEXT: %[[N:.+]] = greta.param "n" : tensor<8xf32>
  // F16-NEXT: %[[NR:.+]] = greta.round %[[N]] {to = "f16"} : tensor<8xf32>
  // F16-NEXT: %[[L:.+]] = greta.linear %[[X]], %[[WR]] : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  // F16-NEXT: %[[LR:.+]] = greta.round %[[L]] {greta.stages = [#greta.stage<"attn_out", 0>], to = "f16"} : tensor<?x8xf32>
  // F16-NEXT: %[[R:.+]] = greta.rms_norm %[[LR]], %[[NR]]
  // F16-NEXT: %[[RR:.+]] = greta.round %[[R]] {to = "f16"}
  // F16-NEXT: %[[A:.+]] = arith.addf %[[RR]], %[[X]] : tensor<?x8xf32>
  // F16-NEXT: %[[AR:.+]] = greta.round %[[A]] {greta.stages = [#greta.stage<"residual_post_attn", 0>], to = "f16"}
  // F16-NEXT: %[[C:.+]] = arith.constant dense<1.500000e+00> : tensor<2x8xf32>
  // F16-NEXT: return %[[AR]], %[[C]]

  // bf16 then insert-trace: the traces record the rounded values.
  // BF16-LABEL: func.func @forward
  // BF16: %[[L:.+]] = greta.linear
  // BF16-NEXT: %[[LR:.+]] = greta.round %[[L]] {greta.stages = [#greta.stage<"attn_out", 0>], to = "bf16"}
  // BF16-NEXT: greta.trace %[[LR]] {{.*}}stage = "attn_out"
  // BF16: %[[A:.+]] = arith.addf
  // BF16-NEXT: %[[AR:.+]] = greta.round %[[A]] {greta.stages = [#greta.stage<"residual_post_attn", 0>], to = "bf16"}
  // BF16-NEXT: greta.trace %[[AR]] {{.*}}stage = "residual_post_attn"

  // F32-LABEL: func.func @forward
  // F32-NEXT: greta.param "w" : tensor<8x8xf32>
  // F32-NEXT: greta.param "n" : tensor<8xf32>
  // F32-NEXT: greta.linear {{.*}}greta.stages
  // F32-NEXT: greta.rms_norm
  // F32-NEXT: arith.addf
  // F32-NEXT: arith.constant
  // F32-NEXT: return
  func.func @forward(%tokens: tensor<?xi64>, %positions: tensor<?xi64> {greta.positions},
                     %x: tensor<?x8xf32>, %s: f32) -> (tensor<?x8xf32>, tensor<2x8xf32>) {
    %w = greta.param "w" : tensor<8x8xf32>
    %n = greta.param "n" : tensor<8xf32>
    %l = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 0>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %r = greta.rms_norm %l, %n {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %a = arith.addf %r, %x {greta.stages = [#greta.stage<"residual_post_attn", 0>]} : tensor<?x8xf32>
    %c = arith.constant dense<1.5> : tensor<2x8xf32>
    return %a, %c : tensor<?x8xf32>, tensor<2x8xf32>
  }
}

// -----

// f64 reaches declarations and calls too.
// F64-LABEL: func.func private @callee(tensor<4xf64>) -> tensor<4xf64>
// F64-LABEL: func.func @caller
// F64-SAME: (%[[X:.+]]: tensor<4xf64>) -> tensor<4xf64>
// F64-NEXT: call @callee(%[[X]]) : (tensor<4xf64>) -> tensor<4xf64>
func.func private @callee(tensor<4xf32>) -> tensor<4xf32>
func.func @caller(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = func.call @callee(%x) : (tensor<4xf32>) -> tensor<4xf32>
  return %y : tensor<4xf32>
}

// RUN: greta-opt %s -split-input-file -verify-diagnostics --greta-convert-precision=precision=bf16 | FileCheck %s

// An expert selection is rounded like every stage: its ids are whole
// numbers, exact in bf16 up to 256 experts.
// CHECK-LABEL: func.func @rounded
// CHECK: %[[S:.+]] = greta.moe_router
// CHECK-NEXT: greta.round %[[S]] {greta.stages = [#greta.stage<"expert_selection", 0>], to = "bf16"}
func.func @rounded(%logits: tensor<?x256xf32>) -> tensor<?x4xf32> {
  %sel = greta.moe_router %logits {top_k = 2 : i64, normalize = true, greta.stages = [#greta.stage<"expert_selection", 0>]} : (tensor<?x256xf32>) -> tensor<?x4xf32>
  return %sel : tensor<?x4xf32>
}

// -----

// More experts cannot be emulated: their ids would round to other experts.
func.func @too_many_for_bf16(%logits: tensor<?x300xf32>) -> tensor<?x2xf32> {
  // expected-error @+1 {{'greta.moe_router' op greta-convert-precision: 300 experts: expert ids above 256 are not exact in bf16, so the emulated selection would name other experts}}
  %sel = greta.moe_router %logits {top_k = 1 : i64, normalize = true} : (tensor<?x300xf32>) -> tensor<?x2xf32>
  return %sel : tensor<?x2xf32>
}

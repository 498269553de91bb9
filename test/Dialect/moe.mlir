// RUN: greta-opt %s -split-input-file | greta-opt | FileCheck %s
// RUN: greta-opt %s -split-input-file --mlir-print-op-generic | greta-opt -split-input-file | FileCheck %s

// The mixture-of-experts ops (docs/MODELS.md) round-trip; the verifier
// accepts them.

// CHECK-LABEL: func.func @route_and_combine
func.func @route_and_combine(%logits: tensor<?x4xf32>, %y0: tensor<?x8xf32>, %y1: tensor<?x8xf32>, %gate: tensor<?x1xf32>) -> tensor<?x8xf32> {
  // CHECK-NEXT: %[[SEL:.+]] = greta.moe_router %{{.+}} {normalize = true, top_k = 2 : i64} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  %sel = greta.moe_router %logits {top_k = 2 : i64, normalize = true} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  // CHECK-NEXT: %[[A:.+]] = greta.moe_accumulate %{{.+}}, %[[SEL]] {expert = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  %a = greta.moe_accumulate %y0, %sel {expert = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  // CHECK-NEXT: %[[B:.+]] = greta.moe_accumulate %{{.+}}, %[[SEL]] into %[[A]] {expert = 1 : i64}
  %b = greta.moe_accumulate %y1, %sel into %a {expert = 1 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  // CHECK-NEXT: greta.sigmoid_gate_add %[[B]], %{{.+}}, %{{.+}} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x1xf32>) -> tensor<?x8xf32>
  %c = greta.sigmoid_gate_add %b, %y0, %gate : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x1xf32>) -> tensor<?x8xf32>
  return %c : tensor<?x8xf32>
}

// -----

// CHECK-LABEL: func.func @planted_fault
func.func @planted_fault(%logits: tensor<?x4xf32>, %pos: tensor<?xi64>) -> tensor<?x2xf32> {
  // CHECK-NEXT: greta.moe_router %{{.+}} positions %{{.+}} {fault_from_position = 5 : i64, normalize = false, top_k = 1 : i64}
  %sel = greta.moe_router %logits positions %pos {top_k = 1 : i64, normalize = false, fault_from_position = 5 : i64} : (tensor<?x4xf32>, tensor<?xi64>) -> tensor<?x2xf32>
  return %sel : tensor<?x2xf32>
}

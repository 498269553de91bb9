// RUN: greta-opt %s -split-input-file -verify-diagnostics

// The verifiers of the mixture-of-experts ops name what is wrong.

func.func @top_k_too_large(%logits: tensor<?x4xf32>) -> tensor<?x10xf32> {
  // expected-error @+1 {{'greta.moe_router' op top_k must be in [1, 4] (the number of experts), got 5}}
  %sel = greta.moe_router %logits {top_k = 5 : i64, normalize = true} : (tensor<?x4xf32>) -> tensor<?x10xf32>
  return %sel : tensor<?x10xf32>
}

// -----

func.func @dynamic_experts(%logits: tensor<?x?xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'greta.moe_router' op logits must have a static number of experts (dim 1)}}
  %sel = greta.moe_router %logits {top_k = 2 : i64, normalize = true} : (tensor<?x?xf32>) -> tensor<?x4xf32>
  return %sel : tensor<?x4xf32>
}

// -----

func.func @selection_width(%logits: tensor<?x4xf32>) -> tensor<?x3xf32> {
  // expected-error @+1 {{'greta.moe_router' op result dim 1 is 3, expected 4 (the top_k ids, then their top_k weights)}}
  %sel = greta.moe_router %logits {top_k = 2 : i64, normalize = true} : (tensor<?x4xf32>) -> tensor<?x3xf32>
  return %sel : tensor<?x3xf32>
}

// -----

func.func @fault_without_positions(%logits: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'greta.moe_router' op 'positions' and 'fault_from_position' go together}}
  %sel = greta.moe_router %logits {top_k = 2 : i64, normalize = true, fault_from_position = 3 : i64} : (tensor<?x4xf32>) -> tensor<?x4xf32>
  return %sel : tensor<?x4xf32>
}

// -----

func.func @odd_selection(%y: tensor<?x8xf32>, %sel: tensor<?x3xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'greta.moe_accumulate' op selection dim 1 must be even (k ids, then k weights), got 3}}
  %a = greta.moe_accumulate %y, %sel {expert = 0 : i64} : (tensor<?x8xf32>, tensor<?x3xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @negative_expert(%y: tensor<?x8xf32>, %sel: tensor<?x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'greta.moe_accumulate' op expert must be >= 0, got -1}}
  %a = greta.moe_accumulate %y, %sel {expert = -1 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @acc_type(%y: tensor<?x8xf32>, %sel: tensor<?x4xf32>, %acc: tensor<?x4xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'greta.moe_accumulate' op acc type 'tensor<?x4xf32>' differs from expert_out's 'tensor<?x8xf32>'}}
  %a = greta.moe_accumulate %y, %sel into %acc {expert = 0 : i64} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}

// -----

func.func @gate_width(%x: tensor<?x8xf32>, %g: tensor<?x2xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{'greta.sigmoid_gate_add' op gate dim 1 is 2, expected 1 (one gate per token)}}
  %a = greta.sigmoid_gate_add %x, %x, %g : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x2xf32>) -> tensor<?x8xf32>
  return %a : tensor<?x8xf32>
}


// A fault that touches nothing is an error, never a silent no-op: the run
// would be bit-identical to a clean one while its manifest names the fault,
// and a bisection of it would report "no divergence". Same options on every
// module below; each says why nothing would be perturbed.
// RUN: greta-opt %s -split-input-file -verify-diagnostics --greta-inject-fault="stage=attn_out layer=3 from-position=100"

// The layer is past the model's last one.
// expected-error @+1 {{greta-inject-fault: layer 3 is out of range: the model has 2 layers (greta.num_layers), 0 to 1}}
module attributes {greta.num_layers = 2 : i64} {
  func.func @forward(%positions: tensor<?xi64> {greta.positions},
                     %x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
    %o = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 1>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    return %o : tensor<?x8xf32>
  }
}

// -----

// The first perturbed position is past the model's last one.
// expected-error @+1 {{greta-inject-fault: from-position 100 perturbs nothing: the model's positions end at 63 (greta.max_position_embeddings = 64)}}
module attributes {greta.num_layers = 4 : i64, greta.max_position_embeddings = 64 : i64} {
  func.func @forward(%positions: tensor<?xi64> {greta.positions},
                     %x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
    %o = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 3>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    return %o : tensor<?x8xf32>
  }
}

// -----

// In range, but no op carries the tag (stage, layer).
// expected-error @+1 {{greta-inject-fault: no value is tagged stage 'attn_out' at layer 3}}
module attributes {greta.num_layers = 4 : i64, greta.max_position_embeddings = 4096 : i64} {
  func.func @forward(%positions: tensor<?xi64> {greta.positions},
                     %x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
    %o = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 2>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    return %o : tensor<?x8xf32>
  }
}

// -----

// Tagged and in range: the fault is planted, no diagnostic.
module attributes {greta.num_layers = 4 : i64, greta.max_position_embeddings = 4096 : i64} {
  func.func @forward(%positions: tensor<?xi64> {greta.positions},
                     %x: tensor<?x8xf32>, %w: tensor<8x8xf32>) -> tensor<?x8xf32> {
    %o = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 3>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    return %o : tensor<?x8xf32>
  }
}

// RUN: greta-opt %s --greta-lower-to-kernels --split-input-file -verify-diagnostics

// The CPU kernels take int64 positions and ids (CInterface.h).
func.func @i32_positions(%x: tensor<?x8xf32>, %pos: tensor<?xi32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{greta-lower-to-kernels: positions must be i64 for the kernel library}}
  %r = greta.rope %x, %pos {theta = 1.0e+04 : f64, head_dim = 4 : i64} : (tensor<?x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}

// -----

func.func @i32_ids(%ids: tensor<?xi32>) -> tensor<?x8xf32> {
  %t = greta.param "emb" : tensor<32x8xf32>
  // expected-error @+1 {{greta-lower-to-kernels: ids must be i64}}
  %r = greta.embedding %t, %ids : (tensor<32x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  return %r : tensor<?x8xf32>
}

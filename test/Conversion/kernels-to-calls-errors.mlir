// RUN: greta-opt %s --greta-kernels-to-calls --split-input-file -verify-diagnostics

func.func @not_bufferized(%x: tensor<?x4xf32>, %o: tensor<?x4xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{expected a bufferized kernel (outs on memrefs, no results); run one-shot-bufferize first}}
  %r = greta.kernel "add" ins(%x, %x : tensor<?x4xf32>, tensor<?x4xf32>) outs(%o : tensor<?x4xf32>) -> tensor<?x4xf32>
  return %r : tensor<?x4xf32>
}

// -----

func.func @half(%x: memref<?x4xf16>, %o: memref<?x4xf16>) {
  // expected-error @+1 {{the kernel library computes in f32 or f64, got element type 'f16'}}
  greta.kernel "add" ins(%x, %x : memref<?x4xf16>, memref<?x4xf16>) outs(%o : memref<?x4xf16>)
  return
}

// -----

// Rows of a slice (stride 8, 1) reach the kernels as they are; a column
// stride other than 1 does not.
func.func @strided(%x: memref<4x4xf32, strided<[8, 2]>>, %o: memref<4x4xf32>) {
  // expected-error @+1 {{does not hold its rows contiguously; the kernels read rows of consecutive elements (innermost stride 1)}}
  greta.kernel "add" ins(%x, %x : memref<4x4xf32, strided<[8, 2]>>, memref<4x4xf32, strided<[8, 2]>>) outs(%o : memref<4x4xf32>)
  return
}

// -----

func.func @forward() -> tensor<2xf32> {
  // expected-error @+1 {{greta-kernels-to-calls: not lowered; run greta-lower-to-kernels and one-shot-bufferize first}}
  %w = greta.param "w" : tensor<2xf32>
  return %w : tensor<2xf32>
}

// -----

memref.global "private" constant @__greta_param_w : memref<2x2x2xf32> {greta.param = "w"}
func.func @rank3() {
  // expected-error @+1 {{parameter 'w' has rank 3; the runtime serves rank 1 and 2 parameters}}
  %w = memref.get_global @__greta_param_w : memref<2x2x2xf32>
  return
}

// RUN: greta-opt %s -split-input-file --greta-strip-trace | FileCheck %s
// Strip then insert again gives the traces back (tags are kept).
// RUN: greta-opt %s -split-input-file --greta-strip-trace --greta-insert-trace="stages=attn_out" | FileCheck %s --check-prefix=AGAIN

// CHECK-LABEL: func.func @strip
// CHECK-NEXT: %[[O:.+]] = greta.linear {{.*}}{greta.stages = [#greta.stage<"attn_out", 0>]}
// CHECK-NEXT: %[[R:.+]] = greta.add {{.*}}{greta.stages = [#greta.stage<"residual_post_attn", 0>]}
// CHECK-NOT: greta.trace
// CHECK: return %[[R]]
// AGAIN-LABEL: func.func @strip
// AGAIN-NEXT: %[[O:.+]] = greta.linear
// AGAIN-NEXT: greta.trace %[[O]] {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"}
// AGAIN-NEXT: greta.add
// AGAIN-NEXT: return
func.func @strip(%x: tensor<?x8xf32>, %w: tensor<8x8xf32>, %m: memref<?x8xf32>) -> tensor<?x8xf32> {
  %o = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 0>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  greta.trace %o {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
  %r = greta.add %x, %o {greta.stages = [#greta.stage<"residual_post_attn", 0>]} : tensor<?x8xf32>
  greta.trace %r {layer = 0 : i64, payload = #greta<payload full>, record_id = 8 : i64, stage = "residual_post_attn"} : tensor<?x8xf32>
  greta.trace %m {layer = 0 : i64, payload = #greta<payload stats>, record_id = 8 : i64, stage = "residual_post_attn"} : memref<?x8xf32>
  return %r : tensor<?x8xf32>
}

// -----

// Nothing to strip: the IR is unchanged.
// CHECK-LABEL: func.func @nothing
// CHECK-NEXT: greta.swiglu
// CHECK-NEXT: return
func.func @nothing(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %s = greta.swiglu %x, %x : tensor<?x8xf32>
  return %s : tensor<?x8xf32>
}

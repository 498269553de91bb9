// RUN: greta-opt %s --greta-kernels-to-calls --split-input-file | FileCheck %s
// RUN: greta-opt %s --greta-kernels-to-calls="backend=hip" --split-input-file | FileCheck %s --check-prefix=HIP
// RUN: not greta-opt %s --greta-kernels-to-calls="backend=a-b" --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// Memref-level kernels, traces and parameter globals become C ABI calls.

// The parameter global is replaced by the runtime call, its name a
// NUL-terminated constant.
// CHECK-NOT: memref.global
// CHECK-DAG: llvm.mlir.global internal constant @__greta_param_name_model_w("model.w\00")
// CHECK-DAG: func.func private @greta_rt_param_r2_f32(!llvm.ptr) -> memref<?x?xf32> attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @greta_cpu_linear_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @greta_cpu_rms_norm_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?xf32, strided<[?], offset: ?>>, f64, memref<?x?xf32, strided<[?, ?], offset: ?>>) attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @greta_rt_trace_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, i64, i64) attributes {llvm.emit_c_interface}
// HIP-DAG: func.func private @greta_hip_linear_f32(
// HIP-DAG: func.func private @greta_rt_trace_f32(
// BAD: backend 'a-b' must be a non-empty identifier

// The model entry point gets a C interface too.
// CHECK-LABEL: func.func @forward(
// CHECK-SAME: %[[X:[^:]+]]: memref<?x4xf32>, %[[N:[^:]+]]: memref<4xf32>) -> memref<?x4xf32> attributes {llvm.emit_c_interface}
memref.global "private" constant @__greta_param_model_w : memref<4x4xf32> {greta.param = "model.w"}
func.func @forward(%x: memref<?x4xf32>, %norm: memref<4xf32>) -> memref<?x4xf32> {
  %c0 = arith.constant 0 : index
  %eps = arith.constant 1.0e-05 : f64
  %n = memref.dim %x, %c0 : memref<?x4xf32>
  // CHECK: %[[NAME:.+]] = llvm.mlir.addressof @__greta_param_name_model_w : !llvm.ptr
  // CHECK: %[[P:.+]] = call @greta_rt_param_r2_f32(%[[NAME]]) : (!llvm.ptr) -> memref<?x?xf32>
  // CHECK: %[[W:.+]] = memref.cast %[[P]] : memref<?x?xf32> to memref<4x4xf32>
  %w = memref.get_global @__greta_param_model_w : memref<4x4xf32>
  %h = memref.alloc(%n) : memref<?x4xf32>
  // CHECK: %[[XA:.+]] = memref.cast %[[X]] : memref<?x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  // CHECK: %[[NA:.+]] = memref.cast %[[N]] : memref<4xf32> to memref<?xf32, strided<[?], offset: ?>>
  // CHECK: %[[HA:.+]] = memref.cast %[[H:.+]] : memref<?x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  // CHECK: call @greta_cpu_rms_norm_f32(%[[XA]], %[[NA]], %{{.+}}, %[[HA]]) {greta.buffer_stages = [#greta.stage<"attn_in", 0>]}
  greta.kernel "rms_norm" ins(%x, %norm, %eps : memref<?x4xf32>, memref<4xf32>, f64) outs(%h : memref<?x4xf32>) {greta.buffer_stages = [#greta.stage<"attn_in", 0>]}
  // CHECK: %[[TA:.+]] = memref.cast %[[H]] : memref<?x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  // CHECK: %[[ID:.+]] = arith.constant 2 : i64
  // CHECK: %[[PAY:.+]] = arith.constant 1 : i64
  // CHECK: call @greta_rt_trace_f32(%[[TA]], %[[ID]], %[[PAY]]) {greta.layer = 0 : i64, greta.stage = "attn_in"}
  greta.trace %h {layer = 0 : i64, payload = #greta<payload stats>, record_id = 2 : i64, stage = "attn_in"} : memref<?x4xf32>
  %y = memref.alloc(%n) : memref<?x4xf32>
  // CHECK: %[[WA:.+]] = memref.cast %[[W]] : memref<4x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
  // CHECK: call @greta_cpu_linear_f32(%{{.+}}, %[[WA]], %{{.+}}) :
  greta.kernel "linear" ins(%h, %w : memref<?x4xf32>, memref<4x4xf32>) outs(%y : memref<?x4xf32>)
  // CHECK-NOT: greta.
  return %y : memref<?x4xf32>
}

// -----

// Rank-1 traces become [n, 1] (one record per row), rank 3 folds into
// [n, rest]; f64 selects the f64 entry points; a private helper gets no C
// interface.

// CHECK-LABEL: func.func private @helper(
// CHECK-NOT: llvm.emit_c_interface
// CHECK-SAME: ) {
func.func private @helper(%v: memref<?xf64>, %t: memref<?x2x3xf64>) {
  // CHECK: %[[D:.+]] = memref.dim %{{.+}}, %c0
  // CHECK: %[[E:.+]] = memref.expand_shape %{{.+}} {{\[\[}}0, 1]] output_shape [%[[D]], 1] : memref<?xf64> into memref<?x1xf64>
  // CHECK: %[[EC:.+]] = memref.cast %[[E]] : memref<?x1xf64> to memref<?x?xf64, strided<[?, ?], offset: ?>>
  // CHECK: call @greta_rt_trace_f64(%[[EC]], %{{.+}}, %{{.+}})
  greta.trace %v {layer = 1 : i64, payload = #greta<payload hash>, record_id = 18 : i64, stage = "attn_in"} : memref<?xf64>
  // CHECK: %[[C:.+]] = memref.collapse_shape %{{.+}} {{\[\[}}0], [1, 2]] : memref<?x2x3xf64> into memref<?x6xf64>
  // CHECK: %[[CC:.+]] = memref.cast %[[C]] : memref<?x6xf64> to memref<?x?xf64, strided<[?, ?], offset: ?>>
  // CHECK: call @greta_rt_trace_f64(%[[CC]], %{{.+}}, %{{.+}})
  greta.trace %t {layer = 1 : i64, payload = #greta<payload full>, record_id = 18 : i64, stage = "attn_in"} : memref<?x2x3xf64>
  return
}

// -----

// A value with two stage tags is traced twice in a row: the second call is a
// repeat (the runtime reuses the first call's records). Only ops without
// memory effects may stand between the two; a kernel that writes the buffer
// in place, or a trace of another buffer, ends the pair.

// CHECK: func.func private @greta_rt_trace_repeat_f32(memref<?x?xf32, strided<[?, ?], offset: ?>>, i64, i64) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @repeats(
func.func @repeats(%a: memref<?x4xf32>, %b: memref<?x4xf32>) {
  // CHECK: call @greta_rt_trace_f32({{.+}}) {greta.layer = 0 : i64, greta.stage = "residual_post_mlp"}
  // CHECK-NOT: call
  // CHECK: call @greta_rt_trace_repeat_f32({{.+}}) {greta.layer = 1 : i64, greta.stage = "residual_pre_attn"}
  greta.trace %a {layer = 0 : i64, payload = #greta<payload hash>, record_id = 11 : i64, stage = "residual_post_mlp"} : memref<?x4xf32>
  %eps = arith.constant 1.0e-05 : f64
  greta.trace %a {layer = 1 : i64, payload = #greta<payload hash>, record_id = 17 : i64, stage = "residual_pre_attn"} : memref<?x4xf32>
  // CHECK: call @greta_rt_trace_f32({{.+}}) {greta.layer = 1 : i64, greta.stage = "attn_in"}
  greta.trace %b {layer = 1 : i64, payload = #greta<payload hash>, record_id = 18 : i64, stage = "attn_in"} : memref<?x4xf32>
  // CHECK: call @greta_cpu_add_f32(
  // CHECK: call @greta_rt_trace_f32({{.+}}) {greta.layer = 1 : i64, greta.stage = "residual_post_attn"}
  greta.kernel "add" ins(%a, %b : memref<?x4xf32>, memref<?x4xf32>) outs(%b : memref<?x4xf32>)
  greta.trace %b {layer = 1 : i64, payload = #greta<payload hash>, record_id = 24 : i64, stage = "residual_post_attn"} : memref<?x4xf32>
  // CHECK: call @greta_rt_trace_f32({{.+}}) {greta.layer = 1 : i64, greta.stage = "ffn_norm_in"}
  // CHECK-NOT: trace_repeat
  greta.trace %a {layer = 1 : i64, payload = #greta<payload hash>, record_id = 25 : i64, stage = "ffn_norm_in"} : memref<?x4xf32>
  return
}

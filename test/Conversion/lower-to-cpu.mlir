// The whole committed model lowers to the LLVM dialect and nothing else,
// with @forward's C interface and the runtime's entry points declared.
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace --greta-lower-to-cpu | FileCheck %s
// f64 (the reference) selects the f64 kernels; f16 emulation adds rounds.
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-convert-precision=precision=f64 --greta-insert-trace --greta-lower-to-cpu | FileCheck %s --check-prefix=F64
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-convert-precision=precision=f16 --greta-lower-to-cpu | FileCheck %s --check-prefix=F16
// The small module below: intermediate buffers come from the runtime's
// allocator and are freed after their last use, the result is not.
// RUN: greta-opt %s --greta-lower-to-cpu | FileCheck %s --check-prefix=FREE

// CHECK-NOT: {{^ *(%[^ ]+ = )?"?(greta|memref|arith|func|tensor|bufferization|scf|cf|index|ub)\.}}
// CHECK-DAG: llvm.func @_mlir_ciface_greta_cpu_attention_f32(!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i64, f64, i64, !llvm.ptr)
// CHECK-DAG: llvm.func @_mlir_ciface_greta_rt_param_r2_f32(!llvm.ptr, !llvm.ptr)
// CHECK-DAG: llvm.func @_mlir_ciface_greta_rt_trace_f32(!llvm.ptr, i64, i64)
// CHECK-DAG: llvm.func @_mlir_ciface_forward(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr)
// CHECK-DAG: llvm.mlir.global internal constant @__greta_param_name_model_layers_11_mlp_down_proj_weight("model.layers.11.mlp.down_proj.weight\00")
// CHECK-NOT: {{^ *(%[^ ]+ = )?"?(greta|memref|arith|func|tensor|bufferization|scf|cf|index|ub)\.}}

// F64-DAG: llvm.func @_mlir_ciface_greta_cpu_linear_f64(
// F64-DAG: llvm.func @_mlir_ciface_greta_rt_param_r1_f64(
// F64-DAG: llvm.func @_mlir_ciface_greta_rt_trace_f64(
// F64-NOT: _f32(

// F16-DAG: llvm.func @_mlir_ciface_greta_cpu_round_f32(!llvm.ptr, i64, !llvm.ptr)
// F16-NOT: greta_rt_trace

// FREE-DAG: llvm.func @greta_rt_alloc(i64) -> !llvm.ptr
// FREE-DAG: llvm.func @greta_rt_free(!llvm.ptr)
// FREE-NOT: llvm.func @malloc
// FREE-LABEL: llvm.func @forward(
// %a's buffer is freed right after its last use (the first swiglu), before
// the next kernel runs, not at the end of the function; %d reuses %b's
// buffer in place and is returned, so two buffers are freed, %c's last.
// FREE: llvm.call @greta_cpu_swiglu_f32(
// FREE-NOT: llvm.call @greta_cpu_add_f32(
// FREE: llvm.call @greta_rt_free(
// FREE: llvm.call @greta_cpu_add_f32(
// FREE: llvm.call @greta_cpu_swiglu_f32(
// FREE-NEXT: llvm.call @greta_rt_free(
// FREE-NOT: llvm.call @greta_rt_free(
// FREE: llvm.return
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %a = greta.add %x, %x : tensor<?x4xf32>
  %b = greta.swiglu %a, %a : tensor<?x4xf32>
  %c = greta.add %b, %b : tensor<?x4xf32>
  %d = greta.swiglu %c, %c : tensor<?x4xf32>
  return %d : tensor<?x4xf32>
}

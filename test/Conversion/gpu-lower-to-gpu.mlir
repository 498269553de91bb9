// greta-lower-to-gpu: the whole committed model lowers to the LLVM dialect,
// every kernel, parameter and trace goes to the GPU glue layer in the
// storage dtype, and every buffer comes from the device allocator (no host
// malloc/free/memcpy left).
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace --greta-lower-to-gpu=storage=f16 | FileCheck %s
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace --greta-lower-to-gpu=storage=bf16 | FileCheck %s --check-prefix=BF16
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-lower-to-gpu=storage=f32 | FileCheck %s --check-prefix=F32
// The small module below: intermediates are freed on the device, the result
// is not.
// RUN: greta-opt %s --greta-lower-to-gpu | FileCheck %s --check-prefix=FREE
// RUN: not greta-opt %s --greta-lower-to-gpu=storage=f64 2>&1 | FileCheck %s --check-prefix=BADDT

// CHECK-NOT: {{^ *(%[^ ]+ = )?"?(greta|memref|arith|func|tensor|bufferization|scf|cf|index|ub)\.}}
// CHECK-DAG: llvm.func @_mlir_ciface_greta_gpu_attention_f16(!llvm.ptr, !llvm.ptr, !llvm.ptr, !llvm.ptr, i64, i64, i64, f64, i64, !llvm.ptr)
// CHECK-DAG: llvm.func @_mlir_ciface_greta_gpu_param_r2_f16(!llvm.ptr, !llvm.ptr)
// CHECK-DAG: llvm.func @_mlir_ciface_greta_gpu_trace_f16(!llvm.ptr, i64, i64)
// CHECK-DAG: llvm.func @_mlir_ciface_greta_gpu_embedding_f16(
// CHECK-DAG: llvm.func @greta_gpu_rt_alloc(i64) -> !llvm.ptr
// CHECK-DAG: llvm.func @greta_gpu_rt_free(!llvm.ptr)
// CHECK-DAG: llvm.func @_mlir_ciface_forward(%{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr, %{{.+}}: !llvm.ptr)
// CHECK-NOT: @malloc
// CHECK-NOT: @free(
// CHECK-NOT: memcpy
// CHECK-NOT: greta_rt_
// CHECK-NOT: _f32(

// BF16-DAG: llvm.func @_mlir_ciface_greta_gpu_linear_bf16(
// BF16-DAG: llvm.func @_mlir_ciface_greta_gpu_trace_bf16(
// BF16-NOT: _f16(

// F32-DAG: llvm.func @_mlir_ciface_greta_gpu_linear_f32(
// F32-DAG: llvm.func @_mlir_ciface_greta_gpu_param_r1_f32(
// F32-NOT: greta_cpu_

// FREE-LABEL: llvm.func @forward(
// FREE: llvm.call @greta_gpu_rt_alloc(
// FREE: llvm.call @greta_gpu_add_f16(
// FREE-COUNT-2: llvm.call @greta_gpu_rt_free(
// FREE-NOT: llvm.call @greta_gpu_rt_free(
// FREE: llvm.return

// BADDT: greta-gpu-storage: unknown dtype 'f64' (expected f16, bf16 or f32)
func.func @forward(%x: tensor<?x4xf32>) -> tensor<?x4xf32> {
  %a = greta.add %x, %x : tensor<?x4xf32>
  %b = greta.swiglu %a, %a : tensor<?x4xf32>
  %c = greta.add %b, %a : tensor<?x4xf32>
  return %c : tensor<?x4xf32>
}

//===- Passes.td - greta lowering passes -------------------*- tablegen -*-===//
//
// The CPU lowering: greta compute ops -> greta.kernel (tensors) -> One-Shot
// Bufferize -> greta.kernel (memrefs) -> C ABI calls -> LLVM dialect.
// docs/LOWERING.md walks through the levels.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_CONVERSION_PASSES_TD
#define GRETA_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def LowerToKernels : Pass<"greta-lower-to-kernels", "::mlir::ModuleOp"> {
  let summary = "Lower greta compute ops to greta.kernel in destination style";
  let description = [{
    Each greta compute op (embedding, rms_norm, linear, rope, attention,
    swiglu, add, round, perturb) becomes a `tensor.empty` destination (its
    dynamic sizes read with `tensor.dim`) and a `greta.kernel` whose callee is
    a backend-neutral name (`rms_norm`, `linear_bias`, `inject_fault`, ...).
    Scalar attributes become `arith.constant` ins (f64 or i64) in the order of
    the C ABI (greta/rt/CInterface.h). Stage tags move onto the kernel op, so
    nothing that was traceable stops being traceable. `greta.param` and
    `greta.trace` are left alone: they bufferize as they are. The
    `greta.positions` argument marker is consumed (the kernels take the
    positions as an operand; the marker is only valid on tensors).
  }];
  let dependentDialects = ["::mlir::greta::GretaDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

def KernelsToCalls : Pass<"greta-kernels-to-calls", "::mlir::ModuleOp"> {
  let summary = "Lower memref-level greta.kernel, greta.trace and parameters "
                "to C ABI calls";
  let description = [{
    Runs after bufferization and buffer deallocation:

    - `greta.kernel "<op>"` on memrefs becomes
      `func.call @greta_<backend>_<op>_<f32|f64>` with every memref cast to
      its dynamic identity-layout type;
    - `greta.trace` becomes `func.call @greta_rt_trace_<dt>(memref<?x?xT>,
      i64 record_id, i64 payload)` (rank 1 is expanded to [n, 1], ranks above
      2 are collapsed to [n, rest]); a trace that directly follows a trace
      of the same buffer, with only memory-effect-free ops between them (a
      value tagged with two stages), calls `..._trace_repeat_<dt>` with the
      same arguments instead: its rows are that trace's bytes, and the
      runtime reuses that trace's digests;
    - a `memref.get_global` of a parameter global (the bufferized form of
      `greta.param`, see docs/LOWERING.md) becomes
      `func.call @greta_rt_param_r{1,2}_<dt>(!llvm.ptr name)` followed by a
      `memref.cast` to the static type.

    Callees are declared `func.func private` with `llvm.emit_c_interface`,
    and every public function definition (the model's `@forward`) gets
    `llvm.emit_c_interface` too, so the host calls `_mlir_ciface_forward`.
  }];
  let options = [
    Option<"backend", "backend", "std::string", /*default=*/"\"cpu\"",
           "Kernel library prefix: kernels are called greta_<backend>_<op>_<dt>">,
    Option<"device", "device", "bool", /*default=*/"false",
           "Device backend (GPU): f16/bf16/f32 storage (f64 is an error), "
           "parameters and traces call greta_<backend>_param_r<k>_<dt> / "
           "greta_<backend>_trace_<dt> (device buffers), and a memref.copy "
           "left by bufferization is an error (the host never touches "
           "device memory)">,
  ];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::LLVM::LLVMDialect"];
}

def GpuStorage : Pass<"greta-gpu-storage", "::mlir::ModuleOp"> {
  let summary = "Retype the graph's f32 tensors to the GPU storage type";
  let description = [{
    GPU precision is storage precision: with `dtype=f16` (or `bf16`) every
    f32 tensor type of the module (function signatures, block arguments, op
    results, `greta.param` results, dense constants) becomes f16 (bf16), so
    the buffers really hold 16-bit values and the kernels read and write
    them (computing in fp32 inside). `dtype=f32` changes nothing. A
    `greta.round` (CPU emulation, greta-convert-precision) to the storage
    type is dropped (its tags move to its input's producer); one to another
    type is an error. f64 tensors are an error (the GPU has no f64 kernels).
  }];
  let options = [
    Option<"dtype", "dtype", "std::string", /*default=*/"\"f16\"",
           "Storage type: f16, bf16 or f32">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

def GpuFuseMoEExperts : Pass<"greta-gpu-fuse-moe-experts", "::mlir::ModuleOp"> {
  let summary = "One grouped kernel per mixture-of-experts expert on the GPU";
  let description = [{
    Each expert of a mixture-of-experts layer as the importer builds it,
    `greta.moe_accumulate(linear(swiglu(linear(x, Wg), linear(x, Wu)), Wd),
    sel, acc?, e)` with untagged single-use intermediates and no biases,
    becomes one `greta.kernel "moe_expert_swiglu"` (`_first` without acc)
    ins(x, sel, [acc,] Wg, Wu, Wd, e): the GPU gathers the rows routed to e,
    runs the three GEMMs and the SwiGLU on them alone and adds their
    weighted output to acc on those rows (runtime/gpu/GpuMoEExperts.cpp),
    instead of every expert on every row. The accumulate's tags move to the
    kernel. Anything else is left as it is (a tagged intermediate keeps its
    trace). Runs in greta-lower-to-gpu after greta-gpu-storage.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
}

def GpuDeviceAllocator : Pass<"greta-gpu-device-allocator", "::mlir::ModuleOp"> {
  let summary = "Route memref allocations to the GPU runtime's device allocator";
  let description = [{
    Runs after `finalize-memref-to-llvm{use-generic-functions=1}`: renames
    the generic allocation functions `_mlir_memref_to_llvm_alloc`,
    `_mlir_memref_to_llvm_aligned_alloc` and `_mlir_memref_to_llvm_free`
    (declarations and calls) to `greta_gpu_rt_alloc`,
    `greta_gpu_rt_aligned_alloc` and `greta_gpu_rt_free`
    (runtime/gpu/GpuGlue.cpp), which allocate device memory. A plain
    `malloc`/`free`/`aligned_alloc` left in the module is an error: every
    buffer of a GPU program lives on the device.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

def VerifyLowered : Pass<"greta-verify-lowered", "::mlir::ModuleOp"> {
  let summary = "Check that only LLVM-dialect ops are left (the last step of "
                "greta-lower-to-cpu and greta-lower-to-gpu)";
  let description = [{
    The LLVM IR translation accepts the `llvm` dialect (and the module).
    Anything else left by the pipeline (an `affine.apply` of a slice offset,
    an `unrealized_conversion_cast`, an op of a dialect no step lowers) would
    fail later, in codegen, far from its cause. This pass reports the first
    such op at its location, with the op's name, and fails the pipeline.
  }];
}

#endif // GRETA_CONVERSION_PASSES_TD

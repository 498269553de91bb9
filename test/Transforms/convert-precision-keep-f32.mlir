// keep-f32: stages or greta ops the half emulation leaves unrounded, and the
// greta.emulated_precision stamp that makes a second run a no-op.
// RUN: greta-opt %s --greta-convert-precision="precision=bf16 keep-f32=residual_post_attn,rms_norm" | FileCheck %s --check-prefix=KEEP
// RUN: greta-opt %s --greta-convert-precision="precision=bf16 keep-f32=greta.linear" | FileCheck %s --check-prefix=OPNAME
// A second run, even without keep-f32, keeps what the first kept.
// RUN: greta-opt %s --greta-convert-precision="precision=bf16 keep-f32=residual_post_attn,rms_norm" --greta-convert-precision="precision=bf16" | FileCheck %s --check-prefix=KEEP
// RUN: greta-opt %s --greta-convert-precision="precision=bf16" --greta-convert-precision="precision=f32" | FileCheck %s --check-prefix=STAMP
// RUN: greta-opt %s -split-input-file -verify-diagnostics --greta-convert-precision="precision=bf16" --greta-convert-precision="precision=f16"
// RUN: not greta-opt %s --greta-convert-precision="precision=bf16 keep-f32=residual,rms_norm" 2>&1 | FileCheck %s --check-prefix=UNKNOWN
// RUN: not greta-opt %s --greta-convert-precision="precision=f64 keep-f32=rms_norm" 2>&1 | FileCheck %s --check-prefix=NOTHALF
// RUN: not greta-opt %s --greta-convert-precision="precision=bf16" --greta-convert-precision="precision=bf16 keep-f32=rms_norm" 2>&1 | FileCheck %s --check-prefix=LATE
// The same list again is a no-op.
// RUN: greta-opt %s --greta-convert-precision="precision=bf16 keep-f32=residual_post_attn,rms_norm" --greta-convert-precision="precision=bf16 keep-f32=residual_post_attn,rms_norm" | FileCheck %s --check-prefix=KEEP
// RUN: not greta-opt %s --greta-convert-precision="precision=bf16 keep-f32=rms_norm" --greta-lower-to-gpu="storage=bf16" 2>&1 | FileCheck %s --check-prefix=GPU

// KEEP-LABEL: module attributes {greta.emulated_keep_f32 = ["residual_post_attn", "rms_norm"], greta.emulated_precision = "bf16", greta.num_layers = 1 : i64}
// KEEP: %[[W:.+]] = greta.param "w"
// KEEP-NEXT: %[[WR:.+]] = greta.round %[[W]] {to = "bf16"}
// KEEP-NEXT: %[[N:.+]] = greta.param "n"
// KEEP-NEXT: %[[NR:.+]] = greta.round %[[N]] {to = "bf16"}
// KEEP-NEXT: %[[L:.+]] = greta.linear %{{.+}}, %[[WR]]
// KEEP-NEXT: %[[LR:.+]] = greta.round %[[L]] {greta.stages = [#greta.stage<"attn_out", 0>], to = "bf16"}
// KEEP-NEXT: %[[R:.+]] = greta.rms_norm %[[LR]], %[[NR]]
// KEEP-NOT: greta.round
// KEEP-NEXT: %[[A:.+]] = arith.addf %[[R]], %{{.+}} {greta.stages = [#greta.stage<"residual_post_attn", 0>]}
// KEEP-NEXT: return %[[A]]

// OPNAME: %[[L:.+]] = greta.linear
// OPNAME-SAME: greta.stages = [#greta.stage<"attn_out", 0>]
// OPNAME-NEXT: %[[R:.+]] = greta.rms_norm %[[L]]
// OPNAME-NEXT: greta.round %[[R]] {to = "bf16"}

// f32 after an emulation changes nothing (greta-run refuses the mislabel).
// STAMP-LABEL: module attributes {greta.emulated_precision = "bf16", greta.num_layers = 1 : i64}
// STAMP-COUNT-5: greta.round

// UNKNOWN: error: greta-convert-precision: 'residual' in option 'keep-f32' is neither a stage (embed_out, {{.*}}, logits) nor a greta op (add, attention, {{.*}}, rms_norm, rope, {{.*}})
// LATE: error: greta-convert-precision: the module already emulates bf16 ('greta.emulated_precision'); give keep-f32 to the first conversion
// NOTHALF: error: greta-convert-precision: option 'keep-f32' applies to precision=f16 or bf16, not f64
// GPU: error: greta-gpu-storage: the module was emulated with greta-convert-precision{keep-f32=["rms_norm"]}, but the GPU stores every tensor in bf16 (keep-f32 is CPU emulation only)

// expected-error @+1 {{greta-convert-precision: the module already emulates bf16 ('greta.emulated_precision'); cannot convert it to f16}}
module attributes {greta.num_layers = 1 : i64} {
  func.func @forward(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    %w = greta.param "w" : tensor<8x8xf32>
    %n = greta.param "n" : tensor<8xf32>
    %l = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 0>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    %r = greta.rms_norm %l, %n {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %a = arith.addf %r, %x {greta.stages = [#greta.stage<"residual_post_attn", 0>]} : tensor<?x8xf32>
    return %a : tensor<?x8xf32>
  }
}

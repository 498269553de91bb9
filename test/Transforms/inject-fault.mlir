// RUN: greta-opt %s -split-input-file --greta-inject-fault="stage=attn_out layer=0" | FileCheck %s --check-prefix=SCALE
// RUN: greta-opt %s -split-input-file --greta-inject-fault="stage=attn_out layer=0 kind=offset magnitude=0.25 from-position=826" | FileCheck %s --check-prefix=OFFSET
// RUN: greta-opt %s -split-input-file --greta-inject-fault="stage=residual_pre_attn layer=1 kind=bitflip magnitude=31 from-position=5" | FileCheck %s --check-prefix=BITFLIP
// Inject then trace: the target stage records the perturbed value, the
// earlier stage of the same value the clean one.
// RUN: greta-opt %s -split-input-file --greta-inject-fault="stage=residual_pre_attn layer=1" --greta-insert-trace="stages=residual_post_attn,residual_pre_attn" | FileCheck %s --check-prefix=TRACED
// Errors: specific, located, non-zero exit.
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=attn_output layer=0" 2>&1 | FileCheck %s --check-prefix=BAD-STAGE
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="layer=0" 2>&1 | FileCheck %s --check-prefix=NO-STAGE
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=attn_out" 2>&1 | FileCheck %s --check-prefix=NO-LAYER
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=q_pre_rope layer=1" 2>&1 | FileCheck %s --check-prefix=UNTAGGED
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=mlp_out layer=1" 2>&1 | FileCheck %s --check-prefix=NO-POSITIONS
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=attn_out layer=0 kind=zero" 2>&1 | FileCheck %s --check-prefix=BAD-KIND
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=attn_out layer=0 kind=bitflip magnitude=32" 2>&1 | FileCheck %s --check-prefix=BAD-BIT
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=attn_out layer=0 from-position=-3" 2>&1 | FileCheck %s --check-prefix=BAD-FROM
// RUN: not greta-opt %s -split-input-file --greta-inject-fault="stage=ffn_norm_in layer=1" 2>&1 | FileCheck %s --check-prefix=AMBIGUOUS

// BAD-STAGE: inject-fault.mlir:[[@LINE+8]]:1: error: greta-inject-fault: unknown stage 'attn_output' in option 'stage' (expected one of embed_out, {{.*}}, logits)
// NO-STAGE: inject-fault.mlir:[[@LINE+7]]:1: error: greta-inject-fault: option 'stage' is required (one of embed_out, {{.*}}, logits)
// NO-LAYER: inject-fault.mlir:[[@LINE+6]]:1: error: greta-inject-fault: option 'layer' is required (>= 0), got -1
// UNTAGGED: inject-fault.mlir:[[@LINE+5]]:1: error: greta-inject-fault: no value is tagged stage 'q_pre_rope' at layer 1
// BAD-KIND: inject-fault.mlir:[[@LINE+4]]:1: error: greta-inject-fault: unknown kind 'zero' in option 'kind' (expected scale, offset or bitflip)
// BAD-BIT: inject-fault.mlir:[[@LINE+3]]:1: error: greta-inject-fault: bitflip magnitude must be a bit index in [0, 32) for 'f32', got 32
// BAD-FROM: inject-fault.mlir:[[@LINE+2]]:1: error: greta-inject-fault: option 'from-position' must be >= 0, got -3
// SCALE-LABEL: module attributes {greta.num_layers = 2 : i64}
module attributes {greta.num_layers = 2 : i64} {
  // SCALE-LABEL: func.func @forward
  // SCALE-SAME: %[[POS:[^:]+]]: tensor<?xi64> {greta.positions}
  // SCALE-NEXT: %[[O:.+]] = greta.linear %{{.+}}, %{{.+}} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  // SCALE-NEXT: %[[P:.+]] = greta.perturb %[[O]], %[[POS]] {from_position = 0 : i64, greta.stages = [#greta.stage<"attn_out", 0>], kind = "scale", magnitude = 1.010000e+00 : f64}
  // SCALE-NEXT: greta.trace %[[P]] {{.*}}stage = "attn_out"
  // SCALE-NEXT: %[[R:.+]] = greta.add %{{.+}}, %[[P]] {greta.stages = [#greta.stage<"residual_post_attn", 0>, #greta.stage<"residual_pre_attn", 1>]}
  // SCALE-NOT: greta.perturb
  // SCALE: return

  // OFFSET-LABEL: func.func @forward
  // OFFSET-NEXT: %[[O:.+]] = greta.linear
  // OFFSET-NEXT: %[[P:.+]] = greta.perturb %[[O]], %{{.+}} {from_position = 826 : i64, greta.stages = [#greta.stage<"attn_out", 0>], kind = "offset", magnitude = 2.500000e-01 : f64}
  // OFFSET-NEXT: greta.trace %[[P]]
  // OFFSET-NEXT: greta.add %{{.+}}, %[[P]]

  // The value names two stages: the earlier one (residual_post_attn of layer
  // 0) keeps naming the clean value; the target and every use move to the
  // perturb (layer 1 reads a corrupted input).
  // BITFLIP-LABEL: func.func @forward
  // BITFLIP: %[[R:.+]] = greta.add %{{.+}}, %{{.+}} {greta.stages = [#greta.stage<"residual_post_attn", 0>]} : tensor<?x8xf32>
  // BITFLIP-NEXT: %[[P:.+]] = greta.perturb %[[R]], %{{.+}} {from_position = 5 : i64, greta.stages = [#greta.stage<"residual_pre_attn", 1>], kind = "bitflip", magnitude = 3.100000e+01 : f64}
  // BITFLIP-NEXT: greta.rms_norm %[[P]]
  // BITFLIP-NEXT: greta.rms_norm %[[P]]
  // BITFLIP-NEXT: return

  // TRACED-LABEL: func.func @forward
  // TRACED: %[[R:.+]] = greta.add
  // TRACED-NEXT: greta.trace %[[R]] {{.*}}stage = "residual_post_attn"
  // TRACED-NEXT: %[[P:.+]] = greta.perturb %[[R]]
  // TRACED-NEXT: greta.trace %[[P]] {{.*}}stage = "residual_pre_attn"
  // TRACED-NOT: greta.trace %[[R]]
  func.func @forward(%tokens: tensor<?xi64>, %positions: tensor<?xi64> {greta.positions},
                     %x: tensor<?x8xf32>, %w: tensor<8x8xf32>, %wn: tensor<8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
    %o = greta.linear %x, %w {greta.stages = [#greta.stage<"attn_out", 0>]} : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
    greta.trace %o {layer = 0 : i64, payload = #greta<payload hash>, record_id = 7 : i64, stage = "attn_out"} : tensor<?x8xf32>
    %r = greta.add %x, %o {greta.stages = [#greta.stage<"residual_post_attn", 0>, #greta.stage<"residual_pre_attn", 1>]} : tensor<?x8xf32>
    // AMBIGUOUS: inject-fault.mlir:[[@LINE+3]]:11: error: greta-inject-fault: stage 'ffn_norm_in' at layer 1 tags several values: which one to perturb is ambiguous
    // AMBIGUOUS: inject-fault.mlir:[[@LINE+1]]:11: note: also tagged here
    %n1 = greta.rms_norm %r, %wn {eps = 1.0e-5 : f64, greta.stages = [#greta.stage<"ffn_norm_in", 1>]} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    %n2 = greta.rms_norm %r, %wn {eps = 1.0e-6 : f64, greta.stages = [#greta.stage<"ffn_norm_in", 1>]} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
    return %n1, %n2 : tensor<?x8xf32>, tensor<?x8xf32>
  }

  // A function without a positions argument cannot place a fault.
  // NO-POSITIONS: inject-fault.mlir:[[@LINE+1]]:3: error: function 'no_positions' has no argument marked 'greta.positions' (the token positions)
  func.func @no_positions(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
    %s = greta.swiglu %x, %x {greta.stages = [#greta.stage<"mlp_out", 1>]} : tensor<?x8xf32>
    return %s : tensor<?x8xf32>
  }
}

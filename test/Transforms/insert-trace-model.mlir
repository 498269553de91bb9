// greta-insert-trace on the committed test model (llama-tiny, 12 layers):
// 146 traces (embed_out once, 12 stages x 12 layers, logits once), each right
// after its producer, in execution order.

// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace | FileCheck %s
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace | grep -c '^ *greta.trace ' | FileCheck %s --check-prefix=COUNT
// COUNT: {{^}}146{{$}}

// Execution order over the whole model: the execution-order keys (layer *
// 16 + the stage's rank in Stages.h kExecutionOrder; v_proj, stage index 13,
// ranks right after k_pre_rope, index 4) strictly increase from embed_out to
// logits.
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace | grep -o 'record_id = [0-9]*' | sed 's/.* //' > %t.ids
// RUN: awk '{ s = $1 %% 16; r = s <= 4 ? s : (s == 13 ? 5 : s + 1); print int($1 / 16) * 16 + r }' %t.ids | sort -n -c -u
// RUN: head -n 1 %t.ids | FileCheck %s --check-prefix=FIRST
// FIRST: {{^}}0{{$}}
// RUN: tail -n 1 %t.ids | FileCheck %s --check-prefix=LAST
// LAST: {{^}}188{{$}}

// Layer 0, stage by stage, each trace right after the op producing it.
// CHECK-LABEL: func.func @forward
// CHECK-NOT: greta.trace
// CHECK: %[[EMB:.+]] = greta.embedding
// CHECK-NEXT: greta.trace %[[EMB]] {{.*}}layer = 0 : i64{{.*}}stage = "embed_out"
// CHECK-NEXT: greta.trace %[[EMB]] {{.*}}layer = 0 : i64{{.*}}stage = "residual_pre_attn"
// CHECK: %[[H:.+]] = greta.rms_norm %[[EMB]]
// CHECK-NEXT: greta.trace %[[H]] {{.*}}layer = 0 : i64{{.*}}stage = "attn_in"
// CHECK: %[[Q:.+]] = greta.linear %[[H]]
// CHECK-NEXT: greta.trace %[[Q]] {{.*}}layer = 0 : i64{{.*}}stage = "q_pre_rope"
// CHECK: %[[K:.+]] = greta.linear %[[H]]
// CHECK-NEXT: greta.trace %[[K]] {{.*}}layer = 0 : i64{{.*}}stage = "k_pre_rope"
// CHECK: %[[QR:.+]] = greta.rope %[[Q]]
// CHECK-NEXT: greta.trace %[[QR]] {{.*}}layer = 0 : i64{{.*}}stage = "q_post_rope"
// CHECK-NEXT: %[[KR:.+]] = greta.rope %[[K]]
// CHECK-NEXT: greta.trace %[[KR]] {{.*}}layer = 0 : i64{{.*}}stage = "k_post_rope"
// CHECK-NEXT: %[[A:.+]] = greta.attention %[[QR]], %[[KR]]
// CHECK-NOT: greta.trace %[[A]]
// CHECK: %[[O:.+]] = greta.linear %[[A]]
// CHECK-NEXT: greta.trace %[[O]] {{.*}}layer = 0 : i64{{.*}}stage = "attn_out"
// CHECK-NEXT: %[[R1:.+]] = greta.add %[[EMB]], %[[O]]
// CHECK-NEXT: greta.trace %[[R1]] {{.*}}layer = 0 : i64{{.*}}stage = "residual_post_attn"
// CHECK: %[[F:.+]] = greta.rms_norm %[[R1]]
// CHECK-NEXT: greta.trace %[[F]] {{.*}}layer = 0 : i64{{.*}}stage = "ffn_norm_in"
// CHECK: %[[M:.+]] = greta.linear {{.*}}#greta.stage<"mlp_out", 0>
// CHECK-NEXT: greta.trace %[[M]] {{.*}}layer = 0 : i64{{.*}}stage = "mlp_out"
// CHECK-NEXT: %[[R2:.+]] = greta.add %[[R1]], %[[M]]
// CHECK-NEXT: greta.trace %[[R2]] {{.*}}layer = 0 : i64{{.*}}stage = "residual_post_mlp"
// CHECK-NEXT: greta.trace %[[R2]] {{.*}}layer = 1 : i64{{.*}}stage = "residual_pre_attn"
// CHECK: greta.trace {{.*}}layer = 11 : i64{{.*}}stage = "residual_post_mlp"
// CHECK-NOT: greta.trace
// CHECK: %[[L:.+]] = greta.linear {{.*}}-> tensor<?x8192xf32>
// CHECK-NEXT: greta.trace %[[L]] {{.*}}layer = 11 : i64{{.*}}stage = "logits"
// CHECK-NEXT: return %[[L]]

// A trace carries the location of its producer: the HF module name.
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace --mlir-print-debuginfo --mlir-print-local-scope | FileCheck %s --check-prefix=LOC
// LOC: greta.trace {{.*}}layer = 3 : i64{{.*}}stage = "q_pre_rope"{{.*}} loc("model.layers.3.self_attn.q_proj")

// A selection: exactly 4 traces, in order.
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace="stages=q_pre_rope,attn_out layers=0,4" | FileCheck %s --check-prefix=SEL
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace="stages=q_pre_rope,attn_out layers=0,4" | grep -c '^ *greta.trace ' | FileCheck %s --check-prefix=SELCOUNT
// SELCOUNT: {{^}}4{{$}}
// SEL: greta.trace {{.*}}layer = 0 : i64{{.*}}stage = "q_pre_rope"
// SEL: greta.trace {{.*}}layer = 0 : i64{{.*}}stage = "attn_out"
// SEL: greta.trace {{.*}}layer = 4 : i64{{.*}}stage = "q_pre_rope"
// SEL: greta.trace {{.*}}layer = 4 : i64{{.*}}stage = "attn_out"

// Idempotent: a second run adds nothing, after a full or a partial run.
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace --greta-insert-trace | grep -c '^ *greta.trace ' | FileCheck %s --check-prefix=COUNT
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace="stages=q_pre_rope,attn_out layers=0,4" --greta-insert-trace | grep -c '^ *greta.trace ' | FileCheck %s --check-prefix=COUNT

// The model round-trips through greta-opt unchanged, and stripping the
// traces gives it back exactly.
// RUN: greta-opt %models/llama-tiny/model.mlir --mlir-print-debuginfo --mlir-print-local-scope | diff - %models/llama-tiny/model.mlir
// RUN: greta-opt %models/llama-tiny/model.mlir --greta-insert-trace --greta-strip-trace --mlir-print-debuginfo --mlir-print-local-scope | diff - %models/llama-tiny/model.mlir

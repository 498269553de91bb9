// greta-gpu-storage: a selection row holds expert ids in the storage type,
// exact to 256 in bf16 and 2048 in f16; a router with more experts is
// refused by name for that type only.
// RUN: greta-opt %s --greta-gpu-storage=dtype=bf16 --verify-diagnostics > /dev/null
// RUN: greta-opt %s --greta-gpu-storage=dtype=f16 | FileCheck %s
// RUN: greta-opt %s --greta-gpu-storage=dtype=f32 | FileCheck %s --check-prefix=F32

// CHECK: greta.moe_router %{{.+}} {normalize = true, top_k = 2 : i64} : (tensor<?x300xf16>) -> tensor<?x4xf16>
// F32: greta.moe_router %{{.+}} : (tensor<?x300xf32>) -> tensor<?x4xf32>
func.func @wide(%logits: tensor<?x300xf32>) -> tensor<?x4xf32> {
  // expected-error @+1 {{'greta.moe_router' op greta-gpu-storage: 300 experts, but expert ids above 256 are not exact in bf16 (the selection stores ids in the storage type); use a wider storage type}}
  %sel = greta.moe_router %logits {top_k = 2 : i64, normalize = true} : (tensor<?x300xf32>) -> tensor<?x4xf32>
  return %sel : tensor<?x4xf32>
}

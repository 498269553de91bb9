// RUN: greta-opt %s --greta-verify-lowered --split-input-file -verify-diagnostics

// The last step of both pipelines: whatever is not in the llvm dialect is
// reported at its location before codegen (issue #20 item 4).

llvm.func @left(%a: i64) -> i64 {
  // expected-error @+1 {{'arith.addi' op is left after lowering: the LLVM IR translation accepts the llvm dialect only, and no step of the pipeline lowers 'arith.addi'}}
  %b = arith.addi %a, %a : i64
  llvm.return %b : i64
}

// -----

llvm.func @clean(%a: i64) -> i64 {
  %b = llvm.add %a, %a : i64
  llvm.return %b : i64
}

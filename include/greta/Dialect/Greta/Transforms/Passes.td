//===- Passes.td - greta passes ----------------------------*- tablegen -*-===//
#ifndef GRETA_TRANSFORMS_PASSES_TD
#define GRETA_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def InsertTrace : Pass<"greta-insert-trace", "::mlir::ModuleOp"> {
  let summary = "Insert a greta.trace after every selected tagged stage";
  let description = [{
    For every op carrying `greta.stages` tags, inserts one `greta.trace` per
    selected (stage, layer) tag right after the op, in tag order. Idempotent:
    a (stage, layer) already traced is not traced again.
  }];
  let options = [
    ListOption<"stages", "stages", "std::string",
               "Stages to trace (default: all 13 of the seed)">,
    ListOption<"layers", "layers", "int64_t",
               "Layers to trace (default: all)">,
    Option<"payload", "payload", "std::string", /*default=*/"\"hash\"",
           "What each record carries: hash | stats | full">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

def StripTrace : Pass<"greta-strip-trace", "::mlir::ModuleOp"> {
  let summary = "Remove every greta.trace";
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

#endif // GRETA_TRANSFORMS_PASSES_TD

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

def InjectFault : Pass<"greta-inject-fault", "::mlir::ModuleOp"> {
  let summary = "Perturb one tagged stage at one layer from a token position on";
  let description = [{
    Validates GRETA's own detectors and lets users rehearse a study: the
    value tagged (stage, layer) is replaced by a perturbed copy for every row
    whose position is >= from-position. Traces of that stage see the fault.
  }];
  let options = [
    Option<"stage", "stage", "std::string", "\"\"", "Stage to perturb">,
    Option<"layer", "layer", "int64_t", "-1", "Layer to perturb">,
    Option<"fromPosition", "from-position", "int64_t", "0",
           "First token position perturbed">,
    Option<"kind", "kind", "std::string", "\"scale\"",
           "scale | offset | bitflip">,
    Option<"magnitude", "magnitude", "double", "1.01",
           "Factor (scale), addend (offset) or bit index (bitflip)">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def ConvertPrecision : Pass<"greta-convert-precision", "::mlir::ModuleOp"> {
  let summary = "Run the graph in f64 (reference) or emulate f16/bf16";
  let description = [{
    `precision=f64` rewrites every f32 tensor of the graph to f64 (parameters
    are converted on load). `precision=f16|bf16` keeps f32 storage and rounds
    every op's result to the target type, emulating a half-precision engine on
    the CPU.
  }];
  let options = [
    Option<"precision", "precision", "std::string", "\"f32\"",
           "f32 | f64 | f16 | bf16">,
  ];
  let dependentDialects = ["::mlir::greta::GretaDialect"];
}

#endif // GRETA_TRANSFORMS_PASSES_TD

//===- GretaDialect.td - The greta dialect -----------------*- tablegen -*-===//
#ifndef GRETA_DIALECT_TD
#define GRETA_DIALECT_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Greta_Dialect : Dialect {
  let name = "greta";
  let cppNamespace = "::mlir::greta";
  let summary = "A Llama-family transformer with its residual-stream stages tagged";
  let description = [{
    The `greta` dialect expresses a decoder-only transformer (Llama family) on
    ranked tensors whose first dimension is the (dynamic) sequence of tokens.
    Values that are stages of the residual stream carry a discardable
    `greta.stages` attribute (an array of `#greta.stage<"name", layer>`) on the
    op that produces them; `greta-insert-trace` turns those tags into
    `greta.trace` ops.

    Attributes the dialect verifies wherever they appear:

    - `greta.stages` (on any op, greta's or not): a non-empty array of
      `#greta.stage` attributes without duplicates, on an op with exactly one
      result that is a ranked tensor or memref of floats with rank >= 1 (one
      trace record per row). Layers must be below the enclosing
      `greta.num_layers`; `embed_out` is tagged layer 0 and `logits` the last
      layer.
    - `greta.num_layers` (on the module): a positive integer.
    - `greta.positions` (unit, on a function argument): marks the token
      positions argument of a model function; its type must be a 1-D tensor of
      i32 or i64, and at most one argument of a function carries it.

    Other `greta.*` attributes (model metadata such as `greta.hidden_size`)
    are accepted as they are.
  }];
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let dependentDialects = ["::mlir::func::FuncDialect", "::mlir::tensor::TensorDialect"];
  let extraClassDeclaration = [{
    /// Name of the discardable attribute holding the stage tags of an op.
    static constexpr ::llvm::StringLiteral getStagesAttrName() { return "greta.stages"; }
    /// Module attribute: number of decoder layers (bounds tag layers).
    static constexpr ::llvm::StringLiteral getNumLayersAttrName() { return "greta.num_layers"; }
    /// Unit argument attribute marking a model function's token positions.
    static constexpr ::llvm::StringLiteral getPositionsAttrName() { return "greta.positions"; }
    /// Module attributes set by greta-convert-precision's f16/bf16 emulation:
    /// the emulated type, and the keep-f32 list when one was given.
    static constexpr ::llvm::StringLiteral getEmulatedPrecisionAttrName() { return "greta.emulated_precision"; }
    static constexpr ::llvm::StringLiteral getEmulatedKeepF32AttrName() { return "greta.emulated_keep_f32"; }
  }];
}

class Greta_Op<string mnemonic, list<Trait> traits = []> :
    Op<Greta_Dialect, mnemonic, traits>;

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

def Greta_Payload : I32EnumAttr<"Payload", "what a trace record carries", [
    I32EnumAttrCase<"hash", 0>,   // SHA-256 + nz_count per row
    I32EnumAttrCase<"stats", 1>,  // + nan/inf counts and fingerprint
    I32EnumAttrCase<"full", 2>    // + the row's values
  ]> {
  let cppNamespace = "::mlir::greta";
  let genSpecializedAttr = 0;
}
def Greta_PayloadAttr : EnumAttr<Greta_Dialect, Greta_Payload, "payload"> {
  // Printed `#greta<payload hash>`; parsed by hand so that a bad kind gets
  // "unknown payload 'x' (expected hash, stats or full)".
  let assemblyFormat = ?;
  let hasCustomAssemblyFormat = 1;
}

def Greta_StageAttr : AttrDef<Greta_Dialect, "Stage"> {
  let mnemonic = "stage";
  let summary = "A residual-stream stage tag: (stage name, layer)";
  let parameters = (ins StringRefParameter<"stage name">:$stage,
                        "int64_t":$layer);
  let assemblyFormat = "`<` $stage `,` $layer `>`";
  let genVerifyDecl = 1;
}

def Greta_TraceResource : Resource<"::mlir::greta::TraceResource">;
def Greta_KVCacheResource : Resource<"::mlir::greta::KVCacheResource">;

#endif // GRETA_DIALECT_TD

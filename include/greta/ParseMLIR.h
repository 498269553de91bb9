//===- ParseMLIR.h - Parse MLIR input with a nesting bound -------*- C++ -*-===//
//
// MLIR's parser (and its printer and verifier) recurse once per nesting
// level: an input nested some thousands of levels deep ("[[[[...", regions in
// regions, a chain of affine operators) overflows the stack and the tool dies
// of SIGSEGV. Every greta tool that reads textual MLIR first scans it with
// checkMLIRNesting and refuses, with a located error, anything nested deeper
// than kMaxMLIRNesting levels. The scan is linear, allocation-bounded and
// runs before the parser.
//
// What counts as one level: each open bracket of any kind, ( [ { <, until
// its closer (string literals and // comments are skipped; the '>' of '->'
// and a '>' inside other brackets, as in '>=', close nothing), and inside
// affine_map<...> / affine_set<...> each operator (+ - * floordiv ceildiv
// mod), since an affine expression nests once per operator.
//
// MLIR bytecode cannot be scanned as text. It is read on a thread whose
// stack grows with the input (the reader walks what it read recursively),
// its region nesting is measured without recursion, and a module nested
// deeper than kMaxMLIRNesting regions is refused and taken apart innermost
// first (the printer, the passes and the destructors recurse per level).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_PARSEMLIR_H
#define GRETA_PARSEMLIR_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringRef.h"

#include <cstddef>
#include <optional>

namespace llvm {
class MemoryBuffer;
class SourceMgr;
class raw_ostream;
} // namespace llvm

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace greta {

/// The deepest nesting accepted. MLIR 22 (Debian's libMLIR) overflows an
/// 8 MiB stack at about 3900 nested regions, the costliest construct
/// measured (docs/RELIABILITY.md); 1000 leaves a margin of almost 4.
constexpr unsigned kMaxMLIRNesting = 1000;

/// Where `text` first nests deeper than `limit`: the byte offset of the
/// bracket or operator that goes one level too deep. std::nullopt when the
/// text stays within the limit. MLIR bytecode is not scanned (see
/// parseMLIRFile).
std::optional<size_t> findExcessiveNesting(llvm::StringRef text,
                                           unsigned limit = kMaxMLIRNesting);

/// The message of the error (without location).
std::string excessiveNestingMessage(unsigned limit = kMaxMLIRNesting);

/// Scans `buffer`; when it nests too deeply, prints
/// "<name>:<line>:<col>: error: ..." to `os` (as MLIR's diagnostics do) and
/// returns failure.
mlir::LogicalResult checkMLIRNesting(const llvm::MemoryBuffer &buffer,
                                     llvm::raw_ostream &os);

/// True when `buffer` holds MLIR bytecode (its magic number).
bool isMLIRBytecode(llvm::StringRef buffer);

/// The deepest nesting of regions under `op` (0: no regions), counted
/// without recursion.
unsigned regionNestingDepth(mlir::Operation *op);

/// Erases `op` and everything nested in it, innermost first, so that no
/// destructor recurses through the nesting.
void eraseInnermostFirst(mlir::Operation *op);

/// parseSourceFile<ModuleOp> on the main buffer of `sourceMgr`, after the
/// nesting check (text: before parsing; bytecode: after reading, see
/// above); a refused input is reported as an error naming the file
/// (text: located) through `context`'s diagnostic handler and yields a
/// null module, as a parse error does.
mlir::OwningOpRef<mlir::ModuleOp> parseMLIRFile(llvm::SourceMgr &sourceMgr,
                                                mlir::MLIRContext *context);

} // namespace greta

#endif

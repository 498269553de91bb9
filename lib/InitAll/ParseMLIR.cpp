//===- ParseMLIR.cpp - Parse MLIR input with a nesting bound -----*- C++ -*-===//
//
// See greta/ParseMLIR.h: a linear pre-scan of textual MLIR that refuses
// nesting deeper than kMaxMLIRNesting before MLIR's recursive parser runs,
// and the same bound on the regions of MLIR bytecode once it is read.
//
//===----------------------------------------------------------------------===//
#include "greta/ParseMLIR.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Operation.h"
#include "mlir/Parser/Parser.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/thread.h"

#include <algorithm>
#include <vector>

using llvm::StringRef;

namespace {
bool isIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool isIdentChar(char c) {
  return isIdentStart(c) || (c >= '0' && c <= '9') || c == '$' || c == '.';
}

/// The state of the scan: the open brackets (at most `limit` of them) and
/// the operators seen in the current affine_map/affine_set body.
class NestingScanner {
public:
  explicit NestingScanner(unsigned limit) : limit(limit) {}

  std::optional<size_t> scan(StringRef text) {
    const size_t n = text.size();
    for (size_t i = 0; i < n; ++i) {
      char c = text[i];
      switch (c) {
      case '"': // A string literal: ends at '"' or (unterminated) a newline.
        for (++i; i < n && text[i] != '"' && text[i] != '\n'; ++i)
          if (text[i] == '\\')
            ++i;
        break;
      case '/':
        if (i + 1 < n && text[i + 1] == '/') {
          // mlir-opt's default --split-input-file marker starts a new,
          // independent input.
          if ((i == 0 || text[i - 1] == '\n') &&
              text.substr(i).starts_with("// -----"))
            reset();
          while (i < n && text[i] != '\n')
            ++i;
        }
        break;
      case '(':
      case '[':
      case '{':
      case '<':
        if (!push(c))
          return i;
        break;
      case ')':
        close('(');
        break;
      case ']':
        close('[');
        break;
      case '}':
        close('{');
        break;
      case '>':
        // Closes a '<' on top; otherwise ('>=' inside parentheses) nothing.
        if (!stack.empty() && (stack.back() == '<' || stack.back() == 'A'))
          pop();
        break;
      case '-':
        if (i + 1 < n && text[i + 1] == '>') { // '->'
          ++i;
          break;
        }
        [[fallthrough]];
      case '+':
      case '*':
        if (affineBodies && !affineOperator())
          return i;
        break;
      default:
        if (isIdentStart(c)) {
          size_t start = i;
          while (i + 1 < n && isIdentChar(text[i + 1]))
            ++i;
          StringRef word = text.slice(start, i + 1);
          if (word == "affine_map" || word == "affine_set") {
            size_t j = i + 1;
            while (j < n && (text[j] == ' ' || text[j] == '\t' ||
                             text[j] == '\n' || text[j] == '\r'))
              ++j;
            if (j < n && text[j] == '<') {
              if (!push('A'))
                return j;
              i = j;
            }
          } else if (affineBodies &&
                     (word == "floordiv" || word == "ceildiv" ||
                      word == "mod") &&
                     !affineOperator()) {
            return start;
          }
        } else if (c >= '0' && c <= '9') {
          // A number or a shape such as 4x4xf32 ("1e-5" keeps its '-').
          while (i + 1 < n && (isIdentChar(text[i + 1]) ||
                               ((text[i + 1] == '-' || text[i + 1] == '+') &&
                                (text[i] == 'e' || text[i] == 'E'))))
            ++i;
        }
        break;
      }
    }
    return std::nullopt;
  }

private:
  static int kindIndex(char c) {
    switch (c) {
    case '(':
      return 0;
    case '[':
      return 1;
    case '{':
      return 2;
    default: // '<' and 'A' (an affine_map/affine_set body)
      return 3;
    }
  }

  unsigned depth() const { return stack.size() + affineOps; }

  bool push(char c) {
    if (depth() + 1 > limit)
      return false;
    stack.push_back(c);
    ++open[kindIndex(c)];
    if (c == 'A')
      ++affineBodies;
    return true;
  }

  void pop() {
    char c = stack.pop_back_val();
    --open[kindIndex(c)];
    if (c == 'A' && --affineBodies == 0)
      affineOps = 0;
  }

  /// Pops up to and including the innermost `opener`; a closer with no
  /// opener of its kind open is malformed input for the parser to report.
  void close(char opener) {
    if (open[kindIndex(opener)] == 0)
      return;
    while (stack.back() != opener)
      pop();
    pop();
  }

  bool affineOperator() {
    if (depth() + 1 > limit)
      return false;
    ++affineOps;
    return true;
  }

  void reset() {
    stack.clear();
    open[0] = open[1] = open[2] = open[3] = 0;
    affineBodies = affineOps = 0;
  }

  unsigned limit;
  llvm::SmallVector<char, 64> stack;
  unsigned open[4] = {0, 0, 0, 0};
  unsigned affineBodies = 0, affineOps = 0;
};
} // namespace

std::optional<size_t> greta::findExcessiveNesting(StringRef text,
                                                  unsigned limit) {
  if (isMLIRBytecode(text))
    return std::nullopt;
  return NestingScanner(limit).scan(text);
}

std::string greta::excessiveNestingMessage(unsigned limit) {
  return "input nested deeper than " + std::to_string(limit) +
         " levels (each open bracket ( [ { < and each operator of an affine "
         "expression is one level); refused before parsing, as MLIR's "
         "recursive parser would overflow the stack";
}

mlir::LogicalResult greta::checkMLIRNesting(const llvm::MemoryBuffer &buffer,
                                            llvm::raw_ostream &os) {
  std::optional<size_t> at = findExcessiveNesting(buffer.getBuffer());
  if (!at)
    return mlir::success();
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBuffer(buffer.getMemBufferRef(),
                                       /*RequiresNullTerminator=*/false),
      llvm::SMLoc());
  sourceMgr.PrintMessage(
      os, llvm::SMLoc::getFromPointer(buffer.getBufferStart() + *at),
      llvm::SourceMgr::DK_Error, excessiveNestingMessage());
  return mlir::failure();
}

bool greta::isMLIRBytecode(StringRef buffer) {
  return buffer.starts_with(StringRef("ML\xefR", 4));
}

/// `op` and every operation nested in it with the number of regions between
/// them, in pre-order (each after the one that holds it), without
/// recursion.
static std::vector<std::pair<mlir::Operation *, unsigned>>
preorder(mlir::Operation *op) {
  std::vector<std::pair<mlir::Operation *, unsigned>> order;
  llvm::SmallVector<std::pair<mlir::Operation *, unsigned>, 64> work{{op, 0}};
  while (!work.empty()) {
    auto [o, depth] = work.pop_back_val();
    order.push_back({o, depth});
    for (mlir::Region &r : o->getRegions())
      for (mlir::Block &b : r)
        for (mlir::Operation &inner : b)
          work.push_back({&inner, depth + 1});
  }
  return order;
}

unsigned greta::regionNestingDepth(mlir::Operation *op) {
  unsigned deepest = 0;
  for (const auto &entry : preorder(op))
    deepest = std::max(deepest, entry.second);
  return deepest;
}

void greta::eraseInnermostFirst(mlir::Operation *op) {
  // In reverse pre-order each operation's regions are already empty when it
  // is erased. Uses are dropped first: an operation may be erased before
  // the ones that use its results.
  auto order = preorder(op);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    it->first->dropAllUses();
    it->first->erase();
  }
}

mlir::OwningOpRef<mlir::ModuleOp>
greta::parseMLIRFile(llvm::SourceMgr &sourceMgr, mlir::MLIRContext *context) {
  const llvm::MemoryBuffer *buffer =
      sourceMgr.getMemoryBuffer(sourceMgr.getMainFileID());
  if (std::optional<size_t> at = findExcessiveNesting(buffer->getBuffer())) {
    auto [line, col] = sourceMgr.getLineAndColumn(
        llvm::SMLoc::getFromPointer(buffer->getBufferStart() + *at));
    mlir::emitError(mlir::FileLineColLoc::get(
        context, buffer->getBufferIdentifier(), line, col))
        << excessiveNestingMessage();
    return nullptr;
  }
  if (!isMLIRBytecode(buffer->getBuffer()))
    return mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, context);
  // MLIR 22's bytecode reader walks what it has read recursively: about 96
  // bytes of stack per nested region (an 8 MiB stack overflowed at ~87 000
  // regions), and a nested region takes at least several bytes of bytecode.
  // So it reads on a thread whose stack grows with the input (16 bytes per
  // input byte: ~50 MiB for 3 MB of bytecode nested 100 000 deep).
  const uint64_t stack = std::min<uint64_t>(
      (8u << 20) + 16 * uint64_t(buffer->getBufferSize()), 0xF0000000u);
  mlir::OwningOpRef<mlir::ModuleOp> module;
  llvm::thread reader(std::optional<unsigned>(stack), [&] {
    module = mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, context);
  });
  reader.join();
  if (module) {
    // Regions inside the top-level module, as the text scan counts them
    // when the module is implicit.
    unsigned depth = regionNestingDepth(module->getOperation()) - 1;
    if (depth > kMaxMLIRNesting) {
      mlir::emitError(mlir::FileLineColLoc::get(
          context, buffer->getBufferIdentifier(), 0, 0))
          << "MLIR bytecode nests regions " << depth
          << " levels deep (inside the module), deeper than "
          << kMaxMLIRNesting
          << "; refused, as MLIR's recursive printer and passes would "
             "overflow the stack";
      eraseInnermostFirst(module.release());
      return nullptr;
    }
  }
  return module;
}

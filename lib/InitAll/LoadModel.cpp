//===- LoadModel.cpp - Read a greta model the way the tools run it --------===//
#include "greta/LoadModel.h"

#include "greta/Dialect/Greta/IR/GretaOps.h"
#include "greta/ParseMLIR.h"
#include "greta/Target/HF/ImportCheckpoint.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <set>

using namespace mlir;

namespace {
/// Whether `text` is spelled as mlir-opt requires, `builtin.module(...)`:
/// the anchor, then the pipeline in parentheses.
bool isModuleAnchored(StringRef text) {
  text = text.trim();
  if (!text.consume_front(ModuleOp::getOperationName()))
    return false;
  return text.ltrim().starts_with("(");
}

/// Adds the user's pipeline to `pm` (a pass manager on builtin.module). "P"
/// and "builtin.module(P)" are the same passes on the model's module: the
/// anchored spelling is parsed as mlir-opt parses it and replaces the
/// (empty) pipeline of `pm`; the bare one is added to it. Parsing the
/// anchored spelling as a bare one would nest P under a builtin.module
/// inside the module, where it runs on nothing.
LogicalResult parseUserPipeline(StringRef text, PassManager &pm,
                                llvm::raw_ostream &err) {
  if (!isModuleAnchored(text))
    return parsePassPipeline(text, pm, err);
  FailureOr<OpPassManager> parsed = parsePassPipeline(text, err);
  if (failed(parsed))
    return failure();
  static_cast<OpPassManager &>(pm) = std::move(*parsed);
  return success();
}

/// The anchors of the nested pipelines in `pipeline` (its textual form,
/// `builtin.module(a,func.func(b{x=1}))` -> {func.func}), outermost first.
/// Pass options in braces may hold any text: they are skipped.
std::vector<std::string> nestedAnchors(StringRef pipeline) {
  std::vector<std::string> anchors;
  int braces = 0;
  size_t wordStart = 0;
  bool first = true;
  for (size_t i = 0; i < pipeline.size(); ++i) {
    char c = pipeline[i];
    if (c == '{') {
      ++braces;
    } else if (c == '}') {
      braces = std::max(0, braces - 1);
    } else if (braces == 0 && c == '(') {
      std::string anchor = pipeline.slice(wordStart, i).trim().str();
      if (!first)
        anchors.push_back(anchor);
      first = false;
    }
    if (braces == 0 && (c == '(' || c == ',' || c == ')'))
      wordStart = i + 1;
  }
  return anchors;
}

/// A nested pipeline whose anchor names no op inside the model (such as
/// `builtin.module(builtin.module(P))`: the model is one module) would run
/// its passes on nothing and leave the run silently unchanged: an error.
LogicalResult checkNestedAnchors(const PassManager &pm, ModuleOp module,
                                 llvm::raw_ostream &err) {
  std::string text;
  llvm::raw_string_ostream os(text);
  pm.printAsTextualPipeline(os);
  for (const std::string &anchor : nestedAnchors(text)) {
    if (anchor == OpPassManager::getAnyOpAnchorName())
      continue;
    bool found = false;
    module.getBody()->walk([&](Operation *op) {
      if (op->getName().getStringRef() == anchor) {
        found = true;
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (!found) {
      err << "the passes nested under '" << anchor
          << "' would run on nothing: the model has no '" << anchor
          << "' op inside its module (write 'builtin.module(P)' or just 'P' "
             "for passes on the model)";
      return failure();
    }
  }
  return success();
}
} // namespace

namespace greta {
std::optional<LoadedModel> loadModel(const std::string &path,
                                     const std::string &pipeline,
                                     llvm::SourceMgr &sourceMgr,
                                     MLIRContext &ctx, std::string &error,
                                     const std::string &cacheDir) {
  std::string fileError;
  std::unique_ptr<llvm::MemoryBuffer> file;
  if (hf::isCheckpointDir(path)) {
    // An HF checkpoint: the IR of its config.json (ImportCheckpoint.h).
    std::optional<std::string> text =
        hf::importCheckpointIR(path, cacheDir, ctx, error);
    if (!text)
      return std::nullopt;
    file = llvm::MemoryBuffer::getMemBufferCopy(*text, path + "/config.json");
  } else {
    file = openInputFile(path, &fileError);
  }
  if (!file) {
    error = "cannot read model " + path + ": " + fileError;
    return std::nullopt;
  }
  LoadedModel m;
  m.text = file->getBuffer().str();
  sourceMgr.AddNewSourceBuffer(std::move(file), llvm::SMLoc());
  m.module = parseMLIRFile(sourceMgr, &ctx);
  if (!m.module) {
    error = "cannot parse model " + path + " (see above)";
    return std::nullopt;
  }
  if (!m.module->lookupSymbol<func::FuncOp>("forward")) {
    error = "model " + path + " has no func.func @forward";
    return std::nullopt;
  }
  m.name = llvm::sys::path::stem(llvm::sys::path::remove_leading_dotslash(
                                     llvm::StringRef(path).rtrim('/')))
               .str();
  if (auto name = (*m.module)->getAttrOfType<StringAttr>("greta.model"))
    m.name = name.str();
  if (!pipeline.empty()) {
    PassManager pm(&ctx);
    std::string pipeError;
    llvm::raw_string_ostream errStream(pipeError);
    if (failed(parseUserPipeline(pipeline, pm, errStream)) ||
        failed(checkNestedAnchors(pm, *m.module, errStream))) {
      error = "--pass-pipeline '" + pipeline + "': " + pipeError;
      return std::nullopt;
    }
    if (failed(pm.run(*m.module))) {
      error = "--pass-pipeline '" + pipeline + "' failed on " + path +
              " (see above)";
      return std::nullopt;
    }
  }
  m.module->walk([&](mlir::greta::PerturbOp p) {
    m.faultFromPositions.push_back(p.getFromPosition());
  });
  std::set<std::string> seen;
  m.module->walk([&](mlir::greta::ParamOp p) {
    if (!seen.insert(p.getName().str()).second)
      return;
    auto shape = p.getType().getShape();
    m.params.push_back({p.getName().str(), {shape.begin(), shape.end()}});
  });
  return m;
}
} // namespace greta

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

#include <set>

using namespace mlir;

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
    if (failed(parsePassPipeline(pipeline, pm, errStream))) {
      error = "--pass-pipeline '" + pipeline + "': " + pipeError;
      return std::nullopt;
    }
    if (failed(pm.run(*m.module))) {
      error = "--pass-pipeline '" + pipeline + "' failed on " + path +
              " (see above)";
      return std::nullopt;
    }
  }
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

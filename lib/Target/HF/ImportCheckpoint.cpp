//===- ImportCheckpoint.cpp - An HF checkpoint directory as IR --*- C++ -*-===//
//
// The cache entry is `hf-<key>.mlir`, key = SHA-256 of config.json's bytes
// and of the running executable (which holds the importer), so an entry is
// never reused by another GRETA. Entries are written beside their name and
// renamed into place, and read back only when they parse as a module: a
// damaged entry is a miss.
//
//===----------------------------------------------------------------------===//
#include "greta/Target/HF/ImportCheckpoint.h"
#include "greta/Target/HF/ImportHFConfig.h"

#include "mlir/IR/AsmState.h"
#include "mlir/Parser/Parser.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;

namespace {
std::string hex(llvm::ArrayRef<uint8_t> digest) {
  static const char *kDigits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

/// The cache key: the config's bytes and the executable's.
std::optional<std::string> cacheKey(llvm::StringRef config) {
  auto exe = llvm::MemoryBuffer::getFile("/proc/self/exe", /*IsText=*/false,
                                         /*RequiresNullTerminator=*/false);
  if (!exe)
    return std::nullopt;
  llvm::SHA256 h;
  h.update(hex(llvm::SHA256::hash(llvm::arrayRefFromStringRef(config))));
  h.update("|");
  h.update(hex(llvm::SHA256::hash(
      llvm::arrayRefFromStringRef((*exe)->getBuffer()))));
  return hex(h.final());
}

/// Writes `text` to `path` through a temporary beside it (0600).
void writeAtomically(const std::string &path, llvm::StringRef text) {
  llvm::SmallString<256> tmp;
  int fd;
  if (llvm::sys::fs::createUniqueFile(path + ".tmp-%%%%%%%%", fd, tmp,
                                      llvm::sys::fs::OF_None, 0600))
    return;
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << text;
    os.close();
    if (os.has_error()) {
      os.clear_error();
      llvm::sys::fs::remove(tmp);
      return;
    }
  }
  if (llvm::sys::fs::rename(tmp, path))
    llvm::sys::fs::remove(tmp);
}
} // namespace

bool greta::hf::isCheckpointDir(const std::string &path) {
  return llvm::sys::fs::is_directory(path);
}

std::optional<std::string>
greta::hf::importCheckpointIR(const std::string &dir,
                              const std::string &cacheDir, MLIRContext &ctx,
                              std::string &error) {
  std::string configPath = dir + "/config.json";
  auto config = llvm::MemoryBuffer::getFile(configPath, /*IsText=*/true);
  if (!config) {
    error = "checkpoint " + dir + " has no readable config.json (" +
            config.getError().message() + ")";
    return std::nullopt;
  }
  std::optional<std::string> key;
  std::string cached;
  if (!cacheDir.empty() && (key = cacheKey((*config)->getBuffer()))) {
    cached = cacheDir + "/hf-" + *key + ".mlir";
    if (auto entry = llvm::MemoryBuffer::getFile(cached, /*IsText=*/true)) {
      // Only a module that parses is used; anything else is re-imported.
      ParserConfig parse(&ctx);
      std::string text = (*entry)->getBuffer().str();
      ScopedDiagnosticHandler quiet(&ctx,
                                    [](Diagnostic &) { return success(); });
      if (parseSourceString<ModuleOp>(text, parse))
        return text;
    }
  }
  OwningOpRef<ModuleOp> module =
      importHFConfig((*config)->getBuffer(), configPath, ctx);
  if (!module) {
    error = "cannot import " + configPath + " (see above)";
    return std::nullopt;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  // As greta-translate prints it: the HF names stay as locations.
  module->print(os,
                OpPrintingFlags().enableDebugInfo(true, false).useLocalScope());
  os << "\n";
  os.flush();
  if (!cached.empty() && !llvm::sys::fs::create_directories(cacheDir) &&
      !llvm::sys::fs::setPermissions(
          cacheDir, llvm::sys::fs::owner_all))
    writeAtomically(cached, text);
  return text;
}

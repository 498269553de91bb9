//===- ImportCheckpoint.h - An HF checkpoint directory as greta IR -*- C++ -*-===//
//
// `--model DIR` in greta-run, greta-compile and greta-bisect: DIR holds
// config.json and the weights (model.safetensors, or an index and shards,
// read by rt::SafeTensors). The IR is imported from config.json on the fly
// and cached in the tools' cache directory, keyed by the config's digest
// and the importing executable's (a newer GRETA never reads an older
// import). docs/IMPORT.md ("Checkpoint directories").
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_TARGET_HF_IMPORTCHECKPOINT_H
#define GRETA_TARGET_HF_IMPORTCHECKPOINT_H

#include "mlir/IR/MLIRContext.h"

#include <optional>
#include <string>

namespace greta::hf {

/// Whether `path` is a directory (a checkpoint, for the tools' --model).
bool isCheckpointDir(const std::string &path);

/// The greta IR text of the checkpoint in `dir` (its config.json), from
/// `cacheDir` when a valid entry is there ("" for no cache), else imported
/// and stored there. On failure returns std::nullopt with `error` naming the
/// file (a config error is also emitted on `ctx` at file:line:col).
std::optional<std::string> importCheckpointIR(const std::string &dir,
                                              const std::string &cacheDir,
                                              mlir::MLIRContext &ctx,
                                              std::string &error);

} // namespace greta::hf

#endif // GRETA_TARGET_HF_IMPORTCHECKPOINT_H

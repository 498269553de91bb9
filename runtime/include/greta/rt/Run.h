//===- Run.h - One model run: options, checks, forward, result --*- C++ -*-===//
//
// The run sequence both runners share (greta-run's JIT, greta-run-aot's
// objects compiled ahead of time): the run flags (RunOptions, and back into
// greta-run-aot's argv for `greta-run --backend gpu`), the prompt checked
// against the model's limits, the trace manifest, the chunked CPU forward,
// the last position's logits (top-5, digest) and the text or JSON result
// (docs/TOOLS.md lists its fields). LLVM-free: the runners differ only in
// how they get `_mlir_ciface_forward`.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_RUN_H
#define GRETA_RT_RUN_H

#include "greta/rt/Filter.h"
#include "greta/rt/Prompt.h"
#include "greta/rt/Session.h"
#include "greta/rt/Trace.h"
#include "greta/rt/Weights.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace greta::rt {

/// The run flags of prefill schedules, decoding and the KV cache, by their
/// flag names (a part of RunOptions).
struct DecodeFlags {
  std::string chunk;            // --chunk: all, N or N,M,... ("": all)
  int64_t generate = 0;         // --generate N
  int64_t generateFrom = -1;    // --generate-from P
  bool ignoreEos = false;       // --ignore-eos
  bool sample = false;          // --sample
  uint64_t seed = 0;            // --seed
  double temperature = 1.0;     // --temperature
  double topP = 1.0;            // --top-p
  bool traceCacheReads = false; // --trace-cache-reads
  std::string kvFault;          // --kv-fault LAYER:FROM (a planted bug)
  int64_t kvBlockSize = 16;     // --kv-block-size: GPU paged cache positions
};

/// The run flags greta-run and greta-run-aot share, by their flag names.
struct RunOptions {
  std::string weights;                            // --weights
  std::string prompt;                             // --prompt
  std::optional<std::string> promptText;          // --prompt-text
  std::string tokenizer;                          // --tokenizer
  std::string traceDir;                           // --trace-dir
  bool overwrite = false;                         // --overwrite
  std::string layers, stages, positions, payload; // the runtime filter
  std::string precision; // --precision ("" = the default)
  std::string backend;   // --backend ("" = the default)
  std::string cacheDir;  // --cache-dir
  bool noCache = false;  // --no-cache
  bool timing = false, json = false, printLogits = false;
  std::string patchFrom, patch;     // --patch-from, --patch
  std::vector<std::string> kernels; // --kernel (GPU)
  std::optional<int> device;        // --device (GPU; default 0)
  int64_t repeat = 1;               // --repeat
  bool dryRun = false;              // --dry-run
  DecodeFlags decode; // --chunk, --generate, ... (greta/rt/Generate.h)

  /// The prompt request of --prompt/--prompt-text/--tokenizer.
  PromptRequest promptRequest() const {
    return {prompt, promptText, tokenizer};
  }
  /// How errors name the prompt: its file, or --prompt-text.
  std::string promptWhere() const {
    return promptText ? "--prompt-text" : prompt;
  }
};

/// The options as flags (greta-run-aot's spelling), without the model: every
/// option that differs from its default, in a fixed order. greta-run
/// --backend gpu forwards its run this way.
std::vector<std::string> toArgv(const RunOptions &options);

/// --layers/--stages/--positions/--payload into `filter`; the error names
/// the flag. Checks the decode flags (parseDecodeFlags; with --backend gpu,
/// what the GPU runs: checkGpuDecodeFlags), --repeat and that --patch-from and --patch
/// go together.
bool parseRunFlags(const RunOptions &options, Filter &filter,
                   std::string &error);

/// The cache directory a run uses ("" with --no-cache or when there is no
/// home), opened (private to this user) before anything is read from it.
bool resolveCacheDir(const RunOptions &options, std::string &dir,
                     std::string &error);

/// What the model says about its inputs (module attributes of the IR, or
/// greta-compile's metadata).
struct ModelLimits {
  std::optional<int64_t> vocabSize, maxPositions, numLayers;
  /// --pass-pipeline's planted faults: a prompt must reach them.
  std::vector<int64_t> faultFromPositions;
  /// How errors name the faults' origin: "--pass-pipeline", or the object
  /// with faultNote " (its --pass-pipeline)".
  std::string faultSource = "--pass-pipeline", faultNote;
};

/// The prompt's ids within the vocabulary and the positions, a fault
/// within the prompt, --layers within the model. The error names the
/// culprit.
bool checkAgainstModel(const RunOptions &options, const Prompt &prompt,
                       const ModelLimits &limits, const Filter &filter,
                       std::string &error);

/// --patch-from/--patch read from the other trace (nullopt when neither is
/// given; false on an error). `compute`: the dtype the run computes in, the
/// patch's must match it (the GPU converts instead: pass nullopt).
bool readRunPatch(const RunOptions &options, std::optional<DType> compute,
                  std::optional<Patch> &patch, std::string &error);

/// What a trace's manifest says about the run, besides the prompt and the
/// weights (which buildManifest reads).
struct RunIdentity {
  std::string model, modelDigest, backend, precision, pipeline, toolVersion;
};
/// The manifest of a run's trace: the weights digest is cached in
/// `cacheDir` ("" for none; `warning` says why a cache was not written).
Manifest buildManifest(const RunIdentity &identity, const SafeTensors &weights,
                       const std::string &cacheDir, const Prompt &prompt,
                       const Filter &filter, std::string &warning);

/// The last position's logits of a forward, as stored and as doubles.
struct LastLogits {
  DType dtype = DType::F32;
  std::vector<uint8_t> bytes;
  std::vector<double> values;
  /// Takes `bytes` (the row's elements stored as `dtype`, contiguous) and
  /// widens them into `values`.
  void set(DType dtype, std::vector<uint8_t> bytes);
};

/// One forward call's error as the runners report it: the positions and,
/// with a trace, that what was written before is kept.
std::string runStoppedError(int64_t begin, int64_t end,
                            const std::string &error,
                            const std::string &traceDir);

/// The top-5 (token, logit) of a logits row, best first, ties to the lower
/// id, NaN last (topFiveIds: the order the trace records).
std::vector<std::pair<int64_t, double>> topFive(const LastLogits &logits);

/// What a run prints (text or --json).
struct RunResult {
  std::string model, precision, backend;
  /// JSON "cache": hit, miss, off (JIT) or aot.
  std::string cache;
  std::string device; // the GPU's name, "" on the CPU
  int64_t tokens = 0, calls = 0, rowsPatched = 0;
  /// --generate: the new tokens, whether an EOS stopped them, and how they
  /// were chosen (generationText). The logits are then the last call's.
  std::optional<std::vector<int64_t>> generated;
  bool stoppedAtEos = false;
  std::string generation;
  uint64_t records = 0;
  LastLogits logits;
  double compileSeconds = 0, loadSeconds = 0, forwardSeconds = 0;
  std::vector<double> repeatSeconds; // --repeat: each forward
  /// The text timing line's note on the compile time, e.g. "cache hit".
  std::string compileNote;
  const Tokenizer *tokenizer = nullptr;
};

/// Prints the result as greta-run always has (text, or JSON with --json);
/// false when the model returned no logits (`error` says so).
bool printResult(std::ostream &os, const RunResult &result,
                 const RunOptions &options, std::string &error);

/// `TOOL: dry run: MODEL, WEIGHTS and PROMPT are valid with these options;
/// the run would start`.
std::string dryRunLine(const std::string &tool, const std::string &model,
                       const RunOptions &options);

} // namespace greta::rt

#endif // GRETA_RT_RUN_H

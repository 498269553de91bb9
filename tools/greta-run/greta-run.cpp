//===- greta-run.cpp - Run a greta model, write a trace ------*- C++ -*-===//
//
// greta-run's command line over the run of greta/Compile/RunModel.h: the
// model JIT-compiled on the CPU with every stage of every layer instrumented
// (compiled objects cached), or with --backend gpu compiled ahead of time and
// run by greta-run-aot.
//
// Exit codes: 0 ok, 2 error (every error names its culprit).
//
//===----------------------------------------------------------------------===//
#include "greta/Compile/RunModel.h"
#include "greta/InitAll.h"
#include "greta/tools/LLVMVersion.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <csignal>

#ifndef GRETA_VERSION
#define GRETA_VERSION "unknown"
#endif

namespace cl = llvm::cl;

//===----------------------------------------------------------------------===//
// Command line
//===----------------------------------------------------------------------===//

static cl::OptionCategory runCat("greta-run options");

static cl::opt<std::string>
    modelPath(cl::Positional,
              cl::desc("<MODEL.mlir or HF checkpoint directory>"),
              cl::Required, cl::cat(runCat));
static cl::opt<std::string> weightsPath(
    "weights",
    cl::desc("safetensors file, index or checkpoint directory with the HF "
             "weights (default for a checkpoint directory: its own)"),
    cl::value_desc("path"), cl::cat(runCat));
static cl::opt<std::string> promptPath(
    "prompt",
    cl::desc("Prompt file: token ids (JSON array or one per line), text "
             "(.txt, .md) or {\"text\": ...} (.json); text needs --tokenizer"),
    cl::value_desc("file"), cl::cat(runCat));
static cl::opt<std::string>
    promptText("prompt-text",
               cl::desc("Prompt as text (instead of --prompt); needs "
                        "--tokenizer"),
               cl::value_desc("text"), cl::cat(runCat));
static cl::opt<std::string> tokenizerPath(
    "tokenizer",
    cl::desc("tokenizer.json, tokenizer.model or the checkpoint directory: "
             "tokenizes a text prompt; with ids, names their tokens in the "
             "output"),
    cl::value_desc("path"), cl::cat(runCat));
static cl::opt<std::string>
    traceDir("trace-dir",
             cl::desc("Write a trace here (without it nothing is traced)"),
             cl::value_desc("dir"), cl::cat(runCat));
static cl::opt<bool> overwrite("overwrite",
                               cl::desc("Replace a trace already in --trace-dir"),
                               cl::cat(runCat));
static cl::opt<std::string>
    layersOpt("layers", cl::desc("Layers to record: 0,1,4-8 or all (default)"),
              cl::value_desc("list"), cl::cat(runCat));
static cl::opt<std::string>
    stagesOpt("stages",
              cl::desc("Stages to record: names (embed_out, attn_out, ...) or "
                       "all (default)"),
              cl::value_desc("list"), cl::cat(runCat));
static cl::opt<std::string> positionsOpt(
    "positions",
    cl::desc("Token positions to record: 826,700-826,last or all (default)"),
    cl::value_desc("list"), cl::cat(runCat));
static cl::opt<std::string>
    payloadOpt("payload",
               cl::desc("What a record carries: hash (default), stats, full"),
               cl::value_desc("kind"), cl::cat(runCat));
static cl::opt<std::string>
    precisionOpt("precision",
                 cl::desc("f32 (default), f64 (reference), f16 or bf16 "
                          "(emulated in f32: every op's result rounded; "
                          "--pass-pipeline 'greta-convert-precision{"
                          "precision=bf16 keep-f32=STAGE,...}' leaves some "
                          "unrounded)"),
                 cl::init("f32"), cl::cat(runCat));
static cl::opt<std::string> chunkOpt(
    "chunk",
    cl::desc("Prefill through the KV cache in chunks of N tokens, or a "
             "schedule whose last size repeats (512,512,1: two chunks, then "
             "one token a call); all (default): the whole prompt in one "
             "call"),
    cl::value_desc("all|N|N,M,..."), cl::cat(runCat));
static cl::opt<int64_t> generateOpt(
    "generate",
    cl::desc("After the prompt, decode N new tokens one at a time through "
             "the KV cache (greedy unless --sample); stops at EOS unless "
             "--ignore-eos"),
    cl::value_desc("N"), cl::init(0), cl::cat(runCat));
static cl::opt<int64_t> generateFromOpt(
    "generate-from",
    cl::desc("Decode the prompt's own tokens one a call from position P on "
             "(teacher forcing), after a prefill of [0, P)"),
    cl::value_desc("P"), cl::init(-1), cl::cat(runCat));
static cl::opt<bool> ignoreEosOpt("ignore-eos",
                                  cl::desc("--generate: go on past an EOS"),
                                  cl::cat(runCat));
static cl::opt<bool>
    sampleOpt("sample",
              cl::desc("--generate: draw each token (--seed, --temperature, "
                       "--top-p) instead of taking the best"),
              cl::cat(runCat));
static cl::opt<uint64_t> seedOpt("seed", cl::desc("--sample's seed (0)"),
                                 cl::init(0), cl::cat(runCat));
static cl::opt<double> temperatureOpt("temperature",
                                      cl::desc("--sample's temperature (1)"),
                                      cl::init(1.0), cl::cat(runCat));
static cl::opt<double>
    topPOpt("top-p",
            cl::desc("--sample's nucleus: the most likely tokens whose "
                     "probability reaches P (1)"),
            cl::init(1.0), cl::cat(runCat));
static cl::opt<bool> traceCacheReadsOpt(
    "trace-cache-reads",
    cl::desc("Also record the KV-cache rows each query reads "
             "(k_cache_read, v_cache_read at the query's position)"),
    cl::cat(runCat));
static cl::opt<std::string> kvFaultOpt(
    "kv-fault",
    cl::desc("Plant a KV-cache bug (tests of the detectors): in layer "
             "LAYER's cache, from position FROM on, the first row of every "
             "call holds the previous row's key (stale), or overwrites the "
             "previous row once stored (overwrite)"),
    cl::value_desc("LAYER:FROM[:stale|:overwrite]"), cl::cat(runCat));
static cl::opt<int64_t> kvBlockSizeOpt(
    "kv-block-size",
    cl::desc("--backend gpu: positions per page of the paged KV cache that "
             "chunked prefill and decode steps use (16)"),
    cl::init(16), cl::cat(runCat));
static cl::opt<std::string> pipelineOpt(
    "pass-pipeline",
    cl::desc("Extra passes applied to the model first, e.g. "
             "'greta-inject-fault{stage=attn_out layer=2 from-position=10}'"),
    cl::value_desc("pipeline"), cl::cat(runCat));
static cl::opt<std::string>
    cacheDirOpt("cache-dir",
                cl::desc("Compiled-object cache (default $XDG_CACHE_HOME/greta "
                         "or ~/.cache/greta)"),
                cl::value_desc("dir"), cl::cat(runCat));
static cl::opt<bool> noCache("no-cache",
                             cl::desc("Neither read nor write the cache"),
                             cl::cat(runCat));
static cl::opt<bool> timing("timing",
                            cl::desc("Print compile, weight-load and forward "
                                     "times"),
                            cl::cat(runCat));
static cl::opt<bool> jsonOut("json", cl::desc("Print the result as JSON"),
                             cl::cat(runCat));
static cl::opt<bool>
    printLogits("print-logits",
                cl::desc("Print every logit of the last position as a hex "
                         "float (bit-exact comparisons)"),
                cl::cat(runCat));
static cl::opt<std::string> patchFrom(
    "patch-from",
    cl::desc("Causal test: replace the tensor named by --patch with its "
             "values in this trace (written with --payload full), at every "
             "position it holds, before the rest of the model reads it"),
    cl::value_desc("trace dir"), cl::cat(runCat));
static cl::opt<std::string>
    patchRecord("patch", cl::desc("The tensor --patch-from replaces: STAGE:LAYER"),
                cl::value_desc("stage:layer"), cl::cat(runCat));
static cl::opt<std::string> backendOpt(
    "backend",
    cl::desc("cpu (default): JIT on this machine; gpu: compiled ahead of "
             "time by greta-compile (cached) and run by greta-run-aot with "
             "the GPU kernels"),
    cl::value_desc("cpu|gpu"), cl::init("cpu"), cl::cat(runCat));
static cl::list<std::string> kernelOpt(
    "kernel",
    cl::desc("GPU kernel variant op=name (repeatable, --backend gpu), e.g. "
             "attention=partial_tile_bug or trace=split_schedule; an unknown "
             "one lists the known"),
    cl::value_desc("op=name"), cl::cat(runCat));
static cl::opt<int> deviceOpt("device",
                              cl::desc("GPU index (--backend gpu, default 0)"),
                              cl::init(0), cl::cat(runCat));
static cl::opt<int64_t> repeatOpt(
    "repeat",
    cl::desc("--backend gpu: run the prompt N times in one process (warm-ups "
             "for benchmarks; only the last run's trace is written)"),
    cl::value_desc("N"), cl::init(1), cl::cat(runCat));
static cl::opt<bool> dryRun(
    "dry-run",
    cl::desc("Check the model, --pass-pipeline, weights, prompt and every "
             "option, then stop before compiling: exit 0 if the run would "
             "start (greta-bisect checks its RUN FLAGS this way)"),
    cl::cat(runCat));
static cl::opt<std::string>
    dumpLLVM("dump-llvm-ir",
             cl::desc("Write the LLVM-dialect module here (cache misses only)"),
             cl::value_desc("file"), cl::cat(runCat), cl::Hidden);

/// The parsed flags as greta-run's run request.
static ::greta::ModelRunRequest runRequest(const char *argv0) {
  ::greta::ModelRunRequest r;
  r.argv0 = argv0;
  r.model = modelPath;
  r.pipeline = pipelineOpt;
  r.dumpLLVM = dumpLLVM;
  r.version = GRETA_VERSION;
  r.precisionGiven = precisionOpt.getNumOccurrences() > 0;
  r.repeatGiven = repeatOpt.getNumOccurrences() > 0;
  ::greta::rt::RunOptions &o = r.options;
  o.weights = weightsPath;
  o.prompt = promptPath;
  if (promptText.getNumOccurrences())
    o.promptText = promptText.getValue();
  o.tokenizer = tokenizerPath;
  o.traceDir = traceDir;
  o.overwrite = overwrite;
  o.layers = layersOpt;
  o.stages = stagesOpt;
  o.positions = positionsOpt;
  o.payload = payloadOpt;
  o.precision = precisionOpt;
  o.backend = backendOpt;
  o.decode.chunk = chunkOpt;
  o.decode.generate = generateOpt;
  o.decode.generateFrom = generateFromOpt;
  o.decode.ignoreEos = ignoreEosOpt;
  o.decode.sample = sampleOpt;
  o.decode.seed = seedOpt;
  o.decode.temperature = temperatureOpt;
  o.decode.topP = topPOpt;
  o.decode.traceCacheReads = traceCacheReadsOpt;
  o.decode.kvFault = kvFaultOpt;
  o.decode.kvBlockSize = kvBlockSizeOpt;
  o.cacheDir = cacheDirOpt;
  o.noCache = noCache;
  o.timing = timing;
  o.json = jsonOut;
  o.printLogits = printLogits;
  o.patchFrom = patchFrom;
  o.patch = patchRecord;
  o.kernels = kernelOpt;
  if (deviceOpt.getNumOccurrences())
    o.device = deviceOpt;
  o.repeat = repeatOpt;
  o.dryRun = dryRun;
  return r;
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  // A trace hitting a file-size limit must fail with EFBIG (reported by the
  // runtime, the records before kept), not kill the run: LLVM's handlers
  // catch SIGXFSZ otherwise.
  std::signal(SIGXFSZ, SIG_IGN);
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  ::greta::registerAllPasses();
  cl::HideUnrelatedOptions(runCat);
  ::greta::setLLVMToolVersionPrinter("greta-run");
  cl::ParseCommandLineOptions(
      argc, argv,
      "greta-run: run a greta model on a prompt on the CPU and write a "
      "trace\n\n"
      "  greta-run MODEL.mlir --weights W.safetensors --prompt P.json\n"
      "  greta-run MODEL.mlir --weights W.safetensors --prompt-text TEXT "
      "--tokenizer DIR\n"
      "            [--trace-dir D] [--layers 0,1,4-8] [--stages attn_out,...]\n"
      "            [--positions 826,last] [--payload hash|stats|full]\n\n"
      "The model is compiled once with every stage of every layer "
      "instrumented;\n--layers/--stages/--positions/--payload choose at run "
      "time what is recorded.\nCompiled objects are cached (--cache-dir). "
      "Exit codes: 0 ok, 2 error.\n");
  return ::greta::runModel(runRequest(argv[0]));
}

//===- greta-run.cpp - Run a greta model on a prompt, write a trace -*- C++ -*-===//
//
// Parses a greta model, applies the user's pipeline, instruments every stage
// of every layer (the runtime filter chooses what is recorded, so bisection
// steps never recompile), lowers with greta-lower-to-cpu and JITs the result
// with MLIR's ExecutionEngine at O2. Compiled objects are cached by a digest
// of the IR after the user's pipeline, the precision and the tool itself; a
// hit loads the object straight into an ORC JIT and skips the lowering.
//
// Exit codes: 0 ok, 2 error (every error names its culprit).
//
//===----------------------------------------------------------------------===//
#include "greta/Compile/CompileModel.h"
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/InitAll.h"
#include "greta/LoadModel.h"
#include "greta/Target/HF/ImportCheckpoint.h"
#include "greta/ParseMLIR.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Cache.h"
#include "greta/rt/Filter.h"
#include "greta/rt/Prompt.h"
#include "greta/rt/Run.h"
#include "greta/rt/Sha256.h"
#include "greta/rt/RunStarted.h"
#include "greta/rt/Session.h"
#include "greta/rt/Tokenizer.h"
#include "greta/rt/Trace.h"
#include "greta/rt/Weights.h"
#include "greta/tools/LLVMVersion.h"
#include "greta/tools/Progress.h"
#include "greta/rt/WeightsDigest.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"

#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/SectionMemoryManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/TargetParser/Host.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <numeric>
#include <sstream>

#ifndef GRETA_VERSION
#define GRETA_VERSION "unknown"
#endif

using namespace mlir;
namespace cl = llvm::cl;
namespace rt = ::greta::rt;

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
static cl::opt<int64_t>
    chunkOpt("chunk",
             cl::desc("Prefill in chunks of N tokens through the KV cache "
                      "(default: the whole prompt in one call)"),
             cl::value_desc("N"), cl::init(0), cl::cat(runCat));
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

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {
using Clock = std::chrono::steady_clock;
double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

/// The progress line of this run (on a terminal, after 2 s), erased before
/// an error is printed.
::greta::ProgressLine *activeProgress = nullptr;

/// Prints `greta-run: error: <message>` and returns the error exit code.
int fail(const llvm::Twine &message) {
  if (activeProgress)
    activeProgress->finish();
  llvm::errs() << "greta-run: error: " << message << "\n";
  return 2;
}

std::string sha256Hex(llvm::StringRef text) {
  return rt::sha256Hex(text.data(), text.size());
}

/// The run flags greta-run shares with greta-run-aot.
rt::RunOptions runOptions() {
  rt::RunOptions o;
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
  o.chunk = chunkOpt;
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
  return o;
}

std::optional<int64_t> intAttr(ModuleOp module, llvm::StringRef name) {
  if (auto a = module->getAttrOfType<IntegerAttr>(name))
    return a.getInt();
  return std::nullopt;
}

} // namespace

//===----------------------------------------------------------------------===//
// The run
//===----------------------------------------------------------------------===//

namespace {
class Runner {
public:
  explicit Runner(const char *argv0) : argv0(argv0), o(runOptions()) {}
  int run();

private:

  const char *argv0;
  rt::RunOptions o;
  std::string cacheDir; // "" for none
  std::unique_ptr<::greta::JitModel> compiled;
  rt::RunResult result;
  std::unique_ptr<::greta::ProgressLine> progress;
};
} // namespace

int Runner::run() {
  progress = std::make_unique<::greta::ProgressLine>("greta-run");
  activeProgress = progress.get();
  progress->phase("reading the model");
  // Cheap checks first: a bad option fails before anything is compiled.
  if (precisionOpt != "f32" && precisionOpt != "f64" && precisionOpt != "f16" &&
      precisionOpt != "bf16")
    return fail("--precision must be f32, f64, f16 or bf16, got '" +
                precisionOpt + "'");
  std::string error;
  rt::Filter filter;
  if (!rt::parseRunFlags(o, filter, error) ||
      !rt::resolveCacheDir(o, cacheDir, error))
    return fail(error);

  // The model.
  DialectRegistry registry;
  ::greta::registerAllDialects(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  MLIRContext ctx(registry);
  // Diagnostics carry locations; a note dumping the whole module would bury
  // them.
  ctx.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &ctx);
  if (o.weights.empty()) {
    if (!::greta::hf::isCheckpointDir(modelPath))
      return fail("--weights is required (unless the model is an HF "
                  "checkpoint directory)");
    o.weights = modelPath;
  }
  std::string irCache = o.cacheDir.empty() ? rt::defaultCacheDir() : o.cacheDir;
  std::optional<::greta::LoadedModel> model = ::greta::loadModel(
      modelPath, pipelineOpt, sourceMgr, ctx, error, o.noCache ? "" : irCache);
  if (!model)
    return fail(error);
  OwningOpRef<ModuleOp> module = std::move(model->module);
  std::string irAfterUser;
  {
    llvm::raw_string_ostream os(irAfterUser);
    module->print(os);
  }
  // A --pass-pipeline that already emulates a half precision (say with
  // keep-f32) must be labelled as such, or the trace would claim f32.
  if (auto emulated = (*module)->getAttrOfType<StringAttr>(
          mlir::greta::GretaDialect::getEmulatedPrecisionAttrName()))
    if (backendOpt == "cpu" && emulated.getValue() != precisionOpt)
      return fail("--pass-pipeline emulates " + emulated.getValue().str() +
                  " (greta.emulated_precision) but --precision is " +
                  precisionOpt + ": pass --precision " +
                  emulated.getValue().str());

  // Parameters the compiled code will ask for: names and shapes.
  std::vector<rt::ParamSpec> params;
  for (auto &[name, dims] : model->params)
    params.push_back({name, dims});

  // The prompt, checked against the model's limits.
  std::optional<rt::Prompt> prompt = rt::loadPrompt(o.promptRequest(), error);
  rt::ModelLimits limits{intAttr(*module, "greta.vocab_size"),
                         intAttr(*module, "greta.max_position_embeddings"),
                         intAttr(*module, "greta.num_layers"),
                         model->faultFromPositions};
  if (!prompt || !rt::checkAgainstModel(o, *prompt, limits, filter, error))
    return fail(error);

  // Weights: validated against every parameter of the IR before compiling.
  progress->phase("loading weights");
  auto loadStart = Clock::now();
  auto weights = rt::SafeTensors::open(o.weights, error);
  if (!weights)
    return fail(error);
  rt::DType dtype = precisionOpt == "f64" ? rt::DType::F64 : rt::DType::F32;
  std::unique_ptr<rt::Session> session =
      rt::Session::create(*weights, params, dtype, error);
  if (!session)
    return fail(error);
  result.loadSeconds = secondsSince(loadStart);
  // --patch-from/--patch: the rows of one record of another trace
  // (greta-bisect --confirm).
  std::optional<rt::Patch> patch;
  if (!rt::readRunPatch(o, dtype, patch, error))
    return fail(error);
  if (patch)
    session->setPatch(patch->recordId, std::move(patch->rows));
  if (dryRun) {
    llvm::outs() << rt::dryRunLine("greta-run", modelPath, o);
    return 0;
  }

  // Precision, every stage of every layer instrumented, then the JIT (or
  // the cached object).
  ::greta::CompileTarget target{/*gpu=*/false, precisionOpt};
  if (failed(::greta::instrumentModel(*module, target)))
    return fail("instrumenting " + modelPath + " failed (see above)");
  progress->phase("compiling");
  auto compileStart = Clock::now();
  compiled = ::greta::compileForJit(
      *module, target,
      {modelPath, irAfterUser,
       GRETA_VERSION " " + ::greta::executableDigest(argv0), cacheDir,
       dumpLLVM},
      [](const std::string &warning) {
        llvm::errs() << "greta-run: warning: " << warning << "\n";
      },
      error);
  if (!compiled)
    return fail(error);
  result.compileSeconds = secondsSince(compileStart);

  // The trace, if asked for.
  std::unique_ptr<rt::TraceWriter> writer;
  if (!traceDir.empty()) {
    std::string warning;
    rt::Manifest manifest = rt::buildManifest(
        {model->name, sha256Hex(model->text), "cpu", precisionOpt, pipelineOpt,
         ::greta::versionLine("greta-run")},
        *weights, cacheDir, *prompt, filter, warning);
    if (!warning.empty())
      llvm::errs() << "greta-run: warning: " << warning << "\n";
    writer = rt::TraceWriter::create(traceDir, manifest, overwrite, error);
    if (!writer)
      return fail("--trace-dir " + traceDir + ": " + error);
  }
  // Every input is checked and the trace is locked: from here on a failure
  // is the run's own (greta-bisect's evidence rule, RunStarted.h).
  if (!rt::reportForwardStarted(error))
    return fail(error);
  result.tokens = static_cast<int64_t>(prompt->ids.size());
  session->setTrace(writer.get(), filter, result.tokens);
  rt::Session::setCurrent(session.get());
  int64_t numLayers = limits.numLayers.value_or(0); // for the progress line
  session->setLayerObserver([this](int64_t l) { progress->layer(l); });
  auto start = Clock::now();
  bool ok = rt::forwardCpu(
      compiled->forward, *session, prompt->ids, o.chunk, traceDir,
      [&](int64_t call, int64_t calls) {
        progress->forward(call, calls, numLayers);
      },
      result.logits, result.calls, error);
  result.forwardSeconds = secondsSince(start);
  rt::Session::setCurrent(nullptr);
  if (!ok)
    return fail(error);
  if (writer && !writer->finish(error))
    return fail("--trace-dir " + traceDir + ": " + error);

  progress->finish();
  result.model = model->name;
  result.precision = precisionOpt;
  result.backend = "cpu";
  result.cache = compiled->cachePath.empty()
                     ? "off"
                     : (compiled->cacheHit ? "hit" : "miss");
  result.compileNote = "cache " + result.cache;
  result.records = writer ? writer->recordsWritten() : 0;
  result.rowsPatched = session->rowsPatched();
  result.tokenizer = prompt->tokenizer.get();
  std::ostringstream os;
  if (!rt::printResult(os, result, o, error))
    return fail(error);
  llvm::outs() << os.str();
  return 0;
}

//===----------------------------------------------------------------------===//
// --backend gpu
//===----------------------------------------------------------------------===//

/// `greta-run --backend gpu`: the GPU host program is compiled ahead of time
/// (greta-compile, cached like the CPU objects) and run by greta-run-aot,
/// which links the GPU runtime and kernels; both are this executable's
/// siblings. The JIT is not used for the GPU: the same object runs unchanged
/// on a GPU host that has no LLVM (docs/GPU_BACKEND.md).
static int runOnGpu(const char *argv0) {
  std::string precision =
      precisionOpt.getNumOccurrences() ? precisionOpt.getValue() : "f16";
  if (precision != "f16" && precision != "bf16" && precision != "f32")
    return fail("--precision for --backend gpu must be f16 (default), bf16 or "
                "f32 storage, got '" + precision + "'");
  std::string exe = llvm::sys::fs::getMainExecutable(
      argv0, reinterpret_cast<void *>(&runOnGpu));
  llvm::SmallString<256> dir(llvm::sys::path::parent_path(exe));
  auto sibling = [&](llvm::StringRef name) {
    llvm::SmallString<256> p(dir);
    llvm::sys::path::append(p, name);
    return std::string(p);
  };
  std::string compiler = sibling("greta-compile"),
              runner = sibling("greta-run-aot");
  for (const std::string &tool : {compiler, runner})
    if (!llvm::sys::fs::can_execute(tool))
      return fail("--backend gpu needs " + tool + " (built with greta-run)");
  if (dryRun) // the checks of the model and its inputs are the CPU run's
    return Runner(argv0).run();

  auto model = llvm::MemoryBuffer::getFile(modelPath);
  if (!model)
    return fail("cannot read model " + modelPath + ": " +
                model.getError().message());
  // The object depends on the model text, the precision, the user's passes
  // and the compiler that wrote it.
  auto compilerBytes = llvm::MemoryBuffer::getFile(compiler);
  std::string key = sha256Hex(
      sha256Hex((*model)->getBuffer()) + "|gpu|" + precision + "|" +
      pipelineOpt + "|" +
      (compilerBytes ? sha256Hex((*compilerBytes)->getBuffer()) : "?"));

  std::string error;
  std::string cacheDir;
  if (!rt::resolveCacheDir(runOptions(), cacheDir, error))
    return fail(error);
  // greta-run-aot loads a private copy of the object: the bytes whose digest
  // was checked (a sealed cache entry, rt::sealCacheEntry) or that were just
  // compiled, never a file another process could change in between.
  llvm::SmallString<256> so;
  if (std::error_code ec =
          llvm::sys::fs::createTemporaryFile("greta-gpu", "so", so))
    return fail("temporary object: " + ec.message());
  struct RemoveOnExit {
    llvm::SmallString<256> &path;
    ~RemoveOnExit() { llvm::sys::fs::remove(path); }
  } removeSo{so};
  bool useCache = !cacheDir.empty();
  std::string entryName = "gpu-" + key.substr(0, 32) + ".entry";
  auto compileStart = Clock::now();
  bool hit = false;
  if (std::optional<std::string> entry =
          useCache ? rt::readCacheFile(cacheDir, entryName, ::greta::kMaxCachedObjectBytes)
                   : std::nullopt) {
    std::string object;
    rt::SealCheck check = rt::unsealCacheEntry(*entry, object);
    if (check == rt::SealCheck::Ok) {
      std::error_code ec;
      llvm::raw_fd_ostream out(so, ec);
      if (!ec)
        out << object;
      out.close();
      if (ec || out.has_error())
        return fail("temporary object " + std::string(so) + ": " +
                    (ec ? ec : out.error()).message());
      hit = true;
    } else {
      llvm::errs() << "greta-run: warning: cached GPU object " << cacheDir
                   << "/" << entryName << " "
                   << (check == rt::SealCheck::Damaged
                           ? "does not match its digest (damaged or edited)"
                           : "is not a sealed cache entry")
                   << "; compiling the model again\n";
    }
  }
  if (!hit) {
    llvm::SmallVector<llvm::StringRef> args{
        compiler,      modelPath, "--backend", "gpu",
        "--precision", precision, "-o",        so};
    std::string pipelineArg = "--pass-pipeline=" + pipelineOpt;
    if (!pipelineOpt.empty())
      args.push_back(pipelineArg);
    std::string message;
    int rc = llvm::sys::ExecuteAndWait(compiler, args, std::nullopt, {}, 0, 0,
                                       &message);
    if (rc != 0)
      return fail("compiling " + modelPath + " for the GPU failed" +
                  (message.empty() ? "" : ": " + message));
    auto object = llvm::MemoryBuffer::getFile(so);
    std::string error;
    if (useCache &&
        (!object ||
         !rt::writeCacheFile(cacheDir, entryName,
                             rt::sealCacheEntry((*object)->getBuffer().str()),
                             error)))
      llvm::errs()
          << "greta-run: warning: cannot write the GPU object cache in "
          << cacheDir << ": " << (object ? error : object.getError().message())
          << " (the run goes on)\n";
  }
  double compileSeconds = secondsSince(compileStart);

  // The run flags go on to greta-run-aot, with the GPU's precision and the
  // cache (the weights digest is cached in the same place) resolved here.
  rt::RunOptions forwarded = runOptions();
  forwarded.backend = "gpu";
  forwarded.precision = precision;
  forwarded.dryRun = false;
  forwarded.cacheDir = cacheDir;
  if (forwarded.weights.empty() && ::greta::hf::isCheckpointDir(modelPath))
    forwarded.weights = modelPath;
  forwarded.noCache = !useCache;
  std::vector<std::string> args{runner, modelPath, "--so=" + std::string(so)};
  for (std::string &arg : rt::toArgv(forwarded))
    args.push_back(std::move(arg));
  if (timing && !jsonOut)
    llvm::outs() << llvm::format(
        "timing: GPU object %s in %.3f s (%s)\n",
        hit ? "from the cache" : "compiled", compileSeconds,
        useCache ? (cacheDir + "/" + entryName).c_str() : "not cached");
  llvm::outs().flush();
  llvm::SmallVector<llvm::StringRef> refs(args.begin(), args.end());
  std::string message;
  int rc =
      llvm::sys::ExecuteAndWait(runner, refs, std::nullopt, {}, 0, 0, &message);
  if (rc < 0)
    return fail("running " + runner + ": " + message);
  return rc;
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
  if (backendOpt == "gpu") {
    int rc = runOnGpu(argv[0]);
    llvm::outs().flush();
    return rc;
  }
  if (backendOpt != "cpu")
    return fail("--backend must be cpu or gpu, got '" + backendOpt + "'");
  if (!kernelOpt.empty() || deviceOpt.getNumOccurrences() ||
      repeatOpt.getNumOccurrences())
    return fail("--kernel, --device and --repeat apply to --backend gpu");
  Runner runner(argv[0]);
  int rc = runner.run();
  llvm::outs().flush();
  return rc;
}

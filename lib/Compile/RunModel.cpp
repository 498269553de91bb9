//===- RunModel.cpp - greta-run's run of a model on the CPU or GPU --------===//
//
// The CPU run instruments every stage of every layer (the runtime filter
// chooses what is recorded, so bisection steps never recompile), lowers with
// greta-lower-to-cpu and JITs the result at O2; compiled objects are cached
// by a digest of the IR after the user's pipeline, the precision and the
// tool itself. The GPU run compiles ahead of time and hands the run to
// greta-run-aot (the JIT is not used for the GPU: the same object runs
// unchanged on a GPU host that has no LLVM).
//
//===----------------------------------------------------------------------===//
#include "greta/Compile/RunModel.h"
#include "greta/Compile/CompileModel.h"
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/LoadModel.h"
#include "greta/Target/HF/ImportCheckpoint.h"
#include "greta/rt/Cache.h"
#include "greta/rt/Generate.h"
#include "greta/rt/RunStarted.h"
#include "greta/rt/Session.h"
#include "greta/rt/Sha256.h"
#include "greta/tools/Progress.h"
#include "greta/tools/Version.h"

#include "mlir/IR/BuiltinOps.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <sstream>

using namespace mlir;
namespace rt = ::greta::rt;

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

std::optional<int64_t> intAttr(ModuleOp module, llvm::StringRef name) {
  if (auto a = module->getAttrOfType<IntegerAttr>(name))
    return a.getInt();
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// The CPU run
//===----------------------------------------------------------------------===//

class Runner {
public:
  explicit Runner(const ::greta::ModelRunRequest &request)
      : request(request), modelPath(request.model), pipeline(request.pipeline),
        o(request.options) {}
  int run();

private:
  const ::greta::ModelRunRequest &request;
  const std::string &modelPath, &pipeline;
  rt::RunOptions o;
  std::string cacheDir; // "" for none
  std::unique_ptr<::greta::JitModel> compiled;
  rt::RunResult result;
  std::unique_ptr<::greta::ProgressLine> progress;
};

int Runner::run() {
  progress = std::make_unique<::greta::ProgressLine>("greta-run");
  activeProgress = progress.get();
  progress->phase("reading the model");
  // Cheap checks first: a bad option fails before anything is compiled.
  const std::string precision = o.precision;
  if (precision != "f32" && precision != "f64" && precision != "f16" &&
      precision != "bf16")
    return fail("--precision must be f32, f64, f16 or bf16, got '" + precision +
                "'");
  std::string error;
  rt::Filter filter;
  if (!rt::parseRunFlags(o, filter, error) ||
      !rt::resolveCacheDir(o, cacheDir, error))
    return fail(error);

  // The model.
  ::greta::ModelContext mc;
  if (o.weights.empty()) {
    if (!::greta::hf::isCheckpointDir(modelPath))
      return fail("--weights is required (unless the model is an HF "
                  "checkpoint directory)");
    o.weights = modelPath;
  }
  std::string irCache = o.cacheDir.empty() ? rt::defaultCacheDir() : o.cacheDir;
  std::optional<::greta::LoadedModel> model =
      ::greta::loadModel(modelPath, pipeline, mc.sourceMgr(), mc.context(),
                         error, o.noCache ? "" : irCache);
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
    if (o.backend == "cpu" && emulated.getValue() != precision)
      return fail("--pass-pipeline emulates " + emulated.getValue().str() +
                  " (greta.emulated_precision) but --precision is " +
                  precision + ": pass --precision " +
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
  rt::DecodePlan decode;
  if (!prompt || !rt::checkAgainstModel(o, *prompt, limits, filter, error) ||
      !rt::planDecode(o, *prompt, limits.maxPositions, decode, error))
    return fail(error);

  // Weights: validated against every parameter of the IR before compiling.
  progress->phase("loading weights");
  auto loadStart = Clock::now();
  auto weights = rt::SafeTensors::open(o.weights, error);
  if (!weights)
    return fail(error);
  rt::DType dtype = precision == "f64" ? rt::DType::F64 : rt::DType::F32;
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
  if (o.dryRun) {
    llvm::outs() << rt::dryRunLine("greta-run", modelPath, o);
    return 0;
  }

  // Precision, every stage of every layer instrumented, then the JIT (or
  // the cached object).
  ::greta::CompileTarget target{/*gpu=*/false, precision};
  if (failed(::greta::instrumentModel(*module, target)))
    return fail("instrumenting " + modelPath + " failed (see above)");
  progress->phase("compiling");
  auto compileStart = Clock::now();
  compiled = ::greta::compileForJit(
      *module, target,
      {modelPath, irAfterUser,
       request.version + " " + ::greta::executableDigest(request.argv0),
       cacheDir, request.dumpLLVM},
      [](const std::string &warning) {
        llvm::errs() << "greta-run: warning: " << warning << "\n";
      },
      error);
  if (!compiled)
    return fail(error);
  result.compileSeconds = secondsSince(compileStart);

  // The trace, if asked for.
  std::unique_ptr<rt::TraceWriter> writer;
  if (!o.traceDir.empty()) {
    std::string warning;
    rt::Manifest manifest = rt::buildManifest(
        {model->name, sha256Hex(model->text), "cpu", precision, pipeline,
         ::greta::versionLine("greta-run")},
        *weights, cacheDir, *prompt, filter, warning);
    if (!warning.empty())
      llvm::errs() << "greta-run: warning: " << warning << "\n";
    rt::recordGeneration(decode, manifest);
    writer = rt::TraceWriter::create(o.traceDir, manifest, o.overwrite, error);
    if (!writer)
      return fail("--trace-dir " + o.traceDir + ": " + error);
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
  bool ok = rt::runCpuPlan(
      compiled->forward, *session, o, prompt->ids, decode,
      [&](int64_t call, int64_t calls) {
        progress->forward(call, calls, numLayers);
      },
      result, writer.get(), error);
  result.forwardSeconds = secondsSince(start);
  rt::Session::setCurrent(nullptr);
  if (!ok)
    return fail(error);
  if (writer && !writer->finish(error))
    return fail("--trace-dir " + o.traceDir + ": " + error);

  progress->finish();
  result.model = model->name;
  result.precision = precision;
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
/// siblings.
int runOnGpu(const ::greta::ModelRunRequest &request) {
  const rt::RunOptions &o = request.options;
  const std::string &modelPath = request.model, &pipeline = request.pipeline;
  std::string decodeError;
  if (!rt::checkGpuDecodeFlags(o.decode, decodeError))
    return fail(decodeError);
  std::string precision = request.precisionGiven ? o.precision : "f16";
  if (precision != "f16" && precision != "bf16" && precision != "f32")
    return fail("--precision for --backend gpu must be f16 (default), bf16 or "
                "f32 storage, got '" +
                precision + "'");
  std::string exe = llvm::sys::fs::getMainExecutable(
      request.argv0, reinterpret_cast<void *>(&runOnGpu));
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
  if (o.dryRun) // the checks of the model and its inputs are the CPU run's
    return Runner(request).run();

  auto model = llvm::MemoryBuffer::getFile(modelPath);
  if (!model)
    return fail("cannot read model " + modelPath + ": " +
                model.getError().message());
  // The object depends on the model text, the precision, the user's passes
  // and the compiler that wrote it.
  auto compilerBytes = llvm::MemoryBuffer::getFile(compiler);
  std::string key = sha256Hex(
      sha256Hex((*model)->getBuffer()) + "|gpu|" + precision + "|" + pipeline +
      "|" + (compilerBytes ? sha256Hex((*compilerBytes)->getBuffer()) : "?"));

  std::string error;
  std::string cacheDir;
  if (!rt::resolveCacheDir(o, cacheDir, error))
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
          useCache ? rt::readCacheFile(cacheDir, entryName,
                                       ::greta::kMaxCachedObjectBytes)
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
    std::string pipelineArg = "--pass-pipeline=" + pipeline;
    if (!pipeline.empty())
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
  rt::RunOptions forwarded = o;
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
  if (o.timing && !o.json)
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
} // namespace

int ::greta::runModel(const ::greta::ModelRunRequest &request) {
  const rt::RunOptions &o = request.options;
  int rc;
  if (o.backend == "gpu")
    rc = runOnGpu(request);
  else if (o.backend != "cpu")
    return fail("--backend must be cpu or gpu, got '" + o.backend + "'");
  else if (!o.kernels.empty() || o.device || request.repeatGiven)
    return fail("--kernel, --device and --repeat apply to --backend gpu");
  else
    rc = Runner(request).run();
  llvm::outs().flush();
  return rc;
}

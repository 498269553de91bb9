//===- CompileModel.cpp - Instrument, lower, codegen, cache ---------------===//
#include "greta/Compile/CompileModel.h"
#include "greta/Conversion/Passes.h"
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/InitAll.h"
#include "greta/rt/Cache.h"
#include "greta/rt/Sha256.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/RTDyldObjectLinkingLayer.h"
#include "llvm/ExecutionEngine/SectionMemoryManager.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

using namespace mlir;
namespace rt = ::greta::rt;

namespace {
std::string sha256Hex(llvm::StringRef text) {
  return rt::sha256Hex(text.data(), text.size());
}

bool writeLLVMDialect(ModuleOp module, const std::string &path,
                      std::string &error) {
  auto out = openOutputFile(path, &error);
  if (!out)
    return false;
  module.print(out->os());
  out->keep();
  return true;
}

/// Loads a cached object into an ORC JIT (the same RTDyld linking layer the
/// ExecutionEngine uses); process symbols (the runtime) resolve by default.
llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>>
loadObject(std::unique_ptr<llvm::MemoryBuffer> object) {
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb)
    return jtmb.takeError();
  auto jit =
      llvm::orc::LLJITBuilder()
          .setJITTargetMachineBuilder(std::move(*jtmb))
          .setObjectLinkingLayerCreator([](llvm::orc::ExecutionSession &es) {
            return std::make_unique<llvm::orc::RTDyldObjectLinkingLayer>(
                es, [](const llvm::MemoryBuffer &) {
                  return std::make_unique<llvm::SectionMemoryManager>();
                });
          })
          .create();
  if (!jit)
    return jit.takeError();
  if (llvm::Error err = (*jit)->addObjectFile(std::move(object)))
    return std::move(err);
  return std::move(*jit);
}

/// Seals the engine's object into the cache as `entryName`. The engine can
/// only dump to a file: a fresh one (O_EXCL) in the private cache dir, read
/// back and removed.
bool storeObject(ExecutionEngine &engine, const std::string &cacheDir,
                 const std::string &entryName, std::string &error) {
  int fd = -1;
  llvm::SmallString<256> dump;
  if (std::error_code ec = llvm::sys::fs::createUniqueFile(
          cacheDir + "/dump-%%%%%%%%%%%%.o", fd, dump)) {
    error = ec.message();
    return false;
  }
  llvm::sys::Process::SafelyCloseFileDescriptor(fd);
  engine.dumpToObjectFile(dump);
  auto object = llvm::MemoryBuffer::getFile(dump);
  llvm::sys::fs::remove(dump);
  if (!object || (*object)->getBufferSize() == 0) {
    error = "the compiled object could not be written";
    return false;
  }
  return rt::writeCacheFile(cacheDir, entryName,
                            rt::sealCacheEntry((*object)->getBuffer().str()),
                            error);
}

/// The cached object under `entryName`, linked, or nullptr (`problem` says
/// why when there was an entry).
std::unique_ptr<::greta::JitModel> loadCached(const std::string &cacheDir,
                                     const std::string &entryName,
                                     const std::string &cachePath,
                                     std::string &problem) {
  std::optional<std::string> entry =
      rt::readCacheFile(cacheDir, entryName, ::greta::kMaxCachedObjectBytes);
  if (!entry)
    return nullptr;
  // A sealed entry (rt::sealCacheEntry): the object's digest is checked
  // before it is loaded, so a damaged or edited object is never run.
  std::string object;
  rt::SealCheck check = rt::unsealCacheEntry(*entry, object);
  problem = check == rt::SealCheck::Damaged
                ? "does not match its digest (damaged or edited)"
                : "is not a sealed cache entry";
  if (check != rt::SealCheck::Ok)
    return nullptr;
  auto jit = loadObject(llvm::MemoryBuffer::getMemBufferCopy(object, cachePath));
  if (!jit) {
    problem = "cannot be loaded: " + llvm::toString(jit.takeError());
    return nullptr;
  }
  auto sym = (*jit)->lookup("_mlir_ciface_forward");
  if (!sym) {
    problem = "cannot be linked: " + llvm::toString(sym.takeError());
    return nullptr;
  }
  auto model = std::make_unique<::greta::JitModel>();
  model->jit = std::move(*jit);
  model->forward = sym->toPtr<void *>();
  model->cacheHit = true;
  model->cachePath = cachePath;
  return model;
}
} // namespace

namespace {
mlir::DialectRegistry modelRegistry() {
  DialectRegistry registry;
  ::greta::registerAllDialects(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  return registry;
}
} // namespace

namespace greta {

ModelContext::ModelContext()
    : ctx(modelRegistry()), diagnostics(sources, &ctx) {
  ctx.printOpOnDiagnostic(false);
}

bool compileSharedObject(const AotCompileRequest &request, std::string &error) {
  ModelContext mc;
  std::optional<LoadedModel> model = loadModel(
      request.model, request.pipeline, mc.sourceMgr(), mc.context(), error);
  if (!model)
    return false;
  OwningOpRef<ModuleOp> module = std::move(model->module);
  std::string metadata = aotMetadata(*model, *module, request.target,
                                     request.pipeline, request.tool);
  if (failed(instrumentModel(*module, request.target)) ||
      failed(lowerModel(*module, request.target))) {
    error = "lowering " + request.model + " failed (see above)";
    return false;
  }
  embedAotMetadata(*module, metadata);
  if (!request.dumpLLVM.empty()) {
    auto out = openOutputFile(request.dumpLLVM, &error);
    if (!out) {
      error = "cannot write " + request.dumpLLVM + ": " + error;
      return false;
    }
    module->print(out->os());
    out->keep();
  }
  return emitSharedObject(*module, request.object, error);
}

LogicalResult instrumentModel(ModuleOp module,
                                     const CompileTarget &target) {
  PassManager pm(module.getContext());
  if (!target.gpu) {
    mlir::greta::ConvertPrecisionOptions precision;
    precision.precision = target.precision;
    pm.addPass(mlir::greta::createConvertPrecision(precision));
  }
  pm.addPass(mlir::greta::createInsertTrace());
  return pm.run(module);
}

LogicalResult lowerModel(ModuleOp module, const CompileTarget &target) {
  PassManager pm(module.getContext());
  if (target.gpu) {
    mlir::greta::LowerToGPUOptions o;
    o.storage = target.precision;
    mlir::greta::buildLowerToGPUPipeline(pm, o);
  } else {
    mlir::greta::buildLowerToCPUPipeline(pm);
  }
  return pm.run(module);
}

std::unique_ptr<JitModel>
compileForJit(ModuleOp module, const CompileTarget &target,
                     const JitRequest &request,
                     const std::function<void(const std::string &)> &warn,
                     std::string &error) {
  // Key: the IR after the user's pipeline, the precision, the tool (and the
  // host CPU the O2 code is tuned for).
  std::string keyText = request.irAfterUser;
  keyText += "\nprecision=" + target.precision;
  keyText += "\ntool=" + request.tool;
  keyText += "\ncpu=" + llvm::sys::getHostCPUName().str();
  bool useCache = !request.cacheDir.empty();
  std::string entryName = "cpu-" + sha256Hex(keyText) + ".entry";
  std::string cachePath = useCache ? request.cacheDir + "/" + entryName : "";
  if (useCache) {
    std::string problem;
    if (auto cached =
            loadCached(request.cacheDir, entryName, cachePath, problem))
      return cached;
    // Recompiled and replaced, never fatal.
    if (!problem.empty())
      warn("cached object " + cachePath + " " + problem +
           "; compiling the model again");
  }

  if (failed(lowerModel(module, target))) {
    error = "lowering " + request.model +
            " to LLVM failed (see the diagnostics above)";
    return nullptr;
  }
  if (!request.dumpLLVM.empty() &&
      !writeLLVMDialect(module, request.dumpLLVM, error)) {
    error = "cannot write --dump-llvm-ir file: " + error;
    return nullptr;
  }
  ExecutionEngineOptions options;
  auto transformer = makeOptimizingTransformer(/*optLevel=*/2,
                                               /*sizeLevel=*/0,
                                               /*targetMachine=*/nullptr);
  options.transformer = transformer;
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Default; // O2
  options.enableObjectDump = useCache;
  options.enableGDBNotificationListener = false;
  options.enablePerfNotificationListener = false;
  auto engine = ExecutionEngine::create(module, options);
  if (!engine) {
    error = "JIT compilation failed: " + llvm::toString(engine.takeError());
    return nullptr;
  }
  auto sym = (*engine)->lookup("_mlir_ciface_forward");
  if (!sym) {
    error = "the compiled model has no _mlir_ciface_forward (is @forward "
            "public?): " +
            llvm::toString(sym.takeError());
    return nullptr;
  }
  auto model = std::make_unique<::greta::JitModel>();
  model->engine = std::move(*engine);
  model->forward = *sym;
  model->cachePath = cachePath;
  std::string storeError;
  if (useCache &&
      !storeObject(*model->engine, request.cacheDir, entryName, storeError))
    warn("cannot write the compiled-object cache in " + request.cacheDir +
         ": " + storeError + " (the run goes on)");
  return model;
}

std::string aotMetadata(const LoadedModel &model, ModuleOp module,
                        const CompileTarget &target,
                        const std::string &pipeline, const std::string &tool) {
  // Parameters (names and shapes of the IR, before any retyping).
  llvm::json::Array params;
  for (const auto &[name, dims] : model.params)
    params.push_back(llvm::json::Object{
        {"name", name}, {"shape", llvm::json::Array(dims)}});
  llvm::json::Object meta{
      {"format", 1},
      {"tool", tool},
      {"model", model.name},
      {"model_digest", sha256Hex(model.text)},
      {"backend", target.gpu ? "gpu" : "cpu"},
      {"precision", target.precision},
      {"pipeline", pipeline},
      {"params", std::move(params)},
      // greta-run-aot refuses a prompt that ends before a planted fault.
      {"fault_from_positions", llvm::json::Array(model.faultFromPositions)},
  };
  for (const char *attr : {"greta.vocab_size", "greta.max_position_embeddings",
                           "greta.num_layers"})
    if (auto a = module->getAttrOfType<IntegerAttr>(attr))
      meta[llvm::StringRef(attr).drop_front(6)] = a.getInt();
  std::string json;
  llvm::raw_string_ostream os(json);
  os << llvm::json::Value(std::move(meta));
  return json;
}

void embedAotMetadata(ModuleOp module, const std::string &metadata) {
  std::string bytes = metadata;
  bytes.push_back('\0');
  OpBuilder b(module.getContext());
  b.setInsertionPointToStart(module.getBody());
  auto type = LLVM::LLVMArrayType::get(b.getI8Type(), bytes.size());
  LLVM::GlobalOp::create(b, module->getLoc(), type, /*isConstant=*/true,
                         LLVM::Linkage::External, "greta_aot_metadata",
                         b.getStringAttr(bytes), /*alignment=*/1);
}

bool emitSharedObject(ModuleOp module,
                             const SharedObjectRequest &request,
                             std::string &error) {
  auto fail = [&](const std::string &message) {
    error = message;
    return false;
  };
  // LLVM IR -> O2 -> object (PIC, portable CPU) -> cc -shared.
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string targetError;
  const llvm::Target *llvmTarget =
      llvm::TargetRegistry::lookupTarget(triple, targetError);
  if (!llvmTarget)
    return fail("no target for " + triple.str() + ": " + targetError);
  std::string cpu = request.cpu == "native" ? llvm::sys::getHostCPUName().str()
                                            : request.cpu;
  llvm::TargetOptions targetOptions;
  std::unique_ptr<llvm::TargetMachine> tm(llvmTarget->createTargetMachine(
      triple, cpu, "", targetOptions, llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Default));
  if (!tm)
    return fail("cannot create a target machine for " + triple.str() + " " +
                cpu);
  llvm::LLVMContext llvmContext;
  auto llvmModule = translateModuleToLLVMIR(module, llvmContext);
  if (!llvmModule)
    return fail("translation to LLVM IR failed");
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(tm->createDataLayout());
  auto optimize = makeOptimizingTransformer(2, 0, tm.get());
  if (llvm::Error err = optimize(llvmModule.get()))
    return fail("optimizing: " + llvm::toString(std::move(err)));

  std::string objPath = request.outPath + ".o";
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(objPath, ec, llvm::sys::fs::OF_None);
    if (ec)
      return fail("cannot write " + objPath + ": " + ec.message());
    llvm::legacy::PassManager codegen;
    if (tm->addPassesToEmitFile(codegen, os, nullptr,
                                llvm::CodeGenFileType::ObjectFile))
      return fail("the target cannot emit an object file");
    codegen.run(*llvmModule);
  }
  auto cc = llvm::sys::findProgramByName(request.cc);
  if (!cc)
    return fail("cannot find the C compiler '" + request.cc +
                "' to link the shared object (--cc)");
  std::string ccErr;
  llvm::SmallVector<llvm::StringRef> args{*cc, "-shared", "-o",
                                          request.outPath, objPath};
  int rc = llvm::sys::ExecuteAndWait(*cc, args, std::nullopt, {}, 0, 0, &ccErr);
  if (!request.keepObject)
    llvm::sys::fs::remove(objPath);
  if (rc != 0)
    return fail("'" + *cc + " -shared -o " + request.outPath + " " + objPath +
                "' failed (exit " + std::to_string(rc) + ") " + ccErr);
  return true;
}

std::string executableDigest(const char *argv0) {
  std::string exe = llvm::sys::fs::getMainExecutable(
      argv0, reinterpret_cast<void *>(&::greta::executableDigest));
  auto buffer = llvm::MemoryBuffer::getFile(exe);
  if (!buffer)
    return "unknown";
  return sha256Hex((*buffer)->getBuffer());
}

} // namespace greta

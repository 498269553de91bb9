//===- greta-compile.cpp - Compile a greta model ahead of time --*- C++ -*-===//
//
// Lowers a greta model exactly as greta-run does (the user's passes,
// precision, every stage of every layer instrumented), for the CPU
// (greta-lower-to-cpu, f32/f64/f16/bf16 emulation) or the GPU
// (greta-lower-to-gpu, f16/bf16/f32 storage), optimizes it at O2, emits an
// object file for a portable x86-64 (the GPU host is another machine) and
// links it with the system `cc -shared`. The shared object exports
// `_mlir_ciface_forward` and `greta_aot_metadata`, a NUL-terminated JSON
// string: what greta-run-aot (no LLVM) needs to drive it (parameter names and
// shapes, backend, precision, vocabulary, max positions, layers, model name
// and digest). docs/GPU_BACKEND.md describes the format.
//
// Exit codes: 0 ok, 2 error.
//
//===----------------------------------------------------------------------===//
#include "greta/Conversion/Passes.h"
#include "greta/Dialect/Greta/IR/GretaDialect.h"
#include "greta/Dialect/Greta/Transforms/Passes.h"
#include "greta/InitAll.h"
#include "greta/LoadModel.h"
#include "greta/ParseMLIR.h"
#include "greta/tools/LLVMVersion.h"

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
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"


#ifndef GRETA_VERSION
#define GRETA_VERSION "unknown"
#endif

using namespace mlir;
namespace cl = llvm::cl;

static cl::OptionCategory cat("greta-compile options");
static cl::opt<std::string> modelPath(cl::Positional, cl::desc("<MODEL.mlir>"),
                                      cl::Required, cl::cat(cat));
static cl::opt<std::string> outPath("o", cl::desc("Output shared object"),
                                    cl::value_desc("file.so"), cl::Required,
                                    cl::cat(cat));
static cl::opt<std::string>
    backendOpt("backend", cl::desc("cpu (default) or gpu"), cl::init("cpu"),
               cl::cat(cat));
static cl::opt<std::string> precisionOpt(
    "precision",
    cl::desc("cpu: f32 (default), f64, f16 or bf16 (emulated in f32); gpu: "
             "f16 (default on gpu), bf16 or f32 storage"),
    cl::init(""), cl::cat(cat));
static cl::opt<std::string> pipelineOpt(
    "pass-pipeline", cl::desc("Extra passes applied to the model first"),
    cl::value_desc("pipeline"), cl::cat(cat));
static cl::opt<std::string>
    cpuOpt("mcpu",
           cl::desc("Target CPU of the host code (default x86-64: the GPU "
                    "host is another machine; 'native' for this one)"),
           cl::init("x86-64"), cl::cat(cat));
static cl::opt<bool> keepObject("keep-object",
                                cl::desc("Keep the object file next to -o "
                                         "(<out>.o)"),
                                cl::cat(cat));
static cl::opt<std::string>
    dumpLLVM("dump-llvm-dialect",
             cl::desc("Write the LLVM-dialect module here"),
             cl::value_desc("file"), cl::cat(cat));
static cl::opt<std::string> ccOpt("cc", cl::desc("C compiler used to link"),
                                  cl::init("cc"), cl::cat(cat));

namespace {
int fail(const llvm::Twine &message) {
  llvm::errs() << "greta-compile: error: " << message << "\n";
  return 2;
}
std::string sha256Hex(llvm::StringRef text) {
  auto digest = llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(text.data()), text.size()));
  return llvm::toHex(digest, /*LowerCase=*/true);
}
std::optional<int64_t> intAttr(ModuleOp module, llvm::StringRef name) {
  if (auto a = module->getAttrOfType<IntegerAttr>(name))
    return a.getInt();
  return std::nullopt;
}
} // namespace

static int run() {
  bool gpu = backendOpt == "gpu";
  if (!gpu && backendOpt != "cpu")
    return fail("--backend must be cpu or gpu, got '" + backendOpt + "'");
  std::string precision =
      precisionOpt.empty() ? (gpu ? "f16" : "f32") : precisionOpt.getValue();
  if (gpu && precision != "f16" && precision != "bf16" && precision != "f32")
    return fail("--precision for the GPU must be f16, bf16 or f32 (storage), "
                "got '" + precision + "'");
  if (!gpu && precision != "f32" && precision != "f64" && precision != "f16" &&
      precision != "bf16")
    return fail("--precision for the CPU must be f32, f64, f16 or bf16, got '" +
                precision + "'");

  DialectRegistry registry;
  ::greta::registerAllDialects(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  MLIRContext ctx(registry);
  ctx.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagHandler(sourceMgr, &ctx);
  std::string error;
  std::optional<::greta::LoadedModel> model =
      ::greta::loadModel(modelPath, pipelineOpt, sourceMgr, ctx, error);
  if (!model)
    return fail(error);
  OwningOpRef<ModuleOp> module = std::move(model->module);

  // Parameters (names and shapes of the IR, before any retyping).
  llvm::json::Array params;
  for (const auto &[name, dims] : model->params)
    params.push_back(llvm::json::Object{
        {"name", name}, {"shape", llvm::json::Array(dims)}});
  llvm::json::Object meta{
      {"format", 1},
      {"tool", "greta-compile " GRETA_VERSION},
      {"model", model->name},
      {"model_digest", sha256Hex(model->text)},
      {"backend", gpu ? "gpu" : "cpu"},
      {"precision", precision},
      {"pipeline", pipelineOpt.getValue()},
      {"params", std::move(params)},
      // greta-run-aot refuses a prompt that ends before a planted fault.
      {"fault_from_positions", llvm::json::Array(model->faultFromPositions)},
  };
  for (const char *attr : {"greta.vocab_size", "greta.max_position_embeddings",
                           "greta.num_layers"})
    if (auto v = intAttr(*module, attr))
      meta[llvm::StringRef(attr).drop_front(6)] = *v;

  // Precision (CPU), every stage instrumented, lowering.
  {
    PassManager pm(&ctx);
    if (!gpu) {
      mlir::greta::ConvertPrecisionOptions p;
      p.precision = precision;
      pm.addPass(mlir::greta::createConvertPrecision(p));
    }
    pm.addPass(mlir::greta::createInsertTrace());
    if (gpu) {
      mlir::greta::LowerToGPUOptions o;
      o.storage = precision;
      mlir::greta::buildLowerToGPUPipeline(pm, o);
    } else {
      mlir::greta::buildLowerToCPUPipeline(pm);
    }
    if (failed(pm.run(*module)))
      return fail("lowering " + modelPath + " failed (see above)");
  }

  // The metadata, as an exported NUL-terminated string.
  {
    std::string json;
    llvm::raw_string_ostream os(json);
    os << llvm::json::Value(std::move(meta));
    json.push_back('\0');
    OpBuilder b(&ctx);
    b.setInsertionPointToStart(module->getBody());
    auto type = LLVM::LLVMArrayType::get(b.getI8Type(), json.size());
    LLVM::GlobalOp::create(b, module->getLoc(), type, /*isConstant=*/true,
                           LLVM::Linkage::External, "greta_aot_metadata",
                           b.getStringAttr(json), /*alignment=*/1);
  }
  if (!dumpLLVM.empty()) {
    std::string error;
    auto out = openOutputFile(dumpLLVM, &error);
    if (!out)
      return fail("cannot write " + dumpLLVM + ": " + error);
    module->print(out->os());
    out->keep();
  }

  // LLVM IR -> O2 -> object (PIC, portable CPU) -> cc -shared.
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  std::string targetError;
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, targetError);
  if (!target)
    return fail("no target for " + triple.str() + ": " + targetError);
  std::string cpu =
      cpuOpt == "native" ? llvm::sys::getHostCPUName().str() : cpuOpt.getValue();
  llvm::TargetOptions targetOptions;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpu, "", targetOptions, llvm::Reloc::PIC_, std::nullopt,
      llvm::CodeGenOptLevel::Default));
  if (!tm)
    return fail("cannot create a target machine for " + triple.str() + " " +
                cpu);
  llvm::LLVMContext llvmContext;
  auto llvmModule = translateModuleToLLVMIR(*module, llvmContext);
  if (!llvmModule)
    return fail("translation to LLVM IR failed");
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(tm->createDataLayout());
  auto optimize = makeOptimizingTransformer(2, 0, tm.get());
  if (llvm::Error err = optimize(llvmModule.get()))
    return fail("optimizing: " + llvm::toString(std::move(err)));

  std::string objPath = outPath + ".o";
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
  auto cc = llvm::sys::findProgramByName(ccOpt);
  if (!cc)
    return fail("cannot find the C compiler '" + ccOpt +
                "' to link the shared object (--cc)");
  std::string ccErr;
  llvm::SmallVector<llvm::StringRef> args{*cc, "-shared", "-o", outPath,
                                          objPath};
  int rc = llvm::sys::ExecuteAndWait(*cc, args, std::nullopt, {}, 0, 0, &ccErr);
  if (!keepObject)
    llvm::sys::fs::remove(objPath);
  if (rc != 0)
    return fail("'" + *cc + " -shared -o " + outPath + " " + objPath +
                "' failed (exit " + llvm::Twine(rc) + ") " + ccErr);
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM y(argc, argv);
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  ::greta::registerAllPasses();
  cl::HideUnrelatedOptions(cat);
  ::greta::setLLVMToolVersionPrinter("greta-compile");
  cl::ParseCommandLineOptions(
      argc, argv,
      "greta-compile: lower a greta model ahead of time into a shared object\n\n"
      "  greta-compile MODEL.mlir --backend cpu|gpu [--precision P] -o M.so\n\n"
      "Every stage of every layer is instrumented (greta-run-aot's filter "
      "chooses what is recorded).\nRun the result with greta-run-aot (no "
      "LLVM needed). Exit codes: 0 ok, 2 error.\n");
  return run();
}

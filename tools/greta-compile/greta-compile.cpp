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
#include "greta/Compile/CompileModel.h"
#include "greta/InitAll.h"
#include "greta/tools/LLVMVersion.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/TargetSelect.h"

#ifndef GRETA_VERSION
#define GRETA_VERSION "unknown"
#endif

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

  ::greta::AotCompileRequest request;
  request.model = modelPath;
  request.pipeline = pipelineOpt;
  request.target = {gpu, precision};
  request.tool = "greta-compile " GRETA_VERSION;
  request.dumpLLVM = dumpLLVM;
  request.object = {cpuOpt, outPath, ccOpt, keepObject};
  std::string error;
  if (!::greta::compileSharedObject(request, error))
    return fail(error);
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

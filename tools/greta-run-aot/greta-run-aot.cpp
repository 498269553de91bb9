//===- greta-run-aot.cpp - Run a model compiled ahead of time ---*- C++ -*-===//
//
// greta-run without LLVM: loads a shared object written by greta-compile
// (dlopen), reads its `greta_aot_metadata` (parameters, backend, precision,
// vocabulary, ...), and drives `_mlir_ciface_forward` with the runtime's
// Session (CPU objects) or the GPU session of runtime/gpu (GPU objects). The
// run itself is the runtime's (rt::runAotObject, greta/rt/AotObject.h), with
// greta-run's flags and output, so greta-bisect can drive it (--greta-run
// greta-run-aot, RUN FLAGS "--so model.so").
//
//   greta-run-aot MODEL.so --weights W --prompt P [--trace-dir D] ...
//   greta-run-aot MODEL.mlir --so MODEL.so ...   (checks that MODEL.so was
//                                                  compiled from MODEL.mlir)
//
// Exit codes: 0 ok, 2 error.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/AotObject.h"
#include "greta/tools/CLI.h"
#include "greta/tools/RunCLI.h"
#include "greta/tools/Version.h"
#ifdef GRETA_HAVE_GPU_RUNTIME
#include "greta/gpu/GpuRun.h"
#endif

#include <csignal>
#include <iostream>

#ifndef GRETA_TOOL_NAME
#define GRETA_TOOL_NAME "greta-run-aot"
#endif

namespace rt = ::greta::rt;

int main(int argc, char **argv) {
  std::signal(SIGXFSZ, SIG_IGN);
  std::string model, so;
  rt::RunOptions o;
  CLI::App app{GRETA_TOOL_NAME
               ": run a model compiled ahead of time by "
               "greta-compile (no LLVM)\n\n"
               "  greta-run-aot MODEL.so --weights W --prompt P [--trace-dir "
               "D] [--layers ..] [--stages ..] [--positions ..] [--payload "
               "..] [--kernel op=variant]\n\nExit codes: 0 ok, 2 error."};
  app.add_option("model", model,
                 "MODEL.so, or the source MODEL.mlir together with --so")
      ->required();
  app.add_option("--so", so, "The shared object (when MODEL is the .mlir)");
  greta::addRunOptions(app, o);
  greta::addVersionFlag(app, GRETA_TOOL_NAME);
  try {
    greta::parseArgs(app, argc, argv);
  } catch (const CLI::ParseError &e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
#ifdef GRETA_HAVE_GPU_RUNTIME
  greta::gpu::GpuRun gpu;
  rt::DeviceRunner *device = &gpu;
#else
  rt::DeviceRunner *device = nullptr;
#endif
  int rc = rt::runAotObject(model, so, o, GRETA_TOOL_NAME,
                            greta::versionLine(GRETA_TOOL_NAME), device);
  std::cout.flush();
  return rc;
}

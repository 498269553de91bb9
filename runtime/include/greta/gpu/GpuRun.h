//===- GpuRun.h - greta-run-aot's forward of a GPU object -------*- C++ -*-===//
//
// The GPU half of a run (greta/rt/Run.h holds the rest): the GPU session on
// --device with the --kernel variants, the chunked forward through it, the
// last position's logits copied back, --repeat's warm-ups.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_GPU_GPURUN_H
#define GRETA_GPU_GPURUN_H

#include "greta/gpu/GpuSession.h"
#include "greta/rt/AotObject.h"
#include "greta/rt/Run.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace greta::gpu {

class GpuRun : public rt::DeviceRunner {
public:
  /// Selects the --kernel variants and creates the session for a prompt of
  /// `tokens` ids (the KV cache's capacity); the error names the culprit.
  bool open(const rt::RunOptions &options, const rt::AotObject &object,
            const rt::SafeTensors &weights, int64_t tokens,
            std::string &error) override;
  /// Runs the prompt (--repeat times: the warm-ups compute and copy the
  /// trace like the last one, but do not write it) and fills `result`.
  bool run(const rt::RunOptions &options, void *forward,
           const std::vector<int64_t> &tokens,
           const std::optional<rt::Patch> &patch, const rt::Filter &filter,
           rt::TraceWriter *writer, rt::RunResult &result,
           std::string &error) override;

private:
  template <typename T>
  bool forward(void *fn, const std::vector<int64_t> &tokens, int64_t chunk,
               const std::string &traceDir, rt::RunResult &result,
               std::string &error);
  std::unique_ptr<GpuSession> session_;
};

} // namespace greta::gpu

#endif // GRETA_GPU_GPURUN_H

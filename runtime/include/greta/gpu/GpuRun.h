//===- GpuRun.h - greta-run-aot's forward of a GPU object -------*- C++ -*-===//
//
// The GPU half of a run (greta/rt/Run.h holds the rest): the GPU session on
// --device with the --kernel variants, the decode loop (rt::runDecode: the
// --chunk schedule, --generate, --generate-from) through it with each
// call's last logits copied back, --repeat's warm-ups.
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
  /// Selects the --kernel variants and creates the session for a run of
  /// `positions` positions (the KV cache's capacity); the error names the
  /// culprit.
  bool open(const rt::RunOptions &options, const rt::AotObject &object,
            const rt::SafeTensors &weights, int64_t positions,
            std::string &error) override;
  /// Runs the prompt and its decode plan (--repeat times: the warm-ups
  /// compute and copy the trace like the last one, but do not write it)
  /// and fills `result`. A single call runs on the contiguous KV cache as
  /// before; a run of several calls on the paged one (--kv-block-size).
  bool run(const rt::RunOptions &options, void *forward,
           const std::vector<int64_t> &tokens, const rt::DecodePlan &plan,
           const std::optional<rt::Patch> &patch, const rt::Filter &filter,
           rt::TraceWriter *writer, rt::RunResult &result,
           std::string &error) override;

private:
  /// One forward call of `ids` at positions [begin, ...): its last row's
  /// logits into `logits`.
  template <typename T>
  bool call(void *fn, const std::vector<int64_t> &ids, int64_t begin,
            const std::string &traceDir, rt::LastLogits &logits,
            int64_t &calls, std::string &error);
  std::unique_ptr<GpuSession> session_;
};

} // namespace greta::gpu

#endif // GRETA_GPU_GPURUN_H

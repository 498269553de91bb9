//===- GpuRun.cpp - greta-run-aot's forward of a GPU object ---------------===//
#include "greta/gpu/GpuRun.h"
#include "greta/gpu/Kernels.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Generate.h"

#include <chrono>
#include <numeric>

using namespace greta;
using namespace greta::gpu;

namespace {
using IdsRef = GRETA_MEMREF(int64_t, 1);
template <typename T> using Logits = GRETA_MEMREF(T, 2);
template <typename T>
using ForwardFn = void (*)(Logits<T> *, IdsRef *, IdsRef *);
} // namespace

bool GpuRun::open(const rt::RunOptions &o, const rt::AotObject &object,
                  const rt::SafeTensors &weights, int64_t tokens,
                  std::string &error) {
  for (const std::string &spec : o.kernels)
    if (greta_gpu_set_variant(spec.c_str()) != GRETA_GPU_OK) {
      error = "--kernel " + spec + ": " + greta_gpu_last_error();
      return false;
    }
  rt::DType storage = object.precision == "f16"    ? rt::DType::F16
                      : object.precision == "bf16" ? rt::DType::BF16
                                                   : rt::DType::F32;
  session_ = GpuSession::create(o.device.value_or(0), weights, object.params,
                                storage, tokens, error);
  return session_ != nullptr;
}

template <typename T>
bool GpuRun::forward(void *forward, const std::vector<int64_t> &tokens,
                     int64_t chunk, const std::string &traceDir,
                     rt::RunResult &result, std::string &error) {
  // T: the storage word (uint16_t for f16/bf16, float for f32).
  auto fn = reinterpret_cast<ForwardFn<T>>(forward);
  GpuSession &gpu = *session_;
  int64_t n = static_cast<int64_t>(tokens.size());
  if (chunk <= 0)
    chunk = n;
  std::vector<int64_t> positions(n);
  std::iota(positions.begin(), positions.end(), 0);
  for (int64_t begin = 0; begin < n; begin += chunk) {
    int64_t len = std::min(chunk, n - begin);
    Logits<T> out{};
    if (gpu.beginCall(tokens.data() + begin, positions.data() + begin, len)) {
      // Descriptors of the device copies: the host never reads them.
      auto *dIds = const_cast<int64_t *>(gpu.dTokens());
      auto *dPos = const_cast<int64_t *>(gpu.dPositions());
      IdsRef ids{dIds, dIds, 0, {len}, {1}};
      IdsRef pos{dPos, dPos, 0, {len}, {1}};
      fn(&out, &ids, &pos);
      ++result.calls;
    }
    bool ok = gpu.endCall();
    if (ok && out.data && out.sizes[0] == len && out.sizes[1] > 0 &&
        out.strides[1] == 1) {
      int64_t vocab = out.sizes[1];
      std::vector<uint8_t> bytes(vocab * sizeof(T));
      gpu.copyToHost(bytes.data(),
                     out.data + out.offset + (len - 1) * out.strides[0], 1,
                     vocab, out.strides[0], sizeof(T));
      result.logits.set(gpu.storage(), std::move(bytes));
    }
    greta_gpu_rt_free(out.basePtr);
    if (!gpu.error().empty()) {
      error = rt::runStoppedError(begin, begin + len, gpu.error(), traceDir);
      return false;
    }
  }
  return true;
}

bool GpuRun::run(const rt::RunOptions &o, void *fn,
                 const std::vector<int64_t> &tokens,
                 const std::optional<rt::Patch> &patch,
                 const rt::Filter &filter, rt::TraceWriter *writer,
                 rt::RunResult &result, std::string &error) {
  GpuSession &gpu = *session_;
  result.device = gpu.deviceDescription();
  if (patch)
    gpu.setPatch(patch->recordId, patch->rows);
  GpuSession::setCurrent(&gpu);
  // One chunk size, no decode yet: anything else is refused (gpuChunk).
  int64_t chunk = 0;
  if (!rt::gpuChunk(o.decode, chunk, error))
    return false;
  bool ok = true;
  for (int64_t r = 0; r < o.repeat && ok; ++r) {
    result.calls = 0;
    gpu.setTrace(writer, filter, static_cast<int64_t>(tokens.size()),
                 /*dryRun=*/r + 1 < o.repeat);
    auto start = std::chrono::steady_clock::now();
    ok = gpu.storage() == rt::DType::F32
             ? forward<float>(fn, tokens, chunk, o.traceDir, result, error)
             : forward<uint16_t>(fn, tokens, chunk, o.traceDir, result, error);
    result.forwardSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    result.repeatSeconds.push_back(result.forwardSeconds);
  }
  result.rowsPatched = gpu.rowsPatched();
  GpuSession::setCurrent(nullptr);
  // The last call's last batch is written by the session's writer thread
  // after endCall: wait for it before the trace file is finished.
  if (!gpu.finishTrace() && ok) {
    error = "--trace-dir " + o.traceDir + ": " + gpu.error() +
            " (the records written before this error are kept)";
    return false;
  }
  return ok;
}

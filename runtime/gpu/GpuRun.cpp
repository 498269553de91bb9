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
                  const rt::SafeTensors &weights, int64_t positions,
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
                                storage, positions, error);
  return session_ != nullptr;
}

template <typename T>
bool GpuRun::call(void *forward, const std::vector<int64_t> &ids,
                  int64_t begin, const std::string &traceDir,
                  rt::LastLogits &logits, int64_t &calls, std::string &error) {
  // T: the storage word (uint16_t for f16/bf16, float for f32).
  auto fn = reinterpret_cast<ForwardFn<T>>(forward);
  GpuSession &gpu = *session_;
  int64_t len = static_cast<int64_t>(ids.size());
  std::vector<int64_t> positions(len);
  std::iota(positions.begin(), positions.end(), begin);
  Logits<T> out{};
  if (gpu.beginCall(ids.data(), positions.data(), len)) {
    // Descriptors of the device copies: the host never reads them.
    auto *dIds = const_cast<int64_t *>(gpu.dTokens());
    auto *dPos = const_cast<int64_t *>(gpu.dPositions());
    IdsRef idsRef{dIds, dIds, 0, {len}, {1}};
    IdsRef posRef{dPos, dPos, 0, {len}, {1}};
    fn(&out, &idsRef, &posRef);
    ++calls;
  }
  bool ok = gpu.endCall();
  logits = rt::LastLogits();
  if (ok && out.data && out.sizes[0] == len && out.sizes[1] > 0 &&
      out.strides[1] == 1) {
    int64_t vocab = out.sizes[1];
    std::vector<uint8_t> bytes(vocab * sizeof(T));
    gpu.copyToHost(bytes.data(),
                   out.data + out.offset + (len - 1) * out.strides[0], 1, vocab,
                   out.strides[0], sizeof(T));
    logits.set(gpu.storage(), std::move(bytes));
  }
  greta_gpu_rt_free(out.basePtr);
  if (!gpu.error().empty()) {
    error = rt::runStoppedError(begin, begin + len, gpu.error(), traceDir);
    return false;
  }
  return true;
}

bool GpuRun::run(const rt::RunOptions &o, void *fn,
                 const std::vector<int64_t> &tokens,
                 const rt::DecodePlan &plan,
                 const std::optional<rt::Patch> &patch,
                 const rt::Filter &filter, rt::TraceWriter *writer,
                 rt::RunResult &result, std::string &error) {
  GpuSession &gpu = *session_;
  result.device = gpu.deviceDescription();
  if (patch)
    gpu.setPatch(patch->recordId, patch->rows);
  GpuSession::setCurrent(&gpu);
  // Single-shot prefill (one call, nothing to decode) keeps the contiguous
  // cache and today's kernels; a run of several calls uses the paged cache.
  int64_t n = static_cast<int64_t>(tokens.size());
  // --trace-cache-reads reads the pages back: paged whatever the calls.
  bool paged =
      rt::chunkCalls(plan.schedule, n, plan.generation.decodeFrom).size() > 1 ||
      plan.generation.maxNewTokens > 1 || o.decode.traceCacheReads;
  gpu.setPaging(paged ? o.decode.kvBlockSize : 0);
  gpu.setTraceCacheReads(o.decode.traceCacheReads);
  bool f32 = gpu.storage() == rt::DType::F32;
  bool ok = true;
  for (int64_t r = 0; r < o.repeat && ok; ++r) {
    result.calls = 0;
    gpu.resetCache();
    gpu.setTrace(writer, filter, n, /*dryRun=*/r + 1 < o.repeat);
    rt::ForwardCall forward = [&](const std::vector<int64_t> &ids,
                                  int64_t begin, rt::LastLogits &logits,
                                  std::string &err) {
      return f32 ? call<float>(fn, ids, begin, o.traceDir, logits,
                               result.calls, err)
                 : call<uint16_t>(fn, ids, begin, o.traceDir, logits,
                                  result.calls, err);
    };
    rt::Generated generated;
    auto start = std::chrono::steady_clock::now();
    ok = rt::runDecode(tokens, plan.schedule, plan.generation, nullptr,
                       forward, result.logits, generated, error);
    result.forwardSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    result.repeatSeconds.push_back(result.forwardSeconds);
    if (plan.generation.maxNewTokens > 0) {
      result.generated = generated.ids;
      result.stoppedAtEos = generated.stoppedAtEos;
      result.generation = rt::generationText(plan.generation.sampling);
    }
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
  // For the manifest, once the writer thread is done with the file.
  if (writer && result.generated)
    writer->setGeneratedIds(*result.generated);
  return ok;
}

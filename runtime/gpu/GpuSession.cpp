//===- GpuSession.cpp - GPU session: parameters, calls, memory --*- C++ -*-===//
//
// See GpuSession.h. Creating the session (device parameters, streams), one
// forward call's inputs (beginCall), parameters, the KV cache, the device
// allocator and patching. The trace is GpuTrace.cpp, the C ABI glue
// GpuEntryPoints.cpp, the op profiler GpuProfiler.cpp.
//
//===----------------------------------------------------------------------===//
#include "greta/gpu/GpuSession.h"
#include "GpuInternal.h"

#include "greta/gpu/Kernels.h"
#include "greta/rt/CInterface.h"
#include "greta/rt/Half.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <numeric>

using namespace greta;
using namespace greta::gpu;

namespace {
std::atomic<GpuSession *> currentSession{nullptr};
} // namespace

//===----------------------------------------------------------------------===//
// Session
//===----------------------------------------------------------------------===//

std::unique_ptr<GpuSession>
GpuSession::create(int device, const rt::SafeTensors &weights,
                   const std::vector<rt::ParamSpec> &params, rt::DType storage,
                   int64_t capacity, std::string &error) {
  if (storage != rt::DType::F16 && storage != rt::DType::BF16 &&
      storage != rt::DType::F32) {
    error = "the GPU stores f16, bf16 or f32, not " +
            std::string(rt::dtypeName(storage));
    return nullptr;
  }
  std::unique_ptr<GpuSession> s(new GpuSession());
  s->storage_ = storage;
  s->capacity_ = capacity;
  char desc[256] = {0};
  if (greta_gpu_init(device, desc, sizeof desc) != GRETA_GPU_OK) {
    error = std::string("no usable GPU: ") + greta_gpu_last_error();
    return nullptr;
  }
  s->desc_ = desc;
  // The compute stream at the greatest priority: the trace streams' blocks
  // (lowest priority) are dispatched only where the program's leave room.
  int leastPriority = 0, greatestPriority = 0;
  cudaDeviceGetStreamPriorityRange(&leastPriority, &greatestPriority);
  cudaStream_t stream;
  if (cudaError_t e = cudaStreamCreateWithPriority(
          &stream, cudaStreamNonBlocking, greatestPriority)) {
    error = cudaMessage("cudaStreamCreate", e);
    return nullptr;
  }
  s->stream_ = stream;
  size_t freeMem = 0, totalMem = 0;
  if (cudaMemGetInfo(&freeMem, &totalMem) == cudaSuccess)
    s->heldLimit_ = std::max(s->heldLimit_, totalMem / 16);
  // A parameter stored in the file in the storage type with the expected
  // shape is uploaded as is. The others are validated and converted through
  // an f32 host session (which names the culprit on a bad file), then
  // rounded to the storage type.
  auto upload = [&](const rt::ParamSpec &p, const void *bytes, size_t size) {
    void *d = nullptr;
    if (greta_gpu_malloc(&d, size) != GRETA_GPU_OK) {
      error = "uploading parameter '" + p.name +
              "': " + greta_gpu_last_error();
      return false;
    }
    s->params_[p.name] = d;
    s->paramShapes_[p.name] = p.shape;
    if (cudaError_t e = cudaMemcpy(d, bytes, size, cudaMemcpyHostToDevice)) {
      error = cudaMessage(("uploading parameter '" + p.name + "'").c_str(), e);
      return false;
    }
    return true;
  };
  std::vector<rt::ParamSpec> convert;
  for (const rt::ParamSpec &p : params) {
    const rt::TensorInfo *t = weights.find(p.name);
    if (!t || t->dtype != storage || t->shape != p.shape) {
      convert.push_back(p);
      continue;
    }
    if (!upload(p, t->data, t->bytes))
      return nullptr;
  }
  if (convert.empty())
    return s;
  auto host = rt::Session::create(weights, convert, rt::DType::F32, error);
  if (!host)
    return nullptr;
  size_t es = rt::dtypeSize(storage);
  std::vector<uint8_t> buf;
  for (const rt::ParamSpec &p : convert) {
    const int64_t *shape = nullptr;
    const float *values = static_cast<const float *>(host->param(
        p.name.c_str(), static_cast<int64_t>(p.shape.size()), &shape));
    if (!values) {
      error = "parameter '" + p.name + "' was not loaded";
      return nullptr;
    }
    int64_t n = 1;
    for (int64_t d : p.shape)
      n *= d;
    buf.resize(static_cast<size_t>(n) * es);
    for (int64_t i = 0; i < n; ++i) {
      if (storage == rt::DType::F32) {
        std::memcpy(buf.data() + i * 4, &values[i], 4);
      } else {
        uint16_t h = storage == rt::DType::F16
                         ? rt::doubleToHalfBits(values[i])
                         : rt::doubleToBF16Bits(values[i]);
        std::memcpy(buf.data() + i * 2, &h, 2);
      }
    }
    if (!upload(p, buf.data(), buf.size()))
      return nullptr;
  }
  return s;
}

GpuSession::~GpuSession() {
  GpuSession *self = this;
  currentSession.compare_exchange_strong(self, nullptr);
  if (stream_)
    cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  for (void *t : traceStreams_)
    cudaStreamSynchronize(static_cast<cudaStream_t>(t));
  if (writerThread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(writerMutex_);
      writerStop_ = true;
    }
    writerCv_.notify_all();
    writerThread_.join();
  }
  for (void *ev : events_)
    cudaEventDestroy(static_cast<cudaEvent_t>(ev));
  for (void *ev : eventPool_)
    cudaEventDestroy(static_cast<cudaEvent_t>(ev));
  for (const OpTime &t : opTimes_)
    opEventPool_.insert(opEventPool_.end(), {t.begin, t.end});
  for (void *ev : opEventPool_)
    cudaEventDestroy(static_cast<cudaEvent_t>(ev));
  for (void *t : traceStreams_)
    cudaStreamDestroy(static_cast<cudaStream_t>(t));
  for (auto &[name, p] : params_)
    greta_gpu_free(p);
  for (auto &[slot, kv] : paged_) {
    greta_gpu_free(kv.k);
    greta_gpu_free(kv.v);
    greta_gpu_free(kv.dTable);
    greta_gpu_host_free(kv.hTable);
  }
  for (auto &[slot, kv] : kv_) {
    greta_gpu_free(kv.k);
    greta_gpu_free(kv.v);
  }
  for (auto &[size, p] : freeBlocks_)
    greta_gpu_free(p);
  for (auto &[p, size] : liveBlocks_)
    greta_gpu_free(p);
  greta_gpu_free(dTokens_);
  greta_gpu_free(dPositions_);
  greta_gpu_free(dSelRows_);
  greta_gpu_host_free(hStaging_);
  for (Chunk &c : chunks_) {
    greta_gpu_free(c.dRecords);
    greta_gpu_host_free(c.hRecords);
    greta_gpu_host_free(c.hTop5); // c.dTop5 is its device address
  }
  for (ValueChunk &c : valueChunks_)
    greta_gpu_host_free(c.h);
  auto freeMirrored = [](auto &chunks) {
    for (auto &c : chunks) {
      greta_gpu_free(c.d);
      greta_gpu_host_free(c.h);
    }
  };
  for (ScratchChunk &c : top5Scratch_)
    greta_gpu_free(c.d);
  freeMirrored(gatherChunks_);
  freeMirrored(jobChunks_);
  if (stream_)
    cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

void GpuSession::setCurrent(GpuSession *s) { currentSession.store(s); }
GpuSession *GpuSession::current() { return currentSession.load(); }

void GpuSession::setError(std::string message) {
  if (error_.empty())
    error_ = std::move(message);
}

void GpuSession::setPatch(int64_t recordId,
                          std::map<int64_t, std::vector<double>> rows) {
  front_.setPatch(recordId, std::move(rows));
}

bool GpuSession::beginCall(const int64_t *tokens, const int64_t *positions,
                           int64_t n) {
  // The previous call's last batch may still be in the writer: its records
  // are in the pinned chunks this call reuses.
  if (!error_.empty() || !drainWriter())
    return false;
  cacheReadValues_.clear(); // the writer is done with them

  if (traceProfile()) {
    profCallStart_ = Clock::now();
    for (void *&ev : profEvents_)
      if (!ev)
        cudaEventCreate(reinterpret_cast<cudaEvent_t *>(&ev));
    cudaEventRecord(static_cast<cudaEvent_t>(profEvents_[0]),
                    static_cast<cudaStream_t>(stream_));
  }
  front_.setPositions(std::vector<int64_t>(positions, positions + n));
  lastTrace_.reset();
  for (int64_t i = 1; i < n; ++i)
    if (positions[i] != positions[0] + i) {
      setError("the GPU attention needs consecutive positions in one call");
      return false;
    }
  if (n > 0 && positions[n - 1] >= capacity_) {
    setError("position " + std::to_string(positions[n - 1]) +
             " is beyond the KV cache capacity " + std::to_string(capacity_));
    return false;
  }
  const std::vector<int64_t> &selRows = front_.selectedRows();
  if (n > callCapacity_) {
    greta_gpu_free(dTokens_);
    greta_gpu_free(dPositions_);
    greta_gpu_free(dSelRows_);
    greta_gpu_host_free(hStaging_);
    dTokens_ = dPositions_ = dSelRows_ = hStaging_ = nullptr;
    size_t bytes = static_cast<size_t>(n) * sizeof(int64_t);
    void *a = nullptr, *b = nullptr, *c = nullptr, *h = nullptr;
    if (greta_gpu_malloc(&a, bytes) || greta_gpu_malloc(&b, bytes) ||
        greta_gpu_malloc(&c, bytes) || greta_gpu_host_alloc(&h, 3 * bytes)) {
      setError(std::string("per-call buffers: ") + greta_gpu_last_error());
      greta_gpu_free(a);
      greta_gpu_free(b);
      greta_gpu_free(c);
      return false;
    }
    dTokens_ = static_cast<int64_t *>(a);
    dPositions_ = static_cast<int64_t *>(b);
    dSelRows_ = static_cast<int64_t *>(c);
    hStaging_ = static_cast<int64_t *>(h);
    callCapacity_ = n;
  }
  // The pinned staging buffer may still feed the previous call's copies:
  // endCall synchronized the stream, so it is free again.
  std::memcpy(hStaging_, tokens, n * sizeof(int64_t));
  std::memcpy(hStaging_ + n, positions, n * sizeof(int64_t));
  std::copy(selRows.begin(), selRows.end(), hStaging_ + 2 * n);
  auto st = static_cast<cudaStream_t>(stream_);
  size_t bytes = static_cast<size_t>(n) * sizeof(int64_t);
  cudaError_t e = cudaMemcpyAsync(dTokens_, hStaging_, bytes,
                                  cudaMemcpyHostToDevice, st);
  if (!e)
    e = cudaMemcpyAsync(dPositions_, hStaging_ + n, bytes,
                        cudaMemcpyHostToDevice, st);
  if (!e && !selRows.empty())
    e = cudaMemcpyAsync(dSelRows_, hStaging_ + 2 * n,
                        selRows.size() * sizeof(int64_t),
                        cudaMemcpyHostToDevice, st);
  if (e) {
    setError(cudaMessage("uploading token ids and positions", e));
    return false;
  }
  return true;
}

const void *GpuSession::param(const char *name, int64_t rank,
                              const int64_t **shape) const {
  const std::vector<int64_t> *sh = rt::paramShape(paramShapes_, name, rank);
  if (!sh)
    return nullptr;
  if (shape)
    *shape = sh->data();
  return params_.at(name ? name : "");
}

GpuSession::KVSlot *GpuSession::kvSlot(int64_t slot, int64_t kvDim) {
  KVSlot &kv = kv_[slot];
  if (kv.k) {
    if (kv.kvDim != kvDim) {
      setError("KV slot " + std::to_string(slot) + " holds rows of " +
               std::to_string(kv.kvDim) + " values, this call " +
               std::to_string(kvDim));
      return nullptr;
    }
    return &kv;
  }
  size_t bytes = static_cast<size_t>(capacity_) * kvDim *
                 rt::dtypeSize(storage_);
  if (greta_gpu_malloc(&kv.k, bytes) || greta_gpu_malloc(&kv.v, bytes)) {
    setError("KV cache slot " + std::to_string(slot) + ": " +
             greta_gpu_last_error());
    return nullptr;
  }
  kv.kvDim = kvDim;
  return &kv;
}

void *GpuSession::alloc(size_t bytes) {
  if (bytes == 0)
    bytes = 1;
  auto it = freeBlocks_.find(bytes);
  if (it == freeBlocks_.end() && !inflight_.empty()) {
    // Only on a miss: a query per allocation cost ~1 us of host time each.
    reclaimFinishedBatches(/*waitForAll=*/false);
    it = freeBlocks_.find(bytes);
  }
  if (it == freeBlocks_.end() && heldBytes_ > heldLimit_) {
    // Too much is held for trace jobs: let the compute stream wait (on the
    // device, not the host) for the oldest batches; their blocks are then
    // reusable in stream order.
    flushBatch();
    launchDeferredBatch();
    while (it == freeBlocks_.end() && !inflight_.empty()) {
      std::shared_ptr<Batch> oldest = inflight_.front();
      inflight_.pop_front();
      cudaStreamWaitEvent(static_cast<cudaStream_t>(stream_),
                          static_cast<cudaEvent_t>(oldest->done), 0);
      for (void *blk : oldest->blocks)
        unhold(blk);
      it = freeBlocks_.find(bytes);
    }
  }
  void *p = nullptr;
  if (it != freeBlocks_.end()) {
    p = it->second;
    freeBlocks_.erase(it);
  } else if (greta_gpu_malloc(&p, bytes) != GRETA_GPU_OK) {
    setError(std::string("device allocation: ") + greta_gpu_last_error());
    return nullptr;
  }
  liveBlocks_[p] = bytes;
  return p;
}

void GpuSession::release(void *ptr) {
  if (!ptr)
    return;
  auto it = liveBlocks_.find(ptr);
  if (it == liveBlocks_.end() || freedWhileHeld_.count(ptr)) {
    setError("free of a pointer the device allocator did not return");
    return;
  }
  if (held_.count(ptr)) { // a trace job has still to read it
    freedWhileHeld_.insert(ptr);
    return;
  }
  // Stream order makes reuse safe: every user of the block was queued on
  // the session's one compute stream before any later user of the block.
  freeBlocks_.emplace(it->second, ptr);
  liveBlocks_.erase(it);
}

void GpuSession::hold(const void *data, bool untilFlush) {
  // The traced tensor may be a view into a larger block.
  auto it = liveBlocks_.upper_bound(const_cast<void *>(data));
  if (it == liveBlocks_.begin())
    return; // not the program's buffer (a parameter, the KV cache)
  --it;
  auto *base = static_cast<const uint8_t *>(it->first);
  if (static_cast<const uint8_t *>(data) >= base + it->second)
    return;
  if (held_[it->first]++ == 0)
    heldBytes_ += it->second;
  (untilFlush ? open_.heldUntilFlush : open_.blocks).push_back(it->first);
}

void GpuSession::unhold(void *blk) {
  auto h = held_.find(blk);
  if (h == held_.end() || --h->second > 0)
    return;
  held_.erase(h);
  auto live = liveBlocks_.find(blk);
  heldBytes_ -= live->second;
  if (freedWhileHeld_.erase(blk)) {
    freeBlocks_.emplace(live->second, blk);
    liveBlocks_.erase(live);
  }
}

void GpuSession::reclaimFinishedBatches(bool waitForAll) {
  while (!inflight_.empty()) {
    Batch &b = *inflight_.front();
    if (!waitForAll &&
        cudaEventQuery(static_cast<cudaEvent_t>(b.done)) == cudaErrorNotReady)
      break;
    for (void *blk : b.blocks)
      unhold(blk);
    inflight_.pop_front();
  }
}

bool GpuSession::copyToHost(void *host, const void *device, int64_t rows,
                            int64_t cols, int64_t ld, size_t es) {
  cudaError_t e = cudaMemcpy2DAsync(host, cols * es, device, ld * es, cols * es,
                                    rows, cudaMemcpyDeviceToHost,
                                    static_cast<cudaStream_t>(stream_));
  if (!e)
    e = cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  if (e) {
    setError(cudaMessage("copying the logits to the host", e));
    return false;
  }
  return true;
}

int64_t GpuSession::applyPatch(int64_t recordId, rt::DType dtype, void *data,
                               int64_t rows, int64_t cols, int64_t ld) {
  if (!error_.empty())
    return 0;
  size_t es = rt::dtypeSize(dtype);
  std::string err;
  int64_t patched = front_.patch(
      recordId, dtype, rows, cols,
      [&](int64_t i, std::vector<uint8_t> row) {
        // Kept until the end of the call (the copy is asynchronous).
        std::vector<uint8_t> &bytes = patchStaging_.emplace_back(std::move(row));
        if (cudaError_t e = cudaMemcpyAsync(
                static_cast<uint8_t *>(data) + i * ld * es, bytes.data(),
                bytes.size(), cudaMemcpyHostToDevice,
                static_cast<cudaStream_t>(stream_))) {
          err = cudaMessage("patching the tensor", e);
          return false;
        }
        return true;
      },
      err);
  if (!err.empty())
    setError(err);
  return patched;
}

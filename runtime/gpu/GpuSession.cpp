//===- GpuSession.cpp - GPU session and the C ABI glue ----------*- C++ -*-===//
//
// See GpuSession.h. The glue functions at the end translate MLIR memref
// descriptors of device buffers into calls of the kernel library
// (runtime/include/greta/gpu/Kernels.h) on the session's stream. Like the
// CPU ABI they have no error channel: the first failure is recorded in the
// session (GpuSession::error), every later glue call returns at once, and
// the runner reports it after the call with the trace written so far kept.
//
//===----------------------------------------------------------------------===//
#include "greta/gpu/GpuSession.h"

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

std::string cudaMessage(const char *what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorName(e) + " (" +
         cudaGetErrorString(e) + ")";
}

greta_gpu_dtype gpuDType(rt::DType d) {
  switch (d) {
  case rt::DType::F16:
    return GRETA_GPU_F16;
  case rt::DType::BF16:
    return GRETA_GPU_BF16;
  default:
    return GRETA_GPU_F32;
  }
}

/// The first chunk (records, values, job tables) with room for `need` more.
template <typename C, typename N> C *withRoom(std::deque<C> &chunks, N need) {
  for (C &c : chunks)
    if (c.capacity - c.used >= need)
      return &c;
  return nullptr;
}

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}
// GRETA_GPU_TRACE_PROFILE=1: one line per call on stderr with the host time
// the trace spent (a diagnostic for tracing overhead, not a feature).
// GRETA_GPU_OP_PROFILE=1: after each call, the compute stream's GPU time
// per kernel kind on stderr (events around every launch; a diagnostic).
bool opProfile() {
  static const bool on = [] {
    const char *v = std::getenv("GRETA_GPU_OP_PROFILE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

bool traceProfile() {
  static const bool on = [] {
    const char *v = std::getenv("GRETA_GPU_TRACE_PROFILE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}
} // namespace

//===----------------------------------------------------------------------===//
// HashPool
//===----------------------------------------------------------------------===//

namespace greta::gpu {
/// A few threads that hash the writer's host-hashed rows side by side (a
/// batch's rows are independent): the end of a call waits for the last
/// batch, whose logits rows take ~30 us each on one core.
class HashPool {
public:
  explicit HashPool(unsigned threads) {
    for (unsigned i = 0; i < threads; ++i)
      threads_.emplace_back([this] { loop(); });
  }
  ~HashPool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread &t : threads_)
      t.join();
  }
  /// Runs fn(0 .. count-1) on the pool and the calling thread; returns when
  /// every call has returned. One caller at a time. With `ready`, each
  /// thread polls it before its first item: the threads are woken now and
  /// start the moment the data lands (waking one costs ~50 us on a VM).
  void run(size_t count, const std::function<void(size_t)> &fn,
           const std::function<bool()> *ready = nullptr) {
    {
      std::lock_guard<std::mutex> lock(m_);
      fn_ = &fn;
      ready_ = ready;
      count_ = count;
      next_ = finished_ = 0;
    }
    cv_.notify_all();
    // Rows that have not landed yet (`ready`) are taken by the pool's
    // threads while the caller only watches, yielding its core: a woken
    // thread may run on its waker's core, and while the caller hashed a row
    // there the other thread waited (one of the three logits rows started
    // 50-78 us after they landed, "greta trace rows"; H100, session 8:
    // 2 of 12 runs against none).
    if (!ready || threads_.size() < count)
      work();
    else
      for (;;) {
        {
          std::lock_guard<std::mutex> lock(m_);
          if (finished_ == count_)
            break;
        }
        std::this_thread::yield();
      }
    std::unique_lock<std::mutex> lock(m_);
    doneCv_.wait(lock, [&] { return finished_ == count_; });
    fn_ = nullptr;
    ready_ = nullptr;
  }

private:
  void loop() {
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [&] { return stop_ || (fn_ && next_ < count_); });
        if (stop_)
          return;
      }
      work();
    }
  }
  // Takes items until none is left.
  void work() {
    bool waited = false;
    for (;;) {
      size_t i;
      const std::function<void(size_t)> *fn;
      const std::function<bool()> *ready;
      {
        std::lock_guard<std::mutex> lock(m_);
        if (!fn_ || next_ >= count_)
          return;
        i = next_++;
        fn = fn_;
        ready = ready_;
      }
      if (ready && !waited) {
        while (!(*ready)())
          std::this_thread::yield();
        waited = true;
      }
      (*fn)(i);
      std::lock_guard<std::mutex> lock(m_);
      if (++finished_ == count_)
        doneCv_.notify_all();
    }
  }
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_, doneCv_;
  const std::function<void(size_t)> *fn_ = nullptr;
  const std::function<bool()> *ready_ = nullptr;
  size_t count_ = 0, next_ = 0, finished_ = 0;
  bool stop_ = false;
};
} // namespace greta::gpu

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

template <typename T>
GpuSession::MirroredChunk<T> *
GpuSession::mirroredWithRoom(std::deque<MirroredChunk<T>> &chunks, size_t need,
                             size_t minCapacity, const char *what) {
  if (MirroredChunk<T> *c = withRoom(chunks, need))
    return c;
  MirroredChunk<T> c;
  c.capacity = std::max(need, minCapacity);
  void *d = nullptr, *h = nullptr;
  if (greta_gpu_malloc(&d, c.capacity * sizeof(T)) ||
      greta_gpu_host_alloc(&h, c.capacity * sizeof(T))) {
    greta_gpu_free(d);
    setError(std::string(what) + ": " + greta_gpu_last_error());
    return nullptr;
  }
  c.d = static_cast<T *>(d);
  c.h = static_cast<T *>(h);
  chunks.push_back(c);
  return &chunks.back();
}

void GpuSession::setCurrent(GpuSession *s) { currentSession.store(s); }
GpuSession *GpuSession::current() { return currentSession.load(); }

GpuSession::Chunk *GpuSession::newRecordChunk(int64_t capacity) {
  Chunk c;
  c.capacity = capacity;
  size_t bytes = c.capacity * sizeof(greta_gpu_row_record);
  size_t top5Bytes = c.capacity * 5 * sizeof(int32_t);
  void *dTop5 = nullptr, *hTop5 = nullptr;
  if (greta_gpu_malloc(&c.dRecords, bytes) ||
      greta_gpu_host_alloc(&c.hRecords, bytes) ||
      greta_gpu_host_alloc_mapped(&hTop5, &dTop5, top5Bytes)) {
    setError(std::string("trace records: ") + greta_gpu_last_error());
    greta_gpu_free(c.dRecords);
    greta_gpu_host_free(c.hRecords);
    return nullptr;
  }
  c.dTop5 = static_cast<int32_t *>(dTop5);
  c.hTop5 = static_cast<int32_t *>(hTop5);
  chunks_.push_back(c);
  return &chunks_.back();
}

void GpuSession::setError(std::string message) {
  if (error_.empty())
    error_ = std::move(message);
}

bool GpuSession::finishTrace() { return drainWriter() && error_.empty(); }

void GpuSession::setTrace(rt::TraceWriter *writer, rt::Filter filter,
                          int64_t tokenCount, bool dryRun) {
  drainWriter(); // the writer thread reads writer_ and the batches' chunks
  writer_ = writer;
  filter_ = std::move(filter);
  tokenCount_ = tokenCount;
  dryRun_ = dryRun;
  traceFailed_ = false;
  lastTrace_.reset();
  if (!writer_)
    return;
  // Batches alternate between a few side streams so that one batch's
  // SHA-256 chains (a latency, not a throughput) overlap the next.
  // Lowest priority: the compute stream's blocks are dispatched first.
  int leastPriority = 0, greatestPriority = 0;
  cudaDeviceGetStreamPriorityRange(&leastPriority, &greatestPriority);
  while (traceStreams_.size() < kTraceStreams) {
    cudaStream_t t;
    if (cudaError_t e = cudaStreamCreateWithPriority(
            &t, cudaStreamNonBlocking, leastPriority)) {
      setError(cudaMessage("creating a trace stream", e));
      return;
    }
    traceStreams_.push_back(t);
  }
  if (!writerThread_.joinable())
    writerThread_ = std::thread([this] { writerLoop(); });
}

void GpuSession::setPatch(int64_t recordId,
                          std::map<int64_t, std::vector<double>> rows) {
  patchRecord_ = recordId;
  patchRows_ = std::move(rows);
}

bool GpuSession::beginCall(const int64_t *tokens, const int64_t *positions,
                           int64_t n) {
  // The previous call's last batch may still be in the writer: its records
  // are in the pinned chunks this call reuses.
  if (!error_.empty() || !drainWriter())
    return false;
  if (traceProfile()) {
    profCallStart_ = Clock::now();
    for (void *&ev : profEvents_)
      if (!ev)
        cudaEventCreate(reinterpret_cast<cudaEvent_t *>(&ev));
    cudaEventRecord(static_cast<cudaEvent_t>(profEvents_[0]),
                    static_cast<cudaStream_t>(stream_));
  }
  positions_.assign(positions, positions + n);
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
  selRows_.clear();
  for (int64_t i = 0; i < n; ++i)
    if (filter_.selectsPosition(positions[i], tokenCount_))
      selRows_.push_back(i);
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
  std::copy(selRows_.begin(), selRows_.end(), hStaging_ + 2 * n);
  auto st = static_cast<cudaStream_t>(stream_);
  size_t bytes = static_cast<size_t>(n) * sizeof(int64_t);
  cudaError_t e = cudaMemcpyAsync(dTokens_, hStaging_, bytes,
                                  cudaMemcpyHostToDevice, st);
  if (!e)
    e = cudaMemcpyAsync(dPositions_, hStaging_ + n, bytes,
                        cudaMemcpyHostToDevice, st);
  if (!e && !selRows_.empty())
    e = cudaMemcpyAsync(dSelRows_, hStaging_ + 2 * n,
                        selRows_.size() * sizeof(int64_t),
                        cudaMemcpyHostToDevice, st);
  if (e) {
    setError(cudaMessage("uploading token ids and positions", e));
    return false;
  }
  return true;
}

const void *GpuSession::param(const char *name, int64_t rank,
                              const int64_t **shape) const {
  auto it = params_.find(name ? name : "");
  if (it == params_.end())
    return nullptr;
  const std::vector<int64_t> &sh = paramShapes_.at(it->first);
  if (static_cast<int64_t>(sh.size()) != rank)
    return nullptr;
  if (shape)
    *shape = sh.data();
  return it->second;
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
  if (recordId != patchRecord_ || patchRows_.empty() || !error_.empty())
    return 0;
  int64_t patched = 0;
  size_t es = rt::dtypeSize(dtype);
  for (int64_t i = 0; i < rows && i < static_cast<int64_t>(positions_.size());
       ++i) {
    auto it = patchRows_.find(positions_[i]);
    if (it == patchRows_.end())
      continue;
    if (static_cast<int64_t>(it->second.size()) != cols) {
      setError("patch of record " + std::to_string(recordId) +
               " at position " + std::to_string(positions_[i]) + " has " +
               std::to_string(it->second.size()) + " values, the tensor row " +
               std::to_string(cols));
      return patched;
    }
    // Converted to the storage type; kept until the end of the call (the
    // copy is asynchronous).
    std::vector<uint8_t> &bytes = patchStaging_.emplace_back(cols * es);
    for (int64_t c = 0; c < cols; ++c) {
      double v = it->second[c];
      if (dtype == rt::DType::F32) {
        float f = static_cast<float>(v);
        std::memcpy(bytes.data() + c * 4, &f, 4);
      } else {
        uint16_t h = dtype == rt::DType::F16 ? rt::doubleToHalfBits(v)
                                             : rt::doubleToBF16Bits(v);
        std::memcpy(bytes.data() + c * 2, &h, 2);
      }
    }
    if (cudaError_t e = cudaMemcpyAsync(
            static_cast<uint8_t *>(data) + i * ld * es, bytes.data(),
            bytes.size(), cudaMemcpyHostToDevice,
            static_cast<cudaStream_t>(stream_))) {
      setError(cudaMessage("patching the tensor", e));
      return patched;
    }
    ++rowsPatched_;
    ++patched;
  }
  return patched;
}

void GpuSession::trace(int64_t recordId, int64_t compiledPayload,
                       rt::DType dtype, const void *data, int64_t rows,
                       int64_t cols, int64_t ld, bool repeat) {
  std::optional<LastTrace> previous = lastTrace_;
  lastTrace_.reset();
  if (!writer_ || traceFailed_ || !error_.empty())
    return;
  auto t0 = Clock::now();
  struct Account {
    double &ms;
    Clock::time_point t0;
    ~Account() { ms += msSince(t0); }
  } account{profTraceMs_, t0};
  int64_t stageIdx = recordId % 16, layer = recordId / 16;
  if (recordId < 0 || stageIdx >= rt::kNumStages) {
    setError("trace: invalid record id " + std::to_string(recordId));
    return;
  }
  auto stage = static_cast<rt::Stage>(stageIdx);
  if (!filter_.selects(stage, layer))
    return;
  if (rows != static_cast<int64_t>(positions_.size())) {
    setError("trace of " + std::string(rt::stageName(stage)) + " layer " +
             std::to_string(layer) + ": " + std::to_string(rows) +
             " rows but the session has " + std::to_string(positions_.size()) +
             " positions for this call");
    return;
  }
  int64_t n = static_cast<int64_t>(selRows_.size());
  if (n == 0)
    return;
  int64_t p = filter_.payload ? static_cast<int64_t>(*filter_.payload)
                              : compiledPayload;
  if (p < 0 || p > static_cast<int64_t>(rt::Payload::Full)) {
    setError("trace: invalid payload " + std::to_string(p));
    return;
  }
  auto payload = static_cast<rt::Payload>(p);
  // The previous call's bytes under another stage tag (residual_post_mlp of
  // L is residual_pre_attn of L+1): the same records, ~10 % of an every-row
  // trace's SHA-256. It joins its source's batch, before any flush below.
  if (repeat && previous && stage != rt::Stage::Logits &&
      previous->data == data && previous->dtype == dtype &&
      previous->rows == rows && previous->cols == cols && previous->ld == ld &&
      previous->payload == payload &&
      previous->pending < open_.pending.size()) {
    Pending alias = open_.pending[previous->pending];
    alias.stage = stage;
    alias.layer = layer;
    alias.sameAs = static_cast<int64_t>(previous->pending);
    open_.pending.push_back(std::move(alias));
    lastTrace_ = previous;
    return;
  }
  // Host-hashed tensors (a few selected rows) go in a batch per layer:
  // layer l is hashed and written while layer l+1 computes. A layer's batch
  // is flushed at the next rms_norm launch once its last stage is in
  // (flushFinishedLayer): the last layer's at the final norm, so that the
  // writer hashes its rows during the LM head; if it lacks that stage (a
  // --stages filter) it stays open for the logits and the end of the call
  // hashes its rows with the logits'. A batch hashed on the device (every
  // row) stays open until the logits, or until the tensors it holds reach
  // heldLimit_: its rows are hashed after the forward, in one launch beside
  // the logits' long chains, instead of beside the forward's kernels, which
  // need every multiprocessor (H100, every row, 827 / 1653 tokens: 1.63x /
  // 1.57x of untraced with batches of 64 K records, 1.45x / 1.42x in one
  // batch; docs/PERFORMANCE.md).
  bool hostBatch = open_.jobs.empty();
  if (!open_.pending.empty() &&
      (stage == rt::Stage::Logits
           ? !hostBatch
           : hostBatch && layer != open_.pending.front().layer))
    flushBatch();
  if (open_.jobs.size() >= 65535 || heldBytes_ > heldLimit_)
    flushBatch();
  // A batch's records are contiguous (one copy to the host per batch) in
  // device + pinned chunks that are never reallocated within a call. A
  // device-hashed batch that outgrows its chunk moves to a larger one (its
  // records are only reserved until it is launched); any other is launched.
  if (!openChunk_ || openChunk_->capacity - openChunk_->used < n) {
    bool move = openChunk_ && !open_.jobs.empty() && open_.top5.empty();
    if (!move)
      flushBatch();
    int64_t need = (move ? open_.records : 0) + n;
    Chunk *to = withRoom(chunks_, need);
    if (!to) {
      int64_t largest = 0;
      for (const Chunk &k : chunks_)
        largest = std::max(largest, k.capacity);
      to = newRecordChunk(std::max<int64_t>({need, 8192, 2 * largest}));
      if (!to)
        return;
    }
    if (move) {
      auto *hOld = static_cast<greta_gpu_row_record *>(open_.hRecords);
      auto *hNew = static_cast<greta_gpu_row_record *>(to->hRecords) + to->used;
      open_.dRecords =
          static_cast<greta_gpu_row_record *>(to->dRecords) + to->used;
      open_.hRecords = hNew;
      for (Pending &p : open_.pending)
        if (p.hRecords)
          p.hRecords =
              hNew +
              (static_cast<const greta_gpu_row_record *>(p.hRecords) - hOld);
      openChunk_->used -= open_.records;
      to->used += open_.records;
    }
    openChunk_ = to;
  }
  Chunk &c = *openChunk_;
  bool allRows = n == rows;
  // A row's SHA-256 is a chain of compressions: one device thread takes
  // ~2 us per 64 bytes, and a block of such threads holds its multiprocessor
  // for the whole chain (~0.1 ms for a 4 KB row, ~2 ms for a 64 KB logits
  // row). Beside the compute stream that delays every kernel that wants all
  // multiprocessors (cuBLAS's persistent GEMMs): measured +18 % at 827
  // tokens for 3 positions. So a few rows per tensor are gathered on the
  // device (a plain copy), copied to the host and hashed there (OpenSSL, SHA
  // extensions) by the writer thread; every-row traces hash on the device.
  size_t rowBytes = static_cast<size_t>(cols) * rt::dtypeSize(dtype);
  bool hostHash = n <= kHostHashRows &&
                  static_cast<size_t>(n) * rowBytes <= kHostHashBytes;
  bool gather = (payload == rt::Payload::Full || hostHash) && !allRows;
  size_t gatherBytes = gather ? static_cast<size_t>(n) * rowBytes : 0;
  if (gather && (!openGather_ || openGather_->capacity - openGather_->used <
                                     gatherBytes)) {
    // A batch's gathered rows are one contiguous range of one chunk.
    flushBatch();
    openGather_ = mirroredWithRoom(gatherChunks_, gatherBytes, 4u << 20,
                                   "trace staging");
    if (!openGather_)
      return;
  }
  if (open_.jobs.empty() && open_.pending.empty()) {
    open_.dRecords = static_cast<greta_gpu_row_record *>(c.dRecords) + c.used;
    open_.hRecords = static_cast<greta_gpu_row_record *>(c.hRecords) + c.used;
    open_.records = 0;
  }
  uint32_t flags = payload != rt::Payload::Hash ? GRETA_GPU_TRACE_STATS : 0u;
  if (!hostHash)
    open_.jobs.push_back({data, static_cast<int32_t>(gpuDType(dtype)), flags,
                          rows, cols, ld, allRows ? nullptr : dSelRows_, n,
                          open_.records});
  const void *hRec =
      static_cast<greta_gpu_row_record *>(open_.hRecords) + open_.records;
  Pending pend{stage, layer,   payload, dtype,   cols,
               {},    hostHash ? nullptr : hRec, nullptr, nullptr};
  if (stage == rt::Stage::Logits) { // the top-5 ids, ranked on the device
    // Scratch for the split ranking of few rows; without it (allocation
    // failed) each row is ranked by one block: slower, same ids.
    void *scratch = nullptr;
    if (size_t bytes = greta_gpu_top5_scratch_bytes(n, cols)) {
      ScratchChunk *sc = withRoom(top5Scratch_, bytes);
      ScratchChunk fresh{nullptr, std::max<size_t>(bytes, 1u << 20), 0};
      if (!sc && greta_gpu_malloc(&fresh.d, fresh.capacity) == GRETA_GPU_OK) {
        top5Scratch_.push_back(fresh);
        sc = &top5Scratch_.back();
      }
      if (sc) {
        scratch = static_cast<uint8_t *>(sc->d) + sc->used;
        sc->used += (bytes + 255) / 256 * 256;
      }
    }
    open_.top5.push_back({data, dtype, rows, cols, ld,
                          allRows ? nullptr : dSelRows_, n,
                          c.dTop5 + c.used * 5, c.hTop5 + c.used * 5,
                          scratch});
    pend.hTop5 = c.hTop5 + c.used * 5;
  }
  open_.records += n;
  c.used += n;
  // A tensor whose rows are only gathered is read by the gather kernel,
  // which flushBatch queues on the compute stream: it is held until then
  // only, so the allocator reuses it as soon as without tracing (kernels
  // then find their buffers in L2 as they would untraced).
  hold(data, /*untilFlush=*/gather && hostHash && stage != rt::Stage::Logits);
  for (int64_t r : selRows_)
    pend.positions.push_back(positions_[r]);
  // Values (Full payload, host hashing): copied to pinned memory after the
  // hashes; selected rows through the gather staging, all rows directly.
  if (gather) {
    GatherChunk &g = *openGather_;
    if (!open_.gather) {
      open_.gather = &g;
      open_.gatherBegin = open_.gatherEnd = g.used;
    }
    open_.gathers.push_back({data, static_cast<int64_t>(rowBytes),
                             static_cast<int64_t>(ld * rt::dtypeSize(dtype)),
                             dSelRows_, n, static_cast<int64_t>(g.used)});
    pend.hValues = g.h + g.used;
    g.used += gatherBytes;
    open_.gatherEnd = g.used;
  } else if (payload == rt::Payload::Full || hostHash) {
    size_t es = rt::dtypeSize(dtype);
    size_t bytes = static_cast<size_t>(n) * cols * es;
    ValueChunk *v = withRoom(valueChunks_, bytes);
    if (!v) {
      ValueChunk k;
      k.capacity = std::max<size_t>(bytes, 16u << 20);
      void *h = nullptr;
      if (greta_gpu_host_alloc(&h, k.capacity)) {
        setError(std::string("trace values: ") + greta_gpu_last_error());
        return;
      }
      k.h = static_cast<uint8_t *>(h);
      valueChunks_.push_back(k);
      v = &valueChunks_.back();
    }
    uint8_t *dst = v->h + v->used;
    v->used += bytes;
    open_.copies.push_back({dst, static_cast<const uint8_t *>(data),
                            cols * es, ld * es, size_t(rows)});
    pend.hValues = dst;
  }
  open_.pending.push_back(std::move(pend));
  if (stage != rt::Stage::Logits)
    lastTrace_ = LastTrace{
        data, dtype, rows, cols, ld, payload, open_.pending.size() - 1};
}

void GpuSession::flushBatch(bool final) {
  launchDeferredBatch(); // batches are queued in order
  lastTrace_.reset();    // its Pending leaves open_
  if (open_.pending.empty())
    return;
  auto b = std::make_shared<Batch>(std::move(open_));
  open_ = Batch();
  b->dryRun = dryRun_;
  if (!final && !b->gathers.empty() &&
      b->gathers.size() <= GRETA_GPU_MAX_GATHER_JOBS) {
    deferred_ = std::move(b);
    return;
  }
  launchBatch(std::move(b), final, /*gathered=*/false);
}

void GpuSession::flushFinishedLayer() {
  if (deferred_ || open_.pending.empty() || !open_.jobs.empty())
    return;
  // The last tensor traced, repeats aside (residual_pre_attn of the next
  // layer follows residual_post_mlp as a repeat).
  auto last = std::find_if(open_.pending.rbegin(), open_.pending.rend(),
                           [](const Pending &p) { return p.sameAs < 0; });
  if (last != open_.pending.rend() && last->stage == rt::Stage::ResidualPostMlp)
    flushBatch();
}

const std::vector<greta_gpu_gather_job> *
GpuSession::pendingGathers(void **dDst) const {
  if (!deferred_ || !error_.empty())
    return nullptr;
  *dDst = deferred_->gather->d;
  return &deferred_->gathers;
}

void GpuSession::gathersLaunched() {
  if (deferred_)
    launchBatch(std::move(deferred_), /*final=*/false, /*gathered=*/true);
}

void GpuSession::launchBatch(std::shared_ptr<Batch> b, bool final,
                             bool gathered) {
  auto t0 = Clock::now();
  ++profBatches_;
  struct Account {
    double &ms;
    Clock::time_point t0;
    ~Account() { ms += msSince(t0); }
  } account{profFlushMs_, t0};
  // Blocking sync: the writer thread sleeps on a batch's event instead of
  // spinning in the driver beside the thread that launches the kernels.
  auto takeEvent = [&](cudaEvent_t &x) {
    if (!eventPool_.empty()) {
      x = static_cast<cudaEvent_t>(eventPool_.back());
      eventPool_.pop_back();
    } else if (cudaError_t e = cudaEventCreateWithFlags(
                   &x, cudaEventDisableTiming | cudaEventBlockingSync)) {
      setError(cudaMessage("trace event", e));
      return false;
    }
    events_.push_back(x);
    return true;
  };
  cudaEvent_t ready, done, copied = nullptr;
  if (!takeEvent(ready) || !takeEvent(done) ||
      (final && b->gather && !takeEvent(copied)))
    return;
  b->done = done;
  b->copied = copied;
  // GRETA_GPU_TRACE_PROFILE: had the GPU already run the previous batch's
  // producers (the host was behind)?
  if (traceProfile() && !recentReady_.empty() &&
      cudaEventQuery(static_cast<cudaEvent_t>(recentReady_.back())) ==
          cudaSuccess)
    ++profCaughtUp_;
  // endCall wakes the hash pool for the final batch at the third last
  // batch's ready event: before the last layers and the LM head.
  recentReady_.push_back(ready);
  if (recentReady_.size() > 3)
    recentReady_.pop_front();
  // The call's last batch (the logits) runs on the compute stream, which
  // has nothing left to do: no hop between streams at the end of the call.
  auto ts = final ? static_cast<cudaStream_t>(stream_)
                  : static_cast<cudaStream_t>(
                        traceStreams_[nextTraceStream_++ %
                                      traceStreams_.size()]);
  // Selected rows are gathered on the compute stream, into the batch's
  // private staging (by extra blocks of the next rms_norm when `gathered`);
  // their tensors are free after that.
  for (size_t i = 0; !gathered && i < b->gathers.size();
       i += GRETA_GPU_MAX_GATHER_JOBS) {
    int n = static_cast<int>(std::min<size_t>(GRETA_GPU_MAX_GATHER_JOBS,
                                              b->gathers.size() - i));
    if (greta_gpu_gather_rows(&b->gathers[i], n, b->gather->d, stream_) !=
        GRETA_GPU_OK) {
      setError(std::string("trace gather: ") + greta_gpu_last_error());
      return;
    }
  }
  // GRETA_GPU_TRACE_PROFILE: the final batch's gather, copy and top-5.
  auto profMark = [&](int i) {
    if (final && traceProfile())
      cudaEventRecord(static_cast<cudaEvent_t>(profEvents_[i]),
                      static_cast<cudaStream_t>(stream_));
  };
  profMark(3);
  for (void *blk : b->heldUntilFlush)
    unhold(blk);
  b->heldUntilFlush.clear();
  cudaError_t e = cudaEventRecord(ready, static_cast<cudaStream_t>(stream_));
  if (!e && !final)
    e = cudaStreamWaitEvent(ts, ready, 0);
  if (e) {
    setError(cudaMessage("trace stream", e));
    return;
  }
  // The job table goes to the device through pinned memory (one launch
  // hashes every row of the batch: the SHA-256 chains run side by side).
  size_t nJobs = b->jobs.size();
  JobChunk *jc = mirroredWithRoom(jobChunks_, nJobs, 4096, "trace jobs");
  if (!jc)
    return;
  greta_gpu_trace_job *hJobs = jc->h + jc->used, *dJobs = jc->d + jc->used;
  jc->used += nJobs;
  std::copy(b->jobs.begin(), b->jobs.end(), hJobs);
  int64_t maxSel = 0;
  uint32_t flags = 0;
  for (const greta_gpu_trace_job &j : b->jobs) {
    maxSel = std::max(maxSel, j.n_sel);
    flags |= j.flags;
  }
  if (nJobs > 0)
    e = cudaMemcpyAsync(dJobs, hJobs, nJobs * sizeof(greta_gpu_trace_job),
                        cudaMemcpyHostToDevice, ts);
  if (e) {
    setError(cudaMessage("trace jobs", e));
    return;
  }
  if (nJobs > 0 &&
      greta_gpu_trace_batch_device(
          dJobs, static_cast<int>(nJobs), maxSel, flags,
          static_cast<greta_gpu_row_record *>(b->dRecords),
          static_cast<greta_gpu_row_record *>(b->hRecords), b->records,
          ts) != GRETA_GPU_OK) {
    setError(std::string("trace kernel: ") + greta_gpu_last_error());
    return;
  }
  // The gathered rows first: endCall hashes the final batch's on the host
  // while its top-5 runs.
  if (!e && b->gather && b->gatherEnd > b->gatherBegin)
    e = cudaMemcpyAsync(b->gather->h + b->gatherBegin,
                        b->gather->d + b->gatherBegin,
                        b->gatherEnd - b->gatherBegin, cudaMemcpyDeviceToHost,
                        ts);
  if (!e && copied)
    e = cudaEventRecord(copied, ts);
  profMark(4);
  for (const Top5Job &t : b->top5) {
    if (greta_gpu_top5_rows(t.data, gpuDType(t.dtype), t.rows, t.cols, t.ld,
                            t.dRowIndex, t.n, t.dTop5, t.dScratch,
                            ts) != GRETA_GPU_OK) {
      setError(std::string("trace top-5: ") + greta_gpu_last_error());
      return;
    }
  }
  profMark(5);
  for (const ValueCopy &c : b->copies)
    if (!e)
      e = cudaMemcpy2DAsync(c.dst, c.width, c.src, c.srcPitch, c.width, c.rows,
                            cudaMemcpyDeviceToHost, ts);
  if (!e)
    e = cudaEventRecord(done, ts);
  if (e) {
    setError(cudaMessage("trace values copy", e));
    return;
  }
  inflight_.push_back(b);
  if (final) { // written by endCall itself
    finalBatch_ = b;
    return;
  }
  {
    std::lock_guard<std::mutex> lock(writerMutex_);
    writerQueue_.push_back(b);
  }
  writerCv_.notify_all();
}

void GpuSession::writerLoop() {
  for (;;) {
    std::shared_ptr<Batch> b;
    {
      std::unique_lock<std::mutex> lock(writerMutex_);
      writerCv_.wait(lock,
                     [&] { return writerStop_ || !writerQueue_.empty(); });
      if (writerQueue_.empty())
        return;
      b = writerQueue_.front();
      writerQueue_.pop_front();
      ++writerBusy_;
    }
    std::string err;
    bool failed;
    {
      std::lock_guard<std::mutex> lock(writerMutex_);
      failed = !writerError_.empty();
    }
    // A batch whose stream failed has undefined records: it is not written
    // (endCall reports the stream error).
    // A dry run builds the records like a real one (hashes the host rows),
    // only the append is left out.
    // Each written batch goes to the OS here, off the call's critical path:
    // endCall's own write is then only the last batch's.
    if (!failed && cudaEventSynchronize(static_cast<cudaEvent_t>(b->done)) ==
                       cudaSuccess) {
      writeBatch(*b, err);
      if (err.empty() && !b->dryRun)
        writer_->flush(err);
    }
    {
      std::lock_guard<std::mutex> lock(writerMutex_);
      --writerBusy_;
      if (!err.empty() && writerError_.empty())
        writerError_ = err;
    }
    writerCv_.notify_all();
  }
}

// The device's row records are written as block entries without copying.
static_assert(sizeof(greta_gpu_row_record) == sizeof(rt::BlockRow) &&
                  offsetof(greta_gpu_row_record, nz_count) ==
                      offsetof(rt::BlockRow, nzCount) &&
                  offsetof(greta_gpu_row_record, nan_count) ==
                      offsetof(rt::BlockRow, nanCount) &&
                  offsetof(greta_gpu_row_record, min) ==
                      offsetof(rt::BlockRow, min) &&
                  offsetof(greta_gpu_row_record, l2) ==
                      offsetof(rt::BlockRow, l2),
              "greta_gpu_row_record must have rt::BlockRow's layout");

void GpuSession::writeBatch(Batch &b, std::string &err) {
  if (!b.hostHashed)
    hashHostRows(b, hashPool_, kWriterHashThreads);
  appendBatch(b, err);
}

void GpuSession::hashHostRows(Batch &b, std::unique_ptr<HashPool> &pool,
                              unsigned poolThreads,
                              const std::function<bool()> *ready) {
  // Rows hashed on the host (a few selected rows per tensor, see trace()):
  // side by side on the hash pool when there is enough to share.
  std::vector<std::pair<const Pending *, size_t>> hostRows;
  size_t hostBytes = 0;
  for (const Pending &p : b.pending)
    if (!p.hRecords && p.sameAs < 0)
      for (size_t j = 0; j < p.positions.size(); ++j) {
        hostRows.push_back({&p, j});
        hostBytes += p.cols * rt::dtypeSize(p.dtype);
      }
  std::vector<rt::BlockRow> &entries = b.hostEntries;
  entries.resize(hostRows.size());
  // Longest rows first, so that no thread starts a 64 KB logits row (~55 us
  // of SHA-256) after the others have run out of work.
  std::vector<size_t> order(hostRows.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return hostRows[x].first->cols * rt::dtypeSize(hostRows[x].first->dtype) >
           hostRows[y].first->cols * rt::dtypeSize(hostRows[y].first->dtype);
  });
  const bool timeRows = ready && traceProfile();
  if (timeRows)
    profRowTimes_.assign(hostRows.size(), {0, 0});
  std::function<void(size_t)> hashRow = [&](size_t k) {
    int64_t t0 = timeRows ? Clock::now().time_since_epoch().count() : 0;
    size_t i = order[k];
    const auto &[p, j] = hostRows[i];
    size_t rowBytes = p->cols * rt::dtypeSize(p->dtype);
    thread_local rt::Record r;
    rt::fillRowRecord(r, p->hValues + j * rowBytes, p->dtype, p->cols,
                      p->payload != rt::Payload::Hash);
    entries[i] = rt::toBlockRow(r);
    if (timeRows)
      profRowTimes_[k] = {t0, Clock::now().time_since_epoch().count()};
  };
  if (hostRows.size() > 1 && hostBytes >= (128u << 10)) {
    if (!pool)
      pool = std::make_unique<HashPool>(std::min(
          poolThreads,
          std::max(1u, std::thread::hardware_concurrency() / 2)));
    pool->run(hostRows.size(), hashRow, ready);
  } else {
    while (ready && !hostRows.empty() && !(*ready)())
      std::this_thread::yield();
    for (size_t i = 0; i < hostRows.size(); ++i)
      hashRow(i);
  }
}

void GpuSession::appendBatch(Batch &b, std::string &err) {
  const std::vector<rt::BlockRow> &entries = b.hostEntries;
  // One block per traced tensor: its rows' entries are the device records
  // as they came back (rt::BlockRow is their layout) or the host's.
  size_t nextHost = 0;
  std::vector<std::pair<const uint8_t *, int64_t>> rowsOf; // per pending
  rowsOf.reserve(b.pending.size());
  for (const Pending &p : b.pending) {
    int64_t n = static_cast<int64_t>(p.positions.size());
    rt::RecordBlock blk;
    blk.stage = p.stage;
    blk.layer = p.layer;
    blk.dtype = p.dtype;
    blk.payload = p.payload;
    blk.rowShape = {p.cols};
    blk.n = n;
    blk.positions = p.positions.data();
    if (p.sameAs >= 0) {
      std::tie(blk.rows, blk.rowStride) = rowsOf[p.sameAs];
    } else if (p.hRecords) {
      blk.rows = static_cast<const uint8_t *>(p.hRecords);
      blk.rowStride = sizeof(greta_gpu_row_record);
    } else {
      blk.rows = reinterpret_cast<const uint8_t *>(entries.data() + nextHost);
      blk.rowStride = sizeof(rt::BlockRow);
      nextHost += n;
    }
    rowsOf.emplace_back(blk.rows, blk.rowStride);
    blk.topIds = p.hTop5;
    blk.topK = p.hTop5 ? 5 : 0;
    blk.values = p.payload == rt::Payload::Full ? p.hValues : nullptr;
    if (b.dryRun)
      continue;
    if (!writer_->appendBlock(blk, err))
      return;
    records_ += n;
  }
}

bool GpuSession::drainWriter() {
  std::unique_lock<std::mutex> lock(writerMutex_);
  writerCv_.wait(lock,
                 [&] { return writerQueue_.empty() && writerBusy_ == 0; });
  if (!writerError_.empty()) {
    traceFailed_ = true;
    setError(writerError_);
    writerError_.clear();
    return false;
  }
  return true;
}

int GpuSession::opBegin(const char *name) {
  if (!opProfile())
    return -1;
  cudaEvent_t ev[2];
  for (cudaEvent_t &x : ev) {
    if (!opEventPool_.empty()) {
      x = static_cast<cudaEvent_t>(opEventPool_.back());
      opEventPool_.pop_back();
    } else if (cudaEventCreate(&x)) {
      return -1;
    }
  }
  cudaEventRecord(ev[0], static_cast<cudaStream_t>(stream_));
  opTimes_.push_back({name, ev[0], ev[1]});
  return static_cast<int>(opTimes_.size()) - 1;
}

void GpuSession::opEnd(int index) {
  if (index >= 0)
    cudaEventRecord(static_cast<cudaEvent_t>(opTimes_[index].end),
                    static_cast<cudaStream_t>(stream_));
}

void GpuSession::printOpProfile() {
  if (opTimes_.empty())
    return;
  std::map<std::string, std::pair<double, int>> byName;
  double total = 0;
  for (const OpTime &t : opTimes_) {
    float ms = 0;
    cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(t.begin),
                         static_cast<cudaEvent_t>(t.end));
    byName[t.name].first += ms;
    ++byName[t.name].second;
    total += ms;
    opEventPool_.push_back(t.begin);
    opEventPool_.push_back(t.end);
  }
  opTimes_.clear();
  std::vector<std::pair<std::string, std::pair<double, int>>> rows(
      byName.begin(), byName.end());
  std::sort(rows.begin(), rows.end(), [](const auto &a, const auto &b) {
    return a.second.first > b.second.first;
  });
  std::string line = "greta op profile: kernels " + std::to_string(total) +
                     " ms:";
  char buf[128];
  for (const auto &[name, v] : rows) {
    std::snprintf(buf, sizeof buf, " %s %.3f ms (%d, %.1f %%)", name.c_str(),
                  v.first, v.second, 100 * v.first / total);
    line += buf;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

bool GpuSession::endCall() {
  auto endCallStart = Clock::now();
  double enqueueMs = traceProfile() ? msSince(profCallStart_) : 0;
  if (traceProfile())
    cudaEventRecord(static_cast<cudaEvent_t>(profEvents_[1]),
                    static_cast<cudaStream_t>(stream_));
  flushBatch(/*final=*/true);
  if (traceProfile())
    cudaEventRecord(static_cast<cudaEvent_t>(profEvents_[2]),
                    static_cast<cudaStream_t>(stream_));
  auto syncStart = Clock::now();
  // The final batch's rows gathered for the host (the logits at the selected
  // positions) are hashed the moment their copy lands, beside its top-5, by
  // threads woken when the last layer started (waking one after the stream
  // has finished costs ~50 us on a VM; the rows take ~55 us each).
  std::shared_ptr<Batch> fb = std::move(finalBatch_);
  double finalHashMs = 0, hashedAfterLandingMs = 0;
  if (fb && fb->copied) {
    // Fewer batches (only the logits traced): wake them at the final
    // batch's own ready event rather than spin through the whole forward.
    cudaEventSynchronize(static_cast<cudaEvent_t>(
        recentReady_.size() == 3 ? recentReady_.front() : recentReady_.back()));
    auto hashStart = Clock::now();
    // One thread at a time asks the driver (its calls take a lock); the
    // others watch a flag. Against every thread polling: 827 tokens +7.1 ->
    // +4.5 %, 1653 +4.0 -> +3.1 % (12 interleaved rounds, H100).
    std::atomic<int64_t> landedNs{0};
    std::atomic<bool> polling{false};
    std::function<bool()> landed = [&] {
      if (landedNs.load(std::memory_order_acquire))
        return true;
      if (polling.exchange(true, std::memory_order_acquire))
        return false;
      bool done = cudaEventQuery(static_cast<cudaEvent_t>(fb->copied)) !=
                  cudaErrorNotReady;
      if (done) {
        int64_t none = 0;
        landedNs.compare_exchange_strong(
            none, Clock::now().time_since_epoch().count(),
            std::memory_order_release);
      }
      polling.store(false, std::memory_order_release);
      return done;
    };
    hashHostRows(*fb, finalHashPool_, kFinalHashThreads, &landed);
    finalHashMs = msSince(hashStart);
    if (int64_t t = landedNs.load()) {
      hashedAfterLandingMs =
          msSince(Clock::time_point(Clock::duration(t)));
      for (auto &[b, e] : profRowTimes_) { // relative to the landing, us
        b = (b - t) / 1000;
        e = (e - t) / 1000;
      }
    }
  }
  cudaError_t e = cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  double computeWaitMs = msSince(syncStart);
  auto computeDone = Clock::now();
  auto traceSyncStart = Clock::now();
  for (void *t : traceStreams_)
    if (cudaError_t te = cudaStreamSynchronize(static_cast<cudaStream_t>(t));
        te && !e)
      e = te;
  double traceWaitMs = msSince(traceSyncStart);
  printOpProfile();
  float computeGpuMs = 0, finalGpuMs = 0, finalSplitMs[3] = {};
  if (traceProfile()) {
    cudaEventElapsedTime(&finalGpuMs,
                         static_cast<cudaEvent_t>(profEvents_[1]),
                         static_cast<cudaEvent_t>(profEvents_[2]));
    const int from[3] = {1, 3, 4}, to[3] = {3, 4, 5};
    for (int i = 0; fb && i < 3; ++i)
      cudaEventElapsedTime(&finalSplitMs[i],
                           static_cast<cudaEvent_t>(profEvents_[from[i]]),
                           static_cast<cudaEvent_t>(profEvents_[to[i]]));
    (void)cudaGetLastError();
  }
  if (traceProfile())
    cudaEventElapsedTime(&computeGpuMs,
                         static_cast<cudaEvent_t>(profEvents_[0]),
                         static_cast<cudaEvent_t>(profEvents_[1]));
  if (e)
    setError(cudaMessage("kernel error", e));
  else if (greta_gpu_check_device_errors(stream_) != GRETA_GPU_OK)
    setError(std::string("kernel error: ") + greta_gpu_last_error());
  // The records of this call that completed are written even after an
  // error (a stream error leaves them undefined: then the writer skips
  // them).
  reclaimFinishedBatches(/*waitForAll=*/true);
  open_ = Batch();
  // The call's last batch (the logits, run on the compute stream, which is
  // synchronized): its host rows are hashed here, by endCall's pool (those
  // not hashed above). A failed stream leaves its records undefined: then
  // it is not written.
  bool writeFinal = fb && !e && !traceFailed_;
  if (writeFinal && !fb->copied) {
    auto hashStart = Clock::now();
    hashHostRows(*fb, finalHashPool_, kFinalHashThreads);
    finalHashMs = msSince(hashStart);
  }
  // The last batch is hashed: the writer thread appends it and hands it to
  // the OS after the earlier batches, while the caller goes on (its append
  // and file write took 0.04-0.05 ms of a 5 ms forward at 827 tokens).
  // beginCall, setTrace and finishTrace wait for it: the next call reuses
  // the pinned memory its records are in, and the trace file is complete
  // only then.
  if (writeFinal) {
    fb->hostHashed = true;
    {
      std::lock_guard<std::mutex> lock(writerMutex_);
      writerQueue_.push_back(std::move(fb));
    }
    writerCv_.notify_all();
  }
  if (traceProfile())
    std::fprintf(stderr,
                 "greta trace profile: %lld batches; host: enqueue %.3f ms "
                 "(trace() %.3f, batch launches %.3f); compute stream on the "
                 "GPU %.3f ms; end of call waits: compute %.3f ms, trace "
                 "streams %.3f ms; last batch hashed in %.3f ms (if its rows "
                 "were gathered: within the compute wait, from the last "
                 "layer's start; %.3f ms after its rows landed), then handed "
                 "to the writer thread; endCall %.3f ms, "
                 "of which %.3f ms after the compute stream's end; "
                 "GPU had caught up with the host at %lld batch launches; "
                 "final batch on the GPU %.3f ms (gathers %.3f, copy %.3f, "
                 "top-5 %.3f)\n",
                 static_cast<long long>(profBatches_), enqueueMs,
                 profTraceMs_, profFlushMs_, computeGpuMs, computeWaitMs,
                 traceWaitMs, finalHashMs, hashedAfterLandingMs,
                 msSince(endCallStart), msSince(computeDone), profCaughtUp_,
                 finalGpuMs, finalSplitMs[0], finalSplitMs[1],
                 finalSplitMs[2]);
  if (traceProfile() && !profRowTimes_.empty()) {
    std::string rows = "greta trace rows: the last batch's host rows "
                       "hashed (start..end us after they landed):";
    for (size_t k = 0; k < profRowTimes_.size() && k < 8; ++k)
      rows += " " + std::to_string(profRowTimes_[k].first) + ".." +
              std::to_string(profRowTimes_[k].second);
    std::fprintf(stderr, "%s\n", rows.c_str());
    profRowTimes_.clear();
  }
  profBatches_ = 0;
  profCaughtUp_ = 0;
  profTraceMs_ = profFlushMs_ = 0;
  for (Chunk &c : chunks_)
    c.used = 0;
  openChunk_ = nullptr;
  for (ValueChunk &v : valueChunks_)
    v.used = 0;
  for (GatherChunk &g : gatherChunks_)
    g.used = 0;
  openGather_ = nullptr;
  for (JobChunk &j : jobChunks_)
    j.used = 0;
  for (ScratchChunk &c : top5Scratch_)
    c.used = 0;
  // Every batch has finished: its events can serve the next call.
  eventPool_.insert(eventPool_.end(), events_.begin(), events_.end());
  events_.clear();
  recentReady_.clear();
  patchStaging_.clear();
  return error_.empty();
}

//===----------------------------------------------------------------------===//
// The C ABI glue
//===----------------------------------------------------------------------===//

namespace {
template <typename T, int N> using MemRef = ::greta::rt::MemRef<T, N>;

template <typename T, int N> T *ptr(MemRef<T, N> *m) {
  return m->data + m->offset;
}
template <typename T> int64_t ld(MemRef<T, 2> *m) { return m->strides[0]; }
template <typename T, int N> bool unitInner(MemRef<T, N> *m) {
  return m->strides[N - 1] == 1 || m->sizes[N - 1] <= 1;
}

/// The session, or nullptr when there is none or it already failed.
GpuSession *live(const char *fn) {
  GpuSession *s = GpuSession::current();
  if (!s) {
    fprintf(stderr, "greta: %s called without a GPU session\n", fn);
    return nullptr;
  }
  return s->error().empty() ? s : nullptr;
}
/// GRETA_GPU_OP_PROFILE: times the launches made in its lifetime.
struct OpScope {
  GpuSession *s;
  int index;
  OpScope(GpuSession *s, const char *op)
      : s(s), index(s ? s->opBegin(op) : -1) {}
  void end() {
    if (index >= 0)
      s->opEnd(index);
    index = -1;
  }
  ~OpScope() { end(); }
};
bool check(GpuSession *s, const char *op, greta_gpu_status st) {
  if (st == GRETA_GPU_OK)
    return true;
  s->setError(std::string(op) + ": " + greta_gpu_status_name(st) + ": " +
              greta_gpu_last_error());
  return false;
}

template <typename T> struct Kern;
// f16 and bf16 are both 16-bit words in C: distinct tag types pick the
// kernels.
struct F16 { uint16_t bits; };
struct BF16 { uint16_t bits; };
} // namespace
#define GRETA_KERN_CAST(SUF, CT)                                               \
  namespace {                                                                  \
  template <> struct Kern<CT> {                                                \
    static greta_gpu_status embedding(const CT *t, int64_t v, int64_t h,       \
                                      int64_t tl, const int64_t *ids,          \
                                      int64_t r, CT *o, int64_t ol, void *s) { \
      return greta_gpu_embedding_##SUF((const uint16_t *)t, v, h, tl, ids, r,  \
                                       (uint16_t *)o, ol, s);                  \
    }                                                                          \
    static greta_gpu_status rms_norm(const CT *i, int64_t il, const CT *w,     \
                                     int64_t r, int64_t c, float e, CT *o,     \
                                     int64_t ol, void *s) {                    \
      return greta_gpu_rms_norm_##SUF((const uint16_t *)i, il,                 \
                                      (const uint16_t *)w, r, c, e,            \
                                      (uint16_t *)o, ol, s);                   \
    }                                                                          \
    static greta_gpu_status rms_norm_gather(                                   \
        const CT *i, int64_t il, const CT *w, int64_t r, int64_t c, float e,   \
        CT *o, int64_t ol, const greta_gpu_gather_job *g, int ng, void *gd,    \
        void *s) {                                                             \
      return greta_gpu_rms_norm_gather_##SUF((const uint16_t *)i, il,          \
                                             (const uint16_t *)w, r, c, e,     \
                                             (uint16_t *)o, ol, g, ng, gd, s); \
    }                                                                          \
    static greta_gpu_status linear(const CT *i, int64_t il, const CT *w,       \
                                   int64_t wl, int64_t r, int64_t in,          \
                                   int64_t out, CT *o, int64_t ol, void *s) {  \
      return greta_gpu_linear_##SUF((const uint16_t *)i, il,                   \
                                    (const uint16_t *)w, wl, r, in, out,       \
                                    (uint16_t *)o, ol, s);                     \
    }                                                                          \
    static greta_gpu_status rope(const CT *i, int64_t il, const int64_t *p,    \
                                 int64_t r, int64_t nh, int64_t hd, float th,  \
                                 CT *o, int64_t ol, void *s) {                 \
      return greta_gpu_rope_##SUF((const uint16_t *)i, il, p, r, nh, hd, th,   \
                                  (uint16_t *)o, ol, s);                       \
    }                                                                          \
    static greta_gpu_status kv_append(const CT *k, int64_t kl, const CT *v,    \
                                      int64_t vl, const int64_t *p, int64_t r, \
                                      int64_t kd, int64_t cap, CT *kc,         \
                                      CT *vc, int64_t cl, void *s) {           \
      return greta_gpu_kv_append_##SUF((const uint16_t *)k, kl,                \
                                       (const uint16_t *)v, vl, p, r, kd,      \
                                       cap, (uint16_t *)kc, (uint16_t *)vc,    \
                                       cl, s);                                 \
    }                                                                          \
    static greta_gpu_status attention(const CT *q, int64_t ql, const CT *kc,   \
                                      const CT *vc, int64_t kl, int64_t nq,    \
                                      int64_t qs, int64_t nh, int64_t nkv,     \
                                      int64_t hd, float sc, CT *o, int64_t ol, \
                                      void *s) {                               \
      return greta_gpu_attention_##SUF((const uint16_t *)q, ql,                \
                                       (const uint16_t *)kc,                   \
                                       (const uint16_t *)vc, kl, nq, qs, nh,   \
                                       nkv, hd, sc, (uint16_t *)o, ol, s);     \
    }                                                                          \
    static greta_gpu_status swiglu(const CT *g, int64_t gl, const CT *u,       \
                                   int64_t ul, int64_t r, int64_t c, CT *o,    \
                                   int64_t ol, void *s) {                      \
      return greta_gpu_swiglu_##SUF((const uint16_t *)g, gl,                   \
                                    (const uint16_t *)u, ul, r, c,             \
                                    (uint16_t *)o, ol, s);                     \
    }                                                                          \
    static greta_gpu_status add(const CT *a, int64_t al, const CT *b,          \
                                int64_t bl, int64_t r, int64_t c, CT *o,       \
                                int64_t ol, void *s) {                         \
      return greta_gpu_add_##SUF((const uint16_t *)a, al,                      \
                                 (const uint16_t *)b, bl, r, c,                \
                                 (uint16_t *)o, ol, s);                        \
    }                                                                          \
  };                                                                           \
  }
GRETA_KERN_CAST(f16, F16)
GRETA_KERN_CAST(bf16, BF16)
namespace {
template <> struct Kern<float> {
  static constexpr auto embedding = greta_gpu_embedding_f32;
  static constexpr auto rms_norm = greta_gpu_rms_norm_f32;
  static constexpr auto rms_norm_gather = greta_gpu_rms_norm_gather_f32;
  static constexpr auto linear = greta_gpu_linear_f32;
  static constexpr auto rope = greta_gpu_rope_f32;
  static constexpr auto kv_append = greta_gpu_kv_append_f32;
  static constexpr auto attention = greta_gpu_attention_f32;
  static constexpr auto swiglu = greta_gpu_swiglu_f32;
  static constexpr auto add = greta_gpu_add_f32;
};
template <typename T> constexpr rt::DType dtypeOf();
template <> constexpr rt::DType dtypeOf<F16>() { return rt::DType::F16; }
template <> constexpr rt::DType dtypeOf<BF16>() { return rt::DType::BF16; }
template <> constexpr rt::DType dtypeOf<float>() { return rt::DType::F32; }

template <typename T>
bool rowMajor(GpuSession *s, const char *op,
              std::initializer_list<MemRef<T, 2> *> ms) {
  for (MemRef<T, 2> *m : ms)
    if (!unitInner(m)) {
      s->setError(std::string(op) + ": the innermost stride must be 1");
      return false;
    }
  return true;
}

template <typename T>
void embedding(MemRef<T, 2> *table, MemRef<int64_t, 1> *ids,
               MemRef<T, 2> *out) {
  GpuSession *s = live("embedding");
  if (!s || !rowMajor(s, "embedding", {table, out}))
    return;
  OpScope scope(s, "embedding");
  check(s, "embedding",
        Kern<T>::embedding(ptr(table), table->sizes[0], table->sizes[1],
                           ld(table), ptr(ids), ids->sizes[0], ptr(out),
                           ld(out), s->stream()));
}
template <typename T>
void rmsNorm(MemRef<T, 2> *in, MemRef<T, 1> *w, double eps,
             MemRef<T, 2> *out) {
  GpuSession *s = live("rms_norm");
  if (!s || !rowMajor(s, "rms_norm", {in, out}))
    return;
  OpScope scope(s, "rms_norm");
  s->flushFinishedLayer();
  void *gatherDst = nullptr;
  if (const auto *g = s->pendingGathers(&gatherDst)) {
    if (check(s, "rms_norm",
              Kern<T>::rms_norm_gather(
                  ptr(in), ld(in), ptr(w), in->sizes[0], in->sizes[1],
                  static_cast<float>(eps), ptr(out), ld(out), g->data(),
                  static_cast<int>(g->size()), gatherDst, s->stream())))
      s->gathersLaunched();
    return;
  }
  check(s, "rms_norm",
        Kern<T>::rms_norm(ptr(in), ld(in), ptr(w), in->sizes[0], in->sizes[1],
                          static_cast<float>(eps), ptr(out), ld(out),
                          s->stream()));
}
template <typename T>
void linear(MemRef<T, 2> *in, MemRef<T, 2> *w, MemRef<T, 2> *out) {
  GpuSession *s = live("linear");
  if (!s || !rowMajor(s, "linear", {in, w, out}))
    return;
  OpScope scope(s, "linear");
  check(s, "linear",
        Kern<T>::linear(ptr(in), ld(in), ptr(w), ld(w), in->sizes[0],
                        in->sizes[1], w->sizes[0], ptr(out), ld(out),
                        s->stream()));
}
template <typename T>
void rope(MemRef<T, 2> *in, MemRef<int64_t, 1> *pos, double theta,
          int64_t headDim, MemRef<T, 2> *out) {
  GpuSession *s = live("rope");
  if (!s || !rowMajor(s, "rope", {in, out}))
    return;
  if (headDim <= 0 || in->sizes[1] % headDim) {
    s->setError("rope: row of " + std::to_string(in->sizes[1]) +
                " values is not a multiple of head_dim " +
                std::to_string(headDim));
    return;
  }
  OpScope scope(s, "rope");
  check(s, "rope",
        Kern<T>::rope(ptr(in), ld(in), ptr(pos), in->sizes[0],
                      in->sizes[1] / headDim, headDim,
                      static_cast<float>(theta), ptr(out), ld(out),
                      s->stream()));
}
template <typename T>
void attention(MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,
               MemRef<int64_t, 1> *pos, int64_t numHeads, int64_t numKvHeads,
               int64_t headDim, double scale, int64_t slot,
               MemRef<T, 2> *out) {
  GpuSession *s = live("attention");
  if (!s || !rowMajor(s, "attention", {q, k, v, out}))
    return;
  int64_t rows = q->sizes[0], kvDim = k->sizes[1];
  if (rows != static_cast<int64_t>(s->positions().size()) || rows == 0) {
    s->setError("attention: " + std::to_string(rows) +
                " query rows but the call has " +
                std::to_string(s->positions().size()) + " positions");
    return;
  }
  GpuSession::KVSlot *kv = s->kvSlot(slot, kvDim);
  if (!kv)
    return;
  OpScope kvScope(s, "kv_append");
  if (!check(s, "kv_append",
             Kern<T>::kv_append(ptr(k), ld(k), ptr(v), ld(v), ptr(pos), rows, kvDim,
                                s->capacity(), static_cast<T *>(kv->k),
                                static_cast<T *>(kv->v), kvDim, s->stream())))
    return;
  kvScope.end();
  OpScope scope(s, "attention");
  check(s, "attention",
        Kern<T>::attention(ptr(q), ld(q), static_cast<const T *>(kv->k),
                           static_cast<const T *>(kv->v), kvDim, rows,
                           s->positions().front(), numHeads, numKvHeads,
                           headDim, static_cast<float>(scale), ptr(out),
                           ld(out), s->stream()));
}
template <typename T>
void swiglu(MemRef<T, 2> *g, MemRef<T, 2> *u, MemRef<T, 2> *out) {
  GpuSession *s = live("swiglu");
  if (!s || !rowMajor(s, "swiglu", {g, u, out}))
    return;
  OpScope scope(s, "swiglu");
  check(s, "swiglu",
        Kern<T>::swiglu(ptr(g), ld(g), ptr(u), ld(u), g->sizes[0], g->sizes[1],
                        ptr(out), ld(out), s->stream()));
}
template <typename T>
void add(MemRef<T, 2> *a, MemRef<T, 2> *b, MemRef<T, 2> *out) {
  GpuSession *s = live("add");
  if (!s || !rowMajor(s, "add", {a, b, out}))
    return;
  OpScope scope(s, "add");
  check(s, "add",
        Kern<T>::add(ptr(a), ld(a), ptr(b), ld(b), a->sizes[0], a->sizes[1],
                     ptr(out), ld(out), s->stream()));
}
template <typename T, int N>
void param(MemRef<T, N> *result, const char *name) {
  *result = MemRef<T, N>{};
  GpuSession *s = live("param");
  if (!s)
    return;
  const int64_t *shape = nullptr;
  const void *p = s->param(name, N, &shape);
  if (!p) {
    s->setError(std::string("unknown parameter '") + (name ? name : "") +
                "' of rank " + std::to_string(N));
    return;
  }
  T *data = static_cast<T *>(const_cast<void *>(p));
  result->basePtr = result->data = data;
  result->offset = 0;
  int64_t stride = 1;
  for (int i = N - 1; i >= 0; --i) {
    result->sizes[i] = shape[i];
    result->strides[i] = stride;
    stride *= shape[i];
  }
}
template <typename T>
void trace(MemRef<T, 2> *value, int64_t recordId, int64_t payload,
           bool repeat) {
  GpuSession *s = live("trace");
  if (!s)
    return;
  if (!unitInner(value)) {
    s->setError("trace: the innermost stride must be 1");
    return;
  }
  // A patched buffer is no longer the previous trace's bytes.
  if (s->applyPatch(recordId, dtypeOf<T>(), ptr(value), value->sizes[0],
                    value->sizes[1], value->strides[0]) > 0)
    repeat = false;
  s->trace(recordId, payload, dtypeOf<T>(), ptr(value), value->sizes[0],
           value->sizes[1], value->strides[0], repeat);
}
void unsupported(const char *what) {
  if (GpuSession *s = live(what))
    s->setError(std::string(what) +
                " has no GPU kernel (fault injection and f16 emulation are "
                "CPU features)");
}
} // namespace

#define GRETA_GPU_GLUE(T, SUF)                                                 \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_embedding_##SUF(                 \
      MemRef<T, 2> *t, MemRef<int64_t, 1> *ids, MemRef<T, 2> *o) {             \
    embedding(t, ids, o);                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_rms_norm_##SUF(                  \
      MemRef<T, 2> *i, MemRef<T, 1> *w, double eps, MemRef<T, 2> *o) {         \
    rmsNorm(i, w, eps, o);                                                     \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_linear_##SUF(                    \
      MemRef<T, 2> *i, MemRef<T, 2> *w, MemRef<T, 2> *o) {                     \
    linear(i, w, o);                                                           \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_rope_##SUF(                      \
      MemRef<T, 2> *i, MemRef<int64_t, 1> *p, double theta, int64_t hd,        \
      MemRef<T, 2> *o) {                                                       \
    rope(i, p, theta, hd, o);                                                  \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_attention_##SUF(                 \
      MemRef<T, 2> *q, MemRef<T, 2> *k, MemRef<T, 2> *v,                       \
      MemRef<int64_t, 1> *p, int64_t nh, int64_t nkv, int64_t hd,              \
      double scale, int64_t slot, MemRef<T, 2> *o) {                           \
    attention(q, k, v, p, nh, nkv, hd, scale, slot, o);                        \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_swiglu_##SUF(                    \
      MemRef<T, 2> *g, MemRef<T, 2> *u, MemRef<T, 2> *o) {                     \
    swiglu(g, u, o);                                                           \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_add_##SUF(                       \
      MemRef<T, 2> *a, MemRef<T, 2> *b, MemRef<T, 2> *o) {                     \
    add(a, b, o);                                                              \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_round_##SUF(                     \
      MemRef<T, 2> *, int64_t, MemRef<T, 2> *) {                               \
    unsupported("round");                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_inject_fault_##SUF(              \
      MemRef<T, 2> *, MemRef<int64_t, 1> *, int64_t, int64_t, double,          \
      MemRef<T, 2> *) {                                                        \
    unsupported("inject_fault");                                               \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_param_r1_##SUF(                  \
      MemRef<T, 1> *r, const char *name) {                                     \
    param<T, 1>(r, name);                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_param_r2_##SUF(                  \
      MemRef<T, 2> *r, const char *name) {                                     \
    param<T, 2>(r, name);                                                      \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_trace_##SUF(                     \
      MemRef<T, 2> *v, int64_t recordId, int64_t payload) {                    \
    trace(v, recordId, payload, /*repeat=*/false);                             \
  }                                                                            \
  GRETA_RT_EXPORT void _mlir_ciface_greta_gpu_trace_repeat_##SUF(              \
      MemRef<T, 2> *v, int64_t recordId, int64_t payload) {                    \
    trace(v, recordId, payload, /*repeat=*/true);                              \
  }

GRETA_GPU_GLUE(F16, f16)
GRETA_GPU_GLUE(BF16, bf16)
GRETA_GPU_GLUE(float, f32)

// The device allocator the lowered program calls for every memref.alloc /
// memref.dealloc (greta-gpu-device-allocator). A failure is recorded in the
// session; the null buffer is never dereferenced (the glue skips every later
// call).
GRETA_RT_EXPORT void *greta_gpu_rt_alloc(int64_t bytes) {
  GpuSession *s = GpuSession::current();
  if (!s) {
    fprintf(stderr, "greta: device allocation without a GPU session\n");
    return nullptr;
  }
  return s->alloc(static_cast<size_t>(bytes));
}
GRETA_RT_EXPORT void *greta_gpu_rt_aligned_alloc(int64_t /*alignment*/,
                                                 int64_t bytes) {
  // cudaMalloc returns 256-byte aligned memory.
  return greta_gpu_rt_alloc(bytes);
}
GRETA_RT_EXPORT void greta_gpu_rt_free(void *ptr) {
  if (GpuSession *s = GpuSession::current())
    s->release(ptr);
}

//===- GpuTrace.cpp - The GPU session's trace -------------------*- C++ -*-===//
//
// Batches of traced tensors, hashed on the device (every row) or gathered
// and hashed on the host by the writer thread (a few rows), the records
// copied back and appended to the trace in order, and the end of a call
// that waits for the last batch. See GpuSession.h.
//
//===----------------------------------------------------------------------===//
#include "greta/gpu/GpuSession.h"
#include "GpuInternal.h"

#include "greta/gpu/Kernels.h"
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

bool GpuSession::finishTrace() { return drainWriter() && error_.empty(); }

void GpuSession::setTrace(rt::TraceWriter *writer, rt::Filter filter,
                          int64_t tokenCount, bool dryRun) {
  drainWriter(); // the writer thread reads writer_ and the batches' chunks
  writer_ = writer;
  front_.setFilter(std::move(filter), tokenCount);
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
  std::string err;
  std::optional<rt::TraceFront::Call> call =
      front_.admit(recordId, compiledPayload, rows, err);
  if (!call) {
    if (!err.empty())
      setError(err);
    return;
  }
  const std::vector<int64_t> &selRows = front_.selectedRows();
  int64_t n = static_cast<int64_t>(selRows.size());
  if (n == 0)
    return;
  rt::Stage stage = call->stage;
  int64_t layer = call->layer;
  rt::Payload payload = call->payload;
  rt::TraceFront::Tensor tensor{data, dtype, rows, cols, ld, payload};
  // The previous call's bytes under another stage tag (residual_post_mlp of
  // L is residual_pre_attn of L+1): the same records, ~10 % of an every-row
  // trace's SHA-256. It joins its source's batch, before any flush below.
  if (rt::TraceFront::repeats(
          repeat, stage,
          previous ? std::optional(previous->tensor) : std::nullopt, tensor) &&
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
  // An expert selection row is [k ids, k weights]: its ids go in the
  // record's top ids, as on the CPU (Session::trace), so its rows (2k values
  // each, a few bytes) always come to the host, hashed there.
  bool isSelection = stage == rt::Stage::ExpertSelection && cols % 2 == 0;
  if (isSelection && cols / 2 > 64) { // the format's limit of top ids a record
    setError("trace: expert_selection of " + std::to_string(cols / 2) +
             " experts a token exceeds the 64 top ids a record holds");
    return;
  }
  bool hostHash = isSelection ||
                  (n <= kHostHashRows &&
                   static_cast<size_t>(n) * rowBytes <= kHostHashBytes);
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
  for (int64_t r : selRows)
    pend.positions.push_back(front_.positions()[r]);
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
    lastTrace_ = LastTrace{tensor, open_.pending.size() - 1};
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

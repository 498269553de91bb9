//===- GpuSession.h - The state a GPU run shares with its glue --*- C++ -*-===//
//
// A program lowered by greta-lower-to-gpu calls the glue layer
// (_mlir_ciface_greta_gpu_<op>_<dt>, GpuEntryPoints.cpp) with descriptors of
// device buffers and no context argument: the glue reaches the current
// GpuSession, one per process at a time. The session holds the parameters
// on the device in the storage dtype (uploaded once), the KV cache, the
// token ids and positions of the current call (on the device), a caching
// device allocator for the program's buffers, and the trace.
//
// Tracing never waits for the device. A traced tensor is queued as a job of
// the open batch and its buffer is held (a free() of it is deferred; the
// GPU pipeline gives every kernel a buffer of its own, so nothing else
// writes it). A batch is launched at the end of its layer (a few rows per
// tensor, hashed on the host), before the logits (every row, hashed on the
// device after the forward), when it holds too much memory, or when the
// call ends: one greta_gpu_trace_batch_device (job table in
// device memory) plus the logits' top-5 on a low-priority side stream that
// waits, through an event, for the compute stream to reach that point. Its
// records are copied to pinned memory on the side stream, and a writer
// thread turns each finished batch into trace records while the compute
// stream runs on. Held buffers return to the allocator when their batch has
// finished.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_GPU_GPUSESSION_H
#define GRETA_GPU_GPUSESSION_H

#include "greta/gpu/Kernels.h"
#include "greta/rt/BlockTable.h"
#include "greta/rt/Filter.h"
#include "greta/rt/Session.h"
#include "greta/rt/Trace.h"
#include "greta/rt/TraceFront.h"
#include "greta/rt/Weights.h"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace greta::gpu {

class HashPool;

class GpuSession {
public:
  /// Initializes `device`, validates and converts every parameter (through
  /// rt::Session, f32), stores each in `storage` (F16, BF16 or F32) on the
  /// device. `capacity`: KV cache positions (>= the prompt's length).
  /// Errors: no GPU, out of device memory (asked/free), bad weights.
  static std::unique_ptr<GpuSession>
  create(int device, const rt::SafeTensors &weights,
         const std::vector<rt::ParamSpec> &params, rt::DType storage,
         int64_t capacity, std::string &error);
  ~GpuSession();

  static void setCurrent(GpuSession *s);
  static GpuSession *current();

  /// One line: device name, memory, SMs.
  const std::string &deviceDescription() const { return desc_; }
  rt::DType storage() const { return storage_; }

  /// Starts tracing into `writer` (null: tracing off). With `dryRun` the
  /// records are computed, copied and built, but not appended (benchmark
  /// repetitions that must cost what a traced run costs).
  void setTrace(rt::TraceWriter *writer, rt::Filter filter, int64_t tokenCount,
                bool dryRun = false);
  /// greta-bisect --confirm: the rows of `recordId` at the given positions
  /// are replaced by these values (converted to the storage type) before
  /// the program reads them.
  void setPatch(int64_t recordId, std::map<int64_t, std::vector<double>> rows);
  int64_t rowsPatched() const { return front_.rowsPatched(); }
  /// Uploads this call's token ids and positions (device copies returned
  /// through dTokens()/dPositions()), selects the rows to trace.
  bool beginCall(const int64_t *tokens, const int64_t *positions, int64_t n);
  const int64_t *dTokens() const { return dTokens_; }
  const int64_t *dPositions() const { return dPositions_; }
  const std::vector<int64_t> &positions() const { return front_.positions(); }
  /// Launches the last trace batch, synchronizes once, checks the device
  /// error word and hands the call's last batch to the writer thread, which
  /// writes it after the earlier ones (also after an error: what was
  /// computed is kept). The next beginCall or setTrace waits for it.
  bool endCall();
  /// Waits for the writer thread to have written every record of the calls
  /// so far; false (and error()) if a write failed. Call it before using
  /// the trace writer (finish, recordsWritten).
  bool finishTrace();
  /// Copies `rows` x `cols` of the device buffer (row stride `ld`) to host.
  bool copyToHost(void *host, const void *device, int64_t rows, int64_t cols,
                  int64_t ld, size_t elementSize);

  // --- called by the glue ---------------------------------------------------
  void *stream() const { return stream_; }
  const void *param(const char *name, int64_t rank,
                    const int64_t **shape) const;
  struct KVSlot {
    void *k = nullptr, *v = nullptr;
    int64_t kvDim = 0;
  };
  KVSlot *kvSlot(int64_t slot, int64_t kvDim);
  int64_t capacity() const { return capacity_; }

  // --- the paged KV cache (GpuPaged.cpp) --------------------------------------
  /// 0: the contiguous cache of kvSlot (single-shot prefill, as before);
  /// N > 0: the paged cache, N positions a page (a run of several calls).
  void setPaging(int64_t blockSize) { blockSize_ = blockSize; }
  int64_t blockSize() const { return blockSize_; }
  /// A new run: every slot's pages return to its free list (kept
  /// allocated, not cleared).
  void resetCache();
  struct PagedSlot {
    void *k = nullptr, *v = nullptr; // pools [pages * blockSize, kvDim]
    int64_t kvDim = 0;
    rt::BlockTable table;
    int32_t *dTable = nullptr, *hTable = nullptr; // device, pinned twin
    int64_t uploaded = 0; // entries of dTable written this run
  };
  /// Slot `slot`'s pages grown to cover positions [0, end), new table
  /// entries copied on the stream; its pools are allocated (zeroed) on
  /// first use for capacity() positions. Null with the session's error.
  PagedSlot *pagedSlot(int64_t slot, int64_t kvDim, int64_t end);
  /// --trace-cache-reads: the k_cache_read / v_cache_read records of the
  /// paged cache (rows [0, p] of each selected query at p, one record of
  /// shape [p + 1, kv_dim], read back through the block table after this
  /// call's append), as the CPU's. Debugging: a synchronous copy per row.
  void setTraceCacheReads(bool on) { traceCacheReads_ = on; }
  void traceCacheReads(int64_t layer, const PagedSlot &kv);
  /// Whether this call's trace records `stage` of `layer` (a trace is on,
  /// the filter selects it and a row of the call is selected).
  bool traces(rt::Stage stage, int64_t layer) const {
    return writer_ && !traceFailed_ && front_.filter().selects(stage, layer) &&
           !front_.selectedRows().empty();
  }
  void *alloc(size_t bytes);
  void release(void *ptr);
  /// `repeat`: the compiler knows `data` is the previous trace call's
  /// buffer, unwritten since (greta_gpu_trace_repeat_*): when that call's
  /// records are in the open batch with the same shape and payload, they are
  /// written again under this stage and layer instead of hashed again.
  void trace(int64_t recordId, int64_t compiledPayload, rt::DType dtype,
             const void *data, int64_t rows, int64_t cols, int64_t ld,
             bool repeat = false);
  /// Returns the number of rows patched.
  int64_t applyPatch(int64_t recordId, rt::DType dtype, void *data,
                     int64_t rows, int64_t cols, int64_t ld);
  /// The gather jobs of a flushed trace batch that wait to ride in the next
  /// rms_norm launch (greta_gpu_rms_norm_gather_*), or null. A launch of
  /// their own cost the compute stream ~7 us per layer (3 positions at 827
  /// tokens: 0.15 ms of 4.5). The caller then calls gathersLaunched().
  const std::vector<greta_gpu_gather_job> *pendingGathers(void **dDst) const;
  /// Called before an rms_norm launch: a host-hashed batch that holds a
  /// layer's last stage (residual_post_mlp) is complete, so it is flushed
  /// now and its gathers ride in this launch. For the last layer that is
  /// the final norm: the writer thread hashes its rows during the LM head,
  /// and endCall's pool has only the logits rows left (with the last
  /// layer's rows beside them, hyperthreads shared the cores).
  void flushFinishedLayer();
  void gathersLaunched();

  /// GRETA_GPU_OP_PROFILE=1: GPU time of the launches between opBegin and
  /// opEnd, summed per name and printed at endCall (-1: profiling is off).
  int opBegin(const char *name);
  void opEnd(int index);

  void setError(std::string message);
  const std::string &error() const { return error_; }
  uint64_t recordsWritten() const { return records_; }

private:
  GpuSession() = default;
  struct Batch;
  /// Ends the open batch. A batch whose rows are gathered for the host
  /// waits (deferred_) for the next rms_norm launch to carry its gathers;
  /// any other flush, an allocation under memory pressure and endCall
  /// launch them on their own first.
  void flushBatch(bool final = false);
  /// Queues a flushed batch: its gathers (unless `gathered`), its hashing
  /// and copies on a trace stream, then hands it to the writer.
  void launchBatch(std::shared_ptr<Batch> b, bool final, bool gathered);
  void launchDeferredBatch() {
    if (deferred_)
      launchBatch(std::move(deferred_), /*final=*/false, /*gathered=*/false);
  }
  void reclaimFinishedBatches(bool waitForAll);
  /// Keeps a traced buffer from reuse until its batch has run, or only
  /// until the batch is flushed (`untilFlush`: read on the compute stream).
  void hold(const void *data, bool untilFlush);
  void unhold(void *block);
  void writerLoop();
  void writeBatch(Batch &b, std::string &err);
  /// Hashes the batch's host-gathered rows into b.hostEntries (on `pool`,
  /// of up to `poolThreads` threads and half the host's cores, when there is
  /// enough to share); appendBatch then writes the blocks. With `ready`,
  /// the pool's threads poll it before hashing (the rows are still being
  /// copied).
  void hashHostRows(Batch &b, std::unique_ptr<HashPool> &pool,
                    unsigned poolThreads,
                    const std::function<bool()> *ready = nullptr);
  // The writer hashes a layer's rows while the next layer computes; the end
  // of the call waits for its batch (the last layer's rows and the logits'
  // 64 KB rows, ~55 us each): more threads there.
  static constexpr unsigned kWriterHashThreads = 3, kFinalHashThreads = 7;
  void appendBatch(Batch &b, std::string &err);
  std::unique_ptr<HashPool> hashPool_; // the writer thread's
  std::unique_ptr<HashPool> finalHashPool_; // endCall's, beside the writer
  bool drainWriter();

  std::string desc_;
  rt::DType storage_ = rt::DType::F16;
  void *stream_ = nullptr;
  std::map<std::string, void *> params_;
  std::map<std::string, std::vector<int64_t>> paramShapes_;
  std::map<int64_t, KVSlot> kv_;
  int64_t capacity_ = 0;
  int64_t blockSize_ = 0;
  std::map<int64_t, PagedSlot> paged_;
  bool traceCacheReads_ = false;
  // The host rows of this call's cache reads (their Pending's hValues),
  // kept until the writer has written them (cleared at the next beginCall).
  std::deque<std::vector<uint8_t>> cacheReadValues_;
  // Caching allocator: the program allocates the same sizes every call;
  // cudaFree would synchronize the device.
  std::multimap<size_t, void *> freeBlocks_;
  std::map<void *, size_t> liveBlocks_;
  // Blocks a trace job still has to read: count of jobs per block, and the
  // held blocks the program has already freed (they return to freeBlocks_
  // when their last job's batch has finished).
  std::map<void *, int> held_;
  std::set<void *> freedWhileHeld_;
  size_t heldBytes_ = 0;
  size_t heldLimit_ = size_t(1) << 30; // set from the device's memory
  // Per call.
  int64_t *dTokens_ = nullptr, *dPositions_ = nullptr, *dSelRows_ = nullptr;
  int64_t *hStaging_ = nullptr; // pinned: tokens, positions, selected rows
  int64_t callCapacity_ = 0;
  // Trace.
  rt::TraceWriter *writer_ = nullptr;
  bool dryRun_ = false;
  rt::TraceFront front_; // filter, positions, payload, repeats, patch
  struct Chunk {
    void *dRecords = nullptr, *hRecords = nullptr; // greta_gpu_row_record
    // 5 ids per record slot, in mapped pinned memory: the top-5 kernel
    // writes them to the host itself (dTop5 is hTop5's device address).
    int32_t *dTop5 = nullptr, *hTop5 = nullptr;
    int64_t capacity = 0, used = 0;
  };
  std::deque<Chunk> chunks_; // deque: a new chunk moves no other
  Chunk *openChunk_ = nullptr;
  /// Appends a chunk of `capacity` records; nullptr (and the session's
  /// error) when allocation fails.
  Chunk *newRecordChunk(int64_t capacity);
  struct ValueChunk {
    uint8_t *h = nullptr;
    size_t capacity = 0, used = 0;
  };
  std::deque<ValueChunk> valueChunks_;
  /// Device memory with a pinned host twin of the same size; `used`
  /// elements are taken, from the start again each call.
  template <typename T> struct MirroredChunk {
    T *d = nullptr, *h = nullptr;
    size_t capacity = 0, used = 0;
  };
  /// A chunk with room for `need` more elements, or a new one of at least
  /// `minCapacity`; nullptr (and the session's error) when allocation fails.
  template <typename T>
  MirroredChunk<T> *mirroredWithRoom(std::deque<MirroredChunk<T>> &chunks,
                                     size_t need, size_t minCapacity,
                                     const char *what);
  // Device scratch of the top-5 kernel (few logits rows are split over many
  // blocks), taken from the start again each call.
  struct ScratchChunk {
    void *d = nullptr;
    size_t capacity = 0, used = 0;
  };
  std::deque<ScratchChunk> top5Scratch_;
  // The batches' job tables: pinned staging, copied to the device.
  using JobChunk = MirroredChunk<greta_gpu_trace_job>;
  std::deque<JobChunk> jobChunks_;
  // Selected rows of one tensor gathered on the device and copied to the
  // host in one piece per batch (host hashing, Full payload of some rows).
  using GatherChunk = MirroredChunk<uint8_t>;
  std::deque<GatherChunk> gatherChunks_;
  GatherChunk *openGather_ = nullptr;
  // A tensor with at most kHostHashRows selected rows of at most
  // kHostHashBytes in all is hashed on the host (see trace()).
  static constexpr int64_t kHostHashRows = 64;
  static constexpr size_t kHostHashBytes = 1 << 20;
  struct Pending {
    rt::Stage stage;
    int64_t layer;
    rt::Payload payload;
    rt::DType dtype;
    int64_t cols;
    std::vector<int64_t> positions;
    const void *hRecords;    // pinned, n records; null: hashed on the host
    const uint8_t *hValues;  // pinned rows (Full payload, host hash) or null
    const int32_t *hTop5;    // pinned, 5 ids per record (logits), or null
    // A repeat of the batch's pending[sameAs] (the same buffer under a
    // second stage tag): its records, not hashed again; -1 otherwise.
    int64_t sameAs = -1;
    // The record's row shape when it is not {cols} (a cache read's
    // {p + 1, kv_dim}).
    std::vector<int64_t> rowShape = {};
  };
  // The previous trace call's tensor while its Pending is in open_ (a
  // repeat of it may reuse its records); cleared by every other trace call
  // and by every flush.
  struct LastTrace {
    rt::TraceFront::Tensor tensor;
    size_t pending; // index in open_.pending
  };
  std::optional<LastTrace> lastTrace_;
  struct Top5Job {
    const void *data;
    rt::DType dtype;
    int64_t rows, cols, ld;
    const int64_t *dRowIndex;
    int64_t n;
    int32_t *dTop5, *hTop5;
    void *dScratch; // greta_gpu_top5_scratch_bytes, or null
  };
  struct ValueCopy {
    uint8_t *dst;
    const uint8_t *src;
    size_t width, srcPitch, rows;
  };
  struct Batch {
    std::vector<greta_gpu_trace_job> jobs;
    std::vector<Pending> pending;
    std::vector<ValueCopy> copies;
    std::vector<greta_gpu_gather_job> gathers; // into gather->d
    GatherChunk *gather = nullptr;
    size_t gatherBegin = 0, gatherEnd = 0; // bytes of gather to copy
    std::vector<Top5Job> top5;
    bool hostHashed = false; // hostEntries already filled (endCall's pool)
    std::vector<void *> blocks; // held for this batch's jobs
    std::vector<void *> heldUntilFlush; // read by the gather only
    void *dRecords = nullptr, *hRecords = nullptr;
    int64_t records = 0;
    void *done = nullptr; // event on the trace stream
    void *copied = nullptr; // final batch: its gathered rows are on the host
    bool dryRun = false;
    std::vector<rt::BlockRow> hostEntries; // of the host-hashed rows
  };
  std::shared_ptr<Batch> finalBatch_; // launched, written by endCall
  std::shared_ptr<Batch> deferred_; // flushed, gathers not yet queued
  std::deque<void *> recentReady_;    // the last three batches' ready events
  Batch open_;
  static constexpr size_t kTraceStreams = 4;
  std::vector<void *> traceStreams_;
  size_t nextTraceStream_ = 0;
  std::deque<std::shared_ptr<Batch>> inflight_; // launched, blocks held
  std::vector<void *> events_;   // handed out this call
  std::vector<void *> eventPool_; // free: creating events per batch costs
  // Writer thread: batches whose records it converts and appends, in order.
  std::thread writerThread_;
  std::mutex writerMutex_;
  std::condition_variable writerCv_;
  std::deque<std::shared_ptr<Batch>> writerQueue_;
  size_t writerBusy_ = 0;
  bool writerStop_ = false;
  std::string writerError_;
  uint64_t recordsAppended_ = 0;
  // Patch.
  std::vector<std::vector<uint8_t>> patchStaging_;
  // GRETA_GPU_TRACE_PROFILE (see GpuTrace.cpp).
  int64_t profBatches_ = 0;
  double profTraceMs_ = 0, profFlushMs_ = 0;
  long long profCaughtUp_ = 0;
  // GRETA_GPU_TRACE_PROFILE: each final-batch host row's hash start and end
  // (steady clock, ns), longest rows first.
  std::vector<std::pair<int64_t, int64_t>> profRowTimes_;
  std::chrono::steady_clock::time_point profCallStart_;
  // Compute stream: start, end of the forward, end of the final batch, and
  // in the final batch after its gathers, its copy, its top-5.
  void *profEvents_[6] = {};
  struct OpTime {
    const char *name;
    void *begin, *end;
  };
  std::vector<OpTime> opTimes_; // GRETA_GPU_OP_PROFILE
  std::vector<void *> opEventPool_;
  void printOpProfile();
  bool traceFailed_ = false;
  std::string error_;
  uint64_t records_ = 0; // written by the writer thread, read after endCall
};

} // namespace greta::gpu

/// The device allocator of lowered GPU programs (greta-gpu-device-allocator
/// renames memref's generic allocation functions to these). They allocate
/// from the current GpuSession's caching allocator.
extern "C" {
__attribute__((visibility("default"))) void *greta_gpu_rt_alloc(int64_t bytes);
__attribute__((visibility("default"))) void *
greta_gpu_rt_aligned_alloc(int64_t alignment, int64_t bytes);
__attribute__((visibility("default"))) void greta_gpu_rt_free(void *ptr);
}

#endif // GRETA_GPU_GPUSESSION_H

//===- GpuTraceWriter.cpp - The GPU trace's writer thread -------*- C++ -*-===//
//
// The writer thread of the GPU session's trace: it hashes the rows gathered
// for the host (OpenSSL, a pool of threads), appends each batch's records to
// the trace in order and reports the first write error. See GpuTrace.cpp for
// the batches it receives.
//
//===----------------------------------------------------------------------===//
#include "greta/gpu/GpuSession.h"
#include "GpuInternal.h"

#include "greta/gpu/Kernels.h"
#include "greta/rt/SelectionIds.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>

using namespace greta;
using namespace greta::gpu;

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
    blk.rowShape = p.rowShape.empty() ? std::vector<int64_t>{p.cols}
                                      : p.rowShape;
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
    std::vector<int32_t> selIds; // expert_selection: the ids, as the CPU's
    if (p.stage == rt::Stage::ExpertSelection && p.cols % 2 == 0 &&
        p.hValues) {
      rt::selectionIds(p.hValues, p.dtype, n, p.cols, selIds);
      blk.topIds = selIds.data();
      blk.topK = static_cast<int>(p.cols / 2);
    }
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

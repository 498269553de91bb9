//===- GpuPaged.cpp - The GPU session's paged KV cache --------------------===//
//
// Chunked prefill and decode steps keep the KV cache in pages
// (GpuSession::setPaging): per slot (layer) a pool of ceil(capacity /
// blockSize) pages for K and one for V, zeroed once, and a block table
// (rt::BlockTable) whose entries are copied to the device on the compute
// stream as the sequence grows. Single-shot prefill never comes here.
//
//===----------------------------------------------------------------------===//
#include "GpuInternal.h"

using namespace greta;
using namespace greta::gpu;

void GpuSession::resetCache() {
  for (auto &[slot, kv] : paged_) {
    kv.table.reset();
    kv.uploaded = 0;
  }
}

GpuSession::PagedSlot *GpuSession::pagedSlot(int64_t slot, int64_t kvDim,
                                             int64_t end) {
  PagedSlot &kv = paged_[slot];
  std::string where = "paged KV cache slot " + std::to_string(slot);
  if (kv.k && kv.kvDim != kvDim) {
    setError(where + " holds rows of " + std::to_string(kv.kvDim) +
             " values, this call " + std::to_string(kvDim));
    return nullptr;
  }
  cudaStream_t s = static_cast<cudaStream_t>(stream_);
  if (!kv.k) {
    int64_t pages = rt::BlockTable::pagesFor(capacity_, blockSize_);
    size_t bytes = static_cast<size_t>(pages * blockSize_ * kvDim) *
                   rt::dtypeSize(storage_);
    if (greta_gpu_malloc(&kv.k, bytes) || greta_gpu_malloc(&kv.v, bytes) ||
        greta_gpu_malloc(reinterpret_cast<void **>(&kv.dTable),
                         sizeof(int32_t) * std::max<int64_t>(pages, 1)) ||
        greta_gpu_host_alloc(reinterpret_cast<void **>(&kv.hTable),
                             sizeof(int32_t) * std::max<int64_t>(pages, 1))) {
      setError(where + ": " + greta_gpu_last_error());
      return nullptr;
    }
    // Zeroed: a page read before it is written reads zeros, the same
    // every run (the planted stale_page_bug is then reproducible).
    cudaError_t e = cudaMemsetAsync(kv.k, 0, bytes, s);
    if (e == cudaSuccess)
      e = cudaMemsetAsync(kv.v, 0, bytes, s);
    if (e != cudaSuccess) {
      setError(cudaMessage((where + ": cudaMemsetAsync").c_str(), e));
      return nullptr;
    }
    kv.kvDim = kvDim;
    kv.table = rt::BlockTable(blockSize_, pages);
  }
  std::string err;
  if (!kv.table.grow(end, err)) {
    setError(where + ": " + err);
    return nullptr;
  }
  int64_t n = static_cast<int64_t>(kv.table.table().size());
  if (n > kv.uploaded) {
    // The pinned entries of this run are written once each and read by
    // copies ordered on the stream; a reset comes after endCall's sync.
    std::copy(kv.table.table().begin() + kv.uploaded, kv.table.table().end(),
              kv.hTable + kv.uploaded);
    cudaError_t e = cudaMemcpyAsync(
        kv.dTable + kv.uploaded, kv.hTable + kv.uploaded,
        sizeof(int32_t) * (n - kv.uploaded), cudaMemcpyHostToDevice, s);
    if (e != cudaSuccess) {
      setError(cudaMessage((where + ": block table copy").c_str(), e));
      return nullptr;
    }
    kv.uploaded = n;
  }
  return &kv;
}

void GpuSession::traceCacheReads(int64_t layer, const PagedSlot &kv) {
  if (!traceCacheReads_ || !writer_ || traceFailed_ || !error_.empty())
    return;
  const std::vector<int64_t> &selected = front_.selectedRows();
  rt::Payload payload = front_.filter().payload.value_or(rt::Payload::Hash);
  size_t es = rt::dtypeSize(storage_);
  cudaStream_t s = static_cast<cudaStream_t>(stream_);
  for (auto [stage, pool] : {std::pair{rt::Stage::KCacheRead, kv.k},
                             std::pair{rt::Stage::VCacheRead, kv.v}}) {
    if (!front_.filter().selects(stage, layer))
      continue;
    for (int64_t i : selected) {
      // The query at p reads keys and values [0, p]: one record of them.
      int64_t p = front_.positions()[i], n = p + 1;
      size_t bytes = static_cast<size_t>(n * kv.kvDim) * es;
      void *d = alloc(bytes);
      if (!d)
        return;
      greta_gpu_status st =
          storage_ == rt::DType::F32
              ? greta_gpu_paged_gather_f32(
                    static_cast<const float *>(pool), kv.dTable, blockSize_, 0,
                    n, kv.kvDim, static_cast<float *>(d), kv.kvDim, s)
          : storage_ == rt::DType::BF16
              ? greta_gpu_paged_gather_bf16(
                    static_cast<const uint16_t *>(pool), kv.dTable, blockSize_,
                    0, n, kv.kvDim, static_cast<uint16_t *>(d), kv.kvDim, s)
              : greta_gpu_paged_gather_f16(
                    static_cast<const uint16_t *>(pool), kv.dTable, blockSize_,
                    0, n, kv.kvDim, static_cast<uint16_t *>(d), kv.kvDim, s);
      if (st != GRETA_GPU_OK) {
        setError(std::string("trace cache reads: ") + greta_gpu_last_error());
        return;
      }
      std::vector<uint8_t> &host = cacheReadValues_.emplace_back(bytes);
      cudaError_t e =
          cudaMemcpyAsync(host.data(), d, bytes, cudaMemcpyDeviceToHost, s);
      if (e == cudaSuccess)
        e = cudaStreamSynchronize(s);
      release(d);
      if (e != cudaSuccess) {
        setError(cudaMessage("trace cache reads", e));
        return;
      }
      // Hashed on the host by the writer, in order with the other records.
      Pending pend{stage,   layer,       payload, storage_, n * kv.kvDim,
                   {p},     nullptr,     host.data(), nullptr};
      pend.rowShape = {n, kv.kvDim};
      open_.pending.push_back(std::move(pend));
      lastTrace_.reset();
    }
  }
}

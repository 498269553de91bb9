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

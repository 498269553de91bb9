//===- GpuSession.h - The state a GPU run shares with its glue --*- C++ -*-===//
//
// A program lowered by greta-lower-to-gpu calls the glue layer
// (_mlir_ciface_greta_gpu_<op>_<dt>, GpuSession.cpp) with descriptors of
// device buffers and no context argument: the glue reaches the current
// GpuSession, one per process at a time. The session holds the parameters
// on the device in the storage dtype (uploaded once), the KV cache, the
// token ids and positions of the current call (on the device), a caching
// device allocator for the program's buffers, and the trace: device
// SHA-256/stats kernels, asynchronous copies of the records to pinned host
// memory, no stream synchronization until the end of the call, where the
// host writes the records with the runtime's TraceWriter.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_GPU_GPUSESSION_H
#define GRETA_GPU_GPUSESSION_H

#include "greta/rt/Filter.h"
#include "greta/rt/Session.h"
#include "greta/rt/Trace.h"
#include "greta/rt/Weights.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace greta::gpu {

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

  void setTrace(rt::TraceWriter *writer, rt::Filter filter, int64_t tokenCount);
  /// Uploads this call's token ids and positions (device copies returned
  /// through dTokens()/dPositions()), selects the rows to trace.
  bool beginCall(const int64_t *tokens, const int64_t *positions, int64_t n);
  const int64_t *dTokens() const { return dTokens_; }
  const int64_t *dPositions() const { return dPositions_; }
  const std::vector<int64_t> &positions() const { return positions_; }
  /// Synchronizes the stream once, checks the device error word, writes the
  /// call's trace records (also after an error: what was computed is kept).
  bool endCall();
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
  void *alloc(size_t bytes);
  void release(void *ptr);
  void trace(int64_t recordId, int64_t compiledPayload, rt::DType dtype,
             const void *data, int64_t rows, int64_t cols, int64_t ld);

  void setError(std::string message);
  const std::string &error() const { return error_; }
  uint64_t recordsWritten() const { return records_; }

private:
  GpuSession() = default;
  bool flushRecords();

  std::string desc_;
  rt::DType storage_ = rt::DType::F16;
  void *stream_ = nullptr;
  std::map<std::string, void *> params_;
  std::map<std::string, std::vector<int64_t>> paramShapes_;
  std::map<int64_t, KVSlot> kv_;
  int64_t capacity_ = 0;
  // Caching allocator: the program allocates the same sizes every call;
  // cudaFree would synchronize the device.
  std::multimap<size_t, void *> freeBlocks_;
  std::map<void *, size_t> liveBlocks_;
  // Per call.
  int64_t *dTokens_ = nullptr, *dPositions_ = nullptr, *dSelRows_ = nullptr;
  int64_t *hStaging_ = nullptr; // pinned: tokens, positions, selected rows
  int64_t callCapacity_ = 0;
  std::vector<int64_t> positions_;
  std::vector<int64_t> selRows_;
  // Trace.
  rt::TraceWriter *writer_ = nullptr;
  rt::Filter filter_;
  int64_t tokenCount_ = 0;
  struct Chunk {
    void *dRecords = nullptr, *hRecords = nullptr; // greta_gpu_row_record
    int64_t capacity = 0, used = 0;
  };
  std::vector<Chunk> chunks_;
  struct ValueChunk {
    uint8_t *h = nullptr;
    size_t capacity = 0, used = 0;
  };
  std::vector<ValueChunk> valueChunks_;
  struct Pending {
    rt::Stage stage;
    int64_t layer;
    rt::Payload payload;
    rt::DType dtype;
    int64_t cols;
    std::vector<int64_t> positions;
    const void *hRecords;    // pinned, n records
    const uint8_t *hValues;  // pinned rows (Full payload or logits), or null
  };
  std::vector<Pending> pending_;
  bool traceFailed_ = false;
  std::string error_;
  uint64_t records_ = 0;
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

//===- Session.h - The state one model run shares with its kernels -*- C++ -*-===//
//
// The compiled model calls the C ABI (CInterface.h) with no context
// argument: those functions reach the current Session, one per process at a
// time. greta-run (CPU JIT or ahead-of-time) and the GPU host drive it.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_SESSION_H
#define GRETA_RT_SESSION_H

#include "greta/rt/Filter.h"
#include "greta/rt/Trace.h"
#include "greta/rt/TraceFront.h"
#include "greta/rt/Weights.h"

#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace greta::rt {

/// A parameter the compiled model expects: its name and shape (from the IR).
struct ParamSpec {
  std::string name;
  std::vector<int64_t> shape;
};

class Session {
public:
  /// Validates every expected parameter against the checkpoint (missing
  /// tensor, wrong shape or unsupported dtype: error naming the tensor) and
  /// converts it to the compute dtype (F32 or F64) once.
  static std::unique_ptr<Session> create(const SafeTensors &weights,
                                         const std::vector<ParamSpec> &params,
                                         DType computeDType,
                                         std::string &error);
  ~Session();

  /// Makes this the session the C ABI reaches (nullptr to clear).
  static void setCurrent(Session *s);
  static Session *current();

  /// Tracing: nullptr writer disables it. `tokenCount` resolves `last`.
  void setTrace(TraceWriter *writer, Filter filter, int64_t tokenCount);
  /// Positions of the rows of the next forward call (one chunk).
  void setPositions(std::vector<int64_t> positions);
  const std::vector<int64_t> &positions() const { return front_.positions(); }

  /// Called from the C ABI.
  const void *param(const char *name, int64_t rank,
                    const int64_t **shape) const;
  /// `repeat`: the compiler knows `data` is the previous trace call's
  /// buffer, unwritten since; if that call wrote a block of the same shape
  /// and payload, its entries are written again under this record's stage
  /// and layer instead of hashing the rows twice.
  void trace(int64_t recordId, int64_t compiledPayload, DType dtype,
             const void *data, int64_t rows, int64_t cols, int64_t rowStride,
             bool repeat = false);
  /// KV cache slot for attention: appends this call's k/v rows at their
  /// positions and returns the cache (keys/values for positions [0, end)).
  /// Leaves grown elements uninitialised: attention writes every KV row
  /// before it reads it, and zeroing the cache on each growth was ~5% of a
  /// CPU forward.
  template <typename T> struct NoInit : std::allocator<T> {
    template <typename U> struct rebind { using other = NoInit<U>; };
    template <typename U, typename... A> void construct(U *p, A &&...a) {
      if constexpr (sizeof...(A) == 0)
        ::new (static_cast<void *>(p)) U;
      else
        ::new (static_cast<void *>(p)) U(std::forward<A>(a)...);
    }
  };
  struct KVSlot {
    // [capacity, kvDim] in the compute dtype
    std::vector<uint8_t, NoInit<uint8_t>> k, v;
    int64_t kvDim = 0;
    int64_t filled = 0; // positions [0, filled) are valid
  };
  KVSlot &kvSlot(int64_t slot);
  void resetKVCache();

  /// --trace-cache-reads: attention also records the rows each query reads.
  void setTraceCacheReads(bool on) { traceCacheReads_ = on; }
  /// Called by attention once this call's rows [first, first + rows) are in
  /// KV slot `layer` (`k`, `v`: the slot's rows from 0, `kvDim` wide):
  /// records them as stored (k_cache, v_cache).
  void traceCacheWrites(int64_t layer, DType dtype, const void *k,
                        const void *v, int64_t kvDim, int64_t first,
                        int64_t rows);
  /// Then, with setTraceCacheReads, before attention reads them: the rows
  /// [0, p] each query of this call at a selected position p reads, as one
  /// [p + 1, kvDim] record at p (k_cache_read, v_cache_read).
  void traceCacheReads(int64_t layer, DType dtype, const void *k, const void *v,
                       int64_t kvDim);

  /// A planted KV-cache bug (a CPU kernel variant, for testing the
  /// detectors), in KV slot `layer`, at every call that continues the cache
  /// at a position p0 >= fromPosition. Stale: row p0 - 1's key is stored in
  /// row p0 (the first key after a chunk boundary is stale). Overwrite:
  /// once row p0 is stored, its key overwrites row p0 - 1 (a write past its
  /// slot corrupts a row written earlier).
  struct KVFault {
    enum Kind { Stale, Overwrite };
    int64_t layer = -1; // -1: none
    int64_t fromPosition = 1;
    Kind kind = Stale;
  };
  void setKVFault(KVFault fault) { kvFault_ = fault; }
  const KVFault &kvFault() const { return kvFault_; }

  /// First error raised inside a kernel or the trace writer (the C ABI has no
  /// error channel: kernels record it here and greta-run checks after each
  /// call). Tracing stops at the first write error; what was written stays.
  void setError(std::string message);
  const std::string &error() const { return error_; }

  uint64_t recordsWritten() const;

  /// End of one forward call (one chunk): hands the buffered trace records
  /// to the OS so a crash later loses none of them. Returns false (and sets
  /// the session error) on a write error.
  bool endCall();

  /// Causal confirmation (greta-bisect --confirm): at every trace of
  /// `recordId`, the rows of the given positions are overwritten with these
  /// values (in the compute dtype) before anything reads them, so the run
  /// continues from another run's tensor. A debugging intervention outside
  /// the IR's semantics: greta.trace otherwise never writes its buffer.
  void setPatch(int64_t recordId, std::map<int64_t, std::vector<double>> rows);
  /// Applies the patch of `recordId`, if any, to rows (positions of this
  /// call) of the buffer; returns how many rows it replaced.
  int64_t applyPatch(int64_t recordId, DType dtype, void *data, int64_t rows,
                     int64_t cols, int64_t rowStride);
  int64_t rowsPatched() const { return front_.rowsPatched(); }
  DType computeDType() const { return computeDType_; }

  /// Called with the layer of every trace call of the model, traced or not
  /// (greta-run's progress line); none by default.
  void setLayerObserver(std::function<void(int64_t layer)> observer) {
    layerObserver_ = std::move(observer);
  }

private:
  Session() = default;
  DType computeDType_ = DType::F32;
  std::map<std::string, std::vector<uint8_t>> params_;
  std::map<std::string, std::vector<int64_t>> paramShapes_;
  TraceWriter *writer_ = nullptr;
  TraceFront front_; // filter, positions, payload, repeats, patch
  std::map<int64_t, KVSlot> kv_;
  bool traceCacheReads_ = false;
  KVFault kvFault_;
  std::string error_;
  uint64_t records_ = 0;
  bool traceFailed_ = false; // the writer reported an error: stop tracing
  /// The block the previous trace call wrote, for a repeat of it; cleared
  /// by every trace call that writes nothing and by every new call.
  struct LastBlock {
    TraceFront::Tensor tensor;
    std::vector<BlockRow> entries;
    std::vector<int64_t> positions;
    std::vector<uint8_t> values; // Full payload of strided or selected rows
  };
  std::optional<LastBlock> lastBlock_;
  std::function<void(int64_t)> layerObserver_;
};

/// The C ABI's parameter lookup, CPU and GPU alike: the shape of `name` in
/// `shapes` when it has rank `rank`, else nullptr.
inline const std::vector<int64_t> *
paramShape(const std::map<std::string, std::vector<int64_t>> &shapes,
           const char *name, int64_t rank) {
  auto it = shapes.find(name ? name : "");
  if (it == shapes.end() || static_cast<int64_t>(it->second.size()) != rank)
    return nullptr;
  return &it->second;
}

/// The digest fields of a record for one row of `n` elements stored as
/// `dtype`: SHA-256 of the bytes, non-zero count, and with `stats` the
/// nan/inf counts and fingerprint (min/max skip NaN; mean and L2 propagate
/// it). The GPU device kernels compute the same (kernels/src/Trace.hip).
void fillRowRecord(Record &r, const void *row, DType dtype, int64_t n,
                   bool stats);

/// The top-5 ids of a logits row of `n` elements stored as `dtype`, best
/// first, ties to the lower id, NaN last (what the runtime writes; fewer
/// than 5 when n < 5).
std::vector<int32_t> topFiveIds(const void *row, DType dtype, int64_t n);

/// What greta-bisect --confirm splices into a run (--patch-from/--patch):
/// the rows of one record, STAGE:LAYER, of a trace written with --payload
/// full, by position.
struct Patch {
  int64_t recordId = -1;
  DType dtype = DType::F32; // of the recorded values
  std::map<int64_t, std::vector<double>> rows;
};
/// Reads record `spec` ("STAGE:LAYER", e.g. mlp_out:6) from the trace in
/// `traceDir`. Errors name the trace and the record.
std::optional<Patch> readPatch(const std::string &traceDir,
                               const std::string &spec, std::string &error);

} // namespace greta::rt

#endif // GRETA_RT_SESSION_H

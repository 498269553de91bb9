//===- Trace.h - The trace format: manifest, records, writer, reader -*- C++ -*-===//
//
// A trace is a directory: `manifest.json` plus `records.bin`, an append-only
// stream of length-prefixed, checksummed records (docs/TRACE_FORMAT.md). A
// run killed at any point leaves a readable prefix; the reader reports where
// and why it stopped instead of failing.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_TRACE_H
#define GRETA_RT_TRACE_H

#include "greta/rt/Stages.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace greta::rt {

inline constexpr uint32_t kTraceFormatVersion = 1;

enum class DType : uint8_t { F32 = 0, F64 = 1, F16 = 2, BF16 = 3 };
std::string_view dtypeName(DType d);
size_t dtypeSize(DType d);

enum class Payload : uint8_t { Hash = 0, Stats = 1, Full = 2 };

/// Cheap numeric fingerprint of one row, computed in f64.
struct Fingerprint {
  double min = 0, max = 0, mean = 0, l2 = 0;
};

/// One traced row: the tensor of (stage, layer) at one token position.
struct Record {
  Stage stage = Stage::EmbedOut;
  int64_t layer = 0;
  int64_t position = 0;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;         // shape of the row (e.g. {hidden})
  std::array<uint8_t, 32> sha256{};   // of the row's bytes as stored
  int64_t nzCount = 0;                // elements != 0
  int64_t nanCount = 0, infCount = 0; // Stats and Full only (else 0)
  Fingerprint fingerprint;            // Stats and Full only
  std::vector<int32_t> top5;          // logits only: top-5 token ids
  Payload payload = Payload::Hash;
  std::vector<uint8_t> values;        // Full only: the row's bytes

  int64_t numElements() const;
  std::string sha256Hex() const;
  /// Values converted to f64 (empty unless payload == Full).
  std::vector<double> valuesAsDouble() const;
};

/// What a trace was produced by. Traces of different model, weights or
/// prompt are not comparable (greta-diff refuses them).
struct Manifest {
  uint32_t formatVersion = kTraceFormatVersion;
  std::string model;          // model name (module attribute) or file
  std::string modelDigest;    // sha256 of the model IR text
  std::string weightsDigest;  // sha256 of the weights file
  std::string promptDigest;   // sha256 of the token ids (int64 LE)
  std::string promptName;     // e.g. p6_len_16
  int64_t tokenCount = 0;
  std::string backend;        // cpu | gpu
  std::string precision;      // f32 | f64 | f16 | bf16
  std::string pipeline;       // extra passes (--pass-pipeline), "" if none
  std::string toolVersion;
  std::string filter;         // the runtime filter, as text
  std::string createdAt;      // ISO 8601, informative only
};

/// Appends records to `<dir>/records.bin`; writes the manifest first. Takes
/// an exclusive lock on the directory (a second writer is refused). Every
/// write error (ENOSPC, EFBIG, EIO) is reported, never ignored; what was
/// written before stays readable.
class TraceWriter {
public:
  /// Creates `dir` if needed. Errors: unwritable, locked by another run,
  /// already holding a trace (unless `overwrite`).
  static std::unique_ptr<TraceWriter> create(const std::string &dir,
                                             const Manifest &manifest,
                                             bool overwrite,
                                             std::string &error);
  virtual ~TraceWriter();
  /// Returns false and sets `error` on failure (then the writer is closed).
  virtual bool append(const Record &record, std::string &error) = 0;
  /// Hands every buffered record to the OS (write(2)): from then on they
  /// survive the process being killed (not a power loss; finish() fsyncs).
  /// Session::endCall() calls it after each forward call.
  virtual bool flush(std::string &error) = 0;
  /// Flushes and marks the trace complete (manifest `complete: true`).
  virtual bool finish(std::string &error) = 0;
  virtual uint64_t bytesWritten() const = 0;
  virtual uint64_t recordsWritten() const = 0;
};

/// Reads a whole trace. A truncated or corrupt tail is not an error: the
/// records before it are returned and `stopReason` says where reading
/// stopped. Bad manifests, unknown format versions, missing files and a
/// corrupt *first* record are errors.
struct TraceContents {
  Manifest manifest;
  bool complete = false;        // finish() was reached
  std::vector<Record> records;  // in file order
  std::string stopReason;       // empty when read to a clean end
  uint64_t validBytes = 0;      // bytes of records.bin that were valid
};
std::optional<TraceContents> readTrace(const std::string &dir,
                                       std::string &error);

/// records.bin framing (docs/TRACE_FORMAT.md). Exposed for tests and tools.
inline constexpr char kTraceFileMagic[8] = {'G', 'R', 'E', 'T',
                                            'A', 'T', 'R', 'C'};
inline constexpr uint32_t kTraceFileHeaderSize = 16;
inline constexpr uint32_t kRecordMagic = 0x43455247; // "GREC" little endian
/// Appends the version-1 body of `r` (no framing) to `out`.
void encodeRecordBody(const Record &r, std::vector<uint8_t> &out);
/// Decodes a body; false (and `error`) when it is malformed.
bool decodeRecordBody(const uint8_t *data, size_t size, Record &r,
                      std::string &error);

} // namespace greta::rt

#endif // GRETA_RT_TRACE_H

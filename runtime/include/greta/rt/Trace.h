//===- Trace.h - The trace format: manifest, records, writer, reader -*- C++ -*-===//
//
// A trace is a directory: `manifest.json` plus `records.bin`, an append-only
// stream of length-prefixed, checksummed frames (docs/TRACE_FORMAT.md): a
// record frame holds one row, a block frame many rows of one traced tensor.
// A run killed at any point leaves a readable prefix; the reader reports
// where and why it stopped instead of failing.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_TRACE_H
#define GRETA_RT_TRACE_H

#include "greta/rt/DType.h"
#include "greta/rt/Stages.h"

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace greta::rt {

/// The version written; readers accept kOldestTraceFormatVersion up to it.
/// Version 3 adds the run id (manifest and records.bin's header).
inline constexpr uint32_t kTraceFormatVersion = 3;
inline constexpr uint32_t kOldestTraceFormatVersion = 1;

/// Cheap numeric fingerprint of one row, computed in f64.
struct Fingerprint {
  double min = 0, max = 0, mean = 0, l2 = 0;
};

/// The bytes of a row's values. Either owned (records built in memory, and
/// those readTrace returns) or a read-only view into bytes that `owner`
/// keeps alive (decodeRecordBody / BlockRows given an owner); a view holds
/// a reference to its owner, so a Record stays valid after whatever it was
/// decoded from is gone. Copying a view copies the reference, not the bytes.
class ValueBytes {
public:
  using value_type = uint8_t;
  using iterator = const uint8_t *;
  using const_iterator = const uint8_t *;

  ValueBytes() = default;
  ValueBytes(std::vector<uint8_t> bytes) : owned_(std::move(bytes)) {}
  /// A view of [data, data + size); `owner` keeps those bytes alive.
  static ValueBytes view(const uint8_t *data, size_t size,
                         std::shared_ptr<const void> owner) {
    ValueBytes v;
    v.view_ = data;
    v.viewSize_ = size;
    v.owner_ = std::move(owner);
    return v;
  }

  const uint8_t *data() const { return owner_ ? view_ : owned_.data(); }
  size_t size() const { return owner_ ? viewSize_ : owned_.size(); }
  bool empty() const { return size() == 0; }
  const uint8_t *begin() const { return data(); }
  const uint8_t *end() const { return data() + size(); }
  uint8_t operator[](size_t i) const { return data()[i]; }
  bool isView() const { return owner_ != nullptr; }

  /// Copies [first, last) into owned storage (reusing its capacity).
  template <typename It> void assign(It first, It last) {
    owner_.reset();
    owned_.assign(first, last);
  }
  void clear() {
    owner_.reset();
    owned_.clear();
  }
  std::vector<uint8_t> toVector() const { return {begin(), end()}; }
  /// The owned bytes, moved out (their capacity kept for reuse); empty for
  /// a view.
  std::vector<uint8_t> takeOwned() && {
    owner_.reset();
    return std::move(owned_);
  }

  friend bool operator==(const ValueBytes &a, const ValueBytes &b);
  friend bool operator!=(const ValueBytes &a, const ValueBytes &b) {
    return !(a == b);
  }

private:
  std::vector<uint8_t> owned_;
  const uint8_t *view_ = nullptr;
  size_t viewSize_ = 0;
  std::shared_ptr<const void> owner_;
};

/// Byte-wise equality, whether owned or viewed.
bool operator==(const ValueBytes &a, const ValueBytes &b);

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
  ValueBytes values;                  // Full only: the row's bytes

  int64_t numElements() const;
  std::string sha256Hex() const;
  /// Values converted to f64 (empty unless payload == Full).
  std::vector<double> valuesAsDouble() const;
};

/// What a trace was produced by. Traces of different model, weights or
/// prompt are not comparable (greta-diff refuses them).
struct Manifest {
  uint32_t formatVersion = kTraceFormatVersion;
  /// 128 random bits as 32 lowercase hex digits, also in records.bin's
  /// header; drawn by TraceWriter::create (a value given is replaced).
  /// Empty before format version 3.
  std::string runId;
  std::string model;          // model name (module attribute) or file
  std::string modelDigest;    // sha256 of the model IR text
  std::string weightsDigest;  // of the values (WeightsDigest.h)
  /// (tensor name, digest of its values), sorted by name: which tensor
  /// differs when weightsDigest does. Empty in traces of older writers.
  std::vector<std::pair<std::string, std::string>> weightsTensorDigests;
  /// The dtype(s) of the weights on disk ("bf16", "f32+bf16"); the run
  /// computes in `precision`. "" in traces of older writers.
  std::string weightsDType;
  std::string promptDigest;   // sha256 of the token ids (int64 LE)
  std::string promptName;     // e.g. p6_len_16
  int64_t tokenCount = 0;
  std::vector<int64_t> promptIds; // the ids: the run repeats without the text
  std::string tokenizer;          // --tokenizer as loaded, "" if none
  std::string tokenizerDigest;    // Tokenizer::digest(), "" if none
  std::string backend;        // cpu | gpu
  std::string precision;      // f32 | f64 | f16 | bf16
  std::string pipeline;       // extra passes (--pass-pipeline), "" if none
  std::string toolVersion;
  std::string filter;         // the runtime filter, as text
  std::string createdAt;      // ISO 8601, informative only
  /// --generate: the tokens generated after the prompt, in order (set at
  /// finish); "generation" says how they were chosen. Absent otherwise.
  std::optional<std::vector<int64_t>> generatedIds;
  std::string generation; // "greedy", or "sample seed=S temperature=T top_p=P"
};

/// One row's entry in RecordBlock::rows: 88 bytes, no padding, host byte
/// order (the GRETA runtime targets little-endian hosts, where this is the
/// file's byte order and a row is copied, not encoded). It is the GPU
/// runtime's per-row device record.
struct BlockRow {
  uint8_t sha256[32];
  int64_t nzCount;
  int64_t nanCount, infCount; // read for payload stats and full only
  double min, max, mean, l2;  // read for payload stats and full only
};
static_assert(sizeof(BlockRow) == 88, "BlockRow must be 88 bytes, unpadded");
/// A record's digest fields as a block frame's row entry.
BlockRow toBlockRow(const Record &r);

/// n rows of one traced tensor (same stage, layer, dtype, payload and row
/// shape), written as block frames (docs/TRACE_FORMAT.md). Nothing is owned:
/// the pointers must stay valid during appendBlock().
struct RecordBlock {
  Stage stage = Stage::EmbedOut;
  int64_t layer = 0;
  DType dtype = DType::F32;
  Payload payload = Payload::Hash;
  std::vector<int64_t> rowShape;      // shape of ONE row (e.g. {hidden})
  int64_t n = 0;                      // rows; 0 writes nothing
  const int64_t *positions = nullptr; // n positions, in row order (the
                                      // writer detects contiguous runs)
  /// Row j's entry starts at rows + j * rowStride, laid out as BlockRow. For
  /// payload hash only its first 40 bytes (sha256, nzCount) are read, so a
  /// stride of 40 (packed hash entries) or 88 (BlockRow) both work.
  const uint8_t *rows = nullptr;
  size_t rowStride = sizeof(BlockRow);
  /// n * topK token ids, row after row, best first; -1 pads a row with fewer
  /// ids (readers drop trailing -1s). nullptr/0: none (0 <= topK <= 64).
  const int32_t *topIds = nullptr;
  int topK = 0;
  /// Payload full: the n rows' values, contiguous, row after row
  /// (elements * dtypeSize bytes a row). Else ignored.
  const uint8_t *values = nullptr;
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
  /// Writes one record frame.
  virtual bool append(const Record &record, std::string &error) = 0;
  /// Writes the block's n rows as one block frame, or several of whole rows
  /// when a body would exceed the block frame limit (64 MiB by default) or
  /// its part before the values the 1 MiB write buffer (over ~21 800 hash
  /// or ~10 900 stats rows); the reader returns them as n records, as if
  /// append() had been called per row. Counts n records. Cost per row: a
  /// copy of its entry (and ids, values) and the CRC over them. An invalid block (unknown stage/dtype/payload, rank
  /// over 8, a negative dimension, topK over 64, a null pointer that is
  /// needed, a stride below the entry size, a row whose frame would exceed
  /// 1 GiB) is refused with `error` and nothing written; the writer stays
  /// open. A write error closes it, as for append().
  virtual bool appendBlock(const RecordBlock &block, std::string &error) = 0;
  /// The largest block frame body the writer produces (default
  /// kMaxBlockBodyBytes); a frame always holds at least one row. For tests.
  virtual void setMaxBlockBodyBytes(size_t bytes) = 0;
  /// Hands every buffered record to the OS (write(2)): from then on they
  /// survive the process being killed (not a power loss; finish() fsyncs).
  /// Session::endCall() calls it after each forward call.
  virtual bool flush(std::string &error) = 0;
  /// Flushes, fsyncs and marks the trace complete: manifest `complete:
  /// true`, `records` (the count) and `records_digest`.
  virtual bool finish(std::string &error) = 0;
  /// The manifest's generated ids, written by finish() (--generate).
  virtual void setGeneratedIds(std::vector<int64_t> ids) = 0;
  virtual uint64_t bytesWritten() const = 0;
  /// Records (rows) appended, block rows included; not frames.
  virtual uint64_t recordsWritten() const = 0;
};

/// An open records.bin that rows' values are read back from, by offset
/// (pread), after readTrace streamed the file once. Held by the BlockRows
/// that readTrace returns; closed with the last of them.
class TraceFile {
public:
  TraceFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  TraceFile(const TraceFile &) = delete;
  TraceFile &operator=(const TraceFile &) = delete;
  ~TraceFile();
  /// Reads exactly `size` bytes at `offset`; false (and `error` naming the
  /// file and offset) on a read error or a file cut since it was read.
  bool readAt(uint64_t offset, uint8_t *out, size_t size,
              std::string &error) const;
  const std::string &path() const { return path_; }
  int fd() const { return fd_; }

private:
  int fd_;
  std::string path_;
};

/// The rows of one block frame as read, not expanded into Records: the
/// frame's header once, and pointers to its row entries and top-k ids
/// (kept alive by `owner`). The values are either in memory (`values`) or,
/// as readTrace leaves them, in `file` at `valuesOffset` (row j at
/// valuesOffset + j * rowBytes), read back when a row is built. A row costs
/// no memory beyond its entry; record(j) builds row j's Record on demand.
/// readTrace returns these when ReadOptions::keepBlocks is set.
struct BlockRows {
  Stage stage = Stage::EmbedOut;
  int64_t layer = 0;
  DType dtype = DType::F32;
  Payload payload = Payload::Hash;
  std::vector<int64_t> rowShape;       // shape of ONE row
  int64_t elements = 0;                // product of rowShape
  uint32_t n = 0;                      // rows (>= 1)
  int64_t firstPosition = 0;           // contiguous: row j is at first + j
  const uint8_t *positions = nullptr;  // else n i64 LE positions (nullptr
                                       // when contiguous)
  const uint8_t *entries = nullptr;    // n entries, entryBytes apart
  uint32_t entryBytes = 0;             // 40 (payload hash) or 88
  uint32_t topK = 0;                   // ids per row (padded with -1)
  const uint8_t *topIds = nullptr;     // n * topK i32 LE
  const uint8_t *values = nullptr;     // payload full, in memory: n rows,
                                       // rowBytes each (else nullptr)
  size_t rowBytes = 0;
  std::shared_ptr<const void> owner;   // keeps the bytes above alive (null:
                                       // the caller does)
  std::shared_ptr<const TraceFile> file; // payload full, values not in
  uint64_t valuesOffset = 0;             // memory: where they are

  int64_t position(size_t j) const;
  /// Row j's SHA-256 (32 bytes).
  const uint8_t *sha256(size_t j) const { return entries + j * entryBytes; }
  /// Row j exactly as an expanding read gives it, into `r` (whose vectors'
  /// capacity is reused). Values in memory: a view when `owner` is set, else
  /// a copy; in `file`: read from it (pread), false (and `error`) when that
  /// read fails.
  bool readRecord(size_t j, Record &r, std::string &error) const;
  /// Row j's fields but its values (`r.values` left as it is).
  void headTo(size_t j, Record &r) const;
  /// readRecord for blocks whose values are in memory (or absent); a failed
  /// read of `file` throws std::runtime_error.
  void recordTo(size_t j, Record &r) const;
  Record record(size_t j) const {
    Record r;
    recordTo(j, r);
    return r;
  }
};

/// What readTrace verified beyond each frame's CRC. A mismatch is an error
/// (readTrace fails), so each field is verified (true) or unknown (false:
/// an older writer, a foreign one, or a run that did not finish).
struct TraceIntegrity {
  /// The manifest's run_id equals the one in records.bin's header.
  bool runIdTied = false;
  /// A finished run: the manifest's `records` equals the rows read.
  bool countVerified = false;
  /// A finished run: the manifest's `records_digest` equals the digest of
  /// what was read (docs/TRACE_FORMAT.md, "records digest").
  bool digestVerified = false;
  std::string recordsDigest; // computed while reading, over the valid frames
};

struct ReadOptions {
  /// Keep every frame as BlockRows (TraceContents::blocks; a record frame is
  /// a block of one row) instead of expanding each row into a Record:
  /// `records` is then empty, and values stay in the file (BlockRows::file),
  /// read back per row. For tools that hold whole traces of millions of rows
  /// (greta-diff).
  bool keepBlocks = false;
  /// Bytes read at a time (the reused buffer; it grows to hold a frame
  /// larger than this). For tests.
  size_t bufferBytes = size_t(4) << 20;
};

/// Reads a whole trace. The truncated tail of a run that did not finish is
/// not an error: the records before its last, bad frame are returned and
/// `stopReason` says where reading stopped. Errors (nullopt, `error` naming
/// the file and the place): bad manifests, unknown format versions, missing
/// or non-regular files, no readable record, and corruption: a bad frame in
/// a finished run or one followed by a valid frame, and a finished run whose
/// records.bin does not hold the record count and records digest its
/// manifest names; a run id that differs between manifest.json and
/// records.bin.
///
/// records.bin is read once, front to back, through one reused buffer
/// (pread; no mapping: docs/PERFORMANCE.md says why), each frame's CRC
/// checked as its bytes pass. Without keepBlocks, records own their values;
/// with it, the values stay in the file and are read back by offset
/// (BlockRows::readRecord) through the descriptor the blocks hold. The GRETA
/// writer never truncates a file in place (it unlinks and recreates), so the
/// bytes read back are the bytes checked; a file cut by other means since is
/// a read error, never short values.
struct TraceContents {
  Manifest manifest;
  bool complete = false;        // finish() was reached
  std::vector<Record> records;  // in file order (keepBlocks: the rows of
                                // record frames only)
  std::vector<BlockRows> blocks; // keepBlocks only: block frames, file order
  std::string stopReason;       // empty when read to a clean end
  uint64_t validBytes = 0;      // bytes of records.bin that were valid
  TraceIntegrity integrity;     // what was verified beyond the CRCs

  /// Rows read: the records plus every kept block's rows.
  size_t rowCount() const {
    size_t n = records.size();
    for (const BlockRows &b : blocks)
      n += b.n;
    return n;
  }
};
std::optional<TraceContents> readTrace(const std::string &dir,
                                       std::string &error,
                                       const ReadOptions &options = {});

/// What readTracePair hands its caller: rows of two traces at the same place
/// in both files, while their bytes are in the read buffers.
class RowPairSink {
public:
  virtual ~RowPairSink();
  /// Both manifests read; false: read the two traces without pairing.
  virtual bool start(const Manifest &a, const Manifest &b) = 0;
  /// Row j of block a (TraceContents::blocks[sa] of the first trace) and row
  /// j of block b (blocks[sb] of the second): same stage, layer and
  /// position, different SHA-256, payload full on both sides; `va`, `vb`
  /// their values, valid during the call only; both frames passed their
  /// CRC. Called from two threads at once (`worker` 0 or 1).
  virtual void pair(unsigned worker, const BlockRows &a, uint32_t sa,
                    const BlockRows &b, uint32_t sb, uint32_t j,
                    const uint8_t *va, const uint8_t *vb) = 0;
};

/// readTrace (keepBlocks) of two traces at once, one thread each; when
/// `sink` accepts, frames at the same index in both files holding the same
/// (stage, layer, positions) have their differing rows handed to it as they
/// are read (traces of the same run shape: the values are read once).
/// Each result (or its error) is as readTrace would give it.
void readTracePair(const std::string &dirA, const std::string &dirB,
                   const ReadOptions &options, RowPairSink *sink,
                   std::optional<TraceContents> &a, std::string &errorA,
                   std::optional<TraceContents> &b, std::string &errorB);

/// records.bin framing (docs/TRACE_FORMAT.md). Exposed for tests and tools.
inline constexpr char kTraceFileMagic[8] = {'G', 'R', 'E', 'T',
                                            'A', 'T', 'R', 'C'};
/// The header written (format 3): magic, version, header size, run id.
/// Versions 1 and 2 have the first 16 bytes only.
inline constexpr uint32_t kTraceFileHeaderSize = 32;
inline constexpr uint32_t kTraceFileHeaderSizeV2 = 16;
/// Where format 3 keeps the run id in the header, and its size.
inline constexpr uint32_t kTraceRunIdOffset = 16;
inline constexpr size_t kRunIdBytes = 16;
inline constexpr uint32_t kRecordMagic = 0x43455247; // "GREC" little endian
inline constexpr uint32_t kBlockMagic = 0x42455247;  // "GREB" little endian
/// Default block frame body limit of TraceWriter::appendBlock.
inline constexpr size_t kMaxBlockBodyBytes = size_t(64) << 20;
/// Appends the record body of `r` (no framing) to `out`.
void encodeRecordBody(const Record &r, std::vector<uint8_t> &out);
/// Decodes a body; false (and `error`) when it is malformed. The values are
/// copied, unless `owner` is given: then they are a view into `data`, which
/// `owner` must keep alive.
bool decodeRecordBody(const uint8_t *data, size_t size, Record &r,
                      std::string &error,
                      std::shared_ptr<const void> owner = nullptr);
/// Appends the body of one block frame holding all of `b`'s rows (no
/// framing, no splitting) to `out`; false (and `error`) for an invalid block
/// (see TraceWriter::appendBlock) or b.n == 0. For tests and tools; the
/// writer builds bodies in its own buffer.
bool encodeBlockBody(const RecordBlock &b, std::vector<uint8_t> &out,
                     std::string &error);
/// Decodes a block body into its n records, appended to `out` in row order;
/// all or nothing: false (and `error`, `out` unchanged) when it is
/// malformed. Values (payload full) are copied, or views into `data` when
/// `owner` is given.
bool decodeBlockBody(const uint8_t *data, size_t size, std::vector<Record> &out,
                     std::string &error,
                     std::shared_ptr<const void> owner = nullptr);
/// Decodes a block body without expanding it: `out` points into `data`
/// (`owner`, when given, is stored in out.owner to keep it alive). False
/// (and `error`) when it is malformed, exactly where decodeBlockBody fails.
bool decodeBlockRows(const uint8_t *data, size_t size, BlockRows &out,
                     std::string &error,
                     std::shared_ptr<const void> owner = nullptr);
/// CRC-32 of a frame body as the format defines it (zlib's `crc32(0, ...)`,
/// the ISO-HDLC polynomial), folded with (V)PCLMULQDQ where the CPU has it.
uint32_t frameChecksum(const uint8_t *data, size_t size);

} // namespace greta::rt

#endif // GRETA_RT_TRACE_H

//===- Reader.cpp - The trace reader ----------------------------*- C++ -*-===//
//
// readTrace keeps every frame of records.bin up to the first bad one, checks
// it against the manifest's seal and says why a trace stops
// (docs/TRACE_FORMAT.md).
//
//===----------------------------------------------------------------------===//
#include "TraceInternal.h"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <fcntl.h>
#include <functional>
#include <mutex>
#include <sys/mman.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace greta::rt;
using namespace greta::rt::detail;
using json = nlohmann::json;

//===----------------------------------------------------------------------===//
// Reader
//===----------------------------------------------------------------------===//

namespace {
/// Opens `path` for reading and checks that it is a regular file. O_NONBLOCK:
/// opening a FIFO planted in a trace directory must not wait for a writer.
int openRegularFile(const std::string &path, struct stat &st,
                    std::string &error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return error = "cannot open '" + path + "': " + errnoStr(errno), -1;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return error = "'" + path + "' is not a regular file", -1;
  }
  return fd;
}

bool readWholeFile(const std::string &path, std::vector<uint8_t> &out,
                   std::string &error) {
  struct stat st;
  int fd = openRegularFile(path, st, error);
  if (fd < 0)
    return false;
  out.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return error = "cannot read '" + path + "': " + errnoStr(e), false;
    }
    if (n == 0)
      break; // Shrunk while reading: take what is there.
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  ::close(fd);
  return true;
}

/// A read-only private mapping of a whole file, for the rare path only: the
/// search for a valid frame after a bad one in a run that did not finish.
struct FileMapping {
  const uint8_t *data = nullptr;
  size_t size = 0;
  FileMapping() = default;
  FileMapping(const FileMapping &) = delete;
  FileMapping &operator=(const FileMapping &) = delete;
  ~FileMapping() {
    if (size)
      ::munmap(const_cast<uint8_t *>(data), size);
  }
};

bool mapWholeFile(int fd, size_t size, FileMapping &m, const std::string &path,
                  std::string &error) {
  if (size == 0)
    return true;
  void *p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED)
    return error = "cannot map '" + path + "': " + errnoStr(errno), false;
  m.data = static_cast<const uint8_t *>(p);
  m.size = size;
  return true;
}
} // namespace

TraceFile::~TraceFile() { ::close(fd_); }

bool TraceFile::readAt(uint64_t offset, uint8_t *out, size_t size,
                       std::string &error) const {
  size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd_, out + got, size - got, offset + got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return error = "cannot read '" + path_ + "' at byte " +
                     std::to_string(offset + got) + ": " +
                     (n == 0 ? std::string("the file ends there (it was cut "
                                           "since it was read)")
                             : errnoStr(errno)),
             false;
    got += static_cast<size_t>(n);
  }
  return true;
}

RowPairSink::~RowPairSink() = default;

namespace {
/// Frame headers checked (a CRC each) after a bad frame before giving up.
constexpr unsigned kMaxFrameProbes = 1024;

/// The offset of the first whole frame at or after `from + 1` whose magic,
/// length and CRC are valid, or SIZE_MAX. Such a frame after the bad one at
/// `from` shows corruption: a killed run leaves nothing valid after its
/// torn last frame. The bad frame's own end is tried first, then every
/// offset; `gaveUp` is set after kMaxFrameProbes plausible headers.
size_t findValidFrame(const uint8_t *bytes, size_t size, size_t from,
                      uint32_t version, bool &gaveUp) {
  unsigned probes = 0;
  auto validAt = [&](size_t p) {
    if (p + 12 > size || p + 12 < p)
      return false;
    uint32_t magic = readU32(bytes + p), len = readU32(bytes + p + 4);
    if (magic != kRecordMagic && !(magic == kBlockMagic && version >= 2))
      return false;
    if (len > kMaxBodyBytes || size - p - 12 < len)
      return false;
    ++probes;
    return readU32(bytes + p + 8 + len) == frameChecksum(bytes + p + 8, len);
  };
  if (from + 8 <= size) {
    size_t end = from + 12 + size_t(readU32(bytes + from + 4));
    if (end > from + 12 && end < size && validAt(end))
      return end;
  }
  for (size_t p = from + 1; p + 12 <= size; ++p) {
    const void *g = std::memchr(bytes + p, 'G', size - 12 - p + 1);
    if (!g)
      break;
    p = static_cast<const uint8_t *>(g) - bytes;
    if (validAt(p))
      return p;
    if (probes >= kMaxFrameProbes) {
      gaveUp = true;
      return SIZE_MAX;
    }
  }
  return SIZE_MAX;
}
} // namespace

namespace {
/// A view of bytes someone else keeps alive (the read buffer, during one
/// decode): decodeRecordBody then points into it instead of copying.
std::shared_ptr<const void> borrowed(const uint8_t *p) {
  return std::shared_ptr<const void>(std::shared_ptr<const void>(), p);
}

/// One trace read front to back, a batch at a time: each batch fills one
/// reused buffer from the next frame on (pread) and takes the frames it
/// holds whole, each checked against its CRC and decoded there. A frame
/// larger than the buffer grows it. With keepBlocks nothing else of the file
/// stays in memory: a frame's header and row entries are copied, its values
/// left in the file (BlockRows::file and valuesOffset).
class TraceStream {
public:
  explicit TraceStream(const ReadOptions &o) : options_(o) {}
  /// The manifest, the file header and its run id; false and `error`.
  bool open(const std::string &dir, std::string &error);
  bool done() const { return done_; }
  /// Reads the next batch (sets `batch` and `batchFirst`).
  void readBatch();
  /// The checks at the end (corruption, count, digest) and the contents.
  std::optional<TraceContents> finish(std::string &error);

  /// A frame of the last batch: its block (keepBlocks: tc.blocks[seg]) and
  /// its values in the buffer (nullptr if none).
  struct Frame {
    uint32_t seg;
    const uint8_t *values;
  };
  std::vector<Frame> batch;
  size_t batchFirst = 0; // index of batch[0] among the file's frames
  TraceContents tc;

private:
  void stop(const std::string &why);
  bool fill(size_t want);
  const uint8_t *ptr(size_t fileOffset) const {
    return win_ + (fileOffset - winStart_);
  }
  bool takeFrame(bool block, const uint8_t *body, uint32_t len,
                 const uint8_t *&values, std::string &why);
  void keepBlock(BlockRows &b, const uint8_t *body, uint32_t len);
  void keepRecord(const Record &r, const uint8_t *body);
  uint8_t *keepBytes(size_t n, std::shared_ptr<const void> &owner);
  void keep(BlockRows &&b);

  ReadOptions options_;
  std::string dir_, recordsPath_;
  ManifestSeal seal_;
  std::shared_ptr<TraceFile> file_;
  size_t fileSize_ = 0;
  uint32_t version_ = 0;
  size_t off_ = 0; // the next frame
  size_t firstFrame_ = 0;
  size_t rows_ = 0; // records read so far, block rows included
  size_t frames_ = 0;
  FramingDigest digest_;
  bool done_ = false;
  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_ = 0;                   // usable buffer bytes (64 more allocated)
  const uint8_t *win_ = nullptr;     // the buffered bytes: file offsets
  std::shared_ptr<uint8_t[]> arena_; // kept heads (keepBytes)
  size_t arenaUsed_ = 0;
  bool reserved_ = false;
  size_t winStart_ = 0, winEnd_ = 0; // [winStart_, winEnd_)
};

bool TraceStream::open(const std::string &dir, std::string &error) {
  dir_ = dir;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return error = "trace directory '" + dir + "': " + errnoStr(errno), false;
  if (!S_ISDIR(st.st_mode))
    return error = "'" + dir + "' is not a trace directory", false;
  std::vector<uint8_t> manifestBytes;
  std::string manifestPath = dir + "/manifest.json";
  if (::access(manifestPath.c_str(), F_OK) != 0)
    return error = "'" + dir + "' has no manifest.json (not a trace?)", false;
  if (!readWholeFile(manifestPath, manifestBytes, error))
    return false;
  json mj;
  std::string perr;
  if (!parseManifestText(manifestBytes, mj, perr))
    return error = "'" + manifestPath + "' " + perr, false;
  std::string merr;
  if (!manifestFromJson(mj, tc.manifest, seal_, merr))
    return error = "'" + manifestPath + "': " + merr, false;
  tc.complete = seal_.complete;

  recordsPath_ = dir + "/records.bin";
  int fd = openRegularFile(recordsPath_, st, error);
  if (fd < 0)
    return false;
  // The file is read in order: let readahead run ahead of the reads.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  file_ = std::make_shared<TraceFile>(fd, recordsPath_);
  fileSize_ = static_cast<size_t>(st.st_size);
  uint8_t head[kTraceFileHeaderSize] = {};
  if (!file_->readAt(0, head, std::min<size_t>(fileSize_, sizeof head), error))
    return false;
  if (fileSize_ < kTraceFileHeaderSizeV2 ||
      std::memcmp(head, kTraceFileMagic, 8) != 0)
    return error = "'" + recordsPath_ + "' " +
                   (fileSize_ < kTraceFileHeaderSizeV2
                        ? "is shorter than its 16-byte header (empty trace)"
                        : "does not start with the GRETA trace magic"),
           false;
  version_ = readU32(head + 8);
  uint32_t headerSize = readU32(head + 12);
  if (version_ > kTraceFormatVersion)
    return error = "'" + recordsPath_ + "': trace format version " +
                   std::to_string(version_) +
                   " is newer than this reader supports (version " +
                   std::to_string(kTraceFormatVersion) + "); update GRETA",
           false;
  if (version_ != tc.manifest.formatVersion || version_ == 0)
    return error = "'" + recordsPath_ + "': format version " +
                   std::to_string(version_) + " disagrees with the manifest (" +
                   std::to_string(tc.manifest.formatVersion) + ")",
           false;
  uint32_t minHeader =
      version_ >= 3 ? kTraceFileHeaderSize : kTraceFileHeaderSizeV2;
  if (headerSize < minHeader || headerSize > fileSize_)
    return error = "'" + recordsPath_ + "': bad header size " +
                   std::to_string(headerSize),
           false;
  // The run id ties records.bin to its manifest (format 3 on): records of
  // another run under this manifest would be compared as this run's.
  if (version_ >= 3 && !tc.manifest.runId.empty()) {
    std::string fileRunId = toHex(head + kTraceRunIdOffset, kRunIdBytes);
    if (fileRunId != tc.manifest.runId)
      return error = "'" + manifestPath + "' names run " + tc.manifest.runId +
                     " but '" + recordsPath_ + "' holds run " + fileRunId +
                     ": the two files come from different runs",
             false;
    tc.integrity.runIdTied = true;
  }
  std::vector<uint8_t> header(headerSize);
  if (!file_->readAt(0, header.data(), headerSize, error))
    return false;
  digest_.header(header.data(), headerSize);
  off_ = firstFrame_ = headerSize;
  cap_ = std::max<size_t>(options_.bufferBytes, 64);
  done_ = off_ >= fileSize_;
  return true;
}

// A stop names the index of the first record the bad frame would have
// produced.
void TraceStream::stop(const std::string &why) {
  tc.stopReason = "record " + std::to_string(rows_) + " at byte " +
                  std::to_string(off_) + ": " + why;
  done_ = true;
}

/// Reads [off_, off_ + want) into the buffer, placed so that the bytes keep
/// their file alignment (mod 64): values are as aligned as in the file.
bool TraceStream::fill(size_t want) {
  if (!buf_ || want > cap_) {
    cap_ = std::max(cap_, want);
    buf_.reset(new uint8_t[cap_ + 64]);
  }
  uint8_t *at = buf_.get() + off_ % 64;
  std::string error;
  if (!file_->readAt(off_, at, want, error)) {
    stop(error);
    return false;
  }
  win_ = at;
  winStart_ = off_;
  winEnd_ = off_ + want;
  return true;
}

void TraceStream::readBatch() {
  batch.clear();
  batchFirst = frames_;
  // After the first batch tc.blocks is reserved for the whole file at that
  // batch's frames per byte (reserved, not touched): a vector grown by
  // doubling would touch about twice its pages.
  if (options_.keepBlocks && !reserved_ && frames_ && off_ < fileSize_) {
    reserved_ = true;
    double perByte = double(frames_) / double(off_ - firstFrame_);
    size_t rest = std::min<size_t>(perByte * double(fileSize_ - off_) * 1.02,
                                   size_t(1) << 22);
    tc.blocks.reserve(tc.blocks.size() + rest + 16);
  }
  if (done_ || !fill(std::min(cap_, fileSize_ - off_)))
    return;
  while (off_ < fileSize_) {
    size_t left = fileSize_ - off_;
    if (left < 12)
      return stop("truncated frame (" + std::to_string(left) + " bytes left)");
    if (off_ + 12 > winEnd_)
      return; // the next batch starts here
    const uint8_t *frame = ptr(off_);
    uint32_t magic = readU32(frame), len = readU32(frame + 4);
    bool block = magic == kBlockMagic;
    if (magic != kRecordMagic && !block)
      return stop("bad record magic");
    if (block && version_ < 2)
      return stop("block frame in a version-" + std::to_string(version_) +
                  " trace");
    if (len > kMaxBodyBytes)
      return stop("implausible length " + std::to_string(len));
    if (left - 12 < len)
      return stop("truncated: needs " + std::to_string(len + 12) + " bytes, " +
                  std::to_string(left) + " present");
    if (off_ + 12 + len > winEnd_) {
      if (!batch.empty())
        return; // the next batch starts with it
      // Larger than the buffer: the buffer grows to hold it.
      if (!fill(12 + size_t(len)))
        return;
      frame = ptr(off_);
    }
    const uint8_t *body = frame + 8;
    uint32_t crc = readU32(body + len);
    if (crc != frameChecksum(body, len))
      return stop("checksum mismatch");
    const uint8_t *values = nullptr;
    std::string why;
    if (!takeFrame(block, body, len, values, why))
      return stop(why);
    digest_.frame(magic, len, crc);
    batch.push_back({options_.keepBlocks
                         ? static_cast<uint32_t>(tc.blocks.size() - 1)
                         : UINT32_MAX,
                     values});
    off_ += 12 + size_t(len);
    ++frames_;
  }
  done_ = true;
}

/// Kept frame heads are carved from shared 1 MiB chunks: a block (or a
/// record frame) costs no allocation of its own, and the chunks' pages are
/// touched once (a new page is dear on some hosts: docs/PERFORMANCE.md).
uint8_t *TraceStream::keepBytes(size_t n, std::shared_ptr<const void> &owner) {
  constexpr size_t kChunk = size_t(1) << 20;
  if (n > kChunk / 4) {
    std::shared_ptr<uint8_t[]> own(new uint8_t[n]);
    owner = own;
    return own.get();
  }
  if (!arena_ || arenaUsed_ + n > kChunk) {
    arena_.reset(new uint8_t[kChunk]);
    arenaUsed_ = 0;
  }
  uint8_t *p = arena_.get() + arenaUsed_;
  arenaUsed_ += (n + 7) & ~size_t(7);
  owner = arena_;
  return p;
}

/// Decodes one frame into tc; false and `why` when its body is malformed.
bool TraceStream::takeFrame(bool block, const uint8_t *body, uint32_t len,
                            const uint8_t *&values, std::string &why) {
  std::string derr;
  if (block && options_.keepBlocks) {
    BlockRows b;
    if (!decodeBlockRows(body, len, b, derr))
      return why = "malformed block body: " + derr, false;
    values = b.values;
    rows_ += b.n;
    keepBlock(b, body, len);
  } else if (block) {
    if (!decodeBlockBody(body, len, tc.records, derr))
      return why = "malformed block body: " + derr, false;
    rows_ = tc.records.size();
  } else {
    Record r;
    // keepBlocks: a view of the buffer, whose offset is all that is kept;
    // else the values are copied.
    if (!decodeRecordBody(body, len, r, derr,
                          options_.keepBlocks ? borrowed(body) : nullptr))
      return why = "malformed body: " + derr, false;
    ++rows_;
    if (!options_.keepBlocks) {
      tc.records.push_back(std::move(r));
      return true;
    }
    values = r.values.empty() ? nullptr : r.values.data();
    keepRecord(r, body);
  }
  return true;
}

/// A block as kept: its bytes before the values copied, the values in the
/// file.
void TraceStream::keepBlock(BlockRows &b, const uint8_t *body, uint32_t len) {
  size_t headBytes = b.values ? size_t(b.values - body) : len;
  std::shared_ptr<const void> owner;
  uint8_t *head = keepBytes(headBytes, owner);
  std::memcpy(head, body, headBytes);
  auto rebase = [&](const uint8_t *p) {
    return p ? head + (p - body) : nullptr;
  };
  b.positions = rebase(b.positions);
  b.entries = rebase(b.entries);
  b.topIds = rebase(b.topIds);
  if (b.values) {
    b.file = file_;
    b.valuesOffset = off_ + 8 + headBytes;
    b.values = nullptr;
  }
  b.owner = std::move(owner);
  keep(std::move(b));
}

/// A record frame as kept: a block of one row (entry, top ids; the values
/// in the file).
void TraceStream::keepRecord(const Record &r, const uint8_t *body) {
  BlockRows b;
  b.stage = r.stage;
  b.layer = r.layer;
  b.dtype = r.dtype;
  b.payload = r.payload;
  b.rowShape = r.shape;
  b.elements = 1;
  for (int64_t d : r.shape)
    b.elements *= d;
  b.n = 1;
  b.firstPosition = r.position;
  std::shared_ptr<const void> owner;
  uint8_t *head = keepBytes(sizeof(BlockRow) + 4 * r.top5.size(), owner);
  BlockRow e = toBlockRow(r);
  std::memcpy(head, &e, sizeof e);
  for (size_t i = 0; i < r.top5.size(); ++i)
    writeU32(head + sizeof e + 4 * i, static_cast<uint32_t>(r.top5[i]));
  b.entries = head;
  b.entryBytes = sizeof(BlockRow);
  b.topK = static_cast<uint32_t>(r.top5.size());
  b.topIds = head + sizeof e;
  b.rowBytes = r.values.size();
  if (b.rowBytes) {
    b.file = file_;
    b.valuesOffset = off_ + 8 + size_t(r.values.data() - body);
  }
  b.owner = std::move(owner);
  keep(std::move(b));
}

void TraceStream::keep(BlockRows &&b) { tc.blocks.push_back(std::move(b)); }

std::optional<TraceContents> TraceStream::finish(std::string &error) {
  tc.validBytes = off_;
  if (!tc.stopReason.empty()) {
    // Only the torn tail of a run that did not finish may stop the reader.
    std::string corrupt = "'" + recordsPath_ + "' is corrupt: " + tc.stopReason;
    if (tc.complete)
      return error =
                 corrupt + ", in a run that finished (its manifest says " +
                 (seal_.records ? std::to_string(*seal_.records) + " records)"
                                : std::string("complete)")),
             std::nullopt;
    // The rare path: the rest of the file searched for a valid frame.
    FileMapping map;
    if (!mapWholeFile(file_->fd(), fileSize_, map, recordsPath_, error))
      return std::nullopt;
    bool gaveUp = false;
    size_t next = findValidFrame(map.data, fileSize_, off_, version_, gaveUp);
    if (gaveUp)
      return error = corrupt + ", and more than " +
                     std::to_string(kMaxFrameProbes) +
                     " frame headers follow it (a run cut short ends at its "
                     "first bad frame)",
             std::nullopt;
    if (next != SIZE_MAX)
      return error = corrupt + ", and a valid frame follows at byte " +
                     std::to_string(next) +
                     " (a run cut short ends at its first bad frame)",
             std::nullopt;
  }
  // A finished run names what records.bin must hold: the count (every
  // version) and the records digest (written since the digest exists).
  tc.integrity.recordsDigest = digest_.finalHex();
  if (tc.complete && seal_.records) {
    if (*seal_.records != rows_)
      return error = "'" + recordsPath_ + "' holds " + std::to_string(rows_) +
                     " records but its manifest says the run finished with " +
                     std::to_string(*seal_.records) +
                     ": the file was cut or altered",
             std::nullopt;
    tc.integrity.countVerified = true;
  }
  if (tc.complete && !seal_.recordsDigest.empty()) {
    if (seal_.recordsDigest != tc.integrity.recordsDigest)
      return error = "'" + recordsPath_ +
                     "' does not match the records_digest of its manifest (" +
                     seal_.recordsDigest + "; read " +
                     tc.integrity.recordsDigest + "): the file was altered",
             std::nullopt;
    tc.integrity.digestVerified = true;
  }
  if (rows_ == 0)
    return error = "trace '" + dir_ + "' holds no readable record" +
                   (tc.stopReason.empty() ? std::string()
                                          : " (" + tc.stopReason + ")"),
           std::nullopt;
  return std::move(tc);
}

/// Runs two tasks at once: one on the caller's thread, one on a helper
/// thread kept for the whole read (a batch is too short to start a thread).
class TwoWay {
public:
  TwoWay() : helper_([this] { loop(); }) {}
  ~TwoWay() {
    {
      std::lock_guard<std::mutex> l(m_);
      quit_ = true;
    }
    cv_.notify_all();
    helper_.join();
  }
  template <typename F0, typename F1> void run(F0 &&mine, F1 &&theirs) {
    {
      std::lock_guard<std::mutex> l(m_);
      task_ = std::forward<F1>(theirs);
      busy_ = true;
    }
    cv_.notify_all();
    mine();
    std::unique_lock<std::mutex> l(m_);
    cv_.wait(l, [&] { return !busy_; });
  }

private:
  void loop() {
    std::unique_lock<std::mutex> l(m_);
    for (;;) {
      cv_.wait(l, [&] { return quit_ || busy_; });
      if (quit_)
        return;
      l.unlock();
      task_();
      l.lock();
      busy_ = false;
      cv_.notify_all();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::function<void()> task_;
  bool busy_ = false, quit_ = false;
  std::thread helper_;
};

/// Row j of frames a and b whose hashes differ, for the sink.
struct RowPair {
  TraceStream::Frame a, b;
  uint32_t j;
};

/// The rows of the last batches that sit at the same frame index in both
/// files, in frames of the same (stage, layer, positions).
void pairRows(const TraceStream &sa, const TraceStream &sb,
              std::vector<RowPair> &out) {
  out.clear();
  size_t lo = std::max(sa.batchFirst, sb.batchFirst);
  size_t hi = std::min(sa.batchFirst + sa.batch.size(),
                       sb.batchFirst + sb.batch.size());
  for (size_t i = lo; i < hi; ++i) {
    const TraceStream::Frame &fa = sa.batch[i - sa.batchFirst];
    const TraceStream::Frame &fb = sb.batch[i - sb.batchFirst];
    if (!fa.values || !fb.values)
      continue;
    const BlockRows &a = sa.tc.blocks[fa.seg], &b = sb.tc.blocks[fb.seg];
    if (a.stage != b.stage || a.layer != b.layer || a.n != b.n ||
        a.payload != Payload::Full || b.payload != Payload::Full)
      continue;
    bool samePositions = true;
    for (uint32_t j = 0; j < a.n && samePositions; ++j)
      samePositions = a.position(j) == b.position(j);
    if (!samePositions)
      continue;
    for (uint32_t j = 0; j < a.n; ++j)
      if (std::memcmp(a.sha256(j), b.sha256(j), 32) != 0)
        out.push_back({fa, fb, j});
  }
}
} // namespace

std::optional<TraceContents> greta::rt::readTrace(const std::string &dir,
                                                  std::string &error,
                                                  const ReadOptions &options) {
  TraceStream s(options);
  if (!s.open(dir, error))
    return std::nullopt;
  while (!s.done())
    s.readBatch();
  return s.finish(error);
}

void greta::rt::readTracePair(const std::string &dirA, const std::string &dirB,
                              const ReadOptions &options, RowPairSink *sink,
                              std::optional<TraceContents> &a,
                              std::string &errorA,
                              std::optional<TraceContents> &b,
                              std::string &errorB) {
  ReadOptions o = options;
  o.keepBlocks = true;
  TraceStream sa(o), sb(o);
  bool okA = sa.open(dirA, errorA), okB = sb.open(dirB, errorB);
  bool pairing =
      okA && okB && sink && sink->start(sa.tc.manifest, sb.tc.manifest);
  TwoWay two;
  std::vector<RowPair> rows;
  // Batch by batch: both files read at once, then the rows that pair up
  // judged by both threads, each half of them, while the bytes are in the
  // buffers.
  while ((okA && !sa.done()) || (okB && !sb.done())) {
    two.run(
        [&] {
          if (okA)
            sa.readBatch();
        },
        [&] {
          if (okB)
            sb.readBatch();
        });
    if (!pairing)
      continue;
    pairRows(sa, sb, rows);
    if (rows.empty())
      continue;
    auto judge = [&](unsigned w) {
      size_t half = (rows.size() + 1) / 2;
      size_t from = w ? half : 0, to = w ? rows.size() : half;
      for (size_t x = from; x < to; ++x) {
        const RowPair &p = rows[x];
        const BlockRows &ba = sa.tc.blocks[p.a.seg];
        const BlockRows &bb = sb.tc.blocks[p.b.seg];
        sink->pair(w, ba, p.a.seg, bb, p.b.seg, p.j,
                   p.a.values + p.j * ba.rowBytes,
                   p.b.values + p.j * bb.rowBytes);
      }
    };
    two.run([&] { judge(0); }, [&] { judge(1); });
  }
  if (okA)
    a = sa.finish(errorA);
  if (okB)
    b = sb.finish(errorB);
}

BlockRow greta::rt::toBlockRow(const Record &r) {
  BlockRow e;
  std::memcpy(e.sha256, r.sha256.data(), 32);
  e.nzCount = r.nzCount;
  e.nanCount = r.nanCount;
  e.infCount = r.infCount;
  e.min = r.fingerprint.min;
  e.max = r.fingerprint.max;
  e.mean = r.fingerprint.mean;
  e.l2 = r.fingerprint.l2;
  return e;
}

//===- Writer.cpp - The trace writer ----------------------------*- C++ -*-===//
//
// records.bin = 16-byte file header, then frames
//   [u32 magic "GREC" | "GREB"][u32 length][length bytes of body][u32 crc32]
// (docs/TRACE_FORMAT.md). The writer buffers frames and hands them to the
// OS on flush(); finish() seals the manifest.
//
//===----------------------------------------------------------------------===//
#include "TraceInternal.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

using namespace greta::rt;
using namespace greta::rt::detail;
using json = nlohmann::json;

namespace {

/// writev(2) until done (advancing over partial writes); returns 0 or the
/// errno.
int writevAll(int fd, struct iovec *iov, int count) {
  while (count > 0 && iov->iov_len == 0)
    ++iov, --count;
  while (count > 0) {
    ssize_t w = ::writev(fd, iov, count);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    if (w == 0)
      return EIO;
    size_t done = static_cast<size_t>(w);
    while (count > 0 && done >= iov->iov_len) {
      done -= iov->iov_len;
      ++iov, --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<uint8_t *>(iov->iov_base) + done;
      iov->iov_len -= done;
    }
  }
  return 0;
}

/// write(2) until done; returns 0 or the errno.
int writeAll(int fd, const uint8_t *p, size_t n) {
  struct iovec v = {const_cast<uint8_t *>(p), n};
  return writevAll(fd, &v, 1);
}

/// std::allocator whose resize() leaves new bytes uninitialized: the writer
/// overwrites them at once (a block frame is sized, then filled).
template <typename T> struct NoInitAllocator : std::allocator<T> {
  template <typename U> struct rebind { using other = NoInitAllocator<U>; };
  NoInitAllocator() = default;
  template <typename U> NoInitAllocator(const NoInitAllocator<U> &) {}
  template <typename U, typename... Args> void construct(U *p, Args &&...args) {
    if constexpr (sizeof...(Args) == 0)
      ::new (static_cast<void *>(p)) U;
    else
      ::new (static_cast<void *>(p)) U(std::forward<Args>(args)...);
  }
};
using ByteBuffer = std::vector<uint8_t, NoInitAllocator<uint8_t>>;

/// The error of an openat() in a trace directory, naming the file; a symlink
/// (ELOOP under O_NOFOLLOW) says so.
std::string openError(const std::string &path, int e, const char *what) {
  if (e == ELOOP)
    return "'" + path +
           "' is a symbolic link: refused (a trace directory "
           "holds regular files only)";
  return std::string("cannot ") + what + " '" + path + "': " + errnoStr(e);
}

/// Writes `text` to `name` in the directory `dirFd` (`dir` names it in
/// messages) through a temporary file and rename(2), so a reader sees the
/// old or the new file, never a half one. The temporary is created with
/// O_EXCL | O_NOFOLLOW after removing whatever had its name (a symlink
/// planted there is unlinked, never written through); the caller holds the
/// directory's lock, so no other writer uses the name.
bool writeFileAtomic(int dirFd, const std::string &dir, const std::string &name,
                     const std::string &text, std::string &error) {
  std::string tmpName = name + ".tmp";
  std::string tmp = dir + "/" + tmpName, path = dir + "/" + name;
  if (::unlinkat(dirFd, tmpName.c_str(), 0) != 0 && errno != ENOENT)
    return error = "cannot remove '" + tmp + "': " + errnoStr(errno), false;
  int fd = ::openat(dirFd, tmpName.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    return error = openError(tmp, errno, "create"), false;
  int e =
      writeAll(fd, reinterpret_cast<const uint8_t *>(text.data()), text.size());
  if (!e && ::fsync(fd) != 0)
    e = errno;
  if (::close(fd) != 0 && !e)
    e = errno;
  if (e) {
    ::unlinkat(dirFd, tmpName.c_str(), 0);
    return error = "cannot write '" + tmp + "': " + errnoStr(e), false;
  }
  // rename(2) replaces a symlink at `name` itself, never its target.
  if (::renameat(dirFd, tmpName.c_str(), dirFd, name.c_str()) != 0) {
    e = errno;
    ::unlinkat(dirFd, tmpName.c_str(), 0);
    return error =
               "cannot rename '" + tmp + "' to '" + path + "': " + errnoStr(e),
           false;
  }
  return true;
}

bool makeDirs(const std::string &dir, std::string &error) {
  std::string cur;
  size_t i = 0;
  while (i <= dir.size()) {
    size_t j = dir.find('/', i);
    if (j == std::string::npos)
      j = dir.size();
    cur = dir.substr(0, j);
    if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
      return error = "cannot create trace directory '" + cur +
                     "': " + errnoStr(errno),
             false;
    i = j + 1;
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return error = "'" + dir + "' is not a directory", false;
  return true;
}

/// 128 random bits from the kernel (getrandom(2)): a run id two runs never
/// share.
bool drawRunId(uint8_t (&out)[kRunIdBytes], std::string &error) {
  size_t got = 0;
  while (got < kRunIdBytes) {
    ssize_t n = ::getrandom(out + got, kRunIdBytes - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return error = std::string("cannot draw a run id (getrandom): ") +
                     errnoStr(errno),
             false;
    got += static_cast<size_t>(n);
  }
  return true;
}

class FileTraceWriter final : public TraceWriter {
public:
  ~FileTraceWriter() override {
    // Not finished (an error or an early exit): keep what was appended.
    if (fd_ >= 0) {
      std::string ignored;
      flush(ignored);
      ::close(fd_);
    }
    if (lockFd_ >= 0)
      ::close(lockFd_); // Releases the flock.
    if (dirFd_ >= 0)
      ::close(dirFd_);
  }

  static std::unique_ptr<TraceWriter> make(const std::string &dir,
                                           const Manifest &manifest,
                                           bool overwrite, std::string &error);

  bool append(const Record &r, std::string &error) override {
    if (fd_ < 0)
      return error = closedReason_, false;
    size_t start = buf_.size();
    buf_.resize(start + 8);
    encodeRecordBodyTo(r, buf_);
    size_t len = buf_.size() - start - 8;
    writeU32(buf_.data() + start, kRecordMagic);
    writeU32(buf_.data() + start + 4, static_cast<uint32_t>(len));
    uint32_t crc = frameChecksum(buf_.data() + start + 8, len);
    buf_.resize(buf_.size() + 4);
    writeU32(buf_.data() + buf_.size() - 4, crc);
    digest_.frame(kRecordMagic, static_cast<uint32_t>(len), crc);
    ++records_;
    if (buf_.size() >= kBufferBytes || ++sinceFlush_ >= kFlushEveryRecords)
      return flush(error);
    return true;
  }

  bool appendBlock(const RecordBlock &b, std::string &error) override {
    if (fd_ < 0)
      return error = closedReason_, false;
    BlockPlan plan;
    if (!planBlock(b, plan, error))
      return false;
    size_t n = static_cast<size_t>(b.n);
    // Rows per frame: the body stays within maxBlockBody_, and its part
    // before the values within the buffer, so a frame larger than the buffer
    // is a head from the buffer plus the caller's values (one writev).
    // Non-contiguous positions cost 8 bytes a row; counted for every row.
    size_t headRow = 8 + plan.entry + 4 * static_cast<size_t>(b.topK);
    size_t row = headRow + plan.rowBytes;
    size_t byBody =
        maxBlockBody_ > plan.fixed ? (maxBlockBody_ - plan.fixed) / row : 0;
    size_t byHead = (kBufferBytes - 12 - plan.fixed) / headRow;
    size_t perFrame = std::max<size_t>(1, std::min(byBody, byHead));
    for (size_t first = 0; first < n;) {
      size_t m = std::min(perFrame, n - first);
      bool contiguous = isContiguous(b.positions + first, m);
      size_t head = blockHeadBytes(plan, b, m, contiguous);
      size_t values = m * plan.rowBytes;
      size_t frame = 12 + head + values;
      // A buffer this frame would overflow goes out first.
      if (!buf_.empty() && buf_.size() + frame > kBufferBytes && !flush(error))
        return false;
      size_t start = buf_.size();
      const uint8_t *v = values ? b.values + first * plan.rowBytes : nullptr;
      if (frame <= kBufferBytes) {
        buf_.resize(start + frame);
        uint8_t *p = buf_.data() + start;
        writeU32(p, kBlockMagic);
        writeU32(p + 4, static_cast<uint32_t>(head + values));
        writeBlockHead(p + 8, b, plan, first, m, contiguous);
        if (values)
          std::memcpy(p + 8 + head, v, values);
        uint32_t crc = frameChecksum(p + 8, head + values);
        writeU32(p + 8 + head + values, crc);
        digest_.frame(kBlockMagic, static_cast<uint32_t>(head + values), crc);
      } else {
        // Larger than the buffer (the buffer is empty now): written at once.
        buf_.resize(8 + head);
        uint8_t *p = buf_.data();
        writeU32(p, kBlockMagic);
        writeU32(p + 4, static_cast<uint32_t>(head + values));
        writeBlockHead(p + 8, b, plan, first, m, contiguous);
        uint8_t crc[4];
        writeU32(crc, crcUpdate(crcUpdate(0, p + 8, head), v, values));
        digest_.frame(kBlockMagic, static_cast<uint32_t>(head + values),
                      readU32(crc));
        struct iovec iov[3] = {
            {p, 8 + head}, {const_cast<uint8_t *>(v), values}, {crc, 4}};
        int e = writevAll(fd_, iov, 3);
        if (e)
          return fail("write", e, error);
        bytes_ += frame;
        buf_.clear();
      }
      records_ += m;
      sinceFlush_ += m;
      first += m;
      if ((buf_.size() >= kBufferBytes || sinceFlush_ >= kFlushEveryRecords) &&
          !flush(error))
        return false;
    }
    return true;
  }

  void setMaxBlockBodyBytes(size_t bytes) override {
    maxBlockBody_ = std::min<size_t>(std::max<size_t>(bytes, 1), kMaxBodyBytes);
  }

  bool flush(std::string &error) override {
    if (fd_ < 0)
      return error = closedReason_, false;
    sinceFlush_ = 0;
    if (buf_.empty())
      return true;
    int e = writeAll(fd_, buf_.data(), buf_.size());
    if (e)
      return fail("write", e, error);
    bytes_ += buf_.size();
    buf_.clear();
    return true;
  }

  void setGeneratedIds(std::vector<int64_t> ids) override {
    manifest_.generatedIds = std::move(ids);
  }

  bool finish(std::string &error) override {
    if (!flush(error))
      return false;
    if (::fsync(fd_) != 0)
      return fail("fsync", errno, error);
    if (::close(fd_) != 0) {
      fd_ = -1;
      return fail("close", errno, error);
    }
    fd_ = -1;
    closedReason_ = "trace '" + dir_ + "' is already finished";
    ManifestSeal seal;
    seal.complete = true;
    seal.records = records_;
    seal.recordsDigest = digest_.finalHex();
    std::string text = manifestToJson(manifest_, seal).dump(2) + "\n";
    if (!writeFileAtomic(dirFd_, dir_, "manifest.json", text, error)) {
      error = "trace '" + dir_ + "': " + error;
      return false;
    }
    return true;
  }

  uint64_t bytesWritten() const override { return bytes_; }
  uint64_t recordsWritten() const override { return records_; }

private:
  static constexpr size_t kBufferBytes = 1 << 20;
  static constexpr unsigned kFlushEveryRecords = 4096;

  bool fail(const char *what, int e, std::string &error) {
    error = "trace '" + dir_ + "/records.bin': " + what +
            " failed: " + errnoStr(e) + " (" + std::to_string(bytes_) +
            " bytes already written stay readable)";
    closedReason_ = error;
    buf_.clear();
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
    return false;
  }

  std::string dir_;
  Manifest manifest_;
  int fd_ = -1, lockFd_ = -1;
  int dirFd_ = -1; // every file is opened relative to it, O_NOFOLLOW
  ByteBuffer buf_;
  uint64_t bytes_ = 0, records_ = 0;
  FramingDigest digest_; // of every frame appended (written at finish)
  size_t sinceFlush_ = 0;
  size_t maxBlockBody_ = kMaxBlockBodyBytes;
  std::string closedReason_;
};

std::unique_ptr<TraceWriter> FileTraceWriter::make(const std::string &dir,
                                                   const Manifest &manifest,
                                                   bool overwrite,
                                                   std::string &error) {
  if (dir.empty())
    return error = "empty trace directory name", nullptr;
  if (!makeDirs(dir, error))
    return nullptr;
  std::unique_ptr<FileTraceWriter> w(new FileTraceWriter());
  w->dir_ = dir;
  w->manifest_ = manifest;
  w->manifest_.formatVersion = kTraceFormatVersion;
  uint8_t runId[kRunIdBytes];
  if (!drawRunId(runId, error))
    return nullptr;
  w->manifest_.runId = toHex(runId, kRunIdBytes);
  if (w->manifest_.createdAt.empty()) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    char buf[32];
    gmtime_r(&now, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    w->manifest_.createdAt = buf;
  }
  std::string lockPath = dir + "/.lock";
  std::string recordsPath = dir + "/records.bin";
  std::string manifestPath = dir + "/manifest.json";
  // Look before touching anything: a directory holding a trace is refused
  // (without `overwrite`) before its .lock is created or written. lstat: a
  // symlink named like a trace file counts as one, and is not followed.
  auto holdsTrace = [&] {
    struct stat st;
    return ::lstat(recordsPath.c_str(), &st) == 0 ||
           ::lstat(manifestPath.c_str(), &st) == 0;
  };
  std::string holdsError = "trace directory '" + dir +
                           "' already holds a trace (remove it or overwrite)";
  if (!overwrite && holdsTrace())
    return error = holdsError, nullptr;
  // Every file is opened relative to the directory, with O_NOFOLLOW: a
  // symlink planted in a trace directory is refused or replaced, never
  // written through.
  w->dirFd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->dirFd_ < 0)
    return error =
               "cannot open trace directory '" + dir + "': " + errnoStr(errno),
           nullptr;
  w->lockFd_ =
      ::openat(w->dirFd_, ".lock",
               O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
  if (w->lockFd_ < 0)
    return error = openError(lockPath, errno, "create lock file"), nullptr;
  struct stat lockStat;
  if (::fstat(w->lockFd_, &lockStat) != 0 || !S_ISREG(lockStat.st_mode))
    return error = "'" + lockPath + "' is not a regular file", nullptr;
  if (::flock(w->lockFd_, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) {
      char pid[32] = {0};
      ssize_t n = ::pread(w->lockFd_, pid, sizeof pid - 1, 0);
      std::string holder = n > 0 ? std::string(pid, n) : "unknown";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
        holder.pop_back();
      return error = "trace directory '" + dir +
                     "' is locked by another writer (pid " + holder + ")",
             nullptr;
    }
    return error = "cannot lock '" + lockPath + "': " + errnoStr(e), nullptr;
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(w->lockFd_, 0) != 0 ||
      ::pwrite(w->lockFd_, pid.data(), pid.size(), 0) < 0) {
    // The lock holds without the pid; only the message to a second writer
    // is poorer.
  }
  // Again under the lock: a writer may have finished since the first look.
  if (!overwrite && holdsTrace())
    return error = holdsError, nullptr;
  // Without this, a write past RLIMIT_FSIZE kills the process (SIGXFSZ)
  // instead of failing with EFBIG and keeping the trace.
  struct sigaction old;
  if (::sigaction(SIGXFSZ, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
    ::signal(SIGXFSZ, SIG_IGN);

  // Manifest first (complete: false), then the records file, created anew
  // (O_EXCL after the unlink: a file, or symlink, put there meanwhile is an
  // error, not a target).
  if (::unlinkat(w->dirFd_, "records.bin", 0) != 0 && errno != ENOENT)
    return error = "cannot remove '" + recordsPath + "': " + errnoStr(errno),
           nullptr;
  std::string text =
      manifestToJson(w->manifest_, ManifestSeal()).dump(2) + "\n";
  if (!writeFileAtomic(w->dirFd_, dir, "manifest.json", text, error))
    return error = "trace '" + dir + "': " + error, nullptr;
  w->fd_ = ::openat(
      w->dirFd_, "records.bin",
      O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (w->fd_ < 0)
    return error = openError(recordsPath, errno, "create"), nullptr;
  uint8_t header[kTraceFileHeaderSize] = {0};
  std::memcpy(header, kTraceFileMagic, 8);
  writeU32(header + 8, kTraceFormatVersion);
  writeU32(header + 12, kTraceFileHeaderSize);
  std::memcpy(header + kTraceRunIdOffset, runId, kRunIdBytes);
  w->buf_.reserve(kBufferBytes + 4096);
  w->buf_.assign(header, header + kTraceFileHeaderSize);
  w->digest_.header(header, kTraceFileHeaderSize);
  // The header goes out at once: an empty trace is still recognizable.
  if (!w->flush(error))
    return nullptr;
  return w;
}
} // namespace

TraceWriter::~TraceWriter() = default;

std::unique_ptr<TraceWriter> TraceWriter::create(const std::string &dir,
                                                 const Manifest &manifest,
                                                 bool overwrite,
                                                 std::string &error) {
  return FileTraceWriter::make(dir, manifest, overwrite, error);
}

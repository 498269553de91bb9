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
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/// A read-only private mapping of a whole file; unmapped with the last
/// reference (records' value views share it).
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

std::shared_ptr<FileMapping> mapWholeFile(const std::string &path,
                                          std::string &error) {
  struct stat st;
  int fd = openRegularFile(path, st, error);
  if (fd < 0)
    return nullptr;
  auto m = std::make_shared<FileMapping>();
  if (st.st_size == 0) { // mmap refuses length 0; an empty file has no data.
    ::close(fd);
    return m;
  }
  size_t size = static_cast<size_t>(st.st_size);
  // Read-only and private: the pages are the page cache's, never copied.
  void *p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd); // The mapping keeps the file.
  if (p == MAP_FAILED)
    return error = "cannot map '" + path + "': " + errnoStr(e), nullptr;
  // Every byte is checksummed next: start readahead in case the file is not
  // in the page cache. Not MADV_SEQUENTIAL: values are read again later, and
  // it made no difference. (MAP_POPULATE and MADV_POPULATE_READ measured
  // ~25 % slower than faulting pages in during the checksum pass.)
  ::madvise(p, size, MADV_WILLNEED);
  m->data = static_cast<const uint8_t *>(p);
  m->size = size;
  return m;
}
} // namespace

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

std::optional<TraceContents> greta::rt::readTrace(const std::string &dir,
                                                  std::string &error,
                                                  const ReadOptions &options) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return error = "trace directory '" + dir + "': " + errnoStr(errno),
           std::nullopt;
  if (!S_ISDIR(st.st_mode))
    return error = "'" + dir + "' is not a trace directory", std::nullopt;
  TraceContents tc;
  std::vector<uint8_t> manifestBytes;
  std::string manifestPath = dir + "/manifest.json";
  if (::access(manifestPath.c_str(), F_OK) != 0)
    return error = "'" + dir + "' has no manifest.json (not a trace?)",
           std::nullopt;
  if (!readWholeFile(manifestPath, manifestBytes, error))
    return std::nullopt;
  json mj;
  std::string perr;
  if (!parseManifestText(manifestBytes, mj, perr))
    return error = "'" + manifestPath + "' " + perr, std::nullopt;
  std::string merr;
  ManifestSeal seal;
  if (!manifestFromJson(mj, tc.manifest, seal, merr))
    return error = "'" + manifestPath + "': " + merr, std::nullopt;
  tc.complete = seal.complete;

  std::string recordsPath = dir + "/records.bin";
  std::shared_ptr<FileMapping> map = mapWholeFile(recordsPath, error);
  if (!map)
    return std::nullopt;
  // Values of `full` records view the mapping and keep it alive.
  std::shared_ptr<const void> owner = map;
  const uint8_t *bytes = map->data;
  size_t fileSize = map->size;
  if (fileSize < kTraceFileHeaderSizeV2 ||
      std::memcmp(bytes, kTraceFileMagic, 8) != 0)
    return error = "'" + recordsPath + "' " +
                   (fileSize < kTraceFileHeaderSizeV2
                        ? "is shorter than its 16-byte header (empty trace)"
                        : "does not start with the GRETA trace magic"),
           std::nullopt;
  uint32_t version = readU32(bytes + 8);
  uint32_t headerSize = readU32(bytes + 12);
  if (version > kTraceFormatVersion)
    return error = "'" + recordsPath + "': trace format version " +
                   std::to_string(version) +
                   " is newer than this reader supports (version " +
                   std::to_string(kTraceFormatVersion) + "); update GRETA",
           std::nullopt;
  if (version != tc.manifest.formatVersion || version == 0)
    return error = "'" + recordsPath + "': format version " +
                   std::to_string(version) + " disagrees with the manifest (" +
                   std::to_string(tc.manifest.formatVersion) + ")",
           std::nullopt;
  uint32_t minHeader =
      version >= 3 ? kTraceFileHeaderSize : kTraceFileHeaderSizeV2;
  if (headerSize < minHeader || headerSize > fileSize)
    return error = "'" + recordsPath + "': bad header size " +
                   std::to_string(headerSize),
           std::nullopt;
  // The run id ties records.bin to its manifest (format 3 on): records of
  // another run under this manifest would be compared as this run's.
  if (version >= 3 && !tc.manifest.runId.empty()) {
    std::string fileRunId = toHex(bytes + kTraceRunIdOffset, kRunIdBytes);
    if (fileRunId != tc.manifest.runId)
      return error = "'" + manifestPath + "' names run " + tc.manifest.runId +
                     " but '" + recordsPath + "' holds run " + fileRunId +
                     ": the two files come from different runs",
             std::nullopt;
    tc.integrity.runIdTied = true;
  }

  size_t off = headerSize;
  FramingDigest digest;
  digest.header(bytes, headerSize);
  size_t rows = 0; // records read so far, block rows included
  // A stop names the index of the first record the bad frame would have
  // produced.
  auto stop = [&](const std::string &why) {
    tc.stopReason = "record " + std::to_string(rows) + " at byte " +
                    std::to_string(off) + ": " + why;
  };
  while (off < fileSize) {
    size_t left = fileSize - off;
    if (left < 12) {
      stop("truncated frame (" + std::to_string(left) + " bytes left)");
      break;
    }
    uint32_t magic = readU32(bytes + off);
    uint32_t len = readU32(bytes + off + 4);
    bool block = magic == kBlockMagic;
    if (magic != kRecordMagic && !block) {
      stop("bad record magic");
      break;
    }
    if (block && version < 2) {
      stop("block frame in a version-" + std::to_string(version) + " trace");
      break;
    }
    if (len > kMaxBodyBytes) {
      stop("implausible length " + std::to_string(len));
      break;
    }
    if (left - 12 < len) {
      stop("truncated: needs " + std::to_string(len + 12) + " bytes, " +
           std::to_string(left) + " present");
      break;
    }
    const uint8_t *body = bytes + off + 8;
    uint32_t crc = readU32(body + len);
    if (crc != frameChecksum(body, len)) {
      stop("checksum mismatch");
      break;
    }
    std::string derr;
    if (block && options.keepBlocks) {
      BlockRows b;
      if (!decodeBlockRows(body, len, b, derr, owner)) {
        stop("malformed block body: " + derr);
        break;
      }
      rows += b.n;
      tc.blocks.push_back(std::move(b));
    } else if (block) {
      if (!decodeBlockBody(body, len, tc.records, derr, owner)) {
        stop("malformed block body: " + derr);
        break;
      }
      rows = tc.records.size();
    } else {
      Record r;
      if (!decodeRecordBody(body, len, r, derr, owner)) {
        stop("malformed body: " + derr);
        break;
      }
      tc.records.push_back(std::move(r));
      ++rows;
    }
    digest.frame(magic, len, crc);
    off += 12 + len;
  }
  tc.validBytes = off;
  if (!tc.stopReason.empty()) {
    // Only the torn tail of a run that did not finish may stop the reader.
    std::string corrupt = "'" + recordsPath + "' is corrupt: " + tc.stopReason;
    if (tc.complete)
      return error = corrupt + ", in a run that finished (its manifest says " +
                     (seal.records ? std::to_string(*seal.records) + " records)"
                                   : std::string("complete)")),
             std::nullopt;
    bool gaveUp = false;
    size_t next = findValidFrame(bytes, fileSize, off, version, gaveUp);
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
  tc.integrity.recordsDigest = digest.finalHex();
  if (tc.complete && seal.records) {
    if (*seal.records != rows)
      return error = "'" + recordsPath + "' holds " + std::to_string(rows) +
                     " records but its manifest says the run finished with " +
                     std::to_string(*seal.records) +
                     ": the file was cut or altered",
             std::nullopt;
    tc.integrity.countVerified = true;
  }
  if (tc.complete && !seal.recordsDigest.empty()) {
    if (seal.recordsDigest != tc.integrity.recordsDigest)
      return error = "'" + recordsPath +
                     "' does not match the records_digest of its manifest (" +
                     seal.recordsDigest + "; read " +
                     tc.integrity.recordsDigest + "): the file was altered",
             std::nullopt;
    tc.integrity.digestVerified = true;
  }
  if (rows == 0)
    return error = "trace '" + dir + "' holds no readable record" +
                   (tc.stopReason.empty() ? std::string()
                                          : " (" + tc.stopReason + ")"),
           std::nullopt;
  return tc;
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

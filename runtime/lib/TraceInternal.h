//===- TraceInternal.h - The trace format's shared internals ----*- C++ -*-===//
//
// Private to runtime/lib: what Checksum.cpp, Encoding.cpp, Manifest.cpp,
// Writer.cpp and Reader.cpp share (docs/TRACE_FORMAT.md). Not installed.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RUNTIME_LIB_TRACEINTERNAL_H
#define GRETA_RUNTIME_LIB_TRACEINTERNAL_H

#include "greta/rt/Sha256.h"
#include "greta/rt/Trace.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace greta::rt::detail {

/// Continues CRC-32 `crc` (zlib's convention: 0 for no bytes yet) over
/// [data, data + size): crcUpdate(crcUpdate(0, a), b) is the CRC of a + b.
uint32_t crcUpdate(uint32_t crc, const uint8_t *data, size_t size);

// Encoding: explicit little-endian fields, never a struct memcpy, so the
// format does not depend on the compiler's layout.
template <typename Vec, typename T> void putLE(Vec &out, T v) {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  U u = static_cast<U>(v);
  for (size_t i = 0; i < sizeof(T); ++i)
    out.push_back(static_cast<uint8_t>(u >> (8 * i)));
}
template <typename Vec> void putF64(Vec &out, double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  putLE(out, u);
}

inline uint32_t readU32(const uint8_t *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
         uint32_t(p[3]) << 24;
}
inline void writeU32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline constexpr uint32_t kMaxRank = 8;
inline constexpr uint32_t kMaxTop = 64;
// A body larger than this is corruption, not a record (a row of 16M f64s).
inline constexpr uint32_t kMaxBodyBytes = 1u << 30;

/// A record frame's body (docs/TRACE_FORMAT.md) appended to `out`.
template <typename Vec> void encodeRecordBodyTo(const Record &r, Vec &out) {
  out.push_back(static_cast<uint8_t>(r.stage));
  out.push_back(static_cast<uint8_t>(r.dtype));
  out.push_back(static_cast<uint8_t>(r.payload));
  out.push_back(0); // flags, reserved
  putLE<Vec, int64_t>(out, r.layer);
  putLE<Vec, int64_t>(out, r.position);
  putLE<Vec, uint32_t>(out, static_cast<uint32_t>(r.shape.size()));
  for (int64_t d : r.shape)
    putLE<Vec, int64_t>(out, d);
  out.insert(out.end(), r.sha256.begin(), r.sha256.end());
  putLE<Vec, int64_t>(out, r.nzCount);
  putLE<Vec, int64_t>(out, r.nanCount);
  putLE<Vec, int64_t>(out, r.infCount);
  putF64(out, r.fingerprint.min);
  putF64(out, r.fingerprint.max);
  putF64(out, r.fingerprint.mean);
  putF64(out, r.fingerprint.l2);
  putLE<Vec, uint32_t>(out, static_cast<uint32_t>(r.top5.size()));
  for (int32_t t : r.top5)
    putLE<Vec, int32_t>(out, t);
  putLE<Vec, uint64_t>(out, r.values.size());
  out.insert(out.end(), r.values.begin(), r.values.end());
}

/// The sizes of a valid block's frames.
struct BlockPlan {
  size_t entry = 0;    // bytes of one row entry in the body
  size_t rowBytes = 0; // value bytes of one row (payload full), else 0
  size_t fixed = 0;    // tags, layer, rank, shape, n and k: 24 + 8r bytes
};

/// Body bytes of a frame of m rows, without the values.
size_t blockHeadBytes(const BlockPlan &plan, const RecordBlock &b, size_t m,
                      bool contiguous);
/// Positions p[0..m) are p[0], p[0] + 1, ...
bool isContiguous(const int64_t *p, size_t m);
/// Checks a block and sizes its frames.
bool planBlock(const RecordBlock &b, BlockPlan &plan, std::string &error);
/// Writes the body of a frame of rows [first, first + m) of `b` up to the
/// values (blockHeadBytes bytes) at `p`.
void writeBlockHead(uint8_t *p, const RecordBlock &b, const BlockPlan &plan,
                    size_t first, size_t m, bool contiguous);

/// The manifest's account of records.bin, written by finish().
struct ManifestSeal {
  bool complete = false;
  std::optional<uint64_t> records; // finished runs
  std::string recordsDigest;       // finished runs (FramingDigest)
};

nlohmann::json manifestToJson(const Manifest &m, const ManifestSeal &seal);
/// The JSON text of a manifest, refused when nested too deep. `error`
/// completes "'<path>' ...".
bool parseManifestText(const std::vector<uint8_t> &bytes, nlohmann::json &out,
                       std::string &error);
bool manifestFromJson(const nlohmann::json &j, Manifest &m, ManifestSeal &seal,
                      std::string &error);

inline std::string errnoStr(int e) { return std::strerror(e); }

/// The records digest (docs/TRACE_FORMAT.md): SHA-256 over records.bin's
/// file header, then the 12 framing bytes (u32 magic, length, CRC-32) of
/// every frame in file order. With each frame's CRC over its body it pins
/// the whole file (no frame cut, dropped, added, moved or altered), yet
/// costs 12 bytes of hashing a frame: the writer and the reader compute it
/// as they go, without reading a byte twice (a SHA-256 of every byte would
/// run at ~1.6 GB/s here, a tenth of the reader's CRC pass).
class FramingDigest {
public:
  void header(const uint8_t *p, size_t n) { sha_.update(p, n); }
  void frame(uint32_t magic, uint32_t length, uint32_t crc) {
    if (n_ + 12 > sizeof buf_) {
      sha_.update(buf_, n_);
      n_ = 0;
    }
    writeU32(buf_ + n_, magic);
    writeU32(buf_ + n_ + 4, length);
    writeU32(buf_ + n_ + 8, crc);
    n_ += 12;
  }
  std::string finalHex() {
    sha_.update(buf_, n_);
    n_ = 0;
    return sha_.finalHex();
  }

private:
  Sha256Stream sha_;
  uint8_t buf_[12 * 340]; // frames hashed together
  size_t n_ = 0;
};

} // namespace greta::rt::detail

#endif // GRETA_RUNTIME_LIB_TRACEINTERNAL_H

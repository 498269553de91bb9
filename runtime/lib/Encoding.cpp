//===- Encoding.cpp - Record and block frame bodies -------------*- C++ -*-===//
//
// The bodies of record frames (one row) and block frames (format version 2,
// n rows of one traced tensor), field by field (docs/TRACE_FORMAT.md).
//
//===----------------------------------------------------------------------===//
#include "TraceInternal.h"

#include "greta/rt/Half.h"

#include <cstring>
#include <stdexcept>

using namespace greta::rt;
using namespace greta::rt::detail;
using json = nlohmann::json;

//===----------------------------------------------------------------------===//
// Record
//===----------------------------------------------------------------------===//

int64_t Record::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string Record::sha256Hex() const {
  return toHex(sha256.data(), sha256.size());
}

bool greta::rt::operator==(const ValueBytes &a, const ValueBytes &b) {
  return a.size() == b.size() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

std::vector<double> Record::valuesAsDouble() const {
  std::vector<double> out;
  if (payload != Payload::Full)
    return out;
  size_t es = dtypeSize(dtype);
  size_t n = values.size() / es;
  out.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t *p = values.data() + i * es;
    switch (dtype) {
    case DType::F32: {
      float f;
      std::memcpy(&f, p, 4);
      out[i] = f;
      break;
    }
    case DType::F64:
      std::memcpy(&out[i], p, 8);
      break;
    case DType::F16:
    case DType::BF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      out[i] = dtype == DType::F16 ? halfBitsToFloat(h) : bf16BitsToFloat(h);
      break;
    }
    }
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Encoding: explicit little-endian fields, never a struct memcpy, so the
// format does not depend on the compiler's layout.
//===----------------------------------------------------------------------===//

namespace {

class Reader {
public:
  Reader(const uint8_t *p, size_t n) : p_(p), n_(n) {}
  template <typename T> bool get(T &v) {
    if (n_ - pos_ < sizeof(T))
      return false;
    std::make_unsigned_t<T> u = 0;
    for (size_t i = 0; i < sizeof(T); ++i)
      u |= static_cast<std::make_unsigned_t<T>>(p_[pos_ + i]) << (8 * i);
    v = static_cast<T>(u);
    pos_ += sizeof(T);
    return true;
  }
  bool getF64(double &d) {
    uint64_t u;
    if (!get(u))
      return false;
    std::memcpy(&d, &u, 8);
    return true;
  }
  bool bytes(uint8_t *dst, size_t n) {
    if (n_ - pos_ < n)
      return false;
    std::memcpy(dst, p_ + pos_, n);
    pos_ += n;
    return true;
  }
  size_t left() const { return n_ - pos_; }
  size_t pos() const { return pos_; }

private:
  const uint8_t *p_;
  size_t n_, pos_ = 0;
};

/// The four tag bytes that open a record and a block body: stage, dtype,
/// payload (validated) and flags (left to the caller).
bool readTags(Reader &in, uint8_t &stage, uint8_t &dtype, uint8_t &payload,
              uint8_t &flags, std::string &error) {
  if (!in.get(stage) || !in.get(dtype) || !in.get(payload) || !in.get(flags))
    return error = "body ends inside the tag bytes", false;
  if (stage >= kNumStages)
    return error = "unknown stage " + std::to_string(stage), false;
  if (dtype > static_cast<uint8_t>(DType::BF16))
    return error = "unknown dtype " + std::to_string(dtype), false;
  if (payload > static_cast<uint8_t>(Payload::Full))
    return error = "unknown payload " + std::to_string(payload), false;
  return true;
}

} // namespace

void greta::rt::encodeRecordBody(const Record &r, std::vector<uint8_t> &out) {
  encodeRecordBodyTo(r, out);
}

bool greta::rt::decodeRecordBody(const uint8_t *data, size_t size, Record &r,
                                 std::string &error,
                                 std::shared_ptr<const void> owner) {
  Reader in(data, size);
  uint8_t stage, dtype, payload, flags;
  auto trunc = [&](const char *what) {
    error = std::string("body ends inside ") + what;
    return false;
  };
  if (!readTags(in, stage, dtype, payload, flags, error))
    return false;
  r.stage = static_cast<Stage>(stage);
  r.dtype = static_cast<DType>(dtype);
  r.payload = static_cast<Payload>(payload);
  uint32_t rank;
  if (!in.get(r.layer) || !in.get(r.position) || !in.get(rank))
    return trunc("layer/position/rank");
  if (rank > kMaxRank)
    return error = "rank " + std::to_string(rank) + " too large", false;
  r.shape.assign(rank, 0);
  for (auto &d : r.shape)
    if (!in.get(d))
      return trunc("the shape");
  // The element count must fit comfortably in int64 (numElements() and
  // every consumer multiply the dims); a row is never near 2^48 elements.
  uint64_t elements = 1;
  for (int64_t d : r.shape) {
    if (d < 0)
      return error = "negative dimension " + std::to_string(d), false;
    if (d != 0 && elements > (uint64_t(1) << 48) / static_cast<uint64_t>(d))
      return error = "shape too large (more than 2^48 elements)", false;
    elements *= static_cast<uint64_t>(d);
  }
  if (!in.bytes(r.sha256.data(), 32))
    return trunc("the sha256");
  if (!in.get(r.nzCount) || !in.get(r.nanCount) || !in.get(r.infCount) ||
      !in.getF64(r.fingerprint.min) || !in.getF64(r.fingerprint.max) ||
      !in.getF64(r.fingerprint.mean) || !in.getF64(r.fingerprint.l2))
    return trunc("the counts/fingerprint");
  uint32_t ntop;
  if (!in.get(ntop))
    return trunc("the top-k count");
  if (ntop > kMaxTop)
    return error = "top-k count " + std::to_string(ntop) + " too large", false;
  r.top5.assign(ntop, 0);
  for (auto &t : r.top5)
    if (!in.get(t))
      return trunc("the top-k ids");
  uint64_t nvalues;
  if (!in.get(nvalues))
    return trunc("the values length");
  if (nvalues != in.left())
    return error = "values length " + std::to_string(nvalues) + " but " +
                   std::to_string(in.left()) + " bytes remain",
           false;
  if (nvalues) {
    uint64_t expect = 1;
    for (int64_t d : r.shape)
      expect *= static_cast<uint64_t>(d);
    if (expect * dtypeSize(r.dtype) != nvalues)
      return error = "values hold " + std::to_string(nvalues) +
                     " bytes, shape and dtype need " +
                     std::to_string(expect * dtypeSize(r.dtype)),
             false;
  }
  if (owner && nvalues)
    r.values =
        ValueBytes::view(data + (size - nvalues), nvalues, std::move(owner));
  else
    r.values.assign(data + (size - nvalues), data + size);
  return true;
}

//===----------------------------------------------------------------------===//
// Block frames (format version 2): n rows of one traced tensor. The row
// entries are copied from the caller's BlockRow-shaped memory, not encoded
// field by field: on a little-endian host that is the file's byte order.
//===----------------------------------------------------------------------===//

namespace greta::rt::detail {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr bool kHostLittleEndian = true;
#else
constexpr bool kHostLittleEndian = false;
#endif

template <typename T> void storeLE(uint8_t *p, T v) {
  static_assert(std::is_integral_v<T>);
  if constexpr (kHostLittleEndian) {
    std::memcpy(p, &v, sizeof(T));
  } else {
    using U = std::make_unsigned_t<T>;
    U u = static_cast<U>(v);
    for (size_t i = 0; i < sizeof(T); ++i)
      p[i] = static_cast<uint8_t>(u >> (8 * i));
  }
}
template <typename T> T loadLE(const uint8_t *p) {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  U u = 0;
  if constexpr (kHostLittleEndian) {
    std::memcpy(&u, p, sizeof(U));
  } else {
    for (size_t i = 0; i < sizeof(U); ++i)
      u |= static_cast<U>(p[i]) << (8 * i);
  }
  return static_cast<T>(u);
}
double loadF64(const uint8_t *p) {
  uint64_t u = loadLE<uint64_t>(p);
  double d;
  std::memcpy(&d, &u, 8);
  return d;
}

constexpr size_t kHashEntryBytes = 40;  // sha256, nz_count
constexpr size_t kStatsEntryBytes = 88; // + nan, inf, min, max, mean, l2
size_t entryBytes(Payload p) {
  return p == Payload::Hash ? kHashEntryBytes : kStatsEntryBytes;
}
constexpr uint8_t kBlockContiguous = 1; // flags bit 0

/// Body bytes of a frame of m rows, without the values.
size_t blockHeadBytes(const BlockPlan &plan, const RecordBlock &b, size_t m,
                      bool contiguous) {
  return plan.fixed + (contiguous ? 8 : 8 * m) +
         m * (plan.entry + 4 * static_cast<size_t>(b.topK));
}

/// Positions p[0..m) are p[0], p[0] + 1, ...
bool isContiguous(const int64_t *p, size_t m) {
  for (size_t i = 1; i < m; ++i)
    if (p[i - 1] == INT64_MAX || p[i] != p[i - 1] + 1)
      return false;
  return true;
}

bool planBlock(const RecordBlock &b, BlockPlan &plan, std::string &error) {
  auto bad = [&](const std::string &why) {
    error = "invalid record block: " + why;
    return false;
  };
  if (static_cast<unsigned>(b.stage) >= kNumStages)
    return bad("unknown stage " + std::to_string(unsigned(b.stage)));
  if (static_cast<uint8_t>(b.dtype) > static_cast<uint8_t>(DType::BF16))
    return bad("unknown dtype " + std::to_string(unsigned(b.dtype)));
  if (static_cast<uint8_t>(b.payload) > static_cast<uint8_t>(Payload::Full))
    return bad("unknown payload " + std::to_string(unsigned(b.payload)));
  if (b.rowShape.size() > kMaxRank)
    return bad("rank " + std::to_string(b.rowShape.size()) + " too large");
  uint64_t elements = 1;
  for (int64_t d : b.rowShape) {
    if (d < 0)
      return bad("negative dimension " + std::to_string(d));
    if (d != 0 && elements > (uint64_t(1) << 48) / static_cast<uint64_t>(d))
      return bad("shape too large (more than 2^48 elements)");
    elements *= static_cast<uint64_t>(d);
  }
  if (b.n < 0)
    return bad("negative row count " + std::to_string(b.n));
  if (b.topK < 0 || b.topK > static_cast<int>(kMaxTop))
    return bad("top-k count " + std::to_string(b.topK) + " out of [0, 64]");
  plan.entry = entryBytes(b.payload);
  plan.rowBytes = b.payload == Payload::Full
                      ? static_cast<size_t>(elements) * dtypeSize(b.dtype)
                      : 0;
  plan.fixed = 24 + 8 * b.rowShape.size();
  if (b.n == 0)
    return true;
  if (!b.positions || !b.rows)
    return bad("positions and rows are required");
  if (b.topK && !b.topIds)
    return bad("topK is " + std::to_string(b.topK) + " but topIds is null");
  if (plan.rowBytes && !b.values)
    return bad("payload full without values");
  if (b.rowStride < plan.entry)
    return bad("row stride " + std::to_string(b.rowStride) + " is below the " +
               std::to_string(plan.entry) + "-byte row entry");
  uint64_t oneRow = plan.fixed + 8 + plan.entry + 4 * uint64_t(b.topK) +
                    uint64_t(plan.rowBytes);
  if (oneRow > kMaxBodyBytes)
    return bad("a frame of one row needs " + std::to_string(oneRow) +
               " bytes, more than the 2^30 a frame may hold");
  return true;
}

/// Writes the body of a frame of rows [first, first + m) of `b` up to the
/// values (blockHeadBytes bytes) at `p`.
void writeBlockHead(uint8_t *p, const RecordBlock &b, const BlockPlan &plan,
                    size_t first, size_t m, bool contiguous) {
  p[0] = static_cast<uint8_t>(b.stage);
  p[1] = static_cast<uint8_t>(b.dtype);
  p[2] = static_cast<uint8_t>(b.payload);
  p[3] = contiguous ? kBlockContiguous : 0;
  storeLE<int64_t>(p + 4, b.layer);
  storeLE<uint32_t>(p + 12, static_cast<uint32_t>(b.rowShape.size()));
  p += 16;
  for (int64_t d : b.rowShape) {
    storeLE<int64_t>(p, d);
    p += 8;
  }
  storeLE<uint32_t>(p, static_cast<uint32_t>(m));
  p += 4;
  const int64_t *pos = b.positions + first;
  if (contiguous) {
    storeLE<int64_t>(p, pos[0]);
    p += 8;
  } else if constexpr (kHostLittleEndian) {
    std::memcpy(p, pos, 8 * m);
    p += 8 * m;
  } else {
    for (size_t i = 0; i < m; ++i, p += 8)
      storeLE<int64_t>(p, pos[i]);
  }
  const uint8_t *src = b.rows + first * b.rowStride;
  size_t stride = b.rowStride, e = plan.entry;
  if constexpr (kHostLittleEndian) {
    if (stride == e) {
      std::memcpy(p, src, m * e);
    } else if (e == kHashEntryBytes) { // fixed sizes: inlined copies
      for (size_t i = 0; i < m; ++i)
        std::memcpy(p + i * kHashEntryBytes, src + i * stride, kHashEntryBytes);
    } else {
      for (size_t i = 0; i < m; ++i)
        std::memcpy(p + i * kStatsEntryBytes, src + i * stride,
                    kStatsEntryBytes);
    }
    p += m * e;
  } else {
    // Host-order 8-byte fields after the digest: swap each.
    for (size_t i = 0; i < m; ++i, p += e) {
      const uint8_t *s = src + i * stride;
      std::memcpy(p, s, 32);
      for (size_t f = 32; f < e; f += 8) {
        uint64_t v;
        std::memcpy(&v, s + f, 8);
        storeLE<uint64_t>(p + f, v);
      }
    }
  }
  size_t k = static_cast<size_t>(b.topK);
  storeLE<uint32_t>(p, static_cast<uint32_t>(k));
  p += 4;
  const int32_t *ids = b.topIds + first * k;
  if constexpr (kHostLittleEndian) {
    if (k)
      std::memcpy(p, ids, 4 * k * m);
  } else {
    for (size_t i = 0; i < k * m; ++i)
      storeLE<int32_t>(p + 4 * i, ids[i]);
  }
}
} // namespace greta::rt::detail

bool greta::rt::encodeBlockBody(const RecordBlock &b, std::vector<uint8_t> &out,
                                std::string &error) {
  BlockPlan plan;
  if (!planBlock(b, plan, error))
    return false;
  if (b.n == 0)
    return error = "invalid record block: 0 rows", false;
  size_t n = static_cast<size_t>(b.n);
  bool contiguous = isContiguous(b.positions, n);
  size_t head = blockHeadBytes(plan, b, n, contiguous);
  if (n > UINT32_MAX || head + uint64_t(plan.rowBytes) * n > kMaxBodyBytes)
    return error = "invalid record block: " + std::to_string(n) +
                   " rows do not fit one frame (at most 2^30 bytes)",
           false;
  size_t start = out.size();
  out.resize(start + head + n * plan.rowBytes);
  writeBlockHead(out.data() + start, b, plan, 0, n, contiguous);
  if (plan.rowBytes)
    std::memcpy(out.data() + start + head, b.values, n * plan.rowBytes);
  return true;
}

bool greta::rt::decodeBlockRows(const uint8_t *data, size_t size,
                                BlockRows &out, std::string &error,
                                std::shared_ptr<const void> owner) {
  Reader in(data, size);
  auto trunc = [&](const char *what) {
    error = std::string("body ends inside ") + what;
    return false;
  };
  uint8_t stage, dtype, payload, flags;
  if (!readTags(in, stage, dtype, payload, flags, error))
    return false;
  if (flags & ~kBlockContiguous)
    return error = "unknown block flags " + std::to_string(flags), false;
  int64_t layer;
  uint32_t rank;
  if (!in.get(layer) || !in.get(rank))
    return trunc("layer/rank");
  if (rank > kMaxRank)
    return error = "rank " + std::to_string(rank) + " too large", false;
  std::vector<int64_t> shape(rank, 0);
  for (auto &d : shape)
    if (!in.get(d))
      return trunc("the shape");
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return error = "negative dimension " + std::to_string(d), false;
    if (d != 0 && elements > (uint64_t(1) << 48) / static_cast<uint64_t>(d))
      return error = "shape too large (more than 2^48 elements)", false;
    elements *= static_cast<uint64_t>(d);
  }
  uint32_t n;
  if (!in.get(n))
    return trunc("the row count");
  if (n == 0)
    return error = "block of 0 rows", false;
  bool contiguous = flags & kBlockContiguous;
  Payload pl = static_cast<Payload>(payload);
  size_t entry = entryBytes(pl);
  size_t posBytes = contiguous ? 8 : 8 * size_t(n);
  if (in.left() < posBytes)
    return trunc("the positions");
  if (in.left() - posBytes < size_t(n) * entry + 4)
    return trunc("the row entries");
  size_t at = in.pos();
  const uint8_t *positions = data + at;
  const uint8_t *rows = positions + posBytes;
  at += posBytes + size_t(n) * entry;
  uint32_t k = loadLE<uint32_t>(data + at);
  at += 4;
  if (k > kMaxTop)
    return error = "top-k count " + std::to_string(k) + " too large", false;
  size_t rowBytes =
      pl == Payload::Full
          ? static_cast<size_t>(elements) * dtypeSize(static_cast<DType>(dtype))
          : 0;
  size_t idBytes = 4 * size_t(k) * n, left = size - at;
  bool fits = rowBytes == 0 || n <= (SIZE_MAX - idBytes) / rowBytes;
  size_t need = fits ? idBytes + size_t(n) * rowBytes : 0;
  if (!fits || need != left)
    return error = "block of " + std::to_string(n) + " rows: top-k ids and " +
                   "values need " +
                   (fits ? std::to_string(need) : std::string("over 2^64")) +
                   " bytes, " + std::to_string(left) + " remain",
           false;
  int64_t first = contiguous ? loadLE<int64_t>(positions) : 0;
  if (contiguous && first > INT64_MAX - int64_t(n - 1))
    return error = "positions " + std::to_string(first) + " + " +
                   std::to_string(n - 1) + " overflow int64",
           false;
  const uint8_t *ids = data + at, *values = ids + idBytes;

  // Valid.
  out.stage = static_cast<Stage>(stage);
  out.layer = layer;
  out.dtype = static_cast<DType>(dtype);
  out.payload = pl;
  out.rowShape = std::move(shape);
  out.elements = static_cast<int64_t>(elements);
  out.n = n;
  out.firstPosition = first;
  out.positions = contiguous ? nullptr : positions;
  out.entries = rows;
  out.entryBytes = static_cast<uint32_t>(entry);
  out.topK = k;
  out.topIds = ids;
  out.values = rowBytes ? values : nullptr;
  out.rowBytes = rowBytes;
  out.owner = std::move(owner);
  return true;
}

int64_t BlockRows::position(size_t j) const {
  return positions ? loadLE<int64_t>(positions + 8 * j)
                   : firstPosition + static_cast<int64_t>(j);
}

void BlockRows::recordTo(size_t j, Record &r) const {
  std::string error;
  if (!readRecord(j, r, error))
    throw std::runtime_error(error);
}

void BlockRows::headTo(size_t j, Record &r) const {
  r.stage = stage;
  r.layer = layer;
  r.dtype = dtype;
  r.payload = payload;
  r.shape = rowShape;
  r.position = position(j);
  const uint8_t *e = entries + j * entryBytes;
  std::memcpy(r.sha256.data(), e, 32);
  r.nzCount = loadLE<int64_t>(e + 32);
  if (entryBytes == kStatsEntryBytes) {
    r.nanCount = loadLE<int64_t>(e + 40);
    r.infCount = loadLE<int64_t>(e + 48);
    r.fingerprint = {loadF64(e + 56), loadF64(e + 64), loadF64(e + 72),
                     loadF64(e + 80)};
  } else {
    r.nanCount = r.infCount = 0;
    r.fingerprint = {};
  }
  r.top5.clear();
  if (topK) {
    const uint8_t *t = topIds + 4 * size_t(topK) * j;
    size_t cnt = topK; // drop the -1 padding
    while (cnt && loadLE<int32_t>(t + 4 * (cnt - 1)) == -1)
      --cnt;
    r.top5.resize(cnt);
    for (size_t i = 0; i < cnt; ++i)
      r.top5[i] = loadLE<int32_t>(t + 4 * i);
  }
}

bool BlockRows::readRecord(size_t j, Record &r, std::string &error) const {
  headTo(j, r);
  if (rowBytes && !values) {
    // In the file: read back into owned storage (its capacity reused).
    std::vector<uint8_t> bytes = r.values.isView()
                                     ? std::vector<uint8_t>()
                                     : std::move(r.values).takeOwned();
    bytes.resize(rowBytes);
    if (!file)
      return error = "values of a block row are neither in memory nor in a "
                     "file",
             false;
    if (!file->readAt(valuesOffset + j * rowBytes, bytes.data(), rowBytes,
                      error))
      return false;
    r.values = std::move(bytes);
  } else if (rowBytes) {
    const uint8_t *v = values + j * rowBytes;
    if (owner)
      r.values = ValueBytes::view(v, rowBytes, owner);
    else
      r.values.assign(v, v + rowBytes);
  } else {
    r.values.clear();
  }
  return true;
}

bool greta::rt::decodeBlockBody(const uint8_t *data, size_t size,
                                std::vector<Record> &out, std::string &error,
                                std::shared_ptr<const void> owner) {
  BlockRows b;
  if (!decodeBlockRows(data, size, b, error, std::move(owner)))
    return false;
  // Valid: n records, nothing can fail from here. Geometric growth: a trace
  // of many blocks must not reallocate for each.
  size_t n = b.n;
  if (out.capacity() - out.size() < n)
    out.reserve(std::max(out.size() + n, 2 * out.capacity()));
  for (size_t j = 0; j < n; ++j)
    b.recordTo(j, out.emplace_back());
  return true;
}

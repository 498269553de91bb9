//===- Trace.cpp - Trace writer and reader (TRACE_FORMAT.md) ----*- C++ -*-===//
//
// records.bin = 16-byte file header, then frames
//   [u32 magic "GREC" | "GREB"][u32 length][length bytes of body][u32 crc32]
// all little endian: a record frame (GREC) holds one row, a block frame
// (GREB, format version 2) many rows of one traced tensor. The writer
// buffers frames and hands them to the OS on flush(); the reader keeps every
// frame up to the first bad one.
//
//===----------------------------------------------------------------------===//
#include "greta/rt/Trace.h"
#include "greta/rt/Sha256.h"
#include "greta/rt/Half.h"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define GRETA_HAVE_PCLMUL_CRC 1
#endif

using namespace greta::rt;
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
// CRC-32
//===----------------------------------------------------------------------===//

#ifdef GRETA_HAVE_PCLMUL_CRC
namespace {
// CRC-32 (reflected, polynomial 0xEDB88320) by carry-less multiplication:
// parallel lanes are folded forward over the buffer, then folded into one
// 128-bit value and Barrett-reduced (Gopal et al., "Fast CRC Computation for
// Generic Polynomials Using PCLMULQDQ", Intel 2009). Folding a lane by D bits
// multiplies its halves by x^(D+32) and x^(D-32) mod P (bit-reflected,
// shifted left by 1); those constants are kFoldD below (kFold512/128 and the
// Barrett constants are the paper's, as in Linux's crc32-pclmul). The running
// CRC is in its inverted form. zlib 1.2.13's table CRC runs at ~7 GB/s on
// the development machine, the 128-bit folding at ~18 GB/s, the 512-bit one
// faster still: the checksum pass is then bound by memory, not arithmetic.
alignas(16) const uint64_t kFold2048[] = {0x011542778a, 0x01322d1430};
alignas(16) const uint64_t kFold512[] = {0x0154442bd4, 0x01c6e41596};
alignas(16) const uint64_t kFold128[] = {0x01751997d0, 0x00ccaa009e};
alignas(16) const uint64_t kFold64[] = {0x0163cd6124, 0x0000000000};
alignas(16) const uint64_t kBarrett[] = {0x01db710641, 0x01f7011641};

#define GRETA_PCLMUL __attribute__((target("pclmul,sse4.1")))
#define GRETA_VPCLMUL                                                          \
  __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.1")))

// Functions, not lambdas: lambdas would not inherit the target attribute.
GRETA_PCLMUL inline __m128i load128(const uint8_t *p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
}
GRETA_PCLMUL inline __m128i constant128(const uint64_t *k) {
  return _mm_load_si128(reinterpret_cast<const __m128i *>(k));
}
/// x folded forward by the distance of `k`, plus `data`.
GRETA_PCLMUL inline __m128i fold128(__m128i x, __m128i k, __m128i data) {
  __m128i lo = _mm_clmulepi64_si128(x, k, 0x00);
  __m128i hi = _mm_clmulepi64_si128(x, k, 0x11);
  return _mm_xor_si128(_mm_xor_si128(hi, lo), data);
}

/// Folds the remaining 16-byte blocks into `x` and reduces it to the CRC.
GRETA_PCLMUL uint32_t finish128(__m128i x, const uint8_t *buf, size_t len) {
  __m128i k = constant128(kFold128);
  for (; len >= 16; buf += 16, len -= 16)
    x = fold128(x, k, load128(buf));
  // 128 -> 64 bits.
  __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  __m128i t = _mm_clmulepi64_si128(x, k, 0x10);
  x = _mm_xor_si128(_mm_srli_si128(x, 8), t);
  k = _mm_loadl_epi64(reinterpret_cast<const __m128i *>(kFold64));
  t = _mm_srli_si128(x, 4);
  x = _mm_and_si128(x, mask32);
  x = _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), t);
  // Barrett reduction to 32 bits.
  k = constant128(kBarrett);
  t = _mm_and_si128(x, mask32);
  t = _mm_clmulepi64_si128(t, k, 0x10);
  t = _mm_and_si128(t, mask32);
  t = _mm_clmulepi64_si128(t, k, 0x00);
  x = _mm_xor_si128(x, t);
  return static_cast<uint32_t>(_mm_extract_epi32(x, 1));
}

/// len >= 64, a multiple of 16: four 128-bit lanes, 64 bytes a step.
GRETA_PCLMUL uint32_t crc32Pclmul(const uint8_t *buf, size_t len,
                                  uint32_t crc) {
  __m128i x1 = load128(buf), x2 = load128(buf + 16), x3 = load128(buf + 32),
          x4 = load128(buf + 48);
  x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128(static_cast<int>(crc)));
  buf += 64;
  len -= 64;
  __m128i k = constant128(kFold512);
  for (; len >= 64; buf += 64, len -= 64) {
    x1 = fold128(x1, k, load128(buf));
    x2 = fold128(x2, k, load128(buf + 16));
    x3 = fold128(x3, k, load128(buf + 32));
    x4 = fold128(x4, k, load128(buf + 48));
  }
  k = constant128(kFold128);
  x1 = fold128(x1, k, x2);
  x1 = fold128(x1, k, x3);
  x1 = fold128(x1, k, x4);
  return finish128(x1, buf, len);
}

GRETA_VPCLMUL inline __m512i load512(const uint8_t *p) {
  return _mm512_loadu_si512(p);
}
// Not _mm512_broadcast_i32x4/_mm512_extracti32x4_epi32: GCC 12's versions
// warn (-Wuninitialized) on their internal undefined operand.
GRETA_VPCLMUL inline __m512i broadcast512(const uint64_t *k) {
  return _mm512_set_epi64(
      static_cast<long long>(k[1]), static_cast<long long>(k[0]),
      static_cast<long long>(k[1]), static_cast<long long>(k[0]),
      static_cast<long long>(k[1]), static_cast<long long>(k[0]),
      static_cast<long long>(k[1]), static_cast<long long>(k[0]));
}
template <int I> GRETA_VPCLMUL inline __m128i lane128(__m512i x) {
  return _mm512_maskz_extracti32x4_epi32(0xF, x, I);
}
GRETA_VPCLMUL inline __m512i fold512(__m512i x, __m512i k, __m512i data) {
  __m512i lo = _mm512_clmulepi64_epi128(x, k, 0x00);
  __m512i hi = _mm512_clmulepi64_epi128(x, k, 0x11);
  return _mm512_ternarylogic_epi64(lo, hi, data, 0x96); // lo ^ hi ^ data
}

/// len >= 256, a multiple of 16: four 512-bit lanes, 256 bytes a step.
GRETA_VPCLMUL uint32_t crc32Vpclmul(const uint8_t *buf, size_t len,
                                    uint32_t crc) {
  __m512i x0 = load512(buf), x1 = load512(buf + 64), x2 = load512(buf + 128),
          x3 = load512(buf + 192);
  x0 = _mm512_xor_si512(
      x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(crc))));
  buf += 256;
  len -= 256;
  __m512i k = broadcast512(kFold2048);
  for (; len >= 256; buf += 256, len -= 256) {
    x0 = fold512(x0, k, load512(buf));
    x1 = fold512(x1, k, load512(buf + 64));
    x2 = fold512(x2, k, load512(buf + 128));
    x3 = fold512(x3, k, load512(buf + 192));
  }
  k = broadcast512(kFold512);
  x0 = fold512(x0, k, x1);
  x0 = fold512(x0, k, x2);
  x0 = fold512(x0, k, x3);
  // The four 128-bit lanes of x0 into one.
  __m128i k128 = constant128(kFold128);
  __m128i x = lane128<0>(x0);
  x = fold128(x, k128, lane128<1>(x0));
  x = fold128(x, k128, lane128<2>(x0));
  x = fold128(x, k128, lane128<3>(x0));
  return finish128(x, buf, len);
}

enum class CrcKernel { Zlib, Pclmul, Vpclmul };
CrcKernel bestCrcKernel() {
  static const CrcKernel best = [] {
    if (!__builtin_cpu_supports("pclmul") || !__builtin_cpu_supports("sse4.1"))
      return CrcKernel::Zlib;
    if (__builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("vpclmulqdq"))
      return CrcKernel::Vpclmul;
    return CrcKernel::Pclmul;
  }();
  return best;
}
} // namespace
#endif

namespace {
/// Continues CRC-32 `crc` (zlib's convention: 0 for no bytes yet) over
/// [data, data + size): crcUpdate(crcUpdate(0, a), b) is the CRC of a + b.
uint32_t crcUpdate(uint32_t crc, const uint8_t *data, size_t size) {
#ifdef GRETA_HAVE_PCLMUL_CRC
  CrcKernel kernel = bestCrcKernel();
  if (size >= 64 && kernel != CrcKernel::Zlib) {
    size_t bulk = size & ~size_t(15);
    uint32_t inv = ~crc;
    crc = ~(kernel == CrcKernel::Vpclmul && bulk >= 256
                ? crc32Vpclmul(data, bulk, inv)
                : crc32Pclmul(data, bulk, inv));
    data += bulk;
    size -= bulk;
  }
#endif
  // zlib takes at most 4 GiB per call (uInt); bodies are <= 1 GiB.
  return static_cast<uint32_t>(crc32(crc, data, static_cast<uInt>(size)));
}
} // namespace

uint32_t greta::rt::frameChecksum(const uint8_t *data, size_t size) {
  return crcUpdate(0, data, size);
}

//===----------------------------------------------------------------------===//
// Encoding: explicit little-endian fields, never a struct memcpy, so the
// format does not depend on the compiler's layout.
//===----------------------------------------------------------------------===//

namespace {
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

uint32_t readU32(const uint8_t *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
         uint32_t(p[3]) << 24;
}
void writeU32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<uint8_t>(v >> (8 * i));
}
constexpr uint32_t kMaxRank = 8;
constexpr uint32_t kMaxTop = 64;
// A body larger than this is corruption, not a record (a row of 16M f64s).
constexpr uint32_t kMaxBodyBytes = 1u << 30;
} // namespace

namespace {
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

namespace {
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

/// The sizes of a valid block's frames.
struct BlockPlan {
  size_t entry = 0;    // bytes of one row entry in the body
  size_t rowBytes = 0; // value bytes of one row (payload full), else 0
  size_t fixed = 0;    // tags, layer, rank, shape, n and k: 24 + 8r bytes
};

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
} // namespace

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
  if (rowBytes) {
    const uint8_t *v = values + j * rowBytes;
    if (owner)
      r.values = ValueBytes::view(v, rowBytes, owner);
    else
      r.values.assign(v, v + rowBytes);
  } else {
    r.values.clear();
  }
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

//===----------------------------------------------------------------------===//
// Manifest
//===----------------------------------------------------------------------===//

namespace {
/// The manifest's account of records.bin, written by finish().
struct ManifestSeal {
  bool complete = false;
  std::optional<uint64_t> records; // finished runs
  std::string recordsDigest;       // finished runs (FramingDigest)
};

json manifestToJson(const Manifest &m, const ManifestSeal &seal) {
  json tensorDigests = json::object();
  for (const auto &[name, digest] : m.weightsTensorDigests)
    tensorDigests[name] = digest;
  json j{{"format", "greta-trace"},
         {"format_version", m.formatVersion},
         {"run_id", m.runId},
         {"model", m.model},
         {"model_digest", m.modelDigest},
         {"weights_digest", m.weightsDigest},
         {"weights_tensor_digests", std::move(tensorDigests)},
         {"weights_dtype", m.weightsDType},
         {"prompt_digest", m.promptDigest},
         {"prompt_name", m.promptName},
         {"token_count", m.tokenCount},
         {"prompt_ids", m.promptIds},
         {"tokenizer", m.tokenizer},
         {"tokenizer_digest", m.tokenizerDigest},
         {"backend", m.backend},
         {"precision", m.precision},
         {"pipeline", m.pipeline},
         {"tool_version", m.toolVersion},
         {"filter", m.filter},
         {"created_at", m.createdAt},
         {"complete", seal.complete},
         {"records", seal.records.value_or(0)}};
  if (seal.complete)
    j["records_digest"] = seal.recordsDigest;
  return j;
}

/// JSON nesting allowed in manifest.json: the writer's is 1 level. Deeper
/// input is refused before anything recurses over it (a value dump()ed into
/// an error message overflowed the stack at 100000 levels).
constexpr int kMaxManifestDepth = 32;

/// The JSON text of a manifest, refused when nested deeper than
/// kMaxManifestDepth (nlohmann's parser itself does not recurse). `error`
/// completes "'<path>' ...".
bool parseManifestText(const std::vector<uint8_t> &bytes, json &out,
                       std::string &error) {
  bool tooDeep = false;
  json::parser_callback_t limit = [&](int depth, json::parse_event_t, json &) {
    if (depth > kMaxManifestDepth)
      tooDeep = true;
    return !tooDeep; // Keep nothing once too deep: the result is refused.
  };
  try {
    out = json::parse(bytes.begin(), bytes.end(), limit);
  } catch (const json::exception &e) { // parse_error, out_of_range (1e999)
    return error = std::string("is not valid JSON: ") + e.what(), false;
  }
  if (tooDeep)
    return error = "nests deeper than " + std::to_string(kMaxManifestDepth) +
                   " levels (a GRETA manifest is a flat object)",
           false;
  return true;
}

/// A short description of a JSON value for an error message: the value
/// itself when it is a scalar, else its type (never a recursive dump).
std::string describeJson(const json &v) {
  if (v.is_primitive()) {
    std::string s = v.dump();
    return s.size() > 64 ? s.substr(0, 64) + "..." : s;
  }
  return std::string("a JSON ") + v.type_name();
}

bool isHex(const std::string &s, size_t digits) {
  return s.size() == digits && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool manifestFromJson(const json &j, Manifest &m, ManifestSeal &seal,
                      std::string &error) {
  try {
    if (!j.is_object())
      return error = "not a JSON object", false;
    if (!j.contains("format_version") ||
        !j["format_version"].is_number_unsigned())
      return error = "missing or invalid 'format_version'", false;
    // Read as u64 first: a huge version must be refused as newer, not
    // truncated to a small one.
    uint64_t version = j["format_version"].get<uint64_t>();
    if (version > kTraceFormatVersion)
      return error = "trace format version " + std::to_string(version) +
                     " is newer than this reader supports (version " +
                     std::to_string(kTraceFormatVersion) + "); update GRETA",
             false;
    m.formatVersion = static_cast<uint32_t>(version);
    if (m.formatVersion > kTraceFormatVersion)
      return error = "trace format version " + std::to_string(m.formatVersion) +
                     " is newer than this reader supports (version " +
                     std::to_string(kTraceFormatVersion) + "); update GRETA",
             false;
    if (m.formatVersion == 0)
      return error = "invalid format_version 0", false;
    auto str = [&](const char *key, std::string &out) {
      if (j.contains(key))
        out = j[key].get<std::string>();
    };
    str("model", m.model);
    str("model_digest", m.modelDigest);
    str("weights_digest", m.weightsDigest);
    str("weights_dtype", m.weightsDType);
    str("prompt_digest", m.promptDigest);
    str("prompt_name", m.promptName);
    str("backend", m.backend);
    str("precision", m.precision);
    str("pipeline", m.pipeline);
    str("tool_version", m.toolVersion);
    str("filter", m.filter);
    str("created_at", m.createdAt);
    str("run_id", m.runId);
    if (!m.runId.empty() && !isHex(m.runId, 2 * kRunIdBytes))
      return error = "'run_id' must be 32 lowercase hex digits, got " +
                     describeJson(j["run_id"]),
             false;
    if (j.contains("weights_tensor_digests")) {
      const json &t = j["weights_tensor_digests"];
      if (!t.is_object())
        return error = "'weights_tensor_digests' must be an object", false;
      for (auto it = t.begin(); it != t.end(); ++it) // sorted by name
        m.weightsTensorDigests.push_back(
            {it.key(), it.value().get<std::string>()});
    }
    if (j.contains("token_count")) {
      const json &t = j["token_count"];
      if (!t.is_number_integer() || t.get<int64_t>() < 0)
        return error = "'token_count' must be a non-negative integer, got " +
                       describeJson(t),
               false;
      m.tokenCount = t.get<int64_t>();
    }
    str("tokenizer", m.tokenizer);
    str("tokenizer_digest", m.tokenizerDigest);
    if (j.contains("prompt_ids")) {
      const json &ids = j["prompt_ids"];
      bool valid = ids.is_array();
      for (size_t i = 0; valid && i < ids.size(); ++i) {
        valid = ids[i].is_number_integer() && ids[i].get<int64_t>() >= 0;
        if (valid)
          m.promptIds.push_back(ids[i].get<int64_t>());
      }
      if (!valid)
        return error = "'prompt_ids' must be an array of token ids, got " +
                       describeJson(ids),
               false;
    }
    seal.complete = j.value("complete", false);
    if (seal.complete && j.contains("records")) {
      const json &r = j["records"];
      if (!r.is_number_unsigned())
        return error = "'records' must be a non-negative integer, got " +
                       describeJson(r),
               false;
      seal.records = r.get<uint64_t>();
    }
    if (seal.complete && j.contains("records_digest")) {
      const json &d = j["records_digest"];
      if (!d.is_string() || !isHex(d.get<std::string>(), 64))
        return error = "'records_digest' must be 64 lowercase hex digits, "
                       "got " +
                       describeJson(d),
               false;
      seal.recordsDigest = d.get<std::string>();
    }
  } catch (const json::exception &e) {
    return error = std::string("bad field: ") + e.what(), false;
  }
  return true;
}

std::string errnoStr(int e) { return std::strerror(e); }

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
    tc.stopReason = "record " + std::to_string(rows) +
                    " at byte " + std::to_string(off) + ": " + why;
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

//===- TraceFuzzer.cpp - rt::readTrace on an arbitrary trace directory ----===//
//
// Input layout (test/fuzz-regressions/split_trace_input.py does the same, so
// a reproducer can be replayed through greta-diff):
//   byte 0       flags; bit 0: patch the CRC of every complete frame of
//                records.bin (record and block frames alike) so the fuzzer
//                gets past the checksum into the body decoders (otherwise
//                almost every mutation stops at "checksum mismatch")
//   bytes 1..2   u16 LE n: the length of manifest.json (clamped)
//   n bytes      manifest.json
//   the rest     records.bin
// Every record returned is then used the way greta-diff uses it
// (numElements, sha256Hex, valuesAsDouble), so an accepted record whose
// fields disagree is caught by the sanitizers. A block frame (format version
// 2; seed fuzz/corpus/trace/blocks-crc) expands into many records: each is
// checked the same way, and the reader must stop on a frame boundary with
// exactly the records of the frames before it (a block is all or nothing).
//
//===----------------------------------------------------------------------===//
#include "FuzzUtil.h"
#include "greta/rt/Trace.h"

#include <cstring>
#include <sys/stat.h>
#include <vector>
#include <zlib.h>

namespace {
uint32_t rd32(const uint8_t *p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 |
         uint32_t(p[3]) << 24;
}
void wr32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = uint8_t(v >> (8 * i));
}
/// Walks the frames from the header's end (its size field: 16 bytes up to
/// format 2, 32 from 3) and rewrites each complete frame's CRC.
void patchCrcs(std::vector<uint8_t> &rec) {
  size_t off = rec.size() >= 16 ? rd32(rec.data() + 12) : 16;
  if (off < 16 || off > rec.size())
    off = 16;
  while (off + 12 <= rec.size()) {
    uint32_t len = rd32(rec.data() + off + 4);
    if (rec.size() - off - 12 < len)
      break;
    const uint8_t *body = rec.data() + off + 8;
    wr32(rec.data() + off + 8 + len,
         uint32_t(crc32(0L, body, static_cast<uInt>(len))));
    off += 12 + size_t(len);
  }
}
/// Records held by the frames from the header's end to `end`, or -1 if
/// `end` is not the end of a frame: 1 per record frame, n per block frame.
/// Called on a trace the reader accepted (so the header is valid).
int64_t recordsBefore(const std::vector<uint8_t> &rec, size_t end) {
  size_t off = rd32(rec.data() + 12);
  int64_t count = 0;
  while (off < end) {
    if (end - off < 12)
      return -1;
    uint32_t magic = rd32(rec.data() + off), len = rd32(rec.data() + off + 4);
    if (end - off - 12 < len)
      return -1;
    const uint8_t *body = rec.data() + off + 8;
    if (magic == greta::rt::kBlockMagic) {
      if (len < 16)
        return -1;
      uint32_t rank = rd32(body + 12);
      if (rank > 8 || len < 20 + 8 * size_t(rank))
        return -1;
      count += rd32(body + 16 + 8 * size_t(rank));
    } else {
      ++count;
    }
    off += 12 + size_t(len);
  }
  return off == end ? count : -1;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::string dir = [] {
    std::string d = greta::fuzz::scratchDir() + "/trace";
    ::mkdir(d.c_str(), 0700);
    return d;
  }();
  if (size < 3)
    return 0;
  uint8_t flags = data[0];
  size_t n = size_t(data[1]) | size_t(data[2]) << 8;
  data += 3;
  size -= 3;
  if (n > size)
    n = size;
  greta::fuzz::writeFile(dir + "/manifest.json", data, n);
  std::vector<uint8_t> rec(data + n, data + size);
  if (flags & 1)
    patchCrcs(rec);
  greta::fuzz::writeFile(dir + "/records.bin", rec.data(), rec.size());

  std::string error;
  auto tc = greta::rt::readTrace(dir, error);
  if (!tc) {
    if (error.empty())
      __builtin_trap(); // a failure must always say why
    return 0;
  }
  if (tc->records.empty() || tc->validBytes > rec.size())
    __builtin_trap(); // documented: no readable record is an error
  // Whole frames only: a block's records all come back, or none of them.
  if (recordsBefore(rec, tc->validBytes) !=
      static_cast<int64_t>(tc->records.size()))
    __builtin_trap();
  for (const auto &r : tc->records) {
    if (static_cast<unsigned>(r.stage) >= greta::rt::kNumStages ||
        r.shape.size() > 8 || r.top5.size() > 64)
      __builtin_trap(); // the decoders validate these
    volatile int64_t elems = r.numElements();
    (void)elems;
    (void)r.sha256Hex();
    (void)greta::rt::dtypeName(r.dtype);
    auto v = r.valuesAsDouble();
    if (r.payload == greta::rt::Payload::Full &&
        v.size() * greta::rt::dtypeSize(r.dtype) != r.values.size())
      __builtin_trap();
  }
  return 0;
}

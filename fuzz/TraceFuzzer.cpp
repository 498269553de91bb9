//===- TraceFuzzer.cpp - rt::readTrace on an arbitrary trace directory ----===//
//
// Input layout (test/fuzz-regressions/split_trace_input.py does the same, so
// a reproducer can be replayed through greta-diff):
//   byte 0       flags; bit 0: patch the CRC of every complete frame of
//                records.bin so the fuzzer gets past the checksum into the
//                body decoder (otherwise almost every mutation stops at
//                "checksum mismatch")
//   bytes 1..2   u16 LE n: the length of manifest.json (clamped)
//   n bytes      manifest.json
//   the rest     records.bin
// Every record returned is then used the way greta-diff uses it
// (numElements, sha256Hex, valuesAsDouble), so an accepted record whose
// fields disagree is caught by the sanitizers.
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
/// Walks the frames from byte 16 and rewrites each complete frame's CRC.
void patchCrcs(std::vector<uint8_t> &rec) {
  size_t off = 16;
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
  for (const auto &r : tc->records) {
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

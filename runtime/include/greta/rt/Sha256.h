//===- Sha256.h - SHA-256 through OpenSSL's EVP interface -------*- C++ -*-===//
//
// Internal to the runtime. SHA-256 comes from OpenSSL, never hand-written.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_LIB_SHA256_H
#define GRETA_RT_LIB_SHA256_H

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace greta::rt {
/// One-shot digest; aborts only if OpenSSL itself cannot allocate.
std::array<uint8_t, 32> sha256(const void *data, size_t size);
std::string toHex(const uint8_t *bytes, size_t size);
std::string sha256Hex(const void *data, size_t size);
/// `s` is exactly `digits` lowercase hex digits (by default a SHA-256 digest
/// as toHex writes it).
bool isHexDigest(const std::string &s, size_t digits = 64);

/// Incremental SHA-256 (the trace writer and reader digest records.bin's
/// framing as they go). Aborts only if OpenSSL itself cannot allocate.
class Sha256Stream {
public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream &) = delete;
  Sha256Stream &operator=(const Sha256Stream &) = delete;
  void update(const void *data, size_t size);
  /// A u64, little endian; a string as its u64 length, then its bytes.
  void updateU64(uint64_t v);
  void updateName(const std::string &name);
  /// The digest of everything updated so far; ends the stream.
  std::array<uint8_t, 32> finish();
  std::string finalHex();

private:
  void *ctx_; // EVP_MD_CTX
};
} // namespace greta::rt

#endif

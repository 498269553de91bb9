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
} // namespace greta::rt

#endif

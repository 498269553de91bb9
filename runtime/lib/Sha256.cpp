//===- Sha256.cpp - SHA-256 through OpenSSL's EVP interface -----*- C++ -*-===//
#include "Sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

using namespace greta::rt;

std::array<uint8_t, 32> greta::rt::sha256(const void *data, size_t size) {
  std::array<uint8_t, 32> out{};
  unsigned len = 0;
  // EVP_Digest fails only on allocation failure inside OpenSSL.
  if (!EVP_Digest(data, size, out.data(), &len, EVP_sha256(), nullptr) ||
      len != 32) {
    std::fprintf(stderr, "greta runtime: OpenSSL SHA-256 failed\n");
    std::abort();
  }
  return out;
}

std::string greta::rt::toHex(const uint8_t *bytes, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string s(2 * size, '0');
  for (size_t i = 0; i < size; ++i) {
    s[2 * i] = digits[bytes[i] >> 4];
    s[2 * i + 1] = digits[bytes[i] & 15];
  }
  return s;
}

std::string greta::rt::sha256Hex(const void *data, size_t size) {
  auto d = sha256(data, size);
  return toHex(d.data(), d.size());
}

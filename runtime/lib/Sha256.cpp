//===- Sha256.cpp - SHA-256 through OpenSSL's EVP interface -----*- C++ -*-===//
#include "greta/rt/Sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

using namespace greta::rt;

namespace {
[[noreturn]] void opensslFailed() {
  std::fprintf(stderr, "greta runtime: OpenSSL SHA-256 failed\n");
  std::abort();
}

// The implementation fetched once: EVP_sha256() makes every init look it
// up again under the provider store's lock (OpenSSL 3, crypto(7),
// "Explicit fetching"), ~0.15 us of a 0.45 us 512-byte row here, and
// the trace hashes one row per record on several threads.
EVP_MD *sha256Md() {
  static EVP_MD *const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}
} // namespace

std::array<uint8_t, 32> greta::rt::sha256(const void *data, size_t size) {
  EVP_MD *md = sha256Md();
  // One context per thread, reused: EVP_Digest would allocate one per call.
  struct Ctx {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx c;
  std::array<uint8_t, 32> out{};
  unsigned len = 0;
  // These fail only when OpenSSL cannot allocate.
  if (!md || !c.ctx || !EVP_DigestInit_ex2(c.ctx, md, nullptr) ||
      !EVP_DigestUpdate(c.ctx, data, size) ||
      !EVP_DigestFinal_ex(c.ctx, out.data(), &len) || len != 32)
    opensslFailed();
  return out;
}

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) {
  EVP_MD *md = sha256Md();
  if (!md || !ctx_ ||
      !EVP_DigestInit_ex2(static_cast<EVP_MD_CTX *>(ctx_), md, nullptr))
    opensslFailed();
}

Sha256Stream::~Sha256Stream() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX *>(ctx_));
}

void Sha256Stream::update(const void *data, size_t size) {
  if (size && !EVP_DigestUpdate(static_cast<EVP_MD_CTX *>(ctx_), data, size))
    opensslFailed();
}

void Sha256Stream::updateU64(uint64_t v) {
  uint8_t le[8];
  for (int i = 0; i < 8; ++i)
    le[i] = static_cast<uint8_t>(v >> (8 * i));
  update(le, 8);
}

void Sha256Stream::updateName(const std::string &name) {
  updateU64(name.size());
  update(name.data(), name.size());
}

std::array<uint8_t, 32> Sha256Stream::finish() {
  std::array<uint8_t, 32> out{};
  unsigned len = 0;
  if (!EVP_DigestFinal_ex(static_cast<EVP_MD_CTX *>(ctx_), out.data(), &len) ||
      len != 32)
    opensslFailed();
  return out;
}

std::string Sha256Stream::finalHex() {
  std::array<uint8_t, 32> out = finish();
  return toHex(out.data(), out.size());
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

bool greta::rt::isHexDigest(const std::string &s, size_t digits) {
  return s.size() == digits &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

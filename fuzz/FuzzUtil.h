//===- FuzzUtil.h - Helpers shared by GRETA's libFuzzer targets -*- C++ -*-===//
//
// The readers under test take paths, not buffers: each target writes the
// fuzz input to a private temporary directory (one per process, created
// once) and calls the public API on it, exactly as a tool would.
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_FUZZ_FUZZUTIL_H
#define GRETA_FUZZ_FUZZUTIL_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace greta::fuzz {

/// A directory private to this process, created on first use.
inline const std::string &scratchDir() {
  static const std::string dir = [] {
    const char *tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") +
                       "/greta-fuzz-XXXXXX";
    if (!mkdtemp(tmpl.data())) {
      std::perror("greta-fuzz: mkdtemp");
      std::abort();
    }
    return tmpl;
  }();
  return dir;
}

/// Writes `size` bytes to `path` (replacing it); aborts on I/O failure, which
/// is a problem of the fuzzing host, not of the code under test.
inline void writeFile(const std::string &path, const uint8_t *data,
                      size_t size) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) ||
      std::fclose(f) != 0) {
    std::perror(("greta-fuzz: " + path).c_str());
    std::abort();
  }
}

} // namespace greta::fuzz

#endif

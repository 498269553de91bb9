//===- CpuMath.h - Elementwise math shared by the CPU kernels ---*- C++ -*-===//
#ifndef GRETA_RT_CPUMATH_H
#define GRETA_RT_CPUMATH_H

#include <cstdint>
#include <cstring>

// Hot loops are compiled for AVX-512, AVX2 and the baseline and picked at
// load time; other architectures (an Arm GPU host) get one generic version.
// The kernels are built with -ffp-contract=off, so every version rounds the
// same way and gives the same bits.
#if defined(__x86_64__) && defined(__GNUC__)
#define GRETA_ISA_CLONES                                                       \
  __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GRETA_ISA_CLONES
#endif

namespace greta::rt::cpu {

/// exp(x) for float, branch-free so loops over it vectorize (Cephes' expf
/// polynomial, relative error < 2e-7; glibc's scalar expf call per element
/// was most of the attention time). NaN stays NaN.
inline float fastExp(float x) {
  x = x < -87.0f ? -87.0f : x; // exp(-87) ~ 1.6e-38, still a normal float
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln 2) through the 1.5 * 2^23 trick (no libm call).
  float fn = x * 1.44269504088896341f + 12582912.0f;
  int32_t n;
  std::memcpy(&n, &fn, 4);
  n -= 0x4B400000;
  fn -= 12582912.0f;
  float r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

} // namespace greta::rt::cpu

#endif

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

/// 16 floats, a vector of the compiler's (GCC's vector extensions): lane
/// for lane the same IEEE operations as on one float, and AVX-512, AVX2 or
/// SSE instructions depending on the target it is compiled for.
typedef float Vec16f __attribute__((vector_size(64)));
typedef int32_t Vec16i __attribute__((vector_size(64)));
template <typename F> struct IntOf { using type = int32_t; };
template <> struct IntOf<Vec16f> { using type = Vec16i; };
template <typename To, typename From>
__attribute__((always_inline)) inline To bitCast(From x) {
  static_assert(sizeof(To) == sizeof(From), "same size");
  To t;
  std::memcpy(&t, &x, sizeof t);
  return t;
}

/// exp(x) for a float or each lane of a Vec16f, branch-free (Cephes' expf
/// polynomial, relative error < 2e-7; glibc's scalar expf call per element
/// was most of the attention time). NaN stays NaN.
template <typename F> __attribute__((always_inline)) inline F fastExpT(F x) {
  using I = typename IntOf<F>::type;
  const F lo = F{} + -87.0f, hi = F{} + 88.0f;
  x = x < lo ? lo : x; // exp(-87) ~ 1.6e-38, still a normal float
  x = x > hi ? hi : x;
  // n = round(x / ln 2) through the 1.5 * 2^23 trick (no libm call).
  F fn = x * 1.44269504088896341f + 12582912.0f;
  I n = bitCast<I>(fn) - 0x4B400000;
  fn = fn - 12582912.0f;
  F r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  F p = F{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  return p * bitCast<F>((n + 127) << 23);
}
inline float fastExp(float x) { return fastExpT(x); }

} // namespace greta::rt::cpu

#endif

//===- Half.h - f16/bf16 <-> f32/f64, round to nearest even -----*- C++ -*-===//
//
// Conversions used by the weights writer, the `round` kernel (f16/bf16
// emulation) and readers of f16/bf16 traces. Encoding goes straight from
// double: rounding double -> float -> half would round twice and can differ
// from one correctly rounded step. Hand-written because C++17 has no half
// type and the runtime must build without a compiler extension (_Float16).
//
//===----------------------------------------------------------------------===//
#ifndef GRETA_RT_HALF_H
#define GRETA_RT_HALF_H

#include <cstdint>
#include <cstring>

namespace greta::rt {
namespace detail {
/// Rounds `x` to the binary format with `ExpBits` exponent bits and
/// `MantBits` stored mantissa bits (IEEE layout, subnormals, inf, NaN) with
/// round-to-nearest-even; returns its bit pattern.
template <int ExpBits, int MantBits>
inline uint32_t encodeSmallFloat(double x) {
  constexpr int bias = (1 << (ExpBits - 1)) - 1;
  constexpr uint32_t expMax = (1u << ExpBits) - 1;
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  uint32_t sign = static_cast<uint32_t>(bits >> 63) << (ExpBits + MantBits);
  int exp = static_cast<int>((bits >> 52) & 0x7ff);
  uint64_t mant = bits & ((uint64_t(1) << 52) - 1);
  if (exp == 0x7ff) // inf stays inf; NaN stays a (quiet) NaN.
    return sign | (expMax << MantBits) |
           (mant ? (1u << (MantBits - 1)) |
                       static_cast<uint32_t>(mant >> (52 - MantBits))
                 : 0);
  if (exp == 0) // Double subnormals are far below the smallest subnormal here.
    return sign;
  int e = exp - 1023;
  int he = e + bias;
  if (he >= static_cast<int>(expMax))
    return sign | (expMax << MantBits);
  uint64_t sig = (uint64_t(1) << 52) | mant;
  if (he >= 1) {
    constexpr int shift = 52 - MantBits;
    uint64_t m = mant >> shift, rem = mant & ((uint64_t(1) << shift) - 1);
    uint64_t half = uint64_t(1) << (shift - 1);
    uint32_t r =
        (static_cast<uint32_t>(he) << MantBits) + static_cast<uint32_t>(m);
    if (rem > half || (rem == half && (m & 1)))
      ++r; // A carry into the exponent is the correct result (up to inf).
    return sign | r;
  }
  // Subnormal: count units of the smallest subnormal.
  int s = (52 - MantBits + 1 - bias) - e;
  if (s >= 54) // Below half a unit: rounds to zero.
    return sign;
  uint64_t m = sig >> s, rem = sig & ((uint64_t(1) << s) - 1);
  uint64_t half = uint64_t(1) << (s - 1);
  if (rem > half || (rem == half && (m & 1)))
    ++m;
  return sign | static_cast<uint32_t>(m);
}
} // namespace detail

inline uint16_t doubleToHalfBits(double x) {
  return static_cast<uint16_t>(detail::encodeSmallFloat<5, 10>(x));
}
inline uint16_t doubleToBF16Bits(double x) {
  return static_cast<uint16_t>(detail::encodeSmallFloat<8, 7>(x));
}

inline float halfBitsToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float f;
  if (exp == 0) {
    // Subnormal (or zero): mant * 2^-24, exact in float.
    f = static_cast<float>(mant) * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  uint32_t bits = exp == 0x1f ? sign | 0x7f800000u | (mant << 13)
                              : sign | ((exp + 112) << 23) | (mant << 13);
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline float bf16BitsToFloat(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// x rounded to f16 (kind 0) or bf16 (kind 1) and widened back.
inline double roundToHalf(double x) {
  return halfBitsToFloat(doubleToHalfBits(x));
}
inline double roundToBF16(double x) {
  return bf16BitsToFloat(doubleToBF16Bits(x));
}

} // namespace greta::rt

#endif // GRETA_RT_HALF_H
